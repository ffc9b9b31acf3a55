"""What `python run.py learn` shows, pure: lines per step and variant from the recorded outcomes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aicmo_actors.learning.report import money, step_weights, variant_lines
from aicmo_actors.learning.repos import BanditConfig, Decision, VariantOutcomes

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONFIG = BanditConfig("c", 2.0, 10, 0.05, {1: {"A": 1.0, "B": 1.0, "C": 1.0}}, T0)


def test_lines_count_outcomes_under_the_campaigns_window() -> None:
    a = VariantOutcomes(1, "A", sends=3, positive_replies=2)
    a.timeline = [
        (T0, T0 + timedelta(hours=1)),  # success
        (T0, T0 + timedelta(days=3)),  # positive, but after the 2-day window: failure
        (T0 + timedelta(days=2, hours=12), None),  # pending
    ]
    a.deals, a.revenue = 1, {"USD": Decimal("10"), "EUR": Decimal("1200.5")}
    decided = Decision("c", 1, {"A": 0.9, "B": 0.05, "C": 0.05}, {}, False, 0.05, T0, "k")
    lines = variant_lines([a], CONFIG, {1: decided}, T0 + timedelta(days=3), rng=random.Random(0), draws=500)
    assert [(line.step, line.variant) for line in lines] == [(1, "A"), (1, "B"), (1, "C")]  # declared arms too
    first = lines[0]
    assert (first.sends, first.positive_replies, first.successes, first.failures, first.pending) == (3, 2, 1, 1, 1)
    assert first.rate == 0.5 and 0 < first.low < 0.5 < first.high < 1 and first.weight == 0.9
    assert lines[1].sends == 0 and lines[1].rate is None and lines[1].weight == 0.05
    assert sum(line.p_best for line in lines) == pytest.approx(1.0)
    assert money(first.revenue) == "1200.50 EUR, 10.00 USD" and money({}) == "-"
    assert [(w.step, w.burn_in) for w in step_weights({1: decided})] == [(1, False)]


def test_a_campaign_without_a_bandit_uses_the_default_window_and_has_no_weight() -> None:
    b = VariantOutcomes(2, "B", sends=1)
    b.timeline = [(T0, None)]
    (line,) = variant_lines([b], None, {}, T0 + timedelta(days=13), rng=random.Random(0))
    assert (line.pending, line.weight, line.p_best) == (1, None, 1.0)
    (line,) = variant_lines([b], None, {}, T0 + timedelta(days=14), rng=random.Random(0))
    assert (line.failures, line.pending) == (1, 0)
