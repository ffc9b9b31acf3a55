"""`cam.decision`: watches the numbers and pauses a campaign or a mailbox when they turn bad.

Rates (also in the README) are the campaign's `Figures` (`store.metrics.figures`, one
definition shared with `campaign status` and /metrics) over the emails attempted since the
campaign was last paused or resumed:
- hard-bounce rate = hard bounces / attempted;
- complaint rate = complaints / attempted;
both are judged only once the campaign has attempted at least `min_sends`.
A sending mailbox is paused when it collects `mailbox_rejections` sending-side rejections
(blocked, spam_detected, policy, auth_failure; at send time or by a report tied to one of
its emails) within `mailbox_window_s`. A pause and its alert are stored in one transaction,
the pause shows in `campaign status` with its reason, and lasts until `campaign resume` /
`mailbox resume`.

The figures live in the database, written with the outcome that changed them (by the
sender or the follow-up): this actor keeps only a count of attempts per campaign to know
when a campaign reaches `min_sends`, reads the figures again when an outcome may change a
verdict, and judges everything afresh on start, so a crash loses no pause.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aicmo_actors.cam.repos import CamStore, Figures
from aicmo_actors.runtime import Actor
from contracts.cam import (
    CampaignPaused,
    EmailFailed,
    EmailSent,
    MailboxPaused,
    ReplyActedOn,
    RetryAlert,
)

ALERTS = "cam.alerts"


@dataclass(frozen=True)
class PausePolicy:
    hard_bounce_rate: float = 0.03
    complaint_rate: float = 0.003
    min_sends: int = 50
    mailbox_rejections: int = 3
    mailbox_window_s: float = 86400.0


def campaign_verdict(figures: Figures, policy: PausePolicy) -> str | None:
    """Why a campaign must pause, or None (pure)."""
    attempted = figures.attempted
    if attempted < policy.min_sends:
        return None
    hard_rate = figures.rate(figures.hard_bounces)
    if hard_rate > policy.hard_bounce_rate:
        return (
            f"hard-bounce rate {hard_rate:.1%} ({figures.hard_bounces}/{attempted} attempted) "
            f"is over {policy.hard_bounce_rate:.1%}"
        )
    complaint_rate = figures.rate(figures.complaints)
    if complaint_rate > policy.complaint_rate:
        return (
            f"complaint rate {complaint_rate:.2%} ({figures.complaints}/{attempted} attempted) "
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


class Decision(Actor[EmailSent | EmailFailed | ReplyActedOn]):
    """The auto-pause of campaigns and sending mailboxes."""

    subscribes = (EmailSent, EmailFailed, ReplyActedOn)

    def __init__(self, store: CamStore, policy: PausePolicy | None = None) -> None:
        self.store = store
        self.policy = policy or PausePolicy()
        # Attempts per campaign since its window began, to know when min_sends is reached
        # without reading the figures on every send (the database has the true numbers).
        self._attempts: dict[str, int] = defaultdict(int)
        self._alerts: Any = None

    async def on_start(self) -> None:
        self._alerts = self.ctx.ref(ALERTS, RetryAlert)
        now = self.ctx.clock.now()
        # Judge everything afresh: an outcome written just before a crash must still pause.
        for name, figures in (await self.store.metrics.figures()).items():
            self._attempts[name] = figures.attempted
            await self._judge_campaign(name, figures, now)
        horizon = now - timedelta(seconds=self.policy.mailbox_window_s)
        for mailbox, times in (await self.store.metrics.sending_side_rejections(horizon)).items():
            await self._judge_mailbox(mailbox, deque(times), now)

    async def receive(self, message: EmailSent | EmailFailed | ReplyActedOn) -> None:
        now = self.ctx.clock.now()
        if isinstance(message, EmailSent):
            self._attempts[message.campaign] += 1
            if self._attempts[message.campaign] == self.policy.min_sends:
                await self._check_campaign(message.campaign, now)  # bounces before min_sends count now
            return
        if isinstance(message, EmailFailed):
            if message.permanent or message.hard:
                self._attempts[message.campaign] += 1
            if message.hard:
                await self._check_campaign(message.campaign, now)
            if message.sending_side:
                await self._check_mailbox(message.mailbox, now)
            return
        if message.campaign is None or message.outcome is None:
            return  # counts as nothing (a reply, a guess, a second report of one email)
        if message.outcome in ("bounce_hard", "complaint"):
            await self._check_campaign(message.campaign, now)
        if message.sending_side and message.mailbox:
            await self._check_mailbox(message.mailbox, now)

    async def _check_campaign(self, campaign: str, now: datetime) -> None:
        figures = (await self.store.metrics.figures(campaign)).get(campaign)
        if figures is not None:
            self._attempts[campaign] = figures.attempted
            await self._judge_campaign(campaign, figures, now)

    async def _judge_campaign(self, campaign: str, figures: Figures, now: datetime) -> None:
        reason = campaign_verdict(figures, self.policy)
        if reason is None:
            return
        # A pause starts a fresh window: after `campaign resume` the campaign is judged on
        # what it sends from then on (the store counts from its last pause or resume).
        alert_id = await self.store.campaigns.pause(campaign, reason, now)
        if alert_id is not None:
            self._attempts[campaign] = 0
            self.ctx.log.warning("campaign paused", campaign=campaign, reason=reason)
            await self.ctx.publish(CampaignPaused(campaign=campaign, reason=reason))
            await self._alerts.tell(RetryAlert(alert_id=alert_id))

    async def _check_mailbox(self, mailbox: str, now: datetime) -> None:
        horizon = now - timedelta(seconds=self.policy.mailbox_window_s)
        times = (await self.store.metrics.sending_side_rejections(horizon)).get(mailbox.lower(), [])
        await self._judge_mailbox(mailbox, deque(times), now)

    async def _judge_mailbox(self, mailbox: str, times: deque[datetime], now: datetime) -> None:
        reason = mailbox_verdict(times, now, self.policy)
        if reason is None:
            return
        alert_id = await self.store.campaigns.pause_mailbox(mailbox, reason, now)
        if alert_id is not None:
            self.ctx.log.warning("mailbox paused", mailbox=mailbox, reason=reason)
            await self.ctx.publish(MailboxPaused(mailbox=mailbox, reason=reason))
            await self._alerts.tell(RetryAlert(alert_id=alert_id))
