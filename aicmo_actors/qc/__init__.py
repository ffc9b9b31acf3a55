"""qc: quality control, each draft checked against the brief and the package.

What the module exports (docs/modules.md): its actor, its store and `qc_supervisor` (the one
function that builds its supervision tree). The checks themselves are the pure
`aicmo_actors.qc.checks.check_draft`. See docs/qc.md.

The names load on first use (PEP 562): importing the pure checks (as `python run.py qc` does)
does not load the actor and the database layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.qc.checker import CHECKER, Checker
    from aicmo_actors.qc.repos import QcStore
    from aicmo_actors.qc.wiring import qc_supervisor

_EXPORTS = {
    "CHECKER": "aicmo_actors.qc.checker",
    "Checker": "aicmo_actors.qc.checker",
    "QcStore": "aicmo_actors.qc.repos",
    "qc_supervisor": "aicmo_actors.qc.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["CHECKER", "Checker", "QcStore", "qc_supervisor"]
