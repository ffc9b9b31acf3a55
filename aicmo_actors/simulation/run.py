"""One simulated run: the real actors on a fake clock against the simulated world.

`simulate(...)` builds the service the way `python run.py` does (same store, same actors,
same Maildir inbox path), swaps the SMTP transport for the world's sink and the real clock
for a `FakeClock`, runs the given number of days, then checks the invariants.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.decision import PausePolicy
from aicmo_actors.cam.store import CamStore
from aicmo_actors.cli.service import CamWiring, cam_children
from aicmo_actors.gateways.maildir_inbox import MaildirInbox
from aicmo_actors.runtime import ActorSystem, FakeClock
from aicmo_actors.settings import Settings
from aicmo_actors.simulation.invariants import Violation, check_invariants
from aicmo_actors.simulation.world import Behaviour, Faults, World
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import ensure_schema
from contracts.base import Event

SIM_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
ALERT_TO = "owner@agency.example"


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
) -> SimResult:
    """Run the acquisition cycle for `days` simulated days; returns the outcome and the checks."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "aicmo.db"
    for stale in (db_path, workdir / "aicmo.db-wal", workdir / "aicmo.db-shm"):
        stale.unlink(missing_ok=True)
    # A fresh world: replies left in the Maildir by an earlier run would be read as this run's.
    shutil.rmtree(workdir / "mail", ignore_errors=True)
    inbox_dir = workdir / "mail" / "inbox"
    clock = FakeClock(SIM_START)
    world = World(seed, clock, inbox_dir, behaviour or Behaviour(), faults or Faults(), frozenset({ALERT_TO}))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db_path}",
        seed=seed,
        tick_interval_s=tick_s,
        inbox_poll_offset_s=tick_s / 2,
        alert_emails=[ALERT_TO],
        alert_from="alerts@agency.example",
        public_url="https://agency.example",
        send_retry_base_s=600,
        state_dir=workdir / ".aicmo",
        log_level="warning",
    )
    engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
    await ensure_schema(engine)
    store = CamStore(engine)
    await store.create_or_update_campaign(spec, clock.now())
    await store.import_leads(spec.name, leads, clock.now())
    trace: list[str] = []

    def record(event: Event) -> None:
        # duration_ms is wall time: everything else in an event is a function of the seed.
        body = event.model_dump(mode="json", exclude={"message_id", "correlation_id", "timestamp", "duration_ms"})
        trace.append(f"{clock.monotonic():.3f} {type(event).__name__} {json.dumps(body, sort_keys=True)}")

    wiring = CamWiring(
        settings,
        store,
        secret=b"simulation-secret-0123456789",
        http=False,
        pause_policy=pause_policy,
        transport_factory=lambda name, mailbox: world.transport(mailbox),
        inbox_factories={"sim": lambda: MaildirInbox(inbox_dir, "sim", initial_uidvalidity=1)},
    )
    system: ActorSystem | None = None

    def snapshot() -> Any:
        assert system is not None
        return system.snapshot()

    system = ActorSystem(settings, clock=clock, children=cam_children(wiring, snapshot))
    system.events.tap(record)
    total = days * 86400
    async with system:
        step = 86400.0
        elapsed = 0.0
        while elapsed < total:
            chunk = min(step, total - elapsed)
            await clock.sleep(chunk)
            elapsed += chunk
            if progress is not None:
                progress(elapsed / 86400, total / 86400)
        # The last tick's inbox poll comes half a tick later: let it happen.
        await clock.sleep(settings.inbox_poll_offset_s)
        await system.settle()
    ticks = int(total // tick_s)
    funnel = await store.funnel(spec.name)
    violations = await check_invariants(store, world, spec, ticks, settings)
    await engine.dispose()
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
        outbox=workdir / "mail" / "outbox",
        inbox=inbox_dir,
        ticks=ticks,
        trace=trace,
    )
