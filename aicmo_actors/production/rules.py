"""Production's rules: pure functions of data (no database, no clock, no actor).

- `item_id`: the work item's id, the same for the same project, period and planned key;
- `start_day`: the day drafting starts (the due day minus the package's turnaround in the
  client's business days);
- `should_start`, `late_reason`, `late_from`: when an item starts, when it is late;
- `after_qc`, `after_review`, `after_delivery`: where a verdict takes an item;
- `resend_due`: whether a command in flight is told again after silence;
- `batches`: which items go to the client together;
- `pick_writer`: the LLM generator or the templates;
- `deadline`: the period's last due day at 17:00 the client's time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal

from aicmo_actors.gateways.calendar import add_business_days, at_local, is_business_day, local_date
from aicmo_actors.production.tables import (
    APPROVED,
    CANCELLED,
    CHANGES_REQUESTED,
    DELIVERED,
    DRAFTING,
    IN_QC,
    IN_REVIEW,
    PLANNED,
    SIGNOFF,
)

#: Failed QC verdicts the generator retakes before a person must write the draft.
MAX_RETAKES = 2
#: Failed generator attempts (one per tick) before the templates write the version.
MAX_GENERATOR_ATTEMPTS = 3
#: The hour (client's time) the period's deadline falls at.
DEADLINE_HOUR = 17
#: States an item is still being worked on in (not delivered, not cancelled).
OPEN_STATES = (PLANNED, DRAFTING, IN_QC, SIGNOFF, IN_REVIEW, CHANGES_REQUESTED, APPROVED)
#: States in which a person may upload a draft (the next version goes to QC).
UPLOADABLE = (PLANNED, DRAFTING, IN_QC, SIGNOFF, CHANGES_REQUESTED)
#: States the generator writes the next version in (unless a person is awaited).
WRITING = (DRAFTING, CHANGES_REQUESTED)


@dataclass(frozen=True)
class Silence:
    """How long a command in flight waits for its answer before it is told again."""

    qc: timedelta = timedelta(minutes=10)
    review: timedelta = timedelta(hours=6)
    #: The longest wait between two tellings of a review. A batch waits days for the client's
    #: answer; it is told again after as long as it has waited so far (6 h, 6 h, 12 h), at most this.
    review_cap: timedelta = timedelta(hours=12)
    delivery: timedelta = timedelta(hours=1)
    cancel: timedelta = timedelta(minutes=30)
    #: The longest wait between two tellings of a delivery. A delivery the courier keeps (a
    #: client on hold, a webhook retrying, a failure waiting for a person) is told again after
    #: as long as it has waited so far (1 h, 1 h, 2 h, 4 h...), at most this.
    delivery_cap: timedelta = timedelta(days=1)
    #: The wait between two tellings of a delivery the courier said it keeps (`DeliveryKept`) or
    #: is failing with: it announces the outcome itself, and telling again only recovers an
    #: announcement lost when the courier crashed between its commit and its publish (a
    #: restart of production tells everything again at once).
    delivery_kept: timedelta = timedelta(days=7)
    #: The wait between two tellings of a review batch client review said it holds
    #: (`ReviewRequested`): it reminds the client, auto-approves and announces each verdict
    #: from its own outbox, so telling again only recovers a batch it lost.
    review_kept: timedelta = timedelta(days=7)

    def review_at(self, told_at: datetime | None, created_at: datetime | None, requested: bool) -> datetime | None:
        """When a review batch told at `told_at` is told again (None: now); `requested`: client
        review said it holds the batch (`ReviewRequested`)."""
        if requested:
            return resend_at(told_at, self.review_kept)
        return resend_at(told_at, self.review, since=created_at, cap=self.review_cap)

    def delivery_at(self, told_at: datetime | None, created_at: datetime | None, answered: bool) -> datetime | None:
        """When a delivery told at `told_at` is told again (None: now); `answered`: the courier
        said it keeps it or that it is failing."""
        if answered:
            return resend_at(told_at, self.delivery_kept)
        return resend_at(told_at, self.delivery, since=created_at, cap=self.delivery_cap)


def item_id(project_id: uuid.UUID | str, period: int, key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"aicmo:item:{project_id}:{period}:{key}")


def business_days_before(day: date, n: int, country: str) -> date:
    """The n-th business day before `day` (n >= 0; 0: `day` or the business day before it)."""
    current = day
    while not is_business_day(current, country):
        current -= timedelta(days=1)
    for _ in range(n):
        current -= timedelta(days=1)
        while not is_business_day(current, country):
            current -= timedelta(days=1)
    return current


def start_day(due: date, turnaround_days: int, country: str) -> date:
    """When drafting starts: `turnaround_days` of the client's business days before `due`."""
    return business_days_before(due, turnaround_days, country)


def should_start(start_on: date, now: datetime, tz: str) -> bool:
    """On or after the start day (the client's date); a start already past: at once."""
    return local_date(now, tz) >= start_on


def end_of_day(day: date, tz: str) -> datetime:
    return at_local(day + timedelta(days=1), 0, tz)


def late_reason(
    *,
    state: str,
    due: date,
    started_at: datetime | None,
    turnaround_days: int,
    country: str,
    tz: str,
    now: datetime,
) -> str | None:
    """Why an open item is late now ("due" or "turnaround"), or None."""
    if state not in OPEN_STATES:
        return None
    if now >= end_of_day(due, tz):
        return "due"
    if started_at is not None:
        last = add_business_days(local_date(started_at, tz), turnaround_days, country)
        if now >= end_of_day(last, tz):
            return "turnaround"
    return None


@lru_cache(maxsize=4096)
def late_from(
    *, state: str, due: date, started_at: datetime | None, turnaround_days: int, country: str, tz: str
) -> datetime | None:
    """When an open item becomes late (the earlier of the end of its due day and of its
    turnaround), or None for an item not open: `late_reason` is not None from then on, and
    None before. The studio's tick compares the earliest of these with the clock, again after
    every change to the items: kept per item's answers (the zone and business-day arithmetic
    is the cost), most items being the same from one read to the next."""
    if state not in OPEN_STATES:
        return None
    at = end_of_day(due, tz)
    if started_at is not None:
        at = min(at, end_of_day(add_business_days(local_date(started_at, tz), turnaround_days, country), tz))
    return at


@dataclass(frozen=True)
class QcOutcome:
    state: str
    retakes: int
    needs_person: bool


def after_qc(*, passed: bool, retakes: int, qc_signoff: bool) -> QcOutcome:
    """Where a QC verdict takes an item in QC: on, or back for a retake, or to a person."""
    if passed:
        return QcOutcome(SIGNOFF if qc_signoff else IN_REVIEW, retakes, False)
    if retakes < MAX_RETAKES:
        return QcOutcome(DRAFTING, retakes + 1, False)
    return QcOutcome(DRAFTING, retakes, True)


@dataclass(frozen=True)
class ReviewOutcome:
    state: str
    rounds: int
    #: The round is beyond the package's (billable): a person is told, once per round.
    beyond_package: bool


def after_review(*, verdict: Literal["approved", "changes"], rounds: int, review_rounds: int) -> ReviewOutcome:
    if verdict == "approved":
        return ReviewOutcome(APPROVED, rounds, False)
    rounds += 1
    return ReviewOutcome(CHANGES_REQUESTED, rounds, rounds > review_rounds)


def after_delivery(methods: Sequence[str], delivered: Iterable[str]) -> bool:
    """Whether every method of the package has delivered the version."""
    return set(methods) <= set(delivered)


def resend_due(
    told_at: datetime | None,
    now: datetime,
    silence: timedelta,
    *,
    since: datetime | None = None,
    cap: timedelta | None = None,
) -> bool:
    """A command never told (None), or told `silence` ago without an answer: tell it again.

    With `since` (when it was first told) and `cap`, the wait doubles: after `silence`, then
    after as long as the command had been waiting when it was last told, at most `cap`. A
    command the other side keeps for days is then told about 20 times, not once an hour."""
    return come_at(resend_at(told_at, silence, since=since, cap=cap), now)


def come_at(at: datetime | None, now: datetime) -> bool:
    """A command to tell again at `at` (`resend_at`) is due `now` (None: due at once)."""
    return at is None or now >= at


def resend_at(
    told_at: datetime | None, silence: timedelta, *, since: datetime | None = None, cap: timedelta | None = None
) -> datetime | None:
    """When a command told at `told_at` is told again (`resend_due`); None: now (never told)."""
    if told_at is None:
        return None
    wait = silence
    if since is not None and cap is not None:
        wait = min(max(silence, told_at - since), max(silence, cap))
    return told_at + wait


def batches(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(project, item) of the items awaiting a batch -> items per project, in order."""
    out: dict[str, list[str]] = {}
    for project, item in items:
        out.setdefault(project, []).append(item)
    return out


def batch_key(project_id: str, n: int) -> str:
    return f"{project_id}:review:{n}"


def qc_key(item: str, version: int) -> str:
    return f"{item}:v{version}:qc"


def delivery_key(item: str, version: int, method: str) -> str:
    return f"{item}:v{version}:{method}"


def pick_writer(*, has_llm: bool, attempts: int, used_tokens: int, budget_tokens: int | None) -> str:
    """ "llm" while it has budget and has not failed too often for this version, else "template"."""
    if not has_llm or attempts >= MAX_GENERATOR_ATTEMPTS:
        return "template"
    if budget_tokens is not None and used_tokens >= budget_tokens:
        return "template"
    return "llm"


def deadline(dues: Iterable[date], tz: str) -> datetime | None:
    last = max(dues, default=None)
    return None if last is None else at_local(last, DEADLINE_HOUR, tz)


@dataclass(frozen=True)
class Standing:
    """Where a project's period stands, by state."""

    total: int
    counts: dict[str, int]

    @property
    def delivered(self) -> int:
        return self.counts.get(DELIVERED, 0)

    @property
    def all_delivered(self) -> bool:
        return self.total > 0 and self.delivered == self.total

    @property
    def cancelled(self) -> int:
        return self.counts.get(CANCELLED, 0)


def standing(states: Iterable[str]) -> Standing:
    counts: dict[str, int] = {}
    total = 0
    for state in states:
        counts[state] = counts.get(state, 0) + 1
        total += 1
    return Standing(total, counts)
