"""Per-mailbox pacing: daily caps and the minimum gap plus jitter between two sends.

Pure bookkeeping (no I/O): the scheduler owns one `MailboxPacer`, seeds it from the
database on start (what each mailbox sent today and when it last sent), and asks it
before queueing each send.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass
class MailboxUsage:
    day: str = ""  # the day (in the campaign timezone) the count belongs to
    sent_today: int = 0
    next_slot: datetime | None = None  # the earliest moment it may send again


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
        slot = last_sent + timedelta(seconds=gap_s) if last_sent is not None else None
        self.usage[mailbox] = MailboxUsage(day, sent_today, slot)

    def available_at(self, mailbox: str, now: datetime, tz: ZoneInfo, daily_cap: int) -> datetime:
        """When `mailbox` may send next (now, or later)."""
        usage = self.usage.setdefault(mailbox, MailboxUsage())
        today = self.day_of(now, tz)
        if usage.day != today:
            usage.day, usage.sent_today = today, 0
        if daily_cap >= 0 and usage.sent_today >= daily_cap:
            return self.next_day_start(now, tz)
        if usage.next_slot is not None and usage.next_slot > now:
            return usage.next_slot
        return now

    def record_send(self, mailbox: str, at: datetime, tz: ZoneInfo, gap_s: float, jitter_s: float) -> None:
        """A send was queued at `at`: count it and push the next slot out by gap + jitter."""
        usage = self.usage.setdefault(mailbox, MailboxUsage())
        today = self.day_of(at, tz)
        if usage.day != today:
            usage.day, usage.sent_today = today, 0
        usage.sent_today += 1
        jitter = self.rng.uniform(0, jitter_s) if jitter_s > 0 else 0.0
        usage.next_slot = at + timedelta(seconds=gap_s + jitter)
