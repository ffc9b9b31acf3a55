"""The report as read: the HTML escapes what clients wrote (sandboxed Jinja2, autoescape), uses
tables and CSS bars (no SVG); the chart of the period is a PNG drawn by matplotlib (imported only
when a chart is drawn), the same bytes every time, embedded in the PDF and inline in the HTML email
(a multipart/related part its cid: URL names); the PDF holds the figures, in Helvetica when
Latin-1 holds the text, else DejaVu; the email is the same bytes every time."""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess
import sys
import warnings
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from PIL import Image
from pypdf import PdfReader

from aicmo_actors.reporting.render import (
    ChartImage,
    FunnelLine,
    KpiLine,
    ReportData,
    Reviews,
    chart_alt,
    chart_png,
    file_name,
    html,
    pdf,
    png_size,
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


def _pdf_images(data: bytes) -> list[Image.Image]:
    found = [image.image for page in PdfReader(io.BytesIO(data)).pages for image in page.images]
    return [image for image in found if image is not None]


def _email(data: ReportData = DATA, formats: tuple[str, ...] = ("html", "pdf")) -> EmailMessage:
    return report_email(
        data, mail_from="reports@agency.example", to_address="ann@acme.example", key="k1", formats=formats, now=NOW
    )


def _png_chunks(png: bytes) -> list[bytes]:
    chunks, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        chunks.append(png[at + 4 : at + 8])
        at += 12 + length
    return chunks


NOTHING = dataclasses.replace(DATA, deliverables=(), kpis=(KpiLine("leads", "", "up", 20, None, None),), funnel=())


def test_html_escapes_what_clients_wrote_and_draws_bars_with_css() -> None:
    page = html(DATA)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; Co" in page
    assert "<b>spring</b>" not in page and "&lt;b&gt;spring&lt;/b&gt;" in page
    assert "<svg" not in page and "<img" not in page  # no chart given, no image
    assert "width: 75%" in page  # 3 of 4 delivered
    assert "width: 50%" in page  # half-way to the target
    assert "not measured" in page and "&le; 50" in page


def test_html_shows_the_chart_with_an_alt_text_and_keeps_the_tables() -> None:
    odd = dataclasses.replace(DATA, kpis=(KpiLine('<i>"reach"</i>', "", "up", 10, 5, False),))
    page = html(odd, chart=ChartImage("cid:chart.1@agency.example", 680, 400))
    assert '<img src="cid:chart.1@agency.example" width="680" height="400" alt="Chart for 2027-01: ' in page
    assert "&lt;i&gt;&#34;reach&#34;&lt;/i&gt; against their targets" in page and '<i>"reach"' not in page
    assert page.count("<table") == 3
    assert "(all: 4 planned, 3 delivered, 2 on time)" in chart_alt(DATA)


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
    assert "<b>spring</b>: 100 emails sent, 10 replies (10 %), 4 positive, 1 clients signed." in shown
    assert "Charts" in shown


def test_pdf_embeds_the_chart_png() -> None:
    chart = chart_png(DATA)
    assert chart is not None
    (image,) = _pdf_images(pdf(DATA, created=NOW))
    drawn = Image.open(io.BytesIO(chart))
    assert image.size == drawn.size == png_size(chart)
    assert image.convert("RGB").tobytes() == drawn.convert("RGB").tobytes()  # the same pixels


def test_chart_is_a_png_the_same_bytes_every_time_without_metadata() -> None:
    first, second = chart_png(DATA), chart_png(dataclasses.replace(DATA))
    assert first is not None and first == second
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert png_size(first)[0] == 1020  # 6.8 inches at 150 dpi
    chunks = _png_chunks(first)
    assert b"tIME" not in chunks and b"tEXt" not in chunks and b"iTXt" not in chunks and b"zTXt" not in chunks
    assert b"Software" not in first and b"Matplotlib" not in first
    assert pdf(DATA, created=NOW) == pdf(DATA, created=NOW)
    other = chart_png(dataclasses.replace(DATA, deliverables=(DeliverableLine("blog_post", "blog", 4, 4, 4),)))
    assert other is not None and other != first


def test_chart_draws_what_clients_wrote_without_mathtext_or_missing_glyph_warnings() -> None:
    odd = dataclasses.replace(
        DATA,
        deliverables=(
            DeliverableLine("$x^2$ post", "blog $", 2, 1, 0),
            DeliverableLine("\u65e5\u672c\u8a9e", "x" * 80, 1, 0, 0),
        ),
        kpis=(KpiLine("cost $\\frac{$ lead", "$", "down", 50, 60, False),),
        funnel=(FunnelLine("\U0001f680 launch\nline", 10, 1, 0, 0),),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chart = chart_png(odd)
    assert chart is not None and chart == chart_png(odd)


def test_no_chart_when_there_is_nothing_to_chart() -> None:
    assert chart_png(NOTHING) is None
    assert _pdf_images(pdf(NOTHING, created=NOW)) == []
    message = _email(NOTHING)
    assert "<img" not in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert [p.get_content_type() for p in message.walk() if p.get_content_maintype() == "image"] == []


def test_importing_render_does_not_import_matplotlib() -> None:
    code = "import sys, aicmo_actors.reporting.render; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "False"


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
    assert make(("html",)) == make(("html",)) and make(("pdf",)) == make(("pdf",))
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


def test_email_shows_the_chart_inline_as_a_related_part() -> None:
    chart = chart_png(DATA)
    assert chart is not None
    # Read back from the bytes, as a mail client would.
    message = message_from_bytes(_email().as_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.iter_parts()  # type: ignore[attr-defined]
    assert plain.get_content_type() == "text/plain" and "Dear Ann Lee," in plain.get_content()
    assert related.get_content_type() == "multipart/related" and related.get_param("type") == "text/html"
    root, image = related.iter_parts()
    assert root.get_content_type() == "text/html" and image.get_content_type() == "image/png"
    content_id = image["Content-ID"]
    assert content_id.startswith("<chart.") and content_id.endswith("@agency.example>")
    assert f'src="cid:{content_id[1:-1]}"' in root.get_content()
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == chart  # the chart as drawn
    assert attachment.get_content_type() == "application/pdf"
    assert len(_pdf_images(attachment.get_content())) == 1
    assert "The charts are in the attached PDF." in plain.get_content()
    # Another report, another Content-ID.
    other = report_email(
        DATA, mail_from="reports@agency.example", to_address="ann@acme.example", key="k2", formats=("html",), now=NOW
    )
    assert f"<{content_id[1:-1]}>" not in other.as_string()
    # The PDF alone: no HTML, so no inline chart; the chart is in the PDF.
    only_pdf = _email(formats=("pdf",))
    assert [p.get_content_type() for p in only_pdf.walk() if p.get_content_maintype() == "image"] == []
    (attached,) = only_pdf.iter_attachments()
    assert len(_pdf_images(attached.get_content())) == 1


def test_file_name() -> None:
    assert file_name("Acme Logistics GmbH", "2027-W03") == "report-acme-logistics-gmbh-2027-W03"
    assert file_name("???", "2027-01") == "report-client-2027-01"


def test_a_report_email_gives_its_page_with_the_chart_inlined_and_its_pdf() -> None:
    from email.message import EmailMessage

    from aicmo_actors.webapp.pages_money import report_parts

    message = EmailMessage()
    message.set_content("plain")
    message.add_alternative('<p>Report</p><img src="cid:chart.1@x">', subtype="html")
    message.get_payload()[1].add_related(b"\x89PNG...", "image", "png", cid="<chart.1@x>")
    message.add_attachment(b"%PDF-1.4 ...", "application", "pdf", filename="report.pdf")
    html, pdf = report_parts(message.as_bytes())
    assert html is not None and 'src="data:image/png;base64,iVBORy4uLg=="' in html and "cid:" not in html
    assert pdf == b"%PDF-1.4 ..."
    plain = EmailMessage()
    plain.set_content("only text")
    assert report_parts(plain.as_bytes()) == (None, None)
