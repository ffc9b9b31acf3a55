"""Inbound mail for the classifier and store tests: the classify corpus, and outbound rows it answers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import tables
from aicmo_actors.gateways.inbox_source import FetchedMessage

CORPUS = Path(__file__).resolve().parent / "classify" / "corpus"
NOW = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)


def corpus() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))}


def fetched(raws: Iterable[bytes], *, first_uid: int = 1, uidvalidity: int = 1) -> list[FetchedMessage]:
    return [
        FetchedMessage(uid=first_uid + n, uidvalidity=uidvalidity, raw=raw, internal_date=None)
        for n, raw in enumerate(raws)
    ]


async def sent_emails(engine: AsyncEngine, sends: Iterable[tuple[str, str]]) -> dict[str, int]:
    """One campaign, a lead per recipient and a SENT outbound row per (recipient, Message-ID).

    Returns outbound id by Message-ID. Later rows of one recipient were sent later.
    """
    async with engine.begin() as conn:
        campaign_id = (
            await conn.execute(
                sa.insert(tables.cam_campaigns)
                .values(name="spring", spec={}, spec_hash="h", created_at=NOW, updated_at=NOW)
                .returning(tables.cam_campaigns.c.id)
            )
        ).scalar_one()
        leads: dict[str, int] = {}
        steps: dict[str, int] = {}
        outbound: dict[str, int] = {}
        for n, (recipient, message_id) in enumerate(sends):
            if recipient not in leads:
                leads[recipient] = (
                    await conn.execute(
                        sa.insert(tables.cam_leads)
                        .values(
                            campaign_id=campaign_id,
                            email=recipient,
                            email_domain=recipient.rsplit("@", 1)[-1],
                            created_at=NOW,
                            updated_at=NOW,
                        )
                        .returning(tables.cam_leads.c.id)
                    )
                ).scalar_one()
            steps[recipient] = steps.get(recipient, 0) + 1
            outbound[message_id] = (
                await conn.execute(
                    sa.insert(tables.cam_outbound_emails)
                    .values(
                        lead_id=leads[recipient],
                        campaign_id=campaign_id,
                        step=steps[recipient],
                        mailbox="alex@outreach.example.com",
                        recipient=recipient,
                        subject="Quick question",
                        status="SENT",
                        attempts=1,
                        message_id=message_id,
                        idempotency_key=f"k{n}",
                        queued_at=NOW,
                        sent_at=NOW + timedelta(minutes=n),
                        accepted_at=NOW + timedelta(minutes=n),
                    )
                    .returning(tables.cam_outbound_emails.c.id)
                )
            ).scalar_one()
    return outbound
