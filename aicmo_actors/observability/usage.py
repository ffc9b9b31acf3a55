"""`UsageRepo`: usage records kept once each, and their aggregates.

A record's `key` is unique: writing a batch again (after a crash, from a replay, from the
start-up count of what the tables say) adds only the records not there yet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.observability.tables import observability_usage as usage_t
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import run_read, run_write
from contracts.observability import UsageRecord

GroupBy = Literal["module", "kind", "campaign", "day"]
GROUPS: tuple[GroupBy, ...] = ("module", "kind", "campaign", "day")
#: How far before the newest kept record the start-up count reads again: acts are not always
#: committed in the order of their times.
_BACKFILL_MARGIN = timedelta(hours=1)
#: Rows per INSERT statement (SQLite binds at most 32,766 parameters; 8 per row).
_CHUNK = 1000


@dataclass(frozen=True)
class UsageTotal:
    """One line of an aggregate: the group's values (by name) and the quantity."""

    group: dict[str, str | None]
    quantity: int


def totals_csv(totals: Sequence[UsageTotal], groups: Sequence[str]) -> str:
    """Totals as CSV with a header row (`usage --csv` and the web app's download). Pure."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*groups, "quantity"])
    for t in totals:
        writer.writerow([*(t.group[g] or "" for g in groups), t.quantity])
    return out.getvalue()


def _row(record: UsageRecord) -> dict[str, object]:
    at = record.at.astimezone(UTC)
    return {
        "key": record.key[:200],
        "module": record.module,
        "kind": record.kind,
        "subject": record.subject[:200] if record.subject else None,
        "quantity": record.quantity,
        "at": at,
        "day": at.date().isoformat(),
    }


def record_in(conn: Connection, records: Iterable[UsageRecord]) -> int:
    """Insert the records not there yet, in the caller's transaction; return how many were new."""
    rows = [_row(r) for r in records]
    new = 0
    for start in range(0, len(rows), _CHUNK):
        new += len(insert_ignore_in(conn, usage_t, rows[start : start + _CHUNK], conflict_columns=["key"]))
    return new


class UsageRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, records: Sequence[UsageRecord]) -> int:
        """One transaction for the whole batch; returns how many records were new."""
        if not records:
            return 0
        return await run_write(self.engine, lambda conn: record_in(conn, records))

    async def backfill(self, module: str, read: Callable[[Connection, datetime | None], Iterable[UsageRecord]]) -> int:
        """Count what the module's tables say happened since its newest record, one transaction.

        `read(conn, since)` lists the module's acts from `since` (all with None). Starting from
        the newest record already kept (not from the last flush, which a crash may have
        lost), anything older was either counted or is re-read here, and the keys keep it once.
        """

        def work(conn: Connection) -> int:
            since = conn.execute(sa.select(sa.func.max(usage_t.c.at)).where(usage_t.c.module == module)).scalar()
            if since is not None and since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            # A little before the newest record: acts committed in another order than their times.
            start = None if since is None else since - _BACKFILL_MARGIN
            return record_in(conn, read(conn, start))

        return await run_write(self.engine, work)

    async def totals(
        self,
        *,
        by: Sequence[GroupBy] = ("module", "kind"),
        since: datetime | None = None,
        until: datetime | None = None,
        module: str | None = None,
        kind: str | None = None,
        campaign: str | None = None,
    ) -> list[UsageTotal]:
        """Sums of quantity grouped by `by` (always also by kind unless asked otherwise)."""
        columns = {
            "module": usage_t.c.module,
            "kind": usage_t.c.kind,
            "campaign": usage_t.c.subject,
            "day": usage_t.c.day,
        }
        unknown = [b for b in by if b not in columns]
        if unknown:
            raise ValueError(f"cannot group usage by {unknown[0]!r}: use one of {', '.join(GROUPS)}")
        groups = [columns[b].label(b) for b in by]
        statement = sa.select(*groups, sa.func.sum(usage_t.c.quantity).label("quantity"))
        if since is not None:
            statement = statement.where(usage_t.c.at >= since)
        if until is not None:
            statement = statement.where(usage_t.c.at < until)
        if module is not None:
            statement = statement.where(usage_t.c.module == module)
        if kind is not None:
            statement = statement.where(usage_t.c.kind == kind)
        if campaign is not None:
            statement = statement.where(usage_t.c.subject == campaign)
        if groups:
            statement = statement.group_by(*groups).order_by(*groups)

        def work(conn: Connection) -> list[UsageTotal]:
            return [
                UsageTotal({b: row[i] for i, b in enumerate(by)}, int(row[len(by)] or 0))
                for row in conn.execute(statement)
            ]

        return await run_read(self.engine, work)
