"""`cam.decision`: watches the numbers and pauses a campaign or a mailbox when they turn bad.

Rates and their denominators (also in the README):
- hard-bounce rate = hard bounces / emails sent (rows that reached SENT), per campaign;
- complaint rate = complaints / emails sent, per campaign;
both are judged only once the campaign has sent at least `min_sends`.
A sending mailbox is paused when it collects `mailbox_rejections` sending-side rejections
(blocked, spam_detected, policy, auth_failure; at send time or in a bounce) within
`mailbox_window_s`. A pause raises an alert, shows in `campaign status` with its reason,
and lasts until `campaign resume` / `mailbox resume`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aicmo_actors.cam.store import CamStore
from aicmo_actors.runtime import Actor
from contracts.cam import (
    AlertRequested,
    CampaignPaused,
    EmailFailed,
    EmailSent,
    MailboxPaused,
    ReplyCategory,
    ReplyClassified,
)

ALERTS = "cam.alerts"


@dataclass(frozen=True)
class PausePolicy:
    hard_bounce_rate: float = 0.03
    complaint_rate: float = 0.003
    min_sends: int = 50
    mailbox_rejections: int = 3
    mailbox_window_s: float = 86400.0


@dataclass
class CampaignCounts:
    sent: int = 0
    hard: int = 0
    complaints: int = 0


def campaign_verdict(counts: CampaignCounts, policy: PausePolicy) -> str | None:
    """Why a campaign must pause, or None (pure)."""
    if counts.sent < policy.min_sends:
        return None
    hard_rate = counts.hard / counts.sent
    if hard_rate > policy.hard_bounce_rate:
        return (
            f"hard-bounce rate {hard_rate:.1%} ({counts.hard}/{counts.sent} sent) "
            f"is over {policy.hard_bounce_rate:.1%}"
        )
    complaint_rate = counts.complaints / counts.sent
    if complaint_rate > policy.complaint_rate:
        return (
            f"complaint rate {complaint_rate:.2%} ({counts.complaints}/{counts.sent} sent) "
            f"is over {policy.complaint_rate:.2%}"
        )
    return None


def mailbox_verdict(times: deque[datetime], now: datetime, policy: PausePolicy) -> str | None:
    """Why a mailbox must pause, or None (pure). `times` are recent sending-side rejections."""
    horizon = now - timedelta(seconds=policy.mailbox_window_s)
    while times and times[0] < horizon:
        times.popleft()
    if len(times) >= policy.mailbox_rejections:
        return (
            f"{len(times)} sending-side rejections (blocked/spam/policy/auth) within "
            f"{policy.mailbox_window_s / 3600:g} h"
        )
    return None


@dataclass
class _State:
    campaigns: dict[str, CampaignCounts] = field(default_factory=lambda: defaultdict(CampaignCounts))
    rejections: dict[str, deque[datetime]] = field(default_factory=lambda: defaultdict(deque))


class Decision(Actor[EmailSent | EmailFailed | ReplyClassified]):
    """Counts per campaign and mailbox, and the auto-pause."""

    subscribes = (EmailSent, EmailFailed, ReplyClassified)

    def __init__(self, store: CamStore, policy: PausePolicy | None = None) -> None:
        self.store = store
        self.policy = policy or PausePolicy()
        self.state = _State()
        self._alerts: Any = None

    async def on_start(self) -> None:
        self._alerts = self.ctx.ref(ALERTS, AlertRequested)
        now = self.ctx.clock.now()
        # Rebuild the counters from the database: the actor may have been restarted.
        for name, (sent, hard, complaints) in (await self.store.campaign_counters()).items():
            self.state.campaigns[name] = CampaignCounts(sent, hard, complaints)
        horizon = now - timedelta(seconds=self.policy.mailbox_window_s)
        for mailbox, times in (await self.store.sending_side_rejections(horizon)).items():
            self.state.rejections[mailbox] = deque(sorted(times))

    async def receive(self, message: EmailSent | EmailFailed | ReplyClassified) -> None:
        now = self.ctx.clock.now()
        if isinstance(message, EmailSent):
            self.state.campaigns[message.campaign].sent += 1
            await self._check_campaign(message.campaign, now)
            return
        if isinstance(message, EmailFailed):
            if message.hard:
                self.state.campaigns[message.campaign].hard += 1
                await self._check_campaign(message.campaign, now)
            if message.sending_side:
                await self._rejected(message.mailbox, now)
            return
        c = message.classification
        if message.campaign is None:
            return
        if c.category is ReplyCategory.BOUNCE_HARD:
            self.state.campaigns[message.campaign].hard += 1
        elif c.category is ReplyCategory.COMPLAINT:
            self.state.campaigns[message.campaign].complaints += 1
        if c.sending_side and message.outbound_id is not None:
            mailbox = await self.store.outbound_mailbox(message.outbound_id)
            if mailbox:
                await self._rejected(mailbox, now)
        await self._check_campaign(message.campaign, now)

    async def _rejected(self, mailbox: str, now: datetime) -> None:
        times = self.state.rejections[mailbox]
        times.append(now)
        reason = mailbox_verdict(times, now, self.policy)
        if reason is None:
            return
        if await self.store.pause_mailbox(mailbox, reason, now):
            self.ctx.log.warning("mailbox paused", mailbox=mailbox, reason=reason)
            await self.ctx.publish(MailboxPaused(mailbox=mailbox, reason=reason))
            await self._alert(f"pause:mailbox:{mailbox}:{now.isoformat()}", "mailbox_paused", None, f"Mailbox {mailbox} paused: {reason}")

    async def _check_campaign(self, campaign: str, now: datetime) -> None:
        reason = campaign_verdict(self.state.campaigns[campaign], self.policy)
        if reason is None:
            return
        # A pause starts a fresh window: after `campaign resume` the campaign is judged on
        # what it sends from then on (the store counts the same way after a restart).
        self.state.campaigns[campaign] = CampaignCounts()
        if await self.store.pause_campaign(campaign, reason, now):
            self.ctx.log.warning("campaign paused", campaign=campaign, reason=reason)
            await self.ctx.publish(CampaignPaused(campaign=campaign, reason=reason))
            await self._alert(f"pause:campaign:{campaign}:{now.isoformat()}", "campaign_paused", campaign, f"Campaign {campaign} paused: {reason}")

    async def _alert(self, key: str, kind: str, campaign: str | None, summary: str) -> None:
        await self._alerts.tell(
            AlertRequested(idempotency_key=key, kind=kind, campaign=campaign, summary=summary, text=summary)
        )
