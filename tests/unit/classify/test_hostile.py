"""Hostile input: megabyte-sized messages built to make a careless pattern or parser take
quadratic time (one 150 KB line of letters once took 70 s). Each must be classified well
within the timeout: a quadratic regression takes minutes on a megabyte, so it fails by
timing out, without any timing assertion. (pytest-timeout's signal reaches a running
regular expression: the `re` engine checks for signals.)
"""

from __future__ import annotations

import pytest

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.classify.parse import mailbox_addresses
from contracts.cam import Classification, ReplyCategory

MB = 1_000_000


def _reply(body: bytes, *, headers: bytes = b"", content_type: bytes = b"text/plain; charset=utf-8") -> bytes:
    return (
        b"From: Pat <pat@prospect.example>\nTo: alex@outreach.example.com\nSubject: Re: Quick question\n"
        b"Message-ID: <h1@prospect.example>\nIn-Reply-To: <q.1.1@outreach.example.com>\n"
        + headers
        + b"Content-Type: "
        + content_type
        + b"\n\n"
        + body
    )


def _bounce(text: bytes, *, headers: bytes = b"") -> bytes:
    return (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example>\nTo: alex@outreach.example.com\n"
        b"Subject: Undelivered Mail Returned to Sender\n" + headers + b"Content-Type: text/plain\n\n"
        b"This is the mail system at host mx.example.\n\n" + text
    )


def _many(unit: bytes, size: int = MB) -> bytes:
    return unit * (size // len(unit))


HOSTILE: dict[str, bytes] = {
    # -- one-line bodies: a token that could restart at every position ---------------------------
    "a line of word characters": _reply(_many(b"a")),
    "a line of dots": _reply(_many(b".")),
    "a line of 'a@' without a domain": _reply(_many(b"a@")),
    "an address whose domain never gets a dot": _reply(b"a@" + _many(b"b")),
    "a line of single-letter labels": _reply(b"a@" + _many(b"a.") + b"!"),
    "a line of digits": _reply(_many(b"1")),
    "a line of status-code-like digits": _reply(_many(b"5.5.")),
    "a line of dates": _reply(_many(b"1/")),
    "a line of dashes": _reply(_many(b"-")),
    "a line of underscores": _reply(_many(b"_")),
    "a line of '>' quote markers": _reply(_many(b">")),
    "a line of spaces, then a letter": _reply(_many(b" ") + b"x"),
    "'from' and a line of spaces": _reply(b"from" + _many(b" ") + b"x"),
    "'from:' and a line of spaces": _reply(b"From:" + _many(b" ")),
    "'unsubscribe' and a line of dots": _reply(b"unsubscribe" + _many(b".") + b"x y"),
    "weekdays": _reply(_many(b"monday ")),
    "'back on' without a date": _reply(_many(b"back on ")),
    # -- many short lines --------------------------------------------------------------------------
    "many short lines": _reply(_many(b"a\n")),
    "many '>' lines": _reply(_many(b">\n")),
    "many attribution-like lines": _reply(_many(b"On Mon, 9 Mar 2026 Pat wrote\n")),
    "many Outlook-header-like lines": _reply(_many(b"From: x\n")),
    "many blank lines": _reply(_many(b"\n")),
    # -- HTML: html.parser took minutes on these ------------------------------------------------------
    "HTML: unclosed tags": _reply(_many(b"<a "), content_type=b"text/html"),
    "HTML: tags each on their own line": _reply(_many(b"<x\n"), content_type=b"text/html"),
    "HTML: unclosed attribute quotes": _reply(_many(b"<a b='"), content_type=b"text/html"),
    "HTML: tags of unclosed double quotes": _reply(_many(b'<a "'), content_type=b"text/html"),
    "HTML: a quote left open over many tags": _reply(b'<a "' + _many(b"<b '"), content_type=b"text/html"),
    "HTML: an unclosed comment": _reply(b"<!--" + _many(b"a"), content_type=b"text/html"),
    "HTML: comment openings": _reply(_many(b"<!--"), content_type=b"text/html"),
    "HTML: a script that never ends": _reply(b"<script>" + _many(b"</"), content_type=b"text/html"),
    "HTML: a tag name without end": _reply(b"<" + _many(b"a"), content_type=b"text/html"),
    # -- long header values ------------------------------------------------------------------------------
    "a long subject": b"From: a@b.example\nSubject: " + _many(b"a") + b"\n\nhi",
    "a subject of encoded-word starts": b"From: a@b.example\nSubject: " + _many(b"=?a?q?a") + b"\n\nhi",
    "a subject of 'unsubscribe' and dots": b"From: a@b.example\nSubject: unsubscribe" + _many(b".") + b"x y\n\nhi",
    "a From of word characters": b"From: " + _many(b"a") + b"\nSubject: x\n\nhi",
    "a From of commas": b"From: " + _many(b",") + b"\nSubject: x\n\nhi",
    "a From of quotes": b"From: " + _many(b'"') + b"\nSubject: x\n\nhi",
    "a From of opening parentheses": b"From: " + _many(b"(") + b"\nSubject: x\n\nhi",
    "a From of angle brackets": b"From: " + _many(b"<") + b"\nSubject: x\n\nhi",
    "a To of a hundred thousand addresses": b"From: a@b.example\nTo: " + _many(b"x@y.example, ") + b"\n\nhi",
    "a folded header of many lines": b"From: a@b.example\nSubject: x\n" + b"X-Long: a\n" + _many(b" a\n") + b"\nhi",
    "a Content-Type of many parameters": _reply(b"hi", content_type=b"text/plain; " + _many(b"a=b; ")),
    "a Content-Type of RFC 2231 pieces": _reply(
        b"hi",
        content_type=b"multipart/mixed; " + b"".join(b"b*%d=x; " % i for i in range(MB // 10)),
    ),
    "a Content-Type of parentheses": _reply(b"hi", content_type=b"text/plain; a=" + _many(b"(")),
    "many header fields": _many(b"X-A: b\n") + b"From: a@b.example\n\nhi",
    # -- bounces: the plain-text recipient and report readers ---------------------------------------------
    "bounce: a recipient line and a line of spaces": _bounce(b"<a@b.example>" + _many(b" ") + b"z"),
    "bounce: 'message to' and a line of spaces": _bounce(b"message to" + _many(b" ") + b"("),
    "bounce: Domino 'not delivered to' and '@'s": _bounce(b"was not delivered to: " + _many(b"@") + b"x"),
    "bounce: an inline Message-ID of '@'s": _bounce(b"Message-ID: <" + _many(b"@") + b"x"),
    "bounce: a line of dashes": _bounce(_many(b"-")),
    "bounce: a line of '<'": _bounce(_many(b"<")),
    "bounce: many recipient lines": _bounce(_many(b"a@b.example\n")),
    "bounce: many recipients with their own diagnostics": _bounce(
        b"".join(b"<r%d@b.example>: 550 5.9.%d no such thing %d\n" % (i, i % 100, i) for i in range(MB // 40))
    ),
    "bounce: one recipient named again and again": _bounce(
        b"".join(b"<r@b.example>: 450 4.9.9 attempt %d\n" % i for i in range(MB // 30))
    ),
    "bounce: many X-Failed-Recipients": _bounce(
        b"delivery failed\n",
        headers=b"X-Failed-Recipients: " + b", ".join(b"r%d@b.example" % i for i in range(MB // 16)) + b"\n",
    ),
    "bounce: RFC 3464 with many recipient blocks": (
        b"From: MAILER-DAEMON@mx.example\nTo: alex@outreach.example.com\nSubject: Undelivered Mail\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\n" + _many(b"the report says nothing useful ", MB // 4) + b"\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
        + b"".join(
            b"Final-Recipient: rfc822; r%d@b.example\nAction: failed\nStatus: 5.9.%d\n\n" % (i, i % 100)
            for i in range(MB // 60)
        )
        + b"--b--\n"
    ),
    "complaint: a Hotmail recipient header of '@'s": (
        b"From: staff@hotmail.example\nTo: alex@outreach.example.com\nSubject: complaint\nContent-Type: text/plain\n\n"
        b"This is an email abuse report\nX-HmXmrOriginalRecipient: " + _many(b"@") + b"\n"
    ),
    # -- MIME structure ----------------------------------------------------------------------------------
    "MIME: tens of thousands of tiny parts": (
        b'Content-Type: multipart/mixed; boundary="b"\nFrom: a@b.example\n\n' + _many(b"--b\n\nx\n") + b"--b--\n"
    ),
    "MIME: multiparts nested thousands deep": (
        b"From: a@b.example\n"
        + b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(20_000))
        + b"\nhi"
    ),
    "MIME: messages nested thousands deep": b"From: a@b.example\n" + _many(b"Content-Type: message/rfc822\n\n") + b"hi",
    "MIME: many parts without a Content-Type in a digest": (
        b'Content-Type: multipart/digest; boundary="d"\nFrom: a@b.example\n\n'
        + _many(b"--d\n\nSubject: s\n\nx\n")
        + b"--d--\n"
    ),
    "MIME: a Content-Type folded over many lines": (
        b"From: a@b.example\nContent-Type: multipart/digest;\n" + _many(b" a\n") + b"\nhi\n"
    ),
    "MIME: many boundary-like lines that are not boundaries": (
        b'Content-Type: multipart/mixed; boundary="b"\nFrom: a@b.example\n\n--b\n\n' + _many(b"--c\n") + b"--b--\n"
    ),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_classified_in_linear_time(name: str) -> None:
    raw = HOSTILE[name]
    assert len(raw) > MB // 2
    c = classify_message(raw)
    assert isinstance(c, Classification)
    assert c.category in set(ReplyCategory)
    assert c.reasons


@pytest.mark.timeout(20)
@pytest.mark.parametrize("unit", ['"', "(", "<", ",", "a", "\\", "a@", '"a\\"', "(a\\)", "<a", "a@b.co <"])
def test_address_headers_are_read_in_linear_time(unit: str) -> None:
    assert isinstance(mailbox_addresses(unit * (MB // len(unit)), limit=20), list)


@pytest.mark.timeout(20)
def test_a_bounce_naming_many_recipients_reads_a_hundred_of_them() -> None:
    c = classify_message(HOSTILE["bounce: many recipients with their own diagnostics"])
    assert c.category in {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT}
    assert 0 < len(c.failed_recipients) <= 100
    assert any("more recipients not read" in r for r in c.reasons)


@pytest.mark.timeout(20)
def test_a_long_reply_is_read_from_its_beginning() -> None:
    c = classify_message(_reply(b"Sounds great, tell me more!\n\n" + _many(b"filler words and more filler\n")))
    assert c.category is ReplyCategory.INTERESTED
