"""Pure sending rules: send windows in a lead's timezone, step timing, A/B variant choice.

All datetimes in and out are timezone-aware UTC; conversions use zoneinfo, so daylight
saving transitions are handled (a window is wall-clock time in the lead's zone).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aicmo_actors.cam.campaign import SendWindow, StepSpec


def in_window(window: SendWindow, tz: ZoneInfo, at_utc: datetime) -> bool:
    local = at_utc.astimezone(tz)
    if local.weekday() not in window.weekday_numbers:
        return False
    t = local.time().replace(tzinfo=None)
    return window.start <= t < window.end


def next_window_start(window: SendWindow, tz: ZoneInfo, at_utc: datetime) -> datetime:
    """The earliest instant >= `at_utc` inside the window."""
    if in_window(window, tz, at_utc):
        return at_utc
    local = at_utc.astimezone(tz)
    for days in range(0, 8):
        day = (local + timedelta(days=days)).date()
        if day.weekday() not in window.weekday_numbers:
            continue
        start = datetime.combine(day, window.start, tzinfo=tz)
        # A start inside a DST gap does not exist: zoneinfo moves it; normalise through UTC.
        start_utc = start.astimezone(UTC)
        if start_utc >= at_utc and in_window(window, tz, start_utc):
            return start_utc
        if days == 0 and start_utc < at_utc:
            continue
        # The nominal start fell into a DST gap: take the first in-window minute after it.
        probe = start_utc
        for _ in range(180):
            probe += timedelta(minutes=1)
            if probe >= at_utc and in_window(window, tz, probe):
                return probe
    raise ValueError("the send window never opens")  # unreachable with at least one weekday


def step_due_at(previous_sent_at: datetime, delay_days: float) -> datetime:
    return previous_sent_at + timedelta(days=delay_days)


def choose_variant(step: StepSpec, lead_key: str, seed: int) -> str:
    """Weighted A/B choice, stable per (lead, step, seed): a retry or restart picks the same."""
    if not step.variants:
        return "A"
    options = [("A", step.weight), *((v.name, v.weight) for v in step.variants)]
    total = sum(w for _, w in options)
    digest = hashlib.sha256(f"{seed}:{lead_key}:{step.subject}:{step.body[:64]}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * total
    for name, weight in options:
        point -= weight
        if point < 0:
            return name
    return options[-1][0]
