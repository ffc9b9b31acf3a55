"""Seeded faults the simulation injects below the actors: inbox disconnects and database
errors on commit. (SMTP faults live in the world's sink, process kills in `run.py`.)

Each decision is a pure function of the seed and of what is being done (which actor, its
how-many-th commit; the inbox's how-many-th call), never of wall time or task order, so
the same seed injects the same faults and the run replays.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.gateways.inbox_source import FetchedMessage, InboxSource, InboxUnavailable
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
    """An inbox source whose connection drops now and then (seeded), like a flaky IMAP server."""

    def __init__(self, inner: InboxSource, seed: int, probability: float) -> None:
        self.inner = inner
        self.seed = seed
        self.probability = probability
        self.name = inner.name
        self.calls = 0
        self.drops = 0

    @property
    def supports_idle(self) -> bool:
        return False

    def _maybe_drop(self, what: str) -> None:
        self.calls += 1
        if roll(self.seed, "inbox", self.name, self.calls) < self.probability:
            self.drops += 1
            raise InboxUnavailable(f"simulated disconnect during {what}")

    async def open(self) -> int:
        self._maybe_drop("open")
        return await self.inner.open()

    async def fetch_after(self, last_uid: int, batch: int) -> list[FetchedMessage]:
        try:
            self._maybe_drop("fetch")
        except InboxUnavailable:
            await self.inner.close()
            raise
        return await self.inner.fetch_after(last_uid, batch)

    async def wait_for_new(self, timeout: float) -> bool:
        return False

    async def close(self) -> None:
        await self.inner.close()
