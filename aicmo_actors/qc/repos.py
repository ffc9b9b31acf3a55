"""QC's repository: every read and write of `qc_checks`, one transaction per method, rows out.

`QcStore` is the module's store (`store.checks`) over one engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.qc.tables import qc_checks
from aicmo_actors.storage.work import run_read, run_write

_C = qc_checks
#: How many of a client's earlier deliverables a draft is compared with (the latest).
EARLIER_LIMIT = 200


@dataclass(frozen=True)
class Check:
    """One recorded check (without the draft's text)."""

    id: int
    idempotency_key: str
    project_id: str
    item_id: str
    version: int
    client_ref: str
    passed: bool
    findings: list[dict[str, Any]]
    checked_at: datetime


@dataclass(frozen=True)
class NewCheck:
    idempotency_key: str
    project_id: str
    item_id: str
    version: int
    client_ref: str
    passed: bool
    findings: list[dict[str, Any]]
    title: str
    text: str


@dataclass(frozen=True)
class EarlierDraft:
    """A passed draft of another item of the same client."""

    item_id: str
    version: int
    title: str
    text: str


_CHECK_COLUMNS = [c for c in _C.c if c.name not in ("title", "text")]


def _check(row: Any) -> Check:
    return Check(
        id=row.id,
        idempotency_key=row.idempotency_key,
        project_id=row.project_id,
        item_id=row.item_id,
        version=row.version,
        client_ref=row.client_ref,
        passed=bool(row.passed),
        findings=list(row.findings or []),
        checked_at=row.checked_at,
    )


def find_in(conn: Connection, key: str) -> Check | None:
    row = conn.execute(sa.select(*_CHECK_COLUMNS).where(_C.c.idempotency_key == key)).first()
    return _check(row) if row is not None else None


class ChecksRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find(self, key: str) -> Check | None:
        return await run_read(self.engine, lambda conn: find_in(conn, key))

    async def earlier(self, client_ref: str, item_id: str) -> list[EarlierDraft]:
        """The client's passed drafts of other items, newest first (at most `EARLIER_LIMIT`)."""
        query = (
            sa.select(_C.c.item_id, _C.c.version, _C.c.title, _C.c.text)
            .where(_C.c.client_ref == client_ref, _C.c.passed.is_(True), _C.c.item_id != item_id)
            .order_by(_C.c.checked_at.desc(), _C.c.id.desc())
            .limit(EARLIER_LIMIT)
        )
        return await run_read(
            self.engine, lambda conn: [EarlierDraft(r.item_id, r.version, r.title, r.text) for r in conn.execute(query)]
        )

    async def record(self, new: NewCheck, now: datetime) -> tuple[bool, Check]:
        """Store the verdict under its key, unless the key has one already: (whether it did, the row)."""

        def work(conn: Connection) -> tuple[bool, Check]:
            found = find_in(conn, new.idempotency_key)
            if found is not None:
                return False, found
            conn.execute(_C.insert().values(**new.__dict__, checked_at=now))
            made = find_in(conn, new.idempotency_key)
            assert made is not None
            return True, made

        return await run_write(self.engine, work)

    async def of_item(self, project_id: str, item_id: str) -> list[Check]:
        """Every check of one item, oldest first."""
        query = (
            sa.select(*_CHECK_COLUMNS)
            .where(_C.c.project_id == project_id, _C.c.item_id == item_id)
            .order_by(_C.c.version, _C.c.id)
        )
        return await run_read(self.engine, lambda conn: [_check(r) for r in conn.execute(query)])


class QcStore:
    """QC's repositories over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.checks = ChecksRepo(engine)
