"""Production's pure rules, table by table."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from aicmo_actors.production import rules, texts
from aicmo_actors.production.tables import ITEM_STATES
from contracts.production import ITEM_STATES as CONTRACT_STATES


def test_the_tables_know_the_contracts_states() -> None:
    assert ITEM_STATES == CONTRACT_STATES


def test_item_ids_are_stable() -> None:
    project = uuid.UUID(int=5)
    expected = uuid.uuid5(uuid.NAMESPACE_URL, f"aicmo:item:{project}:1:blog_post:blog:1")
    assert rules.item_id(project, 1, "blog_post:blog:1") == expected
    assert rules.item_id(project, 2, "blog_post:blog:1") != expected


@pytest.mark.parametrize(
    ("due", "days", "country", "start"),
    [
        (date(2026, 12, 10), 3, "DE", date(2026, 12, 7)),  # Thu -> Mon
        (date(2026, 12, 7), 1, "DE", date(2026, 12, 4)),  # Mon -> Fri
        (date(2026, 12, 28), 2, "DE", date(2026, 12, 23)),  # over Christmas (25, 26 Dec)
        (date(2026, 12, 12), 1, "US", date(2026, 12, 10)),  # due Saturday: from Friday, one back
    ],
)
def test_start_day(due: date, days: int, country: str, start: date) -> None:
    assert rules.start_day(due, days, country) == start


def test_should_start_on_the_clients_date() -> None:
    # 23:30 UTC on 6 Dec is already 7 Dec in Berlin.
    assert rules.should_start(date(2026, 12, 7), datetime(2026, 12, 6, 23, 30, tzinfo=UTC), "Europe/Berlin")
    assert not rules.should_start(date(2026, 12, 7), datetime(2026, 12, 6, 22, 30, tzinfo=UTC), "Europe/Berlin")
    assert rules.should_start(date(2026, 1, 1), datetime(2026, 12, 6, tzinfo=UTC), "UTC")  # past: at once


def test_late_after_the_due_day_or_the_turnaround() -> None:
    common = {"turnaround_days": 2, "country": "DE", "tz": "Europe/Berlin"}
    due = date(2026, 12, 10)
    before = datetime(2026, 12, 10, 22, 59, tzinfo=UTC)  # 23:59 Berlin
    after = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)
    assert rules.late_reason(state="in_qc", due=due, started_at=None, now=before, **common) is None
    assert rules.late_reason(state="in_qc", due=due, started_at=None, now=after, **common) == "due"
    assert rules.late_reason(state="delivered", due=due, started_at=None, now=after, **common) is None
    started = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tue: + 2 business days = Thu 3 Dec
    assert (
        rules.late_reason(
            state="in_review", due=due, started_at=started, now=datetime(2026, 12, 3, 22, 0, tzinfo=UTC), **common
        )
        is None
    )
    assert (
        rules.late_reason(
            state="in_review", due=due, started_at=started, now=datetime(2026, 12, 3, 23, 0, tzinfo=UTC), **common
        )
        == "turnaround"
    )


@pytest.mark.parametrize(
    ("passed", "retakes", "signoff", "expected"),
    [
        (True, 0, False, ("in_review", 0, False)),
        (True, 1, True, ("signoff", 1, False)),
        (False, 0, False, ("drafting", 1, False)),
        (False, 1, False, ("drafting", 2, False)),
        (False, 2, False, ("drafting", 2, True)),
    ],
)
def test_after_qc(passed: bool, retakes: int, signoff: bool, expected: tuple[str, int, bool]) -> None:
    out = rules.after_qc(passed=passed, retakes=retakes, qc_signoff=signoff)
    assert (out.state, out.retakes, out.needs_person) == expected


def test_after_review_counts_rounds_and_flags_the_billable_ones() -> None:
    assert rules.after_review(verdict="approved", rounds=3, review_rounds=1).state == "approved"
    first = rules.after_review(verdict="changes", rounds=0, review_rounds=1)
    assert (first.state, first.rounds, first.beyond_package) == ("changes_requested", 1, False)
    second = rules.after_review(verdict="changes", rounds=1, review_rounds=1)
    assert (second.rounds, second.beyond_package) == (2, True)


def test_delivered_only_by_every_method() -> None:
    assert not rules.after_delivery(("email", "webhook"), ["email"])
    assert rules.after_delivery(("email", "webhook"), ["webhook", "email"])


def test_resend_after_silence() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert rules.resend_due(None, now, timedelta(minutes=10))
    assert not rules.resend_due(now - timedelta(minutes=9), now, timedelta(minutes=10))
    assert rules.resend_due(now - timedelta(minutes=10), now, timedelta(minutes=10))


def test_batches_group_per_project_in_order() -> None:
    assert rules.batches([("p1", "a"), ("p2", "c"), ("p1", "b")]) == {"p1": ["a", "b"], "p2": ["c"]}
    assert rules.batch_key("p1", 3) == "p1:review:3"
    assert rules.qc_key("i", 2) == "i:v2:qc" and rules.delivery_key("i", 2, "email") == "i:v2:email"


def test_pick_writer() -> None:
    assert rules.pick_writer(has_llm=False, attempts=0, used_tokens=0, budget_tokens=None) == "template"
    assert rules.pick_writer(has_llm=True, attempts=0, used_tokens=10, budget_tokens=100) == "llm"
    assert rules.pick_writer(has_llm=True, attempts=0, used_tokens=100, budget_tokens=100) == "template"
    assert rules.pick_writer(has_llm=True, attempts=3, used_tokens=0, budget_tokens=None) == "template"


def test_deadline_and_waiting_for() -> None:
    assert rules.deadline([date(2026, 12, 3), date(2026, 12, 10)], "Europe/Berlin") == datetime(
        2026, 12, 10, 16, tzinfo=UTC
    )
    counts = {"delivered": 3, "in_review": 2, "drafting": 3}
    assert texts.waiting_for(8, counts) == "3 of 8 items delivered; 3 being drafted; 2 in client review"


def test_a_delivery_kept_waiting_is_told_again_less_and_less_often() -> None:
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    silence, cap = timedelta(hours=1), timedelta(days=1)
    told, now, tellings = start, start, []
    while now < start + timedelta(days=6):
        now += timedelta(hours=1)  # hourly ticks
        if rules.resend_due(told, now, silence, since=start, cap=cap):
            tellings.append(int((now - start).total_seconds() // 3600))
            told = now
    # 1 h, then as long again as it has waited, then at most a day apart.
    assert tellings[:7] == [1, 2, 4, 8, 16, 32, 56]
    assert all(b - a == 24 for a, b in itertools.pairwise(tellings[5:]))
    assert len(tellings) < 12
    # Without `since` it is the plain silence, as before.
    assert rules.resend_due(start, start + silence, silence, cap=cap)


def test_a_batch_in_review_is_told_again_every_6_then_12_hours() -> None:
    silence = rules.Silence()
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    told, now, tellings = start, start, []
    while now < start + timedelta(days=4):
        now += timedelta(hours=1)
        if rules.resend_due(told, now, silence.review, since=start, cap=silence.review_cap):
            tellings.append(int((now - start).total_seconds() // 3600))
            told = now
    assert tellings == [6, 12, 24, 36, 48, 60, 72, 84, 96]  # was every 6 h: 16 tellings


def test_the_open_states_are_every_state_but_the_two_final_ones() -> None:
    # The tick's "anything open?" names them (the state index finds them): none may be missing.
    from aicmo_actors.production import tables

    assert set(rules.OPEN_STATES) | {tables.DELIVERED, tables.CANCELLED} == set(tables.ITEM_STATES)
    assert not set(rules.OPEN_STATES) & {tables.DELIVERED, tables.CANCELLED}


def test_late_from_is_when_late_reason_starts_to_answer() -> None:
    """The tick screens items by `late_from` and marks them by `late_reason`: the two agree for
    any item and moment (seeded draws over states, days, starts, zones and countries)."""
    draw = random.Random(20261206)
    zones = ["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Auckland"]
    checked = 0
    for _ in range(3000):
        due = date(2026, 12, 1) + timedelta(days=draw.randrange(40))
        started = (
            None
            if draw.random() < 0.3
            else datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=draw.randrange(40 * 24 * 60))
        )
        item = {
            "state": draw.choice([*sorted(rules.OPEN_STATES), "delivered", "cancelled"]),
            "due": due,
            "started_at": started,
            "turnaround_days": draw.randrange(1, 8),
            "country": draw.choice(["US", "DE", "GB", "IN", "NZ"]),
            "tz": draw.choice(zones),
        }
        at = rules.late_from(**item)
        for now in [datetime(2026, 11, 25, tzinfo=UTC) + timedelta(minutes=draw.randrange(60 * 24 * 60))] + (
            [at - timedelta(microseconds=1), at] if at is not None else []
        ):
            late = rules.late_reason(now=now, **item) is not None
            assert late == (at is not None and now >= at), (item, now, at)
            checked += late
    assert checked > 500  # the draws reach both sides
