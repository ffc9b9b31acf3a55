"""Units of work on SQLite: what one `run_read` or `run_write` costs, against the same statement
through the `sqlite3` module directly (the baseline, measured in the same run).

    python -m bench units [--rows N] [--calls C] [--repeat K]

A scratch database migrated to head holds a campaign and N leads. Each figure is the median
over K rounds of C calls, in microseconds per call:

- `unit_empty_us`: a read unit of work that runs no statement (the trip to aiosqlite's thread,
  the connection from the pool, BEGIN and ROLLBACK);
- `unit_read_us`: a lead by id, its statement built once (bound parameter), as the hot paths do;
- `unit_read_built_us`: the same read with the statement built for the call, as most code does;
- `unit_write_us`: a lead's `updated_at` set by id in a write unit (BEGIN IMMEDIATE, COMMIT);
- `raw_read_us`, `raw_write_us`: the same SQL through `sqlite3` on the same file, in the same
  transactions, no thread, no SQLAlchemy.

Ratios: `ratio_read` (`unit_read_us` / `raw_read_us`), `ratio_read_built`, `ratio_write`,
`ratio_empty` (`unit_empty_us` / `raw_read_us`). The whole business's quarter runs hundreds of
thousands of units of work: this is their fixed price. No target: a measure for issue 20.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aicmo_actors.cam.tables import cam_leads
from aicmo_actors.cli.storage import _positive_int as positive
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from aicmo_actors.storage.work import run_read, run_write
from bench.storage import _prepare as prepare_leads

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_L = cam_leads
#: The hot paths' way: built once, the id bound per call.
_BY_ID = sa.select(_L).where(_L.c.id == sa.bindparam("lead_id"))
_TOUCH = sa.update(_L).where(_L.c.id == sa.bindparam("lead_id")).values(updated_at=sa.bindparam("at"))


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _per_call(calls: int, ids: list[int], one: Callable[[int, int], Awaitable[Any]]) -> float:
    """Microseconds per call of `one(n, lead_id)` over `calls` calls."""
    started = time.perf_counter()
    for n in range(calls):
        await one(n, ids[n % len(ids)])
    return (time.perf_counter() - started) * 1e6 / calls


def _raw_per_call(calls: int, ids: list[int], one: Callable[[int, int], Any]) -> float:
    started = time.perf_counter()
    for n in range(calls):
        one(n, ids[n % len(ids)])
    return (time.perf_counter() - started) * 1e6 / calls


async def run(rows: int, calls: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aicmo-bench-units-") as folder:
        path = Path(folder) / "units.db"
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade(url)
        engine = make_engine(url)
        try:
            # The storage bench's campaign and leads (its outbound rows, one per lead, are not written).
            ids = [int(row["lead_id"]) for row in await prepare_leads(engine, rows)]
            columns = ", ".join(c.name for c in _L.c)
            raw = sqlite3.connect(path, isolation_level=None)  # our own BEGIN, as the engine's
            raw.execute("PRAGMA synchronous=NORMAL")  # as the engine's connections (WAL already on)
            raw.execute("PRAGMA foreign_keys=ON")

            def raw_read(n: int, lead_id: int) -> Any:
                raw.execute("BEGIN DEFERRED")
                row = raw.execute(f"SELECT {columns} FROM cam_leads WHERE id = ?", (lead_id,)).fetchone()
                raw.execute("ROLLBACK")
                return row

            def raw_write(n: int, lead_id: int) -> None:
                raw.execute("BEGIN IMMEDIATE")
                at = (T0 + timedelta(seconds=n)).isoformat()
                raw.execute("UPDATE cam_leads SET updated_at = ? WHERE id = ?", (at, lead_id))
                raw.execute("COMMIT")

            async def empty(n: int, lead_id: int) -> None:
                await run_read(engine, lambda conn: None)

            async def read(n: int, lead_id: int) -> Any:
                return await run_read(engine, lambda conn: conn.execute(_BY_ID, {"lead_id": lead_id}).first())

            async def read_built(n: int, lead_id: int) -> Any:
                def work(conn: Any) -> Any:
                    return conn.execute(sa.select(_L).where(_L.c.id == lead_id)).first()

                return await run_read(engine, work)

            async def write(n: int, lead_id: int) -> None:
                at = T0 + timedelta(seconds=n)
                await run_write(engine, lambda conn: conn.execute(_TOUCH, {"lead_id": lead_id, "at": at}))

            figures: dict[str, list[float]] = {}
            for round_ in range(repeat + 1):  # the first round warms up, uncounted
                measured = {
                    "unit_empty_us": await _per_call(calls, ids, empty),
                    "unit_read_us": await _per_call(calls, ids, read),
                    "unit_read_built_us": await _per_call(calls, ids, read_built),
                    "unit_write_us": await _per_call(calls, ids, write),
                    "raw_read_us": _raw_per_call(calls, ids, raw_read),
                    "raw_write_us": _raw_per_call(calls, ids, raw_write),
                }
                if round_:
                    for key, value in measured.items():
                        figures.setdefault(key, []).append(value)
                    progress(f"  round {round_}/{repeat}: " + ", ".join(f"{k} {v:,.0f}" for k, v in measured.items()))
            raw.close()
        finally:
            await engine.dispose()
    result: dict[str, Any] = {"rows": rows, "calls": calls, "repeat": repeat}
    result.update({key: statistics.median(values) for key, values in figures.items()})
    result["ratio_empty"] = result["unit_empty_us"] / result["raw_read_us"]
    result["ratio_read"] = result["unit_read_us"] / result["raw_read_us"]
    result["ratio_read_built"] = result["unit_read_built_us"] / result["raw_read_us"]
    result["ratio_write"] = result["unit_write_us"] / result["raw_write_us"]
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench units", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=positive, default=1_000, help="leads in the scratch database (default 1000)")
    parser.add_argument("--calls", type=positive, default=2_000, help="calls per figure and round (default 2000)")
    parser.add_argument("--repeat", type=positive, default=3, help="rounds; each figure is their median (default 3)")
    args = parser.parse_args(argv)
    progress(f"units of work on SQLite: {args.calls} calls a figure, median of {args.repeat} rounds")
    result = asyncio.run(run(args.rows, args.calls, args.repeat))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
    return 0
