"""The lead state machine: pure functions from (lead, what happened) to what to do.

States are `contracts.cam.LeadState`. Illegal transitions are refused with
`IllegalTransition`; `decide_*` functions never propose one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.cam import (
    SENDING_SIDE_REASONS,
    BounceReason,
    Classification,
    LeadState,
    ReplyCategory,
)

S = LeadState

#: Which state may follow which. Terminal states (unsubscribed, bounced) lead nowhere.
ALLOWED: dict[LeadState, frozenset[LeadState]] = {
    S.ACTIVE: frozenset(
        {S.ACTIVE, S.PAUSED, S.REPLIED, S.NOT_INTERESTED, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLETED, S.STOPPED}
    ),
    S.PAUSED: frozenset({S.ACTIVE, S.PAUSED, S.REPLIED, S.NOT_INTERESTED, S.UNSUBSCRIBED, S.BOUNCED, S.STOPPED}),
    S.REPLIED: frozenset({S.REPLIED, S.NOT_INTERESTED, S.UNSUBSCRIBED, S.BOUNCED}),
    S.COMPLETED: frozenset({S.COMPLETED, S.REPLIED, S.NOT_INTERESTED, S.UNSUBSCRIBED, S.BOUNCED}),
    S.STOPPED: frozenset({S.STOPPED, S.REPLIED, S.NOT_INTERESTED, S.UNSUBSCRIBED, S.BOUNCED}),
    S.NOT_INTERESTED: frozenset({S.NOT_INTERESTED, S.REPLIED, S.UNSUBSCRIBED}),
    S.UNSUBSCRIBED: frozenset({S.UNSUBSCRIBED}),
    S.BOUNCED: frozenset({S.BOUNCED, S.UNSUBSCRIBED}),
}

#: Categories written by a person: they stop the sequence.
HUMAN_REPLIES = frozenset(
    {
        ReplyCategory.INTERESTED,
        ReplyCategory.MEETING_REQUEST,
        ReplyCategory.QUESTION,
        ReplyCategory.REFERRAL,
        ReplyCategory.NOT_INTERESTED,
        ReplyCategory.UNSUBSCRIBE,
        ReplyCategory.OTHER,
    }
)
#: Categories for which a human is alerted.
ALERT_CATEGORIES = frozenset(
    {
        ReplyCategory.INTERESTED,
        ReplyCategory.MEETING_REQUEST,
        ReplyCategory.QUESTION,
        ReplyCategory.REFERRAL,
    }
)
#: `other` below this confidence is shown to a human too.
LOW_CONFIDENCE = 0.6
#: An auto-reply without a return date pauses the lead this long (AICMO_AUTO_REPLY_PAUSE_S).
DEFAULT_PAUSE = timedelta(days=7)
#: The n-th soft bounce of one address counts as hard (AICMO_SOFT_BOUNCES_AS_HARD).
SOFT_BOUNCES_AS_HARD = 3
#: How long to wait before re-sending a step that soft-bounced (AICMO_SOFT_BOUNCE_RETRY_S).
SOFT_BOUNCE_RETRY = timedelta(days=1)


@dataclass(frozen=True)
class LeadRules:
    """The timings of the lead rules, from settings (the defaults are the constants above)."""

    soft_bounce_retry: timedelta = SOFT_BOUNCE_RETRY
    auto_reply_pause: timedelta = DEFAULT_PAUSE
    soft_bounces_as_hard: int = SOFT_BOUNCES_AS_HARD

    def __post_init__(self) -> None:
        if self.soft_bounces_as_hard < 1:
            raise ValueError("soft_bounces_as_hard must be at least 1")


DEFAULT_RULES = LeadRules()
#: `other` classifications with these reasons are machine notices (a delivery report that
#: says "delivered", a relay notice): they are not replies and change nothing.
MACHINE_NOTICE_PREFIXES = ("dsn_", "delivery_", "relayed", "delivered", "expanded", "unparseable")


class IllegalTransition(ValueError):
    """A state change the lead state machine does not allow."""


def check_transition(old: LeadState, new: LeadState) -> None:
    if new not in ALLOWED[old]:
        raise IllegalTransition(f"lead cannot go from {old.value} to {new.value}")


@dataclass(frozen=True)
class LeadView:
    """What the rules need to know about a lead."""

    state: LeadState
    soft_bounces: int = 0


@dataclass(frozen=True)
class LeadDecision:
    """What to do to a lead. `new_state` None: leave the state alone."""

    new_state: LeadState | None
    cause: str
    #: Clear next_action_at (the sequence stops) or set it (resume at that time).
    stop_sequence: bool = False
    resume_at: datetime | None = None
    #: Suppress the address everywhere, with this reason.
    suppress: str | None = None
    #: Raise an alert of this kind.
    alert: str | None = None
    #: Increment the lead's soft-bounce count.
    count_soft_bounce: bool = False
    #: Re-send the bounced step after this time (soft bounce).
    retry_step_at: datetime | None = None
    #: The failure is a problem of our sending: count it against the mailbox, not the lead.
    sending_side: bool = False
    #: A human answered: also stop the other leads of the same company if the campaign says so.
    human_reply: bool = False


def is_machine_notice(category: str, reason: str | None) -> bool:
    """A machine's notice filed under `other` (a read receipt, "delivered"): not a reply."""
    return category == ReplyCategory.OTHER.value and (reason or "").startswith(MACHINE_NOTICE_PREFIXES)


def _is_machine_notice(c: Classification) -> bool:
    return is_machine_notice(c.category.value, c.reason)


def decide_reply(lead: LeadView, c: Classification, now: datetime, rules: LeadRules = DEFAULT_RULES) -> LeadDecision:
    """What a classified inbound message means for the lead it matched (by our Message-ID,
    return path or token: a match by sender address alone changes nothing, see `cam.followup`)."""
    cat = c.category
    if cat is ReplyCategory.BOUNCE_HARD:
        return _bounce_hard(lead, f"hard bounce ({c.reason or 'unknown'})")
    if cat is ReplyCategory.BOUNCE_SOFT:
        return decide_soft_bounce(lead, _reason(c.reason), c.sending_side, now, rules)
    if cat is ReplyCategory.DELAYED:
        # The server is still trying: not a failure. The email's row records the notice.
        return LeadDecision(None, f"delay notice ({c.reason or 'still being retried'}): nothing to do")
    if cat is ReplyCategory.COMPLAINT:
        return LeadDecision(_terminal(lead, S.UNSUBSCRIBED), "spam complaint", stop_sequence=True, suppress="complaint")
    if cat is ReplyCategory.AUTO_REPLY:
        if lead.state not in (S.ACTIVE, S.PAUSED):
            return LeadDecision(None, "auto-reply after the sequence ended: ignored")
        back = c.return_date
        resume = (
            datetime.combine(back, now.timetz()).replace(tzinfo=now.tzinfo)
            if back is not None and datetime.combine(back, now.timetz()).replace(tzinfo=now.tzinfo) > now
            else now + rules.auto_reply_pause
        )
        return LeadDecision(S.PAUSED, f"auto-reply: paused until {resume.date().isoformat()}", resume_at=resume)
    if _is_machine_notice(c):
        return LeadDecision(None, f"machine notice ({c.reason}): not a reply")
    if cat is ReplyCategory.UNSUBSCRIBE:
        return LeadDecision(
            _terminal(lead, S.UNSUBSCRIBED), "asked to unsubscribe", stop_sequence=True, suppress="unsubscribe reply"
        )
    if cat is ReplyCategory.NOT_INTERESTED:
        new = S.NOT_INTERESTED if S.NOT_INTERESTED in ALLOWED[lead.state] else None
        return LeadDecision(new, "not interested", stop_sequence=True, human_reply=True)
    # interested, meeting_request, question, referral, other: a person wrote back.
    alert = None
    if cat in ALERT_CATEGORIES:
        alert = cat.value
    elif cat is ReplyCategory.OTHER and c.confidence < LOW_CONFIDENCE:
        alert = "unclear_reply"
    new = S.REPLIED if S.REPLIED in ALLOWED[lead.state] else None
    return LeadDecision(new, f"human reply ({cat.value})", stop_sequence=True, alert=alert, human_reply=True)


def decide_soft_bounce(
    lead: LeadView, reason: BounceReason, sending_side: bool, now: datetime, rules: LeadRules = DEFAULT_RULES
) -> LeadDecision:
    """A soft bounce (or a temporary refusal at send time that was given up on)."""
    if sending_side or reason in SENDING_SIDE_REASONS:
        return LeadDecision(
            None, f"rejected for our sending ({reason.value}): counts against the mailbox", sending_side=True
        )
    if lead.soft_bounces + 1 >= rules.soft_bounces_as_hard:
        decision = _bounce_hard(lead, f"soft bounce #{lead.soft_bounces + 1} ({reason.value}) counts as hard")
        return LeadDecision(
            decision.new_state, decision.cause, stop_sequence=True, suppress=decision.suppress, count_soft_bounce=True
        )
    if lead.state not in (S.ACTIVE, S.PAUSED):
        return LeadDecision(None, f"soft bounce ({reason.value}) after the sequence ended", count_soft_bounce=True)
    return LeadDecision(
        None,
        f"soft bounce ({reason.value}): step sent again on {(now + rules.soft_bounce_retry).date().isoformat()}",
        count_soft_bounce=True,
        retry_step_at=now + rules.soft_bounce_retry,
    )


def decide_send_failure(
    lead: LeadView,
    reason: BounceReason,
    hard: bool,
    sending_side: bool,
    now: datetime,
    rules: LeadRules = DEFAULT_RULES,
) -> LeadDecision:
    """A refusal at send time (an SMTP 5xx, or 4xx retries given up), judged by the same reason logic."""
    if hard:
        return _bounce_hard(lead, f"refused at send time ({reason.value})")
    if sending_side or reason in SENDING_SIDE_REASONS:
        # The lead is fine: the step goes out again later (the mailbox may be paused by then).
        return LeadDecision(
            None,
            f"refused for our sending ({reason.value}): "
            f"step tried again on {(now + rules.soft_bounce_retry).date().isoformat()}",
            sending_side=True,
            retry_step_at=now + rules.soft_bounce_retry,
        )
    return decide_soft_bounce(lead, reason, False, now, rules)


def _bounce_hard(lead: LeadView, cause: str) -> LeadDecision:
    return LeadDecision(_terminal(lead, S.BOUNCED), cause, stop_sequence=True, suppress="hard bounce")


def _terminal(lead: LeadView, target: LeadState) -> LeadState | None:
    return target if target in ALLOWED[lead.state] else None


def _reason(value: str | None) -> BounceReason:
    try:
        return BounceReason(value or "undefined")
    except ValueError:
        return BounceReason.UNDEFINED
