"""Client review's rules, table by table: the deadline and the auto-approval on the client's
business days, the reminders, the alert after the last one, the wrong-password limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aicmo_actors.client_review import rules
from aicmo_actors.client_review.web import access_cookie, hash_password, password_matches, sanitise

BERLIN = {"country": "DE", "tz": "Europe/Berlin"}
# Monday 30 November 2026, 10:00 UTC.
START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def at9(day: int, month: int = 12) -> datetime:
    """09:00 Berlin (08:00 UTC in winter)."""
    return datetime(2026, month, day, 8, 0, tzinfo=UTC)


def test_the_deadline_and_the_auto_approval_are_the_clients_business_days_at_nine() -> None:
    plan = rules.schedule(START, rules.Policy(every=3, reminders=2), 5, **BERLIN)
    assert plan.deadline_at == at9(3)  # Tue 1, Wed 2, Thu 3 December
    assert plan.auto_approve_at == at9(7)  # ... Fri 4, Mon 7
    assert plan.first_action_at == at9(3)


def test_holidays_are_skipped() -> None:
    # Wed 23 December 2026: Thu 24, (25, 26 holidays, weekend), Mon 28, Tue 29.
    plan = rules.schedule(datetime(2026, 12, 23, 10, tzinfo=UTC), rules.Policy(every=3), None, **BERLIN)
    assert plan.deadline_at == at9(29)
    assert plan.auto_approve_at is None


@pytest.mark.parametrize(
    ("reminders", "auto_days", "first"),
    [(2, None, at9(3)), (0, None, at9(3)), (0, 5, None), (1, 5, at9(3))],
)
def test_the_first_thing_due(reminders: int, auto_days: int | None, first: datetime | None) -> None:
    plan = rules.schedule(START, rules.Policy(every=3, reminders=reminders), auto_days, **BERLIN)
    assert plan.first_action_at == first


def step(
    now: datetime,
    *,
    sent: int,
    planned: int = 2,
    nxt: datetime | None,
    auto: datetime | None = None,
    needs_person: bool = False,
) -> rules.Step | None:
    return rules.due_step(
        now,
        reminders_sent=sent,
        reminders_planned=planned,
        every=3,
        next_action_at=nxt,
        auto_approve_at=auto,
        needs_person=needs_person,
        **BERLIN,
    )


def test_reminders_then_the_alert_without_auto_approval() -> None:
    assert step(at9(3) - timedelta(minutes=1), sent=0, nxt=at9(3)) is None
    assert step(at9(3), sent=0, nxt=at9(3)) == rules.Remind(1, at9(8))
    assert step(at9(8), sent=1, nxt=at9(8)) == rules.Remind(2, at9(11))
    assert step(at9(11), sent=2, nxt=at9(11)) == rules.AlertPerson()
    assert step(at9(11), sent=2, nxt=at9(11), needs_person=True) is None


def test_with_auto_approval_the_last_reminder_plans_nothing_more_and_silence_approves() -> None:
    auto = at9(10)
    assert step(at9(3), sent=0, nxt=at9(3), auto=auto) == rules.Remind(1, at9(8))
    assert step(at9(8), sent=1, nxt=at9(8), auto=auto) == rules.Remind(2, None)
    assert step(at9(9), sent=2, nxt=None, auto=auto) is None
    assert step(auto, sent=2, nxt=None, auto=auto) == rules.AutoApprove()
    # The auto-approval comes before a reminder due at the same time.
    assert step(auto, sent=0, nxt=at9(3), auto=auto) == rules.AutoApprove()


def test_a_late_tick_sends_one_reminder_counted_from_now() -> None:
    assert step(at9(20), sent=0, nxt=at9(3)) == rules.Remind(1, at9(23))


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        rules.Policy(every=0)
    with pytest.raises(ValueError):
        rules.Policy(reminders=-1)
    with pytest.raises(ValueError):
        rules.Policy(link_days=0)


def test_an_unknown_client_zone_or_country_is_refused() -> None:
    with pytest.raises(rules.BadClient):
        rules.check_client("Mars/Olympus", "DE")
    with pytest.raises(rules.BadClient):
        rules.check_client("UTC", "XX")


def test_wrong_passwords_are_limited_per_window() -> None:
    now = START
    failures, since = 0, None
    for _ in range(rules.MAX_GUESSES):
        assert rules.guesses_left(failures, since, now)
        failures, since = rules.after_wrong_guess(failures, since, now)
        now += timedelta(seconds=30)
    assert not rules.guesses_left(failures, since, now)
    assert rules.guesses_left(failures, since, START + rules.GUESS_WINDOW)
    assert rules.after_wrong_guess(failures, since, START + rules.GUESS_WINDOW) == (1, START + rules.GUESS_WINDOW)


def test_password_hash_and_cookie() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert password_matches(stored, "correct horse battery")
    assert not password_matches(stored, "wrong")
    assert not password_matches("not a hash", "x")
    assert access_cookie(stored, "a" * 64) != access_cookie(hash_password("correct horse battery"), "a" * 64)


def test_production_html_is_sanitised() -> None:
    html = (
        '<h2>Title</h2><p onclick="x()">Text <a href="javascript:alert(1)">bad</a> <a href="https://ok.example">ok</a>'
        "</p><script>alert(1)</script><iframe src=x></iframe><style>p{}</style>"
    )
    clean = sanitise(html)
    assert "<h2>Title</h2>" in clean
    for bad in ("onclick", "javascript:", "<script", "<iframe", "<style"):
        assert bad not in clean
    assert 'href="https://ok.example"' in clean


def test_comments_are_cleaned() -> None:
    assert rules.clean_comment("  a\r\nb\x00c\x07\t ") == "a\nbc"
