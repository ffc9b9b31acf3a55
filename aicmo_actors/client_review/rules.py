"""Client review's decisions, pure: the deadline, the reminders, the auto-approval, the
alert after the last reminder, the wrong-password limit and the page's comments. No
database, no clock, no actor: every function takes what it needs and returns data.

Business days are the client's (its country's public holidays, its zone's 9:00), counted by
`gateways.calendar`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from aicmo_actors.gateways.calendar import business_days_later, known_country, zone

#: Deadlines, reminders and the auto-approval fall at this hour, client's local time.
REVIEW_HOUR = 9
#: Wrong passwords allowed per project within `GUESS_WINDOW`; after them the form says "later".
MAX_GUESSES = 5
GUESS_WINDOW = timedelta(minutes=15)
#: A comment at most, in characters.
MAX_COMMENT_CHARS = 5_000


class BadClient(ValueError):
    """The client's zone or country is unknown to the calendar: no deadline can be set."""


def check_client(timezone: str, country: str) -> None:
    try:
        zone(timezone)
    except ValueError as exc:
        raise BadClient(str(exc)) from None
    if not known_country(country):
        raise BadClient(f"no public holidays known for country {country!r} (ISO 3166-1 alpha-2)")


@dataclass(frozen=True)
class Policy:
    """`reminders` reminders, `every` business days apart (the first at the deadline); link
    validity in days."""

    every: int = 3
    reminders: int = 2
    link_days: int = 30

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"reviews need at least 1 business day between reminders, not {self.every}")
        if self.reminders < 0:
            raise ValueError(f"the number of reminders cannot be negative ({self.reminders})")
        if self.link_days < 1:
            raise ValueError(f"a review link must stay valid at least 1 day, not {self.link_days}")


def later(moment: datetime, days: int, *, country: str, tz: str) -> datetime:
    """`REVIEW_HOUR` local on the `days`-th business day after `moment`."""
    return business_days_later(moment, days, country, tz, hour=REVIEW_HOUR)


@dataclass(frozen=True)
class Schedule:
    """A new batch's times: the answer is expected at `deadline_at` (the first reminder goes
    then, or the alert when there are no reminders); silence approves at `auto_approve_at`
    (only where the package allows it)."""

    deadline_at: datetime
    auto_approve_at: datetime | None
    first_action_at: datetime | None


def schedule(created: datetime, policy: Policy, auto_approve_days: int | None, *, country: str, tz: str) -> Schedule:
    deadline = later(created, policy.every, country=country, tz=tz)
    auto = later(created, auto_approve_days, country=country, tz=tz) if auto_approve_days else None
    first = deadline if policy.reminders > 0 or auto is None else None
    return Schedule(deadline, auto, first)


@dataclass(frozen=True)
class Remind:
    """Send reminder `number` now; the next thing is due at `next_action_at` (None: nothing
    but the auto-approval)."""

    number: int
    next_action_at: datetime | None


@dataclass(frozen=True)
class AutoApprove:
    """Silence until the package's auto-approval: every unanswered item approved."""


@dataclass(frozen=True)
class AlertPerson:
    """No answer after the last reminder, and no auto-approval: a person is told, once."""


Step = Remind | AutoApprove | AlertPerson


def due_step(
    now: datetime,
    *,
    reminders_sent: int,
    reminders_planned: int,
    every: int,
    next_action_at: datetime | None,
    auto_approve_at: datetime | None,
    needs_person: bool,
    country: str,
    tz: str,
) -> Step | None:
    """What an open batch gets now (None: nothing is due).

    The next reminder is counted from now, not from when this one was planned: after a
    service stopped for a week the client gets one reminder, not every missed one at once.
    The auto-approval comes before anything else due at the same time."""
    if auto_approve_at is not None and now >= auto_approve_at:
        return AutoApprove()
    if next_action_at is None or now < next_action_at:
        return None
    if reminders_sent < reminders_planned:
        number = reminders_sent + 1
        more = number < reminders_planned or auto_approve_at is None
        return Remind(number, later(now, every, country=country, tz=tz) if more else None)
    if auto_approve_at is None and not needs_person:
        return AlertPerson()
    return None


def guesses_left(failures: int, since: datetime | None, now: datetime) -> bool:
    """Whether another password may be tried: fewer than `MAX_GUESSES` wrong ones in the
    current `GUESS_WINDOW` (the window starts at the first wrong one and ends after it)."""
    if since is None or now - since >= GUESS_WINDOW:
        return True
    return failures < MAX_GUESSES


def after_wrong_guess(failures: int, since: datetime | None, now: datetime) -> tuple[int, datetime]:
    """The count and window after one more wrong password."""
    if since is None or now - since >= GUESS_WINDOW:
        return 1, now
    return failures + 1, since


def clean_comment(text: str) -> str:
    """A comment as stored: NFC, line ends as LF, no control characters but LF and tab, no
    surrounding blank space."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs")).strip()
