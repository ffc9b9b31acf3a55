"""onboarding: from a signed client to a brief (the intake questionnaire answered).

What the module exports (docs/modules.md): its actor, its store, `onboarding_supervisor`
(the one function that builds its supervision tree) and `onboarding_routes` (the intake
form, served by the service's HTTP server). See docs/onboarding.md.

The names load on first use (PEP 562): importing one pure file (`rules`, `texts`) does not
load the actor, the database layer and the HTTP handlers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.onboarding.intake import INTAKE, Intake
    from aicmo_actors.onboarding.repos import OnboardingStore
    from aicmo_actors.onboarding.web import onboarding_routes
    from aicmo_actors.onboarding.wiring import onboarding_supervisor

_EXPORTS = {
    "INTAKE": "aicmo_actors.onboarding.intake",
    "Intake": "aicmo_actors.onboarding.intake",
    "OnboardingStore": "aicmo_actors.onboarding.repos",
    "onboarding_routes": "aicmo_actors.onboarding.web",
    "onboarding_supervisor": "aicmo_actors.onboarding.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["INTAKE", "Intake", "OnboardingStore", "onboarding_routes", "onboarding_supervisor"]
