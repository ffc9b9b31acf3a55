"""The monitor killed at every kill point of one life (each unit of work starting and committed,
each publish and tell), then started again with the events said again (as their publishers
do): the client ends red with its signals stored once, every notice told, and the owner's
alerts are exactly the red one and the renewal one (cam.alerts de-duplicates by key; a key is
told twice only when the kill fell between the tell and its mark)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.retention import RetentionStore, retention_supervisor
from aicmo_actors.retention.tables import retention_clients, retention_signals
from aicmo_actors.runtime import ActorSystem, ChildSpec, FakeClock, SupervisorSpec, killpoints
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from contracts.billing import ReminderSent
from contracts.cam import AlertRequested, ClientSigned
from contracts.orchestration import ProjectOpened
from contracts.runtime import Tick
from tests.integration.actor_kills import KillAt
from tests.integration.test_retention import CLIENT, INVOICE, PACKAGE, PROJECT, SETTINGS, START, AlertsSink

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TABLES = (
    "retention_clients",
    "retention_contracts",
    "retention_projects",
    "retention_signals",
    "retention_invoices",
    "retention_reviews",
    "retention_renewals",
    "retention_notices",
)


def _events(system: ActorSystem) -> list[Any]:
    signed = system.message(
        ClientSigned,
        deal_id=1,
        lead_id=7,
        campaign="spring",
        client=CLIENT,
        package=PACKAGE.model_copy(update={"term_months": 1}),
        start=START.date(),
        signed_at=START,
    )
    reminders = [
        system.message(
            ReminderSent, invoice_id=INVOICE, number="2027-0001", client_ref=CLIENT.client_ref, level=4, days_overdue=d
        )
        for d in range(10, 18)
    ]
    return [signed, system.message(ProjectOpened, project_id=PROJECT, deal_id=1), *reminders]


async def _life(engine: AsyncEngine, n: int, *, life: int, alerts: list[AlertRequested]) -> bool:
    """One life: started, the events published, a tick; killed at its n-th kill point (True)
    or run to the end (False)."""
    kill = KillAt(n)
    clock = FakeClock(START + timedelta(hours=life), autojump=False)
    spec = retention_supervisor(RetentionStore(engine))
    cam = SupervisorSpec("cam", children=[ChildSpec("cam.alerts", lambda: AlertsSink(alerts))])
    system = ActorSystem(SETTINGS, clock=clock, children=[cam, spec])
    with killpoints.installed(kill.hook):
        await kill.until(system.start())
        for event in [*_events(system), system.message(Tick, seq=1, at=clock.now(), interval_s=3600.0)]:
            if kill.reached.is_set():
                break
            await kill.until(system.events.publish(event))
            await kill.until(system.settle())
        if kill.reached.is_set():
            await kill.kill(system)
            return True
    await system.stop()
    return False


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """SQLite only: every kill point once is enough on one backend; the repositories run on
    both in test_retention.py."""
    url = f"sqlite+aiosqlite:///{tmp_path}/kills.db"
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_killed_anywhere_nothing_is_lost_and_each_alert_is_one_key(engine: AsyncEngine) -> None:
    n = 0
    while True:
        n += 1
        async with engine.begin() as conn:  # a fresh start per kill point
            for table in TABLES:
                await conn.exec_driver_sql(f"DELETE FROM {table}")
        alerts: list[AlertRequested] = []
        killed = await _life(engine, n, life=0, alerts=alerts)
        if killed:
            assert not await _life(engine, 10**9, life=1, alerts=alerts)
        store = RetentionStore(engine)
        assert await store.pending() == [], n
        async with engine.connect() as conn:
            band = (await conn.execute(sa.select(retention_clients.c.band))).scalar_one()
            signals = (await conn.execute(sa.select(sa.func.count()).select_from(retention_signals))).scalar_one()
        assert (band, signals) == ("red", 8), n
        told = Counter(a.idempotency_key for a in alerts)
        assert set(told) == {f"retention:{CLIENT.client_ref}:red:1", "retention:renewal:1:2027-02-04:60"}, (n, told)
        assert all(count <= 2 for count in told.values()), (n, told)
        assert killed or all(count == 1 for count in told.values()), (n, told)
        if not killed:
            break
    assert n > 20
