"""`observability_supervisor`: the usage meter under its own supervisor."""

from __future__ import annotations

from collections.abc import Iterable

from aicmo_actors.observability.meter import METER, Meter, UsageBuffer, UsageSource
from aicmo_actors.observability.usage import UsageRepo
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def observability_supervisor(repo: UsageRepo, sources: Iterable[UsageSource], buffer: UsageBuffer) -> SupervisorSpec:
    """Start it before the modules it counts, so that it hears their first events."""
    kept = tuple(sources)
    return SupervisorSpec(
        "observability",
        children=[ChildSpec(METER, lambda: Meter(repo, kept, buffer))],
        strategy="one_for_one",
        max_restarts=10,
        period=60,
    )
