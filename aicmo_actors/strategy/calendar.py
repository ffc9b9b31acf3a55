"""The plan's calendar: when each piece of the first period is due. Pure.

The period is [start, start + period_months months). Its days that count are the client's
business days (weekends and the public holidays of the client's country, through
`gateways.calendar`), from the `turnaround_days`-th business day after the start on: nothing
can be due sooner than the package's turnaround allows.

Each deliverable type's `count` pieces are spread evenly over those days, one type at a time
(the same inputs always give the same dates):

- with at least as many days as pieces, piece i (0-based) of n falls on day
  ``(2i + 1) * days // (2n)``: the middle of its share of the period, so one piece is due
  mid-period and four are due about a week apart, never two of one type on one day;
- with fewer days than pieces (a short period, a long turnaround), every day gets
  ``n // days`` pieces and the last ``n % days`` days one more: the pieces are stacked,
  the extra ones on the last business days, and a `Crowded` note says so;
- with no business day left in the period after the turnaround, every piece is due on the
  first day the turnaround allows, after the period, and a `Crowded` note says so too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from aicmo_actors.gateways.calendar import add_business_days, add_months, business_days, holiday_name
from contracts.packages import Deliverable


@dataclass(frozen=True)
class Slot:
    """One piece of work and the day it is due: piece `piece` (1-based) of deliverable `kind`."""

    kind: int  # index into the package's deliverables
    piece: int
    due: date


@dataclass(frozen=True)
class Crowded:
    """A deliverable whose pieces did not fit one per business day: `per_day` at most on a day;
    `after_period`: the turnaround left no business day in the period at all."""

    kind: int
    pieces: int
    days: int
    per_day: int
    after_period: bool


@dataclass(frozen=True)
class Schedule:
    start: date
    #: The period's last day (included).
    end: date
    #: The first day anything may be due (the turnaround after the start).
    earliest: date
    slots: tuple[Slot, ...]
    crowded: tuple[Crowded, ...]
    #: Public holidays on weekdays in the period (not business days), with their names.
    holidays: tuple[tuple[date, str], ...]


def period_end(start: date, period_months: int) -> date:
    """The last day (included) of the period that begins on `start`."""
    return add_months(start, period_months) - timedelta(days=1)


def earliest_due(start: date, turnaround_days: int, country: str) -> date:
    """The `turnaround_days`-th business day after `start` (the start itself never counts)."""
    return add_business_days(start + timedelta(days=1), max(turnaround_days, 1) - 1, country)


def spread(pieces: int, days: int) -> list[int]:
    """Which of `days` days (indices, ascending) each of `pieces` pieces falls on (see the module)."""
    if pieces <= 0 or days <= 0:
        return []
    if pieces <= days:
        return [(2 * i + 1) * days // (2 * pieces) for i in range(pieces)]
    each, extra = divmod(pieces, days)
    out: list[int] = []
    for day in range(days):
        out += [day] * (each + (1 if day >= days - extra else 0))
    return out


def holidays_in(start: date, end: date, country: str) -> tuple[tuple[date, str], ...]:
    """The public holidays from `start` to `end` that fall on a weekday."""
    found = []
    day = start
    while day <= end:
        name = holiday_name(day, country) if day.weekday() < 5 else None
        if name is not None:
            found.append((day, name))
        day += timedelta(days=1)
    return tuple(found)


def schedule(
    deliverables: Sequence[Deliverable], *, start: date, period_months: int, turnaround_days: int, country: str
) -> Schedule:
    """When every piece of the first period is due (see the module for how)."""
    end = period_end(start, period_months)
    earliest = earliest_due(start, turnaround_days, country)
    days = [d for d in business_days(start, end, country) if d >= earliest]
    slots: list[Slot] = []
    crowded: list[Crowded] = []
    for kind, deliverable in enumerate(deliverables):
        count = deliverable.count
        if not days:
            slots += [Slot(kind, piece + 1, earliest) for piece in range(count)]
            crowded.append(Crowded(kind, count, 0, count, after_period=True))
            continue
        indices = spread(count, len(days))
        slots += [Slot(kind, piece + 1, days[index]) for piece, index in enumerate(indices)]
        if count > len(days):
            crowded.append(Crowded(kind, count, len(days), -(-count // len(days)), after_period=False))
    slots.sort(key=lambda s: (s.due, s.kind, s.piece))
    return Schedule(
        start=start,
        end=end,
        earliest=earliest,
        slots=tuple(slots),
        crowded=tuple(crowded),
        holidays=holidays_in(start, end, country),
    )
