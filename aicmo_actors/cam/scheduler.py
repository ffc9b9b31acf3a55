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

from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.pacing import MailboxPacer
from aicmo_actors.cam.planning import LeadDeferral, SchedulePlan, plan_lead
from aicmo_actors.cam.repos import CamStore, QueuedSend
from aicmo_actors.cam.repos.campaigns import CampaignRow
from aicmo_actors.cam.send_rules import variant_weights
from aicmo_actors.runtime import Actor
from contracts.cam import CycleReport, SendEmail
from contracts.learning import BanditCampaign, BanditStep, SetVariantWeights
from contracts.runtime import Tick

SENDER = "cam.sender"


def send_email(row: QueuedSend) -> SendEmail:
    """The sender's message for a QUEUED row."""
    return SendEmail(
        outbound_id=row.outbound_id, lead_id=row.lead_id, campaign=row.campaign, step=row.step, mailbox=row.mailbox
    )


def bandit_campaign(spec: CampaignSpec) -> BanditCampaign:
    """What a learner needs to know of a campaign with `[bandit]`."""
    assert spec.bandit is not None
    return BanditCampaign(
        campaign=spec.name,
        window_days=spec.bandit.window_days,
        burn_in=spec.bandit.burn_in,
        floor=spec.bandit.floor,
        steps=tuple(
            BanditStep(step=number, weights=variant_weights(step))
            for number, step in enumerate(spec.steps, start=1)
            if step.variants
        ),
    )


class Scheduler(Actor[Tick | SetVariantWeights]):
    """Due leads -> QUEUED outbound rows -> `SendEmail` to the sender.

    A tick takes due leads in batches until none is left (at most `max_per_tick`): each
    batch is planned in memory (`planning.plan_lead`) and written in one transaction, then
    handed to the sender, whose bounded mailbox holds the scheduler back.

    Campaigns with `[bandit]`: each is announced (`BanditCampaign`) on the first tick an
    incarnation sees it and whenever its file changes; a learner's `SetVariantWeights` is
    recorded once per key, and the latest weights of each step are used for new assignments.
    Without a learner they keep the file's weights (with the floor).
    """

    subscribes = (Tick,)

    def __init__(
        self, store: CamStore, *, batch: int = 500, max_per_tick: int = 100_000, installation: str = ""
    ) -> None:
        self.store = store
        self.batch = batch
        self.max_per_tick = max_per_tick
        # Mixed into every Message-ID: two databases started with the same seed must never
        # send the same Message-ID (receivers drop duplicates; replies would match the wrong row).
        self._installation = hashlib.sha256(installation.encode()).hexdigest()[:10] if installation else ""
        self.pacer: MailboxPacer | None = None
        self._sender: Any = None
        #: The spec of each bandit campaign this incarnation announced (parsed specs are cached
        #: per hash: the same object until the file changes).
        self._announced: dict[str, CampaignSpec] = {}

    async def on_start(self) -> None:
        self._sender = self.ctx.ref(SENDER, SendEmail)
        self.pacer = MailboxPacer(random.Random(self.ctx.random.random()))
        now = self.ctx.clock.now()
        # SENDING rows are the sender's alone (it settles what a dead incarnation left when it
        # starts): a scheduler restarted on its own must not relabel the email in flight.
        for campaign in (await self.store.campaigns.all()).values():
            tz = ZoneInfo(campaign.spec.timezone)

            def day_of(at: datetime, tz: ZoneInfo = tz) -> str:
                return MailboxPacer.day_of(at, tz)

            for mailbox in campaign.spec.mailboxes:
                # Sent today and still planned (QUEUED rows a dead process left): both count,
                # or a crash lets a fresh plan go out on top of the old one, over the cap.
                days, last = await self.store.outbox.mailbox_usage(
                    mailbox.address, MailboxPacer.day_start(now, tz), now, day_of
                )
                self.pacer.seed_days(mailbox.address, days, last, campaign.spec.limits.min_gap_seconds)
        # QUEUED rows whose SendEmail died with an earlier process (or incarnation) go out
        # now; one the sender still holds is claimed once, the second copy finds it taken.
        after = 0
        while lost := await self.store.outbox.queued_ready(now, self.batch, lost=True, after=after):
            for row in lost:
                await self._sender.tell(send_email(row))
            after = lost[-1].outbound_id

    def _message_id(self, lead_id: int, step: int, mailbox: str) -> str:
        unique = f"{self.ctx.random.getrandbits(64):016x}{self._installation}.{lead_id}.{step}"
        return f"<{unique}@{mailbox.rpartition('@')[2]}>"

    async def receive(self, message: Tick | SetVariantWeights) -> None:
        if isinstance(message, SetVariantWeights):
            await self.store.campaigns.record_weights(
                message.campaign,
                message.step,
                message.weights,
                message.as_of,
                message.idempotency_key,
                self.ctx.clock.now(),
            )
            return
        await self._tick(message)

    async def _bandits(self, campaigns: dict[str, CampaignRow]) -> dict[tuple[str, int], dict[str, float]]:
        """Announce the bandit campaigns not announced yet; their steps' latest weights."""
        bandits = {name: row.spec for name, row in campaigns.items() if row.spec.bandit is not None}
        for name, spec in bandits.items():
            if self._announced.get(name) is not spec:
                await self.ctx.publish(bandit_campaign(spec))
                self._announced[name] = spec
        if not bandits:
            return {}
        latest = await self.store.campaigns.variant_weights(bandits)
        return {key: found.weights for key, found in latest.items()}

    async def _tick(self, message: Tick) -> None:
        assert self.pacer is not None
        clock = self.ctx.clock
        started = clock.perf()
        now = clock.now()
        counts: dict[str, int] = {"queued": 0, "retried": 0, "deferred": 0, "completed": 0, "resumed": 0, "skipped": 0}
        errors: list[str] = []
        campaigns = await self.store.campaigns.all()
        paused_mailboxes = await self.store.campaigns.paused_mailboxes()
        bandit_weights = await self._bandits(campaigns)
        bandit_names = {name for name, row in campaigns.items() if row.spec.bandit is not None}

        # Sends whose time has come but whose timer a restart lost (retries, paced sends).
        for row in await self.store.outbox.queued_ready(now, self.batch):
            await self._sender.tell(send_email(row))
            counts["retried"] += 1

        # Sends are planned up to the next tick, each at its own paced moment, so a mailbox
        # sends at its gap + jitter rate whatever the tick interval is.
        horizon = now + timedelta(seconds=max(message.interval_s, 0.0))
        taken = 0
        while taken < self.max_per_tick:
            due = await self.store.leads.due(now, min(self.batch, self.max_per_tick - taken))
            if not due:
                break
            taken += len(due)
            plan = SchedulePlan()
            suppressed = await self.store.leads.suppressed({lead.email for lead in due})
            # Only leads of bandit campaigns have a sticky variant: no query for the others.
            sticky = await self.store.outbox.assigned_variants(
                {lead.lead_id for lead in due if lead.campaign in bandit_names}
            )
            for lead in due:
                try:
                    decided = plan_lead(
                        lead,
                        campaigns.get(lead.campaign),
                        self.pacer,
                        now,
                        horizon,
                        suppressed=suppressed,
                        paused_mailboxes=paused_mailboxes,
                        seed=self.ctx.system.seed,
                        message_id=self._message_id,
                        bandit_weights=bandit_weights,
                        sticky=sticky,
                    )
                except Exception as exc:  # one bad lead must not stop the cycle
                    self.ctx.log.exception("scheduling a lead failed", lead_id=lead.lead_id)
                    errors.append(f"lead {lead.lead_id}: {exc!r}")
                    plan.deferrals.append(
                        LeadDeferral(lead.lead_id, now + timedelta(hours=1), f"scheduling failed: {exc!r}"[:200])
                    )
                    continue
                plan.add(decided)
                counts[decided.outcome] += 1
            queued = await self.store.outbox.apply_plan(plan, now)
            counts["skipped"] += len(plan.sends) - len(queued)
            counts["queued"] -= len(plan.sends) - len(queued)
            for planned, row in queued:
                job = send_email(row)
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
        await self.store.metrics.save_cycle_report(
            step="schedule", tick_seq=message.seq, counts=counts, errors=errors, duration_ms=duration, now=now
        )
        await self.ctx.publish(
            CycleReport(
                tick_seq=message.seq, step="schedule", counts=counts, errors=tuple(errors), duration_ms=duration
            )
        )
