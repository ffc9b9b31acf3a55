"""The delivery cycle end to end with the real modules: a signed client onboarded, its plan
approved, then every piece of the plan drafted by production, checked by QC, sent to the
client for review, changed once at the client's request, approved on the review page and
delivered by email (three files attached), by a signed webhook and to a folder; the project
ends `delivered`. Then the cycle killed at its kill points (every `AICMO_KILL_STRIDE`-th, 8 in
CI) of the four modules' actors (production, QC, client review, delivery: each commit,
publish, tell and send), a new system started on the same database each time: every piece is
still delivered exactly once per method, nothing is delivered without the client's approval,
and no email goes twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.after_deal import AfterDeal
from aicmo_actors.cam.campaign import load_campaign
from aicmo_actors.cam.deals import Deals
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.orchestration import saga_rules as rules
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, SupervisorSpec, killpoints
from aicmo_actors.settings import Settings
from aicmo_actors.simulation.clients import intake_answers
from aicmo_actors.simulation.receiver import Receiver
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import ensure_schema
from contracts.cam import AlertRequested
from contracts.clients import ClientInfo
from contracts.packages import Deliverable, PackageSpec
from contracts.production import PeriodDelivered, ProducePeriod
from contracts.runtime import Tick
from contracts.strategy import PlannedItem
from tests.integration.actor_kills import KillAt, run_for
from tests.integration.test_cam_records import CAMPAIGN_FILE, add_leads

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday
SECRET = b"delivery-cycle-test-secret-0123456"
CLIENT_ADDRESS = "ann@northwind.example.com"
HOST = "cms.northwind.example.com"
HOOK = f"https://{HOST}/hooks/aicmo"
PACKAGE = PackageSpec(
    name="starter",
    title="Starter: a post and two LinkedIn updates",
    price="900.00",
    currency="EUR",
    billing="monthly",
    deliverables=(
        Deliverable(type="blog_post", count=1, channel="blog", min_words=300, max_words=900),
        Deliverable(type="social_post", count=2, channel="linkedin", max_chars=1300),
    ),
    review_rounds=1,
    turnaround_days=2,
    reporting="monthly",
    delivery=("email", "webhook", "folder"),
    reading_grade=14,
    # One period: the cycle of a period is what this file follows (the saga's later periods
    # are tested in test_project_saga.py and run whole in the simulations).
    term_months=1,
)
METHODS = len(PACKAGE.delivery)
ITEMS = sum(d.count for d in PACKAGE.deliverables)
LINK = re.compile(r"/client/(intake|plan|review)/([0-9a-f]{32,128})")
CHANGE = 'Please do not use the word "practical" here, and say more about our customers.'
MODULE_ACTORS = ("production.studio", "qc.checker", "client_review.reviews", "delivery.courier")


@dataclass
class Outside:
    """The client: their mailbox, what they answered, and their publishing system."""

    receiver: Receiver
    sent: list[EmailMessage] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    #: (item, version) -> verdict the client gave on the page.
    verdicts: dict[tuple[str, int], str] = field(default_factory=dict)

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        self.sent.append(message)
        return SendResult("accepted", 250, "ok")

    async def close(self) -> None:
        return None

    def links(self, kind: str) -> list[str]:
        found = []
        for message in self.sent:
            body = message.get_body(("plain",))
            text = body.get_content() if body is not None else ""
            found += [token for k, token in LINK.findall(text) if k == kind]
        return list(dict.fromkeys(found))


class Alerts(Actor[AlertRequested]):
    """`cam.alerts`, standing in: what a person would be told."""

    def __init__(self, heard: list[AlertRequested]) -> None:
        self.heard = heard

    async def receive(self, message: AlertRequested) -> None:
        self.heard.append(message)


async def _deal(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    await store.campaigns.create_or_update(load_campaign(CAMPAIGN_FILE, allow_test_domains=True), START)
    await add_leads(store, [CLIENT_ADDRESS])
    await store.deals.win(
        CLIENT_ADDRESS,
        campaign=None,
        client={
            "company": "Northwind Labs",
            "contact_name": "Ann Lee",
            "timezone": "Europe/Berlin",
            "country": "DE",
            "webhook_url": HOOK,
        },
        package=PACKAGE.model_dump(mode="json"),
        start=date(2026, 3, 2),
        by="test",
        now=START,
    )


def _system(
    engine: AsyncEngine, clock: FakeClock, outside: Outside, alerts: list[AlertRequested], folder: Path
) -> ActorSystem:
    settings = Settings(
        database_url=str(engine.url),
        seed=5,
        tick_interval_s=3600,
        log_level="warning",
        public_url="https://a.example",
        delivery_dir=folder,
    )
    cam = SupervisorSpec(
        "cam",
        children=[
            ChildSpec("cam.deals", lambda: Deals(CamStore(engine))),
            ChildSpec("cam.alerts", lambda: Alerts(alerts)),
        ],
        max_restarts=100,
    )
    after = AfterDeal(engine).supervisors(
        settings,
        secret=SECRET,
        mail_from="hello@agency.example",
        transport=lambda: outside,
        http=outside.receiver.client,
        threads=False,
    )
    return ActorSystem(settings, clock=clock, children=[cam, *after])


async def _client_acts(engine: AsyncEngine, clock: FakeClock, outside: Outside) -> None:
    """The client answers the intake, approves the plan, and reviews each batch on its page:
    the first version of the first piece gets a change request, everything else approval."""
    after = AfterDeal(engine)
    now = clock.now()
    for token in outside.links("intake"):
        if token not in outside.answered:
            answers = {k: v for k, v in intake_answers("Northwind Labs").items() if k != "action"}
            await after.onboarding.forms.save(token, answers, submit=True, now=now)
            outside.answered.add(token)
    for token in outside.links("plan"):
        if token not in outside.answered:
            await after.strategy.plans.answer(token, 1, approve=True, comments=None, now=now)
            outside.answered.add(token)
    for token in outside.links("review"):
        view = await after.reviews.batches.page(token, now)
        if isinstance(view, str):
            continue
        for item in view.items:
            if item.status != "awaiting":
                continue
            first = not outside.verdicts and item.version == 1
            await after.reviews.batches.answer(
                token, item.item_id, item.version, approve=not first, comment=CHANGE if first else None, now=now
            )
            outside.verdicts[(item.item_id, item.version)] = "changes" if first else "approved"


async def _rows(engine: AsyncEngine, query: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(sa.text(query))).mappings().all()]


async def _project_state(engine: AsyncEngine) -> tuple[str, str] | None:
    rows = await _rows(engine, "SELECT state, step FROM orchestration_projects")
    return (rows[0]["state"], rows[0]["step"]) if rows else None


async def _check_delivered(
    engine: AsyncEngine, outside: Outside, folder: Path, where: str, *, items: int = ITEMS
) -> None:
    """Every piece delivered exactly once per method, each an approved version."""
    items_rows = await _rows(engine, "SELECT id, state, version FROM production_items")
    assert len(items_rows) == items and {i["state"] for i in items_rows} == {"delivered"}, where
    deliveries = await _rows(engine, "SELECT key, item_id, version, method, state FROM delivery_deliveries")
    made = Counter((d["item_id"], d["method"]) for d in deliveries if d["state"] == "delivered")
    assert len(made) == items * METHODS and set(made.values()) == {1}, f"{where}: {made}"
    approved = {
        (r["item_id"], r["version"])
        for r in await _rows(engine, "SELECT item_id, version FROM client_review_items WHERE status = 'approved'")
    }
    for d in deliveries:
        assert (d["item_id"], d["version"]) in approved, f"{where}: delivered without approval: {d}"
    # The webhook receiver published each piece once (a repeat is answered, never published
    # again), every request signed with the client's key.
    assert len(outside.receiver.published) == items and not outside.receiver.forged, where
    # One delivery email per piece, three files attached to each.
    emails = [m for m in outside.sent if any(True for _ in m.iter_attachments()) and "/client/" not in _text(m)]
    delivery_emails = [m for m in emails if str(m["Message-ID"]).startswith("<delivery.")]
    per_item = Counter(str(m["Message-ID"]) for m in delivery_emails)
    assert len(per_item) == items and set(per_item.values()) == {1}, f"{where}: {per_item}"
    names = sorted(p.get_filename() or "" for p in delivery_emails[0].iter_attachments())
    assert [n.rsplit(".", 1)[-1] for n in names] == ["docx", "html", "pdf"], names
    files = _files(folder)
    assert len(files) == items * 4, f"{where}: {files}"


def _files(folder: Path) -> list[str]:
    """The exported pieces' files (.md, .html, .pdf, .docx), by name."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.suffix in (".md", ".html", ".pdf", ".docx"))


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


async def test_a_period_is_drafted_checked_reviewed_changed_and_delivered_once_per_method(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await ensure_schema(engine)
    await _deal(engine)
    outside, clock = Outside(Receiver(seed=5, secret=SECRET, now=lambda: clock.now(), faults=True)), None
    clock = FakeClock(START, autojump=False)
    alerts: list[AlertRequested] = []
    folder = tmp_path / "deliveries"
    system = _system(engine, clock, outside, alerts, folder)
    async with engine.connect() as conn:
        ref = (await conn.execute(sa.text("SELECT client FROM cam_deals"))).scalar_one()
    outside.receiver.clients[HOST] = (ref if isinstance(ref, dict) else json.loads(ref))["client_ref"]
    await system.start()
    try:
        for _ in range(60):
            await run_for(system, clock, 12 * 3600)
            await _client_acts(engine, clock, outside)
            if await _project_state(engine) == (rules.DELIVERED, rules.AFTER_LAST):
                break
        assert system.failure is None
    finally:
        await system.stop()
    assert await _project_state(engine) == (rules.DELIVERED, rules.AFTER_LAST)
    await _check_delivered(engine, outside, folder, "whole run")
    # The piece the client asked to change came back as version 2, without the word, and
    # version 2 is what was delivered.
    [(changed, _version)] = [key for key, verdict in outside.verdicts.items() if verdict == "changes"]
    [row] = await _rows(engine, f"SELECT version FROM production_items WHERE id = '{changed}'")
    assert row["version"] == 2
    [v2] = await _rows(engine, f"SELECT text FROM production_versions WHERE item_id = '{changed}' AND version = 2")
    assert "practical" not in v2["text"].lower()
    # Every version that reached the client passed QC first.
    reviewed = await _rows(engine, "SELECT item_id, version FROM client_review_items")
    checks = {
        (r["item_id"], r["version"]): r["passed"]
        for r in await _rows(engine, "SELECT item_id, version, passed FROM qc_checks")
    }
    assert all(checks.get((r["item_id"], r["version"])) for r in reviewed), (reviewed, checks)
    # Every email reached the client once.
    twice = [mid for mid, count in Counter(str(m["Message-ID"]) for m in outside.sent).items() if count > 1]
    assert not twice, twice


# -- the cycle killed --------------------------------------------------------------------------------------------
#: The killed cycle starts at production (the saga's command told by a stand-in, as the saga
#: tells it: on every tick until the period is delivered), with three pieces due within the
#: week, so that a life is a few simulated days.
PIECES = tuple(
    PlannedItem(
        key=f"{kind}:{channel}:{n}",
        type=kind,
        channel=channel,
        piece=n,
        due=date(2026, 3, 4 + i),
        topic=topic,
        min_words=300 if kind == "blog_post" else None,
        max_words=900 if kind == "blog_post" else None,
        max_chars=1300 if kind == "social_post" else None,
    )
    for i, (kind, channel, n, topic) in enumerate(
        (
            ("blog_post", "blog", 1, "Reliable onboarding: a guide for operations leads"),
            ("social_post", "linkedin", 1, "One question about hands-on support"),
            ("social_post", "linkedin", 2, "A number that matters: demo requests"),
        )
    )
)
PROJECT = uuid.UUID("00000000-0000-4000-8000-00000000c1c1")
CLIENT_REF = uuid.UUID(int=77)
#: Kill points tried in CI: spread evenly over the cycle (every one: `AICMO_KILL_STRIDE=1`,
#: about 150 lives; production's and delivery's own kill tests try each of theirs).
STRIDE = int(os.environ.get("AICMO_KILL_STRIDE", "8"))


@dataclass
class Saga:
    """The stand-in saga's durable state: whether the period was delivered."""

    delivered: bool = False


class SagaStandIn(Actor[Tick | PeriodDelivered]):
    subscribes = (Tick, PeriodDelivered)

    def __init__(self, saga: Saga, client: ClientInfo) -> None:
        self.saga = saga
        self.client = client

    async def receive(self, message: Tick | PeriodDelivered) -> None:
        if isinstance(message, PeriodDelivered):
            self.saga.delivered = True
        elif not self.saga.delivered:
            command = ProducePeriod(
                project_id=PROJECT,
                idempotency_key=f"{PROJECT}:production",
                client=self.client,
                package=PACKAGE,
                brief={k: v for k, v in intake_answers("Northwind Labs").items() if k != "action"},
                plan_version=1,
                items=PIECES,
            )
            await self.ctx.ref("production.studio", ProducePeriod).tell(command)


def _cycle(
    engine: AsyncEngine, clock: FakeClock, outside: Outside, alerts: list[AlertRequested], folder: Path, saga: Saga
) -> ActorSystem:
    settings = Settings(
        database_url=str(engine.url), seed=5, tick_interval_s=3600, log_level="warning", delivery_dir=folder
    )
    client = ClientInfo(
        client_ref=CLIENT_REF,
        company="Northwind Labs",
        contact_name="Ann Lee",
        contact_email=CLIENT_ADDRESS,
        timezone="Europe/Berlin",
        country="DE",
        webhook_url=HOOK,
    )
    stand_ins = SupervisorSpec(
        "stand-ins",
        children=[
            ChildSpec("cam.alerts", lambda: Alerts(alerts)),
            ChildSpec("orchestration.saga", lambda: SagaStandIn(saga, client)),
        ],
        max_restarts=100,
    )
    after = AfterDeal(engine).supervisors(
        settings,
        secret=SECRET,
        mail_from="hello@agency.example",
        transport=lambda: outside,
        http=outside.receiver.client,
        threads=False,
    )
    # The modules of the cycle only (the saga's own steps are test_after_deal_chain.py's).
    modules = [spec for spec in after if spec.id in ("production", "qc", "client_review", "delivery")]
    return ActorSystem(settings, clock=clock, children=[stand_ins, *modules])


async def _life(
    engine: AsyncEngine,
    clock: FakeClock,
    outside: Outside,
    folder: Path,
    saga: Saga,
    n: int,
    alerts: list[AlertRequested],
) -> bool:
    """One life on an auto-jumping clock, killed at the n-th kill point of a module actor of the
    delivery cycle (True), or run until the period is delivered (False)."""
    kinds = (killpoints.COMMITTED, killpoints.PUBLISH, killpoints.TELL, killpoints.SEND)
    kill = KillAt(n, kinds=kinds, actors=MODULE_ACTORS)
    system = _cycle(engine, clock, outside, alerts, folder, saga)
    with killpoints.installed(kill.hook):
        await kill.until(system.start())
        for _ in range(60):
            if kill.reached.is_set() or saga.delivered:
                break
            await kill.until(clock.sleep(3 * 3600))
            if not kill.reached.is_set():
                await _client_acts(engine, clock, outside)
        if kill.reached.is_set():
            await kill.kill(system)
            return True
    await system.stop()
    return False


async def test_killed_at_kill_points_of_the_cycle_each_piece_is_delivered_once_per_method(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    if engine.url.get_backend_name() != "sqlite":
        pytest.skip("the kill points on SQLite; PostgreSQL runs the whole cycle above")
    template = tmp_path / "template.db"
    made = make_engine(f"sqlite+aiosqlite:///{template}")
    await ensure_schema(made)
    await made.dispose()
    n = 1
    runs: list[int] = []
    unconfirmed_runs: list[int] = []
    while True:
        target = tmp_path / "run.db"
        shutil.copyfile(template, target)
        folder = tmp_path / f"deliveries-{n}"
        run_engine = make_engine(f"sqlite+aiosqlite:///{target}")
        try:
            clock = FakeClock(START)
            outside = Outside(Receiver(seed=5, secret=SECRET, now=clock.now, faults=False))
            outside.receiver.clients[HOST] = str(CLIENT_REF)
            alerts: list[AlertRequested] = []
            saga = Saga()
            killed = await _life(run_engine, clock, outside, folder, saga, n, alerts)
            if killed:
                assert not await _life(run_engine, clock, outside, folder, saga, 10**9, alerts), f"{n}: again?"
            runs.append(n)
            sent_twice = [m for m, c in Counter(str(m["Message-ID"]) for m in outside.sent).items() if c > 1]
            assert not sent_twice, f"killed at point {n}: sent twice: {sent_twice}"
            unconfirmed = await _rows(run_engine, "SELECT key FROM delivery_deliveries WHERE state = 'unconfirmed'")
            if unconfirmed:
                # Killed inside a delivery email's send: it may have arrived, so it is never sent
                # again, and a person is told to check with the client.
                assert any(a.idempotency_key.endswith(":failing") for a in alerts), n
                unconfirmed_runs.append(n)
            else:
                assert saga.delivered, f"killed at point {n}: the period was not delivered"
                await _check_delivered(run_engine, outside, folder, f"killed at point {n}", items=len(PIECES))
        finally:
            await run_engine.dispose()
        if not killed:
            break
        n += STRIDE
    assert len(runs) * STRIDE > 60, f"only {n} kill points: the cycle went through fewer boundaries than expected"
    assert len(unconfirmed_runs) <= len(PIECES), unconfirmed_runs
