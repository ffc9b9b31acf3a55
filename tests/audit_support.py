"""What the audit-in-transaction tests share: an `also` that fails as a crash between the change
and its audit row would, and reads of the audit trail and of a table's rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.identity.tables import identity_audit


class AuditBroken(RuntimeError):
    """The audit row could not be written (what a crash between the change and its row left)."""


def broken(conn: Connection, result: object) -> None:
    """An `also` that cannot write its row: the change must not be kept either."""
    raise AuditBroken("the audit row could not be written")


async def audit_rows(engine: AsyncEngine, action: str) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(actor, source, target, detail) of every audit row of `action`, oldest first."""
    a = identity_audit.c
    query = sa.select(a.actor, a.source, a.target, a.detail).where(a.action == action).order_by(a.id)
    async with engine.connect() as conn:
        return [(r.actor, r.source, r.target, r.detail) for r in await conn.execute(query)]


async def count(engine: AsyncEngine, table: sa.Table, *where: Any) -> int:
    """How many rows of `table` match `where`."""
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one())


async def post_fails(client: Any, path: str, body: Any) -> None:
    """POST `body` to `path` as an operator while the audit row cannot be written: the answer is
    the app's error (500, or `AuditBroken` itself, raised through the test transport)."""
    try:
        answer = await client.call("POST", path, "operator", json=body)
    except AuditBroken:
        return
    assert answer.status_code == 500, answer.text
