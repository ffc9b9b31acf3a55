"""The courier killed at every kill point of its life (each unit of work starting and committed,
each publish and tell, each email handed over), then started again and asked again, as
production asks: an email is delivered at most once (a send a kill interrupted is
unconfirmed, never repeated), a webhook and a folder export exactly once (the receiver
de-duplicates by Idempotency-Key; the export rewrites the same files under one manifest entry).
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.delivery import COURIER, DeliveryStore
from aicmo_actors.delivery.tables import delivery_deliveries as deliveries_t
from aicmo_actors.runtime import FakeClock, killpoints
from contracts.cam import AlertRequested
from contracts.delivery import DeliverItem
from contracts.runtime import Tick
from tests.integration.actor_kills import KillAt
from tests.integration.delivery_world import CLIENT, START, MemoryTransport, Receiver, build_system, deliver, receiving

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def _life(
    engine: AsyncEngine, n: int, *, life: int, transport: MemoryTransport, receiver: Receiver, folder: Path
) -> bool:
    """One life: started, told the three deliveries, two ticks; killed at its n-th kill point
    (True) or run to the end (False)."""
    kill = KillAt(n)
    clock = FakeClock(START + timedelta(hours=life), autojump=False)
    alerts: list[AlertRequested] = []
    system = build_system(DeliveryStore(engine), clock, transport=lambda: transport, folder=folder, alerts=alerts)
    client = CLIENT.model_copy(update={"webhook_url": receiver.url})
    with killpoints.installed(kill.hook):
        await kill.until(system.start())
        messages = [deliver(system, method, client=client) for method in ("email", "webhook", "folder")]
        for message in messages:
            if kill.reached.is_set():
                break
            await kill.until(system.ref(COURIER, DeliverItem).tell(message))
            await kill.until(system.settle())
        for seq in (1, 2):
            if kill.reached.is_set():
                break
            clock.advance(3600)
            tick = system.message(Tick, seq=seq, at=clock.now(), interval_s=3600.0)
            await kill.until(system.events.publish(tick))
            await kill.until(system.settle())
        if kill.reached.is_set():
            await kill.kill(system)
            return True
    await system.stop()
    return False


async def test_killed_anywhere_each_delivery_is_made_at_most_once_email_exactly_once_the_others(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    if engine.url.get_backend_name() != "sqlite":
        pytest.skip("every kill point once is enough on one backend; the repositories run on both elsewhere")
    n = 0
    async with receiving() as receiver:
        while True:
            n += 1
            async with engine.begin() as conn:  # a fresh start per kill point
                for table in ("delivery_deliveries", "delivery_emails", "delivery_cancels"):
                    await conn.exec_driver_sql(f"DELETE FROM {table}")
            receiver.hits.clear()
            receiver.processed.clear()
            receiver.duplicates = 0
            folder = tmp_path / f"out{n}"
            transport = MemoryTransport()
            killed = await _life(engine, n, life=0, transport=transport, receiver=receiver, folder=folder)
            if killed:
                assert not await _life(engine, 10**9, life=1, transport=transport, receiver=receiver, folder=folder)
            async with engine.connect() as conn:
                states = {
                    r.method: r.state
                    for r in await conn.execute(sa.select(deliveries_t.c.method, deliveries_t.c.state))
                }
            # Email: at most once; delivered, or unconfirmed (a person is told) when a kill hit its send.
            # (Unconfirmed whether or not it arrived: a kill between the hand-over and its record.)
            assert len(transport.sent) <= 1, n
            assert states["email"] in ("delivered", "unconfirmed"), (n, states)
            assert states["email"] == "unconfirmed" or len(transport.sent) == 1, (n, states)
            # Webhook: exactly once, as the receiver sees it; every attempt with the same key.
            assert states["webhook"] == "delivered", (n, states)
            assert len(receiver.processed) == 1 and len(set(receiver.keys)) == 1, n
            assert receiver.valid_signatures(), n
            # Folder: exactly once: one manifest entry, one set of files.
            assert states["folder"] == "delivered", (n, states)
            client_folder = folder / "acme-logistics-11111111"
            manifest = json.loads((client_folder / "manifest.json").read_text())
            assert len(manifest["deliveries"]) == 1, n
            assert len([p for p in client_folder.iterdir() if not p.name.startswith(".")]) == 5, n
            shutil.rmtree(folder)
            if not killed:
                break
    assert n > 20  # the life has that many kill points: each was hit once
