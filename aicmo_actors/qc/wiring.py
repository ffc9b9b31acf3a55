"""`qc_supervisor`: the quality-control module's supervision tree.

The one way to start qc: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from aicmo_actors.qc.checker import CHECKER, Checker
from aicmo_actors.qc.repos import QcStore
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def qc_supervisor(store: QcStore) -> SupervisorSpec:
    """QC as a supervision tree: its one actor, `qc.checker` (no gateway: it only reads and writes its table)."""
    children: list[ChildSpec | SupervisorSpec] = [ChildSpec(CHECKER, lambda: Checker(store))]
    return SupervisorSpec("qc", children=children, strategy="one_for_one", max_restarts=10, period=60)
