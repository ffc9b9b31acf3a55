"""The worker lease across real processes (tests/integration/lease_worker.py), on both backends.

1. A standby takes over within the lease time after the active worker is SIGKILLed.
   (The wait is bounded by the lease time plus slack for a loaded machine.)
2. A worker paused (SIGSTOP) until a standby took over, then resumed (SIGCONT), has its next
   effect write refused by the fence and stops.
Waiting is by polling the workers' output against a deadline, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from tests.integration.lease_worker import effects_metadata, lease_test_effects

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TTL_S = 1.5
TICK_S = 0.1
#: The lease of the paused-holder test's stepping worker (see there).
STEPPING_TTL_S = 4.0
#: Generous bounds for a loaded 2-core CI machine; they only cap how long a failure takes.
START_DEADLINE_S = 30.0
TAKEOVER_SLACK_S = 10.0


class Worker:
    """A lease_worker subprocess whose JSON lines are read by a thread into a queue."""

    def __init__(self, url: str, holder: str, *, step: bool = False, ttl: float = TTL_S) -> None:
        args = [sys.executable, "-m", "tests.integration.lease_worker", url, holder]
        args += ["--ttl", str(ttl), "--tick", str(TICK_S)] + (["--step"] if step else [])
        self.holder = holder
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # A file, not a pipe: nobody reads stderr while the worker runs, and a full pipe
            # would block it.
            stderr=self.stderr,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"event": "<not json>", "line": line})

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(item)
            if item["event"] == event:
                return item
        raise AssertionError(
            f"{self.holder}: no {event!r} within {timeout}s; saw {self.seen}; "
            f"exit={self.proc.poll()} stderr={self._stderr()}"
        )

    def _stderr(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    def step(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


async def _prepare(url: str) -> None:
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(effects_metadata.create_all)
    finally:
        await engine.dispose()


async def _effects(url: str) -> list[tuple[str, int, int]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            t = lease_test_effects.c
            rows = await conn.execute(select(t.holder, t.token, t.seq).order_by(t.id))
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


def test_standby_takes_over_after_sigkill(database_url: str, workers: list[Worker]) -> None:
    asyncio.run(_prepare(database_url))
    a = Worker(database_url, "A")
    workers.append(a)
    token_a = a.wait_for("acquired", START_DEADLINE_S)["token"]
    a.wait_for("wrote", START_DEADLINE_S)
    b = Worker(database_url, "B")
    workers.append(b)
    b.wait_for("standby", START_DEADLINE_S)

    a.proc.send_signal(signal.SIGKILL)
    # The bound only caps how long a broken takeover takes to fail (B retries every tick).
    token_b = b.wait_for("acquired", TTL_S + TAKEOVER_SLACK_S)["token"]
    b.wait_for("wrote", START_DEADLINE_S)

    assert token_b > token_a
    effects = asyncio.run(_effects(database_url))
    assert {(holder, token) for holder, token, _ in effects} == {("A", token_a), ("B", token_b)}
    assert a.proc.wait(timeout=30) == -signal.SIGKILL


def test_paused_stale_holder_is_fenced_out(database_url: str, workers: list[Worker]) -> None:
    asyncio.run(_prepare(database_url))
    # A stepping worker renews only when it steps, so B must start and ask within A's lease
    # time to see it held; a new Python process can take more than TTL_S to start on a loaded
    # 2-core machine (B then found the lease free and never stood by): a longer lease here.
    a = Worker(database_url, "A", step=True, ttl=STEPPING_TTL_S)
    workers.append(a)
    token_a = a.wait_for("acquired", START_DEADLINE_S)["token"]
    a.step()
    a.wait_for("wrote", START_DEADLINE_S)
    b = Worker(database_url, "B")
    workers.append(b)
    b.wait_for("standby", START_DEADLINE_S)

    # A now waits for its next step outside any transaction: freeze it there.
    os.kill(a.proc.pid, signal.SIGSTOP)
    token_b = b.wait_for("acquired", STEPPING_TTL_S + TAKEOVER_SLACK_S)["token"]
    b.wait_for("wrote", START_DEADLINE_S)
    os.kill(a.proc.pid, signal.SIGCONT)
    a.step()

    refused = a.wait_for("fenced_out", START_DEADLINE_S)
    assert refused["token"] == token_a < token_b
    assert a.proc.wait(timeout=30) == 3
    effects = asyncio.run(_effects(database_url))
    assert [row for row in effects if row[0] == "A"] == [("A", token_a, 0)]
    assert all(token == token_b for holder, token, _ in effects if holder == "B")
