"""Database fixtures: every storage test runs on SQLite and on PostgreSQL.

`database_url` is parametrised over ``sqlite`` (a fresh file in tmp_path) and ``postgresql``
(a database created once per test session on the server named by AICMO_TEST_DATABASE_URL,
emptied before each test and dropped at the end). `engine` is an engine on it, migrated to
head. A PostgreSQL server that cannot be reached skips (fails under CI=true).

Migrating to head took about a second a test, a third of the suite's time in set-up. So a
test's migrated database is made once per test process and reused, exactly as the migrations
made it:

- SQLite: the migrations run once into a template file; each test's database is a copy.
- PostgreSQL: the session database, left at head by the test before, keeps its tables and
  loses their rows (one TRUNCATE, identities restarted, in `database_url`, before any other
  fixture of the test writes). After each test it is checked: the revision at head and the
  tables those of head, else the next test empties it and migrates again. A test that takes
  `database_url` without `engine` (the migration tests) always gets an empty database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.storage.engine import make_engine, parse_url
from aicmo_actors.storage.schema import head_revision, upgrade
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


#: PostgreSQL databases this process left at head (their rows only to be cleared), and the
#: tables head has (besides alembic_version), learnt from the first migration.
_AT_HEAD: set[str] = set()
_HEAD_TABLES: list[frozenset[str]] = []
#: PostgreSQL databases `database_url` just cleared at head, for `engine` to use as they are.
_CLEARED: set[str] = set()
#: This process's SQLite database migrated to head, copied for each test (`_sqlite_template`).
_SQLITE_TEMPLATE: list[Path] = []


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite and once on PostgreSQL (for `engine`, a PostgreSQL
    database this process left at head may keep its tables: `engine` clears their rows)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("postgresql_database_url")
    # Cleared here, before any other fixture of the test writes to it (engine then skips the
    # migrations); anything else gets an empty database.
    if "engine" in request.fixturenames and url in _AT_HEAD and asyncio.run(_clear_rows(url)):
        _CLEARED.add(url)
        return url
    _AT_HEAD.discard(url)
    _CLEARED.discard(url)
    empty_postgresql(url)
    return url


async def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _SQLITE_TEMPLATE:
        path = tmp_path_factory.mktemp("migrated") / "head.db"
        await upgrade(f"sqlite+aiosqlite:///{path}")
        # Everything in the file itself (WAL mode leaves the last writes in head.db-wal).
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


async def _head_tables(url: str) -> frozenset[str]:
    conn = await _asyncpg_connect(parse_url(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        version = await conn.fetchval("SELECT version_num FROM alembic_version") if rows else None
    except asyncpg.PostgresError:
        return frozenset()
    finally:
        await conn.close()
    return frozenset(r["tablename"] for r in rows) | {f"@{version}"}


async def _clear_rows(url: str) -> bool:
    """Every row of head's tables gone (identities restarted); False if that could not be done."""
    tables = sorted(t for t in _HEAD_TABLES[0] if not t.startswith("@") and t != "alembic_version")
    listed = ", ".join(f'"{t}"' for t in tables)
    try:
        await _admin(parse_url(url), "SET lock_timeout = '10s'", f"TRUNCATE {listed} RESTART IDENTITY CASCADE")
    except asyncpg.PostgresError:
        return False
    return True


@pytest.fixture
async def engine(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    """An engine on `database_url`, migrated to head; disposed after the test."""
    postgresql = database_url.startswith("postgresql")
    target = Path(make_url(database_url).database or "") if not postgresql else None
    if postgresql and database_url in _CLEARED:
        pass
    elif target is not None and not target.exists():
        shutil.copyfile(await _sqlite_template(tmp_path_factory), target)
    else:
        await upgrade(database_url)
        if postgresql and not _HEAD_TABLES:
            _HEAD_TABLES.append(await _head_tables(database_url))
    _AT_HEAD.discard(database_url)
    _CLEARED.discard(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
        if postgresql and _HEAD_TABLES:
            tables = await _head_tables(database_url)
            if tables == _HEAD_TABLES[0] and f"@{head_revision()}" in tables:
                _AT_HEAD.add(database_url)
