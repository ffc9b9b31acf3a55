"""The client's calendar: business days (weekends and the public holidays of the client's
country, from the maintained `holidays` package) and local times in the client's zone.

Every "N business days" of the modules after the deal (reminders, turnaround, due dates)
is counted here, in the client's country and zone, never in the server's.
"""

from __future__ import annotations

import calendar as _months
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    import holidays


class UnknownCountry(ValueError):
    pass


@lru_cache(maxsize=256)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    import holidays  # on first use: importing it takes about 0.1 s, at every start of the service

    try:
        return holidays.country_holidays(country.upper(), years=year)
    except NotImplementedError as exc:
        raise UnknownCountry(f"no public holidays known for country {country!r} (ISO 3166-1 alpha-2)") from exc


def add_months(day: date, months: int) -> date:
    """`day` moved `months` months on, the day of month clamped to the month's last day
    (31 January + 1 = 28 or 29 February). Every module counts contract months with this."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, _months.monthrange(year, month)[1]))


def known_country(country: str) -> bool:
    try:
        _holidays(country, 2026)
    except UnknownCountry:
        return False
    return True


def holiday_name(day: date, country: str) -> str | None:
    """The public holiday on `day` in `country`, if any."""
    return _holidays(country, day.year).get(day)


def is_business_day(day: date, country: str) -> bool:
    return day.weekday() < 5 and holiday_name(day, country) is None


def next_business_day(day: date, country: str) -> date:
    """`day` itself when it is a business day, else the next one."""
    while not is_business_day(day, country):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, n: int, country: str) -> date:
    """The n-th business day after `day` (n >= 0; 0: `day` or the next business day)."""
    current = next_business_day(day, country)
    for _ in range(n):
        current = next_business_day(current + timedelta(days=1), country)
    return current


def business_days(start: date, end: date, country: str) -> list[date]:
    """The business days from `start` to `end`, both included."""
    out = []
    day = start
    while day <= end:
        if is_business_day(day, country):
            out.append(day)
        day += timedelta(days=1)
    return out


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris)") from exc


def local_date(moment: datetime, tz: str) -> date:
    return moment.astimezone(zone(tz)).date()


def at_local(day: date, hour: int, tz: str, minute: int = 0) -> datetime:
    """`day` at hour:minute in zone `tz`, as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone(tz)).astimezone(UTC)


def business_days_later(moment: datetime, n: int, country: str, tz: str, hour: int = 9) -> datetime:
    """`hour` o'clock local on the n-th business day after `moment`'s local day (n >= 1)."""
    return at_local(add_business_days(local_date(moment, tz) + timedelta(days=1), n - 1, country), hour, tz)
