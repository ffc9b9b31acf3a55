"""Database fixtures: every storage test runs on SQLite and on PostgreSQL.

`database_url` is parametrised over ``sqlite`` (a fresh file in tmp_path) and ``postgresql``
(a database created once per test session on the server named by AICMO_TEST_DATABASE_URL,
emptied before each test and dropped at the end). `engine` is an engine on it, migrated to
head. A PostgreSQL server that cannot be reached skips (fails under CI=true).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.storage.engine import make_engine, parse_url
from aicmo_actors.storage.schema import upgrade
from tests.plugins.servers import server_missing

PG_SERVER_ENV = "AICMO_TEST_DATABASE_URL"
DEFAULT_PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def pg_server_url() -> URL:
    """The PostgreSQL server (and a database on it to connect to) that tests may create databases on."""
    return parse_url(os.environ.get(PG_SERVER_ENV, "").strip() or DEFAULT_PG_SERVER)


async def _asyncpg_connect(url: URL) -> asyncpg.Connection:
    return await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        database=url.database,
        timeout=5,
    )


async def _admin(url: URL, *statements: str) -> None:
    conn = await _asyncpg_connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgresql_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    server = pg_server_url()
    name = f"aicmo_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _run(_admin(server, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        server_missing(
            "PostgreSQL",
            f"cannot create a database on {server.render_as_string(hide_password=True)} "
            f"({type(exc).__name__}: {exc}); set {PG_SERVER_ENV}",
        )
    yield server.set(database=name).render_as_string(hide_password=False)
    _run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def empty_postgresql(url: str) -> None:
    """Drop everything in the database's public schema (tests start from an empty database)."""
    _run(
        _admin(
            parse_url(url),
            "SET lock_timeout = '10s'",
            "DROP SCHEMA public CASCADE",
            "CREATE SCHEMA public",
        )
    )


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("postgresql_database_url")
    empty_postgresql(url)
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `database_url`, migrated to head; disposed after the test."""
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
