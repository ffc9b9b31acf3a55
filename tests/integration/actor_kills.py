"""Killing an actor system in process at its n-th kill point, and moving a fake clock: what
the saga's kill tests share (`test_project_saga.py`, `test_after_deal_chain.py`).

Only an actor at work counts (set-up, supervisors and runtime tasks are not "the process
dying"); the actor that reaches the n-th point is held there forever, the others come to
rest, then the whole system is killed, as `python run.py` dies on SIGKILL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field

from aicmo_actors.runtime import ActorSystem, FakeClock
from aicmo_actors.runtime.activity import current_holder
from aicmo_actors.simulation.run import _quiet_but_frozen


async def run_for(system: ActorSystem, clock: FakeClock, seconds: float) -> None:
    """Let `seconds` pass on a clock that does not jump by itself, timer by timer, the system
    settled in between."""
    target = clock.monotonic() + seconds
    while True:
        await system.settle()
        deadline = clock.next_deadline()
        if deadline is None or deadline > target:
            break
        clock.advance(max(0.0, deadline - clock.monotonic()))
    clock.advance(target - clock.monotonic())
    await system.settle()


@dataclass
class KillAt:
    """The hook to install (`killpoints.installed(kill.hook)`): dies at the `n`-th kill point
    of an actor at work (of `kinds` and of `actors`, when given)."""

    n: int
    kinds: Collection[str] | None = None
    #: Only kill points of these actors count (None: every actor's).
    actors: Collection[str] | None = None
    seen: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    frozen: list[object] = field(default_factory=list)

    async def hook(self, kind: str) -> None:
        holder = current_holder.get()
        who = getattr(holder, "name", None)
        task = asyncio.current_task()
        if holder is None or not holder.holding or task is None or task.get_name() != f"actor:{who}":
            return
        if self.kinds is not None and kind not in self.kinds:
            return
        if self.actors is not None and who not in self.actors:
            return
        self.seen += 1
        if self.seen == self.n:
            self.reached.set()
            self.frozen.append(holder)
            await asyncio.Event().wait()  # never set: the system is killed around us

    async def until(self, work: Awaitable[object]) -> None:
        """Run `work` until it ends or the kill point is reached, whichever comes first."""
        running = asyncio.ensure_future(work)
        waiting = asyncio.ensure_future(self.reached.wait())
        try:
            await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            if not running.done():
                running.cancel()

    async def kill(self, system: ActorSystem) -> None:
        """Everything else at rest, then the system dies."""
        await _quiet_but_frozen(system, self.frozen)
        await system.kill()
