"""`ControlPlane`: the registry, switches, usage and identity over one database, and the
supervisors of `orchestration` and `observability`. The service and the simulation both
build it here, so both run the same control plane around the modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import module as cam_module
from aicmo_actors.cam import usage as cam_usage
from aicmo_actors.observability.meter import UsageBuffer, UsageSource
from aicmo_actors.observability.usage import UsageRepo
from aicmo_actors.observability.wiring import observability_supervisor
from aicmo_actors.orchestration.registry import WORKER, ModuleRegistry
from aicmo_actors.orchestration.switchboard import SWITCHBOARD
from aicmo_actors.orchestration.switches import SwitchesRepo
from aicmo_actors.orchestration.wiring import orchestration_supervisor
from aicmo_actors.runtime import ActorSystem, SupervisorSpec
from contracts.orchestration import ApplySwitches


def module_registry() -> ModuleRegistry:
    """Every module built so far, as each declares itself."""
    from aicmo_actors.after_deal import modules

    return ModuleRegistry([cam_module.describe(), *modules()])


def usage_sources() -> list[UsageSource]:
    from aicmo_actors.production import usage as production_usage

    return [
        UsageSource(
            cam_usage.MODULE,
            cam_usage.COUNTED_EVENTS,
            cam_usage.usage_of,
            cam_usage.usage_since_in,
        ),
        UsageSource(
            production_usage.MODULE,
            production_usage.COUNTED_EVENTS,
            production_usage.usage_of,
            production_usage.usage_since_in,
        ),
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


def switch_action(name: str, enabled: bool) -> str:
    """The audit trail's word for a switch: module.enable|disable, worker.resume|pause."""
    if name == WORKER:
        return "worker.resume" if enabled else "worker.pause"
    return "module.enable" if enabled else "module.disable"


async def set_switch(
    repo: SwitchesRepo, name: str, enabled: bool, *, actor: str, source: str, reason: str | None, now: datetime
) -> bool:
    """Keep a switch and its audit row, in one transaction (the command line, the API and the
    web app all switch this way); True when that changed something. A running service
    applies it at its next tick, or at once when told `ApplySwitches` (`apply_switches_now`)."""
    from aicmo_actors.identity.repos import record_in

    action = switch_action(name, enabled)
    return await repo.set(
        name,
        enabled,
        by=actor,
        reason=reason,
        now=now,
        also=lambda conn: record_in(conn, actor, source, action, name, {"reason": reason}, now),
    )


async def apply_switches_now(system: ActorSystem) -> None:
    """Have the switchboard read the switches again and apply them now."""
    await system.ref(SWITCHBOARD, ApplySwitches).tell(system.message(ApplySwitches))
