"""The soak's watchdog (`bench.sim._unless_stuck`): a seed fails as hung when its simulated clock
stops moving, not when a busy machine makes it slow. No wall time is waited for: a stuck run is
caught with a timeout of 0, a moving one ends before any is reached."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.sim import Moved, _unless_stuck

pytestmark = pytest.mark.anyio


async def test_a_run_that_ends_gives_its_result() -> None:
    moved = Moved(time.perf_counter())

    async def run() -> str:
        moved.day(1.0, 2.0)
        await asyncio.sleep(0)
        moved.day(2.0, 2.0)
        return "done"

    assert await _unless_stuck(run(), moved, 60) == "done"
    assert moved.days == 2.0


async def test_a_run_whose_clock_stands_still_is_stopped_as_hung() -> None:
    moved = Moved(time.perf_counter() - 1.0)
    stopped = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    with pytest.raises(TimeoutError):
        await _unless_stuck(stuck(), moved, 0.0)
    assert stopped.is_set()  # cancelled, not left running


def test_only_a_later_day_counts_as_moving() -> None:
    moved = Moved(at=0.0)
    moved.day(0.0, 3.0)  # a restart at the same instant: no progress
    assert (moved.at, moved.days) == (0.0, 0.0)
    moved.day(0.5, 3.0)
    assert moved.days == 0.5 and moved.at > 0.0
