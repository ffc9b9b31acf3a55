"""Billing on both databases: `billing.ledger` in an actor system on a fake clock.

A client signs -> the retainer is issued, numbered and emailed with its PDF -> an extra review
round is billed -> a partial payment -> reminders on schedule with late fees (their own
invoices) -> the hold (alert once) -> the rest is paid -> released. Milestones reached by the
saga and by a person. A credit note. Told twice: done once.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.billing import LEDGER, BillingStore, billing_supervisor
from aicmo_actors.billing.repos import BillingError
from aicmo_actors.billing.tables import billing_accounts, billing_emails, billing_invoices
from aicmo_actors.gateways.transport import MailTransport, SendResult
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings, SupervisorSpec, killpoints
from contracts.base import Event
from contracts.billing import (
    ClientOnHold,
    ClientReleased,
    InvoiceCredited,
    InvoiceIssued,
    InvoiceSent,
    PaymentReceived,
    ReminderSent,
)
from contracts.cam import AlertRequested, ClientSigned, ContractRenewed
from contracts.client_review import ItemReviewed
from contracts.clients import ClientInfo
from contracts.orchestration import ProjectOpened, ProjectStepChanged
from contracts.packages import Deliverable, Milestone, PackageSpec
from tests.integration.module_run import ModuleRun

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=7)
START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
START_DAY = START.date()
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
ITEM = uuid.UUID("5a1f0c3e-7b2d-4c8e-9f10-aabbccddeeff")
CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Logistique SAS",
    contact_name="Anne Lefèvre",
    contact_email="anne@acme.example",
    billing_email="compta@acme.example",
    timezone="Europe/Paris",
    country="FR",
    billing_address="12 rue de la Paix\n75002 Paris",
    tax_id="FR40303265045",
)
MONTHLY = PackageSpec(
    name="growth",
    title="Growth: content every week",
    price=Decimal("2500.00"),
    currency="EUR",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=4, channel="blog"),),
    review_rounds=1,
    turnaround_days=5,
    reporting="monthly",
    term_months=3,
    payment_days=14,
    extra_round_price=Decimal("150.00"),
)
MILESTONES = MONTHLY.model_copy(
    update={
        "name": "relaunch",
        "billing": "milestones",
        "price": Decimal("12000.00"),
        "milestones": (
            Milestone(name="kick-off", share=Decimal("0.3"), at="signed"),
            Milestone(name="strategy approved", share=Decimal("0.3"), at="strategy"),
            Milestone(name="site launched", share=Decimal("0.4")),
        ),
    }
)


@dataclass
class MemoryTransport:
    sent: list[EmailMessage] = field(default_factory=list)

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        if killpoints.hook is not None:
            await killpoints.checkpoint(killpoints.SEND)
        self.sent.append(message)
        return SendResult("accepted", 250, "2.0.0 queued")

    async def close(self) -> None:
        pass


class AlertsSink(Actor[AlertRequested]):
    def __init__(self, seen: list[AlertRequested]) -> None:
        self.seen = seen

    async def receive(self, message: AlertRequested) -> None:
        self.seen.append(message)


@dataclass
class Run(ModuleRun):
    alerts: list[AlertRequested] = field(default_factory=list)
    actor: ClassVar[str] = LEDGER

    async def publish(self, event_type: type[Event], **fields: Any) -> None:
        await self.system.events.publish(self.system.message(event_type, **fields))
        await self.system.settle()

    async def day(self, days: int = 1) -> None:
        await self.tick(self.clock.now() + timedelta(days=days), interval_s=86400.0)

    async def until(self, when: date) -> None:
        while self.clock.now().date() < when:
            await self.day()


def build(store: BillingStore, clock: FakeClock, transport: MailTransport, alerts: list[AlertRequested]) -> ActorSystem:
    spec = billing_supervisor(
        store,
        transport=lambda: transport,
        mail_from="billing@bright.example",
        agency_name="Bright Agency GmbH",
        agency_country="DE",
        agency_tax_id="DE123456789",
        agency_address="Hauptstr. 1\n10115 Berlin",
    )
    cam = SupervisorSpec("cam", children=[ChildSpec("cam.alerts", lambda: AlertsSink(alerts))])
    return ActorSystem(SETTINGS, clock=clock, children=[cam, spec])


@asynccontextmanager
async def running(engine: AsyncEngine, transport: MailTransport, at: datetime = START) -> AsyncIterator[Run]:
    clock = FakeClock(at, autojump=False)
    alerts: list[AlertRequested] = []
    system = build(BillingStore(engine), clock, transport, alerts)
    async with system:
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events, alerts=alerts)


async def signed(run: Run, package: PackageSpec = MONTHLY, *, deal_id: int = 1, start: date = START_DAY) -> None:
    await run.publish(
        ClientSigned,
        deal_id=deal_id,
        lead_id=10 + deal_id,
        campaign="q1",
        client=CLIENT,
        package=package,
        start=start,
        signed_at=run.clock.now(),
    )


async def invoice_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        query = sa.select(billing_invoices).order_by(billing_invoices.c.year, billing_invoices.c.seq)
        return [dict(r) for r in (await conn.execute(query)).mappings()]


def pdf_text(message: EmailMessage) -> str:
    (attachment,) = list(message.iter_attachments())
    data = attachment.get_content()
    return " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(data)).pages).split())


async def test_signed_to_paid_with_reminders_fees_hold_and_release(engine: AsyncEngine) -> None:
    transport = MemoryTransport()
    store = BillingStore(engine)
    async with running(engine, transport) as run:
        await signed(run)
        await signed(run)  # published again until the project opens: one account, one invoice
        await run.publish(ProjectOpened, project_id=PROJECT, deal_id=1)
        (issued,) = run.of(InvoiceIssued)
        assert (issued.number, issued.kind, issued.total, issued.currency) == (
            "2027-0001",
            "retainer",
            Decimal("2500.00"),
            "EUR",
        )
        assert (issued.issued_on, issued.due_on) == (date(2027, 1, 4), date(2027, 1, 18))
        await run.day(0)
        (sent,) = run.of(InvoiceSent)
        assert sent.number == "2027-0001"
        (mail,) = transport.sent
        assert mail["To"].addresses[0].addr_spec == "compta@acme.example"
        assert "Invoice 2027-0001" in str(mail["Subject"])
        text = pdf_text(mail)
        for expected in (
            "Invoice 2027-0001",
            "Bright Agency GmbH",
            "VAT number: DE123456789",
            "Acme Logistique SAS",
            "VAT number: FR40303265045",
            "2027-01-04 to 2027-02-03",
            "Reverse charge: VAT to be accounted for by the recipient",
            "VAT 0 %",
            "2,500.00 EUR",
            "Due date 2027-01-18",
        ):
            assert expected in text, (expected, text)

        # Review rounds: the first change request is included, the second billed, told twice once.
        for version in (1, 2, 2):
            await run.publish(
                ItemReviewed,
                project_id=PROJECT,
                batch_key="b1",
                item_id=ITEM,
                version=version,
                verdict="changes",
                by="page",
                at=run.clock.now(),
            )
        extra = [e for e in run.of(InvoiceIssued) if e.kind == "extra_round"]
        assert [(e.number, e.total) for e in extra] == [("2027-0002", Decimal("150.00"))]
        await store.billing.pay("2027-0002", "150", received_on=date(2027, 1, 4), by="test", now=run.clock.now())

        # A partial payment, recorded as the command line does; announced on the next tick.
        await run.until(date(2027, 1, 10))
        after, amount = await store.billing.pay(
            "2027-0001", "1000.00", received_on=date(2027, 1, 10), by="test", now=run.clock.now()
        )
        assert (after.state, after.balance, amount) == ("open", Decimal("1500.00"), Decimal("1000.00"))
        await run.day()
        partial = [e for e in run.of(PaymentReceived) if e.number == "2027-0001"]
        assert [(e.amount, e.balance, e.paid_in_full, e.days_late) for e in partial] == [
            (Decimal("1000.00"), Decimal("1500.00"), False, 0)
        ]

        await run.until(date(2027, 1, 24))
        assert run.of(ReminderSent) == []
        await run.day()  # Jan 25: due + 7, the first reminder, no fee
        (first,) = run.of(ReminderSent)
        assert (first.number, first.level, first.fee, first.days_overdue) == ("2027-0001", 1, Decimal("0"), 7)
        await run.until(date(2027, 2, 1))  # due + 14: 2 % of 1,500.00
        second = run.of(ReminderSent)[-1]
        assert (second.level, second.fee, second.days_overdue) == (2, Decimal("30.00"), 14)
        fees = [e for e in run.of(InvoiceIssued) if e.kind == "late_fee"]
        assert [(e.number, e.total) for e in fees] == [("2027-0003", Decimal("30.00"))]
        await run.until(date(2027, 2, 4))  # the second period's retainer
        retainers = [e for e in run.of(InvoiceIssued) if e.kind == "retainer"]
        assert [(e.number, e.issued_on) for e in retainers] == [
            ("2027-0001", date(2027, 1, 4)),
            ("2027-0004", date(2027, 2, 4)),
        ]
        await run.until(date(2027, 2, 15))  # due + 28: 3 %
        third = [e for e in run.of(ReminderSent) if e.number == "2027-0001"][-1]
        assert (third.level, third.fee) == (3, Decimal("45.00"))
        assert run.of(ClientOnHold) == []
        await run.until(date(2027, 2, 17))  # due + 30: on hold, one alert
        holds = run.of(ClientOnHold)
        assert holds and holds[0].client_ref == CLIENT.client_ref and holds[0].invoices == ("2027-0001",)
        (alert,) = run.alerts
        assert alert.idempotency_key == f"billing:hold:{CLIENT.client_ref}:1" and "Acme" in alert.summary
        await run.day()
        assert len(run.alerts) == 1

        # The rest is paid (over by 10): released on the next tick, a credit shown, no alert.
        after, _ = await store.billing.pay(
            "2027-0001", "1510.00", received_on=date(2027, 2, 18), by="test", now=run.clock.now()
        )
        assert (after.state, after.balance) == ("paid", Decimal("-10.00"))
        await run.day()
        released = run.of(ClientReleased)
        assert released and {e.client_ref for e in released} == {CLIENT.client_ref}
        # Said again once a day for a week (a release lost on its way to delivery is given
        # again, as an active hold is), then no more.
        await run.until(date(2027, 2, 28))
        said = len(run.of(ClientReleased))
        assert 8 <= said <= 10, said  # the release, then once a day for a week
        await run.until(date(2027, 3, 6))
        assert len(run.of(ClientReleased)) == said
        last = run.of(PaymentReceived)[-1]
        assert (last.balance, last.paid_in_full, last.days_late) == (Decimal("-10.00"), True, 31)
        reminders_before = len(run.of(ReminderSent))
        await run.until(date(2027, 3, 10))
        assert not [e for e in run.of(ReminderSent)[reminders_before:] if e.number == "2027-0001"]
        assert len(run.alerts) == 1

        # A late fee cancelled: a credit note, its own number, the invoice kept and credited.
        credited = await store.billing.credit(
            "2027-0003", reason="goodwill", today=date(2027, 3, 10), now=run.clock.now()
        )
        assert (credited.state, credited.credit_note) == ("credited", "CN-2027-0001")
        await run.day()
        (cn,) = run.of(InvoiceCredited)
        assert (cn.number, cn.credit_note) == ("2027-0003", "CN-2027-0001")
        assert any("Credit note CN-2027-0001" in str(m["Subject"]) for m in transport.sent)
        with pytest.raises(BillingError, match="credited already"):
            await store.billing.credit("2027-0003", reason="again", today=date(2027, 3, 10), now=run.clock.now())

    rows = await invoice_rows(engine)
    assert [r["number"] for r in rows] == [f"2027-{n:04d}" for n in range(1, len(rows) + 1)]
    assert sum(1 for r in rows if r["kind"] == "retainer") == 3  # a 3-month term
    subjects = [str(m["Message-ID"]) for m in transport.sent]
    assert len(subjects) == len(set(subjects))
    async with engine.connect() as conn:
        statuses = (await conn.execute(sa.select(billing_emails.c.status))).scalars().all()
    assert set(statuses) == {"SENT"} and len(statuses) == len(transport.sent)


async def test_milestones_by_the_saga_and_by_a_person(engine: AsyncEngine) -> None:
    transport = MemoryTransport()
    store = BillingStore(engine)
    async with running(engine, transport) as run:
        await signed(run, MILESTONES, deal_id=2)
        await run.publish(ProjectOpened, project_id=PROJECT, deal_id=2)
        assert [(e.kind, e.total) for e in run.of(InvoiceIssued)] == [("milestone", Decimal("3600.00"))]
        await run.publish(ProjectStepChanged, project_id=PROJECT, step="onboarding", state="done")
        await run.publish(ProjectStepChanged, project_id=PROJECT, step="strategy", state="running")
        assert len(run.of(InvoiceIssued)) == 1
        await run.publish(ProjectStepChanged, project_id=PROJECT, step="strategy", state="done")
        await run.publish(ProjectStepChanged, project_id=PROJECT, step="strategy", state="done")
        assert [e.total for e in run.of(InvoiceIssued)] == [Decimal("3600.00"), Decimal("3600.00")]
        with pytest.raises(BillingError, match="no milestone 'launch'"):
            await store.billing.reach_milestone(str(PROJECT)[:8], "launch", by="ann", now=run.clock.now())
        assert await store.billing.reach_milestone(
            str(PROJECT)[:8], "site launched", by="ann", now=run.clock.now()
        ) == (
            2,
            True,
        )
        await run.day(0)
        assert [e.total for e in run.of(InvoiceIssued)] == [Decimal("3600.00"), Decimal("3600.00"), Decimal("4800.00")]
        assert len(transport.sent) == 3


async def test_a_renewal_invoices_the_renewed_months_retainers_once(engine: AsyncEngine) -> None:
    transport = MemoryTransport()

    def renewal(number: int, months: int) -> dict[str, Any]:
        return {
            "deal_id": 1,
            "client_ref": str(CLIENT.client_ref),
            "number": number,
            "months": months,
            "starts_on": date(2027, 4, 4),
            "ends_on": date(2027, 6, 4),
            "renewed_at": START,
        }

    async with running(engine, transport) as run:
        await signed(run)  # three months from 4 January: retainers of January, February, March
        await run.until(date(2027, 4, 10))
        keys = [r["key"] for r in await invoice_rows(engine) if r["kind"] == "retainer"]
        assert keys == [f"deal:1:retainer:{n}" for n in range(3)]
        await run.publish(ContractRenewed, **renewal(2, 5))  # before the first: waits for it
        for _ in range(3):  # said again until orchestration answers: applied once
            await run.publish(ContractRenewed, **renewal(1, 2))
        # April's retainer at once (its period began on the 4th), May's on its day, no more.
        rows = [r for r in await invoice_rows(engine) if r["kind"] == "retainer"]
        assert [r["key"] for r in rows] == [f"deal:1:retainer:{n}" for n in range(4)]
        assert (rows[-1]["service_from"], rows[-1]["service_to"]) == (date(2027, 4, 4), date(2027, 5, 3))
        await run.until(date(2027, 7, 10))
    rows = [r for r in await invoice_rows(engine) if r["kind"] == "retainer"]
    assert [r["key"] for r in rows] == [f"deal:1:retainer:{n}" for n in range(5)]
    assert (rows[-1]["service_from"], rows[-1]["service_to"]) == (date(2027, 5, 4), date(2027, 6, 3))
    async with engine.connect() as conn:
        [account] = (await conn.execute(sa.select(billing_accounts))).mappings().all()
    assert (account["renewals"], account["package"]["term_months"]) == (1, 5)


async def test_bad_input_is_one_line(engine: AsyncEngine) -> None:
    transport = MemoryTransport()
    store = BillingStore(engine)
    async with running(engine, transport) as run:
        await signed(run)
        now = run.clock.now()
        with pytest.raises(BillingError, match="no invoice '2027-0099'"):
            await store.billing.pay("2027-0099", "10", received_on=now.date(), by="t", now=now)
        with pytest.raises(BillingError, match="more decimals than EUR has"):
            await store.billing.pay("2027-0001", "10.005", received_on=now.date(), by="t", now=now)
        with pytest.raises(BillingError, match="not an amount"):
            await store.billing.pay("2027-0001", "1,000.00", received_on=now.date(), by="t", now=now)
        invoice = await store.billing.find("2027-0001")
        assert (await store.billing.find(invoice.id[:8])).number == "2027-0001"


async def test_a_release_lost_with_the_process_is_said_again_at_the_next_lifes_first_tick(
    engine: AsyncEngine,
) -> None:
    """`ClientReleased` is marked published once told, not once delivery applied it: a process
    killed before that would leave delivery holding a client who paid. The next life's first
    tick (not its start: the hold policy starts after billing) says every release again, even
    one older than the week releases are said again daily."""
    transport = MemoryTransport()
    store = BillingStore(engine)
    ref = str(CLIENT.client_ref)
    async with running(engine, transport) as run:
        await signed(run)
        await run.day(0)
        # What `_holds` decides on two days, written directly: held, then released.
        await store.billing.apply_holds({ref: ("2027-0001",)}, days=30, now=run.clock.now())
        await store.billing.apply_holds({}, days=30, now=run.clock.now())
        await run.day(0)
        assert [e.client_ref for e in run.of(ClientReleased)] == [CLIENT.client_ref]
    # Killed here (the release waiting in the hold policy's or delivery's mailbox is gone), and
    # started again ten days later.
    async with running(engine, transport, at=START + timedelta(days=10, hours=1)) as run:
        await run.tick(interval_s=86400.0)  # the first tick, the same day
        (again,) = run.of(ClientReleased)
        assert again.client_ref == CLIENT.client_ref
        await run.day()
        await run.day()
        assert len(run.of(ClientReleased)) == 1  # older than a week: not said daily
        assert run.of(ClientOnHold) == []
