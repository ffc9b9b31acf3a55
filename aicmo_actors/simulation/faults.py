"""Seeded faults the simulation injects below the actors: inbox disconnects, database
errors on commit, and the whole process killed at any kill point. (SMTP faults live in the
world's sink; the kills themselves, and a new process on the same database, in `run.py`.)

Each decision is a pure function of the seed and of what is being done (which actor, its
how-many-th commit or kill point; the inbox's how-many-th call), never of wall time or task
order, so the same seed injects the same faults and the run replays.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.gateways.inbox_source import FetchedMessage, InboxSource, InboxUnavailable
from aicmo_actors.runtime import FakeClock, killpoints
from aicmo_actors.runtime.activity import current_holder


def roll(seed: int, *key: object) -> float:
    """A number in [0, 1) drawn from the seed and `key` alone."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class SimulatedDatabaseError(OperationalError):
    """A commit the simulation made fail (as a full disk or a lost server would)."""


class CommitFaults:
    """Makes a seeded share of commits fail, per actor: the actor sees an OperationalError
    from its transaction (rolled back, nothing of it written) and its supervisor decides."""

    def __init__(self, engine: AsyncEngine, seed: int, probability: float) -> None:
        self.seed = seed
        self.probability = probability
        self.database = engine.url.database
        self.counts: Counter[str] = Counter()
        self.failed = 0
        # Every engine on this database file: the store's units of work commit through an
        # engine of their own over the same SQLite connection (aicmo_actors.storage.work).
        event.listen(Engine, "commit", self._on_commit)

    def remove(self) -> None:
        """Stop injecting (the simulated process this belonged to is gone); idempotent."""
        if event.contains(Engine, "commit", self._on_commit):
            event.remove(Engine, "commit", self._on_commit)

    def _on_commit(self, conn: Connection) -> None:
        if conn.engine.url.database != self.database:
            return
        holder = current_holder.get()
        who = getattr(holder, "name", None)
        if who is None:  # set-up and checks outside the actors: never faulted
            return
        self.counts[who] += 1
        if roll(self.seed, "commit", who, self.counts[who]) < self.probability:
            self.failed += 1
            raise SimulatedDatabaseError("COMMIT", None, RuntimeError(f"simulated commit failure in {who}"))


class FaultyInbox:
    """An inbox source whose connection drops now and then (seeded), like a flaky IMAP server;
    each fetch is a kill point."""

    def __init__(self, inner: InboxSource, seed: int, probability: float) -> None:
        self.inner = inner
        self.seed = seed
        self.probability = probability
        self.name = inner.name
        self.calls = 0
        self.drops = 0
        self.supports_idle = False

    def _maybe_drop(self, what: str) -> None:
        self.calls += 1
        if roll(self.seed, "inbox", self.name, self.calls) < self.probability:
            self.drops += 1
            raise InboxUnavailable(f"simulated disconnect during {what}")

    async def open(self) -> int:
        self._maybe_drop("open")
        return await self.inner.open()

    async def fetch_after(self, last_uid: int, batch: int, max_bytes: int | None = None) -> list[FetchedMessage]:
        if killpoints.hook is not None:
            await killpoints.checkpoint(killpoints.FETCH)
        try:
            self._maybe_drop("fetch")
        except InboxUnavailable:
            await self.inner.close()
            raise
        return await self.inner.fetch_after(last_uid, batch, max_bytes)

    async def wait_for_new(self, timeout: float) -> bool:
        return False

    async def close(self) -> None:
        await self.inner.close()


@dataclass(frozen=True)
class Kill:
    """Where the process was killed: an actor's n-th kill point of a kind, in one life."""

    life: int
    at: float  # clock.monotonic()
    when: datetime  # clock.now()
    actor: str
    kind: str
    n: int
    starting: bool = False  # in the actor's on_start

    def __str__(self) -> str:
        where = " (in on_start)" if self.starting else ""
        return f"life {self.life}, t={self.at:.3f}s: {self.actor} at its {self.kind} kill point #{self.n}{where}"


class KillAnywhere:
    """The kill-point hook (`aicmo_actors.runtime.killpoints`): kills the whole process at
    a seeded share of the places where actors await.

    The decision is `roll(seed, "kill", life, actor, kind, n) < probability`, n being that
    actor's own count of kill points of that kind in this life: each actor's sequence of
    awaits is its own, whatever the interleaving of tasks (aiosqlite's thread hand-offs make
    the global order vary from run to run). Only an actor's own task, holding its unit of
    activity, is killed (not the runtime's delivery tasks, which borrow an actor's context):
    so the fake clock stands still from the kill on.

    A kill calls `on_kill` and never returns: the task waits until `run.py` kills the
    system, so nothing after the kill point happens.
    """

    def __init__(
        self,
        seed: int,
        probability: float,
        clock: FakeClock,
        *,
        until: float,
        on_kill: Callable[[Kill, object], None],
        max_lives_killed: int,
    ) -> None:
        self.seed = seed
        self.probability = probability
        self.clock = clock
        self.until = until
        self.on_kill = on_kill
        self.max_lives_killed = max_lives_killed
        self.life = 0
        self.armed = True
        self.lives_killed = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.kills: list[Kill] = []

    def new_life(self, life: int) -> None:
        """A new process: counts start again, and kills are allowed while the cap is not reached."""
        if any(k.life == self.life for k in self.kills):
            self.lives_killed += 1
        self.life = life
        self.counts.clear()
        self.armed = self.lives_killed < self.max_lives_killed

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(k.kind for k in self.kills).items()))

    async def __call__(self, kind: str) -> None:
        holder = current_holder.get()
        who = getattr(holder, "name", None)
        if who is None or holder is None or not holder.holding:
            return  # set-up, checks, supervisors: not an actor at work
        task = asyncio.current_task()
        if task is None or task.get_name() != f"actor:{who}":
            return  # a runtime task in an actor's context (a delayed tell), not the actor
        if not self.armed or self.clock.monotonic() >= self.until:
            return
        key = (who, kind)
        self.counts[key] += 1
        n = self.counts[key]
        if roll(self.seed, "kill", self.life, who, kind, n) >= self.probability:
            return
        starting = getattr(holder, "status", None) == "starting"
        kill = Kill(self.life, self.clock.monotonic(), self.clock.now(), who, kind, n, starting)
        self.kills.append(kill)
        self.on_kill(kill, holder)
        await asyncio.Event().wait()  # never set: the system is killed around us
