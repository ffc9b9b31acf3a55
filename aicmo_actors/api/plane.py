"""`ControlPlane`: the registry, switches, usage and identity over one database, and the
supervisors of `orchestration` and `observability`. The service and the simulation both
build it here, so both run the same control plane around the modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import module as cam_module
from aicmo_actors.cam import usage as cam_usage
from aicmo_actors.observability.meter import UsageBuffer, UsageSource
from aicmo_actors.observability.usage import UsageRepo
from aicmo_actors.observability.wiring import observability_supervisor
from aicmo_actors.orchestration.registry import ModuleRegistry
from aicmo_actors.orchestration.switches import SwitchesRepo
from aicmo_actors.orchestration.wiring import orchestration_supervisor
from aicmo_actors.runtime import SupervisorSpec


def module_registry() -> ModuleRegistry:
    """Every module built so far, as each declares itself."""
    return ModuleRegistry([cam_module.describe()])


def usage_sources() -> list[UsageSource]:
    return [
        UsageSource(
            cam_usage.MODULE,
            cam_usage.COUNTED_EVENTS,
            cam_usage.usage_of,
            cam_usage.usage_since_in,
        )
    ]


@dataclass
class ControlPlane:
    engine: AsyncEngine
    registry: ModuleRegistry = field(default_factory=module_registry)
    metering: bool = True
    switches: SwitchesRepo = field(init=False)
    usage: UsageRepo = field(init=False)
    buffer: UsageBuffer = field(init=False)
    #: Whether this process is the active worker (the service sets it from its lease).
    lease_held: Callable[[], bool] = lambda: True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.switches = SwitchesRepo(self.engine)
        self.usage = UsageRepo(self.engine)
        self.buffer = UsageBuffer()

    def supervisors(self) -> list[SupervisorSpec]:
        """To go first among the root's children (before the modules they switch and count)."""
        specs = [orchestration_supervisor(self.registry, self.switches)]
        if self.metering:
            specs.append(observability_supervisor(self.usage, usage_sources(), self.buffer))
        return specs
