"""strategy: the plan for a signed client's first period, sent to the client for approval.

What the module exports (docs/modules.md): its actor, its store, `strategy_supervisor` (the
one function that builds its supervision tree) and `strategy_routes` (the client's plan
page, served by the service's HTTP server). See docs/strategy.md.

The names load on first use (PEP 562): importing one pure file (`calendar`, `plan`,
`texts`) does not load the actor, the database layer and the HTTP handlers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.strategy.planner import PLANNER, Planner
    from aicmo_actors.strategy.repos import StrategyStore
    from aicmo_actors.strategy.web import strategy_routes
    from aicmo_actors.strategy.wiring import strategy_supervisor

_EXPORTS = {
    "PLANNER": "aicmo_actors.strategy.planner",
    "Planner": "aicmo_actors.strategy.planner",
    "StrategyStore": "aicmo_actors.strategy.repos",
    "strategy_routes": "aicmo_actors.strategy.web",
    "strategy_supervisor": "aicmo_actors.strategy.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["PLANNER", "Planner", "StrategyStore", "strategy_routes", "strategy_supervisor"]
