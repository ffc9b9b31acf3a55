"""Who sent a message (never an address from its display name), where it was delivered, and
the unsubscribe token of our List-Unsubscribe mailto."""

from __future__ import annotations

import pytest

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.classify.parse import mailbox_addresses
from contracts.cam import ReplyCategory

TOKEN = "AQAAAAAAABCSUBHMYf9Tqlr0_fDUSxF5AA"  # 34 URL-safe base64 characters, as we sign them


def message(headers: str, body: str = "Thanks for reaching out.") -> bytes:
    return (headers.strip("\n") + "\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode("utf-8")


# -- from_address -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("from_header", "expected"),
    [
        ('"bystander@gmail.com" <attacker@evil.example>', "attacker@evil.example"),
        ("bystander@gmail.com <attacker@evil.example>", "attacker@evil.example"),
        ("=?utf-8?q?bystander=40gmail.com?= <attacker@evil.example>", "attacker@evil.example"),
        (
            "=?utf-8?q?bystander=40gmail.com_=3Cbystander=40gmail.com=3E?= <attacker@evil.example>",
            "attacker@evil.example",
        ),
        ("attacker@evil.example (bystander@gmail.com)", "attacker@evil.example"),
        ('"Pat, <bystander@gmail.com>" <attacker@evil.example>', "attacker@evil.example"),
        ("Pat Doe <Pat.Doe@Prospect.Example>", "pat.doe@prospect.example"),
        ("pat@prospect.example", "pat@prospect.example"),
        ("<pat@prospect.example>", "pat@prospect.example"),
        ("Jérôme <jerome@prospect.example>", "jerome@prospect.example"),
        ("MAILER-DAEMON@mx.example (Mail Delivery System)", "mailer-daemon@mx.example"),
        # An angle address without a domain is no address; the display name is never used instead.
        ("bystander@gmail.com <MAILER-DAEMON>", None),
        ('"bystander@gmail.com', None),
        ("pat@prospect.example, other@prospect.example", "pat@prospect.example"),
        ("", None),
    ],
)
def test_from_address_is_the_real_address(from_header: str, expected: str | None) -> None:
    c = classify_message(message(f"From: {from_header}\nTo: alex@outreach.example.com\nSubject: Hello"))
    assert c.from_address == expected


def test_from_address_with_8bit_and_folded_headers() -> None:
    raw = b'From: "J\xc3\xa9r\xc3\xb4me, bystander@gmail.com"\n <jerome@prospect.example>\nSubject: x\n\nhi'
    assert classify_message(raw).from_address == "jerome@prospect.example"


def test_mailbox_addresses_reads_each_mailbox_and_stops_at_the_limit() -> None:
    value = '"a, b@c.example" <x@y.example>, z@w.example (Zed), Eve <eve@evil.example>'
    assert mailbox_addresses(value) == ["x@y.example", "z@w.example", "eve@evil.example"]
    assert mailbox_addresses(value, limit=2) == ["x@y.example", "z@w.example"]
    assert mailbox_addresses("Group: a@b.example, c@d.example;") == ["a@b.example", "c@d.example"]


def test_a_huge_address_header_counts_only_mailboxes_that_end_in_what_is_read() -> None:
    value = '"' + "bystander@gmail.com " * 5000 + '" <attacker@evil.example>'
    assert mailbox_addresses(value) == []
    assert mailbox_addresses("first@a.example, " + "x" * 70_000 + " <late@b.example>") == ["first@a.example"]


# -- delivered_to -----------------------------------------------------------------------------------
def test_delivered_to_in_order_lower_case_without_repeats() -> None:
    c = classify_message(
        message(
            "From: pat@prospect.example\n"
            "Delivered-To: Alex+B-K7X2@Outreach.Example.com\n"
            "Delivered-To: alex@outreach.example.com\n"
            "X-Original-To: alex+b-k7x2@outreach.example.com\n"
            "Envelope-To: envelope@outreach.example.com\n"
            "X-Envelope-To: <x-envelope@outreach.example.com>\n"
            'To: "ceo@bank.example" <alex@outreach.example.com>, Team <team@outreach.example.com>\n'
            "Subject: Hello"
        )
    )
    assert c.delivered_to == (
        "alex+b-k7x2@outreach.example.com",
        "alex@outreach.example.com",
        "envelope@outreach.example.com",
        "x-envelope@outreach.example.com",
        "team@outreach.example.com",
    )


def test_delivered_to_keeps_twenty() -> None:
    to = ", ".join(f"r{i}@outreach.example.com" for i in range(50))
    c = classify_message(
        message(f"From: pat@prospect.example\nDelivered-To: first@outreach.example.com\nTo: {to}\nSubject: x")
    )
    assert len(c.delivered_to) == 20
    assert c.delivered_to[:2] == ("first@outreach.example.com", "r0@outreach.example.com")


def test_delivered_to_is_empty_without_those_headers() -> None:
    assert classify_message(message("From: pat@prospect.example\nSubject: x")).delivered_to == ()


# -- unsubscribe_token ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "subject",
    [
        f"unsubscribe {TOKEN}",
        f"Re: unsubscribe {TOKEN}",
        f"unsubscribe: {TOKEN}",
        f"UNSUBSCRIBE   {TOKEN}",
        f"Fwd: Unsubscribe:{TOKEN}",
        "=?utf-8?q?unsubscribe_" + TOKEN.replace("_", "=5F") + "?=",
    ],
)
def test_the_token_in_the_subject(subject: str) -> None:
    c = classify_message(message(f"From: pat@prospect.example\nTo: alex@outreach.example.com\nSubject: {subject}", ""))
    assert (c.category, c.unsubscribe_token) == (ReplyCategory.UNSUBSCRIBE, TOKEN)
    assert c.confidence >= 0.95


@pytest.mark.parametrize(
    "subject",
    [
        f"unsubscribe {TOKEN[:-1]}",
        f"unsubscribe {TOKEN}x",
        f"unsubscribe{TOKEN}",
        f"resubscribe {TOKEN}",
        f"unsubscribe {TOKEN[:-1]}+",
    ],
)
def test_no_token_unless_it_has_the_shape(subject: str) -> None:
    c = classify_message(
        message(f"From: pat@prospect.example\nSubject: {subject}", "Tell me more, sounds interesting.")
    )
    assert c.unsubscribe_token is None


def test_the_token_in_the_first_five_lines_of_the_text() -> None:
    fifth = "\n\nHello\n\nthere\n\nsome\n\nwords\n\nunsubscribe " + TOKEN + "\n"
    c = classify_message(message("From: pat@prospect.example\nSubject: (no subject)", fifth))
    assert (c.category, c.unsubscribe_token) == (ReplyCategory.UNSUBSCRIBE, TOKEN)
    sixth = "one\ntwo\nthree\nfour\nfive\nunsubscribe " + TOKEN + "\n"
    assert classify_message(message("From: pat@prospect.example\nSubject: x", sixth)).unsubscribe_token is None


def test_a_quoted_token_is_not_the_senders() -> None:
    body = f"Sounds great, tell me more!\n\nOn Mon, 9 Mar 2026 Alex wrote:\n> unsubscribe {TOKEN}\n"
    c = classify_message(message("From: pat@prospect.example\nSubject: Re: x", body))
    assert (c.category, c.unsubscribe_token) == (ReplyCategory.INTERESTED, None)


def test_the_token_wins_over_an_auto_reply() -> None:
    c = classify_message(
        message(
            f"From: pat@prospect.example\nSubject: unsubscribe {TOKEN}\nAuto-Submitted: auto-replied",
            "I am out of the office until Monday.",
        )
    )
    assert c.category is ReplyCategory.UNSUBSCRIBE


def test_a_report_stays_a_report_with_a_token_in_its_subject() -> None:
    raw = message(
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example>\nTo: alex@outreach.example.com\n"
        f"Subject: Undelivered Mail Returned to Sender: unsubscribe {TOKEN}",
        "This is the mail system at host mx.example.\n\n<gone@prospect.example>: 550 5.1.1 User unknown\n",
    )
    c = classify_message(raw)
    assert c.category is ReplyCategory.BOUNCE_HARD


@pytest.mark.parametrize("lead_id", [1, 42, 2**63 - 1])
def test_the_token_shape_is_the_one_we_sign(lead_id: int) -> None:
    """The classifier's copy of the token pattern finds exactly what `token_in_subject` does."""
    from aicmo_actors.cam.classify.intent import unsubscribe_token
    from aicmo_actors.cam.unsubscribe import sign_token, token_in_subject, unsubscribe_mailto

    token = sign_token(b"k" * 32, lead_id)
    subject = unsubscribe_mailto("alex@outreach.example.com", token).split("subject=")[1].replace("%20", " ")
    for text in (
        subject,
        f"Re: {subject}",
        f"unsubscribe: {token}",
        f"unsubscribe {token}x",
        f"unsubscribe {token[:-1]}",
    ):
        assert unsubscribe_token(text) == token_in_subject(text)
    assert unsubscribe_token(subject) == token
