"""The plan's calendar, table by table: business days (weekends, each country's public
holidays), the turnaround, even spreading, a period too short, month arithmetic."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from aicmo_actors.gateways.calendar import business_days, is_business_day
from aicmo_actors.strategy.calendar import (
    Crowded,
    add_months,
    earliest_due,
    holidays_in,
    period_end,
    schedule,
    spread,
)
from contracts.packages import Deliverable


def pieces(count: int, kind: str = "blog_post") -> Deliverable:
    return Deliverable(type=kind, count=count, channel="blog")


def dues(country: str, start: date, count: int, turnaround: int = 1, months: int = 1) -> list[date]:
    plan = schedule([pieces(count)], start=start, period_months=months, turnaround_days=turnaround, country=country)
    return [slot.due for slot in plan.slots]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2026, 3, 31), 12, date(2027, 3, 31)),
    ],
)
def test_add_months_clamps_the_day(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("start", "months", "last"),
    [
        (date(2026, 3, 1), 1, date(2026, 3, 31)),
        (date(2026, 1, 31), 1, date(2026, 2, 27)),
        (date(2026, 1, 1), 12, date(2026, 12, 31)),
        (date(2026, 2, 2), 1, date(2026, 3, 1)),
    ],
)
def test_the_period_is_start_to_start_plus_months_excluded(start: date, months: int, last: date) -> None:
    assert period_end(start, months) == last


@pytest.mark.parametrize(
    ("start", "turnaround", "country", "earliest"),
    [
        (date(2026, 1, 5), 1, "US", date(2026, 1, 6)),  # Monday: the next business day
        (date(2026, 1, 5), 5, "US", date(2026, 1, 12)),  # a week of business days
        (date(2026, 1, 2), 1, "US", date(2026, 1, 5)),  # Friday: over the weekend
        (date(2026, 1, 3), 5, "US", date(2026, 1, 9)),  # Saturday: the start itself never counts
        (date(2024, 7, 3), 1, "US", date(2024, 7, 5)),  # Independence Day skipped
        (date(2025, 12, 23), 2, "GB", date(2025, 12, 29)),  # Christmas, Boxing Day, a weekend
        (date(2025, 12, 23), 2, "DE", date(2025, 12, 29)),  # 25 and 26 December in Germany too
        (date(2025, 12, 23), 2, "US", date(2025, 12, 26)),  # only the 25th in the US
        (date(2025, 12, 31), 1, "US", date(2026, 1, 2)),  # New Year's Day
    ],
)
def test_nothing_is_due_before_the_turnaround(start: date, turnaround: int, country: str, earliest: date) -> None:
    assert earliest_due(start, turnaround, country) == earliest
    plan = schedule([pieces(40)], start=start, period_months=1, turnaround_days=turnaround, country=country)
    assert plan.earliest == earliest
    assert min(slot.due for slot in plan.slots) == earliest


@pytest.mark.parametrize(
    ("country", "start", "holidays", "business"),
    [
        ("US", date(2024, 7, 1), [date(2024, 7, 4)], [date(2024, 7, 5), date(2024, 7, 3)]),
        ("GB", date(2025, 12, 1), [date(2025, 12, 25), date(2025, 12, 26)], [date(2025, 12, 24)]),
        ("DE", date(2025, 12, 1), [date(2025, 12, 25), date(2025, 12, 26)], [date(2025, 12, 29)]),
        ("US", date(2025, 12, 1), [date(2025, 12, 25)], [date(2025, 12, 26)]),
        ("FR", date(2026, 7, 1), [date(2026, 7, 14)], [date(2026, 7, 15)]),
    ],
)
def test_public_holidays_and_weekends_are_never_due_dates(
    country: str, start: date, holidays: list[date], business: list[date]
) -> None:
    # As many pieces as business days: every business day after the turnaround gets one.
    eligible = [d for d in business_days(start + timedelta(days=1), period_end(start, 1), country)]
    found = dues(country, start, len(eligible))
    assert found == eligible
    assert all(d.weekday() < 5 for d in found)
    for holiday in holidays:
        assert holiday not in found
    for day in business:
        assert day in found


@pytest.mark.parametrize("country", ["US", "GB", "DE", "FR", "JP"])
@pytest.mark.parametrize("count", [1, 3, 8, 30, 45])
def test_every_due_date_is_a_business_day_of_the_clients_country(country: str, count: int) -> None:
    for found in (dues(country, date(2025, 12, 1), count), dues(country, date(2026, 4, 1), count, turnaround=4)):
        assert len(found) == count
        assert all(is_business_day(d, country) for d in found)
        assert found == sorted(found)


@pytest.mark.parametrize(
    ("count", "days", "indices"),
    [
        (1, 20, [10]),  # one piece: mid-period
        (4, 20, [2, 7, 12, 17]),  # four: five business days apart
        (2, 21, [5, 15]),
        (3, 3, [0, 1, 2]),  # as many as days: one a day
        (2, 1, [0, 0]),  # more than days: stacked
        (5, 2, [0, 0, 1, 1, 1]),  # the extra one on the last day
        (7, 3, [0, 0, 1, 1, 2, 2, 2]),
        (0, 5, []),
        (3, 0, []),
    ],
)
def test_spread(count: int, days: int, indices: list[int]) -> None:
    assert spread(count, days) == indices


def test_each_type_is_spread_evenly_over_the_period() -> None:
    # February 2026 in the US: 16 business days from Thu 5 (the turnaround) to Fri 27,
    # without Monday 16 (Washington's Birthday).
    plan = schedule(
        [pieces(4), Deliverable(type="newsletter", count=1, channel="email")],
        start=date(2026, 2, 2),
        period_months=1,
        turnaround_days=3,
        country="US",
    )
    assert (plan.start, plan.end, plan.earliest) == (date(2026, 2, 2), date(2026, 3, 1), date(2026, 2, 5))
    assert [(s.kind, s.piece, s.due) for s in plan.slots] == [
        (0, 1, date(2026, 2, 9)),
        (0, 2, date(2026, 2, 13)),
        (1, 1, date(2026, 2, 18)),
        (0, 3, date(2026, 2, 20)),
        (0, 4, date(2026, 2, 26)),
    ]
    assert plan.crowded == ()
    assert plan.holidays == ((date(2026, 2, 16), "Washington's Birthday"),)


def test_a_period_too_short_stacks_the_pieces_on_its_last_business_days() -> None:
    # Turnaround 20 business days from Mon 2 March: only 30 and 31 March and 1 April are left.
    plan = schedule(
        [Deliverable(type="social_post", count=5, channel="linkedin")],
        start=date(2026, 3, 2),
        period_months=1,
        turnaround_days=20,
        country="US",
    )
    assert [s.due for s in plan.slots] == [
        date(2026, 3, 30),
        date(2026, 3, 31),
        date(2026, 3, 31),
        date(2026, 4, 1),
        date(2026, 4, 1),
    ]
    assert [s.piece for s in plan.slots] == [1, 2, 3, 4, 5]
    assert plan.crowded == (Crowded(kind=0, pieces=5, days=3, per_day=2, after_period=False),)


def test_a_turnaround_longer_than_the_period_puts_everything_on_its_first_day_after() -> None:
    plan = schedule(
        [Deliverable(type="social_post", count=3, channel="linkedin")],
        start=date(2026, 3, 2),
        period_months=1,
        turnaround_days=25,
        country="US",
    )
    assert plan.earliest == date(2026, 4, 6)
    assert [s.due for s in plan.slots] == [date(2026, 4, 6)] * 3
    assert plan.crowded == (Crowded(kind=0, pieces=3, days=0, per_day=3, after_period=True),)


def test_the_calendar_is_deterministic_and_ordered_by_date_then_type() -> None:
    deliverables = [pieces(4), Deliverable(type="social_post", count=8, channel="linkedin")]
    first = schedule(deliverables, start=date(2026, 5, 4), period_months=2, turnaround_days=5, country="GB")
    again = schedule(deliverables, start=date(2026, 5, 4), period_months=2, turnaround_days=5, country="GB")
    assert first == again
    assert [(s.due, s.kind, s.piece) for s in first.slots] == sorted((s.due, s.kind, s.piece) for s in first.slots)
    # Two months (4 May to 3 July): the pieces reach into its second month, and GB's May bank
    # holidays (the start day itself, and 25 May) are skipped.
    assert first.end == date(2026, 7, 3)
    assert date(2026, 6, 4) < max(s.due for s in first.slots) <= first.end
    assert {d for d, _ in first.holidays} == {date(2026, 5, 4), date(2026, 5, 25)}
    assert all(s.due != date(2026, 5, 25) for s in first.slots)


def test_holidays_in_lists_weekday_holidays_only() -> None:
    assert holidays_in(date(2024, 7, 1), date(2024, 7, 31), "US") == ((date(2024, 7, 4), "Independence Day"),)
    # 4 July 2026 is a Saturday: only the observed Friday is a day off.
    assert holidays_in(date(2026, 7, 1), date(2026, 7, 31), "US") == (
        (date(2026, 7, 3), "Independence Day (observed)"),
    )
