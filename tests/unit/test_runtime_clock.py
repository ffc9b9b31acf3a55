"""Clocks, ticks, determinism and embedding."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import textwrap

import anyio
import anyio.lowlevel
import pytest

from aicmo_actors.runtime import (
    Actor,
    ActorSystem,
    ChildSpec,
    FakeClock,
    RealClock,
    RuntimeSettings,
)
from contracts.runtime import Tick
from tests.unit.runtime_helpers import Accumulator, Add, Get, Noted

pytestmark = pytest.mark.anyio


class TickCounter(Actor[Tick]):
    subscribes = (Tick,)

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    async def receive(self, message: Tick) -> None:
        self.seen.append(message.seq)


class Gambler(Actor[Tick]):
    """On every tick, publishes a number from its seeded random source after a random nap."""

    subscribes = (Tick,)

    async def receive(self, message: Tick) -> None:
        await self.ctx.clock.sleep(self.ctx.random.uniform(0, 600))
        await self.ctx.publish(Noted(who=self.ctx.name, value=self.ctx.random.randrange(1000)))


async def test_fake_clock_fires_timers_in_deadline_then_insertion_order() -> None:
    clock = FakeClock(autojump=False)
    fired: list[str] = []
    clock.call_later(5, lambda: fired.append("b"))
    clock.call_later(1, lambda: fired.append("a"))
    clock.call_later(5, lambda: fired.append("c"))
    cancelled = clock.call_later(3, lambda: fired.append("x"))
    cancelled.cancel()
    assert clock.advance(4) == 1
    assert fired == ["a"]
    clock.advance(10)
    assert fired == ["a", "b", "c"]
    assert clock.monotonic() == 14


async def test_a_month_of_hourly_ticks_runs_in_fake_time() -> None:
    clock = FakeClock()
    seen: list[int] = []
    settings = RuntimeSettings(tick_interval_s=3600, seed=1)
    # fail_after is a hang guard, not a performance assertion (the bench measures speed).
    with anyio.fail_after(10):
        async with ActorSystem(settings, clock=clock, children=[ChildSpec("t", lambda: TickCounter(seen))]):
            await clock.sleep(30 * 86400 + 1)
    assert seen == list(range(1, 721))
    assert clock.now().isoformat().startswith("2026-02-04T00:00:01")


async def run_traced(seed: int) -> str:
    clock = FakeClock()
    lines: list[str] = []
    settings = RuntimeSettings(tick_interval_s=3600, seed=seed)
    children = [ChildSpec(f"g{i}", Gambler) for i in range(3)]
    async with ActorSystem(settings, clock=clock, children=children) as system:
        system.events.tap(lambda e: lines.append(f"{clock.monotonic():.6f} {e.model_dump_json()}"))
        await clock.sleep(7 * 86400)
    assert len(lines) > 7 * 24 * 3
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


async def test_same_seed_same_trace_other_seed_other_trace() -> None:
    first, second, other = await run_traced(11), await run_traced(11), await run_traced(12)
    assert first == second
    assert first != other


async def test_real_clock_ticks_and_sleeps() -> None:
    clock = RealClock()
    start = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() - start >= 0.009
    assert clock.now().tzinfo is not None


async def test_embedded_beside_another_task_under_anyio() -> None:
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        async with ActorSystem(
            RuntimeSettings(tick_interval_s=0, seed=1), children=[ChildSpec("acc", Accumulator)]
        ) as system:
            for n in range(100):
                await system.ref("acc", Add).tell(Add(n=n))
            assert await system.ref("acc", Get).ask(Get()) == sum(range(100))
        tg.cancel_scope.cancel()
    assert beats > 0


def test_embedded_in_a_plain_asyncio_program_leaves_no_task_behind() -> None:
    program = textwrap.dedent(
        """
        import asyncio
        from aicmo_actors.runtime import ActorSystem, ChildSpec, RuntimeSettings
        from tests.unit.runtime_helpers import Accumulator, Add, Get

        async def other_work(n):
            total = 0
            for i in range(n):
                total += i
                await asyncio.sleep(0)
            return total

        async def main():
            settings = RuntimeSettings(tick_interval_s=0.01, seed=5)
            async with ActorSystem(settings, children=[ChildSpec("acc", Accumulator)]) as system:
                side = asyncio.create_task(other_work(1000))
                for n in range(10):
                    await system.ref("acc", Add).tell(Add(n=n))
                reply = await system.ref("acc", Get).ask(Get())
                assert await side == sum(range(1000))
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            print("reply", reply, "left", len(left))

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "reply 45 left 0" in done.stdout


async def test_ticks_are_skipped_not_bunched_when_the_loop_was_blocked() -> None:
    clock = FakeClock(autojump=False)
    seen: list[int] = []
    settings = RuntimeSettings(tick_interval_s=10, seed=1)
    async with ActorSystem(settings, clock=clock, children=[ChildSpec("t", lambda: TickCounter(seen))]) as system:
        clock.advance(10)
        await system.settle()
        clock.advance(35)  # ticks 2, 3, 4 were due; the timer fires once, then re-arms ahead
        await system.settle()
        clock.advance(10)
        await system.settle()
    assert seen == [1, 2, 5]


async def test_no_task_left_behind_after_exit() -> None:
    before = set(asyncio.all_tasks())
    async with ActorSystem(
        RuntimeSettings(tick_interval_s=1, seed=1),
        clock=FakeClock(),
        children=[ChildSpec("acc", Accumulator)],
    ) as system:
        await system.ref("acc", Add).tell(Add(n=1))
    assert set(asyncio.all_tasks()) - before == set()
