"""The bandit's pure rules, table by table: reward window, arm counts, floor, burn-in, top-two
Thompson sampling, replay from a seed, interval estimates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aicmo_actors.learning.bandit_rules import (
    POSITIVE,
    Arm,
    allocate,
    beta_cdf,
    count_arms,
    due,
    floored,
    is_positive,
    outcome,
    rate_interval,
    thompson,
    tied_to_a_send,
)
from contracts.cam import ReplyCategory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_the_positive_replies_are_the_four_categories() -> None:
    assert POSITIVE == {
        ReplyCategory.INTERESTED,
        ReplyCategory.MEETING_REQUEST,
        ReplyCategory.QUESTION,
        ReplyCategory.REFERRAL,
    }
    assert is_positive("meeting_request") and not is_positive("not_interested") and not is_positive("auto_reply")


@pytest.mark.parametrize(
    ("outbound_id", "matched_by", "expected"),
    [
        (5, "message_id", True),
        (5, "report", True),
        (5, "return_path", True),
        (5, "token", True),
        (5, "sender", False),  # a guess by the sender's address teaches nothing
        (5, "report_recipient", False),
        (None, "message_id", False),
        (None, None, False),
    ],
)
def test_only_a_sure_tie_to_a_send_counts(outbound_id: int | None, matched_by: str | None, expected: bool) -> None:
    assert tied_to_a_send(outbound_id, matched_by) is expected


@pytest.mark.parametrize(
    ("positive_after", "now_after", "expected"),
    [
        (None, timedelta(days=1), "pending"),  # window open, no reply yet
        (timedelta(hours=3), timedelta(hours=4), "success"),  # a success does not wait for the window
        (WEEK, WEEK, "success"),  # on the last instant of the window
        (WEEK + timedelta(seconds=1), WEEK + timedelta(days=1), "failure"),  # too late
        (None, WEEK, "failure"),  # the window closed
        (None, WEEK - timedelta(seconds=1), "pending"),
    ],
)
def test_what_a_send_counts_as(positive_after: timedelta | None, now_after: timedelta, expected: str) -> None:
    positive = T0 + positive_after if positive_after is not None else None
    assert outcome(T0, positive, WEEK, T0 + now_after) == expected


def test_arms_are_counted_per_variant_and_every_declared_arm_exists() -> None:
    sends = [
        ("A", T0, T0 + timedelta(hours=1)),  # success
        ("A", T0, None),  # failure (window closed)
        ("B", T0 + 6 * timedelta(days=1), None),  # pending
        ("Z", T0, None),  # a variant since removed: counted under its own name
    ]
    arms = count_arms(["A", "B", "C"], sends, WEEK, T0 + WEEK + timedelta(hours=1))
    assert arms["A"] == Arm("A", 2, 1, 1) and arms["A"].samples == 2
    assert arms["B"] == Arm("B", 1, 0, 0) and arms["B"].pending == 1
    assert arms["C"] == Arm("C") and arms["Z"] == Arm("Z", 1, 0, 1)


@pytest.mark.parametrize(
    ("weights", "floor", "expected"),
    [
        ({"A": 1, "B": 1}, 0.01, {"A": 0.5, "B": 0.5}),
        ({"A": 0.999, "B": 0.001}, 0.01, {"A": 0.99, "B": 0.01}),
        ({"A": 1, "B": 0, "C": 0}, 0.1, {"A": 0.8, "B": 0.1, "C": 0.1}),
        ({"A": 98, "B": 1, "C": 1}, 0.05, {"A": 0.9, "B": 0.05, "C": 0.05}),
        ({"A": 3, "B": 1}, 0.0, {"A": 0.75, "B": 0.25}),
        ({"A": 1, "B": 0}, 0.5, {"A": 0.5, "B": 0.5}),
    ],
)
def test_the_floor(weights: dict[str, float], floor: float, expected: dict[str, float]) -> None:
    shares = floored(weights, floor)
    assert shares == pytest.approx(expected)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert min(shares.values()) >= floor - 1e-12


def test_a_floor_larger_than_the_traffic_is_refused() -> None:
    with pytest.raises(ValueError, match="more than all the traffic"):
        floored({"A": 1, "B": 1, "C": 1}, 0.4)


def _arms(*rates: tuple[str, int, int]) -> dict[str, Arm]:
    return {name: Arm(name, s + f, s, f) for name, s, f in rates}


def test_no_reweighting_before_every_arm_has_its_burn_in() -> None:
    arms = _arms(("A", 90, 9), ("B", 0, 99))  # B has 99 decided sends: one short
    chosen = allocate(arms, {"A": 1, "B": 3}, burn_in=100, floor=0.01, rng=random.Random(1))
    assert chosen.burn_in and chosen.weights == pytest.approx({"A": 0.25, "B": 0.75})  # the file's own weights
    assert chosen.p_best["A"] > 0.99  # the draws are still shown
    after = allocate(
        _arms(("A", 90, 10), ("B", 0, 100)), {"A": 1, "B": 3}, burn_in=100, floor=0.01, rng=random.Random(1)
    )
    assert not after.burn_in and after.weights["A"] > 0.9


def test_the_floor_holds_against_a_clearly_better_arm() -> None:
    arms = _arms(("A", 300, 700), ("B", 10, 990))
    chosen = allocate(arms, {"A": 1, "B": 1}, burn_in=100, floor=0.01, rng=random.Random(3))
    assert chosen.weights == pytest.approx({"A": 0.99, "B": 0.01})
    three = allocate(
        _arms(("A", 300, 700), ("B", 10, 990), ("C", 12, 988)),
        {"A": 1, "B": 1, "C": 1},
        burn_in=100,
        floor=0.2,
        rng=random.Random(3),
    )
    assert min(three.weights.values()) >= 0.2 - 1e-12 and sum(three.weights.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_a_clearly_better_arm_gets_most_of_the_traffic(seed: int) -> None:
    two = allocate(
        _arms(("A", 12, 188), ("B", 40, 160)), {"A": 1, "B": 1}, burn_in=100, floor=0.01, rng=random.Random(seed)
    )
    assert two.weights["B"] > 0.95 and two.p_best["B"] > 0.95
    # Three arms: top-two sampling gives the best about half, the runner-up most of the rest.
    three = allocate(
        _arms(("A", 10, 190), ("B", 60, 140), ("C", 30, 170)),
        {"A": 1, "B": 1, "C": 1},
        burn_in=100,
        floor=0.01,
        rng=random.Random(seed),
    )
    assert max(three.weights, key=three.weights.__getitem__) == "B"
    assert three.weights["B"] >= 0.49 and three.weights["A"] < 0.05


def test_equal_arms_share_the_traffic() -> None:
    chosen = allocate(
        _arms(("A", 50, 150), ("B", 50, 150)), {"A": 1, "B": 1}, burn_in=100, floor=0.01, rng=random.Random(9)
    )
    assert chosen.weights["A"] == pytest.approx(0.5, abs=0.05)


def test_the_same_seed_gives_the_same_weights() -> None:
    arms = _arms(("A", 20, 180), ("B", 25, 175), ("C", 22, 178))
    static = {"A": 1.0, "B": 1.0, "C": 1.0}
    first = allocate(arms, static, burn_in=100, floor=0.01, rng=random.Random(42))
    again = allocate(arms, static, burn_in=100, floor=0.01, rng=random.Random(42))
    other = allocate(arms, static, burn_in=100, floor=0.01, rng=random.Random(43))
    assert first == again
    assert first.weights != other.weights  # Monte Carlo: another seed, other draws


def test_only_the_declared_arms_are_allocated() -> None:
    arms = _arms(("A", 10, 90), ("B", 10, 90), ("OLD", 90, 10))
    chosen = allocate(arms, {"A": 1, "B": 1}, burn_in=10, floor=0.01, rng=random.Random(1))
    assert set(chosen.weights) == {"A", "B"}


def test_thompson_with_one_or_no_arm() -> None:
    assert thompson({}, random.Random(1)).p_best == {}
    assert thompson({"A": Arm("A")}, random.Random(1)).top_two == {"A": 1.0}


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [(None, T0, True), (T0, T0 + timedelta(hours=23), False), (T0, T0 + timedelta(days=1), True)],
)
def test_a_decision_is_due_once_per_interval(last: datetime | None, now: datetime, expected: bool) -> None:
    assert due(last, now, timedelta(days=1)) is expected


@pytest.mark.parametrize(
    ("successes", "failures", "low", "high"),
    [
        (0, 0, 0.025, 0.975),  # Beta(1, 1): uniform
        (10, 90, 0.0556, 0.1746),  # Beta(11, 91)
        (50, 50, 0.4036, 0.5964),
        (0, 20, 0.0012, 0.1611),  # Beta(1, 21): 1 - 0.975^(1/21), 1 - 0.025^(1/21)
    ],
)
def test_the_95_percent_interval_of_the_rate(successes: int, failures: int, low: float, high: float) -> None:
    found = rate_interval(successes, failures)
    assert found == pytest.approx((low, high), abs=5e-4)
    assert beta_cdf(found[0], 1 + successes, 1 + failures) == pytest.approx(0.025, abs=1e-6)
