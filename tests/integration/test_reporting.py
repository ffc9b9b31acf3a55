"""Reporting on both databases: `reporting.reporter` in an actor system on a fake clock.

A client is signed (told twice), its project opened, its plan approved; items are reviewed,
delivered (one late); KPIs are imported; the CAM funnel is counted; a month passes: exactly one
report email per period, the PDF attached and readable, `ReportSent` and `KpiMeasured` published.
Then the reporter is killed at every kill point of the tick that makes the next report, and
started again: the report is recorded once and its email sent at most once (exactly once
unless the kill fell inside the send itself, which is never repeated).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.reporting import REPORTER, ReportingStore, reporting_supervisor
from aicmo_actors.reporting.reporter import planned_item_id
from aicmo_actors.reporting.rules import parse_kpi_csv
from aicmo_actors.reporting.tables import reporting_emails, reporting_items, reporting_reports
from aicmo_actors.runtime import ActorSystem, FakeClock, RuntimeSettings, killpoints
from aicmo_actors.storage.client_mail import SENT, UNCONFIRMED
from contracts.base import Event
from contracts.cam import Classification, ClientSigned, EmailSent, ReplyCategory, ReplyClassified
from contracts.client_review import ItemReviewed
from contracts.clients import ClientInfo
from contracts.delivery import ItemDelivered
from contracts.orchestration import ProjectOpened
from contracts.packages import Deliverable, Kpi, PackageSpec
from contracts.production import ItemLate
from contracts.reporting import KpiMeasured, ReportSent
from contracts.runtime import Tick
from contracts.strategy import PeriodPlanned, PlanApproved, PlannedItem
from tests.integration.actor_kills import KillAt
from tests.integration.delivery_world import MemoryTransport
from tests.integration.module_run import ModuleRun

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=5)
START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Logistics",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    timezone="Europe/Berlin",
    country="DE",
)
PACKAGE = PackageSpec(
    name="growth",
    title="Growth",
    price=Decimal("2000"),
    currency="EUR",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=2, channel="blog"),),
    review_rounds=2,
    turnaround_days=5,
    reporting="monthly",
    kpis=(
        Kpi(name="organic_sessions", target=1000, unit="sessions"),
        Kpi(name="cost_per_lead", target=50, unit="EUR", direction="down"),
    ),
)
ITEMS = (
    PlannedItem(key="blog_post:blog:1", type="blog_post", channel="blog", piece=1, due=date(2027, 1, 15), topic="a"),
    PlannedItem(key="blog_post:blog:2", type="blog_post", channel="blog", piece=2, due=date(2027, 1, 25), topic="b"),
)
#: 1 February 2027, 08:00 in Berlin (UTC+1): January's report is due.
DUE_JANUARY = datetime(2027, 2, 1, 7, 0, tzinfo=UTC)
DUE_FEBRUARY = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)
CSV = """client,kpi,period,value
Acme Logistics,organic_sessions,2027-01,1200
ann@acme.example,cost_per_lead,2027-01,61.5
"""


@dataclass
class Run(ModuleRun):
    transport: MemoryTransport
    actor: ClassVar[str] = REPORTER

    async def publish(self, message: Event) -> None:
        await self.system.events.publish(message)
        await self.system.settle()

    def make(self, kind: type[Any], **fields: Any) -> Any:
        return self.system.message(kind, **fields)


def build(engine: AsyncEngine, clock: FakeClock, transport: MemoryTransport) -> ActorSystem:
    spec = reporting_supervisor(
        ReportingStore(engine),
        transport=lambda: transport,
        mail_from="reports@agency.example",
        agency_name="Bright Agency",
        hour=8,
    )
    return ActorSystem(SETTINGS, clock=clock, children=[spec])


@asynccontextmanager
async def running(engine: AsyncEngine, transport: MemoryTransport, at: datetime = START) -> AsyncIterator[Run]:
    clock = FakeClock(at, autojump=False)
    system = build(engine, clock, transport)
    async with system:
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events, transport=transport)


def signed(run: Run) -> ClientSigned:
    return run.make(
        ClientSigned,
        deal_id=7,
        lead_id=70,
        campaign="spring",
        client=CLIENT,
        package=PACKAGE,
        start=date(2027, 1, 4),
        signed_at=START,
    )


async def story(run: Run, store: ReportingStore) -> None:
    """Everything January holds, as the other modules publish it."""
    await run.publish(signed(run))
    await run.publish(signed(run))  # published again until the project opens: one client
    await run.publish(run.make(ProjectOpened, project_id=PROJECT, deal_id=7))
    # The client's report shows campaign "spring"'s funnel: counted from when a schedule names
    # it (the reporter reads the schedules again at every tick).
    await store.set_schedule("Acme Logistics", campaigns=["spring"], now=run.clock.now())
    await run.tick()
    await run.publish(
        run.make(PlanApproved, project_id=PROJECT, version=1, approved_at=START, deliverables=2, items=ITEMS)
    )
    first, second = (planned_item_id(PROJECT, item.key) for item in ITEMS)
    review = {"project_id": PROJECT, "batch_key": "b1", "by": "page"}
    at = datetime(2027, 1, 12, 10, tzinfo=UTC)
    await run.publish(run.make(ItemReviewed, item_id=first, version=1, verdict="approved", at=at, **review))
    await run.publish(run.make(ItemReviewed, item_id=second, version=1, verdict="changes", at=at, **review))
    await run.publish(run.make(ItemReviewed, item_id=second, version=2, verdict="approved", at=at, **review))
    delivered = {"project_id": PROJECT, "version": 1, "method": "email"}
    on_time, late = datetime(2027, 1, 14, 16, tzinfo=UTC), datetime(2027, 1, 27, 16, tzinfo=UTC)
    await run.publish(run.make(ItemDelivered, item_id=first, delivered_at=on_time, **delivered))
    await run.publish(run.make(ItemLate, project_id=PROJECT, item_id=second, due=date(2027, 1, 25), state="approved"))
    await run.publish(run.make(ItemDelivered, item_id=second, delivered_at=late, **delivered))
    await run.publish(run.make(ItemDelivered, item_id=second, delivered_at=late, **delivered))  # said again
    for outbound in (1, 2, 3, 3):  # the last one twice: counted once
        sent = run.make(
            EmailSent,
            outbound_id=outbound,
            lead_id=outbound,
            campaign="spring",
            step=1,
            mailbox="m@agency.example",
            email_message_id=f"<{outbound}@agency.example>",
            recipient=f"lead{outbound}@x.example",
            timestamp=datetime(2027, 1, 10, 9, tzinfo=UTC),
        )
        await run.publish(sent)
    for inbound, category in ((1, ReplyCategory.MEETING_REQUEST), (2, ReplyCategory.AUTO_REPLY)):
        reply = run.make(
            ReplyClassified,
            inbound_id=inbound,
            mailbox="m@agency.example",
            lead_id=inbound,
            campaign="spring",
            outbound_id=inbound,
            matched_by="message_id",
            classification=Classification(category=category, confidence=0.9, reason="test"),
            timestamp=datetime(2027, 1, 11, 9, tzinfo=UTC),
        )
        await run.publish(reply)
    parsed = parse_kpi_csv(CSV)
    assert parsed.errors == []
    assert await store.import_kpis(parsed.rows, source="csv:test", now=run.clock.now()) == []


def pdf_text(message: Any) -> str:
    (attached,) = [a for a in message.iter_attachments() if a.get_content_type() == "application/pdf"]
    reader = PdfReader(io.BytesIO(attached.get_content()))
    return " ".join(" ".join((page.extract_text() or "") for page in reader.pages).split())


async def report_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(sa.select(reporting_reports))).mappings()]


async def email_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        query = sa.select(reporting_emails.c.idempotency_key, reporting_emails.c.status)
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def test_a_later_periods_calendar_is_planned_under_the_ids_production_gives_its_items(
    engine: AsyncEngine,
) -> None:
    transport = MemoryTransport()
    february = tuple(item.model_copy(update={"due": item.due.replace(month=2)}) for item in ITEMS)
    async with running(engine, transport) as run:
        await run.publish(run.make(PeriodPlanned, project_id=PROJECT, period=2, version=1, items=february))
        first = planned_item_id(PROJECT, ITEMS[0].key, 2)
        delivered_at = datetime(2027, 2, 10, 16, tzinfo=UTC)
        await run.publish(
            run.make(
                ItemDelivered, project_id=PROJECT, item_id=first, version=1, method="email", delivered_at=delivered_at
            )
        )
    async with engine.connect() as conn:
        rows = {str(r.item_id): r for r in await conn.execute(sa.select(reporting_items))}
    assert set(rows) == {str(planned_item_id(PROJECT, item.key, 2)) for item in ITEMS}
    assert rows[str(first)].planned and rows[str(first)].due == february[0].due
    assert rows[str(first)].delivered_at == delivered_at


async def test_one_report_per_period_with_the_pdf_attached(engine: AsyncEngine) -> None:
    store, transport = ReportingStore(engine), MemoryTransport()
    async with running(engine, transport) as run:
        await story(run, store)
        await run.tick(datetime(2027, 1, 31, 23, 30, tzinfo=UTC))  # February in Berlin, before 08:00
        await run.tick(DUE_JANUARY - timedelta(minutes=1))
        assert transport.sent == []
        measured = run.of(KpiMeasured)
        assert {(m.kpi, m.value, m.attained) for m in measured} == {
            ("organic_sessions", 1200.0, True),
            ("cost_per_lead", 61.5, False),
        }
        await run.tick(DUE_JANUARY)
        await run.tick(DUE_JANUARY + timedelta(hours=1))
        await run.tick(DUE_JANUARY + timedelta(days=3))
        assert len(run.of(KpiMeasured)) == 2  # announced once each
    (message,) = transport.sent
    assert message["To"].addresses[0].addr_spec == "ann@acme.example"
    assert str(message["Subject"]) == "Acme Logistics: your report for 2027-01"
    body = message.get_body(("html",))
    assert body is not None
    html = body.get_content()
    assert "Acme Logistics: report for 2027-01" in html and "not attained" in html
    text = pdf_text(message)
    assert "Acme Logistics: report for 2027-01" in text
    assert "Planned 2, delivered 2, on time 1 (50 %)" in text
    assert "3 verdicts on 2 pieces: 2 approved, 1 asked for changes." in text
    assert "organic_sessions: 1,200 sessions (target >= 1,000): attained" in text
    assert "cost_per_lead: 61.5 EUR (target <= 50): not attained" in text
    assert "spring: 3 emails sent, 1 replies (33 %), 1 positive, 1 clients signed." in text
    (sent,) = run.of(ReportSent)
    assert (sent.client_ref, sent.project_id, sent.period, sent.formats) == (
        CLIENT.client_ref,
        PROJECT,
        "2027-01",
        ("html", "pdf"),
    )
    (row,) = await report_rows(engine)
    assert (row["period"], row["first_day"], row["last_day"]) == ("2027-01", date(2027, 1, 1), date(2027, 1, 31))

    # February: a second report, after a restart.
    async with running(engine, transport, at=DUE_JANUARY + timedelta(days=3)) as run:
        await run.tick(DUE_FEBRUARY - timedelta(minutes=1))
        assert len(transport.sent) == 1
        await run.tick(DUE_FEBRUARY)
        await run.tick(DUE_FEBRUARY + timedelta(minutes=1))
        assert [e.period for e in run.of(ReportSent)] == ["2027-02"]
    assert [str(m["Subject"]) for m in transport.sent][1] == "Acme Logistics: your report for 2027-02"
    assert "Planned 0, delivered 0" in pdf_text(transport.sent[1])
    assert sorted(r["period"] for r in await report_rows(engine)) == ["2027-01", "2027-02"]


async def _life(engine: AsyncEngine, transport: MemoryTransport, n: int, at: datetime) -> bool:
    """One life of the reporter: started, one tick at `at`; killed at its n-th kill point (True)
    or run to the end (False)."""
    kill = KillAt(n, actors={REPORTER})
    clock = FakeClock(at, autojump=False)
    system = build(engine, clock, transport)
    with killpoints.installed(kill.hook):
        await kill.until(system.start())
        if not kill.reached.is_set():
            await kill.until(system.events.publish(system.message(Tick, seq=1, at=clock.now(), interval_s=60.0)))
            await kill.until(system.settle())
        if kill.reached.is_set():
            await kill.kill(system)
            return True
    await system.stop()
    return False


async def _signed_only(engine: AsyncEngine, transport: MemoryTransport, n: int) -> ClientInfo:
    client = CLIENT.model_copy(
        update={"client_ref": uuid.UUID(int=n), "company": f"Client {n}", "contact_email": f"c{n}@client.example"}
    )
    async with running(engine, transport) as run:
        await run.publish(
            run.make(ClientSigned, **{**signed(run).model_dump(exclude={"message_id"}), "deal_id": n, "client": client})
        )
        await run.publish(run.make(ProjectOpened, project_id=uuid.UUID(int=1000 + n), deal_id=n))
    return client


async def test_killed_at_every_kill_point_of_the_reporting_tick_one_report_at_most_one_email(
    engine: AsyncEngine,
) -> None:
    transport = MemoryTransport()
    n = 0
    while True:
        n += 1
        client = await _signed_only(engine, transport, n)
        killed = await _life(engine, transport, n, DUE_JANUARY)
        assert not await _life(engine, transport, 10_000, DUE_JANUARY + timedelta(minutes=1))
        reports = [r for r in await report_rows(engine) if r["client_ref"] == str(client.client_ref)]
        assert [r["period"] for r in reports] == ["2027-01"], n
        (email,) = [e for e in await email_rows(engine) if e["idempotency_key"] == reports[0]["email_key"]]
        to_client = [m for m in transport.sent if m["To"].addresses[0].addr_spec == client.contact_email]
        assert email["status"] in (SENT, UNCONFIRMED), n
        # SENT: exactly once; UNCONFIRMED (killed inside the send): at most once, never again.
        assert len(to_client) == 1 if email["status"] == SENT else len(to_client) <= 1, n
        if not killed:
            assert email["status"] == SENT
            break
    assert n > 10  # every kill point of a tick that reports was tried
    await _life(engine, transport, 10_000, DUE_JANUARY + timedelta(hours=2))
    assert len(await report_rows(engine)) == n and len(transport.sent) <= n
