"""`cam.scheduler`: on each Tick, find what is due and hand it to the sender.

The cost of a tick depends on what is due, not on how many leads exist: due leads come
from an index on `next_action_at`, which is NULL for every lead that is not waiting for
something (replied, bounced, in flight). Windows, caps, gaps, paused campaigns and
mailboxes and the suppression list are honoured here; the sender's bounded mailbox holds
the scheduler back when sending is slower than scheduling.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aicmo_actors.cam.pacing import MailboxPacer
from aicmo_actors.cam.send_rules import (
    choose_variant,
    in_window,
    next_window_start,
    step_due_at,
    zone,
)
from aicmo_actors.cam.store import (
    CampaignRow,
    CamStore,
    DueLead,
    LeadDeferral,
    PlannedSend,
    SchedulePlan,
)
from aicmo_actors.runtime import Actor
from contracts.cam import CycleReport, LeadState, SendEmail
from contracts.runtime import Tick

SENDER = "cam.sender"


def mailbox_for(lead_id: int, mailboxes: list[str]) -> str:
    """A lead always writes from the same mailbox, so its follow-ups stay in one thread."""
    digest = hashlib.sha256(str(lead_id).encode()).digest()
    return mailboxes[int.from_bytes(digest[:4], "big") % len(mailboxes)]


class Scheduler(Actor[Tick]):
    """Due leads -> QUEUED outbound rows -> `SendEmail` to the sender.

    A tick takes due leads in batches until none is left (at most `max_per_tick`): each
    batch is planned in memory and written in one transaction, then handed to the sender,
    whose bounded mailbox holds the scheduler back.
    """

    subscribes = (Tick,)

    def __init__(self, store: CamStore, *, batch: int = 500, max_per_tick: int = 100_000, installation: str = "") -> None:
        self.store = store
        self.batch = batch
        self.max_per_tick = max_per_tick
        # Mixed into every Message-ID: two databases started with the same seed must never
        # send the same Message-ID (receivers drop duplicates; replies would match the wrong row).
        self._installation = hashlib.sha256(installation.encode()).hexdigest()[:10] if installation else ""
        self.pacer: MailboxPacer | None = None
        self._sender: Any = None

    async def on_start(self) -> None:
        self._sender = self.ctx.ref(SENDER, SendEmail)
        self.pacer = MailboxPacer(random.Random(self.ctx.random.random()))
        now = self.ctx.clock.now()
        # A crash mid-send leaves SENDING rows: we cannot know whether the server took them,
        # and a duplicate cold email is worse than a missing one, so they become UNCONFIRMED.
        unconfirmed = await self.store.mark_interrupted_sends(now)
        if unconfirmed:
            self.ctx.log.warning("interrupted sends marked UNCONFIRMED", count=unconfirmed)
        for campaign in (await self.store.campaigns()).values():
            tz = ZoneInfo(campaign.spec.timezone)
            for mailbox in campaign.spec.mailboxes:
                # Sent today and still planned (QUEUED rows a dead process left): both count,
                # or a crash lets a fresh plan go out on top of the old one, over the cap.
                days, last = await self.store.mailbox_usage(
                    mailbox.address, MailboxPacer.day_start(now, tz), now, lambda at, tz=tz: MailboxPacer.day_of(at, tz)
                )
                self.pacer.seed_days(mailbox.address, days, last, campaign.spec.limits.min_gap_seconds)
        # QUEUED rows whose SendEmail died with an earlier process (or incarnation) go out
        # now; one the sender still holds is claimed once, the second copy finds it taken.
        after = 0
        while lost := await self.store.queued_ready(now, self.batch, lost=True, after=after):
            for job in lost:
                await self._sender.tell(job)
            after = lost[-1].outbound_id

    async def receive(self, message: Tick) -> None:
        assert self.pacer is not None
        clock = self.ctx.clock
        started = clock.perf()
        now = clock.now()
        counts: dict[str, int] = {"queued": 0, "retried": 0, "deferred": 0, "completed": 0, "resumed": 0, "skipped": 0}
        errors: list[str] = []
        campaigns = await self.store.campaigns()
        paused_mailboxes = await self.store.paused_mailboxes()

        # Sends whose time has come but whose timer a restart lost (retries, paced sends).
        for job in await self.store.queued_ready(now, self.batch):
            await self._sender.tell(job)
            counts["retried"] += 1

        # Sends are planned up to the next tick, each at its own paced moment, so a mailbox
        # sends at its gap + jitter rate whatever the tick interval is.
        horizon = now + timedelta(seconds=max(message.interval_s, 0.0))
        taken = 0
        while taken < self.max_per_tick:
            due = await self.store.due_leads(now, min(self.batch, self.max_per_tick - taken))
            if not due:
                break
            taken += len(due)
            plan = SchedulePlan()
            suppressed = await self.store.suppressed({lead.email for lead in due})
            for lead in due:
                campaign = campaigns.get(lead.campaign)
                try:
                    outcome = self._plan(lead, campaign, suppressed, paused_mailboxes, now, horizon, plan)
                except Exception as exc:  # one bad lead must not stop the cycle
                    self.ctx.log.exception("scheduling a lead failed", lead_id=lead.lead_id)
                    errors.append(f"lead {lead.lead_id}: {exc!r}")
                    plan.deferrals.append(LeadDeferral(lead.lead_id, now + timedelta(hours=1), f"scheduling failed: {exc!r}"[:200]))
                    continue
                counts[outcome] += 1
            queued = await self.store.apply_schedule(plan, now)
            counts["skipped"] += len(plan.sends) - len(queued)
            counts["queued"] -= len(plan.sends) - len(queued)
            for planned, job in queued:
                if planned.send_at is not None:
                    # The row carries its send time too: if this timer is lost in a crash,
                    # a later tick finds the row through `queued_ready`.
                    self.ctx.schedule((planned.send_at - now).total_seconds(), job, to=self._sender)
                else:
                    await self._sender.tell(job)
            if len(due) < self.batch:
                break

        duration = (clock.perf() - started) * 1000
        self.ctx.log.info("tick scheduled", tick=message.seq, **counts, errors=len(errors), ms=round(duration, 1))
        report = CycleReport(tick_seq=message.seq, step="schedule", counts=counts, errors=tuple(errors), duration_ms=duration)
        await self.store.save_cycle_report(report, now)
        await self.ctx.publish(report)

    def _plan(
        self,
        lead: DueLead,
        campaign: CampaignRow | None,
        suppressed: set[str],
        paused_mailboxes: set[str],
        now: datetime,
        horizon: datetime,
        plan: SchedulePlan,
    ) -> str:
        """Decide one due lead; the decision goes into `plan`. Returns the count it adds to."""
        assert self.pacer is not None
        if campaign is None or campaign.status != "active":
            # Paused campaigns keep their leads; they are picked up again on resume.
            plan.deferrals.append(LeadDeferral(lead.lead_id, None, "waiting: the campaign is paused"))
            return "skipped"
        if lead.email in suppressed:
            plan.suppressed.append(lead.lead_id)
            return "skipped"
        if lead.state is LeadState.PAUSED:
            # The auto-reply's return date has come: the sequence goes on (next batch).
            plan.resumed.append(lead.lead_id)
            return "resumed"
        spec = campaign.spec
        next_step = lead.current_step + 1
        if next_step > len(spec.steps):
            plan.completed.append(lead.lead_id)
            return "completed"
        tz = zone(lead.timezone, spec.timezone)
        if not in_window(spec.window, tz, now):
            opens = next_window_start(spec.window, tz, now)
            plan.deferrals.append(LeadDeferral(lead.lead_id, opens, f"waiting: outside the send window, which opens {opens:%Y-%m-%d %H:%M} UTC"))
            return "deferred"
        mailboxes = [m.address for m in spec.mailboxes]
        mailbox = lead.mailbox or mailbox_for(lead.lead_id, mailboxes)
        if mailbox in paused_mailboxes:
            plan.deferrals.append(LeadDeferral(lead.lead_id, now + timedelta(hours=1), f"waiting: mailbox {mailbox} is paused"))
            return "deferred"
        campaign_tz = ZoneInfo(spec.timezone)
        limits = spec.limits
        ready = self.pacer.available_at(mailbox, now, campaign_tz, limits.daily_cap)
        if ready > now and (ready >= horizon or not in_window(spec.window, tz, ready)):
            later = self.pacer.project(
                mailbox, ready, campaign_tz, limits.daily_cap, limits.min_gap_seconds, limits.jitter_seconds,
                opens=lambda at: next_window_start(spec.window, campaign_tz, at),
            )
            if not in_window(spec.window, tz, later):
                later = next_window_start(spec.window, tz, later)
            day = MailboxPacer.day_of(ready, campaign_tz)
            why = (
                f"waiting: {mailbox} sent its daily cap of {limits.daily_cap}; its turn {later:%Y-%m-%d %H:%M} UTC"
                if day != MailboxPacer.day_of(now, campaign_tz)
                else f"waiting: {mailbox}'s queue (a gap of {limits.min_gap_seconds:g} s between sends); its turn {later:%Y-%m-%d %H:%M} UTC"
            )
            plan.deferrals.append(LeadDeferral(lead.lead_id, later, why))
            return "deferred"
        step = spec.steps[next_step - 1]
        variant = choose_variant(step, str(lead.lead_id), self.ctx.system.seed)
        domain = mailbox.rpartition("@")[2]
        unique = f"{self.ctx.random.getrandbits(64):016x}{self._installation}.{lead.lead_id}.{next_step}"
        plan.sends.append(
            PlannedSend(
                lead_id=lead.lead_id,
                campaign_id=campaign.campaign_id,
                campaign=lead.campaign,
                step=next_step,
                variant=variant,
                mailbox=mailbox,
                recipient=lead.email,
                message_id=f"<{unique}@{domain}>",
                send_at=ready if ready > now else None,
            )
        )
        self.pacer.record_send(mailbox, ready, campaign_tz, limits.min_gap_seconds, limits.jitter_seconds)
        return "queued"


__all__ = ["Scheduler", "mailbox_for", "step_due_at", "zone"]
