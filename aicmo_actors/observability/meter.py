"""`observability.meter`: usage from the modules' events, kept in batches.

Events a module declares countable are turned into usage records as they are published (a
tap on the event stream: no mailbox hop, no database work per event) and buffered; each
tick writes the buffer in one transaction, and so does the meter's stop. A crash loses the
buffer, never a count: at start the meter reads each module's acts back from its tables
(`backfill`), and every record's key makes the second count of an act a no-op.

API calls are counted in memory by route and written the same way, keyed by this process
and the flush: a kill loses at most the calls since the last tick (said in docs/control.md).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from aicmo_actors.observability.usage import UsageRepo
from aicmo_actors.runtime import Actor
from contracts.base import Event
from contracts.observability import UsageFlushed, UsageRecord
from contracts.runtime import Tick

METER = "observability.meter"


@dataclass(frozen=True)
class UsageSource:
    """What one module counts: its events and how to read its acts back from its tables."""

    module: str
    events: tuple[type[Event], ...]
    of_event: Callable[[Event], Iterable[UsageRecord]]
    since: Callable[[Connection, datetime | None], Iterable[UsageRecord]]


class UsageBuffer:
    """Records waiting for the next flush, shared by the tap and the actor (and the API)."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []
        #: API calls by user (a call's subject is who made it).
        self.api_calls: Counter[str] = Counter()
        self.enabled = True

    def add(self, records: Iterable[UsageRecord]) -> None:
        if self.enabled:
            self.records.extend(records)

    def api_call(self, user: str) -> None:
        if self.enabled:
            self.api_calls[user] += 1

    def take(self, now: datetime, boot: str, flush: int) -> list[UsageRecord]:
        taken, self.records = self.records, []
        for n, (user, count) in enumerate(sorted(self.api_calls.items())):
            taken.append(UsageRecord(f"api.call:{boot}:{flush}:{n}", "api", "api_call", user, count, now))
        self.api_calls.clear()
        return taken


class Meter(Actor[Tick]):
    """Buffers usage from the event stream and writes it each tick."""

    subscribes = (Tick,)

    def __init__(self, repo: UsageRepo, sources: Iterable[UsageSource], buffer: UsageBuffer) -> None:
        self.repo = repo
        self.sources = tuple(sources)
        self.buffer = buffer
        self._untap: Callable[[], None] | None = None
        self._flushes = 0
        self._boot = ""

    async def on_start(self) -> None:
        self._boot = uuid.UUID(int=self.ctx.random.getrandbits(128), version=4).hex[:12]
        by_type: dict[type[Event], list[Callable[[Event], Iterable[UsageRecord]]]] = {}
        for source in self.sources:
            for event_type in source.events:
                by_type.setdefault(event_type, []).append(source.of_event)
        buffer = self.buffer

        def tap(event: Event) -> None:
            for of_event in by_type.get(type(event), ()):
                buffer.add(of_event(event))

        self._untap = self.ctx.system.events.tap(tap)
        for source in self.sources:
            new = await self.repo.backfill(source.module, source.since)
            if new:
                self.ctx.log.info("usage counted from the tables at start", module=source.module, records=new)

    async def on_stop(self) -> None:
        if self._untap is not None:
            self._untap()
            self._untap = None
        await self.flush()

    async def receive(self, message: Tick) -> None:
        taken = len(self.buffer.records) + len(self.buffer.api_calls)
        new = await self.flush()
        if taken:
            await self.ctx.publish(UsageFlushed(records=taken, new=new))

    async def flush(self) -> int:
        self._flushes += 1
        records = self.buffer.take(self.ctx.clock.now(), self._boot, self._flushes)
        if not records:
            return 0
        try:
            return await self.repo.record(records)
        except BaseException:
            # Not lost: put back for the next flush (the keys make a partial write harmless).
            self.buffer.records[:0] = records
            raise
