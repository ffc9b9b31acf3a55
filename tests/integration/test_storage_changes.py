"""Kept reads (`aicmo_actors.storage.changes`) on SQLite and PostgreSQL: an answer is kept only
while no table it read is written, and only where this process is the database's only writer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.tables import cam_cycle_reports, cam_leads
from aicmo_actors.storage import changes
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.work import run_write

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

_R = cam_cycle_reports


@pytest.fixture(autouse=True)
def sole_writer() -> Iterator[None]:
    with changes.as_sole_writer():
        yield


class Counted:
    """A read that counts how often it really ran."""

    def __init__(self, query: sa.Select[tuple[int]] | sa.TextClause) -> None:
        self.query, self.runs = query, 0

    def __call__(self, conn: Connection) -> int:
        self.runs += 1
        return int(conn.execute(self.query).scalar_one())


def _report(conn: Connection, seq: int) -> None:
    conn.execute(
        _R.insert().values(
            tick_seq=seq,
            worker="test",
            started_at=sa.func.current_timestamp(),
            finished_at=sa.func.current_timestamp(),
            duration_ms=0,
            counts={},
            errors=[],
        )
    )


async def test_an_answer_is_kept_until_a_table_it_read_is_written(engine: AsyncEngine) -> None:
    cache = ReadCache(engine)
    count = Counted(sa.select(sa.func.count()).select_from(_R))
    assert await cache.read("reports", count) == 0
    assert await cache.read("reports", count) == 0
    assert count.runs == 1  # kept

    await run_write(engine, lambda conn: conn.execute(sa.delete(cam_leads)))  # another table
    assert await cache.read("reports", count) == 0 and count.runs == 1

    await run_write(engine, lambda conn: _report(conn, 1))
    assert await cache.read("reports", count) == 1 and count.runs == 2
    assert await cache.read("reports", count) == 1 and count.runs == 2


async def test_a_table_read_in_a_subquery_counts(engine: AsyncEngine) -> None:
    cache = ReadCache(engine)
    query = sa.select(sa.func.count()).where(sa.exists(sa.select(_R.c.id).where(_R.c.worker == "test")))
    nested = Counted(query)
    assert await cache.read("nested", nested) == 0
    await run_write(engine, lambda conn: _report(conn, 1))
    assert await cache.read("nested", nested) == 1 and nested.runs == 2


async def test_a_write_rolled_back_or_in_text_sql_and_a_text_read(engine: AsyncEngine) -> None:
    cache = ReadCache(engine)
    count = Counted(sa.select(sa.func.count()).select_from(_R))
    await cache.read("reports", count)

    def broken(conn: Connection) -> None:
        _report(conn, 1)
        raise ValueError("halfway")

    with pytest.raises(ValueError):
        await run_write(engine, broken)
    assert await cache.read("reports", count) == 0  # nothing committed: still right

    # A write in text SQL names its table in the statement, and is seen.
    await run_write(
        engine,
        lambda conn: conn.execute(
            sa.text(
                "INSERT INTO cam_cycle_reports (tick_seq, worker, started_at, finished_at, duration_ms, counts, "
                "errors) VALUES (2, 'test', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, '{}', '[]')"
            )
        ),
    )
    assert await cache.read("reports", count) == 1

    # A read in text SQL names no table SQLAlchemy knows: never kept.
    text = Counted(sa.text("SELECT count(*) FROM cam_cycle_reports"))
    await cache.read("text", text)
    await cache.read("text", text)
    assert text.runs == 2


async def test_a_write_made_outside_a_unit_of_work_is_seen_too(engine: AsyncEngine) -> None:
    cache = ReadCache(engine)
    count = Counted(sa.select(sa.func.count()).select_from(_R))
    await cache.read("reports", count)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: _report(sync, 3))
    assert await cache.read("reports", count) == 1


async def test_without_being_the_only_writer_every_read_reads(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ReadCache(engine)
    count = Counted(sa.select(sa.func.count()).select_from(_R))
    monkeypatch.setattr(changes, "_sole_writer", False)  # as in the service
    await cache.read("reports", count)
    await cache.read("reports", count)
    assert count.runs == 2


async def test_a_read_waits_for_the_kept_earliest_time_and_asks_nothing_before(engine: AsyncEngine) -> None:
    """`read_if` with `earliest` and `come`: a tick before the first due moment reads nothing,
    the kept moment is read again only after its table is written, and it comes back aware
    (UTC) on both backends, so it compares with the clock."""
    cache = ReadCache(engine)
    at = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    first_runs = []

    def first(conn: Connection) -> datetime | None:
        first_runs.append(1)
        found: datetime | None = earliest(_R.c.started_at, _R.c.worker == "test")(conn)
        return found

    due = Counted(sa.select(sa.func.count()).select_from(_R).where(_R.c.worker == "test"))

    async def tick(now: datetime) -> int:
        return await cache.read_if("due", first, come(now), due, -1)

    assert await tick(at) == -1 and due.runs == 0  # nothing at all

    def report(conn: Connection) -> None:
        values = {"tick_seq": 1, "worker": "test", "started_at": at, "finished_at": at}
        conn.execute(_R.insert().values(**values, duration_ms=0, counts={}, errors=[]))

    await run_write(engine, report)
    assert await tick(at - timedelta(hours=2)) == -1
    assert await tick(at - timedelta(hours=1)) == -1
    assert due.runs == 0 and len(first_runs) == 2  # the first moment read once since the write
    kept = await cache.read("due", first)
    assert kept == at and kept.tzinfo is not None and len(first_runs) == 2

    assert await tick(at) == 1 and due.runs == 1  # its moment has come: read
    assert await tick(at + timedelta(hours=1)) == 1 and due.runs == 2 and len(first_runs) == 2

    await run_write(engine, lambda conn: conn.execute(_R.update().values(worker="done")))
    assert await tick(at + timedelta(hours=2)) == -1 and len(first_runs) == 3 and due.runs == 2


async def test_statements_built_again_each_time_keep_their_own_tables(engine: AsyncEngine) -> None:
    """The tables a statement reads are worked out once per compiled statement: two reads of
    different tables, each built again for every call (as a tick builds them), each kept until
    its own table is written, however often they ran before."""
    cache = ReadCache(engine)
    reports = Counted(sa.select(sa.func.count()).select_from(_R))
    leads = Counted(sa.select(sa.func.count()).select_from(cam_leads))
    for _ in range(3):
        reports.query = sa.select(sa.func.count()).select_from(_R)  # a new object, the same statement
        leads.query = sa.select(sa.func.count()).select_from(cam_leads)
        assert await cache.read("reports", reports) == 0
        assert await cache.read("leads", leads) == 0
    assert (reports.runs, leads.runs) == (1, 1)
    for seq in (1, 2):
        await run_write(engine, lambda conn, seq=seq: _report(conn, seq))
        assert await cache.read("reports", reports) == seq
        assert await cache.read("leads", leads) == 0
    assert (reports.runs, leads.runs) == (3, 1)
