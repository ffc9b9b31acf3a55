"""Billing's hold on a client, as delivery applies it (both databases, fake clock): while a
client is on hold nothing is delivered to it (emails wait in the outbox, webhooks and folder
exports are not attempted), other clients are served as usual, and on release what waited
goes out at once. The orchestration policy translates billing's events into the commands."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.delivery import DeliveryStore
from aicmo_actors.delivery.tables import delivery_deliveries as deliveries_t
from aicmo_actors.delivery.tables import delivery_holds as holds_t
from aicmo_actors.orchestration.policies import hold_command, release_command
from contracts.billing import ClientOnHold, ClientReleased
from contracts.delivery import DeliveriesHeld, DeliveriesReleased, DeliveryKept, ItemDelivered
from tests.integration.delivery_world import CLIENT, MemoryTransport, deliver, running

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

OTHER = CLIENT.model_copy(update={"client_ref": uuid.UUID(int=77), "company": "Other Ltd"})


async def states(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        return {r.key: r.state for r in await conn.execute(sa.select(deliveries_t.c.key, deliveries_t.c.state))}


async def test_a_held_client_gets_nothing_until_released(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    async with running(store, transport=lambda: transport, folder=tmp_path) as run:
        hold = hold_command(
            ClientOnHold(client_ref=CLIENT.client_ref, reason="2027-0001 overdue 31 days", invoices=("2027-0001",))
        )
        await run.tell(hold)
        await run.tell(hold)  # repeated: one hold
        assert [e.waiting for e in run.of(DeliveriesHeld)] == [0, 0]

        email = deliver(run.system, "email", item=uuid.UUID(int=1))
        folder = deliver(run.system, "folder", item=uuid.UUID(int=2))
        other = deliver(run.system, "folder", item=uuid.UUID(int=3), client=OTHER)
        for message in (email, folder, other):
            await run.tell(message)
        # The held ones are kept, and said so (production then stops asking), again when asked again.
        await run.tell(email)
        kept = [(e.item_id.int, e.method, e.state) for e in run.of(DeliveryKept)]
        assert kept == [(1, "email", "queued"), (2, "folder", "queued"), (1, "email", "queued")]
        for _ in range(3):
            await run.tick()
        assert transport.sent == []
        assert await states(engine) == {
            email.idempotency_key: "queued",
            folder.idempotency_key: "queued",
            other.idempotency_key: "delivered",
        }
        assert [e.item_id for e in run.of(ItemDelivered)] == [uuid.UUID(int=3)]

        await run.tell(release_command(ClientReleased(client_ref=CLIENT.client_ref, reason="paid")))
        assert [e.waiting for e in run.of(DeliveriesReleased)] == [2]  # what waited, now sent
        assert len(transport.sent) == 1
        assert set((await states(engine)).values()) == {"delivered"}
        await run.tell(release_command(ClientReleased(client_ref=CLIENT.client_ref)))  # repeated: nothing more
        assert len(transport.sent) == 1
        # Held again at the same instant: the new hold says what was delivered before it (the
        # email and the folder export of this client; not the other client's).
        await run.tell(hold)

    async with engine.connect() as conn:
        first, again = (await conn.execute(sa.select(holds_t).order_by(holds_t.c.id))).mappings().all()
    assert first["client_ref"] == str(CLIENT.client_ref) and first["released_at"] is not None
    assert first["reason"] == "2027-0001 overdue 31 days"
    assert (first["delivered_before"], again["delivered_before"]) == (0, 2)
    assert again["released_at"] is None
