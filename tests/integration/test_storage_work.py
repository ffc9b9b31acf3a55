"""Units of work (`aicmo_actors.storage.work`) on SQLite and PostgreSQL: one transaction
each, committed or rolled back as a whole, next to ordinary async use of the same engine."""

from __future__ import annotations

import asyncio
import contextvars

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.storage import work
from aicmo_actors.storage.work import run_read, run_write

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def _insert(conn: Connection, seq: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO cam_cycle_reports (tick_seq, worker, started_at, finished_at, duration_ms, counts, errors) "
            "VALUES (:seq, 'test', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, '{}', '[]')"
        ),
        {"seq": seq},
    )


def _count(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM cam_cycle_reports WHERE worker = 'test'")).scalar_one())


async def test_a_write_commits_as_a_whole_and_a_failing_one_leaves_nothing(engine: AsyncEngine) -> None:
    def two(conn: Connection) -> str:
        _insert(conn, 1)
        _insert(conn, 2)
        return "done"

    assert await run_write(engine, two) == "done"
    assert await run_read(engine, _count) == 2

    def broken(conn: Connection) -> None:
        _insert(conn, 3)
        raise ValueError("halfway")

    with pytest.raises(ValueError, match="halfway"):
        await run_write(engine, broken)
    assert await run_read(engine, _count) == 2  # the first insert of the broken unit is gone
    # Ordinary async use of the same engine sees the same rows.
    async with engine.connect() as conn:
        seen = (
            await conn.execute(sa.text("SELECT count(*) FROM cam_cycle_reports WHERE worker = 'test'"))
        ).scalar_one()
    assert seen == 2


async def test_a_read_writes_nothing(engine: AsyncEngine) -> None:
    def sneaky(conn: Connection) -> int:
        _insert(conn, 9)
        return _count(conn)

    if engine.dialect.name == "postgresql":
        # Reads run in autocommit there (no BEGIN/ROLLBACK round trips): a write is refused.
        with pytest.raises(work.ReadOnlyViolation, match="tried to write: INSERT"):
            await run_read(engine, sneaky)
    else:
        assert await run_read(engine, sneaky) == 1  # it sees its own write ...
    assert await run_read(engine, _count) == 0  # ... which is rolled back (or never ran)


async def test_a_pooled_postgres_connection_is_pinged_only_after_idling(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping round trip on a connection in steady use; one idle long enough is pinged, and
    one found dead is replaced before the unit of work runs."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's pool only")
    from aicmo_actors.storage import engine as engines

    pings: list[int] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda dbapi: pings.append(1) or real_ping(dbapi))
    for _ in range(3):
        assert await run_read(engine, _count) == 0
    assert pings == []
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_S", 0.0)
    # Kill a pooled connection's server process behind the pool's back (from a second
    # connection, held meanwhile; the pool hands idle connections out first in, first out).
    async with engine.connect() as other:
        pid = await run_read(engine, lambda conn: conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        killer = await other.execution_options(isolation_level="AUTOCOMMIT")
        await killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    pings.clear()
    assert await run_write(engine, lambda conn: _insert(conn, 1)) is None
    assert pings  # pinged, found dead, replaced: the write went through
    assert await run_read(engine, _count) == 1


async def test_many_units_at_once_all_land(engine: AsyncEngine) -> None:
    await asyncio.gather(*(run_write(engine, lambda conn, n=n: _insert(conn, n)) for n in range(40)))
    assert await run_read(engine, _count) == 40


async def test_context_variables_go_with_the_unit(engine: AsyncEngine) -> None:
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    marker.set("the caller's")
    assert await run_read(engine, lambda conn: marker.get()) == "the caller's"


async def test_sqlite_units_run_in_aiosqlites_thread_not_through_the_fallback(tmp_path: object) -> None:
    """The bridge needs two private aiosqlite attributes; if they go, this fails (and units
    of work quietly take the slower run_sync path instead of breaking)."""
    from aicmo_actors.storage.engine import make_engine

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/bridge.db")
    try:
        async with engine.connect() as aconn:
            driver = (await aconn.get_raw_connection()).driver_connection
            assert isinstance(driver, aiosqlite.Connection)
            assert callable(getattr(driver, "_execute", None))
            assert driver._conn is not None
        before = len(work._BRIDGES)
        assert await run_read(engine, lambda conn: conn.dialect.driver) == "pysqlite"  # the bridge's engine
        assert len(work._BRIDGES) >= max(before, 1)
    finally:
        await engine.dispose()
