"""`with_also`: what a caller adds to a repository's change (its audit row) is in the change's
transaction: it sees the change's result, and when either fails neither is kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.work import run_read, run_write, with_also


def _insert(conn: Connection) -> int:
    conn.execute(text("INSERT INTO change (x) VALUES (7)"))
    return 7


def _count(table: str) -> Callable[[Connection], int]:
    return lambda conn: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.mark.anyio
async def test_also_runs_after_the_change_with_its_result_and_fails_with_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE change (x INTEGER)"))
            await conn.execute(text("CREATE TABLE line (x INTEGER)"))

        def line(conn: Connection, result: int) -> None:
            assert conn.execute(text("SELECT count(*) FROM change")).scalar_one() == 1  # after the change
            conn.execute(text("INSERT INTO line (x) VALUES (:x)"), {"x": result})

        assert await run_write(engine, with_also(_insert, line)) == 7
        assert await run_read(engine, lambda c: c.execute(text("SELECT x FROM line")).scalar_one()) == 7

        def broken(conn: Connection, result: int) -> None:
            raise RuntimeError("the audit row could not be written")

        with pytest.raises(RuntimeError):
            await run_write(engine, with_also(_insert, broken))
        # Neither the change nor its line: the change is not kept without its row.
        assert await run_read(engine, _count("change")) == 1
        assert await run_read(engine, _count("line")) == 1

        def refused(conn: Connection) -> int:
            _insert(conn)
            raise ValueError("refused")

        with pytest.raises(ValueError):
            await run_write(engine, with_also(refused, line))
        # A refused change records nothing.
        assert await run_read(engine, _count("line")) == 1
        assert with_also(_insert, None) is _insert
    finally:
        await engine.dispose()
