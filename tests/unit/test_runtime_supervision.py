"""Supervision with OTP semantics: restart types, strategies, intensity and escalation."""

from __future__ import annotations

import asyncio

import pytest

from aicmo_actors.runtime import (
    ActorSystem,
    ChildSpec,
    FakeClock,
    RuntimeSettings,
    SupervisorSpec,
    SystemFailed,
)
from aicmo_actors.runtime.supervisor import backoff_delay
from tests.unit.runtime_helpers import Accumulator, Add, Crash, Get, Quit

pytestmark = pytest.mark.anyio

QUIET = RuntimeSettings(tick_interval_s=0, seed=3, backoff_base_s=0, poison_threshold=1)


def restarts(system: ActorSystem, name: str) -> int:
    return next(a.restarts for a in system.snapshot().actors if a.name == name)


async def test_crash_restarts_only_the_failed_child_and_the_sibling_keeps_its_state() -> None:
    children = [ChildSpec("a", Accumulator), ChildSpec("b", Accumulator)]
    async with ActorSystem(QUIET, children=children) as system:
        a, b = system.ref("a", Add), system.ref("b", Add)
        await a.tell(Add(n=10))
        await b.tell(Add(n=20))
        await a.tell(Crash())
        await b.tell(Add(n=1))
        assert await a.ask(Get()) == 0  # a restarted: fresh state
        assert await b.ask(Get()) == 21  # b untouched, still processing
        assert restarts(system, "a") == 1 and restarts(system, "b") == 0


async def test_transient_child_is_not_restarted_after_a_normal_exit() -> None:
    children = [
        ChildSpec("transient", Accumulator, restart="transient"),
        ChildSpec("permanent", Accumulator, restart="permanent"),
    ]
    async with ActorSystem(QUIET, children=children) as system:
        await system.ref("transient", Quit).tell(Quit())
        await system.ref("permanent", Quit).tell(Quit())
        await system.settle()
        assert await system.ref("permanent", Get).ask(Get()) == 0
        assert restarts(system, "permanent") == 1
        status = {a.name: a.status for a in system.snapshot().actors}
        assert status["transient"] == "stopped"
        await system.ref("transient", Add).tell(Add(n=1))
        assert system.dead_letters.counts["undeliverable"] == 1


async def test_transient_child_is_restarted_after_a_crash() -> None:
    children = [ChildSpec("t", Accumulator, restart="transient")]
    async with ActorSystem(QUIET, children=children) as system:
        await system.ref("t", Crash).tell(Crash())
        assert await system.ref("t", Get).ask(Get()) == 0
        assert restarts(system, "t") == 1


async def test_temporary_child_is_never_restarted() -> None:
    async with ActorSystem(QUIET, children=[ChildSpec("tmp", Accumulator, restart="temporary")]) as system:
        await system.ref("tmp", Crash).tell(Crash())
        await system.settle()
        assert {a.name: a.status for a in system.snapshot().actors}["tmp"] == "stopped"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("one_for_one", [0, 1, 0]), ("one_for_all", [1, 1, 1]), ("rest_for_one", [0, 1, 1])],
)
async def test_strategies_restart_the_right_children(strategy: str, expected: list[int]) -> None:
    group = SupervisorSpec(
        "group",
        children=[ChildSpec(n, Accumulator) for n in ("x", "y", "z")],
        strategy=strategy,  # type: ignore[arg-type]
        max_restarts=5,
    )
    async with ActorSystem(QUIET, children=[group]) as system:
        for name in ("x", "y", "z"):
            await system.ref(name, Add).tell(Add(n=5))
        await system.ref("y", Crash).tell(Crash())
        await system.settle()
        totals = [await system.ref(n, Get).ask(Get()) for n in ("x", "y", "z")]
        assert [restarts(system, n) for n in ("x", "y", "z")] == expected
        assert totals == [0 if r else 5 for r in expected]


async def test_exceeded_intensity_escalates_to_the_parent() -> None:
    inner = SupervisorSpec("inner", children=[ChildSpec("w", Accumulator)], max_restarts=2, period=60)
    root_settings = RuntimeSettings(tick_interval_s=0, seed=3, backoff_base_s=0, poison_threshold=1, max_restarts=5)
    clock = FakeClock()
    async with ActorSystem(root_settings, clock=clock, children=[inner]) as system:
        worker = system.ref("w", Crash)
        for _ in range(3):  # the third crash is more than 2 restarts in 60 s
            await worker.tell(Crash())
            await system.settle()
        # The parent (root, one_for_one) restarted the whole inner supervisor: w is alive.
        assert await system.ref("w", Get).ask(Get()) == 0
        assert system.root is not None and system.root.restart_count == 1
        assert system.failure is None


async def test_root_giving_up_stops_the_system_with_a_reason() -> None:
    settings = RuntimeSettings(tick_interval_s=0, seed=3, backoff_base_s=0, poison_threshold=1, max_restarts=1)
    system = ActorSystem(settings, clock=FakeClock(), children=[ChildSpec("w", Accumulator)])
    with pytest.raises(SystemFailed, match="more than 1 restarts"):
        async with system:
            await system.ref("w", Crash).tell(Crash())
            await system.ref("w", Crash).tell(Crash())
            await system.wait()
    # The reason names the child whose crash was one too many, and how it crashed.
    assert system.failure is not None
    assert "last: w RuntimeError('boom')" in system.failure


async def test_restarts_back_off_with_seeded_jitter() -> None:
    assert backoff_delay(1, 0.1, 10, 0.5) == 0.0
    assert backoff_delay(2, 0.1, 10, 0.5) == pytest.approx(0.1)
    assert backoff_delay(4, 0.1, 10, 0.0) == pytest.approx(0.2)
    assert backoff_delay(30, 0.1, 10, 0.99) == pytest.approx(14.9)
    settings = RuntimeSettings(
        tick_interval_s=0,
        seed=3,
        backoff_base_s=1.0,
        poison_threshold=1,
        max_restarts=10,
        restart_period_s=1000,
    )
    clock = FakeClock()
    async with ActorSystem(settings, clock=clock, children=[ChildSpec("w", Accumulator)]) as system:
        for _ in range(3):
            await system.ref("w", Crash).tell(Crash())
            await system.settle()
        await system.ref("w", Get).ask(Get())
        # first restart immediate, then 1 s and 2 s, each scaled by a jitter in [0.5, 1.5)
        assert 1.5 <= clock.monotonic() < 4.5


async def test_a_failing_on_start_reports_a_clear_error() -> None:
    from aicmo_actors.runtime import Actor
    from aicmo_actors.runtime.supervisor import StartFailed

    class Broken(Actor[Add]):
        async def on_start(self) -> None:
            raise ValueError("no database")

        async def receive(self, message: Add) -> None:
            pass

    with pytest.raises(StartFailed, match="actor 'broken' failed to start: ValueError"):
        async with ActorSystem(QUIET, children=[ChildSpec("broken", Broken)]):
            pass


async def test_restarts_backing_off_on_a_fake_clock_never_stall_the_clock() -> None:
    """Two children crash at once while restarts back off: the second exit waits behind the
    first one's backoff sleep, and must not keep the fake clock from moving (it did: time
    stood still for good, and a simulated run hung)."""
    settings = RuntimeSettings(
        tick_interval_s=0,
        seed=3,
        backoff_base_s=1.0,
        max_restarts=10,
        restart_period_s=60,
        poison_threshold=1,
    )
    clock = FakeClock()
    children = [ChildSpec("a", Accumulator), ChildSpec("b", Accumulator)]
    async with ActorSystem(settings, clock=clock, children=children) as system:
        a, b = system.ref("a", Crash), system.ref("b", Crash)
        await a.tell(Crash())  # the first restart in the period: no backoff
        await system.settle()
        await a.tell(Crash())  # the second and third back off, one after the other
        await b.tell(Crash())
        await system.settle()
        await asyncio.wait_for(clock.sleep(60), timeout=10)  # a wall-clock guard, not a timing
        await system.settle()
        assert restarts(system, "a") == 2 and restarts(system, "b") == 1
        assert await system.ref("b", Get).ask(Get(), timeout=5) == 0
