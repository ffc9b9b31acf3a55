"""`orchestration.switches`: applies the kept switches to the running actors.

At start, on every tick (a change made from the command line, in another process, takes
effect within one cycle) and at once when told `ApplySwitches` (a change made through the
API). Reading the switches is also the control plane's look at the database: how long it
took, or that it failed, is reported as the ``database`` dependency.
"""

from __future__ import annotations

from aicmo_actors.orchestration.registry import ModuleRegistry
from aicmo_actors.orchestration.switches import SwitchesRepo, SwitchState
from aicmo_actors.runtime import Actor
from contracts.orchestration import ApplySwitches, SwitchesApplied
from contracts.runtime import Tick

SWITCHBOARD = "orchestration.switches"
#: A read of a few rows slower than this says the database is lagging.
SLOW_DATABASE_S = 2.0


class Switchboard(Actor[Tick | ApplySwitches]):
    subscribes = (Tick,)

    def __init__(self, registry: ModuleRegistry, repo: SwitchesRepo) -> None:
        self.registry = registry
        self.repo = repo
        self.state: SwitchState | None = None

    async def on_start(self) -> None:
        await self._apply()

    async def receive(self, message: Tick | ApplySwitches) -> None:
        await self._apply()

    async def _apply(self) -> None:
        clock = self.ctx.clock
        started = clock.perf()
        try:
            state = await self.repo.state()
        except Exception as exc:
            # Keep the switches as they were: nothing changes until the database answers.
            self.ctx.report_dependency("database", ok=False, detail=f"reading the switches failed: {exc}"[:300])
            return
        took = clock.perf() - started
        slow = took > SLOW_DATABASE_S
        self.ctx.report_dependency(
            "database",
            ok=not slow,
            detail=f"answered in {took:.1f} s (slower than {SLOW_DATABASE_S:g} s)" if slow else "",
        )
        system = self.ctx.system
        wanted = self.registry.actors_to_suspend(state.disabled, worker_paused=state.worker_paused)
        before = system.suspended
        self.state = state
        if wanted == before:
            return
        system.resume(before - wanted)
        system.suspend(wanted - before)
        self.ctx.log.info(
            "switches applied",
            disabled=state.disabled,
            worker_paused=state.worker_paused,
            suspended=sorted(wanted),
        )
        await self.ctx.publish(
            SwitchesApplied(
                disabled=tuple(state.disabled), worker_paused=state.worker_paused, suspended=tuple(sorted(wanted))
            )
        )
