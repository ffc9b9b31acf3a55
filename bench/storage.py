"""Storage benchmark: idempotent outbound inserts per second through the storage layer.

    python -m bench storage [--rows N] [--batch B] [--repeat K] [--pg-url URL]

Writes N cam_outbound_emails rows in transactions of B rows with `insert_ignore`
(INSERT ... ON CONFLICT DO NOTHING through SQLAlchemy) on SQLite and PostgreSQL, and on
PostgreSQL the same rows with raw asyncpg `executemany` as the baseline. Each figure is the
median of K runs, the two PostgreSQL methods interleaved. Scratch databases are created and
removed. Last line of stdout: one JSON object with orm_per_s_sqlite, orm_per_s_pg,
raw_pg_per_s and ratio_pg (orm / raw, target >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.tables import cam_campaigns, cam_leads, cam_outbound_emails
from aicmo_actors.storage.engine import make_engine, parse_url
from aicmo_actors.storage.insert import insert_ignore
from aicmo_actors.storage.schema import upgrade

DEFAULT_PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
campaigns = cam_campaigns
leads = cam_leads
outbound = cam_outbound_emails

COLUMNS = (
    "lead_id",
    "campaign_id",
    "step",
    "mailbox",
    "recipient",
    "subject",
    "status",
    "attempts",
    "message_id",
    "idempotency_key",
    "queued_at",
)
RAW_INSERT = (
    f"INSERT INTO cam_outbound_emails ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))}) ON CONFLICT DO NOTHING"
)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _prepare(engine: AsyncEngine, n: int) -> list[dict[str, Any]]:
    """A campaign with `n` leads; returns one outbound row per lead (step 1)."""
    async with engine.begin() as conn:
        campaign_id = (
            await conn.execute(
                insert(campaigns)
                .values(name="bench", spec={}, spec_hash="-", created_at=T0, updated_at=T0)
                .returning(campaigns.c.id)
            )
        ).scalar_one()
        await insert_ignore(
            conn,
            leads,
            [
                {
                    "campaign_id": campaign_id,
                    "email": f"lead{i}@example.com",
                    "email_domain": "example.com",
                    "created_at": T0,
                    "updated_at": T0,
                }
                for i in range(n)
            ],
        )
        lead_ids = (await conn.execute(select(leads.c.id).order_by(leads.c.id))).scalars().all()
    return [
        {
            "lead_id": lead_id,
            "campaign_id": campaign_id,
            "step": 1,
            "mailbox": "sales@agency.test",
            "recipient": f"lead{lead_id}@example.com",
            "subject": "Quick question",
            "status": "QUEUED",
            "attempts": 0,
            "message_id": f"<{lead_id}.1.bench@agency.test>",
            "idempotency_key": f"bench:{lead_id}:1",
            "queued_at": T0 + timedelta(seconds=lead_id),
        }
        for lead_id in lead_ids
    ]


def _chunks(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def _clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(outbound))


async def _orm_run(engine: AsyncEngine, rows: list[dict[str, Any]], batch: int) -> float:
    await _clear(engine)
    started = time.perf_counter()
    new = 0
    for chunk in _chunks(rows, batch):
        async with engine.begin() as conn:
            new += await insert_ignore(conn, outbound, chunk)
    elapsed = time.perf_counter() - started
    assert new == len(rows), f"expected {len(rows)} new rows, got {new}"
    return len(rows) / elapsed


async def _replay_run(engine: AsyncEngine, rows: list[dict[str, Any]], batch: int) -> float:
    """The same rows again (a replayed tick): every one a conflict, nothing written."""
    started = time.perf_counter()
    for chunk in _chunks(rows, batch):
        async with engine.begin() as conn:
            assert await insert_ignore(conn, outbound, chunk) == 0
    return len(rows) / (time.perf_counter() - started)


async def _raw_run(conn: asyncpg.Connection, engine: AsyncEngine, rows: list[dict[str, Any]], batch: int) -> float:
    await _clear(engine)
    tuples = [tuple(row[c] for c in COLUMNS) for row in rows]
    started = time.perf_counter()
    for chunk in _chunks(tuples, batch):
        async with conn.transaction():
            await conn.executemany(RAW_INSERT, chunk)
    elapsed = time.perf_counter() - started
    count = await conn.fetchval("SELECT count(*) FROM cam_outbound_emails")
    assert count == len(rows), f"raw run wrote {count} rows, expected {len(rows)}"
    return len(rows) / elapsed


async def _median(repeat: int, run: Callable[[], Awaitable[float]]) -> float:
    return statistics.median([await run() for _ in range(repeat)])


async def bench_sqlite(n: int, batch: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="aicmo-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade(url)
        engine = make_engine(url)
        try:
            rows = await _prepare(engine, n)
            orm = await _median(repeat, lambda: _orm_run(engine, rows, batch))
            replay = await _replay_run(engine, rows, batch)
        finally:
            await engine.dispose()
    return {"orm_per_s_sqlite": orm, "replay_per_s_sqlite": replay}


async def _asyncpg(url: URL) -> asyncpg.Connection:
    return await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        database=url.database,
        timeout=10,
    )


async def bench_pg(server: URL, n: int, batch: int, repeat: int) -> dict[str, float]:
    name = f"aicmo_bench_{os.getpid()}"
    admin = await _asyncpg(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = server.set(database=name)
        engine = make_engine(url)
        raw = await _asyncpg(url)
        try:
            await upgrade(url)
            rows = await _prepare(engine, n)
            orm_runs: list[float] = []
            raw_runs: list[float] = []
            for _ in range(repeat):  # interleaved, so drift in the machine hits both alike
                orm_runs.append(await _orm_run(engine, rows, batch))
                raw_runs.append(await _raw_run(raw, engine, rows, batch))
            await _orm_run(engine, rows, batch)
            replay = await _replay_run(engine, rows, batch)
        finally:
            await raw.close()
            await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {
        "orm_per_s_pg": statistics.median(orm_runs),
        "raw_pg_per_s": statistics.median(raw_runs),
        "replay_per_s_pg": replay,
    }


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {"rows": args.rows, "batch": args.batch, "repeat": args.repeat}
    progress(f"sqlite: {args.rows} rows in batches of {args.batch}, median of {args.repeat}")
    result.update(await bench_sqlite(args.rows, args.batch, args.repeat))
    server = parse_url(args.pg_url)
    progress(f"postgresql: same, at {server.render_as_string(hide_password=True)}")
    code = 0
    try:
        result.update(await bench_pg(server, args.rows, args.batch, args.repeat))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        progress(f"postgresql unavailable: {exc}")
        result.update(orm_per_s_pg=None, raw_pg_per_s=None, pg_error=str(exc))
        code = 1
    if result.get("raw_pg_per_s"):
        result["ratio_pg"] = result["orm_per_s_pg"] / result["raw_pg_per_s"]
    else:
        result["ratio_pg"] = None
    return result, code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench storage", description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per run (default 20000)")
    parser.add_argument("--batch", type=int, default=1_000, help="rows per transaction")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("AICMO_TEST_DATABASE_URL") or DEFAULT_PG_SERVER,
        help="PostgreSQL server to create a scratch database on (default: "
        "AICMO_TEST_DATABASE_URL, else the local server)",
    )
    args = parser.parse_args(argv)
    result, code = asyncio.run(run(args))
    for key, value in result.items():
        if isinstance(value, float):
            progress(f"  {key:<20} {value:>12,.1f}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
    return code
