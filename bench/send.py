"""Send benchmark: the outbound pipeline against raw aiosmtplib, and the scheduler's tick cost.

    python -m bench send [--leads N] [--backends sqlite,pg] [--scale-leads M] [--skip-scale]

- `raw_smtp_per_s` (the baseline): aiosmtplib sending N prebuilt messages over one reused
  connection to an aiosmtpd sink on loopback, nothing else.
- `pipeline_per_s_sqlite` / `pipeline_per_s_pg`: N leads, one step, caps, gaps and windows
  off, through the real scheduler and sender actors and the database (QUEUED -> SENDING ->
  SENT committed around each SMTP transaction) to the same sink, one sending mailbox: from
  the first clock tick until every row is SENT, logging as the service does (JSON, one
  line per email, into /dev/null). `ratio_sqlite`, `ratio_pg`: pipeline / raw (targets
  >= 0.5 and >= 0.4, issue 22).
- `tick_scale_ratio`: the scheduler's tick time with M leads of which 1,000 are due, over
  the same with 10,000 leads of which 1,000 are due (target <= 2: a tick costs what is due,
  not how many leads exist). The tick time is the scheduler's own CycleReport duration.

The sink runs in a process of its own (bench/_smtp_sink.py) so it never shares the GIL with
what is measured. Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib

from aicmo_actors.cam import cam_supervisor
from aicmo_actors.cam.campaign import CampaignSpec, parse_campaign
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.scheduler import Scheduler
from aicmo_actors.gateways.mail_message import build_message, wire_bytes
from aicmo_actors.gateways.smtp import SmtpTransport
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RealClock
from aicmo_actors.runtime.logging import configure_logging
from aicmo_actors.settings import Settings
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from bench._pg import (
    DEFAULT_PG_SERVER,
    PG_SERVER_ENV,
    ScratchDatabaseError,
    pg_server,
    scratch_database,
)
from contracts.base import Event
from contracts.cam import CycleReport, EmailSent, SendEmail
from contracts.runtime import Tick

MAILBOX = "bench@sender.example.com"
DUE = 1000

CAMPAIGN = f"""
name = "bench"
timezone = "UTC"
postal_address = "Bench Ltd, 1 Loop Road, Localhost"
[window]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "24:00"
[limits]
daily_cap = 100000000
min_gap_seconds = 0
jitter_seconds = 0
[[mailboxes]]
address = "{MAILBOX}"
display_name = "Bench Sender"
transport = "default"
[[steps]]
delay_days = 0
subject = "A quick question for {{{{ company }}}}"
body = \"\"\"Hi {{{{ first_name }}}},

we help companies like {{{{ company }}}} find their next clients. Would a short call be useful?

Bench Sender\"\"\"
"""


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lead_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "email": f"lead{i}@prospect{i % 97}.example.com",
            "first_name": f"Pat{i}",
            "last_name": "Lee",
            "company": f"Company {i}",
        }
        for i in range(n)
    ]


@asynccontextmanager
async def smtp_sink() -> AsyncIterator[int]:
    """A counting aiosmtpd in its own process; yields its port."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._smtp_sink", str(port), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if line.strip() != b"ready":
        raise RuntimeError(f"the SMTP sink did not start: {line!r}")
    try:
        yield port
    finally:
        proc.terminate()
        await proc.wait()


# -- the baseline -----------------------------------------------------------------------------------
async def raw_smtp(port: int, n: int) -> float:
    """N prebuilt messages over one aiosmtplib connection: messages per second."""
    now = datetime.now(UTC)
    payloads = []
    for i, lead in enumerate(lead_rows(n)):
        msg = build_message(
            from_address=MAILBOX,
            from_name="Bench Sender",
            to_address=lead["email"],
            to_name=f"{lead['first_name']} {lead['last_name']}",
            subject=f"A quick question for {lead['company']}",
            text=f"Hi {lead['first_name']},\n\nwe help companies like {lead['company']} find their next clients.\n",
            message_id=f"<raw.{i}@sender.example.com>",
            date=now,
            list_unsubscribe_url=f"https://links.example.com/u/{i:032x}",
            list_unsubscribe_mailto=f"mailto:{MAILBOX}?subject=unsubscribe",
        )
        payloads.append((lead["email"], wire_bytes(msg)))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
    await client.connect()
    start = time.perf_counter()
    for rcpt, payload in payloads:
        await client.sendmail(MAILBOX, [rcpt], payload)
    elapsed = time.perf_counter() - start
    await client.quit()
    return n / elapsed


# -- the pipeline -----------------------------------------------------------------------------------
async def pipeline(port: int, database_url: str, n: int) -> float:
    """N leads through scheduler, sender and database to the sink: messages per second."""
    settings = Settings(
        database_url=database_url,
        seed=7,
        tick_interval_s=0.5,
        public_url="https://links.example.com",
        log_level="warning",
        state_dir=Path(tempfile.gettempdir()) / "aicmo-bench-state",
    )
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        store = CamStore(engine)
        spec: CampaignSpec = parse_campaign(CAMPAIGN, "bench")
        now = datetime.now(UTC)
        await store.campaigns.create_or_update(spec, now)
        await store.leads.import_rows(spec.name, lead_rows(n), now)
        sent = 0
        first_tick: float | None = None
        done = asyncio.Event()

        def on_event(event: Event) -> None:
            nonlocal sent, first_tick
            if isinstance(event, Tick) and first_tick is None:
                first_tick = time.perf_counter()
            elif isinstance(event, EmailSent):
                sent += 1
                if sent % 2000 == 0:
                    progress(f"    {sent:,} sent")
                if sent >= n:
                    done.set()

        cam = cam_supervisor(
            settings,
            store,
            secret=b"bench-secret-0123456789abcdef",
            http=False,
            transports=lambda name, mailbox: SmtpTransport("127.0.0.1", port, tls="none", timeout=30),
            inboxes={},
        )
        system = ActorSystem(settings, clock=RealClock(), children=[cam])
        system.events.tap(on_event)
        async with system:
            await asyncio.wait_for(done.wait(), timeout=max(600.0, n / 5))
            finished = time.perf_counter()
        assert first_tick is not None
        return n / (finished - first_tick)
    finally:
        await engine.dispose()


# -- tick scale -------------------------------------------------------------------------------------
def fill_leads(db_path: Path, total: int, due: int, start: datetime) -> None:
    """`total` leads in the campaign, `due` of them due at `start`, the rest waiting on a reply
    (next_action_at NULL) or on a later step. Plain sqlite3 for speed: this is set-up only."""
    con = sqlite3.connect(db_path)
    try:
        campaign_id = con.execute("SELECT id FROM cam_campaigns WHERE name = 'bench'").fetchone()[0]
        later = (start + timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S.%f")
        at = start.strftime("%Y-%m-%d %H:%M:%S.%f")
        stamp = at

        def rows() -> Any:
            for i in range(total):
                if i < due:
                    next_at = at
                elif i % 2:
                    next_at = None
                else:
                    next_at = later
                yield (
                    campaign_id,
                    f"lead{i}@p{i % 997}.example.com",
                    f"p{i % 997}.example.com",
                    f"Pat{i}",
                    "Lee",
                    f"Company {i}",
                    None,
                    "{}",
                    "active",
                    0,
                    0,
                    next_at,
                    stamp,
                    stamp,
                )

        con.executemany(
            "INSERT INTO cam_leads (campaign_id, email, email_domain, first_name, last_name, company, timezone, "
            "variables, state, current_step, soft_bounces, next_action_at, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows(),
        )
        con.commit()
        con.execute("ANALYZE")
    finally:
        con.close()


class DiscardingSender(Actor[SendEmail]):
    """Takes every SendEmail and drops it: the tick benchmark measures scheduling alone, not
    sending (the real sender's bounded mailbox would make the tick wait for the sends)."""

    async def receive(self, message: SendEmail) -> None:
        return None


async def tick_ms(total: int, workdir: Path) -> float:
    """The scheduler's CycleReport duration for one tick with `total` leads, DUE of them due."""
    db_path = workdir / f"scale-{total}.db"
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    url = f"sqlite+aiosqlite:///{db_path}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        await CamStore(engine).campaigns.create_or_update(parse_campaign(CAMPAIGN, "bench"), start)
    finally:
        await engine.dispose()
    await asyncio.to_thread(fill_leads, db_path, total, DUE, start)
    settings = Settings(
        database_url=url, seed=7, tick_interval_s=3600, log_level="warning", state_dir=workdir / ".aicmo"
    )
    engine = make_engine(url)
    reports: list[CycleReport] = []
    try:
        store = CamStore(engine)
        children = [
            ChildSpec("cam.sender", DiscardingSender, mailbox_size=DUE * 2),
            ChildSpec("cam.scheduler", lambda: Scheduler(store, batch=DUE), intake=True),
        ]
        clock = FakeClock(start)
        system = ActorSystem(settings, clock=clock, children=children)
        system.events.tap(lambda e: reports.append(e) if isinstance(e, CycleReport) and e.step == "schedule" else None)
        async with system:
            await clock.sleep(3600)
            await system.settle()
    finally:
        await engine.dispose()
    if not reports or reports[0].counts.get("queued") != DUE:
        raise RuntimeError(f"the tick did not queue {DUE} sends: {reports[:1]}")
    return reports[0].duration_ms


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"leads": args.leads}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    async with smtp_sink() as port:
        progress(f"raw aiosmtplib: {args.leads:,} prebuilt messages over one connection ...")
        raw = await raw_smtp(port, args.leads)
        result["raw_smtp_per_s"] = round(raw, 1)
        progress(f"  {raw:,.0f}/s")
        with tempfile.TemporaryDirectory(prefix="aicmo-bench-send-") as tmp:
            if "sqlite" in backends:
                progress(f"pipeline on SQLite: {args.leads:,} leads ...")
                rate = await pipeline(port, f"sqlite+aiosqlite:///{Path(tmp) / 'send.db'}", args.leads)
                result["pipeline_per_s_sqlite"] = round(rate, 1)
                result["ratio_sqlite"] = round(rate / raw, 3)
                progress(f"  {rate:,.0f}/s, ratio {rate / raw:.3f}")
            if "pg" in backends:
                progress(f"pipeline on PostgreSQL: {args.leads:,} leads ...")
                async with scratch_database(pg_server(args.pg_url)) as url:
                    rate = await pipeline(port, url, args.leads)
                result["pipeline_per_s_pg"] = round(rate, 1)
                result["ratio_pg"] = round(rate / raw, 3)
                progress(f"  {rate:,.0f}/s, ratio {rate / raw:.3f}")
    if not args.skip_scale:
        with tempfile.TemporaryDirectory(prefix="aicmo-bench-tick-") as tmp:
            progress(f"scheduler tick: 10,000 leads, {DUE:,} due ...")
            small = await tick_ms(10_000, Path(tmp))
            progress(f"  {small:.1f} ms")
            progress(f"scheduler tick: {args.scale_leads:,} leads, {DUE:,} due (filling the table takes a while) ...")
            big = await tick_ms(args.scale_leads, Path(tmp))
            progress(f"  {big:.1f} ms")
        result["tick_ms_10k"] = round(small, 2)
        result[f"tick_ms_{args.scale_leads}"] = round(big, 2)
        result["tick_scale_ratio"] = round(big / small, 3)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench send", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=10_000, help="leads (= emails) per pipeline run (default 10,000)")
    parser.add_argument("--backends", default="sqlite,pg", help="comma-separated: sqlite, pg (default both)")
    parser.add_argument(
        "--pg-url",
        default=None,
        help=f"PostgreSQL server for a scratch database (default ${PG_SERVER_ENV} or {DEFAULT_PG_SERVER})",
    )
    parser.add_argument(
        "--scale-leads", type=int, default=1_000_000, help="leads in the big tick-scale run (default 1,000,000)"
    )
    parser.add_argument("--skip-scale", action="store_true", help="skip the tick-scale runs")
    args = parser.parse_args(argv)
    # Logged as the service logs (JSON, info: one line per email sent), into /dev/null: the
    # formatting is part of the pipeline's cost, the terminal is not. (Unconfigured, structlog
    # printed every line to stdout in its console format.)
    sink = open(os.devnull, "w")
    configure_logging(level="info", fmt="json", stream=sink)
    try:
        result = asyncio.run(run(args))
    except ScratchDatabaseError as exc:
        print(f"error: {exc} (or run with --backends sqlite)", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
