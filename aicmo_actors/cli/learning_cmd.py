"""`python run.py learn CAMPAIGN [--json]`: what each A/B variant of a campaign led to.

Per step and variant: the emails sent, the positive replies (interested, meeting request,
question, referral), the success rate within the reward window with its 95 % interval (Beta
posterior), the probability of being the best variant, the deals signed by the leads who got
it and their clients' payments (per currency), and, for a campaign with `[bandit]`, the
weights the bandit last decided and when (see docs/learning.md).
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.records import _now, _run_with_store, _table, _when


async def _gather(store: Any, name: str) -> dict[str, Any]:
    from aicmo_actors.learning.report import step_weights, variant_lines
    from aicmo_actors.learning.repos import LearningStore

    learning = LearningStore(store.engine)
    campaigns = await store.campaigns.all()
    config = await learning.outcomes.campaign(name)
    outcomes = await learning.outcomes.variant_outcomes(name)
    if name not in campaigns and config is None and not outcomes:
        known = ", ".join(sorted(campaigns)) or "none yet"
        raise UserError(f"unknown campaign {name!r} (campaigns: {known})")
    latest = await learning.decisions.latest(name)
    spec = campaigns[name].spec if name in campaigns else None
    bandit = spec is not None and spec.bandit is not None
    now = _now()
    # The probability of being best is a Monte Carlo estimate: a fixed seed shows the same numbers twice.
    lines = variant_lines(outcomes, config, latest, now, rng=random.Random(0))
    return {"name": name, "bandit": bandit, "config": config, "lines": lines, "weights": step_weights(latest)}


def _json_of(found: dict[str, Any]) -> dict[str, Any]:
    config = found["config"]
    return {
        "campaign": found["name"],
        "bandit": found["bandit"],
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
            for line in found["lines"]
        ],
        "weights": [
            {"step": w.step, "weights": w.weights, "as_of": w.as_of.isoformat(), "burn_in": w.burn_in}
            for w in found["weights"]
        ],
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def cmd_learn(args: argparse.Namespace) -> int:
    from aicmo_actors.learning.report import money

    found = _run_with_store(lambda store: _gather(store, args.campaign))
    if args.json:
        print(json.dumps(_json_of(found), ensure_ascii=False))
        return 0
    config = found["config"]
    print(f"Campaign {found['name']}")
    if found["bandit"] and config is not None:
        print(
            f"  bandit: reward = a positive reply within {config.window_days:g} "
            f"day{'' if config.window_days == 1 else 's'}; "
            f"burn-in {config.burn_in} decided sends per variant; floor {config.floor * 100:g}% per variant"
        )
    elif found["bandit"]:
        print("  bandit: asked for; the learning module has not seen it yet (is it running?)")
    else:
        print("  fixed weights from the campaign file (no [bandit] section)")
    lines = found["lines"]
    if not lines:
        print("No emails sent yet.")
    else:
        rows = [
            {
                "step": line.step,
                "variant": line.variant,
                "sends": line.sends,
                "positive": line.positive_replies,
                "decided": f"{line.successes}/{line.successes + line.failures}",
                "rate": _pct(line.rate),
                "ci": f"{line.low * 100:.1f}-{line.high * 100:.1f}%",
                "best": _pct(line.p_best),
                "deals": line.deals,
                "revenue": money(line.revenue),
                "weight": _pct(line.weight),
            }
            for line in lines
        ]
        _table(
            rows,
            [
                ("STEP", "step"),
                ("VARIANT", "variant"),
                ("SENT", "sends"),
                ("POSITIVE", "positive"),
                ("WON/DECIDED", "decided"),
                ("RATE", "rate"),
                ("95% INTERVAL", "ci"),
                ("P(BEST)", "best"),
                ("DEALS", "deals"),
                ("REVENUE", "revenue"),
                ("WEIGHT", "weight"),
            ],
            right=frozenset({"step", "sends", "positive", "decided", "rate", "best", "deals", "weight"}),
        )
    weights = found["weights"]
    if not weights:
        if found["bandit"]:
            print("No weights yet: the campaign file's weights are used (with the floor).")
        return 0
    for w in weights:
        state = "burn-in: the file's weights" if w.burn_in else "reweighted"
        shares = ", ".join(f"{name} {share * 100:.1f}%" for name, share in sorted(w.weights.items()))
        print(f"  step {w.step}: {shares} ({state}; computed {_when(w.as_of.isoformat())} UTC)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    learn = sub.add_parser(
        "learn",
        help="what each A/B variant of a campaign led to: replies, deals, revenue, bandit weights",
        description="Per step and variant of CAMPAIGN: emails sent, positive replies (interested, meeting "
        "request, question, referral), the success rate within the reward window (a send counts once its "
        "window closed or a positive reply came) with its 95 % interval, the probability of being the best "
        "variant, deals signed by the leads who got it and their payments per currency, and the weights a "
        "campaign with [bandit] uses now. See docs/learning.md.",
    )
    learn.add_argument("campaign", help="the campaign's name (python run.py campaign list shows them)")
    learn.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    learn.set_defaults(func=cmd_learn)
