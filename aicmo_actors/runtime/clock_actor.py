"""The clock actor: publishes `Tick` at a fixed rate to whoever subscribed to it."""

from __future__ import annotations

from aicmo_actors.runtime.actor import Actor
from aicmo_actors.runtime.clock import TimerHandle
from contracts.runtime import Tick

CLOCK_ACTOR = "runtime.clock"


class ClockActor(Actor[Tick]):
    """Fixed-rate ticks: tick n is due at start + n * interval; ticks missed while the
    process was busy are skipped (their numbers too), never bunched up."""

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"tick interval must be > 0, got {interval_s!r}")
        self.interval = interval_s
        self._origin = 0.0
        self._seq = 0
        self._timer: TimerHandle | None = None

    async def on_start(self) -> None:
        self._origin = self.ctx.clock.monotonic()
        self._seq = 0
        self._arm()

    def _arm(self) -> None:
        clock = self.ctx.clock
        now = clock.monotonic()
        self._seq += 1
        due = self._origin + self._seq * self.interval
        if due < now:  # we fell behind: skip to the next tick still in the future
            self._seq = int((now - self._origin) // self.interval) + 1
            due = self._origin + self._seq * self.interval
        seq = self._seq
        self._timer = clock.call_later(due - now, lambda: self._fire(seq))

    def _fire(self, seq: int) -> None:
        tick = Tick(seq=seq, at=self.ctx.clock.now(), interval_s=self.interval)
        self.ctx.self_ref.try_tell(tick)

    async def receive(self, message: Tick) -> None:
        await self.ctx.publish(message)
        self._arm()

    async def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
