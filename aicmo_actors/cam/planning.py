"""The scheduler's planning, pure: what one due lead gets this tick.

`plan_lead` decides for one lead from what the scheduler read (its campaign, whether its
address is suppressed, the paused mailboxes) and the mailbox pacer (which it advances when
it plans a send); `SchedulePlan` collects a batch's decisions, which the outbox repository
writes in one transaction. No database, no clock, no actor: tested table by table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from aicmo_actors.cam.pacing import MailboxPacer
from aicmo_actors.cam.send_rules import bandit_variant, choose_variant, in_window, may_send, next_window_start, zone
from contracts.cam import LeadState

if TYPE_CHECKING:
    from aicmo_actors.cam.repos.campaigns import CampaignRow
    from aicmo_actors.cam.repos.leads import DueLead

#: How long a due lead waits while its sending mailbox is paused before it is looked at again.
MAILBOX_PAUSED_WAIT = timedelta(hours=1)

Outcome = Literal["queued", "deferred", "skipped", "completed", "resumed"]


@dataclass(frozen=True)
class PlannedSend:
    """A step the scheduler decided to send now (send_at None) or at its paced moment."""

    lead_id: int
    campaign_id: int
    campaign: str
    step: int
    variant: str
    mailbox: str
    recipient: str
    message_id: str
    send_at: datetime | None = None
    #: A bandit campaign's lead getting its first variant: recorded, it keeps it (sticky).
    assign: bool = False


@dataclass(frozen=True)
class LeadDeferral:
    """A due lead told to come back at `until` (None: only when something wakes it)."""

    lead_id: int
    until: datetime | None
    why: str


@dataclass(frozen=True)
class LeadPlan:
    """What one due lead gets: `outcome` is the cycle report's count it adds to."""

    outcome: Outcome
    lead_id: int
    deferral: LeadDeferral | None = None
    send: PlannedSend | None = None
    #: "completed", "suppressed" or "resumed": the lead's state changes (see `SchedulePlan`).
    change: Literal["completed", "suppressed", "resumed"] | None = None


@dataclass
class SchedulePlan:
    """What one scheduler pass decided for a batch of due leads, written in one transaction."""

    deferrals: list[LeadDeferral] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    sends: list[PlannedSend] = field(default_factory=list)

    def add(self, decided: LeadPlan) -> None:
        if decided.deferral is not None:
            self.deferrals.append(decided.deferral)
        if decided.send is not None:
            self.sends.append(decided.send)
        if decided.change is not None:
            getattr(self, decided.change).append(decided.lead_id)


def mailbox_for(lead_id: int, mailboxes: list[str]) -> str:
    """A lead always writes from the same mailbox, so its follow-ups stay in one thread."""
    digest = hashlib.sha256(str(lead_id).encode()).digest()
    return mailboxes[int.from_bytes(digest[:4], "big") % len(mailboxes)]


def plan_lead(
    lead: DueLead,
    campaign: CampaignRow | None,
    pacer: MailboxPacer,
    now: datetime,
    horizon: datetime,
    *,
    suppressed: Collection[str],
    paused_mailboxes: Collection[str],
    seed: int,
    message_id: Callable[[int, int, str], str],
    bandit_weights: Mapping[tuple[str, int], Mapping[str, float]] | None = None,
    sticky: Mapping[int, str] | None = None,
) -> LeadPlan:
    """Decide one due lead. A send is planned only if `may_send` allows it now and the
    mailbox's pacing (daily cap, gap and jitter) has room before `horizon` (the next tick);
    the pacer then counts it. `message_id(lead_id, step, mailbox)` makes a new Message-ID.

    A campaign with `[bandit]` chooses the variant by `send_rules.bandit_variant`: the lead's
    first variant (`sticky`, by lead id) where the step has it, else the latest
    `bandit_weights` of (campaign, step), else the file's weights, with the bandit's floor.
    """
    spec = campaign.spec if campaign is not None else None
    next_step = lead.current_step + 1
    has_step = spec is not None and next_step <= len(spec.steps)
    mailbox = lead.mailbox or (
        mailbox_for(lead.lead_id, [m.address for m in spec.mailboxes]) if has_step and spec else ""
    )
    tz = zone(lead.timezone, spec.timezone) if spec is not None else None

    def opens() -> datetime | None:
        if not has_step or spec is None or tz is None or in_window(spec.window, tz, now):
            return None
        return next_window_start(spec.window, tz, now)

    verdict = may_send(
        campaign_active=campaign is not None and campaign.status == "active",
        suppressed=lead.email in suppressed,
        lead_state=lead.state,
        window_opens=opens,
        mailbox_paused=has_step and mailbox in paused_mailboxes,
    )
    if verdict is not None:
        if verdict.kind == "campaign":
            # Paused campaigns keep their leads; they are picked up again on resume.
            return LeadPlan(
                "skipped", lead.lead_id, LeadDeferral(lead.lead_id, None, "waiting: the campaign is paused")
            )
        if verdict.kind == "suppressed":
            return LeadPlan("skipped", lead.lead_id, change="suppressed")
        if verdict.kind == "lead":
            if lead.state is LeadState.PAUSED:
                # The auto-reply's return date has come: the sequence goes on (next batch).
                return LeadPlan("resumed", lead.lead_id, change="resumed")
            # Nothing to send to a lead that is done; off the schedule until something wakes it.
            return LeadPlan("skipped", lead.lead_id, LeadDeferral(lead.lead_id, None, f"waiting: {verdict.why}"))
        if verdict.kind == "window":
            assert verdict.opens is not None
            why = f"waiting: outside the send window, which opens {verdict.opens:%Y-%m-%d %H:%M} UTC"
            return LeadPlan("deferred", lead.lead_id, LeadDeferral(lead.lead_id, verdict.opens, why))
        return LeadPlan(
            "deferred",
            lead.lead_id,
            LeadDeferral(lead.lead_id, now + MAILBOX_PAUSED_WAIT, f"waiting: mailbox {mailbox} is paused"),
        )
    if not has_step or spec is None or tz is None or campaign is None:
        return LeadPlan("completed", lead.lead_id, change="completed")
    campaign_tz = ZoneInfo(spec.timezone)
    limits = spec.limits
    ready = pacer.available_at(mailbox, now, campaign_tz, limits.daily_cap)
    if ready > now and (ready >= horizon or not in_window(spec.window, tz, ready)):
        later = pacer.project(
            mailbox,
            ready,
            campaign_tz,
            limits.daily_cap,
            limits.min_gap_seconds,
            limits.jitter_seconds,
            opens=lambda at: next_window_start(spec.window, campaign_tz, at),
        )
        if not in_window(spec.window, tz, later):
            later = next_window_start(spec.window, tz, later)
        day = MailboxPacer.day_of(ready, campaign_tz)
        why = (
            f"waiting: {mailbox} sent its daily cap of {limits.daily_cap}; its turn {later:%Y-%m-%d %H:%M} UTC"
            if day != MailboxPacer.day_of(now, campaign_tz)
            else f"waiting: {mailbox}'s queue "
            f"(a gap of {limits.min_gap_seconds:g} s between sends); its turn {later:%Y-%m-%d %H:%M} UTC"
        )
        return LeadPlan("deferred", lead.lead_id, LeadDeferral(lead.lead_id, later, why))
    step = spec.steps[next_step - 1]
    assign = False
    if spec.bandit is not None:
        first = (sticky or {}).get(lead.lead_id)
        variant = bandit_variant(
            step,
            str(lead.lead_id),
            seed,
            floor=spec.bandit.floor,
            weights=(bandit_weights or {}).get((lead.campaign, next_step)),
            sticky=first,
        )
        assign = first is None and bool(step.variants)
    else:
        variant = choose_variant(step, str(lead.lead_id), seed)
    send = PlannedSend(
        lead_id=lead.lead_id,
        campaign_id=campaign.campaign_id,
        campaign=lead.campaign,
        step=next_step,
        variant=variant,
        mailbox=mailbox,
        recipient=lead.email,
        message_id=message_id(lead.lead_id, next_step, mailbox),
        send_at=ready if ready > now else None,
        assign=assign,
    )
    pacer.record_send(mailbox, ready, campaign_tz, limits.min_gap_seconds, limits.jitter_seconds)
    return LeadPlan("queued", lead.lead_id, send=send)
