"""Header injection, judged on the wire: messages from `build_message` sent through the real
SMTP transport to an aiosmtpd server in this process, and the bytes it received read back.

Hostile values are RFC 2047 encoded words hiding a line break (CRLF, LF, NUL, U+2028; q and b
encodings, upper and lower case) in a lead's name, a subject (typed or rendered from a lead's
first name) and the sender's display name. The email package decodes such words on its way in
(CPython 3.11 then wrote the break onto the wire): here they must arrive as the literal text,
with no header, MIME part or body of their own, and no line over 998 octets.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest

from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.templates import render_step
from aicmo_actors.gateways.mail_message import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_SUBJECT_CHARS,
    HeaderInjectionError,
    build_message,
)
from aicmo_actors.gateways.smtp import SmtpTransport
from tests.plugins.mail import Received, SmtpSink

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

SENDER = "alex@outreach.example.com"
LEAD = "jane@client.example"
TEXT = "Hi there,\n\na short question.\n"
HEADERS = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
]

BREAKS = {"crlf": b"\r\n", "lf": b"\n", "nul": b"\x00", "u2028": "\u2028".encode()}
PAYLOADS = {
    "bcc": b"a{br}Bcc: victim@evil.example",
    "reply-to": b"a{br}Reply-To: attacker@evil.example",
    "body": b"a{br}{br}--x{br}Content-Type: text/html{br}{br}<b>evil</b>",
}


def q_word(data: bytes, charset: str, letter: str) -> str:
    text = "".join(chr(b) if chr(b).isalnum() else "_" if b == 0x20 else f"={b:02X}" for b in data)
    return f"=?{charset}?{letter}?{text}?="


def b_word(data: bytes, charset: str, letter: str) -> str:
    return f"=?{charset}?{letter}?{base64.b64encode(data).decode()}?="


def hostile_words() -> Iterator[tuple[str, str]]:
    """(id, encoded word) for every payload, line break and encoding."""
    for payload_name, payload in PAYLOADS.items():
        for break_name, line_break in BREAKS.items():
            data = payload.replace(b"{br}", line_break)
            yield f"{payload_name}-{break_name}-q", q_word(data, "utf-8", "q")
            yield f"{payload_name}-{break_name}-Q", q_word(data, "UTF-8", "Q")
            yield f"{payload_name}-{break_name}-b", b_word(data, "utf-8", "b")
            yield f"{payload_name}-{break_name}-B", b_word(data, "UTF-8", "B")
    yield "in-text", "Jane =?utf-8?q?=0D=0ABcc:_victim@evil.example?= Doe"
    yield "in-quotes", '"=?utf-8?q?=0D=0ABcc:_victim@evil.example?="'


HOSTILE = list(hostile_words())


def message(n: int, **overrides: Any) -> EmailMessage:
    kwargs: dict[str, Any] = {
        "from_address": SENDER,
        "from_name": "Alex Berger",
        "to_address": LEAD,
        "to_name": "Jane Doe",
        "subject": "Quick question",
        "text": TEXT,
        "message_id": f"<wire.{n}@outreach.example.com>",
        "date": datetime(2026, 3, 10, 9, 30, tzinfo=UTC),
        "list_unsubscribe_url": f"https://mail.example.com/u/{n}",
    }
    kwargs.update(overrides)
    return build_message(**kwargs)


async def send_all(sink: SmtpSink, messages: list[EmailMessage]) -> list[Received]:
    transport = SmtpTransport(sink.host, sink.port, tls="none", timeout=5)
    try:
        for msg in messages:
            result = await transport.send(msg, mail_from=SENDER, rcpt_to=[LEAD])
            assert result.outcome == "accepted", result
    finally:
        await transport.close()
    assert len(sink.messages) == len(messages)
    return sink.messages


def raw_header(raw: bytes, name: str) -> str:
    """One header's value as it came over the wire, unfolded."""
    block = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for field in block.replace("\r\n ", " ").replace("\r\n\t", "\t").split("\r\n"):
        key, _, value = field.partition(":")
        if key.lower() == name.lower():
            return value.strip()
    raise AssertionError(f"no {name} header in {block!r}")


def rfc2047(raw: bytes, name: str) -> str:
    """A header decoded the way RFC 2047 says (whitespace between encoded words dropped)."""
    return str(make_header(decode_header(raw_header(raw, name))))


def assert_clean_on_the_wire(got: Received) -> None:
    """Exactly the headers we wrote, one text part with our text, nothing injected, no long line."""
    raw = got.raw
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    starts = [
        line.split(b":", 1)[0].decode("ascii", "replace").lower() for line in lines if line[:1] not in (b" ", b"\t")
    ]
    assert starts == HEADERS, head
    assert head.isascii() and b"\x00" not in raw
    assert all(line.strip() for line in lines[1:]), "a blank line inside the header block"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert not any(
        line.lower().startswith((b"bcc:", b"reply-to:", b"content-type: text/html")) for line in body.split(b"\r\n")
    )
    assert got.rcpt_tos == [LEAD]
    assert got.message["Bcc"] is None and got.message["Reply-To"] is None
    assert not got.message.is_multipart() and got.message.get_content_type() == "text/plain"
    assert got.message.get_content().replace("\r\n", "\n") == TEXT


# -- hostile values ---------------------------------------------------------------------------------


async def test_encoded_words_in_the_subject_arrive_as_literal_text(smtp_sink: SmtpSink) -> None:
    received = await send_all(smtp_sink, [message(n, subject=word) for n, (_, word) in enumerate(HOSTILE)])
    for (name, word), got in zip(HOSTILE, received, strict=True):
        assert_clean_on_the_wire(got)
        assert got.message["Subject"] == word[:MAX_SUBJECT_CHARS], name
        assert rfc2047(got.raw, "Subject") == word[:MAX_SUBJECT_CHARS], name


@pytest.mark.parametrize(
    ("field", "header", "address"),
    [("to_name", "To", LEAD), ("from_name", "From", SENDER)],
    ids=["lead-name", "sender-display-name"],
)
async def test_encoded_words_in_a_display_name_arrive_as_literal_text(
    smtp_sink: SmtpSink, field: str, header: str, address: str
) -> None:
    received = await send_all(smtp_sink, [message(n, **{field: word}) for n, (_, word) in enumerate(HOSTILE)])
    for (name, word), got in zip(HOSTILE, received, strict=True):
        assert_clean_on_the_wire(got)
        assert [a.addr_spec for a in got.message[header].addresses] == [address], name
        assert rfc2047(got.raw, header) == f"{word[:MAX_DISPLAY_NAME_CHARS]} <{address}>", name


async def test_a_lead_first_name_rendered_into_the_subject_arrives_as_literal_text(smtp_sink: SmtpSink) -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "wire",
            "postal_address": "Example GmbH, Strasse 1, 10115 Berlin",
            "mailboxes": [{"address": SENDER, "display_name": "Alex Berger"}],
            "steps": [{"subject": "Quick question, {{ first_name }}", "body": "Hi {{ first_name }}"}],
        }
    )
    subjects = []
    for _, word in HOSTILE:
        lead = {"email": LEAD, "first_name": word, "last_name": "Doe", "company": "Acme", "timezone": ""}
        subjects.append(render_step(spec, 0, "A", lead, {}).subject)
    received = await send_all(smtp_sink, [message(n, subject=s) for n, s in enumerate(subjects)])
    for (name, word), got in zip(HOSTILE, received, strict=True):
        assert_clean_on_the_wire(got)
        expected = f"Quick question, {' '.join(word.split())}"[:MAX_SUBJECT_CHARS]
        assert got.message["Subject"] == expected, name


async def test_a_hostile_subject_keeps_an_html_message_at_two_parts(smtp_sink: SmtpSink) -> None:
    words = [word for _, word in HOSTILE]
    received = await send_all(
        smtp_sink, [message(n, subject=w, to_name=w, html="<p>Hi</p>\n") for n, w in enumerate(words)]
    )
    for word, got in zip(words, received, strict=True):
        assert got.message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in got.message.iter_parts()] == ["text/plain", "text/html"]
        assert got.message["Bcc"] is None and got.message["Reply-To"] is None
        assert got.message["Subject"] == word[:MAX_SUBJECT_CHARS]
        assert all(len(line) <= 998 for line in got.raw.split(b"\r\n"))


@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r", "\x00", "\u2028", "\x85"], ids=repr)
@pytest.mark.parametrize("field", ["subject", "to_name", "from_name"])
async def test_a_raw_line_break_is_refused_before_anything_is_sent(
    smtp_sink: SmtpSink, field: str, line_break: str
) -> None:
    with pytest.raises(HeaderInjectionError):
        message(0, **{field: f"Jane{line_break}Bcc: victim@evil.example"})
    await send_all(smtp_sink, [])
    assert smtp_sink.messages == []


# -- line length -----------------------------------------------------------------------------------


@pytest.mark.parametrize("filler", ["x", "é", "山", "=?"])
async def test_huge_display_names_and_subjects_are_cut_and_no_line_passes_998_octets(
    smtp_sink: SmtpSink, filler: str
) -> None:
    huge = filler * 20_000
    received = await send_all(smtp_sink, [message(0, subject=huge, to_name=huge, from_name=huge)])
    got = received[0]
    assert_clean_on_the_wire(got)
    assert got.message["Subject"] == huge[:MAX_SUBJECT_CHARS]
    assert rfc2047(got.raw, "To") == f"{huge[:MAX_DISPLAY_NAME_CHARS]} <{LEAD}>"
    assert rfc2047(got.raw, "From") == f"{huge[:MAX_DISPLAY_NAME_CHARS]} <{SENDER}>"


@pytest.mark.parametrize(
    "overrides",
    [{"to_address": "j" * 2_000 + "@client.example"}, {"list_unsubscribe_url": "https://x.example/u/" + "t" * 2_000}],
    ids=["address", "unsubscribe-url"],
)
async def test_a_header_line_that_would_pass_998_octets_is_refused_before_sending(
    smtp_sink: SmtpSink, overrides: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"a header line of \d+ octets \(at most 998 are allowed\)$"):
        message(0, **overrides)
    await send_all(smtp_sink, [])


# -- legitimate names still arrive as they are ----------------------------------------------------

LEGIT = [
    ("Jörg Müller-Lüdenscheidt", "Zoë Ångström", "Grüße aus München"),
    ("Алексей", "山田 太郎", "Вопрос про 山田 — 😀"),
    ('O\'Brien, "The" Boss', "Doe; Jane", "Is 2+2=4? A question about = and ?"),
]


async def test_non_ascii_names_and_subjects_arrive_decodable(smtp_sink: SmtpSink) -> None:
    received = await send_all(
        smtp_sink, [message(n, from_name=f, to_name=t, subject=s) for n, (f, t, s) in enumerate(LEGIT)]
    )
    for (from_name, to_name, subject), got in zip(LEGIT, received, strict=True):
        assert_clean_on_the_wire(got)
        assert got.raw.split(b"\r\n\r\n")[0].isascii()  # RFC 2047 words, not raw UTF-8
        assert all(len(line) <= 78 for line in got.raw.split(b"\r\n\r\n")[0].split(b"\r\n"))
        assert got.message["Subject"] == subject
        assert got.message["From"].addresses[0].display_name == from_name
        assert got.message["To"].addresses[0].display_name == to_name
        assert got.message["To"].addresses[0].addr_spec == LEAD
