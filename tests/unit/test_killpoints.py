"""Kill points: where they are, that nothing happens without a hook, and that the
simulation's hook kills at the point its seed and the actor's own count name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from aicmo_actors.runtime import (
    Actor,
    ActorSystem,
    ChildSpec,
    FakeClock,
    RuntimeSettings,
    killpoints,
)
from aicmo_actors.simulation.faults import Kill, KillAnywhere, roll
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.work import run_read, run_write
from contracts.base import Message
from tests.unit.runtime_helpers import Accumulator, Add, Get, Noted

pytestmark = pytest.mark.anyio

QUIET = RuntimeSettings(tick_interval_s=0, seed=7, backoff_base_s=0)


class Burst(Message):
    n: int


class Teller(Actor[Burst]):
    """Tells `n` Adds to the accumulator, then publishes one event."""

    async def receive(self, message: Burst) -> None:
        sink = self.ctx.ref("acc", Add)
        for _ in range(message.n):
            await sink.tell(Add(n=1))
        await self.ctx.publish(Noted(who=self.ctx.name, value=message.n))


def first_kill(seed: int, life: int, actor: str, kind: str, probability: float) -> int:
    """The n of the first kill point of `kind` that `actor` dies at, by the hook's rule."""
    return next(n for n in range(1, 10_000) if roll(seed, "kill", life, actor, kind, n) < probability)


def test_no_hook_is_installed_by_default() -> None:
    assert killpoints.hook is None


async def test_without_a_hook_a_checkpoint_does_nothing(tmp_path: Path) -> None:
    await killpoints.checkpoint(killpoints.TELL)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    try:
        await run_write(engine, lambda conn: conn.execute(sa.text("create table t (x int)")))
        assert await run_read(engine, lambda conn: conn.execute(sa.text("select count(*) from t")).scalar()) == 0
    finally:
        await engine.dispose()
    async with ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator)]) as system:
        await system.ref("acc", Add).tell(Add(n=2))
        assert await system.ref("acc", Get).ask(Get()) == 2


async def test_installed_restores_what_was_there() -> None:
    seen: list[str] = []

    async def outer(kind: str) -> None:
        seen.append(f"outer {kind}")

    async def inner(kind: str) -> None:
        seen.append(f"inner {kind}")

    with killpoints.installed(outer):
        with killpoints.installed(inner):
            await killpoints.checkpoint("a")
        await killpoints.checkpoint("b")
    await killpoints.checkpoint("c")
    assert seen == ["inner a", "outer b"]
    assert killpoints.hook is None


async def test_units_of_work_are_kill_points_before_and_after(tmp_path: Path) -> None:
    seen: list[str] = []

    async def note(kind: str) -> None:
        seen.append(kind)

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    try:
        with killpoints.installed(note):
            await run_write(engine, lambda conn: conn.execute(sa.text("create table t (x int)")))
            assert seen == [killpoints.STORE, killpoints.COMMITTED]
            seen.clear()
            await run_read(engine, lambda conn: conn.execute(sa.text("select 1")).scalar())
            assert seen == [killpoints.STORE, killpoints.READ]
            seen.clear()
            with pytest.raises(sa.exc.OperationalError):
                await run_write(engine, lambda conn: conn.execute(sa.text("insert into missing values (1)")))
            assert seen == [killpoints.STORE]  # nothing committed: no "committed" point
            # The connection is given back before the "after" point: a unit of work run from
            # inside it (as a killed actor's neighbour would) does not wait for it.
            seen.clear()

            async def nested(kind: str) -> None:
                seen.append(kind)
                if kind == killpoints.COMMITTED:
                    with killpoints.installed(None):
                        await asyncio.wait_for(
                            run_read(engine, lambda conn: conn.execute(sa.text("select 1")).scalar()), 5
                        )

            with killpoints.installed(nested):
                await run_write(engine, lambda conn: conn.execute(sa.text("insert into t values (1)")))
            assert seen == [killpoints.STORE, killpoints.COMMITTED]
    finally:
        await engine.dispose()


async def test_tell_and_publish_are_kill_points() -> None:
    seen: list[str] = []

    async def note(kind: str) -> None:
        seen.append(kind)

    async with ActorSystem(QUIET, children=[ChildSpec("acc", Accumulator), ChildSpec("teller", Teller)]) as system:
        with killpoints.installed(note):
            await system.ref("teller", Burst).tell(Burst(n=2))
            await system.settle()
    # Ours, the teller's two, its publish (to no subscriber: no tell behind it).
    assert seen == [killpoints.TELL, killpoints.TELL, killpoints.TELL, killpoints.PUBLISH]


async def _idle_but_the_dead(system: ActorSystem, killed: list[Kill]) -> None:
    """Everyone still alive runs until idle; whoever died holds its work where it died."""
    for _ in range(1000):
        await asyncio.sleep(0)
        if system.activity.active <= len(killed):
            for _ in range(5):
                await asyncio.sleep(0)
            if system.activity.active <= len(killed):
                return
    raise AssertionError("the actors never went idle")


async def _run_with_kills(seed: int, probability: float, bursts: list[tuple[str, int]]) -> tuple[list[Kill], int]:
    """Run tellers under the simulation's hook; the kills and what reached the accumulator."""
    clock = FakeClock()
    killed: list[Kill] = []

    def on_kill(kill: Kill, holder: object) -> None:
        killed.append(kill)

    hook = KillAnywhere(seed, probability, clock, until=float("inf"), on_kill=on_kill, max_lives_killed=1)
    hook.new_life(1)
    children = [ChildSpec("acc", Accumulator), ChildSpec("t1", Teller), ChildSpec("t2", Teller)]
    system = ActorSystem(QUIET, clock=clock, children=children)
    await system.start()
    try:
        with killpoints.installed(hook):
            for name, n in bursts:
                await system.ref(name, Burst).tell(Burst(n=n))  # from outside an actor: never counted
            await _idle_but_the_dead(system, killed)
        total = await system.ref("acc", Get).ask(Get())
    finally:
        await system.kill()
    return killed, total


async def test_the_hook_kills_at_the_point_the_seed_and_the_actors_own_count_name() -> None:
    seed, p = 11, 0.05
    n = first_kill(seed, 1, "t1", killpoints.TELL, p)
    assert n > 1
    killed, total = await _run_with_kills(seed, p, [("t1", n + 5)])
    assert [(k.actor, k.kind, k.n, k.life) for k in killed] == [("t1", killpoints.TELL, n, 1)]
    assert total == n - 1  # the n-th tell never happened, nor anything after it


async def test_each_actor_counts_its_own_points_whatever_the_interleaving() -> None:
    seed, p = 11, 0.05
    n1 = first_kill(seed, 1, "t1", killpoints.TELL, p)
    n2 = first_kill(seed, 1, "t2", killpoints.TELL, p)
    one, _ = await _run_with_kills(seed, p, [("t1", n1 + 5), ("t2", n2 + 5)])
    other, _ = await _run_with_kills(seed, p, [("t2", n2 + 5), ("t1", n1 + 5)])
    where = {(k.actor, k.n) for k in one}
    assert where == {("t1", n1), ("t2", n2)}
    assert {(k.actor, k.n) for k in other} == where


async def test_no_kill_below_the_probability_and_none_after_the_end() -> None:
    killed, total = await _run_with_kills(3, 0.0, [("t1", 50)])
    assert killed == [] and total == 50
    clock = FakeClock()
    hook = KillAnywhere(3, 1.0, clock, until=0.0, on_kill=lambda k, h: None, max_lives_killed=1)
    hook.new_life(1)
    async with ActorSystem(
        QUIET, clock=clock, children=[ChildSpec("acc", Accumulator), ChildSpec("t1", Teller)]
    ) as system:
        with killpoints.installed(hook):
            await system.ref("t1", Burst).tell(Burst(n=3))
            await system.settle()
        assert await system.ref("acc", Get).ask(Get()) == 3
    assert hook.kills == []
