"""One async engine per database URL: SQLite (embedded default) or PostgreSQL (production).

SQLite gets WAL, foreign keys, a busy timeout, and transactions that begin with
``BEGIN IMMEDIATE``: a transaction that reads and then writes would otherwise fail at once
with "database is locked" when another connection wrote in between, instead of waiting.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import aiosqlite
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import await_

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./aicmo.db"
DATABASE_URL_ENV = "AICMO_DATABASE_URL"

#: A pooled PostgreSQL connection idle at least this long is pinged before it is used (a
#: server restart or a dropped idle connection is found before a query, not by it); one in
#: steady use is not, so the hot path pays no ping round trip.
PING_AFTER_IDLE_S = 10.0

#: The SQLite lock wait, in milliseconds, before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000

#: Execution option naming how a SQLite transaction begins: "IMMEDIATE" (default),
#: "DEFERRED" (read-only work that must not wait for writers) or "EXCLUSIVE".
SQLITE_BEGIN = "sqlite_begin"

Backend = Literal["sqlite", "postgresql"]

_DRIVERS: dict[str, str] = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class DatabaseUnavailable(Exception):
    """The database URL is malformed or unsupported, or the server cannot be reached.

    The message is one line meant for the person who configured the URL.
    """


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """`AICMO_DATABASE_URL`, or the embedded SQLite default when it is unset or empty."""
    env = os.environ if environ is None else environ
    return env.get(DATABASE_URL_ENV, "").strip() or DEFAULT_DATABASE_URL


def parse_url(url: str | URL) -> URL:
    """Parse and normalise a database URL to one of the two async drivers we support.

    ``postgresql://`` and ``sqlite:///`` are accepted and given their async driver.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError) as exc:
        raise DatabaseUnavailable(f"malformed database URL {_safe(url)!r}: {exc}") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUnavailable(
            f"unsupported database URL {_safe(parsed)!r}: use sqlite+aiosqlite:///FILE "
            "or postgresql+asyncpg://USER@HOST/DB"
        )
    parsed = parsed.set(drivername=driver)
    if driver == "postgresql+asyncpg" and not parsed.database:
        raise DatabaseUnavailable(f"database URL {_safe(parsed)!r} names no database")
    return parsed


def backend_of(url: str | URL) -> Backend:
    """ "sqlite" or "postgresql"."""
    return "sqlite" if parse_url(url).get_backend_name() == "sqlite" else "postgresql"


def _safe(url: str | URL) -> str:
    """The URL without its password, for messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable>"


def describe_url(url: str | URL) -> str:
    """The URL without its password: safe to print or log."""
    return _safe(url)


def _sqlite_in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def make_engine(
    url: str | URL,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    connect_timeout_s: float = 10.0,
    sqlite_foreign_keys: bool = True,
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    echo: bool = False,
    **engine_kwargs: Any,
) -> AsyncEngine:
    """Create the async engine for `url` (does not connect; see `ping`).

    `sqlite_foreign_keys=False` is for migrations only: SQLite batch mode recreates tables,
    which foreign-key enforcement would refuse while child rows exist; migrations also wait
    longer for SQLite's write lock (`sqlite_busy_timeout_ms`: another migration holds it for
    as long as it runs).
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed, sqlite_foreign_keys, echo, engine_kwargs, sqlite_busy_timeout_ms)
    connect_args = {"timeout": connect_timeout_s, **engine_kwargs.pop("connect_args", {})}
    pooled = "poolclass" not in engine_kwargs
    if pooled:
        engine_kwargs = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_recycle": 1800, **engine_kwargs}
    engine = create_async_engine(parsed, echo=echo, connect_args=connect_args, **engine_kwargs)
    if pooled and not engine_kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's `pool_pre_ping`, for connections idle `PING_AFTER_IDLE_S` or more only.

    `pool_pre_ping` pings on every checkout: a round trip before each unit of work, a third
    of the send path's trips to PostgreSQL. A dead connection found here raises
    `DisconnectionError`, on which the pool throws it away and checks out another (the
    documented pessimistic-disconnect pattern)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["aicmo_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("aicmo_idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection idle for {time.monotonic() - since:.0f} s is gone") from exc
        if not alive:
            raise DisconnectionError("a pooled connection did not answer a ping")


def _make_sqlite_engine(
    url: URL, foreign_keys: bool, echo: bool, engine_kwargs: dict[str, Any], busy_timeout_ms: int
) -> AsyncEngine:
    in_memory = _sqlite_in_memory(url)
    if in_memory:
        # Every new connection to ":memory:" is a new empty database: share one.
        engine_kwargs.setdefault("poolclass", StaticPool)
    else:
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if "poolclass" not in engine_kwargs:
            # One connection per process: every transaction takes the write lock (BEGIN
            # IMMEDIATE), so a second connection of ours would only wait on it in SQLite's
            # busy handler, which sleeps in steps of up to 100 ms. Waiting for the one
            # connection in asyncio's queue costs nothing. Other processes (the CLI while the
            # service runs) still meet the busy timeout, as they should.
            # No reset when it goes back to the pool: SQLAlchemy ends every transaction it
            # began (commit, or rollback on close), and a unit of work runs its own inside
            # aiosqlite's thread (storage/work.py), so the reset was one more empty trip to
            # that thread per transaction.
            engine_kwargs = {
                "pool_size": 1,
                "max_overflow": 0,
                "pool_timeout": 120,
                "pool_reset_on_return": None,
                **engine_kwargs,
            }
    engine = create_async_engine(url, echo=echo, **engine_kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is off: we emit ours (below), which also makes
        # SAVEPOINT and transactional DDL work as documented.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                # A new database's pages are 1 KB, not 4 KB: a commit writes every page it
                # changed whole, to the WAL and again at the checkpoint, and a sent email
                # changes about a dozen (its row, its lead, their indexes). Measured on the
                # bench's month: 99 KB written per email with 4 KB pages, 56 KB with 1 KB,
                # no slower. (A no-op on an existing database.)
                cursor.execute("PRAGMA page_size=1024")
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = str(conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")).upper()
        if mode not in {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
            raise ValueError(f"{SQLITE_BEGIN} must be DEFERRED, IMMEDIATE or EXCLUSIVE")
        statement = f"BEGIN {mode}"
        driver = getattr(conn.connection.dbapi_connection, "_connection", None)
        if isinstance(driver, aiosqlite.Connection):
            # One trip to aiosqlite's thread instead of three (cursor, execute, close): a
            # transaction's fixed cost is mostly these trips, not SQLite's work.
            try:
                await_(driver.execute(statement))
            except sqlite3.Error as exc:
                raise OperationalError(statement, None, exc) from exc
        else:
            conn.exec_driver_sql(statement)

    return engine


async def ping(engine: AsyncEngine) -> None:
    """Connect once and run ``SELECT 1``; `DatabaseUnavailable` with one line if that fails."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, TimeoutError, DBAPIError, OperationalError) as exc:
        raise unavailable(engine.url, exc) from exc


def unavailable(url: str | URL, exc: BaseException) -> DatabaseUnavailable:
    """Turn a connection failure into the one-line `DatabaseUnavailable` the CLI prints."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = detail[0] if detail else type(exc).__name__
    return DatabaseUnavailable(f"cannot reach the database at {_safe(url)}: {reason}")
