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
from typing import TYPE_CHECKING, Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.records import _now, _run_with_store, _table, _when

if TYPE_CHECKING:
    from aicmo_actors.learning.report import CampaignLearning


async def _gather(store: Any, name: str) -> CampaignLearning:
    from aicmo_actors.learning.report import UnknownCampaign, campaign_learning
    from aicmo_actors.learning.repos import LearningStore

    try:
        return await campaign_learning(LearningStore(store.engine), name, await store.campaigns.all(), _now())
    except UnknownCampaign as exc:
        raise UserError(str(exc)) from None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def cmd_learn(args: argparse.Namespace) -> int:
    from aicmo_actors.learning.report import learning_json, money

    found = _run_with_store(lambda store: _gather(store, args.campaign))
    if args.json:
        print(json.dumps(learning_json(found), ensure_ascii=False))
        return 0
    config = found.config
    print(f"Campaign {found.name}")
    if found.bandit and config is not None:
        print(
            f"  bandit: reward = a positive reply within {config.window_days:g} "
            f"day{'' if config.window_days == 1 else 's'}; "
            f"burn-in {config.burn_in} decided sends per variant; floor {config.floor * 100:g}% per variant"
        )
    elif found.bandit:
        print("  bandit: asked for; the learning module has not seen it yet (is it running?)")
    else:
        print("  fixed weights from the campaign file (no [bandit] section)")
    lines = found.lines
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
    weights = found.weights
    if not weights:
        if found.bandit:
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
