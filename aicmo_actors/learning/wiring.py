"""`learning_supervisor`: the learning module's supervision tree.

The one way to start learning: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from aicmo_actors.learning.bandit import BANDIT, Bandit
from aicmo_actors.learning.bandit_rules import DEFAULT_DRAWS
from aicmo_actors.learning.repos import LearningStore
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def learning_supervisor(
    store: LearningStore, *, interval_s: float = 86400.0, draws: int = DEFAULT_DRAWS
) -> SupervisorSpec:
    """Learning as a supervision tree: its one actor, `learning.bandit`.

    Every `interval_s` seconds (of the clock: simulated time in a simulation) the variants of
    every campaign with `[bandit]` are reweighted from the outcomes recorded so far, by
    `draws` Monte Carlo draws per step. CAM runs the same without it: bandit campaigns then keep
    their file's weights (with the floor).
    """
    if interval_s <= 0:
        raise ValueError("the learning interval must be positive")
    if draws < 100:
        raise ValueError("draws must be at least 100")
    children: list[ChildSpec | SupervisorSpec] = [
        ChildSpec(BANDIT, lambda: Bandit(store, interval_s=interval_s, draws=draws))
    ]
    return SupervisorSpec("learning", children=children, strategy="one_for_one", max_restarts=10, period=60)
