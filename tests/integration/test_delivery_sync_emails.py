"""Delivery's email follow-up at the repository (both databases): `sync_emails` moves each
email delivery whose email moved, and only those, however many there are. One light read finds
them and their rows are read whole in IN-list chunks (`storage.sql.chunks`, 500 at a time), so
more than one chunk of moved deliveries is the case to see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.delivery import DeliveryStore
from aicmo_actors.delivery.repos import NewDelivery
from aicmo_actors.delivery.tables import delivery_deliveries as deliveries_t
from aicmo_actors.delivery.tables import delivery_emails as emails_t
from aicmo_actors.storage.client_mail import QUEUED, SENT

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)
MOVED = 503  # more than one chunk of 500
WAITING = 3  # queued, never attempted: a held client's, say


def new_delivery(n: int) -> NewDelivery:
    key = f"delivery:{n}:email"
    message = EmailMessage()
    message["From"] = "agency@example.com"
    message["To"] = "client@example.org"
    message["Subject"] = f"Piece {n}"
    message["Message-ID"] = f"<delivery.{n}@example.com>"
    message.set_content(f"Piece {n}\n")
    return NewDelivery(
        key=key,
        project_id=str(uuid.UUID(int=1)),
        item_id=str(uuid.UUID(int=n)),
        version=1,
        method="email",
        client={"client_ref": str(uuid.UUID(int=9)), "company": "Client Ltd"},
        title=f"Piece {n}",
        type="blog_post",
        channel="blog",
        text="Some text. " * 50,
        html="",
        email=message,
    )


async def test_every_moved_email_delivery_is_followed_and_no_other(engine: AsyncEngine) -> None:
    store = DeliveryStore(engine)
    for n in range(1, MOVED + WAITING + 1):
        created, _ = await store.deliveries.record(new_delivery(n), NOW)
        assert created
    assert await store.deliveries.sync_emails(alert_after=3, now=NOW) == []  # nothing moved yet

    sent_at = NOW + timedelta(minutes=5)
    moved_keys = [f"delivery:{n}:email" for n in range(1, MOVED + 1)]
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(emails_t)
            .where(emails_t.c.idempotency_key.in_(moved_keys))
            .values(status=SENT, attempts=1, sent_at=sent_at)
        )

    changed = await store.deliveries.sync_emails(alert_after=3, now=NOW + timedelta(hours=1))
    assert sorted(c.row.key for c in changed) == sorted(moved_keys)
    assert {c.before for c in changed} == {"queued"}
    assert {c.row.state for c in changed} == {"delivered"}
    for c in changed:
        n = int(c.row.key.split(":")[1])
        assert c.row.delivered_at == sent_at
        assert c.row.receipt is not None and f"<delivery.{n}@example.com>" in c.row.receipt

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(deliveries_t.c.key, deliveries_t.c.state, deliveries_t.c.attempts))).all()
        mails = dict((await conn.execute(sa.select(emails_t.c.idempotency_key, emails_t.c.status))).all())
    states = {key: (state, attempts) for key, state, attempts in rows}
    for n in range(MOVED + 1, MOVED + WAITING + 1):
        key = f"delivery:{n}:email"
        assert states[key] == ("queued", 0)
        assert mails[key] == QUEUED
    assert sum(1 for state, _ in states.values() if state == "delivered") == MOVED

    # Once followed, nothing is left to move.
    assert await store.deliveries.sync_emails(alert_after=3, now=NOW + timedelta(hours=2)) == []
