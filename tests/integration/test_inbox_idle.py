"""`cam.inbox` against a real Dovecot: pushed mail (IDLE) is fetched without waiting for a tick.

No clock actor runs (tick_interval_s=0), so nothing but the server's push can make the
inbox poll again after its first poll. Waits are on events with generous deadlines; no
assertion is about how long anything took.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.inbox import Inbox
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.gateways.imap import ImapSource
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, RuntimeSettings
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from contracts.cam import PollInbox, ReplyReceived
from tests.plugins.imap import DovecotServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

#: Far above what any of this takes, far below the test timeout.
DEADLINE = 20.0


def reply(n: int) -> bytes:
    return (
        f"From: Prospect {n} <prospect{n}@client.example>\r\n"
        f"To: alex@outreach.example.com\r\n"
        f"Subject: Re: quick question {n}\r\n"
        f"Message-ID: <idle-{n}@client.example>\r\n"
        f"\r\nTell me more.\r\n"
    ).encode()


class Recorder(Actor[ReplyReceived]):
    """Stands in for cam.classifier: notes every stored message it is told about."""

    def __init__(self, seen: list[int], changed: asyncio.Event) -> None:
        self.seen = seen
        self.changed = changed

    async def receive(self, message: ReplyReceived) -> None:
        self.seen.append(message.inbound_id)
        self.changed.set()


async def eventually(predicate: Callable[[], bool], changed: asyncio.Event | None = None) -> None:
    """Wait until `predicate()` holds, failing after DEADLINE seconds."""
    async with asyncio.timeout(DEADLINE):
        while not predicate():
            if changed is not None:
                changed.clear()
                if predicate():
                    return
                try:
                    await asyncio.wait_for(changed.wait(), 0.5)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0.02)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path}/inbox.db"
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


class Harness:
    def __init__(self, server: DovecotServer, engine: AsyncEngine) -> None:
        self.server = server
        self.store = CamStore(engine)
        self.engine = engine
        self.sources: list[ImapSource] = []
        self.seen: list[int] = []
        self.changed = asyncio.Event()
        self.polls = 0

    def make_source(self) -> ImapSource:
        user = self.server.user("test")
        source = ImapSource(self.server.host, self.server.port, user.username, user.password, tls="none", timeout=10)
        self.sources.append(source)
        return source

    def children(self, **inbox_options: Any) -> list[ChildSpec]:
        options: dict[str, Any] = {"backoff_base_s": 0.05, "backoff_max_s": 0.5}
        options.update(inbox_options)
        return [
            ChildSpec("cam.classifier", lambda: Recorder(self.seen, self.changed)),
            ChildSpec(
                "cam.inbox",
                lambda: Inbox(self.store, {"test": self.make_source}, **options),
                intake=True,
            ),
        ]

    def idling(self) -> bool:
        """The watcher's connection (the second one made) has an IDLE the server accepted."""
        if len(self.sources) < 2:
            return False
        client = self.sources[-1]._client
        return client is not None and client.protocol._idle_event.is_set()

    async def stored(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(inbound_t.c.message_id).order_by(inbound_t.c.id))
            return [r[0] for r in rows]


def idle_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("idle:")]


async def test_pushed_mail_is_stored_without_a_tick(imap_server: DovecotServer, engine: AsyncEngine) -> None:
    h = Harness(imap_server, engine)
    await imap_server.append(reply(1))
    async with ActorSystem(RuntimeSettings(tick_interval_s=0, seed=1), children=h.children()) as system:
        await system.ref("cam.inbox", PollInbox).tell(system.message(PollInbox, inbox="test"))
        await eventually(lambda: len(h.seen) == 1, h.changed)
        await eventually(h.idling)
        # Mail arriving now: nothing ticks, so only the server's push can fetch it.
        await imap_server.append(reply(2))
        await eventually(lambda: len(h.seen) == 2, h.changed)
        await imap_server.append(reply(3), reply(4))
        await eventually(lambda: len(h.seen) == 4, h.changed)
        assert len(idle_tasks()) == 1
        # The mailbox was never blocked by the wait: a poll asked for meanwhile is answered.
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="test"), timeout=DEADLINE)
    assert await h.stored() == [f"<idle-{n}@client.example>" for n in (1, 2, 3, 4)]
    assert len(set(h.seen)) == 4
    # Leaving the system cancelled the watcher and closed both connections.
    assert idle_tasks() == []
    assert all(source._client is None for source in h.sources)


async def test_the_watcher_reconnects_after_the_server_drops_it(
    imap_server: DovecotServer, engine: AsyncEngine
) -> None:
    h = Harness(imap_server, engine)
    async with ActorSystem(RuntimeSettings(tick_interval_s=0, seed=2), children=h.children()) as system:
        await system.ref("cam.inbox", PollInbox).ask(system.message(PollInbox, inbox="test"), timeout=DEADLINE)
        await eventually(h.idling)
        before = len(h.sources)
        await imap_server.akick("test")  # drops the fetch and the IDLE connection
        await eventually(lambda: len(h.sources) > before and h.idling())
        await imap_server.append(reply(5))
        await eventually(lambda: len(h.seen) == 1, h.changed)
    assert await h.stored() == ["<idle-5@client.example>"]
    assert idle_tasks() == []


async def test_without_idle_only_polls_fetch(imap_server: DovecotServer, engine: AsyncEngine) -> None:
    h = Harness(imap_server, engine)
    async with ActorSystem(RuntimeSettings(tick_interval_s=0, seed=3), children=h.children(idle=False)) as system:
        inbox = system.ref("cam.inbox", PollInbox)
        await inbox.ask(system.message(PollInbox, inbox="test"), timeout=DEADLINE)
        assert idle_tasks() == [] and len(h.sources) == 1
        await imap_server.append(reply(6))
        await inbox.ask(system.message(PollInbox, inbox="test"), timeout=DEADLINE)
        await eventually(lambda: len(h.seen) == 1, h.changed)
    assert await h.stored() == ["<idle-6@client.example>"]
