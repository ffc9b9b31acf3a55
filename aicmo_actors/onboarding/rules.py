"""Onboarding's decisions, pure: the reminder schedule, the kickoff's time, and the answers
(cleaned, checked, complete or not). No database, no clock, no actor: every function takes
what it needs and returns data.

Business days are the client's (its country's public holidays, its zone's 9:00), counted by
`gateways.calendar`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from aicmo_actors.gateways.calendar import (
    add_business_days,
    at_local,
    business_days_later,
    known_country,
    local_date,
    zone,
)
from contracts.onboarding import BRIEF_FIELDS

#: The questionnaire's keys, in order, and the ones that must be answered.
FIELD_KEYS: tuple[str, ...] = tuple(field.key for field in BRIEF_FIELDS)
REQUIRED_KEYS: tuple[str, ...] = tuple(field.key for field in BRIEF_FIELDS if field.required)
#: One answer at most, in characters (a page of text; a longer one is refused, not cut).
MAX_ANSWER_CHARS = 5_000
#: Reminders (and the alert after them) go at this hour, client's local time.
REMINDER_HOUR = 9
#: The kickoff meeting: this hour, local, on the 2nd business day after the start; its length.
KICKOFF_HOUR = 10
KICKOFF_BUSINESS_DAY = 2
KICKOFF_MINUTES = 45

# Characters a person cannot have meant to type into an answer: control characters but the
# line feed and the tab (PostgreSQL cannot even store a NUL), and the bidirectional
# overrides and isolates that make text read differently from what it holds.
_KEPT_CONTROLS = {"\n", "\t"}
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_NEWLINES = re.compile(r"\r\n|\r|\u2028|\u2029|\x85")


class BadClient(ValueError):
    """The client's details do not allow an onboarding (unknown zone or country)."""


def check_client(timezone: str, country: str) -> None:
    """Refuse a zone or country the calendar does not know (one-line message)."""
    try:
        zone(timezone)
    except ValueError as exc:
        raise BadClient(str(exc)) from None
    if not known_country(country):
        raise BadClient(f"no public holidays known for country {country!r} (ISO 3166-1 alpha-2)")


# --- the reminder schedule ------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderPolicy:
    """Reminder n goes `every` business days after the previous email (the welcome first);
    `count` reminders, then, `every` business days after the last, the intake is overdue."""

    every: int = 3
    count: int = 2

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"reminders need at least 1 business day between them, not {self.every}")
        if self.count < 0:
            raise ValueError(f"the number of reminders cannot be negative ({self.count})")


def later(moment: datetime, intervals: int, policy: ReminderPolicy, *, country: str, tz: str) -> datetime:
    """`intervals` reminder intervals after `moment`: each one `policy.every` business days
    later, at `REMINDER_HOUR` local."""
    for _ in range(intervals):
        moment = business_days_later(moment, policy.every, country, tz, hour=REMINDER_HOUR)
    return moment


@dataclass(frozen=True)
class Plan:
    """When the first thing is due after the welcome, and when a person is alerted if the
    client never answers (the deadline the saga is told)."""

    first_action_at: datetime
    deadline_at: datetime


def plan(started: datetime, policy: ReminderPolicy, *, country: str, tz: str) -> Plan:
    """The schedule of an intake whose welcome was queued at `started`."""
    first = later(started, 1, policy, country=country, tz=tz)
    return Plan(first, later(first, policy.count, policy, country=country, tz=tz))


@dataclass(frozen=True)
class Remind:
    """Send reminder `number` now; look again at `next_action_at`; alert at `deadline_at`."""

    number: int
    next_action_at: datetime
    deadline_at: datetime


@dataclass(frozen=True)
class Overdue:
    """No answers after every reminder: tell a person."""

    reminders_sent: int


def due_step(
    reminders_sent: int, now: datetime, policy: ReminderPolicy, *, country: str, tz: str, needs_person: bool = False
) -> Remind | Overdue:
    """What an intake whose next action is due (at or before `now`) gets now.

    The next reminder is counted from now, not from when this one was planned: after a
    service stopped for a week the client gets one reminder, not every missed one at once.
    A client who answered by email (`needs_person`) gets no more reminders: a person reads
    the answers, and is alerted when the deadline passes."""
    if needs_person or reminders_sent >= policy.count:
        return Overdue(reminders_sent)
    number = reminders_sent + 1
    following = later(now, 1, policy, country=country, tz=tz)
    return Remind(number, following, later(following, policy.count - number, policy, country=country, tz=tz))


# --- the kickoff --------------------------------------------------------------------------


def kickoff_at(start: date, now: datetime, *, country: str, tz: str) -> datetime:
    """The kickoff meeting: `KICKOFF_HOUR` local on the 2nd business day after the start date
    (or after today, when the start date has passed: a meeting is never proposed in the past)."""
    base = max(start, local_date(now, tz))
    day = add_business_days(base + timedelta(days=1), KICKOFF_BUSINESS_DAY - 1, country)
    return at_local(day, KICKOFF_HOUR, tz)


# --- the answers --------------------------------------------------------------------------


def clean_answer(text: str) -> str:
    """An answer as stored: line ends as LF, NFC, no control characters but LF and tab, no
    bidirectional overrides, surrounding whitespace removed."""
    text = _NEWLINES.sub("\n", unicodedata.normalize("NFC", text))
    text = "".join(
        c
        for c in text
        if c in _KEPT_CONTROLS or (unicodedata.category(c) not in ("Cc", "Cs") and c not in _BIDI_CONTROLS)
    )
    return text.strip()


@dataclass(frozen=True)
class Checked:
    """Posted answers, cleaned (known questions only), and what is wrong with them."""

    answers: dict[str, str]
    #: Question key -> what is wrong, in words the client reads.
    errors: dict[str, str]


def check_answers(posted: Mapping[str, str]) -> Checked:
    """Keep the answers to known questions, cleaned; refuse (name) any that is too long."""
    answers: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key in FIELD_KEYS:
        if key not in posted:
            continue
        value = clean_answer(posted[key])
        if len(value) > MAX_ANSWER_CHARS:
            errors[key] = (
                f"This answer is {len(value):,} characters long; at most {MAX_ANSWER_CHARS:,} fit. "
                "Shorten it, or send longer documents as links."
            )
        answers[key] = value
    return Checked(answers, errors)


def merge(saved: Mapping[str, str], posted: Mapping[str, str]) -> dict[str, str]:
    """The answers after a save: what was posted replaces what was saved, question by question."""
    merged = {key: str(saved[key]) for key in FIELD_KEYS if key in saved}
    merged.update({key: posted[key] for key in FIELD_KEYS if key in posted})
    return merged


def missing(answers: Mapping[str, str]) -> list[str]:
    """The required questions still without an answer, in questionnaire order."""
    return [key for key in REQUIRED_KEYS if not str(answers.get(key, "")).strip()]


def complete(answers: Mapping[str, str]) -> bool:
    return not missing(answers)


def brief_of(answers: Mapping[str, str]) -> dict[str, str]:
    """The brief strategy reads: every question's key, "" where an optional one is unanswered."""
    return {key: str(answers.get(key, "")) for key in FIELD_KEYS}
