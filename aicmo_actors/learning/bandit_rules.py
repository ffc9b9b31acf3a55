"""The bandit's rules, pure: what counts as a reward, each arm's numbers, the allocation.

- A send is a **success** when a positive reply (`POSITIVE`: interested, meeting request,
  question, referral) to it arrived within the reward window after it was sent; a **failure**
  once the window closed without one; **pending** (neither) before. Decided sends are the
  samples.
- **Top-two Thompson sampling** (as GrowthBook's bandits): Monte Carlo draws from each arm's
  posterior Beta(1 + successes, 1 + failures); an arm's weight is the share of draws in which
  it is the best or the second best (each counting half). With two arms the top two are always
  both, so the weight is the share of draws in which it is the best (plain Thompson sampling).
- **Burn-in**: no reweighting until every arm has `burn_in` decided sends: the campaign's own
  weights until then.
- **Floor**: no arm under `floor` of the traffic, whatever the draws say (`floored`).

The randomness is a `random.Random` handed in (the actor seeds it from `ctx.random`), so the
same seed and records give the same weights.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from contracts.cam import ReplyCategory

#: The replies that count as a reward.
POSITIVE = frozenset(
    {ReplyCategory.INTERESTED, ReplyCategory.MEETING_REQUEST, ReplyCategory.QUESTION, ReplyCategory.REFERRAL}
)
#: Ties of a reply to one of our emails that a stranger cannot make up (our Message-ID, our
#: signed return path or token). A guess (the sender's address) acts on nothing in CAM, and
#: teaches the bandit nothing either.
STRONG_MATCHES = frozenset({"message_id", "report", "return_path", "token"})
#: Monte Carlo draws per decision (GrowthBook uses 10,000; 2,000 keeps a simulated quarter fast
#: and the weights within about a percentage point).
DEFAULT_DRAWS = 2000

Outcome = Literal["success", "failure", "pending"]


def is_positive(category: str) -> bool:
    return category in POSITIVE


def tied_to_a_send(outbound_id: int | None, matched_by: str | None) -> bool:
    """Is a classified reply surely an answer to this email of ours (not a guess)?"""
    return outbound_id is not None and matched_by in STRONG_MATCHES


def outcome(sent_at: datetime, first_positive_at: datetime | None, window: timedelta, now: datetime) -> Outcome:
    """What one send counts as now: a positive reply within the window, none by its close, or not yet known."""
    if first_positive_at is not None and first_positive_at - sent_at <= window:
        return "success"
    if now >= sent_at + window:
        return "failure"
    return "pending"


@dataclass(frozen=True)
class Arm:
    """One variant's numbers: every send, and the decided ones by outcome."""

    name: str
    sends: int = 0
    successes: int = 0
    failures: int = 0

    @property
    def samples(self) -> int:
        return self.successes + self.failures

    @property
    def pending(self) -> int:
        return self.sends - self.samples


def count_arms(
    names: Iterable[str],
    sends: Iterable[tuple[str, datetime, datetime | None]],
    window: timedelta,
    now: datetime,
) -> dict[str, Arm]:
    """Each arm's numbers from its sends: (variant, sent_at, first positive reply's time or None).

    Every name of `names` has an arm (zero when never sent); a send of another variant (a
    variant since removed from the file) is counted under its own name."""
    counts: dict[str, list[int]] = {name: [0, 0, 0] for name in names}
    for variant, sent_at, positive_at in sends:
        row = counts.setdefault(variant, [0, 0, 0])
        row[0] += 1
        result = outcome(sent_at, positive_at, window, now)
        if result == "success":
            row[1] += 1
        elif result == "failure":
            row[2] += 1
    return {name: Arm(name, *row) for name, row in counts.items()}


def floored(weights: Mapping[str, float], floor: float) -> dict[str, float]:
    """Shares summing to 1 in which no arm has less than `floor`: arms under it are raised to
    it, the others scaled down in proportion. `floor` times the arms must not exceed 1.
    (The same rule as `cam.send_rules.floored`: the modules share no code, only the rule.)"""
    if floor * len(weights) > 1 + 1e-12:
        raise ValueError(f"a floor of {floor:g} for {len(weights)} arms is more than all the traffic")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("the weights must not all be 0")
    shares = {name: w / total for name, w in weights.items()}
    fixed: set[str] = set()
    while True:
        low = {n for n, w in shares.items() if n not in fixed and w < floor}
        if not low:
            return shares
        fixed |= low
        free = [n for n in shares if n not in fixed]
        left = 1.0 - floor * len(fixed)
        free_total = sum(shares[n] for n in free)
        shares = {
            n: floor if n in fixed else (shares[n] / free_total * left if free_total > 0 else left / len(free))
            for n in shares
        }


@dataclass(frozen=True)
class Draws:
    """What the Monte Carlo draws say: the share of draws each arm was the best, and its
    top-two weight."""

    p_best: dict[str, float]
    top_two: dict[str, float]


def thompson(arms: Mapping[str, Arm], rng: random.Random, draws: int = DEFAULT_DRAWS) -> Draws:
    """Draw from each arm's Beta(1 + successes, 1 + failures) `draws` times (arms in name order)."""
    names = sorted(arms)
    if not names:
        return Draws({}, {})
    if len(names) == 1:
        return Draws({names[0]: 1.0}, {names[0]: 1.0})
    params = [(1 + arms[n].successes, 1 + arms[n].failures) for n in names]
    best = [0] * len(names)
    top = [0] * len(names)
    for _ in range(draws):
        values = [rng.betavariate(a, b) for a, b in params]
        first = max(range(len(names)), key=values.__getitem__)
        second = max((i for i in range(len(names)) if i != first), key=values.__getitem__)
        best[first] += 1
        top[first] += 1
        top[second] += 1
    p_best = {n: best[i] / draws for i, n in enumerate(names)}
    if len(names) == 2:
        return Draws(p_best, dict(p_best))
    return Draws(p_best, {n: top[i] / (2 * draws) for i, n in enumerate(names)})


@dataclass(frozen=True)
class Allocation:
    """A step's decided weights (summing to 1, none under the floor) and why."""

    weights: dict[str, float]
    p_best: dict[str, float]
    #: True while some arm has fewer than burn_in decided sends (the campaign's own weights).
    burn_in: bool


def allocate(
    arms: Mapping[str, Arm],
    static: Mapping[str, float],
    *,
    burn_in: int,
    floor: float,
    rng: random.Random,
    draws: int = DEFAULT_DRAWS,
) -> Allocation:
    """The allocation of one step's variants (`static`: the campaign file's weights, by name).

    Only the arms of `static` are allocated (a variant since removed gets nothing). The draws
    are made even in burn-in (the probability of being best is shown from the start)."""
    current = {name: arms.get(name, Arm(name)) for name in static}
    drawn = thompson(current, rng, draws)
    if any(arm.samples < burn_in for arm in current.values()):
        return Allocation(floored(static, floor), drawn.p_best, burn_in=True)
    return Allocation(floored(drawn.top_two, floor), drawn.p_best, burn_in=False)


def due(last: datetime | None, now: datetime, interval: timedelta) -> bool:
    """Is a new decision due (none yet, or the last one is `interval` old)?"""
    return last is None or now - last >= interval


# -- interval estimates -------------------------------------------------------------------------------------------


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """P(X <= x) for X ~ Beta(a, b) (the regularized incomplete beta function)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def beta_quantile(p: float, a: float, b: float) -> float:
    """The x with P(X <= x) = p for X ~ Beta(a, b) (bisection: 60 halvings)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if beta_cdf(mid, a, b) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def rate_interval(successes: int, failures: int, level: float = 0.95) -> tuple[float, float]:
    """The central `level` credible interval of the success rate: Beta(1 + successes, 1 + failures)."""
    a, b = 1.0 + successes, 1.0 + failures
    tail = (1.0 - level) / 2
    return beta_quantile(tail, a, b), beta_quantile(1.0 - tail, a, b)
