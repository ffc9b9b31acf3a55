"""retention: each client's health (a score from the signals the other modules emit, banded
green, amber and red, with the reasons behind it) and the renewal reminders before each
contract's end.

What the module exports (docs/modules.md): its actor, its store and `retention_supervisor`
(the one function that builds its supervision tree). See docs/retention.md.

The names load on first use (PEP 562): importing one pure file (`rules`, `signals`, `texts`)
does not load the actor and the database layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.retention.monitor import MONITOR, Monitor
    from aicmo_actors.retention.repos import RetentionStore
    from aicmo_actors.retention.wiring import retention_supervisor

_EXPORTS = {
    "MONITOR": "aicmo_actors.retention.monitor",
    "Monitor": "aicmo_actors.retention.monitor",
    "RetentionStore": "aicmo_actors.retention.repos",
    "retention_supervisor": "aicmo_actors.retention.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["MONITOR", "Monitor", "RetentionStore", "retention_supervisor"]
