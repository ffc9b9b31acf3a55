"""The daily cap holds across a real SIGKILL, on SQLite and PostgreSQL.

With no gap between sends, the first tick plans the whole day's cap at once (QUEUED rows).
The process is killed (SIGKILL, from inside the SMTP sink, right after its n-th 250) with
most of them still queued; the next process hands those on, and must count them against
the cap when it rebuilds its pacer: before, it planned a fresh day's worth on top (a cap of
1,000 sent 1,384 that day).
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.kill_helpers import (
    Database,
    KillPoint,
    KillSink,
    ServiceProcess,
    Workspace,
    wait_until,
)
from tests.integration.test_kill_never_twice import _database_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAP = 12
LEADS = 30  # more than a day's cap: the rest waits for tomorrow
KILL_AFTER = 4  # the 4th message's 250: eight of the day's twelve are still queued
DEADLINE_S = 120.0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_daily_cap_holds_across_a_sigkill(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, _database_url(backend, request, tmp_path), seed=7, leads=LEADS, daily_cap=CAP)
    workspace.prepare()
    workspace.cli("migrate")
    workspace.create_campaign()
    started = datetime.now(UTC).date()
    sink = KillSink()
    processes: list[ServiceProcess] = []
    try:
        lifetime, port = sink.listen(KillPoint("after_250", KILL_AFTER, signal.SIGKILL))
        first = ServiceProcess(workspace, port, "first")
        lifetime.service = first
        processes.append(first)
        wait_until(
            lambda: bool(sink.kills), DEADLINE_S, lambda: f"the kill ({len(sink.messages)} received)\n{first.output()}"
        )

        lifetime, port = sink.listen()  # never killed
        second = ServiceProcess(workspace, port, "second")
        lifetime.service = second
        processes.append(second)
        # Everything the day allows arrives; then many ticks pass without anything more.
        db = Database(workspace.database_url)

        def never_arrived() -> int:
            """Emails claimed by the killed process that never reached the sink: the kill
            can land after its next claim (SENDING, then UNCONFIRMED). They count against the
            cap (the service cannot know they did not go out) and are never sent again."""
            received = {m.message_id for m in sink.messages}
            rows, _ = db.rows()
            return sum(1 for r in rows if r.status == "UNCONFIRMED" and r.message_id not in received)

        wait_until(
            lambda: len(sink.messages) + never_arrived() >= CAP,
            DEADLINE_S,
            lambda: f"{CAP} messages, got {len(sink.messages)}\n{second.output()}",
        )
        ticks = second.output(tail=10**7).count('"tick scheduled"')
        wait_until(
            lambda: second.output(tail=10**7).count('"tick scheduled"') >= ticks + 15,
            DEADLINE_S,
            lambda: f"15 more ticks\n{second.output()}",
        )
        copies = Counter(m.message_id for m in sink.messages)
        assert max(copies.values()) == 1, "a message arrived twice"
        days = {started, datetime.now(UTC).date()}  # the campaign's day is the UTC day
        # Exactly the cap, unless the test ran across midnight (then two days' worth at most).
        counted = len(sink.messages) + never_arrived()
        db.close()
        assert counted == CAP if len(days) == 1 else counted <= 2 * CAP, (len(sink.messages), counted)
    finally:
        for service in processes:
            service.stop()
        sink.close()
