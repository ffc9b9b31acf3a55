"""Emails a client sent back in answer to onboarding's (`onboarding_replies`).

A reply belongs to a project only if its In-Reply-To or one of its References is the
Message-ID of an email onboarding sent (`onboarding_emails.message_id`): never by its From
address, its subject or anything else the message claims. Its text is kept for a person to
read; the intake is flagged "needs a person" (its reminders stop), never completed from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.onboarding.tables import ADDRESS, WAITING
from aicmo_actors.onboarding.tables import onboarding_emails as emails_t
from aicmo_actors.onboarding.tables import onboarding_intakes as intakes_t
from aicmo_actors.onboarding.tables import onboarding_replies as replies_t
from aicmo_actors.storage.work import run_read, run_write
from contracts.cam import UNMATCHED_TEXT_CHARS

#: The newest References looked at (a thread's whole history is not needed to find ours).
MAX_REFERENCES = 50
MAX_SUBJECT_CHARS = 1_000


@dataclass(frozen=True)
class InboundReply:
    """An inbound email as CAM offered it (`UnmatchedReply`)."""

    inbound_id: int
    in_reply_to: str | None
    references: tuple[str, ...]
    from_address: str | None
    subject: str
    text: str
    received_at: datetime


@dataclass(frozen=True)
class StoredReply:
    project_id: str
    reply_id: int
    #: False: this inbound email was stored before (offered twice).
    new: bool


@dataclass(frozen=True)
class ReplyRow:
    reply_id: int
    project_id: str
    inbound_id: int
    from_address: str | None
    subject: str
    text: str
    received_at: datetime
    stored_at: datetime


def _printable(text: str) -> str:
    return text.replace("\x00", "")  # PostgreSQL text cannot hold a NUL


def answered_ids(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    """The Message-IDs a reply says it answers, newest first, each once."""
    found: list[str] = []
    for candidate in [in_reply_to or "", *reversed(references[-MAX_REFERENCES:])]:
        value = candidate.strip()
        if value and value not in found and len(value) <= 250:
            found.append(value)
    return found


class RepliesRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, reply: InboundReply, now: datetime) -> StoredReply | None:
        """Store `reply` for the project whose email it answers, and flag that project's intake
        for a person; None when it answers none of onboarding's emails."""
        ids = answered_ids(reply.in_reply_to, reply.references)
        if not ids:
            return None

        def work(conn: Connection) -> StoredReply | None:
            project_id = conn.execute(
                sa.select(emails_t.c.project_id).where(emails_t.c.message_id.in_(ids)).order_by(emails_t.c.id).limit(1)
            ).scalar()
            if project_id is None:
                return None
            existing = conn.execute(
                sa.select(replies_t.c.id).where(
                    replies_t.c.project_id == project_id, replies_t.c.inbound_id == reply.inbound_id
                )
            ).scalar()
            if existing is not None:
                return StoredReply(project_id, int(existing), False)
            reply_id = conn.execute(
                replies_t.insert()
                .values(
                    project_id=project_id,
                    inbound_id=reply.inbound_id,
                    from_address=_printable(reply.from_address)[:ADDRESS] if reply.from_address else None,
                    subject=_printable(reply.subject)[:MAX_SUBJECT_CHARS],
                    text=_printable(reply.text)[:UNMATCHED_TEXT_CHARS],
                    received_at=reply.received_at,
                    stored_at=now,
                )
                .returning(replies_t.c.id)
            ).scalar_one()
            t = intakes_t
            intake = conn.execute(
                sa.select(t.c.state, t.c.needs_person_at, t.c.overdue_at).where(t.c.project_id == project_id)
            ).first()
            if intake is not None and intake.state == WAITING and intake.needs_person_at is None:
                values: dict[str, object] = {"needs_person_at": now, "updated_at": now}
                if intake.overdue_at is None:
                    # No more reminders: the next thing due is the alert at the deadline.
                    values["next_action_at"] = t.c.deadline_at
                conn.execute(t.update().where(t.c.project_id == project_id).values(**values))
            return StoredReply(project_id, int(reply_id), True)

        return await run_write(self.engine, work)

    async def of_project(self, project_id: str) -> list[ReplyRow]:
        """A project's emailed answers, oldest first (for the person who reads them)."""
        r = replies_t
        query = sa.select(r).where(r.c.project_id == project_id).order_by(r.c.id)

        def work(conn: Connection) -> list[ReplyRow]:
            return [
                ReplyRow(
                    row.id,
                    row.project_id,
                    row.inbound_id,
                    row.from_address,
                    row.subject,
                    row.text,
                    row.received_at,
                    row.stored_at,
                )
                for row in conn.execute(query)
            ]

        return await run_read(self.engine, work)
