"""The report as read: the HTML escapes what clients wrote (sandboxed Jinja2, autoescape), uses
tables and CSS bars (no SVG), the PDF holds the figures and its charts (drawn with fpdf2), in
Helvetica when Latin-1 holds the text, else DejaVu; the email is the same bytes every time."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from pypdf import PdfReader

from aicmo_actors.reporting.render import (
    FunnelLine,
    KpiLine,
    ReportData,
    Reviews,
    file_name,
    html,
    pdf,
    report_email,
    text,
)
from aicmo_actors.reporting.rules import DeliverableLine

NOW = datetime(2027, 2, 1, 7, tzinfo=UTC)
DATA = ReportData(
    agency="Bright Agency",
    company="Acme <script>alert(1)</script> & Co",
    contact_name="Ann Lee",
    client_ref="11111111-2222-4333-8444-555555555555",
    period="2027-01",
    first=date(2027, 1, 1),
    last=date(2027, 1, 31),
    timezone="Europe/Berlin",
    deliverables=(DeliverableLine("blog_post", "blog", 4, 3, 2),),
    delivered_in_period=3,
    reviews=Reviews(verdicts=5, approved=3, changes=2, items=3),
    kpis=(
        KpiLine("organic_sessions", "sessions", "up", 1000, 500, False, (("2026-12", 400.0), ("2027-01", 500.0))),
        KpiLine("cost_per_lead", "EUR", "down", 50, None, None),
    ),
    funnel=(FunnelLine("<b>spring</b>", 100, 10, 4, 1),),
)


def _pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages).split())


def test_html_escapes_what_clients_wrote_and_draws_bars_with_css() -> None:
    page = html(DATA)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; Co" in page
    assert "<b>spring</b>" not in page and "&lt;b&gt;spring&lt;/b&gt;" in page
    assert "<svg" not in page
    assert "width: 75%" in page  # 3 of 4 delivered
    assert "width: 50%" in page  # half-way to the target
    assert "not measured" in page and "&le; 50" in page


def test_text_alternative() -> None:
    body = text(DATA)
    assert "blog_post on blog: 4 / 3 / 2" in body
    assert "organic_sessions: 500 sessions (target >= 1,000): not attained" in body
    assert "cost_per_lead: - EUR (target <= 50): not measured" in body


def test_pdf_holds_the_figures_in_helvetica() -> None:
    data = pdf(DATA, created=NOW)
    assert b"/Helvetica" in data and b"DejaVu" not in data
    shown = _pdf_text(data)
    assert "Planned 4, delivered 3, on time 2 (50 %)" in shown
    assert "5 verdicts on 3 pieces: 3 approved, 2 asked for changes." in shown
    assert "organic_sessions: recent periods against the target" in shown and "2026-12" in shown
    assert "<b>spring</b>: 100 emails sent, 10 replies (10 %), 4 positive, 1 clients signed." in shown


def test_pdf_in_dejavu_when_latin1_cannot_hold_the_text() -> None:
    data = pdf(DATA.__class__(**{**DATA.__dict__, "company": "Łódź Logistyka"}), created=NOW)
    assert b"DejaVu" in data
    assert "Łódź Logistyka: report for 2027-01" in _pdf_text(data)


def test_email_html_text_and_pdf_the_same_bytes_every_time() -> None:
    def make(formats: tuple[str, ...]) -> bytes:
        message = report_email(
            DATA, mail_from="reports@agency.example", to_address="ann@acme.example", key="k1", formats=formats, now=NOW
        )
        return message.as_bytes()

    assert make(("html", "pdf")) == make(("html", "pdf"))
    message = report_email(
        DATA,
        mail_from="reports@agency.example",
        to_address="ann@acme.example",
        key="k1",
        formats=("html", "pdf"),
        now=NOW,
    )
    assert message.get_body(("html",)) is not None
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "report-acme-script-alert-1-script-co-2027-01.pdf"
    plain = report_email(
        DATA, mail_from="reports@agency.example", to_address="ann@acme.example", key="k1", formats=("html",), now=NOW
    )
    body = plain.get_body(("plain",))
    assert body is not None and "attached PDF" not in body.get_content()
    assert list(plain.iter_attachments()) == []
    only_pdf = report_email(
        DATA, mail_from="reports@agency.example", to_address="ann@acme.example", key="k1", formats=("pdf",), now=NOW
    )
    assert only_pdf.get_body(("html",)) is None and len(list(only_pdf.iter_attachments())) == 1


def test_file_name() -> None:
    assert file_name("Acme Logistics GmbH", "2027-W03") == "report-acme-logistics-gmbh-2027-W03"
    assert file_name("???", "2027-01") == "report-client-2027-01"
