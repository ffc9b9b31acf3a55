"""The CAM tables' guarantees on both backends: idempotency by unique keys, checks, indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aicmo_actors.cam import tables
from aicmo_actors.storage.insert import insert_ignore, insert_ignore_returning

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

NOW = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
campaigns = tables.cam_campaigns
leads = tables.cam_leads
outbound = tables.cam_outbound_emails
inbound = tables.cam_inbound_emails
alerts = tables.cam_alerts
suppressions = tables.cam_suppressions


async def _campaign_with_leads(conn: AsyncConnection, n: int) -> tuple[int, list[int]]:
    campaign_id = (
        await conn.execute(
            insert(campaigns)
            .values(name="spring", spec={"steps": 2}, spec_hash="h", created_at=NOW, updated_at=NOW)
            .returning(campaigns.c.id)
        )
    ).scalar_one()
    rows = [
        {
            "campaign_id": campaign_id,
            "email": f"p{i}@example.com",
            "email_domain": "example.com",
            "next_action_at": NOW + timedelta(minutes=i),
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i in range(n)
    ]
    lead_ids = [row.id for row in await insert_ignore_returning(conn, leads, rows)]
    return campaign_id, sorted(lead_ids)


def _outbound_row(campaign_id: int, lead_id: int, step: int) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "campaign_id": campaign_id,
        "step": step,
        "mailbox": "me@agency.test",
        "recipient": f"lead{lead_id}@example.com",
        "subject": "hello",
        "message_id": f"<{lead_id}.{step}@agency.test>",
        "idempotency_key": f"spring:{lead_id}:{step}",
        "queued_at": NOW,
    }


async def test_one_outbound_row_per_lead_and_step(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        campaign_id, lead_ids = await _campaign_with_leads(conn, 3)
        rows = [_outbound_row(campaign_id, lead_id, 1) for lead_id in lead_ids]
        assert await insert_ignore(conn, outbound, rows) == 3
        # A replayed tick queues the same rows again: nothing new.
        assert await insert_ignore(conn, outbound, rows) == 0
        more = [*rows, _outbound_row(campaign_id, lead_ids[0], 2)]
        new = await insert_ignore_returning(conn, outbound, more, [outbound.c.lead_id, outbound.c.step])
        assert [tuple(row) for row in new] == [(lead_ids[0], 2)]
        stored = (await conn.execute(select(outbound.c.status, outbound.c.attempts))).all()
    assert set(stored) == {("QUEUED", 0)}
    assert len(stored) == 4


@pytest.mark.parametrize("duplicate", ["lead and step", "message id", "idempotency key"])
async def test_unique_keys_hold_in_the_database(engine: AsyncEngine, duplicate: str) -> None:
    async with engine.begin() as conn:
        campaign_id, (a, b) = await _campaign_with_leads(conn, 2)
        await conn.execute(insert(outbound).values(**_outbound_row(campaign_id, a, 1)))
    row = {
        "lead and step": {
            **_outbound_row(campaign_id, a, 1),
            "message_id": "<x>",
            "idempotency_key": "x",
        },
        "message id": {**_outbound_row(campaign_id, b, 1), "message_id": f"<{a}.1@agency.test>"},
        "idempotency key": {**_outbound_row(campaign_id, b, 1), "idempotency_key": f"spring:{a}:1"},
    }[duplicate]
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(outbound).values(**row))


async def test_inbound_alert_and_suppression_are_idempotent(engine: AsyncEngine) -> None:
    message = {
        "mailbox": "INBOX",
        "uidvalidity": 2**32 - 1,
        "uid": 7,
        "raw": b"From: a@example.com\r\n\r\nhi\xff",
        "stored_at": NOW,
        "classification": {"category": "interested", "reasons": ["said yes"]},
    }
    alert = {"idempotency_key": "reply:1", "kind": "reply", "payload": {"a": 1}, "created_at": NOW}
    suppression = {
        "address": "gone@example.com",
        "reason": "bounce_hard",
        "source": "t",
        "created_at": NOW,
    }
    async with engine.begin() as conn:
        assert await insert_ignore(conn, inbound, [message, {**message, "uid": 8}]) == 2
        assert await insert_ignore(conn, inbound, [message, {**message, "uidvalidity": 1}]) == 1
        assert await insert_ignore(conn, alerts, [alert, alert]) == 1
        assert await insert_ignore(conn, suppressions, [suppression]) == 1
        assert await insert_ignore(conn, suppressions, [suppression]) == 0
        raw, classification = (
            await conn.execute(select(inbound.c.raw, inbound.c.classification).where(inbound.c.uid == 7).limit(1))
        ).one()
    assert raw == message["raw"] and classification == message["classification"]


async def test_status_values_are_checked(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        campaign_id, (lead_id,) = await _campaign_with_leads(conn, 1)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(outbound).values(**_outbound_row(campaign_id, lead_id, 1), status="LOST"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(leads.update().values(state="happy"))


async def test_foreign_keys_are_enforced(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                insert(leads).values(
                    campaign_id=999,
                    email="a@b.c",
                    email_domain="b.c",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )


async def test_due_leads_are_found_through_the_index(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await _campaign_with_leads(conn, 20)
    due = select(leads.c.id).where(leads.c.next_action_at <= NOW + timedelta(minutes=4))
    async with engine.connect() as conn:
        found = (await conn.execute(due.order_by(leads.c.next_action_at))).scalars().all()
        sql = str(due.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET enable_seqscan = off"))  # 20 rows: force the choice
            plan = "\n".join((await conn.execute(text(f"EXPLAIN {sql}"))).scalars())
        else:
            plan = "\n".join(str(row[-1]) for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert len(found) == 5
    assert "ix_cam_leads_next_action_at" in plan
