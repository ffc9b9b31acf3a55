"""Outbound messages: threading, unsubscribe headers, encoding, and no header injection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from aicmo_actors.gateways.mail_message import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_SUBJECT_CHARS,
    WIRE_POLICY,
    HeaderInjectionError,
    _check_header_block,
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
    [
        ("", "x"),
        ("a b.example", "x"),
        ("<example.com>", "x"),
        ("x@example.com", "x"),
        ("example.com", ""),
        ("example.com", "a b"),
        ("example.com", "a>b"),
        ("example.com", "a@b"),
    ],
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
    back = parsed(
        build(
            subject="Re: Quick question about Acme",
            in_reply_to=in_reply_to,
            references=references,
            message_id=make_message_id("outreach.example.com", "s3"),
        )
    )
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


@pytest.mark.parametrize(
    "name", ["From", "to", "SUBJECT", "Message-ID", "References", "List-Unsubscribe", "Content-Type"]
)
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
    [
        "jane@client.example, victim@example.com",
        "<victim@example.com>jane@client.example",
        "jane client@example.com",
        "jane@@client.example",
        "jane",
        "@client.example",
        "jane@",
        "jane@client.example (x)",
        '"j@ne"@client.example',
    ],
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
        (
            'O\'Brien, "The" Boss',
            "Doe; Jane",
            "A subject that is long enough to need folding across more than one line "
            "of the header block, with ümlauts near the end: äöü ÄÖÜ ß",
        ),
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
        from_address="alex@outreach.example.com",
        to_address="lead@example.com",
        subject="Hi",
        text="x",
        message_id="<m.1@outreach.example.com>",
        date=datetime(2026, 3, 2, tzinfo=UTC),
        in_reply_to=refs[-1],
        references=refs,
        list_unsubscribe_url=url,
        list_unsubscribe_mailto=mailto,
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


# -- encoded words and line limits ------------------------------------------------------------------
#
# The email package decodes RFC 2047 words in what it is given (CPython 3.11 then wrote a CR/LF
# hidden in one straight onto the wire): text that looks like an encoded word must arrive as the
# literal text, never decoded into a header of its own.

ENCODED = [
    "=?utf-8?q?a=0D=0ABcc:_victim@evil.example?=",
    "=?UTF-8?Q?a=0ABcc:_victim@evil.example?=",
    "=?utf-8?q?a=00Bcc:_victim@evil.example?=",
    "=?utf-8?q?a=E2=80=A8Bcc:_victim@evil.example?=",
    "=?utf-8?b?YQ0KQmNjOiB2aWN0aW1AZXZpbC5leGFtcGxl?=",  # a\r\nBcc: victim@evil.example
    "=?UTF-8?B?YQ0KUmVwbHktVG86IHhAZXZpbC5leGFtcGxlDQoNCmJvZHk=?=",  # ...Reply-To, a blank line, body
    "Jane =?utf-8*en?q?=0D=0ABcc:_v@evil.example?= Doe",  # RFC 2231 language, mid-text
    '"=?utf-8?q?=0D=0ABcc:_v@evil.example?="',  # the email package decodes inside quotes too
]


def header_block(message: EmailMessage) -> list[bytes]:
    return message.as_bytes().split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def header_names(message: EmailMessage) -> list[str]:
    return [line.split(b":", 1)[0].decode().lower() for line in header_block(message) if line[:1] not in (b" ", b"\t")]


def rfc2047_decoded(message: EmailMessage, name: str) -> str:
    """A header's raw value decoded the way RFC 2047 says (whitespace between words dropped)."""
    raw = next(v for k, v in message_from_bytes(message.as_bytes()).items() if k == name)
    return str(make_header(decode_header(raw)))


@pytest.mark.parametrize("value", ENCODED)
def test_an_encoded_word_in_the_subject_arrives_as_the_literal_text(value: str) -> None:
    message = build(subject=value)
    assert header_names(message) == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
    ]
    assert parsed(message)["Subject"] == value
    assert rfc2047_decoded(message, "Subject") == value


@pytest.mark.parametrize("value", ENCODED)
@pytest.mark.parametrize(
    ("field", "header", "address"),
    [("from_name", "From", "alex@outreach.example.com"), ("to_name", "To", "jane@client.example")],
)
def test_an_encoded_word_in_a_display_name_arrives_as_the_literal_text(
    value: str, field: str, header: str, address: str
) -> None:
    message = build(**{field: value})
    assert "bcc" not in header_names(message) and "reply-to" not in header_names(message)
    back = parsed(message)
    assert [a.addr_spec for a in back[header].addresses] == [address]
    assert rfc2047_decoded(message, header) == f"{value} <{address}>"
    assert parsed(message).get_content_type() == "text/plain" and content(back) == "Hi Jane,\n\nshort question.\n"


@pytest.mark.parametrize("value", ENCODED)
def test_an_encoded_word_in_an_extra_text_header_arrives_as_the_literal_text(value: str) -> None:
    message = build(extra_headers={"X-Campaign": value})
    assert "bcc" not in header_names(message)
    assert parsed(message)["X-Campaign"] == value


def test_an_encoded_word_in_a_structured_extra_header_or_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^Cc: an encoded word \('=\?'\) is not allowed in this header$"):
        build(extra_headers={"Cc": "=?utf-8?q?Boss=0D=0ABcc:_v@evil.example?= <boss@client.example>"})
    for address in [
        "=?utf-8?q?a=0D=0ABcc=3A_v=40evil.example?=@client.example",
        "jane@=?utf-8?q?a=0D=0ABcc=3A_v=40evil.example?=",
    ]:
        with pytest.raises(ValueError, match=r"^To: .*: an encoded word \('=\?'\) cannot be part of an address$"):
            build(to_address=address)


def test_text_without_encoded_words_is_encoded_as_before() -> None:
    """Only text with "=?" takes the literal path: the rest keeps the policy's encoding."""
    raw = build(subject="Grüße", to_name="Zoë").as_bytes()
    assert b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" in raw
    assert b"To: =?utf-8?q?Zo=C3=AB?= <jane@client.example>\r\n" in raw


def test_long_display_names_and_subjects_are_cut_and_no_line_passes_998_octets() -> None:
    for filler in ("x", "é", "=?"):
        message = build(from_name=filler * 20_000, to_name=filler * 20_000, subject=filler * 20_000)
        assert all(len(line) <= 998 for line in header_block(message))
        back = parsed(message)
        # Python's reader leaves a space between encoded words in a display name: compare without.
        assert back["From"].addresses[0].display_name.replace(" ", "") == (filler * 20_000)[:MAX_DISPLAY_NAME_CHARS]
        assert back["To"].addresses[0].display_name.replace(" ", "") == (filler * 20_000)[:MAX_DISPLAY_NAME_CHARS]
        assert back["Subject"] == (filler * 20_000)[:MAX_SUBJECT_CHARS]


def test_an_injection_past_the_cut_is_still_refused() -> None:
    with pytest.raises(HeaderInjectionError, match="Subject"):
        build(subject="x" * 20_000 + "\r\nBcc: victim@example.com")


@pytest.mark.parametrize(
    ("overrides", "header"),
    [
        ({"to_address": "j" * 2_000 + "@client.example"}, "To"),
        ({"message_id": "<" + "m" * 2_000 + "@outreach.example.com>"}, "Message-ID"),
        ({"extra_headers": {"Cc": "c" * 2_000 + "@client.example"}}, "Cc"),
        ({"list_unsubscribe_url": "https://x.example/u/" + "t" * 2_000}, "List-Unsubscribe"),
    ],
)
def test_a_header_line_over_998_octets_is_refused(overrides: dict[str, Any], header: str) -> None:
    with pytest.raises(ValueError, match=rf"^{header}: a header line of \d+ octets \(at most 998 are allowed\)$"):
        build(**overrides)


def test_the_header_block_check_catches_what_the_email_package_decoded() -> None:
    """The read-back behind the input checks: fed to the email package directly (as
    build_message never does), decoded line breaks are caught, on the header or on the wire."""
    cases: list[tuple[str, Any, bool]] = [
        ("Subject", "=?utf-8?q?a=0D=0ABcc:_victim@evil.example?=", False),
        ("Subject", "=?utf-8?q?a=E2=80=A8b?=", False),
        # An Address is printed and parsed again (decoding the word) only when folded.
        ("To", Address("=?utf-8?q?a=0D=0ABcc:_x@evil.example?=", "jane", "client.example"), False),
        ("Content-Disposition", "attachment; filename*=utf-8''a%0D%0ABcc%3A%20x", False),
        ("X-Raw", "a\nBcc: victim@evil.example", True),
        ("X-Raw", "a\n \nbody", True),
        ("X-Raw", "a\x00b", True),
    ]
    for name, value, raw in cases:
        msg = EmailMessage(policy=WIRE_POLICY)
        if raw:
            msg.set_raw(name, value)
        else:
            msg[name] = value
        with pytest.raises(HeaderInjectionError) as info:
            _check_header_block(msg)
        assert info.value.header == name
    msg = EmailMessage(policy=WIRE_POLICY)
    msg.set_raw("X-Raw", "x" * 1_000)
    with pytest.raises(ValueError, match=r"^X-Raw: a header line of 1007 octets"):
        _check_header_block(msg)


def test_hostile_headers_keep_the_same_bytes_for_the_same_input() -> None:
    kwargs = {"subject": ENCODED[0], "to_name": ENCODED[4], "from_name": "x" * 5_000, "html": "<p>x</p>"}
    assert build(**kwargs).as_bytes() == build(**kwargs).as_bytes()


# -- the written-as-composed paths --------------------------------------------------------------------


def _policy_written(name: str, value: str) -> str:
    """What the email package itself writes for a header (the path the fast one must match)."""
    folded = WIRE_POLICY.header_factory(name, value).fold(policy=WIRE_POLICY)
    return folded.removeprefix(f"{name}:").removeprefix(" ").removesuffix("\r\n")


@pytest.mark.parametrize("seed", range(4))
def test_headers_written_as_composed_are_what_the_policy_writes(seed: int) -> None:
    """Plain ASCII names and subjects are written without the policy's parse (`set_raw`): what
    is stored must be what the policy writes for the same input, whichever path wrote it."""
    import random

    rng = random.Random(seed)
    names = [
        "Alex Berger",
        "Dr. Who",
        "O'Brien, Pat",
        "A.B.",
        "x@y",
        "Mary-Jane  Watson",
        "trail ",
        "",
        "Zoë",
        "Tab\tName",
        "semi;colon",
        'Quote "me"',
        "a" * 90,
        "Anne-Marie d'Arc",
        "Jo+Bo",
        "#1 {fan}",
    ]
    subjects = [
        "Quick question about Acme",
        "Re: Quick question",
        "50% off; (really)",
        "semi;colon: yes",
        "  spaced  out ",
        "Grüße",
        "word " * 20,
        "Tab\there",
        "",
        "a" * 69,
        "a" * 70,
        "Hello <b>",
        "x,y",
    ]
    for _ in range(80):
        name, subject = rng.choice(names), rng.choice(subjects)
        local = rng.choice(["jane", "j.o.h.n+tag", "a_b-c", "o'neil"])
        message = build(to_name=name, to_address=f"{local}@client.example", subject=subject)
        stored = dict(message.raw_items())
        address = str(Address(display_name=name, username=local, domain="client.example"))
        assert stored["To"] == _policy_written("To", address), (name, local)
        assert stored["Subject"] == _policy_written("Subject", subject), subject
        back = parsed(message)
        assert back["To"].addresses[0].addr_spec == f"{local}@client.example"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short\n",
        "no newline at the end",
        "A long line that goes on " * 10 + "\n\nBest,\nAlex\n",
        "Grüße, Jörg\n",
        "Grüße, Jörg, " * 20 + "\n",  # long and non-ASCII: base64 beats quoted-printable
        "x" * 1200,
        "dots\n.\n..\nFrom me\n",
        "cr\rand crlf\r\nlines\n",
    ],
)
def test_bodies_written_as_composed_decode_to_the_text(text: str) -> None:
    for html in (None, "<p>" + text + "</p>"):
        back = parsed(build(text=text, html=html))
        plain = back.get_body(("plain",))
        assert plain is not None
        expected = "\n".join(text.splitlines()) + "\n"
        assert content(plain) == expected
        assert all(len(line) <= 78 for line in back.as_bytes().split(b"\r\n")[1:] if not line.startswith(b"References"))


@pytest.mark.parametrize("seed", range(3))
def test_wire_bytes_are_what_the_generator_writes(seed: int) -> None:
    """`wire_bytes` writes our own messages without the generator; the bytes must be the
    generator's, and anything else (an attachment added later) still goes through it."""
    import random

    from aicmo_actors.gateways.mail_message import wire_bytes

    rng = random.Random(seed)
    texts = ["Hi,\n\nshort.\n", "Grüße, Jörg\n", "A long line " * 20 + "\n", "Ünïcödé " * 30, "", "cr\rlf\r\n.\n"]
    names = ["Alex Berger", "O'Brien, Pat", "Zoë", "", "=?utf-8?q?x?="]
    for number in range(40):
        message = build(
            to_name=rng.choice(names),
            subject=rng.choice(["Quick question", "Grüße aus Berlin", "word " * 30, "=?utf-8?b?eA==?="]),
            text=rng.choice(texts),
            html=rng.choice([None, "<p>" + rng.choice(texts) + "</p>"]),
            references=tuple(make_message_id("outreach.example.com", f"r{n}") for n in range(rng.randrange(4))),
            list_unsubscribe_url=rng.choice([None, URL + "x" * rng.randrange(200)]),
            list_unsubscribe_mailto=rng.choice([None, MAILTO]),
            extra_headers=rng.choice([None, {"X-Campaign": "spring"}, {"X-Note": "Grüße"}]),
            message_id=make_message_id("outreach.example.com", f"m{seed}.{number}"),
        )
        assert wire_bytes(message) == message.as_bytes(policy=WIRE_POLICY)
        if number % 5 == 0:
            message.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename="a.pdf")
            assert wire_bytes(message) == message.as_bytes(policy=WIRE_POLICY)
            assert b"a.pdf" in wire_bytes(message)
