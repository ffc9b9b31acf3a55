"""Time, behind one interface: the real clock for service use, a fake one for simulation.

Nothing else in the system reads wall time or sleeps on the event loop: it asks its clock.
`FakeClock` jumps straight to the next timer as soon as every actor is idle (like trio's
autojump clock), so a simulated month runs in seconds and replays exactly.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aicmo_actors.runtime.activity import Activity, released


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What every actor gets for time: now, monotonic seconds, sleeping and timers."""

    name: str

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals and deadlines)."""
        ...

    def perf(self) -> float:
        """A high-resolution counter for measuring latency only, never for behaviour."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until `monotonic()` reaches `deadline`."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def attach(self, activity: Activity) -> None:
        """Called by the actor system that owns this clock."""
        ...

    def every(self, interval: float) -> AsyncIterator[int]: ...


async def _every(clock: Clock, interval: float) -> AsyncIterator[int]:
    """Yield 1, 2, 3... at a fixed rate; ticks missed while the caller was busy are skipped."""
    if interval <= 0:
        raise ValueError(f"interval must be > 0, got {interval!r}")
    start = clock.monotonic()
    n = 1
    while True:
        await clock.sleep_until(start + n * interval)
        yield n
        now = clock.monotonic()
        n += 1
        if start + n * interval < now:
            n = int((now - start) // interval) + 1


class RealClock:
    """Wall-clock time and the event loop's timers."""

    name = "real"

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def perf(self) -> float:
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        with released():
            await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        await self.sleep(deadline - self.monotonic())

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    def attach(self, activity: Activity) -> None:
        pass

    def every(self, interval: float) -> AsyncIterator[int]:
        return _every(self, interval)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "context", "deadline", "seq")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback = callback
        self.cancelled = False
        # Like asyncio's own timers: the callback runs in the context it was scheduled from.
        self.context = contextvars.copy_context()

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _FakeTimer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


DEFAULT_FAKE_START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # a Monday


class FakeClock:
    """Simulated time that moves only when told to, or, with auto-jump, when all is idle.

    Timers with the same deadline fire in the order they were set, so runs replay exactly.
    """

    name = "fake"

    def __init__(self, start: datetime = DEFAULT_FAKE_START, *, autojump: bool = True) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock start must be timezone-aware (UTC)")
        self._start = start.astimezone(UTC)
        self._offset = 0.0
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()
        self._activity: Activity | None = None
        self._timer_added: asyncio.Event | None = None
        self.autojump = autojump
        self.jumps = 0

    # -- reading time -------------------------------------------------------------
    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    def perf(self) -> float:
        return time.perf_counter()

    # -- timers -------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(self._offset + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        if self._timer_added is not None:
            self._timer_added.set()
        return timer

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._offset + seconds)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._offset:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(deadline - self._offset, wake)
        try:
            with released():
                await future
        finally:
            timer.cancel()

    def every(self, interval: float) -> AsyncIterator[int]:
        return _every(self, interval)

    def next_deadline(self) -> float | None:
        """The monotonic time of the next live timer, if any."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].deadline if self._timers else None

    def advance(self, seconds: float) -> int:
        """Move time forward by `seconds`, firing every timer due on the way. Returns how many."""
        return self._advance_to(self._offset + seconds)

    def _advance_to(self, target: float) -> int:
        fired = 0
        while self._timers and self._timers[0].deadline <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._offset = max(self._offset, timer.deadline)
            timer.cancelled = True
            timer.context.run(timer.callback)
            fired += 1
        self._offset = max(self._offset, target)
        return fired

    # -- auto-jump ------------------------------------------------------------------
    def attach(self, activity: Activity) -> None:
        self._activity = activity

    async def run_autojump(self) -> None:
        """Run forever: whenever nothing can happen until time moves, jump to the next timer."""
        self._timer_added = asyncio.Event()
        try:
            while True:
                await self._wait_quiescent()
                deadline = self.next_deadline()
                if deadline is None:
                    self._timer_added.clear()
                    await self._timer_added.wait()
                    continue
                self.jumps += 1
                self._advance_to(deadline)
        finally:
            self._timer_added = None

    async def _wait_quiescent(self) -> None:
        loop = asyncio.get_running_loop()
        # The default event loop's ready queue tells whether any callback is runnable; on loops
        # without one (uvloop) a few extra yields do the same job less precisely.
        ready = getattr(loop, "_ready", None)
        rounds = 3 if ready is not None else 20
        activity = self._activity
        while True:
            if activity is not None and activity.active > 0:
                await activity.wait_idle()
                continue
            settled = True
            for _ in range(rounds):
                await asyncio.sleep(0)
                if (activity is not None and activity.active > 0) or (ready is not None and len(ready) > 0):
                    settled = False
                    break
            if settled:
                return
