"""Actors and mailboxes: typing, backpressure, ask, restarts keeping mail, poison messages."""

from __future__ import annotations

import asyncio

import pytest

from aicmo_actors.runtime import (
    ActorNotFound,
    ActorSystem,
    AskTimeout,
    ChildSpec,
    FakeClock,
    MessageUndeliverable,
    RuntimeSettings,
)
from contracts.runtime import SystemSnapshot
from tests.unit.runtime_helpers import Accumulator, Add, Crash, Gate, Get, Nap, Noted

pytestmark = pytest.mark.anyio

QUIET = RuntimeSettings(tick_interval_s=0, seed=7, backoff_base_s=0)


async def test_wrong_message_type_is_refused_before_queueing() -> None:
    async with ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator)]) as system:
        ref = system.ref("acc", Add)
        with pytest.raises(TypeError) as refused:
            await ref.tell(Noted(who="x", value=1))  # type: ignore[arg-type]
        assert "does not accept Noted" in str(refused.value)
        assert "Add, Crash, Get, Quit, Nap" in str(refused.value)
        with pytest.raises(TypeError):
            ref.try_tell(Noted(who="x", value=1))  # type: ignore[arg-type]
        assert system.snapshot().actors[0].mailbox_depth == 0
        assert system.dead_letters.counts["refused"] == 2
        assert await ref.ask(Get()) == 0


async def test_ref_lookup_checks_name_and_type() -> None:
    async with ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator)]) as system:
        with pytest.raises(ActorNotFound, match="no actor named 'nope'"):
            system.ref("nope", Add)
        with pytest.raises(TypeError, match="does not accept Noted"):
            system.ref("acc", Noted)


async def test_ask_returns_the_reply() -> None:
    async with ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator)]) as system:
        ref = system.ref("acc", Add)
        await ref.tell(Add(n=2))
        assert await ref.ask(Add(n=3)) == 5
        assert await ref.ask(Get(), expect=int) == 5
        with pytest.raises(TypeError, match="expected str"):
            await ref.ask(Get(), expect=str)


async def test_ask_times_out_naming_actor_and_message() -> None:
    clock = FakeClock()
    async with ActorSystem(QUIET, clock=clock, children=[ChildSpec("acc", Accumulator)]) as system:
        ref = system.ref("acc", Nap)
        with pytest.raises(AskTimeout) as timeout:
            await ref.ask(Nap(seconds=60), timeout=5)
        assert timeout.value.actor == "acc"
        assert "Nap" in str(timeout.value) and "'acc'" in str(timeout.value)
        assert clock.monotonic() == pytest.approx(5)


async def test_backpressure_holds_a_fast_producer_and_the_bound_holds() -> None:
    gate = asyncio.Event()
    seen: list[int] = []
    spec = ChildSpec("slow", lambda: Gate(gate, seen), mailbox_size=4)
    async with ActorSystem(QUIET, children=[spec]) as system:
        ref = system.ref("slow", Add)
        produced = 0

        async def producer() -> None:
            nonlocal produced
            for n in range(50):
                await ref.tell(Add(n=n))
                produced += 1

        task = asyncio.create_task(producer())
        for _ in range(20):
            await asyncio.sleep(0)
        # The consumer holds one message (head) and the mailbox is full: the producer waits.
        assert not task.done()
        assert produced == 4
        assert ref.try_tell(Add(n=999)) is False
        assert system.dead_letters.counts["refused"] == 1
        gate.set()
        await task
        await system.settle()
        assert seen == list(range(50))
        assert system.snapshot().actors[0].mailbox_high_water <= 4


async def test_messages_waiting_at_a_crash_are_processed_by_the_replacement() -> None:
    log: list[str] = []
    async with ActorSystem(QUIET, children=[ChildSpec("acc", lambda: Accumulator(log))]) as system:
        ref = system.ref("acc", Add)
        await ref.tell(Add(n=1))
        await ref.tell(Crash())
        await ref.tell(Add(n=2))
        await ref.tell(Add(n=3))
        # A poison message is retried up to the threshold, then dead-lettered.
        assert await ref.ask(Get()) == 5  # replacement state: 2 + 3
        assert log == ["acc:1", "acc:2", "acc:3"]
        stats = {a.name: a for a in system.snapshot().actors}["acc"]
        assert stats.restarts == 3
        assert stats.failed == 3
        letters = [d for d in system.dead_letters.recent if d.kind == "poison"]
        assert len(letters) == 1 and letters[0].message_type == "Crash"
        assert "3 times" in letters[0].error


async def test_ask_on_a_poison_message_fails_instead_of_hanging() -> None:
    async with ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator)]) as system:
        with pytest.raises(MessageUndeliverable, match="crashed actor 'acc' 3 times"):
            await system.ref("acc", Crash).ask(Crash())


async def test_poison_threshold_is_configurable() -> None:
    settings = RuntimeSettings(tick_interval_s=0, seed=1, poison_threshold=1, backoff_base_s=0)
    async with ActorSystem(settings, children=[ChildSpec("acc", Accumulator)]) as system:
        ref = system.ref("acc", Add)
        await ref.tell(Crash())
        await ref.tell(Add(n=4))
        assert await ref.ask(Get()) == 4
        assert system.snapshot().actors[0].restarts == 1


async def test_shutdown_drains_queued_messages() -> None:
    log: list[str] = []
    system = ActorSystem(QUIET, children=[ChildSpec("acc", lambda: Accumulator(log))])
    async with system:
        ref = system.ref("acc", Add)
        for n in range(100):
            ref.try_tell(Add(n=n))
    assert len(log) == 100
    assert system.dead_letters.total == 0


async def test_tell_or_ask_after_stop_is_a_dead_letter() -> None:
    system = ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator)])
    async with system:
        ref = system.ref("acc", Add)
    await ref.tell(Add(n=1))
    assert system.dead_letters.counts["undeliverable"] == 1
    with pytest.raises(MessageUndeliverable, match="acc: actor stopped"):
        await ref.ask(Add(n=2))
    assert system.dead_letters.counts["undeliverable"] == 2


async def test_a_scheduled_message_is_type_checked_when_it_is_scheduled() -> None:
    async with ActorSystem(QUIET, clock=FakeClock(), children=[ChildSpec("acc", Accumulator)]) as system:
        with pytest.raises(TypeError, match="does not accept Noted"):
            system.schedule(5, system.ref("acc", Add), Noted(who="x", value=1))
        assert system.dead_letters.counts["refused"] == 1


async def test_scheduled_messages_wait_for_room_in_a_full_mailbox_and_keep_their_order() -> None:
    gate = asyncio.Event()
    seen: list[int] = []
    clock = FakeClock(autojump=False)
    spec = ChildSpec("slow", lambda: Gate(gate, seen), mailbox_size=1)
    async with ActorSystem(QUIET, clock=clock, children=[spec]) as system:
        ref = system.ref("slow", Add)
        for n in range(3):
            system.schedule(5, ref, Add(n=n))
        clock.advance(5)
        for _ in range(20):
            await asyncio.sleep(0)
        assert seen == [] and system.snapshot().actors[0].mailbox_depth == 1
        gate.set()
        await system.settle()
        assert seen == [0, 1, 2]
        assert system.dead_letters.total == 0


async def test_snapshot_is_a_contract_model() -> None:
    async with ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator)]) as system:
        ref = system.ref("acc", Add)
        for n in range(10):
            await ref.tell(Add(n=n))
        await system.settle()
        snap = system.snapshot()
    assert isinstance(snap, SystemSnapshot)
    acc = next(a for a in snap.actors if a.name == "acc")
    assert acc.processed == 10 and acc.mailbox_depth == 0 and acc.mailbox_high_water >= 1
    assert SystemSnapshot.model_validate_json(snap.model_dump_json()) == snap


async def test_event_stream_delivers_by_type() -> None:
    from aicmo_actors.runtime import Actor

    received: list[int] = []

    class Listener(Actor[Noted]):
        subscribes = (Noted,)

        async def receive(self, message: Noted) -> None:
            received.append(message.value)

    async with ActorSystem(QUIET, children=[ChildSpec("listener", Listener)]) as system:
        seen: list[str] = []
        system.events.tap(lambda e: seen.append(type(e).__name__))
        await system.events.publish(Noted(who="a", value=1))
        await system.events.publish(Noted(who="b", value=2))
        await system.settle()
    assert received == [1, 2]
    assert seen == ["Noted", "Noted"]
