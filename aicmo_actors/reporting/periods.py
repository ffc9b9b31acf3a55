"""Report periods: their labels, their days, their bounds in a client's timezone, and when each
one's report is due. Pure: no database, no clock.

A period is a run of whole days of the client's calendar:

- ``day``: one day, labelled ``2027-01-15``;
- ``week``: an ISO week (Monday to Sunday), labelled ``2027-W03``;
- ``fortnight``: two weeks counted from the engagement's start (the `anchor`), labelled by its
  first and last day, ``2027-01-04--2027-01-17`` (ISO 8601's interval, with "--" for "/");
- ``month``: a calendar month, labelled ``2027-01``.

It starts at local midnight of its first day and ends at local midnight after its last (both
turned into UTC through the zone's rules, so a month with a DST change is 743 or 745 hours
long). Its report is due after it ends, at `hour` o'clock local time of the day after its last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KINDS = ("day", "week", "fortnight", "month")
#: A package's reporting cadence as a period kind.
CADENCE_KIND = {"weekly": "week", "fortnightly": "fortnight", "monthly": "month"}

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})--(\d{4}-\d{2}-\d{2})$")
#: The longest range `parse_label` accepts (a report is about a period, not a history).
MAX_RANGE_DAYS = 366


class PeriodError(ValueError):
    """A period label or kind that cannot be read (the message says what would be)."""


@dataclass(frozen=True, order=True)
class Period:
    """A run of whole days, `first` to `last` inclusive, of one kind, with its label."""

    first: date
    last: date
    kind: str
    label: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (PeriodError when unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"unknown timezone {name!r} (an IANA name, e.g. Europe/Berlin)") from None


def _month_end(first: date) -> date:
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def month(year: int, month_: int) -> Period:
    first = date(year, month_, 1)
    return Period(first, _month_end(first), "month", f"{year:04d}-{month_:02d}")


def week(day: date) -> Period:
    first = day - timedelta(days=day.weekday())
    year, number, _ = first.isocalendar()
    return Period(first, first + timedelta(days=6), "week", f"{year:04d}-W{number:02d}")


def fortnight(day: date, anchor: date) -> Period:
    """The two weeks counted from `anchor` that hold `day` (before the anchor: counted back)."""
    first = anchor + timedelta(days=((day - anchor).days // 14) * 14)
    last = first + timedelta(days=13)
    return Period(first, last, "fortnight", f"{first.isoformat()}--{last.isoformat()}")


def one_day(day: date) -> Period:
    return Period(day, day, "day", day.isoformat())


def period_of(kind: str, day: date, *, anchor: date | None = None) -> Period:
    """The period of `kind` that holds `day` (`anchor`: where fortnights are counted from)."""
    if kind == "day":
        return one_day(day)
    if kind == "week":
        return week(day)
    if kind == "month":
        return month(day.year, day.month)
    if kind == "fortnight":
        return fortnight(day, anchor or day)
    raise PeriodError(f"unknown period {kind!r} (one of {', '.join(KINDS)})")


def following(period: Period, *, anchor: date | None = None) -> Period:
    """The period of the same kind right after `period`."""
    return period_of(period.kind, period.last + timedelta(days=1), anchor=anchor or period.first)


def parse_label(label: str) -> Period:
    """A period from its label: ``2027-01``, ``2027-W03``, ``2027-01-15`` or a range
    ``2027-01-04--2027-01-17`` (a fortnight when 14 days long, else any run of days)."""
    text = label.strip()
    try:
        if m := _MONTH.match(text):
            return month(int(m[1]), int(m[2]))
        if m := _WEEK.match(text):
            year, number = int(m[1]), int(m[2])
            return week(date.fromisocalendar(year, number, 1))
        if _DAY.match(text):
            return one_day(date.fromisoformat(text))
        if m := _RANGE.match(text):
            first, last = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            if last < first:
                raise PeriodError(f"period {label!r}: its last day is before its first")
            if (last - first).days + 1 > MAX_RANGE_DAYS:
                raise PeriodError(f"period {label!r}: longer than {MAX_RANGE_DAYS} days")
            kind = "fortnight" if (last - first).days == 13 else "range"
            return Period(first, last, kind, f"{first.isoformat()}--{last.isoformat()}")
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"period {label!r} is not a date: {exc}") from None
    raise PeriodError(
        f"period {label!r} is not one of 2027-01 (month), 2027-W03 (ISO week), 2027-01-15 (day), "
        "2027-01-04--2027-01-17 (a range of days)"
    )


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of `day` in `tz`, in UTC (a day starting in a DST gap starts at its first instant)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def bounds(period: Period, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of `period` in UTC: local midnight of its first day, of the day after its last."""
    return local_midnight(period.first, tz), local_midnight(period.last + timedelta(days=1), tz)


def due_at(period: Period, tz: ZoneInfo, hour: int) -> datetime:
    """When the report of `period` is due: `hour` o'clock local time on the day after its last
    day, in UTC. An hour that does not exist that day (a DST gap) is read with the offset before
    the change (02:30 on the night clocks go forward is 03:30 summer time)."""
    if not 0 <= hour <= 23:
        raise PeriodError(f"hour {hour} is not 0 to 23")
    return datetime.combine(period.last + timedelta(days=1), time(hour), tzinfo=tz).astimezone(UTC)


def local_day(at: datetime, tz: ZoneInfo) -> date:
    """The client's calendar day at instant `at`."""
    return at.astimezone(tz).date()


def due_periods(
    kind: str,
    *,
    anchor: date,
    first_day: date,
    tz: ZoneInfo,
    hour: int,
    now: datetime,
    done: frozenset[str] = frozenset(),
    covered_until: date | None = None,
    limit: int = 12,
) -> list[Period]:
    """The periods whose report is due at `now` and not made yet, oldest first (at most `limit`).

    The first is the period of `kind` holding `first_day` (the engagement's start, or the day the
    client was signed when later: no report about a time before the agency knew the client).
    `done`: the labels already reported. `covered_until`: the last day an earlier report covered
    (a schedule changed from months to weeks does not report the same days twice: a period
    starting on or before it is skipped)."""
    found: list[Period] = []
    start = first_day if covered_until is None else max(first_day, covered_until + timedelta(days=1))
    period = period_of(kind, start, anchor=anchor)
    while due_at(period, tz, hour) <= now and len(found) < limit:
        if period.label not in done and (covered_until is None or period.first > covered_until):
            found.append(period)
        period = following(period, anchor=anchor)
    return found
