"""`qc_supervisor`: the quality-control module's supervision tree.

The one way to start qc: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from aicmo_actors.qc.checker import CHECKER, Checker
from aicmo_actors.qc.repos import QcStore
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def qc_supervisor(store: QcStore, *, in_thread: bool = True) -> SupervisorSpec:
    """QC as a supervision tree: its one actor, `qc.checker` (no gateway: it only reads and
    writes its table). `in_thread`: the checks run in a worker thread (the service: the event
    loop is never held up); off, in the loop (the simulation: a thread's wall-clock timing
    would change the order of events at one simulated instant, and a replay must not)."""
    children: list[ChildSpec | SupervisorSpec] = [ChildSpec(CHECKER, lambda: Checker(store, in_thread=in_thread))]
    return SupervisorSpec("qc", children=children, strategy="one_for_one", max_restarts=10, period=60)
