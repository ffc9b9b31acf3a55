"""Units of work: a plain function over a SQLAlchemy `Connection`, run as one transaction.

    result = await run_write(engine, lambda conn: conn.execute(statement, params).rowcount)

Hot paths are written this way instead of `async with engine.begin()` plus one `await`
per statement, because on SQLite each awaited statement is three or four trips between
the event loop and aiosqlite's thread (cursor, execute, fetch, close), and those trips,
not SQLite, were most of a transaction's cost (a four-statement transaction: ~1.5 ms
awaited statement by statement, ~0.2 ms as one unit of work, measured on these machines).

- PostgreSQL (asyncpg): the function runs through SQLAlchemy's own bridge,
  `AsyncConnection.run_sync`, on a connection from the engine's pool. A read runs in
  autocommit (no BEGIN and ROLLBACK round trips): under READ COMMITTED, PostgreSQL's
  default and ours, each statement sees its own snapshot inside a transaction as well, so
  a transaction would add trips and no consistency. Without a transaction to roll back, a
  read that tries to write is refused before the statement is sent (only SELECT runs).
- SQLite (aiosqlite): the function runs whole inside aiosqlite's worker thread, on the
  very `sqlite3` connection aiosqlite holds for the engine's one pooled connection, through
  a synchronous SQLAlchemy engine over that connection: one trip per unit of work, and
  still one connection, so no second writer ever waits on SQLite's lock. This uses two
  private aiosqlite attributes (`Connection._execute`, `Connection._conn`); a test fails
  if they change, and anything else falls back to `run_sync`.

The function must not await anything: it is plain synchronous SQLAlchemy Core.
Context variables (the actor holding the unit of work, its log context) go with it.

Each unit of work is a kill point (`aicmo_actors.runtime.killpoints`) just before it starts
and just after it returned, outside the connection: a simulated process that dies there
holds no connection, and "committed, then died before telling anyone" is one of them.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from aicmo_actors.runtime import killpoints
from aicmo_actors.storage import changes

__all__ = ["Also", "ReadOnlyViolation", "run_read", "run_write", "run_write_if", "with_also"]

T = TypeVar("T")

#: What a caller adds to a repository's change, in the change's own transaction:
#: `also(conn, result)`, after the change and with its result. The audit row of a change made
#: from the API, the web app or the command line is written so (`identity.AuditActor.line`):
#: a crash can never keep the change and lose its row, and a refused change records nothing.
Also = Callable[[Connection, T], object]

#: Engines over aiosqlite's connections, by the id of the `sqlite3` connection they wrap.
_BRIDGES: dict[int, tuple[Any, Engine]] = {}


async def run_write(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """Run `work(conn)` in one transaction that takes the write lock, and commit it."""
    if killpoints.hook is not None:
        return await _killable(engine, work, write=True)
    return await _run(engine, work, write=True)


def with_also(work: Callable[[Connection], T], also: Also[T] | None) -> Callable[[Connection], T]:
    """`work`, then `also(conn, result)` in the same unit of work (`also` None: `work` itself)."""
    if also is None:
        return work

    def both(conn: Connection) -> T:
        result = work(conn)
        also(conn, result)
        return result

    return both


async def run_read(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """Run `work(conn)` in one read transaction (rolled back, nothing is written)."""
    if killpoints.hook is not None:
        return await _killable(engine, work, write=False)
    return await _run(engine, work, write=False)


async def run_write_if(
    engine: AsyncEngine, due: Callable[[Connection], bool], work: Callable[[Connection], T], nothing: T
) -> T:
    """`work` in a write transaction only when `due` (one read) finds it has something to do,
    else `nothing`. For what a tick asks every time and mostly finds idle: a write transaction
    takes the writer's lock on SQLite, and is a commit the service pays for. `work` must check
    again what `due` found (it runs in another transaction)."""
    if not await run_read(engine, due):
        return nothing
    return await run_write(engine, work)


async def _killable(engine: AsyncEngine, work: Callable[[Connection], T], *, write: bool) -> T:
    await killpoints.checkpoint(killpoints.STORE)
    result = await _run(engine, work, write=write)
    # After `_run` returned: the connection is back in the pool (a process that dies here
    # holds none), and a write is committed.
    await killpoints.checkpoint(killpoints.COMMITTED if write else killpoints.READ)
    return result


async def _run(engine: AsyncEngine, work: Callable[[Connection], T], *, write: bool) -> T:
    if engine.dialect.name == "sqlite":
        async with engine.connect() as aconn:
            driver = await _aiosqlite_of(aconn)
            if driver is not None:
                bridge = _bridge(driver, engine)
                context = contextvars.copy_context()
                result: T = await driver._execute(context.run, _in_thread, bridge, work, write)
                return result
            return await _run_sync(aconn, work, write)
    async with engine.connect() as aconn:
        return await _run_sync(aconn, work, write)


async def _run_sync(aconn: AsyncConnection, work: Callable[[Connection], T], write: bool) -> T:
    if write:
        async with aconn.begin():
            result = await aconn.run_sync(work)
        # Committed: what it wrote is old news for every read kept before (`storage.changes`).
        if aconn.sync_connection is not None:
            changes.committed(changes.written_in(aconn.sync_connection))
        return result
    if aconn.dialect.name == "postgresql":
        _guard_reads(aconn.sync_engine)
        reader = await aconn.execution_options(isolation_level="AUTOCOMMIT", **{_READ_ONLY: True})
        return await reader.run_sync(work)
    try:
        return await aconn.run_sync(work)
    finally:
        await aconn.rollback()


#: Execution option marking a PostgreSQL read (autocommit): only SELECT may run on it.
_READ_ONLY = "aicmo_read_only"
_GUARDED: weakref.WeakSet[Engine] = weakref.WeakSet()


class ReadOnlyViolation(RuntimeError):
    """A read unit of work tried to run something other than a SELECT."""


def _guard_reads(engine: Engine) -> None:
    if engine in _GUARDED:
        return

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _only_select(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> Any:
        if conn.get_execution_options().get(_READ_ONLY) and statement.lstrip()[:6].upper() != "SELECT":
            raise ReadOnlyViolation(f"a read unit of work tried to write: {statement.split(None, 1)[0]} ...")
        return statement, parameters

    _GUARDED.add(engine)


async def _aiosqlite_of(aconn: AsyncConnection) -> aiosqlite.Connection | None:
    raw = await aconn.get_raw_connection()
    driver = raw.driver_connection
    if (
        isinstance(driver, aiosqlite.Connection)
        and getattr(driver, "_conn", None) is not None
        and hasattr(driver, "_execute")
    ):
        return driver
    return None


def _bridge(driver: aiosqlite.Connection, engine: AsyncEngine) -> Engine:
    """A synchronous engine over the `sqlite3` connection aiosqlite holds (made once each)."""
    raw = driver._conn
    found = _BRIDGES.get(id(raw))
    if found is not None and found[0] is raw:
        return found[1]
    bridge = create_engine(engine.url.set(drivername="sqlite"), creator=lambda: raw, poolclass=StaticPool)

    @event.listens_for(bridge, "begin")
    def _on_begin(conn: Connection) -> None:
        # As on the async engine: our own BEGIN, so transactions and savepoints behave.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("aicmo_write") else "BEGIN DEFERRED")

    _BRIDGES[id(raw)] = (raw, bridge)  # replaces one left by a closed connection with the same id
    if len(_BRIDGES) > 64:  # connections come and go with engines: forget the oldest
        del _BRIDGES[next(iter(_BRIDGES))]
    return bridge


def _in_thread(bridge: Engine, work: Callable[[Connection], T], write: bool) -> T:
    with bridge.connect() as conn:
        conn.info["aicmo_write"] = write
        with conn.begin() as transaction:
            result = work(conn)
            if not write:
                transaction.rollback()
        if write:  # committed: what it wrote is old news for every read kept before (`storage.changes`)
            changes.committed(changes.written_in(conn))
        return result
