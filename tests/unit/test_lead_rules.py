"""The lead state machine (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aicmo_actors.cam.lead_rules import (
    IllegalTransition,
    LeadView,
    check_transition,
    decide_reply,
    decide_send_failure,
)
from contracts.cam import BounceReason, Classification, LeadState, ReplyCategory

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
ACTIVE = LeadView(LeadState.ACTIVE)


def c(category: ReplyCategory, **kw: object) -> Classification:
    return Classification(category=category, confidence=kw.pop("confidence", 0.9), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("category", "state", "alert"),
    [
        (ReplyCategory.INTERESTED, LeadState.REPLIED, "interested"),
        (ReplyCategory.MEETING_REQUEST, LeadState.REPLIED, "meeting_request"),
        (ReplyCategory.QUESTION, LeadState.REPLIED, "question"),
        (ReplyCategory.REFERRAL, LeadState.REPLIED, "referral"),
        (ReplyCategory.NOT_INTERESTED, LeadState.NOT_INTERESTED, None),
    ],
)
def test_human_replies_stop_the_sequence(category: ReplyCategory, state: LeadState, alert: str | None) -> None:
    d = decide_reply(ACTIVE, c(category), NOW)
    assert d.new_state is state and d.stop_sequence and d.alert == alert and d.human_reply


def test_low_confidence_other_alerts_and_high_confidence_other_does_not() -> None:
    assert decide_reply(ACTIVE, c(ReplyCategory.OTHER, confidence=0.3), NOW).alert == "unclear_reply"
    high = decide_reply(ACTIVE, c(ReplyCategory.OTHER, confidence=0.9), NOW)
    assert high.alert is None and high.new_state is LeadState.REPLIED


def test_a_delivery_report_is_not_a_reply() -> None:
    d = decide_reply(ACTIVE, c(ReplyCategory.OTHER, reason="dsn_delivered"), NOW)
    assert d.new_state is None and not d.stop_sequence


@pytest.mark.parametrize("category", [ReplyCategory.UNSUBSCRIBE, ReplyCategory.COMPLAINT])
def test_unsubscribe_and_complaint_suppress(category: ReplyCategory) -> None:
    d = decide_reply(LeadView(LeadState.REPLIED), c(category), NOW)
    assert d.new_state is LeadState.UNSUBSCRIBED and d.suppress


def test_hard_bounce_ends_and_suppresses() -> None:
    d = decide_reply(ACTIVE, c(ReplyCategory.BOUNCE_HARD, reason="user_unknown"), NOW)
    assert d.new_state is LeadState.BOUNCED and d.suppress == "hard bounce"


def test_soft_bounces_retry_then_the_third_counts_as_hard() -> None:
    soft = c(ReplyCategory.BOUNCE_SOFT, reason="mailbox_full")
    first = decide_reply(LeadView(LeadState.ACTIVE, soft_bounces=0), soft, NOW)
    assert first.new_state is None and first.retry_step_at == NOW + timedelta(days=1) and first.count_soft_bounce
    third = decide_reply(LeadView(LeadState.ACTIVE, soft_bounces=2), soft, NOW)
    assert third.new_state is LeadState.BOUNCED and third.suppress


def test_sending_side_rejections_never_touch_the_lead() -> None:
    for reason in ("blocked", "spam_detected", "policy", "auth_failure"):
        d = decide_reply(
            LeadView(LeadState.ACTIVE, soft_bounces=5),
            c(ReplyCategory.BOUNCE_SOFT, reason=reason, sending_side=True),
            NOW,
        )
        assert d.new_state is None and d.sending_side and not d.count_soft_bounce and d.suppress is None


def test_auto_reply_pauses_until_the_return_date_or_a_week() -> None:
    d = decide_reply(ACTIVE, c(ReplyCategory.AUTO_REPLY, return_date=date(2026, 3, 20)), NOW)
    assert d.new_state is LeadState.PAUSED and d.resume_at == datetime(2026, 3, 20, 9, 30, tzinfo=UTC)
    d = decide_reply(ACTIVE, c(ReplyCategory.AUTO_REPLY), NOW)
    assert d.resume_at == NOW + timedelta(days=7)
    past = decide_reply(ACTIVE, c(ReplyCategory.AUTO_REPLY, return_date=date(2026, 3, 1)), NOW)
    assert past.resume_at == NOW + timedelta(days=7)
    done = decide_reply(LeadView(LeadState.REPLIED), c(ReplyCategory.AUTO_REPLY), NOW)
    assert done.new_state is None


def test_illegal_transitions_are_refused() -> None:
    check_transition(LeadState.ACTIVE, LeadState.PAUSED)
    with pytest.raises(IllegalTransition, match="from unsubscribed to active"):
        check_transition(LeadState.UNSUBSCRIBED, LeadState.ACTIVE)
    with pytest.raises(IllegalTransition):
        check_transition(LeadState.BOUNCED, LeadState.REPLIED)
    # an unsubscribed lead that writes back stays unsubscribed
    assert decide_reply(LeadView(LeadState.UNSUBSCRIBED), c(ReplyCategory.INTERESTED), NOW).new_state is None


def test_send_time_refusals_use_the_same_logic() -> None:
    hard = decide_send_failure(ACTIVE, BounceReason.USER_UNKNOWN, True, False, NOW)
    assert hard.new_state is LeadState.BOUNCED
    blocked = decide_send_failure(ACTIVE, BounceReason.BLOCKED, False, True, NOW)
    assert blocked.new_state is None and blocked.sending_side
