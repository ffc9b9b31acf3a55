"""The plan as HTML (escaped: a hostile brief cannot inject markup) and as PDF (a real PDF
whose text says what the plan says), and the emails that carry it."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

import pytest

from aicmo_actors.gateways.pdf import font_files
from aicmo_actors.strategy.emails import Letterhead, cancelled_email, page_url, plan_email
from aicmo_actors.strategy.plan import build_plan, revise_plan
from aicmo_actors.strategy.render import html_document, render_html, render_pdf
from tests.unit.strategy.pdf_text import pdf_text, uncompressed_text
from tests.unit.strategy.test_plan import BRIEF, CLIENT, PACKAGE, START

CREATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOSTILE = {
    **BRIEF,
    "words_to_use": "<script>alert(1)</script>, route optimisation",
    "audience": '"><img src=x onerror=alert(1)>',
}
HEAD = Letterhead(mail_from="plans@agency.example", agency_name="Bright Agency", public_url="https://agency.example/")
TOKEN = "ab" * 32


def test_html_shows_the_client_the_calendar_the_topics_and_the_kpis() -> None:
    plan = build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1")
    html = render_html(plan, agency="Bright Agency")
    assert "<h1>Plan for Acme Logistics</h1>" in html
    assert "prepared by Bright Agency" in html
    assert html.count('<td class="due"') == len(plan.items)
    for item in plan.items:
        assert item.topic.replace("'", "&#39;") in html
    assert "at least 1,200 sessions" in html and "at most 45.5 %" in html
    assert "800-1,200 words" in html and "up to 1,300 characters" in html
    assert "Christmas Day" in html
    assert "Changes requested" not in html


def test_html_escapes_every_answer_of_a_hostile_brief() -> None:
    client = CLIENT.model_copy(update={"company": "Acme <b>Bold</b> & Co"})
    plan = build_plan(client, PACKAGE, HOSTILE, START, seed="p1")
    plan = revise_plan(plan, "</blockquote><script>steal()</script> please avoid 'route optimisation'")
    html = render_html(plan, agency="<i>Agency</i>")
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Acme &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in html
    assert "&lt;/blockquote&gt;&lt;script&gt;steal()&lt;/script&gt;" in html
    assert html.count("<blockquote>") == html.count("</blockquote>") == 1
    page = html_document(html, title="Plan for <x>")
    assert "<script" not in page and "<title>Plan for &lt;x&gt;</title>" in page
    assert 'name="viewport"' in page


def test_the_revision_is_shown_with_the_clients_comments() -> None:
    plan = revise_plan(build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1"), "Please avoid 'fleet utilisation'.")
    html = render_html(plan)
    assert "<h2>Changes requested</h2>" in html
    assert "Your comments on version 1:" in html
    assert "Please avoid &#39;fleet utilisation&#39;." in html
    assert "In version 2," in html and "replaced" in html


def _pdf(
    compress: bool = False, fonts: tuple[str, str] | Literal["auto"] | None = "auto", company: str | None = None
) -> tuple[bytes, str]:
    plan = revise_plan(build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1"), "Please avoid 'fleet utilisation'.")
    if company is not None:
        plan = replace(plan, company=company)
    data = render_pdf(plan, agency="Bright Agency", created=CREATED, compress=compress, fonts=fonts)
    return data, " ".join(uncompressed_text(data).split()) if not compress else ""


def test_the_pdf_is_a_pdf_whose_text_says_what_the_plan_says() -> None:
    data, text = _pdf()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert "Plan for Acme Logistics" in text
    assert "prepared by Bright Agency" in text
    assert "Changes requested" in text and "Please avoid 'fleet utilisation'." in text
    assert "Calendar" in text and "KPIs and targets" in text and "at least 1,200 sessions" in text
    plan = revise_plan(build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1"), "Please avoid 'fleet utilisation'.")
    for item in plan.items:
        assert " ".join(item.topic.split()[:2]) in text
    assert "Christmas Day" in text


def test_the_compressed_pdf_reads_the_same_where_a_pdf_reader_is_installed() -> None:
    compressed = render_pdf(build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1"), created=CREATED)
    assert compressed.startswith(b"%PDF-")
    try:
        import pypdf  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        pytest.skip("pypdf is not installed: the uncompressed PDF is read by tests/unit/strategy/pdf_text.py")
    assert "Plan for Acme Logistics" in pdf_text(compressed)


def test_the_pdf_is_the_same_bytes_for_the_same_plan_and_date() -> None:
    assert _pdf(compress=True)[0] == _pdf(compress=True)[0]
    plan = build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1")
    later = render_pdf(plan, created=datetime(2026, 11, 21, tzinfo=UTC))
    assert later != render_pdf(plan, created=CREATED)


@pytest.mark.skipif(font_files() is None, reason="no DejaVu Sans on this machine: the PDF falls back to Helvetica")
def test_the_pdf_prints_unicode_and_a_question_mark_for_what_the_font_lacks() -> None:
    _, text = _pdf(company="M\u00fcller & S\u00f6hne \u2013 Zo\u00eb \u65e5\u672c")
    assert "Plan for M\u00fcller & S\u00f6hne \u2013 Zo\u00eb ??" in text


@pytest.mark.skipif(font_files() is None, reason="no DejaVu Sans on this machine: the PDF falls back to Helvetica")
def test_auto_embeds_the_unicode_font_only_for_a_plan_latin_1_cannot_print() -> None:
    plan = build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1")
    latin = render_pdf(plan, agency="Br\u00fcder Agency", created=CREATED)
    assert b"/BaseFont /Helvetica" in latin and b"DejaVu" not in latin
    # One character outside Latin-1 anywhere (here a later item's topic, deep in the plan):
    # the plan is in DejaVu, and prints it.
    items = list(plan.items)
    items[-1] = replace(items[-1], topic="Route planning \u2013 a field guide")
    dash = render_pdf(replace(plan, items=tuple(items)), created=CREATED, compress=False)
    assert b"DejaVu" in dash and b"/BaseFont /Helvetica" not in dash
    assert "Route planning \u2013 a field guide" in " ".join(uncompressed_text(dash).split())
    assert b"DejaVu" in render_pdf(plan, agency="\u65e5\u672c Agency", created=CREATED)


def test_without_a_unicode_font_the_pdf_falls_back_to_latin_1() -> None:
    data, text = _pdf(fonts=None, company="M\u00fcller \u2013 \u65e5")
    assert b"/BaseFont /Helvetica" in data
    assert "Plan for M\u00fcller ? ?" in text
    # A built-in font's text is in the content stream as it is.
    assert b"(Calendar) Tj" in data


def test_a_hostile_brief_is_only_text_in_the_pdf() -> None:
    plan = build_plan(CLIENT, PACKAGE, HOSTILE, START, seed="p1")
    data = render_pdf(plan, created=CREATED, compress=False)
    text = uncompressed_text(data)
    assert "<script>alert(1)</script>" in " ".join(text.split())


# -- the emails ----------------------------------------------------------------------------------------------------


def _parsed(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_plan_email_carries_the_link_and_the_pdf() -> None:
    plan = build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1")
    pdf = render_pdf(plan, created=CREATED)
    deadline = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

    def build() -> EmailMessage:
        return plan_email(
            HEAD,
            CLIENT,
            plan,
            key="p:strategy:plan:1",
            pdf=pdf,
            token=TOKEN,
            deadline=deadline,
            last_round=False,
            now=CREATED,
        )

    message = _parsed(build())
    assert message["To"] == "Ann Lee <ann@acme.example>"
    assert message["From"] == "Bright Agency <plans@agency.example>"
    assert message["Subject"] == "Acme Logistics: your plan for December 2026, for your approval"
    assert re.fullmatch(r"<strategy\.[0-9a-f]{32}@agency\.example>", message["Message-ID"])
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"https://agency.example/client/plan/{TOKEN}" in text
    assert "Fri 27 November 2026, 09:00 (Europe/Berlin)" in text
    assert "Hello Ann Lee," in text
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "plan-v1.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf
    assert build().as_bytes() == build().as_bytes()


def test_a_revised_plan_email_says_its_version_and_when_it_is_the_last_round() -> None:
    plan = revise_plan(build_plan(CLIENT, PACKAGE, BRIEF, START, seed="p1"), "ok")
    pdf = b"%PDF-1.3 test"
    message = plan_email(
        HEAD,
        CLIENT.model_copy(update={"company": "Acme\r\nBcc: x@evil.example", "contact_name": None}),
        plan,
        key="p:strategy:plan:2",
        pdf=pdf,
        token=TOKEN,
        deadline=CREATED,
        last_round=True,
        now=CREATED,
    )
    assert message["Subject"] == "Acme Bcc: x@evil.example: your plan for December 2026 (version 2), for your approval"
    assert message["Bcc"] is None
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert text.startswith("Hello,\n") and "version 2 of the plan" in text
    assert "the last version your package includes" in text
    assert [a.get_filename() for a in message.iter_attachments()] == ["plan-v2.pdf"]


def test_the_cancellation_notice() -> None:
    message = cancelled_email(HEAD, CLIENT, key="p:strategy:cancelled", now=CREATED)
    assert message["Subject"] == "Acme Logistics: the plan we sent you is withdrawn"
    assert list(message.iter_attachments()) == []


def test_page_url() -> None:
    assert page_url("https://agency.example/", TOKEN) == f"https://agency.example/client/plan/{TOKEN}"
    assert page_url("https://agency.example/aicmo", TOKEN) == f"https://agency.example/aicmo/client/plan/{TOKEN}"
