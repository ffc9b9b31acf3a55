"""Report periods, table by table: labels, boundaries per kind and timezone (DST included), the due
time of a period's report, and which periods are due."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from aicmo_actors.reporting.periods import (
    PeriodError,
    bounds,
    due_at,
    due_periods,
    following,
    parse_label,
    period_of,
    zone,
)

BERLIN, NEW_YORK, UTC_ZONE = zone("Europe/Berlin"), zone("America/New_York"), zone("UTC")
ANCHOR = date(2027, 1, 4)


@pytest.mark.parametrize(
    ("kind", "day", "first", "last", "label"),
    [
        ("day", date(2027, 1, 15), date(2027, 1, 15), date(2027, 1, 15), "2027-01-15"),
        ("week", date(2027, 1, 15), date(2027, 1, 11), date(2027, 1, 17), "2027-W02"),
        ("week", date(2027, 1, 1), date(2026, 12, 28), date(2027, 1, 3), "2026-W53"),  # ISO year
        ("month", date(2027, 2, 10), date(2027, 2, 1), date(2027, 2, 28), "2027-02"),
        ("month", date(2028, 2, 29), date(2028, 2, 1), date(2028, 2, 29), "2028-02"),
        ("month", date(2027, 12, 31), date(2027, 12, 1), date(2027, 12, 31), "2027-12"),
        ("fortnight", date(2027, 1, 4), date(2027, 1, 4), date(2027, 1, 17), "2027-01-04--2027-01-17"),
        ("fortnight", date(2027, 1, 18), date(2027, 1, 18), date(2027, 1, 31), "2027-01-18--2027-01-31"),
        ("fortnight", date(2027, 1, 31), date(2027, 1, 18), date(2027, 1, 31), "2027-01-18--2027-01-31"),
        ("fortnight", date(2027, 1, 3), date(2026, 12, 21), date(2027, 1, 3), "2026-12-21--2027-01-03"),
    ],
)
def test_period_of(kind: str, day: date, first: date, last: date, label: str) -> None:
    period = period_of(kind, day, anchor=ANCHOR)
    assert (period.first, period.last, period.label, period.kind) == (first, last, label, kind)
    assert parse_label(label) == period


@pytest.mark.parametrize(
    ("kind", "day", "next_first"),
    [
        ("day", date(2027, 12, 31), date(2028, 1, 1)),
        ("week", date(2027, 1, 15), date(2027, 1, 18)),
        ("month", date(2027, 12, 5), date(2028, 1, 1)),
        ("fortnight", date(2027, 1, 5), date(2027, 1, 18)),
    ],
)
def test_following(kind: str, day: date, next_first: date) -> None:
    assert following(period_of(kind, day, anchor=ANCHOR), anchor=ANCHOR).first == next_first


@pytest.mark.parametrize(
    "label",
    [
        "2027-13",
        "2027-00",
        "2027-W54",
        "2027-02-30",
        "Jan 2027",
        "",
        "2027-01-10--2027-01-01",
        "2020-01-01--2027-01-01",
    ],
)
def test_bad_labels(label: str) -> None:
    with pytest.raises(PeriodError):
        parse_label(label)


def test_a_range_of_days_and_an_unknown_zone() -> None:
    period = parse_label("2027-01-01--2027-01-10")
    assert (period.kind, period.days) == ("range", 10)
    with pytest.raises(PeriodError, match="unknown timezone"):
        zone("Mars/Olympus")
    with pytest.raises(PeriodError):
        period_of("year", date(2027, 1, 1))


@pytest.mark.parametrize(
    ("label", "tz", "start", "end", "hours"),
    [
        ("2027-01", BERLIN, datetime(2026, 12, 31, 23, tzinfo=UTC), datetime(2027, 1, 31, 23, tzinfo=UTC), 744),
        # March: clocks go forward on the 28th: one hour shorter.
        ("2027-03", BERLIN, datetime(2027, 2, 28, 23, tzinfo=UTC), datetime(2027, 3, 31, 22, tzinfo=UTC), 743),
        # October: clocks go back on the 31st: one hour longer.
        ("2027-10", BERLIN, datetime(2027, 9, 30, 22, tzinfo=UTC), datetime(2027, 10, 31, 23, tzinfo=UTC), 745),
        ("2027-03-14", NEW_YORK, datetime(2027, 3, 14, 5, tzinfo=UTC), datetime(2027, 3, 15, 4, tzinfo=UTC), 23),
        ("2027-W43", BERLIN, datetime(2027, 10, 24, 22, tzinfo=UTC), datetime(2027, 10, 31, 23, tzinfo=UTC), 169),
        ("2027-01", UTC_ZONE, datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC), 744),
    ],
)
def test_bounds_in_the_clients_timezone(label: str, tz: object, start: datetime, end: datetime, hours: int) -> None:
    got_start, got_end = bounds(parse_label(label), tz)  # type: ignore[arg-type]
    assert (got_start, got_end) == (start, end)
    assert (got_end - got_start).total_seconds() == hours * 3600


@pytest.mark.parametrize(
    ("label", "tz", "hour", "due"),
    [
        ("2027-01", BERLIN, 8, datetime(2027, 2, 1, 7, tzinfo=UTC)),
        ("2027-03", BERLIN, 8, datetime(2027, 4, 1, 6, tzinfo=UTC)),  # summer time by then
        ("2027-03-27", BERLIN, 8, datetime(2027, 3, 28, 6, tzinfo=UTC)),  # the day clocks go forward
        ("2027-03-27", BERLIN, 2, datetime(2027, 3, 28, 1, tzinfo=UTC)),  # 02:00 does not exist: 03:00 CEST
        ("2027-10-30", BERLIN, 2, datetime(2027, 10, 31, 0, tzinfo=UTC)),  # 02:00 twice: the first
        ("2027-W02", NEW_YORK, 0, datetime(2027, 1, 18, 5, tzinfo=UTC)),
        ("2027-01-04--2027-01-17", UTC_ZONE, 23, datetime(2027, 1, 18, 23, tzinfo=UTC)),
    ],
)
def test_due_at(label: str, tz: object, hour: int, due: datetime) -> None:
    assert due_at(parse_label(label), tz, hour) == due  # type: ignore[arg-type]


def test_due_at_refuses_a_bad_hour() -> None:
    with pytest.raises(PeriodError):
        due_at(parse_label("2027-01"), BERLIN, 24)


def _due(kind: str, now: datetime, **kwargs: object) -> list[str]:
    found = due_periods(kind, anchor=ANCHOR, first_day=ANCHOR, tz=BERLIN, hour=8, now=now, **kwargs)  # type: ignore[arg-type]
    return [p.label for p in found]


@pytest.mark.parametrize(
    ("kind", "now", "labels"),
    [
        ("month", datetime(2027, 2, 1, 6, 59, tzinfo=UTC), []),
        ("month", datetime(2027, 2, 1, 7, 0, tzinfo=UTC), ["2027-01"]),
        ("month", datetime(2027, 4, 2, tzinfo=UTC), ["2027-01", "2027-02", "2027-03"]),
        ("week", datetime(2027, 1, 11, 7, tzinfo=UTC), ["2027-W01"]),
        ("fortnight", datetime(2027, 1, 18, 6, 59, tzinfo=UTC), []),
        ("fortnight", datetime(2027, 1, 18, 7, tzinfo=UTC), ["2027-01-04--2027-01-17"]),
        ("day", datetime(2027, 1, 6, 7, tzinfo=UTC), ["2027-01-04", "2027-01-05"]),
    ],
)
def test_due_periods(kind: str, now: datetime, labels: list[str]) -> None:
    assert _due(kind, now) == labels


def test_due_periods_skip_what_was_covered_and_stop_at_the_limit() -> None:
    now = datetime(2027, 4, 2, tzinfo=UTC)
    assert _due("month", now, covered_until=date(2027, 1, 31)) == ["2027-02", "2027-03"]
    assert _due("month", now, limit=1) == ["2027-01"]
    # From months to weeks after January's report: no week starting in January again.
    weeks = _due("week", datetime(2027, 2, 15, 7, tzinfo=UTC), covered_until=date(2027, 1, 31))
    assert weeks == ["2027-W05", "2027-W06"]
    assert _due("month", now, covered_until=date(2027, 3, 31)) == []
