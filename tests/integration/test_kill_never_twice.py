"""Never twice: `python run.py` SIGKILLed at seeded points never sends a step to a lead twice.

One run per backend (SQLite, PostgreSQL): a three-step campaign for 120 leads, every step
due as soon as the previous one went out, sent to an SMTP sink in this process (one port
per service process, so the sink knows who is talking). Service processes run one after
the other on the same database, the next one always started as a standby. The sink hands
each process a seeded kill point when it becomes the active worker and SIGKILLs it there
(see `kill_helpers.KillPoint`): between messages (EHLO of a fresh connection, MAIL, RCPT:
a row is claimed and nothing of it went out), inside DATA before the 250 (the server has
the message, the client never hears back) or right after the 250 (before the SENT
commit). The standby takes the lease once the dead one's expires and goes on. After 24
kills, once nothing is left to send, the last process gets SIGTERM. The tests then check
what the sink received against `cam_outbound_emails`.

Kills happen on events seen at the sink, never after a sleep; waits are polls against
generous deadlines that only bound how long a failure takes. A failure names its seed:
replay with AICMO_TEST_KILL_SEED=SEED pytest tests/integration/test_kill_never_twice.py

Also: SIGTERM or SIGINT while an email is in flight (once, or again while the service is
stopping, as `timeout -s INT` does: it signals the process, then its process group) stops
cleanly with exit code 0 and leaves no SENDING row.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.kill_helpers import (
    BETWEEN,
    STEPS,
    Database,
    Kill,
    KillPoint,
    KillSink,
    LeadRow,
    Received,
    Row,
    ServiceProcess,
    Workspace,
    kill_plan,
    settled,
    utc_now,
    wait_until,
)
from tests.plugins.db import empty_postgresql

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = int(os.environ.get("AICMO_TEST_KILL_SEED", "20260607"))
LEADS = 120
#: Kills per run; each one ends one service lifetime.
KILLS = 24
#: Extra kill points for processes that lose the lease (a late renewal on a loaded
#: machine) before reaching theirs: the next active process takes the next point.
SPARE = 4
#: A process is killed at its n-th event of the chosen kind, n in 1..MAX_N ...
MAX_N = 16
#: ... and the n add up to at most what is sure to be left: a kill costs at most the send
#: it interrupts (UNCONFIRMED: never sent again, but the lead's later steps still go).
BUDGET = LEADS * STEPS - (KILLS + SPARE) * STEPS
#: Bounds only: how long a broken run takes to fail on a loaded machine.
RUN_DEADLINE_S = 240.0
STOP_DEADLINE_S = 60.0


@dataclass(frozen=True)
class KillRun:
    """What one run did: the plan, the kills, what the sink got, what the database says."""

    backend: str
    seed: int
    plan: list[KillPoint]
    kills: list[Kill]
    received: list[Received]
    rows: list[Row]
    leads: list[LeadRow]
    #: Exit codes of the processes still running at the end, after SIGTERM.
    final_exits: dict[str, int]
    final_output: str

    def replay(self) -> str:
        kills = ", ".join(f"p{k.process}:{k.point}{'@' + k.message_id if k.message_id else ''}" for k in self.kills)
        return (
            f"[{self.backend}] seed={self.seed} (AICMO_TEST_KILL_SEED={SEED}); "
            f"kill points {[str(p) for p in self.plan]}; kills in order: {kills}"
        )


def _database_url(backend: str, request: pytest.FixtureRequest, root: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{root}/service.db"
    url: str = request.getfixturevalue("postgresql_database_url")
    empty_postgresql(url)
    return url


def _run_with_kills(workspace: Workspace, plan: list[KillPoint], backend: str) -> KillRun:
    sink = KillSink(plan, goal=KILLS)
    db = Database(workspace.database_url)
    processes: list[ServiceProcess] = []

    def spawn() -> None:
        lifetime, port = sink.listen()
        service = ServiceProcess(workspace, port, f"service-{lifetime.index}")
        lifetime.service = service
        processes.append(service)

    def progress() -> str:
        alive = [p.name for p in processes if p.proc.poll() is None]
        events = {f"p{life.index}:{life.point}": dict(life.events) for life in sink.lifetimes if not life.killed}
        return (
            f"kills {len(sink.kills)}/{KILLS}, {len(sink.messages)} received, alive {alive}, "
            f"SMTP events of the living {events}; seed={workspace.seed} plan={[str(p) for p in plan]}"
        )

    def done() -> bool:
        for life, service in zip(sink.lifetimes, processes, strict=True):
            code = service.proc.poll()
            if code is not None and not life.killed:
                raise AssertionError(f"{service.name} exited {code} on its own; {progress()}\n{service.output()}")
        if len(sink.kills) < KILLS:
            # One process active, the next already started as a standby: a kill costs the
            # lease time, not an interpreter start.
            for _ in range(2 - sum(1 for p in processes if p.proc.poll() is None)):
                spawn()
            return False
        rows, leads = db.rows()
        return settled(rows, leads, utc_now())

    try:
        wait_until(done, RUN_DEADLINE_S, progress, poll=0.05)
        alive = [p for p in processes if p.proc.poll() is None]
        for service in alive:
            service.proc.send_signal(signal.SIGTERM)
        exits = {service.name: service.proc.wait(timeout=STOP_DEADLINE_S) for service in alive}
        rows, leads = db.rows()
        output = "\n".join(f"--- {p.name}\n{p.output()}" for p in alive)
        return KillRun(backend, workspace.seed, plan, sink.kills, sink.messages, rows, leads, exits, output)
    finally:
        for service in processes:
            service.stop()
        sink.close()
        db.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kill_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KillRun:
    backend: str = request.param
    root = tmp_path_factory.mktemp(f"kill-{backend}")
    seed = SEED + (0 if backend == "sqlite" else 1)
    workspace = Workspace(root, _database_url(backend, request, root), seed=seed, leads=LEADS)
    workspace.prepare()
    workspace.cli("migrate")
    workspace.create_campaign()
    plan = kill_plan(seed, KILLS, max_n=MAX_N, budget=BUDGET, spare=SPARE)
    return _run_with_kills(workspace, plan, backend)


def test_every_kill_point_was_reached_and_the_last_stop_is_clean(kill_run: KillRun) -> None:
    assert len(kill_run.kills) >= KILLS >= 20, kill_run.replay()
    kinds = Counter(k.point.kind for k in kill_run.kills)
    assert kinds["before_250"] >= 6 and kinds["after_250"] >= 6, f"{kinds}; {kill_run.replay()}"
    assert sum(kinds[k] for k in BETWEEN) >= 6, f"{kinds}; {kill_run.replay()}"
    assert kill_run.final_exits and set(kill_run.final_exits.values()) == {0}, (
        f"exit codes after SIGTERM {kill_run.final_exits}; {kill_run.replay()}\n{kill_run.final_output}"
    )


def test_no_step_reaches_a_lead_twice(kill_run: KillRun) -> None:
    by_message_id = Counter(m.message_id for m in kill_run.received)
    twice = {mid: n for mid, n in by_message_id.items() if n > 1}
    assert not twice, f"Message-IDs received more than once: {twice}; {kill_run.replay()}"
    assert all(m.step is not None for m in kill_run.received), [m for m in kill_run.received if m.step is None]
    by_pair = Counter((m.recipient, m.step) for m in kill_run.received)
    twice_pairs = {pair: n for pair, n in by_pair.items() if n > 1}
    assert not twice_pairs, f"(recipient, step) received more than once: {twice_pairs}; {kill_run.replay()}"


def test_what_the_sink_got_matches_the_database(kill_run: KillRun) -> None:
    rows = {r.message_id: r for r in kill_run.rows}
    in_flight = [r for r in kill_run.rows if r.status in ("QUEUED", "SENDING")]
    assert not in_flight, f"rows left in flight: {in_flight}; {kill_run.replay()}"
    for m in kill_run.received:
        row = rows.get(m.message_id)
        assert row is not None, f"the sink got {m} but no row has its Message-ID; {kill_run.replay()}"
        assert (row.lead_id, row.step, row.recipient) == (m.lead_id, m.step, m.recipient), f"{m} vs {row}"
        assert row.status in ("SENT", "UNCONFIRMED"), f"the sink got {m} but its row is {row}; {kill_run.replay()}"
        if not m.answered:
            # Held by the server, never answered: the sender cannot know, so it must not retry.
            assert row.status == "UNCONFIRMED", f"{m} was never answered, yet {row}; {kill_run.replay()}"
        if m.step is not None and m.step > 1:
            previous = next(r for r in kill_run.rows if r.lead_id == row.lead_id and r.step == m.step - 1)
            assert m.in_reply_to == previous.message_id, f"{m} does not thread under {previous}"
    received = {m.message_id for m in kill_run.received}
    sent_not_received = [r for r in kill_run.rows if r.status == "SENT" and r.message_id not in received]
    assert not sent_not_received, f"SENT but the server never got it: {sent_not_received}; {kill_run.replay()}"


def test_only_sends_cut_off_by_a_kill_are_unconfirmed(kill_run: KillRun) -> None:
    """UNCONFIRMED is the price of a kill, not of a restart: no more than the kills explain.

    A kill cuts off at most the send in flight (claimed, maybe not out yet) and the one
    before it, whose SENT commit may ride on the next claim's transaction.
    """
    received = {m.message_id for m in kill_run.received}
    unconfirmed = [r for r in kill_run.rows if r.status == "UNCONFIRMED"]
    never_sent = [r for r in unconfirmed if r.message_id not in received]
    kills = len(kill_run.kills)
    assert len(never_sent) <= kills, (
        f"{len(never_sent)} UNCONFIRMED rows the server never got, {kills} kills: {never_sent}; {kill_run.replay()}"
    )
    assert len(unconfirmed) <= 2 * kills, (
        f"{len(unconfirmed)} UNCONFIRMED rows, {kills} kills: {unconfirmed}; {kill_run.replay()}"
    )
    failed = [r for r in kill_run.rows if r.status == "FAILED"]
    assert not failed, f"the sink refuses nothing, yet {failed}; {kill_run.replay()}"


def test_every_step_of_every_lead_was_sent_or_is_unconfirmed(kill_run: KillRun) -> None:
    received = {(m.lead_id, m.step) for m in kill_run.received}
    given_up = {(r.lead_id, r.step) for r in kill_run.rows if r.status in ("UNCONFIRMED", "FAILED")}
    missing = [
        (lead.lead_id, step, lead.state, lead.current_step)
        for lead in kill_run.leads
        for step in range(1, STEPS + 1)
        if (lead.lead_id, step) not in received | given_up
    ]
    assert not missing, (
        f"{len(missing)} (lead, step) neither received nor UNCONFIRMED/FAILED, e.g. "
        f"(lead, step, state, current_step) {missing[:10]}; {kill_run.replay()}"
    )


# -- a clean stop while sending -----------------------------------------------------------------
SIGNAL_LEADS = 60
#: What the service logs on a stop signal while it is stopping already.
REPEAT = "signal received while stopping: already stopping"


@pytest.fixture(scope="module")
def signal_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database with the campaign and its leads, copied by each signal test."""
    root = tmp_path_factory.mktemp("signal-template")
    workspace = Workspace(root, f"sqlite+aiosqlite:///{root}/template.db", seed=SEED, leads=SIGNAL_LEADS)
    workspace.prepare()
    workspace.create_campaign()
    return root / "template.db"


@pytest.fixture
def sink() -> Iterator[KillSink]:
    sink = KillSink()
    yield sink
    sink.close()


@pytest.mark.parametrize("times", [1, 2], ids=["once", "again-while-stopping"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_while_sending_exits_0_and_leaves_nothing_sending(
    signum: signal.Signals, times: int, signal_template: Path, tmp_path: Path, sink: KillSink
) -> None:
    shutil.copy(signal_template, tmp_path / "service.db")
    workspace = Workspace(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/service.db", seed=SEED, leads=SIGNAL_LEADS)
    workspace.prepare()
    # The signal goes out inside DATA of the 5th message, before the server answers: the
    # service is mid-send. A repeat waits until the service logged the first one.
    lifetime, port = sink.listen(KillPoint("before_250", 5, signum=signum, times=times))
    service = ServiceProcess(workspace, port, "service")
    lifetime.service = service
    try:
        code = service.proc.wait(timeout=RUN_DEADLINE_S)
    finally:
        service.stop()
    output = service.output()
    assert lifetime.killed, f"the 5th message never came\n{output}"
    assert code == 0, f"exit code {code} after {signum.name} x{times}\n{output}"
    if times > 1:
        assert service.logged(REPEAT), f"the repeat did not reach the service while stopping\n{output}"
    rows, _ = _rows(workspace.database_url)
    assert not [r for r in rows if r.status in ("SENDING", "UNCONFIRMED")], rows
    received = Counter(m.message_id for m in sink.messages)
    assert all(n == 1 for n in received.values()), received
    sent = {r.message_id for r in rows if r.status == "SENT"}
    assert sent == set(received), f"SENT rows {sorted(sent)} vs received {sorted(received)}"
    assert len(sent) >= 5


def _rows(url: str) -> tuple[list[Row], list[LeadRow]]:
    db = Database(url)
    try:
        return db.rows()
    finally:
        db.close()
