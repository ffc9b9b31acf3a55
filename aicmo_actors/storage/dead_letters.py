"""Dead letters, persisted: the runtime's sink writes them here; the CLI lists them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.storage.engine import SQLITE_BEGIN
from aicmo_actors.storage.insert import insert_ignore
from aicmo_actors.storage.runtime_tables import runtime_dead_letters
from contracts.runtime import DeadLetter


@dataclass(frozen=True)
class StoredDeadLetter:
    """One row of ``runtime_dead_letters``."""

    id: int
    letter_id: str
    kind: str
    actor: str
    message_type: str
    payload: Any
    error: str
    at: datetime
    correlation_id: str | None


def _payload(text: str) -> Any:
    """The payload as JSON when it is JSON (a contract model's dump), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """The ``runtime_dead_letters`` row for `letter`."""
    return {
        "letter_id": str(letter.message_id),
        "correlation_id": str(letter.correlation_id) if letter.correlation_id else None,
        "kind": letter.kind,
        "actor": letter.actor,
        "message_type": letter.message_type,
        "payload": _payload(letter.payload),
        "error": letter.error,
        "at": letter.at,
    }


async def store_dead_letters(engine: AsyncEngine, letters: Sequence[DeadLetter]) -> int:
    """Persist `letters` in one transaction; a letter stored before is skipped. Returns how many were new."""
    if not letters:
        return 0
    async with engine.begin() as conn:
        return await insert_ignore(
            conn,
            runtime_dead_letters,
            [dead_letter_row(letter) for letter in letters],
            conflict_columns=["letter_id"],
        )


async def list_dead_letters(
    engine: AsyncEngine, limit: int = 20, *, before: int | None = None
) -> list[StoredDeadLetter]:
    """The newest `limit` dead letters, newest first (with `before`: those older than that id)."""
    if limit < 1:
        return []
    table = runtime_dead_letters.c
    stmt = select(runtime_dead_letters).order_by(table.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(table.id < before)
    async with engine.connect() as conn:
        # A reader need not queue behind the service's writes on SQLite.
        await conn.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        rows = (await conn.execute(stmt)).mappings().all()
    return [
        StoredDeadLetter(
            id=row["id"],
            letter_id=row["letter_id"],
            kind=row["kind"],
            actor=row["actor"],
            message_type=row["message_type"],
            payload=row["payload"],
            error=row["error"],
            at=row["at"],
            correlation_id=row["correlation_id"],
        )
        for row in rows
    ]
