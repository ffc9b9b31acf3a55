"""A minimal worker for the two-process lease tests: acquire (or stand by), then write fenced effects.

    python -m tests.integration.lease_worker URL HOLDER --ttl 1.5 --tick 0.1 [--step]

Prints one JSON object per line: started, standby, acquired, wrote, fenced_out, lost.
Each tick it first writes an effect row (fenced), then renews, so a worker resumed after a
pause tries a write before it can learn it lost the lease: the fence must refuse it.
With --step it waits for a line on stdin before each tick (the test decides when it acts,
and can stop it while it holds no transaction). Exit codes: 3 fenced out, 4 lease lost.
This is test code: it reads the wall clock, which module code never does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.lease import WorkerLease

effects_metadata = MetaData()
#: A scratch table standing in for an effect (an email marked sent, an alert delivered).
lease_test_effects = Table(
    "lease_test_effects",
    effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("holder", String(200), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
)


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def now() -> datetime:
    return datetime.now(UTC)


async def run(url: str, holder: str, ttl: float, tick: float, step: bool) -> int:
    engine = make_engine(url)
    lease = WorkerLease(engine, holder=holder, ttl=ttl)
    try:
        emit("started", holder=holder)
        said_standby = False
        while not await lease.acquire(now()):
            if not said_standby:
                emit("standby")
                said_standby = True
            await asyncio.sleep(tick)
        token = lease.token
        emit("acquired", token=token)
        seq = 0
        while True:
            if step:
                if not await asyncio.to_thread(sys.stdin.readline):
                    return 0
            else:
                await asyncio.sleep(tick)
            row = {"holder": holder, "token": token, "seq": seq}
            async with engine.begin() as conn:
                written = (await conn.execute(lease.fenced_insert(lease_test_effects, row))).rowcount
            if written == 0:
                emit("fenced_out", token=token, seq=seq)
                return 3
            emit("wrote", token=token, seq=seq)
            seq += 1
            if not await lease.renew(now()):
                emit("lost", token=token)
                return 4
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("holder")
    parser.add_argument("--ttl", type=float, default=1.5)
    parser.add_argument("--tick", type=float, default=0.1)
    parser.add_argument("--step", action="store_true")
    args = parser.parse_args(argv)
    # Stdout carries only our JSON lines: logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    return asyncio.run(run(args.url, args.holder, args.ttl, args.tick, args.step))


if __name__ == "__main__":
    sys.exit(main())
