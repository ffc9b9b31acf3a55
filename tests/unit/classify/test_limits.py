"""`ParseLimits`: past a limit the classifier reads no further, classifies what it read and
says why; the scan that finds the cut agrees with the stdlib parser on what a part is."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from email.message import Message
from pathlib import Path

import pytest

from aicmo_actors.cam.classify import ParseLimits, classify_message, parse_message
from aicmo_actors.cam.classify.limits import _Scan, bound
from contracts.cam import ReplyCategory

CORPUS = Path(__file__).parent / "corpus"
HEAD = (
    b"From: Pat <pat@prospect.example>\nTo: alex@outreach.example.com\n"
    b"Subject: Re: Quick question\nIn-Reply-To: <q.1.1@outreach.example.com>\n"
)
INTERESTED = b"Sounds great, tell me more!\n"


def _mixed(count: int, first: bytes = INTERESTED) -> bytes:
    """A multipart/mixed message of `count` text parts, the first one saying `first`."""
    parts = (
        b"--b\nContent-Type: text/plain\n\n"
        + first
        + b"".join(b"--b\nContent-Type: text/plain\n\nfiller %d\n" % i for i in range(count - 1))
    )
    return HEAD + b'Content-Type: multipart/mixed; boundary="b"\n\n' + parts + b"--b--\n"


def _nested_multiparts(levels: int) -> bytes:
    """`levels` multiparts one inside the other, the innermost holding the text."""
    head = HEAD
    for level in range(levels):
        head += b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (level, level)
    return head + b"Content-Type: text/plain\n\n" + INTERESTED


def _nested_messages(levels: int) -> bytes:
    return HEAD + b"Content-Type: message/rfc822\n\n" * levels + b"Content-Type: text/plain\n\n" + INTERESTED


def _stdlib_parts(msg: Message) -> int:
    """Entities below the top one, as the stdlib parser built them."""
    return sum(1 for _ in msg.walk()) - 1


def _stdlib_depth(msg: Message) -> int:
    payload = msg.get_payload()
    if not isinstance(payload, list) or not payload:
        return 0
    return 1 + max(_stdlib_depth(p) for p in payload)


# -- the dataclass --------------------------------------------------------------------------------
def test_defaults_and_shape() -> None:
    limits = ParseLimits()
    assert (limits.max_parts, limits.max_depth, limits.max_decoded_bytes) == (200, 20, 25_000_000)
    with pytest.raises(FrozenInstanceError):
        limits.max_parts = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_depth"):
        ParseLimits(max_depth=0)


# -- parts ----------------------------------------------------------------------------------------
def test_two_hundred_parts_are_read_in_full() -> None:
    c = classify_message(_mixed(200))
    assert c.limited is None
    assert c.category is ReplyCategory.INTERESTED


def test_more_parts_are_not_read_and_the_first_ones_decide() -> None:
    c = classify_message(_mixed(201))
    assert c.limited == "more than 200 MIME parts"
    assert "read only in part: more than 200 MIME parts" in c.reasons
    assert c.category is ReplyCategory.INTERESTED
    assert c.in_reply_to == "<q.1.1@outreach.example.com>"


@pytest.mark.timeout(20)
def test_tens_of_thousands_of_tiny_parts_never_reach_the_stdlib_parser() -> None:
    raw = (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\n'
        + INTERESTED
        + b"--b\n\nx\n" * 60_000
        + b"--b--\n"
    )
    bounded = bound(raw, ParseLimits())
    assert bounded.limited == "more than 200 MIME parts"
    assert _stdlib_parts(parse_message(bounded.raw)) == 200
    c = classify_message(raw)
    assert (c.category, c.limited) == (ReplyCategory.INTERESTED, "more than 200 MIME parts")


def test_a_smaller_limit() -> None:
    c = classify_message(_mixed(10), limits=ParseLimits(max_parts=3))
    assert c.limited == "more than 3 MIME parts"
    assert c.category is ReplyCategory.INTERESTED


# -- depth ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [_nested_multiparts, _nested_messages])
def test_twenty_levels_are_read_in_full(build) -> None:  # type: ignore[no-untyped-def]
    raw = build(20)
    assert _stdlib_depth(parse_message(raw)) == 20
    c = classify_message(raw)
    assert c.limited is None
    if build is _nested_multiparts:  # an embedded message is a forward, never the reply's text
        assert c.category is ReplyCategory.INTERESTED


@pytest.mark.parametrize("build", [_nested_multiparts, _nested_messages])
def test_deeper_nesting_is_cut_at_the_limit(build) -> None:  # type: ignore[no-untyped-def]
    raw = build(21)
    bounded = bound(raw, ParseLimits())
    assert bounded.limited == "MIME nesting deeper than 20"
    assert _stdlib_depth(parse_message(bounded.raw)) <= 20
    c = classify_message(raw)
    assert c.limited == "MIME nesting deeper than 20"
    assert "read only in part: MIME nesting deeper than 20" in c.reasons


@pytest.mark.timeout(20)
@pytest.mark.parametrize("build", [_nested_multiparts, _nested_messages])
def test_nesting_thousands_deep_does_not_break_the_parser(build) -> None:  # type: ignore[no-untyped-def]
    c = classify_message(build(5000))
    assert c.limited == "MIME nesting deeper than 20"
    assert c.reason != "unparsable"
    assert c.from_address == "pat@prospect.example"


# -- decoded size ---------------------------------------------------------------------------------
def test_decoded_text_past_the_limit_is_not_read() -> None:
    raw = HEAD + b"Content-Type: text/plain\n\n" + INTERESTED + b"filler line\n" * 5000
    c = classify_message(raw, limits=ParseLimits(max_decoded_bytes=10_000))
    assert c.limited == "decoded text larger than 10000 bytes"
    assert c.category is ReplyCategory.INTERESTED
    bounded = bound(raw, ParseLimits(max_decoded_bytes=10_000))
    assert bounded.raw.endswith(b"\n") or bounded.raw.endswith(b"filler line")
    assert len(bounded.raw) - len(HEAD) < 10_100


def test_base64_counts_what_it_decodes_to() -> None:
    body = b"".join(b"QUJD" * 19 + b"\n" for _ in range(100))  # 7700 bytes that decode to 5700
    raw = HEAD + b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + body
    assert bound(raw, ParseLimits(max_decoded_bytes=6000)).limited is None
    assert bound(raw, ParseLimits(max_decoded_bytes=5000)).limited == "decoded text larger than 5000 bytes"


def test_the_default_limit_is_said_in_megabytes() -> None:
    raw = HEAD + b"Content-Type: text/plain\n\n" + INTERESTED + b"x" * 99 + b"\n"
    assert bound(raw, ParseLimits(max_decoded_bytes=2_000_000)).limited is None
    big = HEAD + b"Content-Type: text/plain\n\n" + (b"x" * 999 + b"\n") * 2100
    assert bound(big, ParseLimits(max_decoded_bytes=2_000_000)).limited == "decoded text larger than 2 MB"


def test_a_limited_bounce_is_still_a_bounce() -> None:
    report = (CORPUS / "postfix_user_unknown.eml").read_bytes()
    c = classify_message(report, limits=ParseLimits(max_parts=1))
    assert c.category is ReplyCategory.BOUNCE_HARD
    assert c.limited == "more than 1 MIME parts"


# -- the scan agrees with the stdlib parser ---------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.eml")))
def test_every_corpus_message_is_within_the_limits_by_a_full_scan(name: str) -> None:
    raw = (CORPUS / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    assert _Scan(raw, ParseLimits()).run().limited is None


STRUCTURES = {
    "mixed with preamble and epilogue": (
        b'Content-Type: multipart/mixed; boundary="x"\n\npreamble\n--x\n\n'
        b"one\n--x\nContent-Type: text/html\n\n<p>two</p>\n--x--\nepilogue\n"
    ),
    "alternative inside mixed, with an attachment": (
        b'Content-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: multipart/alternative; boundary="i"\n\n'
        b"--i\nContent-Type: text/plain\n\nplain\n--i\nContent-Type: text/html\n\n<b>html</b>\n--i--\n"
        b"--o\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nQUJD\n--o--\n"
    ),
    "a forwarded message": (
        b'Content-Type: multipart/mixed; boundary="o"\n\n--o\n\nsee below\n--o\nContent-Type: message/rfc822\n\n'
        b'From: a@b.example\nContent-Type: multipart/alternative; boundary="i"\n\n--i\n\ninner\n--i--\n--o--\n'
    ),
    "a digest": (
        b'Content-Type: multipart/digest; boundary="d"\n\n--d\n\n'
        b"Subject: one\n\n1\n--d\nContent-Type: text/plain\n\n2\n--d--\n"
    ),
    "an outer boundary ends the inner parts": (
        b'Content-Type: multipart/mixed; boundary="o"\n\n--o\n'
        b'Content-Type: multipart/mixed; boundary="i"\n\n--i\n\nnever closed\n--o\n\nafter\n--o--\n'
    ),
    "a boundary with spaces after it and quoted in odd case": (
        b'Content-Type: Multipart/Mixed; BOUNDARY="with space"\n\n--with space  \n\na\n--with space--\n'
    ),
    "an unterminated multipart": b'Content-Type: multipart/mixed; boundary="u"\n\n--u\n\na\n--u\n\nb\n',
    "a multipart without a boundary": b"Content-Type: multipart/mixed\n\n--x\n\na\n--x--\n",
}


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_the_scan_counts_parts_and_depth_as_the_stdlib_parser_builds_them(name: str) -> None:
    raw = b"From: a@b.example\n" + STRUCTURES[name]
    msg = parse_message(raw)
    parts, depth = _stdlib_parts(msg), _stdlib_depth(msg)
    assert bound(raw, ParseLimits(max_parts=max(parts, 1), max_depth=max(depth, 1))).limited is None
    if parts > 1:
        assert _Scan(raw, ParseLimits(max_parts=parts - 1)).run().limited == f"more than {parts - 1} MIME parts"
    if depth > 1:
        assert (
            _Scan(raw, ParseLimits(max_parts=200, max_depth=depth - 1)).run().limited
            == f"MIME nesting deeper than {depth - 1}"
        )
