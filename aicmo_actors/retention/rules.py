"""Retention's rules, pure: weights, decay, the score, its band and reasons, renewal dates.

No database, no clock, no actor: every function takes data and returns data
(tests/unit/test_retention_rules.py, table by table).

The score: ``base + sum(weight * 0.5 ** (age / half_life))``, clamped to 0..100. A signal's weight
is signed: negative lowers the score (a reminder sent, a late delivery), positive raises it
(a KPI attained, an invoice paid on time). With the base at 100, good news only offsets bad
news. Bands: green at or above the first threshold, amber at or above the second, red below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Literal

from aicmo_actors.gateways.calendar import add_months

Band = Literal["green", "amber", "red"]

#: Points each kind of signal adds to the score (negative: it lowers it). The kinds marked
#: per day in `PER_DAY` are points per day late, up to their cap.
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        # money (billing)
        "invoice_overdue": -6.0,
        "reminder_sent": -8.0,
        "payment_partial": -6.0,
        "payment_late": -0.5,
        "payment_on_time": 3.0,
        "client_on_hold": -20.0,
        "client_released": 5.0,
        "invoice_credited": -5.0,
        # the work (client review, production, qc, delivery)
        "revision_round": -5.0,
        "review_slow": -4.0,
        "review_silent": -4.0,
        "review_approved": 2.0,
        "item_late": -6.0,
        "qc_retake": -1.0,
        "delivered_late": -1.0,
        "delivered_on_time": 1.0,
        "delivery_failing": -6.0,
        # results (reporting)
        "kpi_missed": -8.0,
        "kpi_attained": 4.0,
        # the client's tone (cam's classifier)
        "reply_negative": -15.0,
        "reply_positive": 3.0,
    }
)
#: Kinds weighed per day late, and the most days counted.
PER_DAY: Mapping[str, int] = MappingProxyType({"payment_late": 30, "delivered_late": 14})
#: A signal tied to the client only by the sender's address (a weak tie) counts this much.
WEAK_TIE = 0.5
#: How many reasons a score carries.
REASONS = 3
#: Signals older than this many half-lives weigh less than 0.1 % of their weight: ignored.
HORIZON_HALF_LIVES = 10


@dataclass(frozen=True)
class Scoring:
    """The parameters of a score (the supervisor's, an agency may tune them)."""

    half_life_days: float = 30.0
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    #: (green from, amber from): a score below the second is red.
    bands: tuple[float, float] = (70.0, 40.0)
    base: float = 100.0
    reasons: int = REASONS

    def __post_init__(self) -> None:
        if not self.half_life_days > 0:
            raise ValueError("half_life_days must be positive")
        green, amber = self.bands
        if not 0 <= amber < green <= 100:
            raise ValueError(f"bands must be (green, amber) with 0 <= amber < green <= 100, not {self.bands}")
        if not 0 <= self.base <= 100:
            raise ValueError("base must be from 0 to 100")
        if self.reasons < 1:
            raise ValueError("reasons must be at least 1")

    @property
    def horizon_days(self) -> float:
        return self.half_life_days * HORIZON_HALF_LIVES


def merge_weights(overrides: Mapping[str, float] | None) -> dict[str, float]:
    """The default weights with an agency's `overrides`; an unknown kind is a ValueError."""
    merged = dict(DEFAULT_WEIGHTS)
    for kind, weight in (overrides or {}).items():
        if kind not in DEFAULT_WEIGHTS:
            known = ", ".join(sorted(DEFAULT_WEIGHTS))
            raise ValueError(f"unknown retention signal {kind!r} (known: {known})")
        if not math.isfinite(float(weight)):
            raise ValueError(f"the weight of {kind!r} must be a finite number")
        merged[kind] = float(weight)
    return merged


def weigh(kind: str, weights: Mapping[str, float], *, days: int = 0, weak: bool = False) -> float:
    """A new signal's weight: the kind's, times the days late for the per-day kinds (capped),
    halved for a weak tie."""
    weight = float(weights[kind])
    cap = PER_DAY.get(kind)
    if cap is not None:
        weight *= max(0, min(days, cap))
    if weak:
        weight *= WEAK_TIE
    return weight


def decay(weight: float, age_days: float, half_life_days: float) -> float:
    """`weight` after `age_days` (a signal from the future counts whole)."""
    return float(weight * 0.5 ** (max(0.0, age_days) / half_life_days))


@dataclass(frozen=True)
class Weighed:
    """One signal as the score sees it now."""

    key: str
    kind: str
    weight: float
    at: datetime
    reason: str
    #: Its weight decayed to now.
    now: float


@dataclass(frozen=True)
class Health:
    score: float
    band: Band
    reasons: tuple[str, ...]
    #: Every signal that counts, largest contribution first.
    contributions: tuple[Weighed, ...]


@dataclass(frozen=True)
class SignalIn:
    """A stored signal, as the score reads it."""

    key: str
    kind: str
    weight: float
    at: datetime
    reason: str


def band_of(score: float, bands: tuple[float, float]) -> Band:
    green, amber = bands
    if score >= green:
        return "green"
    if score >= amber:
        return "amber"
    return "red"


def reason_line(weighed: Weighed) -> str:
    """One reason as a person reads it: the signal's words and its current points."""
    return f"{weighed.reason} ({weighed.now:+.1f})"


def health(signals: Iterable[SignalIn], now: datetime, scoring: Scoring) -> Health:
    """The score, band and reasons from `signals` at `now`."""
    counted = _counted(signals, now, scoring)
    weighed = [Weighed(s.key, s.kind, s.weight, s.at, s.reason, now_weight) for now_weight, s in counted]
    score = _score(counted, scoring)
    band = band_of(score, scoring.bands)
    # The reasons explain the band: the bad news first when below green, the good news only
    # when nothing pulls it down.
    negative = [w for w in weighed if w.now < 0]
    chosen = negative if negative else weighed
    reasons = tuple(reason_line(w) for w in chosen[: scoring.reasons])
    return Health(score=score, band=band, reasons=reasons, contributions=tuple(weighed))


def score_at(signals: Iterable[SignalIn], now: datetime, scoring: Scoring) -> Health:
    """`health`'s score and band, without the reasons (`reasons` and `contributions` empty): the
    same sums (`_counted`, `_score`) without a `Weighed` per signal or the reasons. For the
    sweep, which asks every client's score every hour and writes only a few."""
    score = _score(_counted(signals, now, scoring), scoring)
    return Health(score=score, band=band_of(score, scoring.bands), reasons=(), contributions=())


def _counted(signals: Iterable[SignalIn], now: datetime, scoring: Scoring) -> list[tuple[float, SignalIn]]:
    """Each signal that still counts, with its weight decayed to `now`: largest first, ties by key."""
    counted = []
    for s in signals:
        now_weight = decay(s.weight, _days(now - s.at), scoring.half_life_days)
        if abs(now_weight) >= 0.05:
            counted.append((now_weight, s))
    counted.sort(key=lambda c: (-abs(c[0]), c[1].key))
    return counted


def _score(counted: list[tuple[float, SignalIn]], scoring: Scoring) -> float:
    return round(min(100.0, max(0.0, scoring.base + sum(now_weight for now_weight, _ in counted))), 1)


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400.0


@dataclass(frozen=True)
class Change:
    """What a new score means for what is stored: write it, announce a band change, alert."""

    write: bool
    changed: bool
    #: Entering red: the owner is alerted.
    alert: bool


def compare(previous_band: str | None, previous_score: float | None, new: Health, *, min_move: float = 1.0) -> Change:
    """A score is written when the band moved or the score moved by `min_move` or more (decay
    moves it a little every tick: not worth a write each time). The first score of a client is
    written, and announced only when it is not green. Entering red alerts."""
    if previous_band is None:
        return Change(write=True, changed=new.band != "green", alert=new.band == "red")
    changed = previous_band != new.band
    moved = previous_score is None or abs(new.score - previous_score) >= min_move
    return Change(write=changed or moved, changed=changed, alert=changed and new.band == "red")


# -- renewals -----------------------------------------------------------------------------------------------------


def contract_end(start: date, term_months: int) -> date:
    """The day the contract ends: its start plus its term (the first day not covered)."""
    return add_months(start, term_months)


def validate_renewal_days(days: Sequence[int]) -> tuple[int, ...]:
    """The renewal reminders' days before the end, largest first (each at least 1, distinct)."""
    chosen = tuple(sorted({int(d) for d in days}, reverse=True))
    if not chosen or any(d < 1 for d in chosen):
        raise ValueError("renewal_days must be one or more whole numbers of days, each at least 1")
    return chosen


@dataclass(frozen=True)
class RenewalPlan:
    """The reminders of one contract due today: the one to send (or None) and those skipped
    (due earlier, never sent: a later one supersedes them)."""

    send: int | None
    skip: tuple[int, ...]


def renewals_due(end: date, today: date, days: Sequence[int], done: Iterable[int]) -> RenewalPlan:
    """Which reminders of a contract ending `end` are due `today`, `done` being those recorded.

    A reminder is due from ``end - d`` until the end. When several are due at once (a contract
    signed close to its end, a service down for weeks) only the nearest to the end is sent;
    the others are recorded skipped, so the owner gets one reminder, not three at once."""
    if today >= end:
        return RenewalPlan(None, ())
    recorded = set(done)
    due = [d for d in days if d not in recorded and today >= _minus(end, d)]
    if not due:
        return RenewalPlan(None, ())
    nearest = min(due)
    return RenewalPlan(nearest, tuple(sorted((d for d in due if d != nearest), reverse=True)))


def next_renewal(end: date, today: date, days: Sequence[int], done: Iterable[int]) -> date | None:
    """The day of the next reminder still to come (None: none left)."""
    recorded = set(done)
    coming = [_minus(end, d) for d in days if d not in recorded and _minus(end, d) > today and today < end]
    return min(coming) if coming else None


def _minus(day: date, days: int) -> date:
    return date.fromordinal(day.toordinal() - days)


# -- the client's tone --------------------------------------------------------------------------------------------

#: cam's reply categories as tone: what they say about the relationship.
NEGATIVE_REPLIES = frozenset({"not_interested", "complaint", "unsubscribe"})
POSITIVE_REPLIES = frozenset({"interested", "meeting_request", "referral"})
#: How a reply is tied to what we sent that is only a guess ("sender": the address alone).
WEAK_MATCHES = frozenset({"sender"})


def tone(category: str) -> str | None:
    """The signal kind a reply's category makes (None: it says nothing about the relationship)."""
    if category in NEGATIVE_REPLIES:
        return "reply_negative"
    if category in POSITIVE_REPLIES:
        return "reply_positive"
    return None
