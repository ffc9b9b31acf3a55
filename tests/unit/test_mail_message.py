"""Outbound messages: threading, unsubscribe headers, encoding, and no header injection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from aicmo_actors.gateways.mail_message import (
    HeaderInjectionError,
    build_message,
    make_message_id,
    references_for,
)

DATE = datetime(2026, 3, 10, 9, 30, 15, tzinfo=UTC)
URL = "https://mail.example.com/u/abc123"
MAILTO = "mailto:alex+unsubscribe@outreach.example.com?subject=unsubscribe%20abc123"


def build(**overrides: Any) -> EmailMessage:
    kwargs: dict[str, Any] = {
        "from_address": "alex@outreach.example.com",
        "from_name": "Alex Berger",
        "to_address": "jane@client.example",
        "to_name": "Jane Doe",
        "subject": "Quick question about Acme",
        "text": "Hi Jane,\n\nshort question.\n",
        "message_id": make_message_id("outreach.example.com", "0001.42.1"),
        "date": DATE,
    }
    kwargs.update(overrides)
    return build_message(**kwargs)


def parsed(message: EmailMessage) -> EmailMessage:
    back = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(back, EmailMessage)
    return back


def content(part: EmailMessage) -> str:
    """A text part's content with the wire's CRLF line ends back to LF."""
    return str(part.get_content()).replace("\r\n", "\n")


# -- headers ---------------------------------------------------------------------------------------


def test_basic_headers_parse_back() -> None:
    back = parsed(build())
    assert back["From"] == "Alex Berger <alex@outreach.example.com>"
    assert back["To"] == "Jane Doe <jane@client.example>"
    assert back["Subject"] == "Quick question about Acme"
    assert back["Message-ID"] == "<0001.42.1@outreach.example.com>"
    assert back["In-Reply-To"] is None and back["References"] is None
    assert back["List-Unsubscribe"] is None and back["List-Unsubscribe-Post"] is None
    assert back.get_content_type() == "text/plain"
    assert content(back) == "Hi Jane,\n\nshort question.\n"


def test_lines_end_in_crlf_on_the_wire() -> None:
    raw = build().as_bytes()
    assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")


def test_date_header() -> None:
    back = parsed(build())
    assert back["Date"] == "Tue, 10 Mar 2026 09:30:15 +0000"
    assert parsedate_to_datetime(back["Date"]) == DATE
    berlin = timezone(timedelta(hours=1))
    other = parsed(build(date=DATE.astimezone(berlin)))
    assert other["Date"].endswith("+0100") and parsedate_to_datetime(other["Date"]) == DATE


def test_message_id_under_the_sending_domain() -> None:
    assert make_message_id("outreach.example.com", "abc.1.2") == "<abc.1.2@outreach.example.com>"
    back = parsed(build(message_id=make_message_id("outreach.example.com", "xyz")))
    assert back["Message-ID"] == "<xyz@outreach.example.com>"
    assert back["Message-ID"].removesuffix(">").rpartition("@")[2] == back["From"].addresses[0].domain


@pytest.mark.parametrize(
    ("domain", "unique"),
    [("", "x"), ("a b.example", "x"), ("<example.com>", "x"), ("x@example.com", "x"), ("example.com", ""),
     ("example.com", "a b"), ("example.com", "a>b"), ("example.com", "a@b")],
)
def test_make_message_id_refuses_malformed_parts(domain: str, unique: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        make_message_id(domain, unique)


def test_references_for() -> None:
    assert references_for([]) == (None, ())
    assert references_for(["<1@d>"]) == ("<1@d>", ("<1@d>",))
    assert references_for(["<1@d>", "<2@d>"]) == ("<2@d>", ("<1@d>", "<2@d>"))


def test_follow_ups_chain_in_reply_to_and_references() -> None:
    first = make_message_id("outreach.example.com", "s1")
    second = make_message_id("outreach.example.com", "s2")
    in_reply_to, references = references_for([first, second])
    back = parsed(build(subject="Re: Quick question about Acme", in_reply_to=in_reply_to, references=references,
                        message_id=make_message_id("outreach.example.com", "s3")))
    assert back["In-Reply-To"] == "<s2@outreach.example.com>"
    assert back["References"] == "<s1@outreach.example.com> <s2@outreach.example.com>"
    assert back["Subject"] == "Re: Quick question about Acme"


def test_list_unsubscribe_with_https_and_mailto_and_one_click() -> None:
    back = parsed(build(list_unsubscribe_url=URL, list_unsubscribe_mailto=MAILTO))
    # The email package may fold the header between the two targets: compare it unfolded.
    assert " ".join(back["List-Unsubscribe"].split()) == f"<{URL}>, <{MAILTO}>"
    assert back["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_one_click_only_with_an_https_target() -> None:
    back = parsed(build(list_unsubscribe_mailto=MAILTO))
    assert back["List-Unsubscribe"].strip() == f"<{MAILTO}>"
    assert back["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("list_unsubscribe_url", "https://x.example/u/>, <mailto:evil@example.com"),
        ("list_unsubscribe_url", "https://x.example/u/a b"),
        ("list_unsubscribe_mailto", "https://not-a-mailto.example/"),
        ("list_unsubscribe_mailto", "mailto:a@example.com>, <https://evil.example/"),
    ],
)
def test_unsubscribe_targets_cannot_smuggle_more_targets(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=r"^List-Unsubscribe: "):
        build(**{field: value})


def test_extra_headers_are_added() -> None:
    back = parsed(build(extra_headers={"X-Campaign": "spring-intro", "Cc": "boss@client.example"}))
    assert back["X-Campaign"] == "spring-intro"
    assert back["Cc"] == "boss@client.example"


@pytest.mark.parametrize("name", ["From", "to", "SUBJECT", "Message-ID", "References", "List-Unsubscribe", "Content-Type"])
def test_extra_headers_cannot_replace_the_managed_ones(name: str) -> None:
    with pytest.raises(ValueError, match="set by build_message itself"):
        build(extra_headers={name: "x@example.com"})


@pytest.mark.parametrize("name", ["X Campaign", "X:Campaign", "", "X-Caf\u00e9"])
def test_extra_header_names_must_be_header_names(name: str) -> None:
    with pytest.raises(ValueError, match="is not a header name"):
        build(extra_headers={name: "v"})


# -- header injection -----------------------------------------------------------------------------

BREAKS = ["\r", "\n", "\r\n", "\0", "\u2028", "\x85", "\v"]
FIELDS = {
    "subject": ("Subject", "Hello{}Bcc: victim@example.com"),
    "from_name": ("From", "Alex{}Bcc: victim@example.com"),
    "to_name": ("To", "Jane{}Bcc: victim@example.com"),
    "from_address": ("From", "alex@outreach.example.com{}Bcc: victim@example.com"),
    "to_address": ("To", "jane@client.example{}Bcc: victim@example.com"),
    "message_id": ("Message-ID", "<a@outreach.example.com>{}Bcc: victim@example.com"),
    "in_reply_to": ("In-Reply-To", "<a@example.com>{}Bcc: victim@example.com"),
    "list_unsubscribe_url": ("List-Unsubscribe", "https://x.example/u{}Bcc: victim@example.com"),
    "list_unsubscribe_mailto": ("List-Unsubscribe", "mailto:u@x.example{}Bcc: victim@example.com"),
}


@pytest.mark.parametrize("line_break", BREAKS, ids=[repr(b) for b in BREAKS])
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_line_break_in_any_header_value_is_refused(field: str, line_break: str) -> None:
    header, template = FIELDS[field]
    with pytest.raises(HeaderInjectionError) as info:
        build(**{field: template.format(line_break)})
    assert info.value.header == header
    assert str(info.value) == f"refused: line break or NUL in the {header} header"


@pytest.mark.parametrize("line_break", BREAKS, ids=[repr(b) for b in BREAKS])
def test_a_line_break_in_references_or_extra_headers_is_refused(line_break: str) -> None:
    with pytest.raises(HeaderInjectionError, match="References"):
        build(references=("<a@example.com>", f"<b@example.com>{line_break}Bcc: v@example.com"))
    with pytest.raises(HeaderInjectionError, match="X-Campaign"):
        build(extra_headers={"X-Campaign": f"spring{line_break}Bcc: v@example.com"})
    with pytest.raises(HeaderInjectionError) as info:
        build(extra_headers={f"X-Campaign{line_break}Bcc": "v@example.com"})
    assert "\n" not in str(info.value) and "\r" not in str(info.value)


@pytest.mark.parametrize(
    "address",
    ["jane@client.example, victim@example.com", "<victim@example.com>jane@client.example", "jane client@example.com",
     "jane@@client.example", "jane", "@client.example", "jane@", "jane@client.example (x)", '"j@ne"@client.example'],
)
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match=r"^To: .* is not an address$"):
        build(to_address=address)
    with pytest.raises(ValueError, match=r"^From: .* is not an address$"):
        build(from_address=address)


def test_a_display_name_with_an_address_in_it_stays_a_display_name() -> None:
    back = parsed(build(to_name="Jane <victim@example.com>, Bob"))
    assert [a.addr_spec for a in back["To"].addresses] == ["jane@client.example"]
    assert back["To"].addresses[0].display_name == "Jane <victim@example.com>, Bob"


# -- encoding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_name", "to_name", "subject"),
    [
        ("Jörg Müller-Lüdenscheidt", "Zoë Ångström", "Grüße aus München"),
        ("Алексей", "山田 太郎", "Вопрос про 山田 — 😀"),
        ("O'Brien, \"The\" Boss", "Doe; Jane", "A subject that is long enough to need folding across more than one line "
         "of the header block, with ümlauts near the end: äöü ÄÖÜ ß"),
    ],
)
def test_non_ascii_names_and_subjects_round_trip(from_name: str, to_name: str, subject: str) -> None:
    message = build(from_name=from_name, to_name=to_name, subject=subject)
    raw = message.as_bytes()
    assert raw.isascii()  # RFC 2047 words, not raw UTF-8, in the headers
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"))
    back = parsed(message)
    assert back["Subject"] == subject
    assert back["From"].addresses[0].display_name == from_name
    assert back["From"].addresses[0].addr_spec == "alex@outreach.example.com"
    assert back["To"].addresses[0].display_name == to_name
    assert back["To"].addresses[0].addr_spec == "jane@client.example"


def test_an_idn_domain_is_sent_as_punycode() -> None:
    back = parsed(build(to_address="kim@bücher.example"))
    assert back["To"].addresses[0].addr_spec == "kim@xn--bcher-kva.example"


def test_a_non_ascii_local_part_is_refused() -> None:
    with pytest.raises(ValueError, match="non-ASCII part before the @"):
        build(to_address="jörg@client.example")


def test_non_ascii_body_round_trips() -> None:
    back = parsed(build(text="Grüße, Jörg — 😀\n"))
    assert content(back) == "Grüße, Jörg — 😀\n"


# -- HTML ----------------------------------------------------------------------------------------------


def test_html_makes_multipart_alternative() -> None:
    message = build(html="<p>Hi Jane, <b>short</b> question.</p>\n")
    back = parsed(message)
    assert back.get_content_type() == "multipart/alternative"
    parts = list(back.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert content(parts[0]) == "Hi Jane,\n\nshort question.\n"
    assert content(parts[1]) == "<p>Hi Jane, <b>short</b> question.</p>\n"
    assert back["Subject"] == "Quick question about Acme"


def test_the_same_message_is_the_same_bytes() -> None:
    # The boundary comes from the Message-ID, not from the global random module.
    assert build(html="<p>x</p>").as_bytes() == build(html="<p>x</p>").as_bytes()
    other = build(html="<p>x</p>", message_id=make_message_id("outreach.example.com", "other"))
    assert other.get_boundary() != build(html="<p>x</p>").get_boundary()


# -- the wire form ------------------------------------------------------------------------------


def test_a_long_unsubscribe_url_stays_a_literal_link_on_the_wire() -> None:
    """It used to come out as RFC 2047 encoded words (the stock policy re-folds any line over
    78 characters), which no provider reads as a List-Unsubscribe link."""
    from datetime import UTC, datetime
    from email import message_from_bytes, policy

    from aicmo_actors.gateways.mail_message import build_message, wire_bytes

    url = "https://unsubscribe.a-rather-long-agency-domain.example.com/u/AQAAAAAAAeJAKPikkOUdM9-tc17RyyIGsw"
    mailto = "mailto:alex@outreach.example.com?subject=unsubscribe"
    refs = tuple(f"<{n:016x}.{n}.1@outreach.example.com>" for n in range(4))
    msg = build_message(
        from_address="alex@outreach.example.com", to_address="lead@example.com", subject="Hi", text="x",
        message_id="<m.1@outreach.example.com>", date=datetime(2026, 3, 2, tzinfo=UTC),
        in_reply_to=refs[-1], references=refs, list_unsubscribe_url=url, list_unsubscribe_mailto=mailto,
    )
    raw = wire_bytes(msg)
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]  # no encoded words anywhere in the header
    assert f"<{url}>".encode() in raw
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    again = message_from_bytes(raw, policy=policy.default)
    assert str(again["List-Unsubscribe"]) == f"<{url}>, <{mailto}>"
    assert str(again["References"]).split() == list(refs)
    assert str(again["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_short_header_lists_stay_on_one_line_and_long_ones_fold_between_items() -> None:
    from aicmo_actors.gateways.mail_message import _fold_list

    assert _fold_list(["<a>", "<b>"], ", ") == "<a>, <b>"
    folded = _fold_list([f"<{'x' * 40}>", f"<{'y' * 40}>"], ", ")
    assert folded == f"<{'x' * 40}>,\n <{'y' * 40}>"
