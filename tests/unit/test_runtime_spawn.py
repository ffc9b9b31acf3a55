"""`ActorContext.spawn`: tasks owned by one incarnation of an actor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import structlog

from aicmo_actors.runtime import ActorSystem, ChildSpec, FakeClock, RuntimeSettings
from contracts.runtime import ActorStats
from tests.unit.runtime_helpers import Accumulator, Add, Crash, Get, Nap, Quit

pytestmark = pytest.mark.anyio

QUIET = RuntimeSettings(tick_interval_s=0, seed=3, backoff_base_s=0, poison_threshold=1)

Work = Callable[["Spawner"], Coroutine[Any, Any, None]]


class Spawner(Accumulator):
    """An accumulator that spawns `work` in every incarnation and notes how it ends."""

    def __init__(self, notes: list[str], work: Work) -> None:
        super().__init__()
        self.notes = notes
        self.work = work

    async def on_start(self) -> None:
        self.task = self.ctx.spawn(self.work(self), name=f"work:{self.ctx.name}")

    async def on_stop(self) -> None:
        self.notes.append(f"on_stop, task done: {self.task.done()}")


async def wait_forever(actor: Spawner) -> None:
    actor.notes.append("task started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        actor.notes.append("task cancelled")
        raise


def fails_first_time_after(seconds: float, runs: list[int]) -> Work:
    """The first incarnation's task fails `seconds` of clock time after it starts."""

    async def work(actor: Spawner) -> None:
        runs.append(len(runs) + 1)
        if len(runs) > 1:
            return await wait_forever(actor)
        await actor.ctx.clock.sleep(seconds)
        raise ValueError("a bug in the task")

    return work


def tasks_named(name: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name]


def stats(system: ActorSystem, name: str) -> ActorStats:
    return next(a for a in system.snapshot().actors if a.name == name)


async def test_the_task_is_cancelled_and_awaited_before_on_stop_when_the_actor_stops() -> None:
    notes: list[str] = []
    spec = ChildSpec("w", lambda: Spawner(notes, wait_forever), restart="transient")
    async with ActorSystem(QUIET, clock=FakeClock(), children=[spec]) as system:
        await system.settle()
        await system.ref("w", Quit).tell(Quit())
        await system.settle()
        assert notes == ["task started", "task cancelled", "on_stop, task done: True"]
        assert tasks_named("work:w") == []


async def test_the_task_is_cancelled_on_a_restart_and_the_new_incarnation_has_its_own() -> None:
    notes: list[str] = []
    spec = ChildSpec("w", lambda: Spawner(notes, wait_forever))
    async with ActorSystem(QUIET, clock=FakeClock(), children=[spec]) as system:
        await system.settle()
        await system.ref("w", Crash).tell(Crash())
        await system.settle()
        assert stats(system, "w").restarts == 1
        assert notes == [
            "task started",
            "task cancelled",
            "on_stop, task done: True",
            "task started",
        ]
        assert len(tasks_named("work:w")) == 1
    assert tasks_named("work:w") == []


async def test_a_failing_task_crashes_the_idle_actor_and_the_supervisor_restarts_it() -> None:
    notes: list[str] = []
    runs: list[int] = []
    clock = FakeClock()
    spec = ChildSpec("w", lambda: Spawner(notes, fails_first_time_after(60, runs)))
    with structlog.testing.capture_logs() as logs:
        async with ActorSystem(QUIET, clock=clock, children=[spec]) as system:
            await system.ref("w", Add).tell(Add(n=5))
            await clock.sleep(120)
            await system.settle()
            after = stats(system, "w")
            assert (after.restarts, after.failed, after.status) == (1, 0, "running")
            assert await system.ref("w", Get).ask(Get()) == 0  # a fresh incarnation
            assert runs == [1, 2] and notes == ["on_stop, task done: True", "task started"]
    crashes = [entry for entry in logs if entry["event"] == "child crashed"]
    assert len(crashes) == 1
    assert crashes[0]["error"] == (
        "RuntimeError(\"task 'work:w' of actor 'w' failed: ValueError('a bug in the task')\")"
    )


async def test_a_failing_task_interrupts_the_message_in_progress_which_is_processed_again() -> None:
    runs: list[int] = []
    clock = FakeClock()
    spec = ChildSpec("w", lambda: Spawner([], fails_first_time_after(60, runs)))
    async with ActorSystem(QUIET, clock=clock, children=[spec]) as system:
        await system.ref("w", Nap).tell(Nap(seconds=100))  # still napping when the task fails
        await system.ref("w", Add).tell(Add(n=1))
        await clock.sleep(300)
        await system.settle()
        after = stats(system, "w")
        assert (after.restarts, after.failed, after.processed) == (1, 0, 2)
        assert await system.ref("w", Get).ask(Get()) == 1


async def test_tasks_wait_on_the_fake_clock_without_keeping_it_still() -> None:
    async def feed(actor: Spawner) -> None:
        async for _ in actor.ctx.clock.every(60):
            await actor.ctx.self_ref.tell(Add(n=1))

    clock = FakeClock()
    spec = ChildSpec("w", lambda: Spawner([], feed))
    async with ActorSystem(QUIET, clock=clock, children=[spec]) as system:
        await clock.sleep(630)
        await system.settle()
        assert await system.ref("w", Get).ask(Get()) == 10


async def test_messages_built_in_a_task_take_seeded_ids_and_start_a_conversation() -> None:
    async def build(seed: int) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
        built: list[tuple[uuid.UUID, uuid.UUID | None]] = []

        async def work(actor: Spawner) -> None:
            for n in range(3):
                message = Add(n=n)
                built.append((message.message_id, message.correlation_id))

        settings = QUIET.model_copy(update={"seed": seed})
        spec = ChildSpec("w", lambda: Spawner([], work))
        async with ActorSystem(settings, clock=FakeClock(), children=[spec]) as system:
            await system.settle()
        return built

    first, again, other = await build(1), await build(1), await build(2)
    assert first == again and first != other
    assert [correlation for _, correlation in first] == [None, None, None]


async def test_an_actor_that_has_stopped_cannot_spawn() -> None:
    refused: list[str] = []

    class Late(Accumulator):
        async def on_stop(self) -> None:
            try:
                self.ctx.spawn(asyncio.sleep(0), name="late")
            except RuntimeError as error:
                refused.append(str(error))

    spec = ChildSpec("w", Late, restart="transient")
    async with ActorSystem(QUIET, clock=FakeClock(), children=[spec]) as system:
        await system.ref("w", Quit).tell(Quit())
        await system.settle()
    assert refused == ["actor 'w' has stopped: it cannot spawn 'late'"]
