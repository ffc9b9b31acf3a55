"""`orchestration_supervisor`: the switchboard under its own supervisor; `projects_supervisor`:
the project sagas."""

from __future__ import annotations

from aicmo_actors.orchestration.policies import HOLDS, HoldPolicy
from aicmo_actors.orchestration.projects import ProjectsRepo
from aicmo_actors.orchestration.registry import ModuleRegistry
from aicmo_actors.orchestration.saga import SAGA, Saga
from aicmo_actors.orchestration.switchboard import SWITCHBOARD, Switchboard
from aicmo_actors.orchestration.switches import SwitchesRepo
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def orchestration_supervisor(registry: ModuleRegistry, repo: SwitchesRepo) -> SupervisorSpec:
    """Start it before the modules it switches: their actors then start already suspended."""
    return SupervisorSpec(
        "orchestration",
        children=[ChildSpec(SWITCHBOARD, lambda: Switchboard(registry, repo))],
        strategy="one_for_one",
        max_restarts=10,
        period=60,
    )


def projects_supervisor(repo: ProjectsRepo) -> SupervisorSpec:
    """The project sagas and the cross-module policies (`policies`). Start it after the modules
    it tells (onboarding, strategy, ...): at start it asks them again what was in flight."""
    return SupervisorSpec(
        "projects",
        children=[ChildSpec(SAGA, lambda: Saga(repo)), ChildSpec(HOLDS, HoldPolicy)],
        strategy="one_for_one",
        max_restarts=10,
        period=60,
    )
