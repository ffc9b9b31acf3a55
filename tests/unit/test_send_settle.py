"""The sender's settling of one attempt's result, and the auto-pause verdicts: pure, table by table."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import pytest

from aicmo_actors.cam import texts
from aicmo_actors.cam.campaign import parse_campaign
from aicmo_actors.cam.decision import PausePolicy, campaign_verdict, mailbox_verdict
from aicmo_actors.cam.repos import Figures, Finished, OutboundJob, SendFailure
from aicmo_actors.cam.sender import Retry, settle
from aicmo_actors.gateways.transport import SendResult
from contracts.cam import BounceReason, OutboundStatus

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SPEC = parse_campaign(
    """
name = "c"
timezone = "UTC"
postal_address = "Agency Ltd, 1 Road, Town"
[[mailboxes]]
address = "alex@outreach.example.com"
[[steps]]
subject = "Hello"
body = "One"
"""
)


def job(attempts: int = 1) -> OutboundJob:
    return OutboundJob(
        outbound_id=3,
        lead_id=7,
        campaign="c",
        step=1,
        variant="A",
        mailbox="alex@outreach.example.com",
        display_name=None,
        transport="default",
        recipient="p@prospect.example",
        recipient_name=None,
        message_id="<m@outreach.example.com>",
        thread_ids=(),
        first_subject="",
        attempts=attempts,
        spec=SPEC,
        lead_fields={},
    )


def run(result: SendResult, attempts: int = 1) -> Finished | Retry | SendFailure:
    return settle(job(attempts), result, NOW, subject="Hello", max_attempts=3, retry_base_s=300)


def test_accepted_is_sent_with_the_servers_answer() -> None:
    settled = run(SendResult("accepted", 250, "2.0.0 Ok: queued as ABC"))
    assert isinstance(settled, Finished)
    assert (settled.status, settled.subject, settled.at) == (OutboundStatus.SENT, "Hello", NOW)
    assert settled.reply is not None and settled.reply.code == 250


def test_unconfirmed_is_never_retried() -> None:
    settled = run(SendResult("unconfirmed", None, "connection lost after DATA", stage="data"), attempts=1)
    assert isinstance(settled, Finished) and settled.status is OutboundStatus.UNCONFIRMED
    assert settled.error == "data: connection lost after DATA"


@pytest.mark.parametrize(("attempts", "delay_s"), [(1, 300), (2, 600)])
def test_a_temporary_refusal_with_attempts_left_is_retried_with_doubling_delays(attempts: int, delay_s: float) -> None:
    settled = run(SendResult("temporary", 451, "4.7.1 Greylisted, try again later", stage="rcpt"), attempts)
    assert isinstance(settled, Retry)
    assert (settled.delay_s, settled.at) == (delay_s, NOW + timedelta(seconds=delay_s))
    assert settled.reply.code == 451 and settled.reply.stage == "rcpt"


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (SendResult("temporary", None, "Connection refused", stage="connect"), BounceReason.EXPIRED),
        (
            SendResult("temporary", 421, "4.7.0 Too many connections, slow down", stage="connect"),
            BounceReason.RATE_LIMITED,
        ),
    ],
)
def test_a_temporary_refusal_out_of_attempts_fails_as_expired_unless_the_reply_says_more(
    result: SendResult, reason: BounceReason
) -> None:
    settled = run(result, attempts=3)
    assert isinstance(settled, SendFailure)
    assert (settled.permanent, settled.hard, settled.reason) == (False, False, reason)


@pytest.mark.parametrize(
    ("code", "text", "hard", "reason", "sending_side"),
    [
        (
            550,
            "5.1.1 <p@prospect.example>: Recipient address rejected: User unknown",
            True,
            BounceReason.USER_UNKNOWN,
            False,
        ),
        (
            554,
            "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            False,
            BounceReason.BLOCKED,
            True,
        ),
    ],
)
def test_a_permanent_refusal_is_judged_like_a_bounce(
    code: int, text: str, hard: bool, reason: BounceReason, sending_side: bool
) -> None:
    settled = run(SendResult("permanent", code, text, stage="rcpt"))
    assert isinstance(settled, SendFailure)
    assert settled.permanent and (settled.hard, settled.reason, settled.sending_side) == (hard, reason, sending_side)
    assert settled.reply.reason == reason.value


# -- the auto-pause verdicts -----------------------------------------------------------------------
POLICY = PausePolicy(
    hard_bounce_rate=0.03, complaint_rate=0.003, min_sends=50, mailbox_rejections=3, mailbox_window_s=3600
)


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        (Figures(attempted=49, hard_bounces=49), None),  # too few sends to judge
        (Figures(attempted=100, hard_bounces=3), None),  # 3.0% is not over 3%
        (Figures(attempted=100, hard_bounces=4), "hard-bounce rate 4.0% (4/100 attempted) is over 3.0%"),
        (Figures(attempted=1000, complaints=3), None),
        (Figures(attempted=1000, complaints=4), "complaint rate 0.40% (4/1000 attempted) is over 0.30%"),
        (Figures(attempted=100, hard_bounces=4, complaints=10), "hard-bounce rate 4.0% (4/100 attempted) is over 3.0%"),
    ],
)
def test_campaign_verdict(figures: Figures, expected: str | None) -> None:
    assert campaign_verdict(figures, POLICY) == expected


def test_mailbox_verdict_counts_only_the_window() -> None:
    old = NOW - timedelta(hours=2)
    recent = [NOW - timedelta(minutes=m) for m in (30, 20)]
    assert mailbox_verdict(deque([old, *recent]), NOW, POLICY) is None  # the old one is outside the hour
    assert (
        mailbox_verdict(deque([old, *recent, NOW]), NOW, POLICY)
        == "3 sending-side rejections (blocked/spam/policy/auth) within 1 h"
    )


# -- the words -------------------------------------------------------------------------------------
def test_a_follow_up_without_a_subject_answers_the_first() -> None:
    assert texts.follow_up_subject("Quick question") == "Re: Quick question"
    assert texts.follow_up_subject("RE: Quick question") == "RE: Quick question"
    assert texts.follow_up_subject("") == ""


def test_the_not_built_alert_says_what_happened_and_what_to_do() -> None:
    summary, text = texts.not_built_alert(
        "c", 2, "p@x.example", "'company' is undefined", NOW, "3 emails could not be built"
    )
    assert summary == "campaign c: step 2 could not be built for p@x.example: 'company' is undefined"
    assert "Nothing was sent" in text and "2026-03-02 10:00 UTC" in text and "campaign check" in text
    assert text.endswith("The campaign is paused: 3 emails could not be built")
    assert "paused" not in texts.not_built_alert("c", 2, "p@x.example", "x", NOW, None)[1]


def test_an_unverified_reply_says_nothing_was_changed() -> None:
    summary, text = texts.unverified_alert("interested reply", "Yes please", "p@x.example", "sender")
    assert summary == "interested reply (matched to p@x.example only by its sender address: nothing was changed)"
    assert text.startswith("Yes please\n\n[This message is not tied to an email we sent")
