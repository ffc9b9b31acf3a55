"""Email to a client, sent at most once per idempotency key: the outbox every module after the
deal uses (onboarding's welcome and reminders, strategy's plan, ...), each over its own table.

A module declares its table with `mail_table("<module>")` (in its `tables.py`, so the
migrations see it) and queues an email with `queue_in(conn, table, ...)` inside the
transaction of the decision behind it: the email exists if and only if the decision does.
`MailBook.send_due` then sends what is queued:

- a row is claimed (QUEUED -> SENDING) in one transaction before the send and finished
  (SENT, or back to QUEUED for a later attempt, or FAILED) in another after it;
- a row found SENDING by a new incarnation (`recover`) may have gone out: it becomes
  UNCONFIRMED and is never sent again (at most once: a client never gets the same email
  twice; a person is told through the row's state, and `python run.py project ID` shows it);
- the message is built whole when it is queued and stored as bytes (`raw`), so what is
  sent after a crash is exactly what was decided.

The idempotency key is the module's, for example ``"<project>:onboarding:welcome"``.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.gateways.transport import MailTransport, SendResult
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.metadata import Id, UtcDateTime, metadata
from aicmo_actors.storage.work import run_write

QUEUED, SENDING, SENT, UNCONFIRMED, FAILED, CANCELLED = (
    "QUEUED",
    "SENDING",
    "SENT",
    "UNCONFIRMED",
    "FAILED",
    "CANCELLED",
)
#: Attempts before a temporary failure becomes FAILED, and the wait between them.
MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=15)


def mail_table(module: str) -> sa.Table:
    """`<module>_emails`, declared on the shared metadata."""
    return sa.Table(
        f"{module}_emails",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("project_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(250), nullable=False, index=True),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_at", UtcDateTime, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime),
        sa.Column("error", sa.Text),
        sa.Index(f"ix_{module}_emails_status_next_attempt_at", "status", "next_attempt_at"),
    )


def queue_in(
    conn: Connection,
    table: sa.Table,
    *,
    key: str,
    project_id: str,
    kind: str,
    message: EmailMessage,
    now: datetime,
) -> bool:
    """Queue `message` under `key` unless an email with that key exists: True when queued."""
    if conn.execute(sa.select(table.c.id).where(table.c.idempotency_key == key)).first() is not None:
        return False
    conn.execute(
        table.insert().values(
            idempotency_key=key,
            project_id=project_id,
            kind=kind,
            # The envelope's recipient: the bare address, not the header's display name.
            to_address=message["To"].addresses[0].addr_spec,
            subject=str(message["Subject"]),
            message_id=str(message["Message-ID"]),
            raw=message.as_bytes(),
            status=QUEUED,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return True


def cancel_in(conn: Connection, table: sa.Table, project_id: str, now: datetime) -> int:
    """Cancel a project's emails not sent yet (compensation): how many."""
    return int(
        conn.execute(
            table.update()
            .where(table.c.project_id == project_id, table.c.status == QUEUED)
            .values(status=CANCELLED, error="cancelled", next_attempt_at=now)
        ).rowcount
    )


def settle(outcome: str, attempts: int) -> str:
    """An attempt's outcome as the email's next status. Pure. An unconfirmed send (the data
    went out, no answer came) may have arrived: it is never sent again."""
    if outcome == "accepted":
        return SENT
    if outcome == "unconfirmed":
        return UNCONFIRMED
    if outcome == "permanent" or attempts >= MAX_ATTEMPTS:
        return FAILED
    return QUEUED


@dataclass(frozen=True)
class Sent:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class MailBook:
    """The outbox of one module's client emails (see the module's docstring)."""

    def __init__(
        self, engine: AsyncEngine, table: sa.Table, *, held: Callable[[], sa.Select[Any]] | None = None
    ) -> None:
        self.engine = engine
        self.table = table
        self.kept = ReadCache(engine)  # the queue's first send time, kept between ticks (storage.changes)
        #: The projects whose emails wait (a query of their ids; delivery's hold), or None. The
        #: query is made once, with the outbox: it must not depend on the moment it is made.
        self.held = held
        # The rows waiting to be sent (queued, not of a held project) and the read of the first
        # send time among them: built once, where every tick of every module asked for them.
        waiting = [table.c.status == QUEUED]
        if held is not None:
            waiting.append(table.c.project_id.not_in(held()))
        self._waiting = tuple(waiting)
        self._first = earliest(table.c.next_attempt_at, *self._waiting)

    async def recover(self, now: datetime) -> int:
        """At start: rows a dead incarnation left SENDING may have gone out: UNCONFIRMED."""
        t = self.table
        statement = (
            t.update().where(t.c.status == SENDING).values(status=UNCONFIRMED, error="interrupted during the send")
        )
        return await run_write(self.engine, lambda conn: int(conn.execute(statement).rowcount))

    async def due(self, now: datetime, limit: int = 50) -> list[int]:
        t = self.table

        def work(conn: Connection) -> list[int]:
            query = (
                sa.select(t.c.id)
                .where(*self._waiting, t.c.next_attempt_at <= now)
                .order_by(t.c.next_attempt_at, t.c.id)
                .limit(limit)
            )
            return [int(r) for r in conn.execute(query).scalars()]

        # The first send time of the queue is kept until the queue (or a hold) changes; the
        # query of what is due is built only when something is.
        return await self.kept.read_if("due", self._first, come(now), work, [])

    async def claim(self, email_id: int) -> Any | None:
        t = self.table

        def work(conn: Connection) -> Any | None:
            claim = t.update().where(t.c.id == email_id, *self._waiting)
            claimed = conn.execute(claim.values(status=SENDING)).rowcount
            if not claimed:
                return None
            return conn.execute(sa.select(t).where(t.c.id == email_id)).one()

        return await run_write(self.engine, work)

    async def finish(self, email_id: int, *, status: str, error: str | None, now: datetime) -> None:
        """After the attempt: SENT, QUEUED (again, in `RETRY_AFTER`), FAILED or UNCONFIRMED."""
        t = self.table
        values: dict[str, Any] = {"status": status, "error": error}
        if status == SENT:
            values["sent_at"] = now
        elif status == QUEUED:
            values["next_attempt_at"] = now + RETRY_AFTER
        statement = (
            t.update().where(t.c.id == email_id, t.c.status == SENDING).values(attempts=t.c.attempts + 1, **values)
        )
        await run_write(self.engine, lambda conn: conn.execute(statement))

    async def send_due(self, transport: MailTransport, *, mail_from: str, now: datetime) -> Sent:
        """Send what is due, one email at a time (claim, send, finish)."""
        counts = {SENT: 0, QUEUED: 0, FAILED: 0, UNCONFIRMED: 0}
        for email_id in await self.due(now):
            row = await self.claim(email_id)
            if row is None:
                continue
            message = email.message_from_bytes(row.raw, policy=email.policy.SMTP)
            try:
                result = await transport.send(message, mail_from=mail_from, rcpt_to=[row.to_address])
            except Exception as exc:  # a transport that raises instead of answering: try later
                result = SendResult("temporary", smtp_text=f"{type(exc).__name__}: {exc}")
            status = settle(result.outcome, row.attempts + 1)
            error = None if status == SENT else f"{result.smtp_code or ''} {result.smtp_text}".strip() or result.outcome
            await self.finish(email_id, status=status, error=error, now=now)
            counts[status] += 1
        return Sent(counts[SENT], counts[QUEUED], counts[FAILED] + counts[UNCONFIRMED])
