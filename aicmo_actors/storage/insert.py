"""Idempotent bulk inserts: ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL.

Rows are sent through SQLAlchemy's "insertmanyvalues" (multi-row VALUES batches) with
RETURNING, so one call costs a few round trips and says exactly which rows were new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def _dialect_name(target: AsyncConnection | AsyncSession | Connection) -> str:
    if isinstance(target, AsyncConnection | Connection):
        return target.dialect.name
    return target.get_bind().dialect.name


def _statement(
    dialect: str, table: Table, returning: Sequence[ColumnElement[Any]] | None, conflict_columns: Sequence[str] | None
) -> Any:
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - make_engine only builds the two
        raise NotImplementedError(f"idempotent insert is not written for {dialect}")
    stmt = stmt.on_conflict_do_nothing(index_elements=conflict_columns)
    columns = list(returning) if returning is not None else list(table.primary_key.columns)
    # No sort_by_parameter_order: skipped rows return nothing, so rows cannot be matched up.
    return stmt.returning(*columns)


async def insert_ignore_returning(
    target: AsyncConnection | AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[ColumnElement[Any]] | None = None,
    *,
    conflict_columns: Sequence[str] | None = None,
) -> list[Row[Any]]:
    """Insert `rows`, skipping those that hit a unique constraint; return the new rows.

    Each new row comes back as its `returning` columns (default: the primary key), in no
    particular order. `conflict_columns` limits which constraint counts as "already there"
    (another unique violation then raises); by default any unique constraint does. Every
    row must have the same keys. Runs in the caller's transaction: the caller commits.
    """
    if not rows:
        return []
    stmt = _statement(_dialect_name(target), table, returning, conflict_columns)
    result = await target.execute(stmt, [dict(row) for row in rows])
    return list(result.all())


async def insert_ignore(
    target: AsyncConnection | AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_columns: Sequence[str] | None = None,
) -> int:
    """Insert `rows`, skipping those already there (by any unique constraint); return how many were new."""
    new = await insert_ignore_returning(target, table, rows, conflict_columns=conflict_columns)
    return len(new)


def insert_ignore_in(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[ColumnElement[Any]] | None = None,
    *,
    conflict_columns: Sequence[str] | None = None,
) -> list[Row[Any]]:
    """`insert_ignore_returning` inside a unit of work (`aicmo_actors.storage.work`)."""
    if not rows:
        return []
    stmt = _statement(_dialect_name(conn), table, returning, conflict_columns)
    return list(conn.execute(stmt, [dict(row) for row in rows]).all())
