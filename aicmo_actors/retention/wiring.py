"""`retention_supervisor`: the retention module's supervision tree.

The one way to start retention: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aicmo_actors.retention.monitor import MONITOR, Monitor, Setup
from aicmo_actors.retention.repos import RetentionStore
from aicmo_actors.retention.rules import Scoring, merge_weights, validate_renewal_days
from aicmo_actors.retention.signals import SLOW_REVIEW_DAYS
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def retention_setup(
    *,
    half_life_days: float = 30.0,
    weights: Mapping[str, float] | None = None,
    bands: tuple[float, float] = (70.0, 40.0),
    renewal_days: Sequence[int] = (60, 30, 7),
    slow_review_days: float = SLOW_REVIEW_DAYS,
    reasons: int = 3,
    sweep_every_s: float = 3600.0,
) -> Setup:
    """The monitor's parameters, checked (a ValueError says which is wrong). The CLI's
    `health` scores with the same."""
    if not slow_review_days > 0:
        raise ValueError("slow_review_days must be positive")
    if sweep_every_s < 0:
        raise ValueError("sweep_every_s must not be negative")
    scoring = Scoring(
        half_life_days=float(half_life_days),
        weights=merge_weights(weights),
        bands=(float(bands[0]), float(bands[1])),
        reasons=reasons,
    )
    return Setup(
        scoring=scoring,
        renewal_days=validate_renewal_days(renewal_days),
        slow_review_days=slow_review_days,
        sweep_every_s=sweep_every_s,
    )


def retention_supervisor(
    store: RetentionStore,
    *,
    half_life_days: float = 30.0,
    weights: Mapping[str, float] | None = None,
    bands: tuple[float, float] = (70.0, 40.0),
    renewal_days: Sequence[int] = (60, 30, 7),
    slow_review_days: float = SLOW_REVIEW_DAYS,
    reasons: int = 3,
    sweep_every_s: float = 3600.0,
) -> SupervisorSpec:
    """Retention as a supervision tree: its one actor, `retention.monitor`.

    A signal's weight halves every `half_life_days`. `weights` overrides the default points of
    any signal kind (`rules.DEFAULT_WEIGHTS`; an unknown kind is a ValueError). `bands` is
    (green from, amber from): a score below the second is red, and entering red alerts the
    owner. A renewal reminder goes `renewal_days` days before each contract's end (each once).
    A review answered `slow_review_days` or more after it was asked is a slow answer. A score
    carries its `reasons` largest contributions. Ticks rescore every client (decay) and look
    for renewals due at most once per `sweep_every_s` seconds of clock time.
    """
    setup = retention_setup(
        half_life_days=half_life_days,
        weights=weights,
        bands=bands,
        renewal_days=renewal_days,
        slow_review_days=slow_review_days,
        reasons=reasons,
        sweep_every_s=sweep_every_s,
    )

    def make() -> Monitor:
        return Monitor(store, setup)

    children: list[ChildSpec | SupervisorSpec] = [ChildSpec(MONITOR, make)]
    return SupervisorSpec("retention", children=children, strategy="one_for_one", max_restarts=10, period=60)
