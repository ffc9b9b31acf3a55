"""Engine: URL handling, SQLite pragmas, clear errors when the database cannot be reached."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, select, text
from sqlalchemy.exc import StatementError

from aicmo_actors.storage.engine import (
    DEFAULT_DATABASE_URL,
    DatabaseUnavailable,
    backend_of,
    database_url_from_env,
    describe_url,
    make_engine,
    parse_url,
    ping,
)
from aicmo_actors.storage.metadata import UtcDateTime
from aicmo_actors.storage.schema import current_revision, upgrade

UNREACHABLE_PG = "postgresql+asyncpg://alice:s3cret@127.0.0.1:1/nothing"


def test_default_url_is_embedded_sqlite() -> None:
    assert database_url_from_env({}) == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./aicmo.db"
    assert database_url_from_env({"AICMO_DATABASE_URL": "  "}) == DEFAULT_DATABASE_URL
    url = "postgresql+asyncpg://u@h/db"
    assert database_url_from_env({"AICMO_DATABASE_URL": url}) == url


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_get_their_async_driver(given: str, driver: str) -> None:
    assert parse_url(given).drivername == driver


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "malformed database URL"),
        ("mysql+aiomysql://u@h/db", "unsupported database URL"),
        ("postgresql+psycopg2://u@h/db", "unsupported database URL"),
        ("postgresql+asyncpg://u@h", "names no database"),
    ],
)
def test_bad_urls_are_one_line_errors(url: str, says: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        make_engine(url)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


def test_messages_never_show_the_password() -> None:
    assert "s3cret" not in describe_url(UNREACHABLE_PG)
    with pytest.raises(DatabaseUnavailable) as info:
        parse_url("mysql://bob:s3cret@h/db")
    assert "s3cret" not in str(info.value)


def test_backend_of() -> None:
    assert backend_of("sqlite:///a.db") == "sqlite"
    assert backend_of("postgresql://u@h/db") == "postgresql"


@pytest.mark.anyio
async def test_sqlite_gets_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "app.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            values = {
                pragma: (await conn.execute(text(f"PRAGMA {pragma}"))).scalar_one()
                for pragma in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await engine.dispose()
    assert path.parent.is_dir()
    # synchronous=NORMAL is 1.
    assert values == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }


def _can_take_write_lock(path: Path) -> bool:
    """Whether another connection (stdlib sqlite3, no waiting) could start writing now."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


@pytest.mark.anyio
async def test_sqlite_transactions_begin_immediate_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as conn:
            # Even a transaction that starts by reading holds the write lock from its BEGIN,
            # so its later write cannot fail on a snapshot another writer made stale.
            await conn.execute(text("SELECT count(*) FROM t"))
            assert not _can_take_write_lock(path)
        assert _can_take_write_lock(path)
        async with engine.connect() as conn:
            await conn.execution_options(sqlite_begin="DEFERRED")
            await conn.execute(text("SELECT count(*) FROM t"))
            assert _can_take_write_lock(path)
    finally:
        await engine.dispose()


@pytest.mark.anyio
async def test_in_memory_sqlite_is_one_shared_database() -> None:
    engine = make_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()


@pytest.mark.anyio
async def test_unreachable_postgresql_is_one_line_without_password() -> None:
    engine = make_engine(UNREACHABLE_PG, connect_timeout_s=2)
    try:
        with pytest.raises(DatabaseUnavailable) as info:
            await ping(engine)
    finally:
        await engine.dispose()
    message = str(info.value)
    assert message.startswith("cannot reach the database at postgresql+asyncpg://alice:***@127.0.0.1:1")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.anyio
async def test_migrating_an_unreachable_database_is_database_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable):
        await upgrade(UNREACHABLE_PG)
    with pytest.raises(DatabaseUnavailable):
        await current_revision(UNREACHABLE_PG)


@pytest.mark.anyio
async def test_utc_datetime_round_trips_aware_and_refuses_naive(tmp_path: Path) -> None:
    md = MetaData()
    table = Table("t", md, Column("id", Integer, primary_key=True), Column("at", UtcDateTime))
    plain = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime))
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    berlin = timezone(timedelta(hours=2))
    given = datetime(2026, 3, 1, 12, 30, tzinfo=berlin)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
            await conn.execute(table.insert().values(id=1, at=given))
            with pytest.raises(StatementError, match="naive datetime"):
                await conn.execute(table.insert().values(id=2, at=datetime(2026, 3, 1)))
        async with engine.connect() as conn:
            got = (await conn.execute(select(table.c.at))).scalar_one()
            stored = (await conn.execute(select(plain.c.at))).scalar_one()
            earlier = (
                await conn.execute(select(table.c.id).where(table.c.at < datetime(2026, 3, 1, 12, tzinfo=UTC)))
            ).all()
    finally:
        await engine.dispose()
    assert got == given and got.tzinfo == UTC
    assert stored == datetime(2026, 3, 1, 10, 30)  # kept as UTC
    # Compared as UTC: 12:30 at +02:00 is before 12:00 UTC (a naive 12:30 would not be).
    assert earlier == [(1,)]
