"""learning: what each sent A/B variant led to (replies, deals, revenue), and a bandit that
moves a campaign's traffic toward the variant that works, where the campaign asks for it.

What the module exports (docs/modules.md): its actor, its store and `learning_supervisor`
(the one function that builds its supervision tree). See docs/learning.md.

The names load on first use (PEP 562): importing the pure rules (`bandit_rules`) does not
load the actor and the database layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.learning.bandit import BANDIT, Bandit
    from aicmo_actors.learning.repos import LearningStore
    from aicmo_actors.learning.wiring import learning_supervisor

_EXPORTS = {
    "BANDIT": "aicmo_actors.learning.bandit",
    "Bandit": "aicmo_actors.learning.bandit",
    "LearningStore": "aicmo_actors.learning.repos",
    "learning_supervisor": "aicmo_actors.learning.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["BANDIT", "Bandit", "LearningStore", "learning_supervisor"]
