"""The clock actor: publishes `Tick` at a fixed rate to whoever subscribed to it."""

from __future__ import annotations

from aicmo_actors.runtime.actor import Actor
from contracts.runtime import Tick

CLOCK_ACTOR = "runtime.clock"


class ClockActor(Actor[Tick]):
    """Fixed-rate ticks (`Clock.every`): tick n is due at start + n * interval; ticks missed
    while the process was busy are skipped (their numbers too), never bunched up."""

    #: One tick at a time: while one is being published, the next waits to be queued.
    mailbox_size = 1

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"tick interval must be > 0, got {interval_s!r}")
        self.interval = interval_s

    async def on_start(self) -> None:
        self.ctx.spawn(self._tick(), name=f"ticks:{self.ctx.name}")

    async def _tick(self) -> None:
        clock = self.ctx.clock
        ref = self.ctx.self_ref
        async for seq in clock.every(self.interval):
            await ref.tell(Tick(seq=seq, at=clock.now(), interval_s=self.interval))

    async def receive(self, message: Tick) -> None:
        await self.ctx.publish(message)
