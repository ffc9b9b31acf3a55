"""RFC 3464 as real servers write it (issue 21, item 3), and a plain-text marker that was too loose.

The corpus in `corpus/dsn/` is written from RFC 3464's grammar, with the quirks servers add: the
fields of a recipient in any order, a recipient named only by Original-Recipient or by
X-Actual-Recipient, no per-message block, CRLF line ends, extra blank lines and folded fields,
Action values in any case and with words after them, a report forwarded to us or wrapped by a
gateway in a message/rfc822 part. A report of successful delivery is never a bounce. An
out-of-office that says "your message was not delivered to my colleague" is not mail.ru's
bounce. The files sit in a folder of their own so that `test_corpus.py`'s table stays whole.
"""

from __future__ import annotations

import pytest

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.classify.dsn import _action, _field_blocks, notification_text, read_bounce
from aicmo_actors.cam.classify.parse import parse_message
from contracts.cam import ReplyCategory
from tests.unit.classify.test_corpus import CORPUS

DSN_CORPUS = CORPUS / "dsn"

#: file -> (category, reason, failed recipients, enhanced status, our Message-ID found in the report)
EXPECTED: dict[str, tuple[str, str, tuple[str, ...], str | None, str]] = {
    # Status and Diagnostic-Code before Final-Recipient, for both recipients; the text names no reason.
    "dsn_fields_status_first.eml": (
        "bounce_hard",
        "user_unknown",
        ("tomas@harbor.example", "ulla@harbor.example"),
        "5.1.1",
        "<dsn.301.1@outreach.example.com>",
    ),
    # The recipient is named only by Original-Recipient.
    "dsn_original_recipient_only.eml": (
        "bounce_soft",
        "mailbox_full",
        ("petra@lakeside.example",),
        "5.2.2",
        "<dsn.302.1@outreach.example.com>",
    ),
    # Final-Recipient names a local alias ("LOCAL; sales"); X-Actual-Recipient names the address.
    "dsn_x_actual_recipient.eml": (
        "bounce_hard",
        "user_unknown",
        ("ruth@orchard.example",),
        "5.1.1",
        "<dsn.303.1@outreach.example.com>",
    ),
    # The delivery-status part starts with the per-recipient block.
    "dsn_no_per_message_block.eml": (
        "bounce_hard",
        "user_unknown",
        ("sven@quarry.example",),
        "5.1.1",
        "<dsn.304.1@outreach.example.com>",
    ),
    # CRLF, two and three blank lines between blocks, folded Reporting-MTA, Final-Recipient, Diagnostic-Code.
    "dsn_crlf_blank_lines_folded.eml": (
        "bounce_soft",
        "mailbox_full",
        ("uma@willow.example",),
        "5.2.2",
        "<dsn.305.1@outreach.example.com>",
    ),
    # "Action: FAILED" and "Action: Failure".
    "dsn_action_any_case.eml": (
        "bounce_hard",
        "user_unknown",
        ("vera@maple.example", "walt@maple.example"),
        "5.1.1",
        "<dsn.306.1@outreach.example.com>",
    ),
    # "Action: Delayed (will retry)": still being retried.
    "dsn_action_delayed_will_retry.eml": (
        "delayed",
        "mailbox_full",
        ("xena@cedar.example",),
        "4.2.2",
        "<dsn.307.1@outreach.example.com>",
    ),
    # "Relayed", "EXPANDED", "delivered (to mailbox)": every recipient got it; not a bounce.
    "dsn_success_relayed_expanded.eml": (
        "other",
        "delivery_notification",
        (),
        None,
        "<dsn.308.1@outreach.example.com>",
    ),
    # A colleague forwards a Postfix report to us as an attached message/rfc822.
    "dsn_forwarded_bounce.eml": (
        "bounce_hard",
        "user_unknown",
        ("abel@pine.example",),
        "5.1.1",
        "<dsn.309.1@outreach.example.com>",
    ),
    # A scanning gateway wraps the report in a message/rfc822 part of its own notice.
    "dsn_gateway_wrapped.eml": (
        "bounce_soft",
        "blocked",
        ("bea@elm.example",),
        "5.7.1",
        "<dsn.310.1@outreach.example.com>",
    ),
    # "your message was not delivered to my colleague": ordinary prose, not mail.ru's bounce.
    "ooo_not_delivered_to_colleague.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<dsn.311.1@outreach.example.com>",
    ),
}


def _classify(name: str):  # type: ignore[no-untyped-def]
    return classify_message((DSN_CORPUS / name).read_bytes())


def test_every_file_of_the_dsn_corpus_has_an_expectation() -> None:
    assert sorted(p.name for p in DSN_CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dsn_corpus(name: str) -> None:
    category, reason, failed, status, ours = EXPECTED[name]
    c = _classify(name)
    assert c.category == ReplyCategory(category), c.reasons
    assert c.reason == reason, c.reasons
    assert c.failed_recipients == failed, c.reasons
    assert c.status == status, c.reasons
    assert c.in_reply_to == ours, c.reasons
    assert c.confidence >= 0.8


@pytest.mark.parametrize(
    "name",
    [n for n in sorted(EXPECTED) if n.startswith("dsn_") and EXPECTED[n][0] != "other"],
)
def test_the_recipients_are_read_from_the_fields(name: str) -> None:
    """Every failed recipient comes from RFC 3464 fields, with its status and diagnostic, not from prose."""
    msg = parse_message((DSN_CORPUS / name).read_bytes())
    human, fields = notification_text(msg)
    report = read_bounce(msg, human, fields)
    assert report.structured
    for rcpt in report.recipients:
        assert rcpt.from_fields and rcpt.status and rcpt.diagnostic, rcpt


def test_a_wrapped_report_names_the_wrapping_in_its_evidence() -> None:
    c = _classify("dsn_gateway_wrapped.eml")
    assert any("message/rfc822" in r for r in c.reasons)
    assert c.referenced_ids[0] == "<dsn.310.1@outreach.example.com>"
    assert "<dsn310.0@mx.elm.example>" not in c.referenced_ids  # the report's own Message-ID is not ours


def test_a_forwarded_message_that_is_not_a_report_stays_a_reply() -> None:
    raw = (DSN_CORPUS / "dsn_forwarded_bounce.eml").read_bytes()
    start, end = raw.index(b"Return-Path: <>"), raw.index(b"--b309--\n") + len(b"--b309--\n")
    pitch = b"From: Dana <dana@pine.example>\nTo: alex@outreach.example.com\nSubject: Lunch\n\nSee you at noon.\n"
    c = classify_message(raw[:start] + pitch + raw[end:])
    assert c.category not in {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT, ReplyCategory.DELAYED}


# -- the fields of a block ---------------------------------------------------------------------------------
def test_fields_in_any_order_and_without_blank_lines_between_recipients() -> None:
    per_message, blocks = _field_blocks(
        "Reporting-MTA: dns; mx.example\n"
        "Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.1.1\n"
        "Status: 5.2.2\nAction: failed\nFinal-Recipient: rfc822; c@b.example\n"
        "Final-Recipient: rfc822; d@b.example\nAction: delayed\nStatus: 4.4.1\n"
        "Original-Recipient: rfc822; d@b.example\n"
    )
    assert per_message == {"reporting-mta": "dns; mx.example"}
    assert [(b.get("final-recipient"), b.get("status")) for b in blocks] == [
        ("rfc822; a@b.example", "5.1.1"),
        ("rfc822; c@b.example", "5.2.2"),
        ("rfc822; d@b.example", "4.4.1"),
    ]
    assert blocks[2]["original-recipient"] == "rfc822; d@b.example"


def test_a_missing_per_message_block_leaves_no_per_message_fields() -> None:
    per_message, blocks = _field_blocks("\n\nDiagnostic-Code: smtp; 550 No\nFinal-Recipient: rfc822; a@b.example\n")
    assert per_message == {}
    assert blocks == [{"diagnostic-code": "smtp; 550 No", "final-recipient": "rfc822; a@b.example"}]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("failed", "failed"),
        ("Failed", "failed"),
        ("FAILED", "failed"),
        ("failure", "failed"),
        ("delayed (will retry)", "delayed"),
        ("Delayed", "delayed"),
        ("DELIVERED", "delivered"),
        ("delivered (to mailbox)", "delivered"),
        ("Relayed", "relayed"),
        ("relayed;", "relayed"),
        ("expanded", "expanded"),
        ("EXPANDED", "expanded"),
        ("", None),
        ("bogus", "bogus"),
    ],
)
def test_action_values_as_servers_write_them(value: str, expected: str | None) -> None:
    assert _action(value) == expected


@pytest.mark.parametrize("actions", [("Delivered",) * 3, ("RELAYED", "Expanded", "delivered"), ("relayed",) * 3])
def test_a_report_of_successful_delivery_is_never_a_bounce(actions: tuple[str, str, str]) -> None:
    raw = (DSN_CORPUS / "dsn_success_relayed_expanded.eml").read_bytes()
    for old, new in zip(
        (b"Action: Relayed", b"Action: EXPANDED", b"Action: delivered (to mailbox)"), actions, strict=True
    ):
        raw = raw.replace(old, b"Action: " + new.encode())
    c = classify_message(raw)
    assert c.category is ReplyCategory.OTHER, c.reasons
    assert c.reason == "delivery_notification"
    assert not c.failed_recipients


# -- mail.ru's plain text, and prose that only sounds like it ------------------------------------------------
@pytest.mark.parametrize(
    ("name", "category", "reason"),
    [
        ("mailru_russian.eml", "bounce_hard", "user_unknown"),
        ("mailru_user_not_found.eml", "bounce_hard", "user_unknown"),
    ],
)
def test_mail_ru_bounces_keep_their_verdicts(name: str, category: str, reason: str) -> None:
    c = classify_message((CORPUS / name).read_bytes())
    assert (c.category, c.reason) == (ReplyCategory(category), reason), c.reasons


@pytest.mark.parametrize(
    "text",
    [
        "Sorry, your message was not delivered to my colleague; I will pass it on.",
        "I noticed the message was not delivered to anna@fig.example because of a typo, resending.",
        "Ваше сообщение не доставлено коллеге, я перешлю его сама.",  # noqa: RUF001 (Russian prose)
    ],
)
def test_a_person_saying_a_message_was_not_delivered_is_not_a_bounce(text: str) -> None:
    raw = (
        "From: Carla Ruiz <carla@fig.example>\nTo: alex@outreach.example.com\nSubject: Re: Quick question\n"
        "In-Reply-To: <dsn.312.1@outreach.example.com>\nContent-Type: text/plain; charset=utf-8\n\n"
        f"Hi Alex,\n\n{text}\n\nCarla\n"
    ).encode()
    c = classify_message(raw)
    assert c.category not in {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT, ReplyCategory.DELAYED}, c.reasons


# -- linear time: the new reading on hostile text -------------------------------------------------------------
MB = 1_000_000


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "unit",
    [
        b"Status: 5.1.1\n",
        b"Final-Recipient: rfc822; a@b.example\nAction: failed\n",
        b"Original-Recipient: rfc822; a@b.example\nX-Actual-Recipient: rfc822; c@b.example\nStatus: 5.1.1\n",
        b"Action: failed\n\n\n",
        b"Diagnostic-Code: smtp; 550\n ",
    ],
)
def test_hostile_delivery_status_fields_are_read_in_linear_time(unit: bytes) -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\nTo: alex@outreach.example.com\nSubject: Undelivered Mail\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="x"\n\n'
        b"--x\nContent-Type: message/delivery-status\n\n" + unit * (MB // len(unit)) + b"\n--x--\n"
    )
    c = classify_message(raw)
    assert c.category in {
        ReplyCategory.BOUNCE_HARD,
        ReplyCategory.BOUNCE_SOFT,
        ReplyCategory.DELAYED,
        ReplyCategory.OTHER,
    }


@pytest.mark.timeout(20)
@pytest.mark.parametrize("unit", [b"message was not delivered to ", b"a@", b"not delivered to a@b.example ", b"@"])
def test_the_mail_ru_marker_reads_hostile_text_in_linear_time(unit: bytes) -> None:
    raw = b"From: x@y.example\nSubject: Re: hi\n\n" + unit * (MB // len(unit))
    assert classify_message(raw).category is not ReplyCategory.BOUNCE_HARD


@pytest.mark.timeout(20)
def test_messages_nested_past_the_limits_are_read_in_time() -> None:
    head = b"From: a@b.example\nSubject: Fwd\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
    raw = head * 5000 + b"From: c@d.example\nSubject: hi\n\nhello\n"
    c = classify_message(raw)
    assert c.category not in {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT}


def test_a_repeated_field_before_any_address_stays_in_its_block() -> None:
    _per_message, blocks = _field_blocks("\nStatus: 5.1.1\nStatus: 5.2.2\nFinal-Recipient: rfc822; a@b.example\n")
    assert blocks == [{"status": "5.1.1", "final-recipient": "rfc822; a@b.example"}]
