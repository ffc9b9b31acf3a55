"""Suspending actors (a module switched off): mail is kept, ticks coalesce, nothing is lost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aicmo_actors.runtime import ActorSystem, ChildSpec, FakeClock, RuntimeSettings
from aicmo_actors.runtime.actor import Actor
from contracts.runtime import Tick
from tests.unit.runtime_helpers import Accumulator, Add, Crash, Get

pytestmark = pytest.mark.anyio

QUIET = RuntimeSettings(tick_interval_s=0, seed=7, backoff_base_s=0)


class TickCounter(Actor[Tick]):
    subscribes = (Tick,)

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    async def receive(self, message: Tick) -> None:
        self.seen.append(message.seq)


def _status(system: ActorSystem, name: str) -> str:
    return next(a.status for a in system.snapshot().actors if a.name == name)


async def test_a_suspended_actor_keeps_its_mail_and_processes_it_in_order_when_resumed() -> None:
    log: list[str] = []
    async with ActorSystem(QUIET, children=[ChildSpec("acc", lambda: Accumulator(log))]) as system:
        ref = system.ref("acc", Add)
        await ref.tell(Add(n=1))
        await system.settle()
        system.suspend(["acc"])
        for n in (2, 3, 4):
            await ref.tell(Add(n=n))
        await system.settle()  # suspended actors count as idle: this returns
        assert log == ["acc:1"]
        assert _status(system, "acc") == "suspended"
        assert system.snapshot().actors[0].mailbox_depth == 3
        system.resume(["acc"])
        assert await ref.ask(Get()) == 10
        assert log == ["acc:1", "acc:2", "acc:3", "acc:4"]
        assert _status(system, "acc") == "running"
        assert system.dead_letters.total == 0


async def test_an_actor_named_before_it_starts_starts_suspended() -> None:
    log: list[str] = []
    system = ActorSystem(QUIET, children=[ChildSpec("acc", lambda: Accumulator(log))])
    system.suspend(["acc"])
    async with system:
        await system.ref("acc", Add).tell(Add(n=5))
        await system.settle()
        assert log == []
        system.resume(["acc"])
        await system.settle()
        assert log == ["acc:5"]


async def test_ticks_coalesce_to_one_while_suspended() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    seen: list[int] = []
    settings = RuntimeSettings(tick_interval_s=60, seed=7)
    async with ActorSystem(settings, clock=clock, children=[ChildSpec("ticks", lambda: TickCounter(seen))]) as system:
        clock.advance(60)
        await system.settle()
        assert seen == [1]
        system.suspend(["ticks"])
        for _ in range(5):
            clock.advance(60)
            await system.settle()
        assert seen == [1]
        assert next(a for a in system.snapshot().actors if a.name == "ticks").mailbox_depth == 1
        system.resume(["ticks"])
        await system.settle()
        assert seen == [1, 2]  # the first kept tick; the four after it were the same signal
        clock.advance(60)
        await system.settle()
        assert seen == [1, 2, 7]


async def test_a_stopping_system_does_not_wait_for_suspended_mail() -> None:
    log: list[str] = []
    system = ActorSystem(QUIET, children=[ChildSpec("acc", lambda: Accumulator(log))])
    async with system:
        system.suspend(["acc"])
        await system.ref("acc", Add).tell(Add(n=1))
    assert system.stopped
    assert log == []


async def test_health_facts_last_ok_last_error_and_restarts() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with ActorSystem(QUIET, clock=clock, children=[ChildSpec("acc", Accumulator)]) as system:
        ref = system.ref("acc", Add)
        await ref.ask(Add(n=1))
        stats = system.snapshot().actors[0]
        assert stats.last_ok_at == clock.now()
        assert stats.last_error_at is None
        clock.advance(30)
        await ref.tell(Crash(reason="kaput"))
        await system.settle()
        stats = system.snapshot().actors[0]
        assert stats.last_error_at == clock.now()
        assert stats.last_error == "RuntimeError: kaput"
        # The crashing message stays at the head until the poison threshold: one restart each time.
        assert stats.recent_restarts and set(stats.recent_restarts) == {clock.now()}
        assert stats.restarts == len(stats.recent_restarts)
        assert stats.last_ok_at == datetime(2026, 1, 1, tzinfo=UTC)  # the success before, not the crash


async def test_dependencies_are_kept_with_the_last_time_they_worked() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with ActorSystem(QUIET, clock=clock) as system:
        system.report_dependency("smtp:main", ok=True, actor="cam.sender")
        clock.advance(10)
        system.report_dependency("smtp:main", ok=False, detail="535 authentication failed", actor="cam.sender")
        (dep,) = system.snapshot().dependencies
        assert (dep.ok, dep.detail, dep.last_ok_at) == (
            False,
            "535 authentication failed",
            datetime(2026, 1, 1, tzinfo=UTC),
        )
        clock.advance(10)
        system.report_dependency("smtp:main", ok=True, actor="cam.sender")
        (dep,) = system.snapshot().dependencies
        assert dep.ok and dep.last_ok_at == clock.now()
