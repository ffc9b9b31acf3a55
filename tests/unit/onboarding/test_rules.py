"""Onboarding's pure rules, table by table: the reminder schedule in the client's business
days, the kickoff's time, the answers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from aicmo_actors.onboarding import rules
from aicmo_actors.onboarding.rules import Overdue, Remind, ReminderPolicy

POLICY = ReminderPolicy(every=3, count=2)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("started", "country", "tz", "first"),
    [
        # Monday: Tue, Wed, Thu -> Thursday 09:00 Paris (CET, UTC+1).
        (utc(2027, 3, 1, 10), "FR", "Europe/Paris", utc(2027, 3, 4, 8)),
        # 14 July (Wednesday) is a French public holiday: Tue, Thu, Fri (CEST, UTC+2).
        (utc(2027, 7, 12, 10), "FR", "Europe/Paris", utc(2027, 7, 16, 7)),
        # ... and not an American one: Tue, Wed, Thu.
        (utc(2027, 7, 12, 14), "US", "America/New_York", utc(2027, 7, 15, 13)),
        # Friday 2 July: the weekend, then Independence Day observed on Monday 5 July.
        (utc(2027, 7, 2, 14), "US", "America/New_York", utc(2027, 7, 8, 13)),
        # 23:30 UTC Monday is already Tuesday in Tokyo: Wed, Thu, Fri 09:00 JST.
        (utc(2027, 3, 1, 23, 30), "JP", "Asia/Tokyo", utc(2027, 3, 5, 0)),
    ],
)
def test_the_first_reminder_is_three_business_days_later_at_nine_local(
    started: datetime, country: str, tz: str, first: datetime
) -> None:
    assert rules.plan(started, POLICY, country=country, tz=tz).first_action_at == first


def test_the_deadline_is_one_interval_after_the_last_reminder() -> None:
    plan = rules.plan(utc(2027, 3, 1, 10), POLICY, country="FR", tz="Europe/Paris")
    # Reminders on Thu 4 and Tue 9 March; a person is alerted on Fri 12 March, 09:00 Paris.
    assert plan == rules.Plan(utc(2027, 3, 4, 8), utc(2027, 3, 12, 8))


def test_with_no_reminders_the_first_action_is_the_alert() -> None:
    plan = rules.plan(utc(2027, 3, 1, 10), ReminderPolicy(every=2, count=0), country="FR", tz="Europe/Paris")
    assert plan.first_action_at == plan.deadline_at == utc(2027, 3, 3, 8)
    assert rules.due_step(0, plan.first_action_at, ReminderPolicy(2, 0), country="FR", tz="Europe/Paris") == Overdue(0)


@pytest.mark.parametrize(
    ("sent", "now", "expected"),
    [
        # On time: reminder 1 on Thu 4 March, the next on Tue 9, the alert on Fri 12.
        (0, utc(2027, 3, 4, 8, 1), Remind(1, utc(2027, 3, 9, 8), utc(2027, 3, 12, 8))),
        # The last reminder: the next thing due is the alert, which is the deadline.
        (1, utc(2027, 3, 9, 8, 1), Remind(2, utc(2027, 3, 12, 8), utc(2027, 3, 12, 8))),
        (2, utc(2027, 3, 12, 8, 1), Overdue(2)),
        # A service stopped for a week: one reminder now, the next counted from now.
        (0, utc(2027, 3, 11, 15), Remind(1, utc(2027, 3, 16, 8), utc(2027, 3, 19, 8))),
    ],
)
def test_due_step(sent: int, now: datetime, expected: Remind | Overdue) -> None:
    assert rules.due_step(sent, now, POLICY, country="FR", tz="Europe/Paris") == expected


def test_a_client_who_answered_by_email_gets_no_more_reminders() -> None:
    step = rules.due_step(0, utc(2027, 3, 4, 8), POLICY, country="FR", tz="Europe/Paris", needs_person=True)
    assert step == Overdue(0)


@pytest.mark.parametrize(("every", "count"), [(0, 2), (3, -1)])
def test_a_policy_that_makes_no_sense_is_refused(every: int, count: int) -> None:
    with pytest.raises(ValueError):
        ReminderPolicy(every=every, count=count)


@pytest.mark.parametrize(
    ("start", "now", "kickoff"),
    [
        # Monday: Tuesday is the 1st business day after, Wednesday the 2nd; 10:00 Paris.
        (date(2027, 3, 1), utc(2027, 2, 20), utc(2027, 3, 3, 9)),
        # Saturday: Monday, Tuesday.
        (date(2027, 3, 6), utc(2027, 2, 20), utc(2027, 3, 9, 9)),
        # Tuesday 13 July: the 14th is a holiday, so Thursday, Friday (CEST).
        (date(2027, 7, 13), utc(2027, 2, 20), utc(2027, 7, 16, 8)),
        # A start date already past: counted from today (Monday 1 March), never in the past.
        (date(2027, 1, 1), utc(2027, 3, 1, 12), utc(2027, 3, 3, 9)),
    ],
)
def test_kickoff_is_the_second_business_day_after_the_start_at_ten_local(
    start: date, now: datetime, kickoff: datetime
) -> None:
    assert rules.kickoff_at(start, now, country="FR", tz="Europe/Paris") == kickoff


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  plain  ", "plain"),
        ("one\r\ntwo\rthree", "one\ntwo\nthree"),
        ("tab\tkept", "tab\tkept"),
        ("nul\x00 and bell\x07 gone", "nul and bell gone"),
        ("bidi \u202eoverride\u202c gone", "bidi override gone"),
        ("cafe\u0301", "café"),  # NFC
        ("family \U0001f468\u200d\U0001f469", "family \U0001f468\u200d\U0001f469"),  # ZWJ kept
    ],
)
def test_clean_answer(raw: str, clean: str) -> None:
    assert rules.clean_answer(raw) == clean


def test_check_answers_keeps_known_questions_and_names_the_ones_too_long() -> None:
    checked = rules.check_answers(
        {"business": " We sell tea. ", "audience": "x" * (rules.MAX_ANSWER_CHARS + 1), "action": "save", "evil": "1"}
    )
    assert set(checked.answers) == {"business", "audience"}
    assert checked.answers["business"] == "We sell tea."
    assert list(checked.errors) == ["audience"]
    assert "5,000" in checked.errors["audience"]
    assert rules.check_answers({"audience": "x" * rules.MAX_ANSWER_CHARS}).errors == {}


def test_merge_missing_complete_and_the_brief() -> None:
    saved = {"business": "tea", "audience": "cafes"}
    merged = rules.merge(saved, {"audience": "", "goals": "more shops"})
    assert merged == {"business": "tea", "audience": "", "goals": "more shops"}
    assert rules.missing(merged) == ["audience", "brand_voice", "competitors"]
    assert not rules.complete(merged)
    full = {key: "answer" for key in rules.REQUIRED_KEYS}
    assert rules.complete(full)
    brief = rules.brief_of(full)
    assert list(brief) == list(rules.FIELD_KEYS)
    assert brief["words_to_avoid"] == ""


@pytest.mark.parametrize(("tz", "country"), [("Mars/Olympus", "FR"), ("Europe/Paris", "XX")])
def test_check_client_refuses_an_unknown_zone_or_country(tz: str, country: str) -> None:
    with pytest.raises(rules.BadClient):
        rules.check_client(tz, country)
    rules.check_client("Europe/Paris", "FR")
