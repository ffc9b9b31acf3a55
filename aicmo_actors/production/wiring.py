"""`production_supervisor`: the production module's supervision tree.

The one way to start production: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from aicmo_actors.production.generator import Generator
from aicmo_actors.production.repos import ProductionStore
from aicmo_actors.production.rules import Silence
from aicmo_actors.production.studio import STUDIO, Studio
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def production_supervisor(
    store: ProductionStore,
    *,
    generator: Generator | None = None,
    silence: Silence | None = None,
) -> SupervisorSpec:
    """Production as a supervision tree: its one actor, `production.studio`.

    `generator` writes the drafts (default: the offline templates; `generator.make_generator`
    makes the LLM one from the settings); `silence` says how long each command in flight waits
    for its answer before it is told again.
    """
    children: list[ChildSpec | SupervisorSpec] = [
        ChildSpec(STUDIO, lambda: Studio(store, generator=generator, silence=silence))
    ]
    return SupervisorSpec("production", children=children, strategy="one_for_one", max_restarts=10, period=60)
