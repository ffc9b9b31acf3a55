"""Retention on both databases: `retention.monitor` in an actor system on a fake clock.

A client signed, then billing, review, production, delivery, reporting and reply events:
the band moves green -> amber -> red with the reasons behind it, the owner is alerted once,
through a restart mid-way and with every event heard twice; decay brings it back over time.
Renewal reminders at 60, 30 and 7 days before the end, each once, across a restart; none for
a cancelled project. A notice written and not told (a kill) is told at the next start, once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.retention import MONITOR, RetentionStore, retention_supervisor
from aicmo_actors.retention.repos import Signed
from aicmo_actors.retention.rules import Scoring
from aicmo_actors.retention.signals import NewSignal
from aicmo_actors.retention.tables import (
    retention_clients,
    retention_contracts,
    retention_notices,
    retention_renewals,
)
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings, SupervisorSpec
from contracts.billing import ClientOnHold, InvoiceIssued, PaymentReceived, ReminderSent
from contracts.cam import (
    AlertRequested,
    Classification,
    ClientSigned,
    ContractRenewed,
    ReplyCategory,
    ReplyClassified,
)
from contracts.client_review import ItemReviewed, ReviewRequested
from contracts.clients import ClientInfo
from contracts.delivery import DeliveryFailing, ItemDelivered
from contracts.orchestration import ProjectFinished, ProjectOpened
from contracts.packages import Deliverable, PackageSpec
from contracts.production import ItemLate
from contracts.reporting import KpiMeasured
from contracts.retention import ClientHealthChanged, RenewalDue
from tests.integration.module_run import ModuleRun

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=7)
START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
INVOICE = uuid.UUID("9a9a9a9a-1111-4222-8333-444444444444")
PAID = uuid.UUID("9b9b9b9b-1111-4222-8333-444444444444")
CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Logistics",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    billing_email="accounts@acme.example",
)
PACKAGE = PackageSpec(
    name="starter",
    title="Starter",
    price=Decimal("900.00"),
    currency="EUR",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=1, channel="blog", min_words=300, max_words=900),),
    review_rounds=1,
    turnaround_days=2,
    reporting="monthly",
    term_months=3,
)


class AlertsSink(Actor[AlertRequested]):
    """Stands in for cam.alerts: keeps every AlertRequested told."""

    def __init__(self, seen: list[AlertRequested]) -> None:
        self.seen = seen

    async def receive(self, message: AlertRequested) -> None:
        self.seen.append(message)


@dataclass
class Run(ModuleRun):
    alerts: list[AlertRequested]
    actor: ClassVar[str] = MONITOR

    async def publish(self, event_type: type[Any], /, **fields: Any) -> None:
        await self.system.events.publish(self.system.message(event_type, **fields))
        await self.system.settle()

    @property
    def keys(self) -> list[str]:
        return [a.idempotency_key for a in self.alerts]


@asynccontextmanager
async def running(store: RetentionStore, clock: FakeClock, alerts: list[AlertRequested]) -> AsyncIterator[Run]:
    spec = retention_supervisor(store, half_life_days=30, renewal_days=(60, 30, 7))
    cam = SupervisorSpec("cam", children=[ChildSpec("cam.alerts", lambda: AlertsSink(alerts))])
    system = ActorSystem(SETTINGS, clock=clock, children=[cam, spec])
    async with system:
        events: list[Any] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events, alerts)


def fresh(engine: AsyncEngine) -> tuple[RetentionStore, FakeClock, list[AlertRequested]]:
    return RetentionStore(engine), FakeClock(START, autojump=False), []


async def sign(run: Run, *, client: ClientInfo = CLIENT, deal: int = 1, lead: int = 7, term: int = 3) -> None:
    package = PACKAGE.model_copy(update={"term_months": term})
    for _ in range(2):  # cam publishes it again until the project opens
        await run.publish(
            ClientSigned,
            deal_id=deal,
            lead_id=lead,
            campaign="spring",
            client=client,
            package=package,
            start=START.date(),
            signed_at=START,
        )


async def one_client(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(retention_clients))).mappings().all()
    return dict(row)


async def test_signals_move_the_band_to_red_with_reasons_and_alert_once(engine: AsyncEngine) -> None:
    store, clock, alerts = fresh(engine)
    item, other = uuid.uuid4(), uuid.uuid4()
    async with running(store, clock, alerts) as run:
        await sign(run, term=12)
        for invoice, due in ((INVOICE, date(2027, 1, 7)), (PAID, date(2027, 1, 5))):
            await run.publish(
                InvoiceIssued,
                invoice_id=invoice,
                number="2027-0001" if invoice == INVOICE else "2027-0002",
                client_ref=CLIENT.client_ref,
                kind="retainer",
                total=Decimal("900"),
                currency="EUR",
                issued_on=START.date(),
                due_on=due,
            )
        await run.publish(
            PaymentReceived,
            invoice_id=PAID,
            number="2027-0002",
            client_ref=CLIENT.client_ref,
            amount=Decimal("900"),
            currency="EUR",
            balance=Decimal("0"),
            paid_in_full=True,
            received_on=START.date(),
        )
        # A review batch's answer comes before the project is tied to the client: it waits.
        await run.publish(ReviewRequested, project_id=PROJECT, batch_key=f"{PROJECT}:review:1", deadline=START)
        await run.tick(START + timedelta(days=4))
        await run.publish(
            ItemReviewed,
            project_id=PROJECT,
            batch_key=f"{PROJECT}:review:1",
            item_id=item,
            version=1,
            verdict="changes",
            by="page",
            at=clock.now(),
        )
        row = await one_client(engine)
        # 2027-0001 unpaid past its due date -6, 2027-0002 paid on time +3 four days ago (+2.7);
        # the review's answer is not tied to the client yet.
        assert (row["band"], row["score"]) == ("green", 96.7)
        assert row["reasons"] == ["invoice 2027-0001 unpaid past its due date (2027-01-07) (-6.0)"]
        await run.publish(ProjectOpened, project_id=PROJECT, deal_id=1)
        row = await one_client(engine)
        assert row["band"] == "green" and row["score"] == 87.7  # changes -5, slow answer -4
        assert row["reasons"][0].startswith("invoice 2027-0001 unpaid")
        assert row["reasons"][1].startswith("changes asked on item")

        # Money and delivery trouble: amber.
        for _ in range(2):  # everything heard twice counts once
            await run.publish(
                ReminderSent,
                invoice_id=INVOICE,
                number="2027-0001",
                client_ref=CLIENT.client_ref,
                level=1,
                days_overdue=7,
            )
            await run.publish(ItemLate, project_id=PROJECT, item_id=other, due=date(2027, 1, 6), state="drafting")
            await run.publish(
                DeliveryFailing, project_id=PROJECT, item_id=other, version=1, method="webhook", attempts=5, error="503"
            )
            await run.publish(
                ReminderSent,
                invoice_id=INVOICE,
                number="2027-0001",
                client_ref=CLIENT.client_ref,
                level=2,
                days_overdue=14,
            )
        (amber,) = run.of(ClientHealthChanged)
        assert (amber.band, amber.previous) == ("amber", "green") and 40 <= amber.score < 70
        # amber at the failing delivery: 87.7 - 8 (reminder 1) - 6 (late) - 6 (failing)
        assert amber.reasons[0] == "invoice 2027-0001: reminder 1 sent, 7 days overdue (-8.0)"
        assert run.alerts == []

    # A restart mid-way: the next incarnation goes on from the database.
    async with running(store, clock, alerts) as run:
        await run.tick(clock.now() + timedelta(hours=1))
        assert run.of(ClientHealthChanged) == []  # nothing told twice
        for _ in range(2):
            await run.publish(ClientOnHold, client_ref=CLIENT.client_ref, reason="overdue", invoices=("2027-0001",))
            await run.publish(
                KpiMeasured,
                client_ref=CLIENT.client_ref,
                kpi="leads",
                period="2027-01",
                value=3,
                target=10,
                attained=False,
            )
            await run.publish(
                ReplyClassified,
                inbound_id=41,
                mailbox="replies",
                lead_id=None,
                campaign=None,
                outbound_id=None,
                matched_by=None,
                classification=Classification(
                    category=ReplyCategory.NOT_INTERESTED, confidence=0.9, from_address="Accounts@Acme.example"
                ),
            )
        (red,) = run.of(ClientHealthChanged)
        assert (red.band, red.previous) == ("red", "amber") and red.score < 40
        assert red.reasons[0].startswith("deliveries on hold for unpaid invoices (2027-0001)")
        assert len(red.reasons) == 3
        (alert,) = run.alerts
        assert alert.idempotency_key == f"retention:{CLIENT.client_ref}:red:1" and alert.kind == "retention"
        assert alert.summary.startswith("Acme Logistics is red: health")
        assert "python run.py health 11111111" in alert.text
        await run.tick(clock.now() + timedelta(hours=1))
        assert len(run.alerts) == 1

        # Paid (late) and time passes: decay brings it back, without a second alert.
        await run.publish(
            PaymentReceived,
            invoice_id=INVOICE,
            number="2027-0001",
            client_ref=CLIENT.client_ref,
            amount=Decimal("900"),
            currency="EUR",
            balance=Decimal("0"),
            paid_in_full=True,
            received_on=clock.now().date(),
            days_late=20,
        )
        for days in (30, 60, 90):
            await run.tick(START + timedelta(days=days))
        bands = [e.band for e in run.of(ClientHealthChanged)]
        assert bands[0] == "red" and bands[-1] == "green"
        assert len(run.alerts) == 1
    row = await one_client(engine)
    assert (row["band"], row["red_entries"]) == ("green", 1)
    async with engine.connect() as conn:
        told = (await conn.execute(sa.select(retention_notices.c.told_at))).scalars().all()
    assert told and all(t is not None for t in told)


async def test_a_reply_on_the_clients_own_thread_and_deliveries(engine: AsyncEngine) -> None:
    store, clock, alerts = fresh(engine)
    item = uuid.uuid4()
    async with running(store, clock, alerts) as run:
        await sign(run)
        await run.publish(ProjectOpened, project_id=PROJECT, deal_id=1)
        await run.publish(
            ReplyClassified,
            inbound_id=5,
            mailbox="replies",
            lead_id=7,
            campaign="spring",
            outbound_id=3,
            matched_by="message_id",
            classification=Classification(category=ReplyCategory.COMPLAINT, confidence=0.8),
        )
        await run.publish(ItemLate, project_id=PROJECT, item_id=item, due=date(2027, 1, 2), state="review")
        for method in ("email", "webhook"):  # one delivery signal per item and version
            await run.publish(
                ItemDelivered, project_id=PROJECT, item_id=item, version=1, method=method, delivered_at=clock.now()
            )
    breakdown = await store.breakdown(str(CLIENT.client_ref), clock.now(), Scoring(), (60, 30, 7))
    kinds = {w.kind: w for w in breakdown.health.contributions}
    assert set(kinds) == {"reply_negative", "item_late", "delivered_late"}
    assert kinds["reply_negative"].weight == -15.0 and "weak tie" not in kinds["reply_negative"].reason
    assert kinds["delivered_late"].weight == -2.0 and "2 days after its due date" in kinds["delivered_late"].reason
    assert breakdown.health.score == 77.0


async def test_renewal_reminders_at_their_days_once_each(engine: AsyncEngine) -> None:
    store, clock, alerts = fresh(engine)
    cancelled = CLIENT.model_copy(
        update={"client_ref": uuid.uuid4(), "company": "Gone Ltd", "contact_email": "x@gone.example"}
    )
    end = date(2027, 4, 4)  # START + 3 months

    def at(day: date) -> datetime:
        return datetime.combine(day, START.timetz())

    async with running(store, clock, alerts) as run:
        await sign(run)
        await sign(run, client=cancelled, deal=2, lead=8)
        other = uuid.uuid4()
        await run.publish(ProjectOpened, project_id=other, deal_id=2)
        await run.publish(ProjectFinished, project_id=other, outcome="compensated", reason="client cancelled")
        await run.publish(ProjectOpened, project_id=PROJECT, deal_id=1)
        await run.tick(at(end - timedelta(days=61)))
        assert run.of(RenewalDue) == []
        await run.tick(at(end - timedelta(days=60)))
        await run.tick(at(end - timedelta(days=60)) + timedelta(hours=5))
        await run.tick(at(end - timedelta(days=30)))
    async with running(store, clock, alerts) as run:
        await run.tick(at(end - timedelta(days=29)))
        await run.tick(at(end - timedelta(days=7)))
        await run.tick(at(end - timedelta(days=1)))
        await run.tick(at(end))
        await run.tick(at(end + timedelta(days=3)))
        later = run.of(RenewalDue)
    assert [(e.days_left, e.project_id, e.client_ref) for e in later] == [(7, PROJECT, CLIENT.client_ref)]
    assert run.keys == [f"retention:renewal:1:2027-04-04:{d}" for d in (60, 30, 7)]
    assert alerts[0].summary == "Acme Logistics: the contract ends 2027-04-04 (in 60 days): time to talk about renewal"
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(retention_renewals).order_by(retention_renewals.c.days))).mappings().all()
    assert [(r["deal_id"], r["days"], r["due_on"], r["state"]) for r in rows] == [
        (1, 7, date(2027, 3, 28), "sent"),
        (1, 30, date(2027, 3, 5), "sent"),
        (1, 60, date(2027, 2, 3), "sent"),
    ]
    assert {r["contract_end"] for r in rows} == {end}


async def test_a_renewed_contract_moves_its_end_once_and_is_reminded_again_before_the_new_one(
    engine: AsyncEngine,
) -> None:
    store, clock, alerts = fresh(engine)
    end, renewed_end = date(2027, 4, 4), date(2027, 7, 4)  # START + 3 months, then 3 more

    def at(day: date) -> datetime:
        return datetime.combine(day, START.timetz())

    def renewal(number: int, months: int, starts: date, ends: date) -> dict[str, Any]:
        return {
            "deal_id": 1,
            "client_ref": str(CLIENT.client_ref),
            "number": number,
            "months": months,
            "starts_on": starts,
            "ends_on": ends,
            "renewed_at": clock.now(),
        }

    async with running(store, clock, alerts) as run:
        await sign(run)
        await run.publish(ProjectOpened, project_id=PROJECT, deal_id=1)
        await run.tick(at(end - timedelta(days=30)))  # 60 skipped, 30 sent
        # The second renewal heard before the first (cannot happen from cam, which announces
        # them in order): not applied until the first is.
        await run.publish(ContractRenewed, **renewal(2, 1, renewed_end, date(2027, 8, 4)))
        for _ in range(3):  # cam says it again until orchestration answers: applied once
            await run.publish(ContractRenewed, **renewal(1, 3, end, renewed_end))
        await run.tick(at(end - timedelta(days=29)))
        await run.tick(at(end - timedelta(days=7)))  # the old end's 7-day reminder: not any more
        await run.tick(at(renewed_end - timedelta(days=60)))
        await run.tick(at(renewed_end - timedelta(days=30)))
    assert run.keys == [
        "retention:renewal:1:2027-04-04:30",
        "retention:renewal:1:2027-07-04:60",
        "retention:renewal:1:2027-07-04:30",
    ]
    async with engine.connect() as conn:
        [contract] = (await conn.execute(sa.select(retention_contracts))).mappings().all()
        rows = (await conn.execute(sa.select(retention_renewals))).mappings().all()
    assert (contract["ends_on"], contract["term_months"], contract["renewals"]) == (renewed_end, 6, 1)
    assert sorted((r["contract_end"], r["days"], r["state"]) for r in rows) == [
        (end, 30, "sent"),
        (end, 60, "skipped"),
        (renewed_end, 30, "sent"),
        (renewed_end, 60, "sent"),
    ]
    breakdown = await store.breakdown(
        str(CLIENT.client_ref), at(renewed_end - timedelta(days=20)), Scoring(), (60, 30, 7)
    )
    assert breakdown.contract_end == renewed_end and breakdown.next_renewal == renewed_end - timedelta(days=7)


async def test_a_contract_signed_late_gets_the_nearest_reminder_only(engine: AsyncEngine) -> None:
    store, clock, alerts = fresh(engine)
    async with running(store, clock, alerts) as run:
        await sign(run, term=1)  # ends 2027-02-04: 31 days away, the 60-day reminder is past
        await run.tick(START + timedelta(hours=1))
        await run.tick(START + timedelta(days=1, hours=1))
        (first, second) = run.of(RenewalDue)
    assert (first.days_left, second.days_left) == (31, 30)
    assert run.keys == ["retention:renewal:1:2027-02-04:60", "retention:renewal:1:2027-02-04:30"]


async def test_a_notice_written_but_not_told_is_told_at_the_next_start_once(engine: AsyncEngine) -> None:
    """A kill after the transaction that turned the client red, before anything was said."""
    store, clock, alerts = fresh(engine)
    scoring = Scoring()
    signed = Signed(
        client_ref=str(CLIENT.client_ref),
        company=CLIENT.company,
        contact_email=CLIENT.contact_email,
        billing_email=None,
        deal_id=1,
        lead_id=7,
        campaign="spring",
        package="starter",
        term_months=12,
        starts_on=START.date(),
        ends_on=date(2028, 1, 4),
        signed_at=START,
    )
    assert await store.sign(signed, START, scoring) == (True, False)
    bad = [
        NewSignal(f"k{i}", "client_on_hold", -20.0, START, f"hold {i}", client_ref=str(CLIENT.client_ref))
        for i in range(4)
    ]
    assert await store.record(bad, START, scoring) == (4, True)
    assert await store.record(bad, START, scoring) == (0, False)
    assert [n.key for n in await store.pending()] == [f"band:{CLIENT.client_ref}:1"]
    for _ in range(2):  # told as the first incarnation starts; not again at the second
        async with running(store, clock, alerts) as run:
            await run.tick(clock.now() + timedelta(minutes=1))
            assert run.of(ClientHealthChanged) == []
    assert await store.pending() == []
    assert [a.idempotency_key for a in alerts] == [f"retention:{CLIENT.client_ref}:red:1"]
