"""A scratch PostgreSQL database for a benchmark: created, migrated, yielded, dropped."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from aicmo_actors.storage.engine import parse_url
from aicmo_actors.storage.schema import upgrade

#: Where scratch databases are made: AICMO_TEST_DATABASE_URL, as for the tests.
PG_SERVER_ENV = "AICMO_TEST_DATABASE_URL"
DEFAULT_PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class ScratchDatabaseError(RuntimeError):
    """The server cannot be reached or refuses to create a database: one line for the user."""


def pg_server(url: str | None = None) -> URL:
    parsed = parse_url(url or os.environ.get(PG_SERVER_ENV, "").strip() or DEFAULT_PG_SERVER)
    assert isinstance(parsed, URL)
    return parsed


@asynccontextmanager
async def scratch_database(server: URL) -> AsyncIterator[str]:
    """A fresh database on `server`, migrated to head; yields its URL and drops it after."""
    name = f"aicmo_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(
            user=server.username,
            password=server.password,
            host=server.host or "127.0.0.1",
            port=server.port or 5432,
            database=server.database,
            timeout=10,
        )
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    try:
        await admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        where = server.render_as_string(hide_password=True)
        raise ScratchDatabaseError(f"cannot create a database on {where}: {exc} (set {PG_SERVER_ENV})") from None
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url)  # a PostgreSQL database is never upgraded implicitly
        yield url
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
