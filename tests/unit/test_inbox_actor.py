"""`cam.inbox` with in-memory sources and store: polling, IDLE watchers, their lifetimes.

The sources here are fakes of the `InboxSource` port; the real IMAP and Maildir adapters
have tests of their own (tests/integration/test_imap_gateway.py, test_inbox_idle.py,
tests/unit/test_maildir_inbox.py). Waits use events with generous deadlines, never
assertions on durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from aicmo_actors.cam.inbox import Inbox
from aicmo_actors.gateways.inbox_source import FetchedMessage, InboxUnavailable
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings
from contracts.cam import PollInbox, ReplyReceived

pytestmark = pytest.mark.anyio

DEADLINE = 10.0


class Folder:
    """The server side: messages by UID, and a way to push "new mail" to waiting watchers."""

    def __init__(self, *, idle: bool) -> None:
        self.idle = idle
        self.messages: list[FetchedMessage] = []
        self.pushes: asyncio.Queue[bool | BaseException] = asyncio.Queue()
        self.sources: list[FakeSource] = []
        self.fetches = 0
        #: How many times a watcher entered wait_for_new, and an event set on each entry.
        self.waits = 0
        self.waiting = asyncio.Event()

    def deliver(self, count: int = 1) -> None:
        for _ in range(count):
            uid = len(self.messages) + 1
            raw = f"Message-ID: <m{uid}@example.com>\r\nSubject: {uid}\r\n\r\nhi\r\n".encode()
            self.messages.append(FetchedMessage(uid=uid, uidvalidity=7, raw=raw, internal_date=None))

    def make(self) -> FakeSource:
        source = FakeSource(self)
        self.sources.append(source)
        return source


class FakeSource:
    def __init__(self, folder: Folder) -> None:
        self.folder = folder
        self.name = "fake"
        self.supports_idle = False
        self.opened = False
        self.closed = False
        self.waits = 0
        self.cancelled_in_wait = False

    async def open(self) -> int:
        self.opened = True
        self.supports_idle = self.folder.idle
        return 7

    async def fetch_after(self, last_uid: int, batch: int, max_bytes: int | None = None) -> list[FetchedMessage]:
        self.folder.fetches += 1
        return [m for m in self.folder.messages if m.uid > last_uid][:batch]

    async def wait_for_new(self, timeout: float) -> bool:
        if not self.supports_idle:
            return False
        self.waits += 1
        self.folder.waits += 1
        self.folder.waiting.set()
        try:
            pushed = await self.folder.pushes.get()
        except asyncio.CancelledError:
            self.cancelled_in_wait = True
            raise
        if isinstance(pushed, BaseException):
            raise pushed
        return pushed

    async def close(self) -> None:
        self.closed = True


class MemoryInbound:
    """The part of the inbound repository the inbox actor uses."""

    def __init__(self) -> None:
        self.at: tuple[int, int] | None = None
        self.rows: list[tuple[str, int]] = []
        self.waiting: list[tuple[int, str]] = []

    async def cursor(self, inbox: str) -> tuple[int, int] | None:
        return self.at

    async def store(self, inbox: str, uidvalidity: int, batch: Sequence[FetchedMessage], now: datetime) -> list[int]:
        new: list[int] = []
        for m in batch:
            self.rows.append((inbox, m.uid))
            new.append(len(self.rows))
        self.at = (uidvalidity, max(m.uid for m in batch))
        return new

    async def unclassified(self) -> list[tuple[int, str]]:
        return self.waiting


class MemoryMetrics:
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    async def save_cycle_report(self, **report: Any) -> None:
        self.reports.append(report)


class MemoryStore:
    """The part of CamStore the inbox actor uses."""

    def __init__(self) -> None:
        self.inbound = MemoryInbound()
        self.metrics = MemoryMetrics()

    @property
    def cursor(self) -> tuple[int, int] | None:
        return self.inbound.at

    @cursor.setter
    def cursor(self, value: tuple[int, int] | None) -> None:
        self.inbound.at = value

    @property
    def rows(self) -> list[tuple[str, int]]:
        return self.inbound.rows

    @property
    def unclassified(self) -> list[tuple[int, str]]:
        return self.inbound.waiting

    @unclassified.setter
    def unclassified(self, value: list[tuple[int, str]]) -> None:
        self.inbound.waiting = value

    @property
    def reports(self) -> list[dict[str, Any]]:
        return self.metrics.reports


class Recorder(Actor[ReplyReceived]):
    def __init__(self, seen: list[int], changed: asyncio.Event) -> None:
        self.seen = seen
        self.changed = changed

    async def receive(self, message: ReplyReceived) -> None:
        self.seen.append(message.inbound_id)
        self.changed.set()


class Harness:
    def __init__(self, *, idle: bool, **options: Any) -> None:
        self.folder = Folder(idle=idle)
        self.store = MemoryStore()
        self.seen: list[int] = []
        self.changed = asyncio.Event()
        self.options = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, **options}

    def children(self) -> list[ChildSpec]:
        return [
            ChildSpec("cam.classifier", lambda: Recorder(self.seen, self.changed)),
            ChildSpec(
                "cam.inbox",
                lambda: Inbox(self.store, {"fake": self.folder.make}, **self.options),  # type: ignore[arg-type]
                intake=True,
            ),
        ]

    async def until_seen(self, count: int) -> None:
        async with asyncio.timeout(DEADLINE):
            while len(self.seen) < count:
                self.changed.clear()
                await self.changed.wait()

    async def until_waits(self, count: int) -> None:
        """Until watchers have entered wait_for_new `count` times in all."""
        async with asyncio.timeout(DEADLINE):
            while self.folder.waits < count:
                self.folder.waiting.clear()
                await self.folder.waiting.wait()


def idle_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("idle:")]


def quiet(**kwargs: Any) -> RuntimeSettings:
    return RuntimeSettings(**{"tick_interval_s": 0, "seed": 1, **kwargs})


async def test_without_idle_the_inbox_polls_on_ticks_only() -> None:
    h = Harness(idle=False)
    clock = FakeClock(autojump=False)
    async with ActorSystem(quiet(tick_interval_s=60), clock=clock, children=h.children()) as system:
        h.folder.deliver(2)
        clock.advance(60)
        await system.settle()
        assert h.seen == [1, 2]
        h.folder.deliver()
        await system.settle()
        assert h.seen == [1, 2]  # nothing pushes: it waits for the next tick
        assert idle_tasks() == []
        clock.advance(60)
        await system.settle()
        assert h.seen == [1, 2, 3]
        assert [r["counts"]["stored"] for r in h.store.reports] == [2, 1]
    assert len(h.folder.sources) == 1  # one connection, no watcher


async def test_pushed_mail_is_fetched_without_a_tick() -> None:
    h = Harness(idle=True)
    async with ActorSystem(quiet(), children=h.children()) as system:
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="fake"))
        await h.until_waits(1)
        assert len(h.folder.sources) == 2  # fetching and watching: two connections
        watch = h.folder.sources[1]
        h.folder.deliver()
        await h.folder.pushes.put(True)
        await h.until_seen(1)
        await h.until_waits(2)
        await system.settle()
        # An IDLE that ends with nothing new (its timeout) polls nothing and waits again.
        fetches = h.folder.fetches
        await h.folder.pushes.put(False)
        await h.until_waits(3)
        await system.settle()
        assert h.folder.fetches == fetches
        h.folder.deliver(2)
        await h.folder.pushes.put(True)
        await h.until_seen(3)
        assert h.seen == [1, 2, 3]
        assert len(idle_tasks()) == 1
    # Stopping the system cancelled the watcher in its wait and closed both connections.
    assert idle_tasks() == []
    assert watch.cancelled_in_wait
    assert all(s.closed for s in h.folder.sources)
    assert h.store.reports == []  # no tick ran


async def test_the_watcher_reconnects_after_the_server_drops_it() -> None:
    h = Harness(idle=True)
    async with ActorSystem(quiet(), children=h.children()) as system:
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="fake"))
        await h.until_waits(1)
        first_watch = h.folder.sources[1]
        await h.folder.pushes.put(InboxUnavailable("dropped"))
        await h.until_waits(2)
        assert len(h.folder.sources) == 3 and first_watch.closed
        h.folder.deliver()
        await h.folder.pushes.put(True)
        await h.until_seen(1)


async def test_a_bug_in_the_watcher_crashes_the_actor_and_the_restart_brings_a_new_one() -> None:
    h = Harness(idle=True)
    async with ActorSystem(quiet(), children=h.children()) as system:
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="fake"))
        await h.until_waits(1)
        await h.folder.pushes.put(RuntimeError("a bug"))
        async with asyncio.timeout(DEADLINE):
            while {a.name: a for a in system.snapshot().actors}["cam.inbox"].restarts < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        # The new incarnation watches again once its fetch connection has found IDLE.
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="fake"))
        await h.until_waits(2)
        assert len(idle_tasks()) == 1
        h.folder.deliver()
        await h.folder.pushes.put(True)
        await h.until_seen(1)
    assert idle_tasks() == []


async def test_idle_can_be_turned_off() -> None:
    h = Harness(idle=True)
    h.options["idle"] = False
    async with ActorSystem(quiet(), children=h.children()) as system:
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="fake"))
        assert idle_tasks() == [] and len(h.folder.sources) == 1


async def test_a_poll_that_reaches_its_cap_goes_on_in_a_poll_of_its_own() -> None:
    h = Harness(idle=False, batch=40, max_per_poll=100)
    clock = FakeClock(autojump=False)
    async with ActorSystem(quiet(), clock=clock, children=h.children()) as system:
        h.folder.deliver(250)
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="fake"))
        assert len(h.seen) == 120  # three full batches, then the poll yields its turn
        clock.advance(0)
        await system.settle()
        clock.advance(0)
        await system.settle()
        assert h.seen == list(range(1, 251))
        assert h.store.cursor == (7, 250)
