"""Pure sending rules: send windows in a lead's timezone, step timing, A/B variant choice.

All datetimes in and out are timezone-aware UTC; conversions use zoneinfo, so daylight
saving transitions are handled (a window is wall-clock time in the lead's zone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from aicmo_actors.cam.campaign import CampaignSpec, SendWindow, StepSpec
from contracts.cam import LeadState


def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The lead's timezone, or the campaign's when the lead has none (or an unknown one)."""
    try:
        return ZoneInfo(name or fallback)
    except Exception:
        return ZoneInfo(fallback)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        # astimezone() would read a naive datetime as the machine's local time: a silent error.
        raise ValueError(f"{at!r} has no timezone: pass an aware UTC datetime")


def in_window(window: SendWindow, tz: ZoneInfo, at_utc: datetime) -> bool:
    _require_aware(at_utc)
    local = at_utc.astimezone(tz)
    if local.weekday() not in window.weekday_numbers:
        return False
    t = local.time().replace(tzinfo=None)
    return window.start <= t < window.end


def _transition_on(day: date, tz: ZoneInfo) -> datetime | None:
    """The instant (UTC) the zone's offset changes around local `day`, if it does."""
    lo = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC) - timedelta(hours=3)
    hi = lo + timedelta(hours=30)
    if lo.astimezone(tz).utcoffset() == hi.astimezone(tz).utcoffset():
        return None
    before = lo.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):  # zone transitions fall on whole seconds
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            mid = lo + timedelta(seconds=1)
        if mid.astimezone(tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def next_window_start(window: SendWindow, tz: ZoneInfo, at_utc: datetime) -> datetime:
    """The earliest instant >= `at_utc` inside the window.

    The window opens where the local clock reaches `start`, or where a DST transition makes
    the clock jump into the window: forward past a `start` inside the skipped hour, or back
    into a window that already closed (the repeated hour in autumn).
    """
    if in_window(window, tz, at_utc):
        return at_utc
    local_day = at_utc.astimezone(tz).date()
    # From the day before (clocks going back at midnight repeat part of it) to two weeks on
    # (a window that falls into a DST gap is skipped on that day, not dropped).
    for offset in range(-1, 15):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in window.weekday_numbers:
            continue
        nominal = datetime.combine(day, window.start, tzinfo=tz)
        candidates = {nominal.astimezone(UTC), nominal.replace(fold=1).astimezone(UTC)}
        transition = _transition_on(day, tz)
        # The search spans a little more than the day: a transition belongs to the day its
        # clock shows right after it, or an earlier opening the next day could be missed.
        if transition is not None and transition.astimezone(tz).date() == day:
            candidates.add(transition)
        opens = [c for c in candidates if c >= at_utc and in_window(window, tz, c)]
        if opens:
            return min(opens)
    raise ValueError("the send window never opens")  # unreachable with at least one weekday


def variant_weights(step: StepSpec) -> dict[str, float]:
    """The campaign file's own weights of a step's variants ("A": the step's own text)."""
    return {"A": step.weight, **{v.name: v.weight for v in step.variants}}


def floored(weights: Mapping[str, float], floor: float) -> dict[str, float]:
    """Shares summing to 1 in which no arm has less than `floor` (arms under it are raised to
    it, the others scaled down in proportion). `floor` times the arms must not exceed 1."""
    total = sum(weights.values())
    shares = {name: w / total for name, w in weights.items()}
    fixed: set[str] = set()
    while True:
        low = {n for n, w in shares.items() if n not in fixed and w < floor}
        if not low:
            return shares
        fixed |= low
        free = [n for n in shares if n not in fixed]
        left = 1.0 - floor * len(fixed)
        free_total = sum(shares[n] for n in free)
        shares = {
            n: floor if n in fixed else (shares[n] / free_total * left if free_total > 0 else left / len(free))
            for n in shares
        }


def choose_variant(step: StepSpec, lead_key: str, seed: int, weights: Mapping[str, float] | None = None) -> str:
    """Weighted A/B choice, stable per (lead, step, seed): a retry or restart picks the same.

    `weights` replaces the file's weights (a bandit's allocation, one per variant name)."""
    if not step.variants:
        return "A"
    options = [("A", step.weight), *((v.name, v.weight) for v in step.variants)]
    if weights is not None:
        options = [(name, weights[name]) for name, _ in options]
    total = sum(w for _, w in options)
    digest = hashlib.sha256(f"{seed}:{lead_key}:{step.subject}:{step.body[:64]}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * total
    for name, weight in options:
        point -= weight
        if point < 0:
            return name
    return options[-1][0]


def bandit_variant(
    step: StepSpec,
    lead_key: str,
    seed: int,
    *,
    floor: float,
    weights: Mapping[str, float] | None = None,
    sticky: str | None = None,
) -> str:
    """A bandit campaign's variant for a lead: the one it first got in the campaign when this
    step has a variant of that name (sticky), else a weighted choice by the learner's latest
    `weights` (when they name exactly this step's variants), else by the file's weights; either
    way with no arm under `floor`. Deterministic given the weights and the lead."""
    names = variant_weights(step)
    if sticky is not None and sticky in names:
        return sticky
    if not step.variants:
        return "A"
    use = weights if weights is not None and set(weights) == set(names) and sum(weights.values()) > 0 else names
    return choose_variant(step, lead_key, seed, floored(use, floor))


def window_closed_until(spec: CampaignSpec, timezone: str | None, now: datetime) -> datetime | None:
    """None when the lead's send window is open now, else when it next opens."""
    tz = zone(timezone, spec.timezone)
    return None if in_window(spec.window, tz, now) else next_window_start(spec.window, tz, now)


@dataclass(frozen=True)
class NotNow:
    """Why a lead may not be sent to now.

    `kind` says what stands in the way: the campaign is paused, the address is suppressed,
    the lead is not ACTIVE, its send window is closed (`opens`: when it opens), or its
    sending mailbox is paused. Whoever asked decides how long to wait for each.
    """

    kind: Literal["campaign", "suppressed", "lead", "window", "mailbox"]
    why: str
    opens: datetime | None = None


def may_send(
    *,
    campaign_active: bool,
    suppressed: bool,
    lead_state: LeadState,
    window_opens: Callable[[], datetime | None],
    mailbox_paused: bool,
) -> NotNow | None:
    """May this lead be sent to now? None: yes. The one rule for the scheduler's planning
    and the sender's last check before a claim, so the two can never disagree.

    In this order: a paused campaign leaves everything as it is; a suppressed address and a
    lead that is not ACTIVE are never written to; then the lead's send window (asked for only
    when it matters: it costs a time-zone computation); then the sending mailbox's pause.
    """
    if not campaign_active:
        return NotNow("campaign", "the campaign is paused")
    if suppressed:
        return NotNow("suppressed", "the address is suppressed")
    if lead_state is not LeadState.ACTIVE:
        return NotNow("lead", f"the lead is {lead_state.value}")
    opens = window_opens()
    if opens is not None:
        return NotNow("window", "outside the send window", opens)
    if mailbox_paused:
        return NotNow("mailbox", "the mailbox is paused")
    return None
