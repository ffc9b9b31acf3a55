"""The saga's rules for later periods: how many a package has, when each begins, the steps'
names, what follows a step, and what a cancelled project undoes (never a period's plan)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aicmo_actors.orchestration import saga_rules as rules

MONTHLY = {"billing": "monthly", "period_months": 1, "term_months": 12}


@pytest.mark.parametrize(
    ("package", "periods"),
    [
        (MONTHLY, 12),
        ({"billing": "monthly", "period_months": 3, "term_months": 12}, 4),
        ({"billing": "monthly", "period_months": 5, "term_months": 12}, 3),  # the last is shorter
        ({"billing": "monthly", "period_months": 1, "term_months": 1}, 1),
        ({"billing": "one_off", "period_months": 2, "term_months": 12}, 1),
        ({"billing": "milestones", "period_months": 1, "term_months": 6}, 1),
    ],
)
def test_a_monthly_retainer_has_one_period_per_period_months_of_its_term_any_other_package_one(
    package: dict[str, object], periods: int
) -> None:
    assert rules.periods(package) == periods


def test_a_period_begins_its_months_after_the_start_and_its_steps_a_week_before() -> None:
    start = date(2027, 1, 31)
    assert rules.period_start(start, MONTHLY, 1) == start
    assert rules.period_start(start, MONTHLY, 2) == date(2027, 2, 28)  # clamped to the month
    assert rules.period_start(start, MONTHLY, 3) == date(2027, 3, 31)  # counted from the start
    assert rules.plan_on(start, MONTHLY, 3) == date(2027, 3, 24)
    quarterly = {**MONTHLY, "period_months": 3}
    assert rules.period_start(date(2027, 1, 4), quarterly, 2) == date(2027, 4, 4)


def test_step_names_kinds_periods_and_owners() -> None:
    assert [rules.step_name(k, 1) for k in ("production", rules.PLAN)] == ["production", "plan"]
    assert rules.step_name("production", 4) == "production:4"
    assert (rules.kind_of("plan:3"), rules.period_of("plan:3")) == ("plan", 3)
    assert (rules.kind_of("strategy"), rules.period_of("strategy")) == ("strategy", 1)
    assert rules.owner("plan:2") == rules.owner("strategy") == "strategy.planner"
    assert rules.owner("production:7") == "production.studio"
    assert rules.step_key("p", "production:2") == "p:production:2"


def test_what_follows_a_step() -> None:
    assert rules.next_step("onboarding") == "strategy"
    assert rules.next_step("strategy") == "production"
    assert rules.next_step("plan:2") == "production:2"
    # A period's production ends nothing: the next period begins on its own day.
    assert rules.next_step("production") is None and rules.next_step("production:2") is None


def test_a_cancelled_project_undoes_its_begun_steps_last_first_but_never_a_plan() -> None:
    steps = [
        ("onboarding", rules.DONE),
        ("strategy", rules.DONE),
        ("production", rules.WAITING),
        ("plan:2", rules.DONE),
        ("production:2", rules.STARTED),
        ("plan:3", rules.STARTED),
        ("production:3", rules.PENDING),
    ]
    assert rules.to_undo(steps) == ["production:2", "production", "strategy", "onboarding"]
    assert rules.to_undo([("onboarding", rules.UNDONE), ("strategy", rules.COMPENSATING)]) == ["strategy"]


def test_a_waiting_step_is_asked_again_less_often_the_longer_it_waits() -> None:
    started = datetime(2027, 1, 4, 9, tzinfo=UTC)
    sent, now, asked = started, started, []
    while now < started + timedelta(days=10):
        now += timedelta(hours=1)
        if rules.resend_due(rules.WAITING, sent, now, started):
            asked.append(int((now - started).total_seconds() // 3600))
            sent = now
    # 6 h, 6 h, 12 h, 24 h, then at most RESEND_WAITING_CAP (2 days) apart.
    assert asked == [6, 12, 24, 48, 96, 144, 192, 240]
    # Without when it started: every RESEND_WAITING, as before; a started step after an hour.
    assert rules.resend_due(rules.WAITING, started, started + rules.RESEND_WAITING)
    assert not rules.resend_due(rules.WAITING, started, started + timedelta(hours=5))
    assert rules.resend_due(rules.STARTED, started, started + rules.RESEND_STARTED, started)
    assert not rules.resend_due(rules.DONE, started, started + timedelta(days=9), started)
