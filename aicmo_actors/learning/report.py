"""What `python run.py learn CAMPAIGN` and `GET /api/v1/campaigns/{name}/learning` show: per
step and variant, the sends, positive replies, success rate with its 95 % interval, probability
of being best, deals, revenue and the current weights. Pure, but for `campaign_learning`, which
reads them through the store."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aicmo_actors.learning.bandit_rules import DEFAULT_DRAWS, Arm, outcome, rate_interval, thompson
from aicmo_actors.learning.repos import BanditConfig, Decision, LearningStore, VariantOutcomes

#: The reward window of a campaign without `[bandit]` (the bandit's default).
DEFAULT_WINDOW_DAYS = 14.0


@dataclass(frozen=True)
class VariantLine:
    step: int
    variant: str
    sends: int
    positive_replies: int
    successes: int
    failures: int
    pending: int
    #: successes / (successes + failures), None before any send is decided.
    rate: float | None
    low: float
    high: float
    p_best: float
    deals: int
    revenue: dict[str, Decimal]
    #: The bandit's current weight (None: no decision yet).
    weight: float | None


@dataclass(frozen=True)
class StepWeights:
    step: int
    weights: dict[str, float]
    as_of: datetime
    burn_in: bool


def variant_lines(
    outcomes: list[VariantOutcomes],
    config: BanditConfig | None,
    latest: dict[int, Decision],
    now: datetime,
    *,
    rng: random.Random,
    draws: int = DEFAULT_DRAWS,
) -> list[VariantLine]:
    """One line per step and variant: the variants sent, and the arms the campaign declares."""
    window = timedelta(days=config.window_days if config is not None else DEFAULT_WINDOW_DAYS)
    by_step: dict[int, dict[str, VariantOutcomes]] = {}
    for row in outcomes:
        by_step.setdefault(row.step, {})[row.variant] = row
    if config is not None:
        for step, weights in config.steps.items():
            for name in weights:
                by_step.setdefault(step, {}).setdefault(name, VariantOutcomes(step, name))
    lines: list[VariantLine] = []
    for step in sorted(by_step):
        rows = by_step[step]
        arms: dict[str, Arm] = {}
        for name, row in rows.items():
            results = [outcome(sent, positive, window, now) for sent, positive in row.timeline]
            arms[name] = Arm(name, row.sends, results.count("success"), results.count("failure"))
        p_best = thompson(arms, rng, draws).p_best
        decided = latest.get(step)
        for name in sorted(rows):
            row, arm = rows[name], arms[name]
            low, high = rate_interval(arm.successes, arm.failures)
            lines.append(
                VariantLine(
                    step=step,
                    variant=name,
                    sends=row.sends,
                    positive_replies=row.positive_replies,
                    successes=arm.successes,
                    failures=arm.failures,
                    pending=arm.pending,
                    rate=arm.successes / arm.samples if arm.samples else None,
                    low=low,
                    high=high,
                    p_best=p_best.get(name, 0.0),
                    deals=row.deals,
                    revenue=dict(sorted(row.revenue.items())),
                    weight=decided.weights.get(name) if decided is not None else None,
                )
            )
    return lines


def step_weights(latest: dict[int, Decision]) -> list[StepWeights]:
    return [StepWeights(s, d.weights, d.as_of, d.burn_in) for s, d in sorted(latest.items())]


def money(revenue: dict[str, Decimal]) -> str:
    """ "1200.00 EUR, 300.00 USD"; "-" when nothing was paid."""
    return ", ".join(f"{amount:.2f} {currency}" for currency, amount in revenue.items()) or "-"


class UnknownCampaign(LookupError):
    """No campaign of that name, neither in cam nor in learning's records (one line, for people)."""


@dataclass(frozen=True)
class CampaignLearning:
    """What a campaign's variants led to, as `learn CAMPAIGN` shows it."""

    name: str
    #: The campaign's file asks for a bandit (`[bandit]`).
    bandit: bool
    #: The bandit as learning last recorded it (None: learning has not seen it).
    config: BanditConfig | None
    lines: list[VariantLine]
    weights: list[StepWeights]


async def campaign_learning(
    store: LearningStore, name: str, campaigns: Mapping[str, Any], now: datetime
) -> CampaignLearning:
    """Campaign `name`'s lines and weights, scored at `now`. `campaigns`: cam's campaigns by name
    (each with its `spec`, whose `bandit` says whether the file asks for one). UnknownCampaign
    when neither cam nor learning knows the name."""
    config = await store.outcomes.campaign(name)
    outcomes = await store.outcomes.variant_outcomes(name)
    if name not in campaigns and config is None and not outcomes:
        known = ", ".join(sorted(campaigns)) or "none yet"
        raise UnknownCampaign(f"unknown campaign {name!r} (campaigns: {known})")
    latest = await store.decisions.latest(name)
    spec = campaigns[name].spec if name in campaigns else None
    bandit = spec is not None and spec.bandit is not None
    # The probability of being best is a Monte Carlo estimate: a fixed seed shows the same numbers twice.
    lines = variant_lines(outcomes, config, latest, now, rng=random.Random(0))
    return CampaignLearning(name, bandit, config, lines, step_weights(latest))


def learning_json(found: CampaignLearning) -> dict[str, Any]:
    """`found` as JSON: rates as fractions, revenue per currency as exact decimal text, times ISO."""
    config = found.config
    return {
        "campaign": found.name,
        "bandit": found.bandit,
        "window_days": config.window_days if config is not None else None,
        "burn_in": config.burn_in if config is not None else None,
        "floor": config.floor if config is not None else None,
        "variants": [
            {
                "step": line.step,
                "variant": line.variant,
                "sends": line.sends,
                "positive_replies": line.positive_replies,
                "successes": line.successes,
                "failures": line.failures,
                "pending": line.pending,
                "rate": line.rate,
                "rate_95": [line.low, line.high],
                "p_best": line.p_best,
                "deals": line.deals,
                "revenue": {currency: str(amount) for currency, amount in line.revenue.items()},
                "weight": line.weight,
            }
            for line in found.lines
        ],
        "weights": [
            {"step": w.step, "weights": w.weights, "as_of": w.as_of.isoformat(), "burn_in": w.burn_in}
            for w in found.weights
        ],
    }
