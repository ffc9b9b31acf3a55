"""Per-mailbox pacing: daily caps and the minimum gap plus jitter between two sends.

Pure bookkeeping (no I/O): the scheduler owns one `MailboxPacer`, seeds it from the
database on start (what each mailbox sent today and when it last sent), and asks it
before queueing each send.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

#: Days of counts kept per mailbox (only today and tomorrow matter; the rest is slack).
KEPT_DAYS = 7


@dataclass
class MailboxUsage:
    # Sends per day (ISO date in the campaign timezone). Per day, not one running count: a
    # send paced past midnight counts for tomorrow without wiping out today's count.
    sent: dict[str, int] = field(default_factory=dict)
    next_slot: datetime | None = None  # the earliest moment it may send again
    # Leads told to come back later, per day, and the moment after the last of them: where
    # the next lead that cannot go now is put (see `MailboxPacer.project`).
    planned: dict[str, int] = field(default_factory=dict)
    projected: datetime | None = None


@dataclass
class MailboxPacer:
    """Daily cap and gap+jitter per sending mailbox."""

    rng: random.Random
    usage: dict[str, MailboxUsage] = field(default_factory=dict)

    @staticmethod
    def day_of(at: datetime, tz: ZoneInfo) -> str:
        return at.astimezone(tz).date().isoformat()

    @staticmethod
    def day_start(at: datetime, tz: ZoneInfo) -> datetime:
        local = at.astimezone(tz).date()
        return datetime(local.year, local.month, local.day, tzinfo=tz).astimezone(at.tzinfo)

    @staticmethod
    def next_day_start(at: datetime, tz: ZoneInfo) -> datetime:
        local = at.astimezone(tz)
        tomorrow = (local + timedelta(days=1)).date()
        return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz).astimezone(at.tzinfo)

    def seed(self, mailbox: str, day: str, sent_today: int, last_sent: datetime | None, gap_s: float) -> None:
        """Restore what the database says (after a restart)."""
        self.seed_days(mailbox, {day: sent_today}, last_sent, gap_s)

    def seed_days(self, mailbox: str, days: dict[str, int], last_sent: datetime | None, gap_s: float) -> None:
        """Restore what the database says (after a restart): sends per day (ISO date in the
        campaign timezone), sent or still planned, and the latest of them."""
        slot = last_sent + timedelta(seconds=gap_s) if last_sent is not None else None
        self.usage[mailbox] = MailboxUsage(dict(days), slot)

    def available_at(self, mailbox: str, now: datetime, tz: ZoneInfo, daily_cap: int) -> datetime:
        """When `mailbox` may send next (now, or later): after its gap, on a day under the cap.

        A negative cap means no cap; a cap of 0 never opens (the start of the next day is
        returned, to be asked again then).
        """
        usage = self.usage.setdefault(mailbox, MailboxUsage())
        at = now if usage.next_slot is None or usage.next_slot <= now else usage.next_slot
        if daily_cap < 0:
            return at
        for _ in range(len(usage.sent) + 1):  # each full day is passed at most once
            if usage.sent.get(self.day_of(at, tz), 0) < daily_cap:
                return at
            at = self.next_day_start(at, tz)
        return at

    def record_send(self, mailbox: str, at: datetime, tz: ZoneInfo, gap_s: float, jitter_s: float) -> None:
        """A send was queued at `at`: count it for its day and push the next slot out by gap + jitter."""
        usage = self.usage.setdefault(mailbox, MailboxUsage())
        day = self.day_of(at, tz)
        usage.sent[day] = usage.sent.get(day, 0) + 1
        if usage.planned.get(day):  # one of the leads planned for that day went
            usage.planned[day] -= 1
        for old in sorted(usage.sent)[:-KEPT_DAYS]:
            del usage.sent[old]
        jitter = self.rng.uniform(0, jitter_s) if jitter_s > 0 else 0.0
        slot = at + timedelta(seconds=gap_s + jitter)
        # Sends are recorded in the order they are planned; never move the slot back.
        if usage.next_slot is None or slot > usage.next_slot:
            usage.next_slot = slot

    def project(
        self,
        mailbox: str,
        ready: datetime,
        tz: ZoneInfo,
        daily_cap: int,
        gap_s: float,
        jitter_s: float,
        opens: Callable[[datetime], datetime] | None = None,
    ) -> datetime:
        """When a lead that cannot go now should come back: its place in the mailbox's queue.

        Every lead waiting on one mailbox would otherwise be told the same next slot, come
        due together and all but one be put off again, each tick: a cost that grows with
        the backlog. Instead each one is put one gap (plus half the jitter, the mean) after
        the one before, and on a later day once the day's cap is planned full. `opens` maps
        a moment to the next one inside the send window. This only spreads the work: the
        lead is checked against the real caps and gaps again when it comes due.
        """
        usage = self.usage.setdefault(mailbox, MailboxUsage())
        at = ready if usage.projected is None or usage.projected < ready else usage.projected
        for _ in range(KEPT_DAYS + 1):
            if opens is not None:
                at = opens(at)
            day = self.day_of(at, tz)
            if daily_cap < 0 or usage.sent.get(day, 0) + usage.planned.get(day, 0) < daily_cap:
                break
            at = self.next_day_start(at, tz)
        day = self.day_of(at, tz)
        usage.planned[day] = usage.planned.get(day, 0) + 1
        for old in sorted(usage.planned)[:-KEPT_DAYS]:
            del usage.planned[old]
        usage.projected = at + timedelta(seconds=gap_s + jitter_s / 2)
        return at
