"""Helpers of the kill test (tests/integration/test_kill_never_twice.py).

- `KillSink`: an aiosmtpd sink in the test process. Every service process gets its own
  loopback port (so the sink knows which process is talking) and at most one `KillPoint`:
  the protocol event at which the sink SIGKILLs that process, from inside the SMTP
  handler, so the kill lands at a known point of the transaction and not at a moment
  chosen by a clock.
- `ServiceProcess`: one `python run.py` subprocess with its own environment.
- `Workspace`: the campaign file, the leads CSV and the settings every process shares.
- `Database`: reads the outbound rows and leads the service wrote (SQLite or PostgreSQL).

This is test code: it reads the wall clock only for deadlines that bound how long a
failure takes, never to decide what is being tested.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from aicmo_actors.cam.tables import cam_leads, cam_outbound_emails
from aicmo_actors.storage.engine import make_engine
from tests.plugins.mail import _free_port

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = "kill-test"
STEPS = 3
MAILBOX = "alex@sender.example.com"

#: What the service logs when a stop signal arrives (aicmo_actors/cli/service.py).
STOPPING = "signal received: stopping"
#: Where a kill lands, in the order of one SMTP transaction of the service's sender.
#: "connect": EHLO of a fresh connection (a row is claimed: SENDING committed, nothing of
#: it sent); "mail" / "rcpt": inside the envelope of the n-th message, before any of it went
#: out; "before_250": the server holds the whole message and has not answered; "after_250":
#: the 250 was written, the client has not committed SENT yet (or only just). Only events
#: every send has: a NOOP, for one, is the transport's business and may not come at all.
BETWEEN = ("connect", "mail", "rcpt")
KINDS = (*BETWEEN, "before_250", "after_250")

#: The service's Message-ID: <random.leadid.step@domain> (see aicmo_actors/cam/scheduler.py).
MESSAGE_ID = re.compile(r"^<[0-9a-f]+\.(\d+)\.(\d+)@[^>]+>$")


@dataclass(frozen=True)
class KillPoint:
    """Signal the process at the `n`-th `kind` event it causes at the sink.

    SIGKILL (the default) waits until the process is dead and reaped before the sink goes
    on. Another signal is sent `times` times, each repeat once the service has logged that
    it received the first (it is stopping by then), and the sink goes on at once.
    """

    kind: str
    n: int
    signum: signal.Signals = signal.SIGKILL
    times: int = 1

    def __str__(self) -> str:
        name = "" if self.signum == signal.SIGKILL else f"/{self.signum.name}x{self.times}"
        return f"{self.kind}#{self.n}{name}"


def kill_plan(seed: int, count: int, *, max_n: int, budget: int, spare: int = 0) -> list[KillPoint]:
    """`count` seeded kill points: a third in DATA before the 250, a third right after it,
    a third between messages; each at the n-th such event of its process's lifetime. Then
    `spare` random ones, for processes that lose the lease before their kill point.

    Each lifetime sends about n messages before its kill, so the n add up to at most
    `budget` (what is sure to be left to send): every kill point is reached.
    """
    rng = random.Random(seed)
    third = count // 3
    kinds = ["before_250"] * third + ["after_250"] * third
    kinds += [rng.choice(BETWEEN) for _ in range(count - len(kinds))]
    rng.shuffle(kinds)
    kinds += [rng.choice(KINDS) for _ in range(spare)]
    while True:
        # A fresh connection says EHLO once, so "connect" is always its first event.
        plan = [KillPoint(kind, 1 if kind == "connect" else rng.randint(1, max_n)) for kind in kinds]
        if sum(p.n for p in plan) <= budget:
            return plan


@dataclass(frozen=True)
class Received:
    """One message the sink accepted (or held when the sender died before the 250)."""

    process: int
    message_id: str
    recipient: str
    subject: str
    in_reply_to: str | None
    lead_id: int | None
    step: int | None
    answered: bool


@dataclass(frozen=True)
class Kill:
    process: int
    point: KillPoint
    message_id: str | None


@dataclass
class _Lifetime:
    """The sink's side of one service process: its kill point and what it did so far.

    `point` is fixed, or (`from_plan`) taken from the sink's plan when the process first
    talks to the sink, i.e. once it is the active worker: kill points go to processes in
    the order they become active, whichever that is.
    """

    index: int
    point: KillPoint | None
    sink: KillSink
    from_plan: bool = False
    service: ServiceProcess | None = None
    events: Counter[str] = field(default_factory=Counter)
    killed: bool = False

    def _due(self, kind: str, event: str) -> bool:
        if self.from_plan:
            self.from_plan = False
            self.point = self.sink.take_point()
        return (
            not self.killed
            and self.point is not None
            and self.point.kind == kind
            and self.events[event] == self.point.n
        )

    def _kill(self, message_id: str | None = None) -> None:
        # Runs on the sink's event loop thread: nothing else happens on this connection
        # until the process is dead and reaped.
        assert self.service is not None and self.point is not None
        self.killed = True
        point, service = self.point, self.service
        os.kill(service.pid, point.signum)
        if point.signum == signal.SIGKILL:
            service.proc.wait()
        for _ in range(point.times - 1):
            wait_until(
                lambda: service.logged(STOPPING),
                30.0,
                lambda: f"{service.name} to log {STOPPING!r}",
            )
            os.kill(service.pid, point.signum)
        self.sink.note_kill(Kill(self.index, point, message_id))

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self.events["EHLO"] += 1
        if self._due("connect", "EHLO"):
            self._kill()
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.events["MAIL"] += 1
        if self._due("mail", "MAIL"):
            self._kill()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.events["RCPT"] += 1
        if self._due("rcpt", "RCPT"):
            self._kill()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.events["DATA"] += 1
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        msg: Any = message_from_bytes(raw, policy=policy.default)
        message_id = str(msg["Message-ID"] or "").strip()
        before = self._due("before_250", "DATA")
        dies = before and self.point is not None and self.point.signum == signal.SIGKILL
        self.sink.note_message(self._received(msg, message_id, envelope, answered=not dies))
        if before:
            self._kill(message_id)  # SIGKILL: the server has it; the client never hears back
        elif self._due("after_250", "DATA"):
            # aiosmtpd writes the reply to the socket right after this hook returns, before it
            # next waits (reading the next command); a callback scheduled now runs then.
            asyncio.get_running_loop().call_soon(self._kill, message_id)
        return "250 2.0.0 Message accepted for delivery"

    def _received(self, msg: Any, message_id: str, envelope: Envelope, *, answered: bool) -> Received:
        found = MESSAGE_ID.match(message_id)
        return Received(
            process=self.index,
            message_id=message_id,
            recipient=",".join(a.lower() for a in envelope.rcpt_tos),
            subject=str(msg["Subject"] or ""),
            in_reply_to=str(msg["In-Reply-To"]).strip() if msg["In-Reply-To"] else None,
            lead_id=int(found.group(1)) if found else None,
            step=int(found.group(2)) if found else None,
            answered=answered,
        )


class KillSink:
    """The SMTP sink every service process sends to, one port per process.

    `plan`: kill points handed out in order to processes as they become active, until
    `goal` kills have happened; a process active after that is never killed.
    """

    def __init__(self, plan: Iterable[KillPoint] = (), goal: int = 0) -> None:
        self._lock = threading.Lock()
        self._plan = list(plan)
        self._goal = goal
        self._messages: list[Received] = []
        self._kills: list[Kill] = []
        self._controllers: list[Controller] = []
        self.lifetimes: list[_Lifetime] = []
        self.handed_out: list[KillPoint] = []

    def listen(self, point: KillPoint | None = None) -> tuple[_Lifetime, int]:
        """A new port for the next service process, with its kill point (None: the next of
        the plan, or never killed when there is no plan)."""
        lifetime = _Lifetime(len(self.lifetimes), point, self, from_plan=point is None and bool(self._plan))
        port = _free_port()
        controller = Controller(lifetime, hostname="127.0.0.1", port=port, ready_timeout=10)
        controller.start()
        self._controllers.append(controller)
        self.lifetimes.append(lifetime)
        return lifetime, port

    def take_point(self) -> KillPoint | None:
        with self._lock:
            if len(self._kills) >= self._goal or len(self.handed_out) == len(self._plan):
                return None
            point = self._plan[len(self.handed_out)]
            self.handed_out.append(point)
            return point

    def note_message(self, received: Received) -> None:
        with self._lock:
            self._messages.append(received)

    def note_kill(self, kill: Kill) -> None:
        with self._lock:
            self._kills.append(kill)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def kills(self) -> list[Kill]:
        with self._lock:
            return list(self._kills)

    def close(self) -> None:
        for controller in self._controllers:
            controller.stop()
        self._controllers.clear()


class ServiceProcess:
    """`python run.py` (the service) with stderr in a file (nobody reads a pipe meanwhile)."""

    def __init__(self, workspace: Workspace, smtp_port: int, name: str) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", dir=workspace.root, delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "run.py")],
            cwd=workspace.root,
            env=workspace.env(smtp_port),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self, tail: int = 3000) -> str:
        return Path(self.log.name).read_text(errors="replace")[-tail:]

    def logged(self, event: str) -> bool:
        """Whether the service logged a JSON line with this event."""
        for line in Path(self.log.name).read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"event": "{event}"' in line:
                try:
                    if json.loads(line).get("event") == event:
                        return True
                except ValueError:
                    continue
        return False

    def stop(self) -> None:
        """Kill it if it still runs (test clean-up) and close the log."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.log.close()


@dataclass
class Workspace:
    """A temporary folder with the campaign, the leads and the service's settings."""

    root: Path
    database_url: str
    seed: int
    leads: int
    lease_ttl_s: float = 0.6
    tick_interval_s: float = 0.2

    daily_cap: int = 100000

    def prepare(self) -> None:
        inbox = self.root / "inbox"
        for sub in ("new", "cur", "tmp"):
            (inbox / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "campaign.toml").write_text(campaign_toml(self.daily_cap))
        rows = ["email,first_name,last_name,company,timezone"]
        rows += [f"lead{i:03d}@company{i:03d}.example.org,First{i},Last{i},Company {i},UTC" for i in range(self.leads)]
        (self.root / "leads.csv").write_text("\n".join(rows) + "\n")

    def env(self, smtp_port: int = 0) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AICMO_")}
        transport = {
            "kind": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port or 25,  # the CLI commands send nothing: any valid port
            "tls": "none",
            "timeout_s": 30,
        }
        env.update(
            AICMO_DATABASE_URL=self.database_url,
            AICMO_TRANSPORTS=json.dumps({"sink": transport}),
            AICMO_INBOXES=json.dumps({"default": {"kind": "maildir", "path": str(self.root / "inbox")}}),
            AICMO_TICK_INTERVAL_S=str(self.tick_interval_s),
            # Real SMTP needs unsubscribe links recipients can reach (campaign create checks).
            AICMO_PUBLIC_URL="https://links.example.org",
            AICMO_LEASE_TTL_S=str(self.lease_ttl_s),
            AICMO_HTTP_PORT="0",
            AICMO_SEED=str(self.seed),
            AICMO_STATE_DIR=str(self.root / "state"),
            AICMO_LOG_FORMAT="json",
            AICMO_LOG_LEVEL="info",
        )
        return env

    def cli(self, *args: str) -> str:
        """Run one `python run.py COMMAND ...`; its output, or AssertionError on a non-zero exit."""
        done = subprocess.run(
            [sys.executable, str(REPO / "run.py"), *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"run.py {' '.join(args)} exited {done.returncode}: {done.stdout}{done.stderr}"
        return done.stdout

    def create_campaign(self) -> None:
        self.cli("campaign", "create", "campaign.toml")
        out = self.cli("leads", "import", "leads.csv", "--campaign", CAMPAIGN)
        assert f"{self.leads} imported" in out, out


def campaign_toml(daily_cap: int = 100000) -> str:
    """Every day, all day, no gap (and by default no cap): the follow-ups come on the next ticks."""
    steps = "\n".join(
        f'[[steps]]\ndelay_days = 0\nsubject = "{"Hello {{ company }}" if n == 1 else ""}"\n'
        f'body = "Step {n} for {{{{ first_name }}}}"\n'
        for n in range(1, STEPS + 1)
    )
    return f"""\
name = "{CAMPAIGN}"
timezone = "UTC"
postal_address = "Kill Test Ltd, 1 Test Street, Testville"
stop_company_on_reply = false

[window]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "24:00"

[limits]
daily_cap = {daily_cap}
min_gap_seconds = 0
jitter_seconds = 0

[[mailboxes]]
address = "{MAILBOX}"
display_name = "Alex"
transport = "sink"

{steps}"""


@dataclass(frozen=True)
class Row:
    """One cam_outbound_emails row, as the checks need it."""

    outbound_id: int
    lead_id: int
    step: int
    recipient: str
    status: str
    message_id: str
    last_error: str | None


@dataclass(frozen=True)
class LeadRow:
    lead_id: int
    email: str
    state: str
    current_step: int
    next_action_at: datetime | None


class Database:
    """Reads what the service wrote, on its own event loop (the tests are synchronous)."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        self._engine = make_engine(url)

    def rows(self) -> tuple[list[Row], list[LeadRow]]:
        return self._runner.run(self._rows())

    async def _rows(self) -> tuple[list[Row], list[LeadRow]]:
        o, lt = cam_outbound_emails.c, cam_leads.c
        async with self._engine.connect() as conn:
            out = await conn.execute(
                sa.select(o.id, o.lead_id, o.step, o.recipient, o.status, o.message_id, o.last_error).order_by(o.id)
            )
            rows = [Row(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], r[6]) for r in out]
            found = await conn.execute(
                sa.select(lt.id, lt.email, lt.state, lt.current_step, lt.next_action_at).order_by(lt.id)
            )
            leads = [LeadRow(int(r[0]), r[1], r[2], int(r[3]), r[4]) for r in found]
        return rows, leads

    def close(self) -> None:
        self._runner.run(self._engine.dispose())
        self._runner.close()


def settled(rows: Iterable[Row], leads: Iterable[LeadRow], now: datetime) -> bool:
    """Nothing left to do: no row QUEUED or SENDING and no lead due within the day.

    A lead whose last step went out waits a week for a reply (due far ahead); one that will
    never be scheduled again has no next action at all. Either way nothing more will be sent.
    """
    if any(r.status in ("QUEUED", "SENDING") for r in rows):
        return False
    horizon = now + timedelta(days=1)
    return all(lead.next_action_at is None or lead.next_action_at > horizon for lead in leads)


def wait_until(condition: Callable[[], bool], timeout: float, what: Callable[[], str], poll: float = 0.05) -> None:
    """Poll `condition` until true; AssertionError with `what()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what()}")
        time.sleep(poll)


def utc_now() -> datetime:
    return datetime.now(UTC)
