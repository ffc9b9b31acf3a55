"""One simulated run: the real actors on a fake clock against the simulated world.

`simulate(...)` builds the service the way `python run.py` does (same store, same actors,
same Maildir inbox path, and the modules after the deal: onboarding, strategy and the project
sagas), swaps the SMTP transport for the world's sink and the real clock for a `FakeClock`,
runs the given number of days, then checks the invariants.

A kill (at a quiet moment, in the sink, or at a kill point) holds the actor that dies where
it is, lets every other actor run until it is at rest (or held at its own kill point), then
kills the system: what the next process finds on the database is then a function of the
seed, not of how tasks happened to interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.after_deal import AfterDeal
from aicmo_actors.api.plane import ControlPlane
from aicmo_actors.cam import cam_supervisor
from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.decision import PausePolicy
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.tables import cam_deals as deals_t
from aicmo_actors.gateways.inbox_source import InboxSource
from aicmo_actors.gateways.maildir_inbox import MaildirInbox
from aicmo_actors.onboarding.tables import COMPLETED as INTAKE_COMPLETED
from aicmo_actors.onboarding.tables import onboarding_intakes
from aicmo_actors.orchestration.tables import orchestration_projects, orchestration_steps
from aicmo_actors.runtime import ActorSystem, FakeClock, killpoints
from aicmo_actors.settings import Settings
from aicmo_actors.simulation import DATABASE_FILE, MAIL_FOLDER
from aicmo_actors.simulation.business import business_figures
from aicmo_actors.simulation.clients import Clients
from aicmo_actors.simulation.drafts import PlantingGenerator
from aicmo_actors.simulation.faults import CommitFaults, FaultyInbox, Kill, KillAnywhere
from aicmo_actors.simulation.invariants import Violation, check_invariants
from aicmo_actors.simulation.receiver import Receiver
from aicmo_actors.simulation.world import Behaviour, Faults, World
from aicmo_actors.storage import changes
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import ensure_schema
from aicmo_actors.strategy.tables import APPROVED, CHANGES_REQUESTED, strategy_plans
from contracts.base import Event
from contracts.cam import PollInbox, ReplyActedOn
from contracts.runtime import Tick

SIM_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
ALERT_TO = "owner@agency.example"
#: Where the emails to clients come from (welcome, reminders, plans).
CLIENT_FROM = "hello@agency.example"
#: The installation's secret (the client links' key is derived from it).
SECRET = b"simulation-secret-0123456789"
#: cam.inbox's longest reconnect delay (Inbox(backoff_max_s=...), its default).
INBOX_BACKOFF_MAX_S = 600.0


@dataclass
class SimResult:
    seed: int
    days: float
    trace_hash: str
    events: int
    violations: list[Violation]
    funnel: dict[str, Any]
    world: World
    db_path: Path
    outbox: Path
    inbox: Path
    ticks: int
    wall_s: float = 0.0
    #: One line per event, in order: what the hash is taken over (diff two runs to find a divergence).
    trace: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where the process was killed at a kill point (`Faults.kill_anywhere`), in order.
    kills: list[Kill] = field(default_factory=list)
    #: What the invariants were checked with: the service's settings and the moments of the
    #: ticks that had the time to finish (to check again, after changing something).
    settings: Settings | None = None
    complete_ticks: list[datetime] = field(default_factory=list)


async def simulate(
    *,
    workdir: Path,
    spec: CampaignSpec,
    leads: list[dict[str, Any]],
    days: float = 30,
    seed: int = 1,
    behaviour: Behaviour | None = None,
    faults: Faults | None = None,
    tick_s: float = 3600,
    progress: Callable[[float, float], None] | None = None,
    pause_policy: PausePolicy | None = None,
    metering: bool = True,
    after_deal: bool = True,
) -> SimResult:
    """Run the acquisition cycle for `days` simulated days; returns the outcome and the checks.

    With `faults.process_kills`, `faults.kill_in_send` or `faults.kill_anywhere` the run is
    several lives of the service on one database: each kill drops everything in memory (no
    drain, no on_stop) and a new system starts on the same database and the same world at
    the same instant.

    With `after_deal` (the default) interested prospects may sign (`behaviour.clients`) and
    the modules after the deal run beside CAM, as in the service; without it nobody signs
    and only CAM runs.

    The run is its database's only writer, so the modules' ticks keep their reads of state
    between writes (`storage.changes`).
    """
    with changes.as_sole_writer():
        return await _simulate(
            workdir=workdir,
            spec=spec,
            leads=leads,
            days=days,
            seed=seed,
            behaviour=behaviour,
            faults=faults,
            tick_s=tick_s,
            progress=progress,
            pause_policy=pause_policy,
            metering=metering,
            after_deal=after_deal,
        )


async def _simulate(
    *,
    workdir: Path,
    spec: CampaignSpec,
    leads: list[dict[str, Any]],
    days: float,
    seed: int,
    behaviour: Behaviour | None,
    faults: Faults | None,
    tick_s: float,
    progress: Callable[[float, float], None] | None,
    pause_policy: PausePolicy | None,
    metering: bool,
    after_deal: bool,
) -> SimResult:
    faults = faults or Faults()
    await asyncio.to_thread(_fresh_workdir, workdir)
    db_path = workdir / DATABASE_FILE
    inbox_dir = workdir / MAIL_FOLDER / "inbox"
    clock = FakeClock(SIM_START)
    behaviour = behaviour or Behaviour()
    world = World(seed, clock, inbox_dir, behaviour, faults, frozenset({ALERT_TO}))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db_path}",
        seed=seed,
        tick_interval_s=tick_s,
        alert_emails=[ALERT_TO],
        alert_from="alerts@agency.example",
        client_mail_from=CLIENT_FROM,
        public_url="https://agency.example",
        delivery_dir=workdir / "deliveries",
        # A German agency (VAT on domestic invoices, reverse charge to EU businesses abroad, none
        # outside the EU); a client owing an invoice 3 days past its due date is put on hold, so
        # a hold meets the first period's deliveries (invoiced at signing, due in 7 days).
        agency_country="DE",
        agency_tax_id="DE123456789",
        agency_address="Beispielstrasse 1, 10115 Berlin, Germany",
        hold_after_days=3,
        send_retry_base_s=600,
        # Replies are read in this process: deterministic, and no child process per run.
        classify_isolation="inline",
        state_dir=workdir / ".aicmo",
        log_level="warning",
    )
    if after_deal:
        world.clients = Clients(seed, clock, settings.database_url, behaviour.clients)
        world.receiver = Receiver(seed=seed, secret=SECRET, now=clock.now)
        world.writer = PlantingGenerator(seed)
        world.clients.reply = world.client_replies
        world.clients.receiver = world.receiver
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    await ensure_schema(engine)
    store = CamStore(engine)
    await store.campaigns.create_or_update(spec, clock.now())
    await store.leads.import_rows(spec.name, leads, clock.now())
    await engine.dispose()
    trace: list[str] = []
    ticks: list[float] = []
    acted: Counter[int] = Counter()

    def record(event: Event) -> None:
        # duration_ms is wall time: everything else in an event is a function of the seed.
        body = event.model_dump(mode="json", exclude={"message_id", "correlation_id", "timestamp", "duration_ms"})
        trace.append(f"{clock.monotonic():.3f} {type(event).__name__} {json.dumps(body, sort_keys=True)}")
        if isinstance(event, Tick):
            ticks.append(clock.monotonic())
        elif isinstance(event, ReplyActedOn):
            acted[event.inbound_id] += 1

    total = days * 86400
    kill_rng = random.Random(f"kills:{seed}")
    idle_kills = sorted(kill_rng.uniform(0.05, 0.95) * total for _ in range(faults.process_kills))
    lives: list[tuple[float, float]] = []  # (start, end) of each life, in clock.monotonic()
    commit_faults: list[CommitFaults] = []
    inboxes: list[FaultyInbox] = []
    origin = clock.monotonic()
    elapsed = 0.0
    life = 0
    start_failures = 0

    def killed_at(kill: Kill, holder: object) -> None:
        where = {"actor": kill.actor, "kind": kill.kind, "n": kill.n}
        trace.append(f"{kill.at:.3f} Killed {json.dumps(where, sort_keys=True)}")
        world.frozen.append(holder)
        world.kill_requested.set()

    anywhere = (
        KillAnywhere(
            seed,
            faults.kill_anywhere,
            clock,
            until=origin + total,
            on_kill=killed_at,
            max_lives_killed=faults.max_lives_killed_anywhere,
        )
        if faults.kill_anywhere > 0
        else None
    )
    system: ActorSystem | None = None
    try:
        with killpoints.installed(anywhere):
            while True:
                life += 1
                world.life = life
                if anywhere is not None:
                    anywhere.new_life(life)
                engine, system = _new_life(
                    settings,
                    seed,
                    life,
                    faults,
                    world,
                    inbox_dir,
                    pause_policy,
                    commit_faults,
                    inboxes,
                    metering,
                    after_deal,
                )
                system.events.tap(record)
                born = clock.monotonic()
                try:
                    killed = await _start(system, world)
                except Exception:
                    # A fault during start-up (a commit in on_start): `python run.py` exits 1 and
                    # its process supervisor starts it again, as this does.
                    await engine.dispose()
                    _stop_faults(commit_faults)
                    start_failures += 1
                    if start_failures > 20:
                        raise
                    continue
                while not killed and elapsed < total:
                    next_kill = idle_kills[0] if idle_kills else None
                    chunk = min(
                        86400.0, total - elapsed, *((max(next_kill - elapsed, 0.0),) if next_kill is not None else ())
                    )
                    if chunk > 0:
                        await _run_for(clock, world, chunk)
                    if world.kill_requested.is_set():
                        killed = True
                        break
                    elapsed = clock.monotonic() - origin
                    if progress is not None:
                        progress(elapsed / 86400, total / 86400)
                    if next_kill is not None and elapsed >= next_kill:
                        idle_kills.pop(0)
                        killed = True
                if killed:
                    await _kill(system, world)
                    world.kill_requested.clear()
                    world.frozen.clear()
                    await engine.dispose()
                    _stop_faults(commit_faults)
                    lives.append((born, clock.monotonic()))
                    elapsed = clock.monotonic() - origin
                    continue
                await _finish(system, world, settings, inboxes, commit_faults)
                _stop_faults(commit_faults)
                lives.append((born, clock.monotonic()))
                break
    finally:
        # Whatever ended the run (a bug, a cancelled soak seed): leave nothing behind that
        # would fault the next run on this database file.
        _stop_faults(commit_faults)
        if system is not None and not system.stopped:
            await system.kill()
            await engine.dispose()
        if world.clients is not None:
            await world.clients.close()
    if world.clients is not None and world.clients.failures:
        raise world.clients.failures[0]

    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    store = CamStore(engine)
    funnel = await store.metrics.funnel(spec.name)
    complete = _complete_tick_times(ticks, lives, tick_s)
    complete_at = [SIM_START + timedelta(seconds=at) for at in complete]
    kills = anywhere.kills if anywhere is not None else []
    violations = await check_invariants(
        store,
        world,
        spec,
        len(complete),
        settings,
        kills=kills,
        acted_events=acted,
        metering=metering,
        after_deal=after_deal,
        complete_ticks=complete_at,
        end=clock.now(),
    )
    figures = await after_deal_figures(engine, world) if after_deal else {}
    await engine.dispose()
    if world.clients is not None:
        trace.extend(f"{at:.3f} ClientActed {json.dumps({'what': what})}" for at, what in world.clients.acts)
    # Actors that run at one simulated instant run concurrently, so events of one instant
    # are compared as a set: sorted by time, then by text.
    trace.sort(key=lambda line: (float(line.split(" ", 1)[0]), line))
    digest = hashlib.sha256("\n".join(trace).encode()).hexdigest()
    return SimResult(
        seed=seed,
        days=days,
        trace_hash=digest,
        events=len(trace),
        violations=violations,
        funnel=funnel,
        world=world,
        db_path=db_path,
        outbox=workdir / MAIL_FOLDER / "outbox",
        inbox=inbox_dir,
        ticks=len(complete),
        trace=trace,
        kills=list(kills),
        settings=settings,
        complete_ticks=complete_at,
        extra={
            "lives": len(lives),
            "commit_failures": sum(f.failed for f in commit_faults),
            "inbox_drops": sum(i.drops for i in inboxes),
            "kills_in_send": world.kills_in_send,
            "start_failures": start_failures,
            "kills_anywhere": anywhere.by_kind() if anywhere is not None else {},
            "kill_points": [str(k) for k in kills],
            **figures,
        },
    )


def _new_life(
    settings: Settings,
    seed: int,
    life: int,
    faults: Faults,
    world: World,
    inbox_dir: Path,
    pause_policy: PausePolicy | None,
    commit_faults: list[CommitFaults],
    inboxes: list[FaultyInbox],
    metering: bool = True,
    after_deal: bool = True,
) -> tuple[AsyncEngine, ActorSystem]:
    """The service as `python run.py` builds it (same store, actors and Maildir inbox path;
    the modules after the deal, after CAM, unless `after_deal` is off), on the world's sinks
    instead of SMTP; its engine and its (not yet started) system."""
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    store = CamStore(engine)
    plane = ControlPlane(engine, metering=metering)
    if faults.db_commit_error > 0:
        commit_faults.append(CommitFaults(engine, seed * 1000 + life, faults.db_commit_error))

    def make_inbox() -> InboxSource:
        source = MaildirInbox(inbox_dir, "sim", initial_uidvalidity=1)
        if faults.inbox_disconnect <= 0 and faults.kill_anywhere <= 0:
            return source  # (the faulty inbox's fetches are kill points too)
        # (At the end of the run the inbox stays up: a connection made then does not drop.)
        probability = faults.inbox_disconnect if world.faults_allowed else 0.0
        faulty = FaultyInbox(source, seed * 1000 + life * 100 + len(inboxes), probability)
        inboxes.append(faulty)
        return faulty

    cam = cam_supervisor(
        settings,
        store,
        secret=SECRET,
        http=False,
        pause_policy=pause_policy,
        transports=lambda name, mailbox: world.transport(mailbox),
        inboxes={"sim": make_inbox},
        installation=f"sim-{seed}",
    )
    # After the deal, as the service runs them: onboarding, strategy, production, QC, client
    # review, delivery, then the sagas; their emails to clients go through the world's client
    # sink, their webhooks to the world's receiver, their drafts from the world's writer.
    after = (
        AfterDeal(engine).supervisors(
            settings,
            secret=SECRET,
            mail_from=CLIENT_FROM,
            transport=world.client_transport,
            http=world.receiver.client,
            generator=world.writer,
            threads=False,
        )
        if after_deal
        else []
    )
    system = ActorSystem(settings, clock=world.clock, children=[*plane.supervisors(), cam, *after])
    if world.clients is not None:
        world.clients.attach(system.activity, world.kill_requested)
    return engine, system


async def after_deal_figures(engine: AsyncEngine, world: World) -> dict[str, Any]:
    """What followed the deals: deals signed, projects by state, intakes completed, plans
    approved and changed, and the emails that reached clients (for `SimResult.extra`)."""
    projects, plans = orchestration_projects, strategy_plans
    async with engine.connect() as conn:
        deals = (await conn.execute(sa.select(sa.func.count()).select_from(deals_t))).scalar_one()
        states = await conn.execute(sa.select(projects.c.state, sa.func.count()).group_by(projects.c.state))
        by_state = {str(state): int(n) for state, n in states}
        # Each period's production step: begun (any state) and done.
        steps = orchestration_steps
        made = await conn.execute(
            sa.select(steps.c.state, sa.func.count())
            .where(sa.or_(steps.c.step == "production", steps.c.step.like("production:%")))
            .where(steps.c.state != "pending")
            .group_by(steps.c.state)
        )
        periods = {str(state): int(n) for state, n in made}
        intakes = (
            await conn.execute(sa.select(sa.func.count()).where(onboarding_intakes.c.state == INTAKE_COMPLETED))
        ).scalar_one()
        answered = await conn.execute(
            sa.select(plans.c.status, sa.func.count(sa.distinct(plans.c.project_id)))
            .where(plans.c.status.in_([APPROVED, CHANGES_REQUESTED]))
            .group_by(plans.c.status)
        )
        plan_answers = {str(status): int(n) for status, n in answered}
        work = await _work_figures(conn, world)
    business = await business_figures(engine)
    return {
        "deals": int(deals),
        "projects": dict(sorted(by_state.items())),
        "periods_begun": sum(periods.values()),
        "periods_delivered": periods.get("done", 0),
        "intakes_completed": int(intakes),
        "plans_approved": plan_answers.get(APPROVED, 0),
        "plans_changes_requested": plan_answers.get(CHANGES_REQUESTED, 0),
        "client_emails": len(world.client_emails),
        "client_kills_in_send": world.client_kills_in_send,
        **work,
        **business,
    }


async def _work_figures(conn: Any, world: World) -> dict[str, Any]:
    """The work after the plan: pieces by state, drafts written, what QC sent back (and the
    planted problems it caught), the client's verdicts by who gave them, deliveries by method."""
    from aicmo_actors.client_review.tables import client_review_items as reviewed_t
    from aicmo_actors.delivery.tables import delivery_deliveries as deliveries_t
    from aicmo_actors.production.tables import production_items as items_t
    from aicmo_actors.production.tables import production_versions as versions_t
    from aicmo_actors.qc.tables import qc_checks as checks_t

    async def grouped(*columns: Any, where: Any = None) -> dict[str, int]:
        query = sa.select(*columns, sa.func.count()).group_by(*columns)
        if where is not None:
            query = query.where(where)
        return {" ".join(str(v) for v in row[:-1]): int(row[-1]) for row in await conn.execute(query)}

    async def count(table: Any, where: Any = None) -> int:
        query = sa.select(sa.func.count()).select_from(table)
        return int((await conn.execute(query if where is None else query.where(where))).scalar_one())

    planted = dict(world.writer.planted) if world.writer is not None else {}
    return {
        "work_items": dict(sorted((await grouped(items_t.c.state)).items())),
        "drafts_written": await count(versions_t),
        "qc_failed": await count(checks_t, checks_t.c.passed.is_(False)),
        "planted": len(planted),
        "verdicts": dict(
            sorted(
                (
                    await grouped(
                        reviewed_t.c.status, reviewed_t.c.reviewed_by, where=reviewed_t.c.status != "awaiting"
                    )
                ).items()
            )
        ),
        "delivered": dict(
            sorted((await grouped(deliveries_t.c.method, where=deliveries_t.c.state == "delivered")).items())
        ),
        "webhook_attempts": sum(world.receiver.attempts.values()) if world.receiver is not None else 0,
    }


def _stop_faults(commit_faults: list[CommitFaults]) -> None:
    for faults in commit_faults:
        faults.remove()


def _fresh_workdir(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in (DATABASE_FILE, f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm"):
        (workdir / stale).unlink(missing_ok=True)
    # A fresh world: replies left in the Maildir by an earlier run would be read as this run's.
    shutil.rmtree(workdir / MAIL_FOLDER, ignore_errors=True)
    shutil.rmtree(workdir / "deliveries", ignore_errors=True)


async def _start(system: ActorSystem, world: World) -> bool:
    """Start the system; True if the process was killed meanwhile (at a kill point in an
    `on_start`, say: start-up then never finishes). A failed start raises, as it would."""
    starting = asyncio.ensure_future(system.start())
    killing = asyncio.ensure_future(world.kill_requested.wait())
    try:
        await asyncio.wait({starting, killing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel(killing)
    if not world.kill_requested.is_set():
        starting.result()
        return False
    await _kill(system, world)
    # Start-up ends with the kill: cancelled, or failed for a reason the kill makes moot.
    await asyncio.wait({starting})
    if not starting.cancelled():
        starting.exception()
    return True


async def _finish(
    system: ActorSystem,
    world: World,
    settings: Settings,
    inboxes: list[FaultyInbox],
    commit_faults: list[CommitFaults],
) -> None:
    """The end of the last life: read what the world wrote before the end, then stop."""
    # From here on nobody dies: kill points are past their time (`until`), and the sink is told.
    world.kills_allowed = False
    # The last tick's inbox poll comes half a tick later (the service's default): let it happen, then read the inbox
    # once more (after restarts the ticks' phase has moved), so every reply the world wrote
    # before the end is in.
    await world.clock.sleep(settings.inbox_poll_offset_s)
    await system.settle()
    # The world's last mails must be read although the inbox may be in its reconnect backoff
    # after a simulated disconnect: from here on it stays up (the connections it has, and the
    # one it makes when it reconnects), and the clock moves past the longest backoff before
    # the last poll. What that poll reads is acted on and alerted at once, with no time left
    # for a retry: sends and commits do not fail any more either.
    world.faults_allowed = False
    for faulty in inboxes:
        faulty.probability = 0.0
    _stop_faults(commit_faults)
    await world.clock.sleep(INBOX_BACKOFF_MAX_S + 1)
    await system.settle()
    await system.ref("cam.inbox", PollInbox).tell(PollInbox(inbox="sim"))
    await system.settle()
    await system.stop()
    if world.clients is not None:
        await world.clients.close()


async def _run_for(clock: FakeClock, world: World, seconds: float) -> None:
    """Let `seconds` of simulated time pass, unless the process is to die first."""
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    killing = asyncio.ensure_future(world.kill_requested.wait())
    try:
        await asyncio.wait({sleeping, killing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel(sleeping)
        await _cancel(killing)


async def _cancel(task: asyncio.Future[Any]) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _kill(system: ActorSystem, world: World) -> None:
    """Kill the system. If actors are held at their point of death, first wait until every
    other actor is at rest (or held at its own kill point), so the kill finds the same state
    whatever the order tasks ran in, and the same seed replays."""
    if world.frozen:
        await _quiet_but_frozen(system, world.frozen)
    if world.clients is not None:
        # A client acting right now finishes; one about to act does so in the next life.
        world.clients.detach()
        await world.clients.settle()
    await system.kill()


async def _quiet_but_frozen(system: ActorSystem, frozen: list[object]) -> None:
    """Wait until nothing is runnable and no actor but the `frozen` ones holds work.

    Actors, not the activity count: a supervisor restarting an actor that is held in its
    `on_start` holds activity too, and waits for it forever.
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    while True:
        for _ in range(5):
            await asyncio.sleep(0)
        if ready is not None and len(ready) > 0:
            continue
        cells = system.root.cells() if system.root is not None else []
        if not any(cell.holding and not any(cell is held for held in frozen) for cell in cells):
            return


def _complete_tick_times(ticks: list[float], lives: list[tuple[float, float]], tick_s: float) -> list[float]:
    """Ticks that had the time to finish: each tick's inbox poll comes half a tick after it,
    so a kill within a tick of it may cut its reports, and a tick within half a tick of the
    end (ticks are timed from each life's start) has its poll after the run."""
    kills = [end for _, end in lives[:-1]]
    final = lives[-1][1] if lives else 0.0
    return [at for at in ticks if not any(at <= end < at + tick_s for end in kills) and at + tick_s / 2 <= final]
