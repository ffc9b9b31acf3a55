"""Billing's and reporting's changes made by a person and their audit rows are one transaction:
each repository method runs the caller's `also` in the change's own unit of work, so an audit
row that cannot be written keeps no change, a refused change records nothing, and the row sees
the change's result (a balance, a credit note's number, a KPI value, the schedule after). The
API, the web app's payment form and the command line write the row with the change."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.billing.repos import BillingError, BillingRepo, InvoiceRow
from aicmo_actors.billing.rules import NewInvoice, line
from aicmo_actors.billing.tables import billing_events
from aicmo_actors.billing.tax import tax_for
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.reporting.repos import KpiValue, NewClient, ReportingError, ReportingStore, Schedule
from aicmo_actors.reporting.rules import parse_kpi_csv
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.webapp.app import build_webapp
from aicmo_actors.webapp.session import COOKIE, csrf_token
from tests.audit_support import AuditBroken, audit_rows, broken
from tests.integration.test_api import NOW, Client, client
from tests.integration.test_billing import CLIENT, MILESTONES, PROJECT
from tests.integration.test_billing_cli import HEAD, Run, run
from tests.integration.test_reporting import CLIENT as REPORTED
from tests.integration.test_reporting import PACKAGE

pytestmark = pytest.mark.anyio
__all__ = ["client", "run"]

TODAY = NOW.date()
WHO = AuditActor("ann", "api")


def _never(conn: Connection, result: object) -> None:
    raise AssertionError("`also` ran for a change that was refused")


async def _events(engine: AsyncEngine, kind: str) -> int:
    query = sa.select(sa.func.count()).select_from(billing_events).where(billing_events.c.kind == kind)
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def _issued(repo: BillingRepo, key: str = "audit:1") -> InvoiceRow:
    new = NewInvoice(
        key=key,
        kind="one_off",
        client=CLIENT.model_dump(mode="json"),
        currency="EUR",
        lines=(line("Launch kit", Decimal("1800"), "EUR"),),
        tax=tax_for(agency_country="DE", client_country="FR", client_tax_id=None),
        payment_days=14,
    )
    issued = await repo.issue(HEAD, new, today=TODAY, now=NOW)
    assert issued is not None
    return issued


def _new_client() -> NewClient:
    return NewClient(
        client_ref=str(REPORTED.client_ref),
        deal_id=7,
        company=REPORTED.company,
        contact_email=REPORTED.contact_email,
        client=REPORTED.model_dump(mode="json"),
        package=PACKAGE.model_dump(mode="json"),
        campaign="spring",
        start=TODAY,
        signed_at=NOW,
        period="month",
        hour=8,
        timezone=REPORTED.timezone,
        formats="html,pdf",
    )


# -- billing --------------------------------------------------------------------------------------------------------


async def test_a_payment_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    repo = BillingRepo(engine)
    number = (await _issued(repo)).number

    with pytest.raises(AuditBroken):
        await repo.pay(number, "1000", received_on=TODAY, by="ann", now=NOW, also=broken)
    detail = await repo.show(number)
    assert (detail.payments, detail.invoice.paid, detail.invoice.state) == ((), Decimal("0"), "open")
    assert await _events(engine, "PaymentReceived") == 0

    def audited(conn: Connection, result: tuple[InvoiceRow, Decimal]) -> None:
        row, paid = result
        WHO.write(conn, "invoice.pay", row.number, {"amount": str(paid), "balance": str(row.balance)}, NOW)

    row, paid = await repo.pay(number, "1000", received_on=TODAY, by="ann", now=NOW, also=audited)
    assert (str(paid), str(row.balance)) == ("1000.00", "1142.00")
    paid_row = ("ann", "api", number, {"amount": "1000.00", "balance": "1142.00"})
    assert await audit_rows(engine, "invoice.pay") == [paid_row]
    assert await _events(engine, "PaymentReceived") == 1

    with pytest.raises(BillingError, match="more decimals"):
        await repo.pay(number, "1.001", received_on=TODAY, by="ann", now=NOW, also=_never)
    assert len(await audit_rows(engine, "invoice.pay")) == 1


async def test_a_credit_note_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    repo = BillingRepo(engine)
    number = (await _issued(repo)).number

    with pytest.raises(AuditBroken):
        await repo.credit(number, reason="sent by mistake", today=TODAY, now=NOW, also=broken)
    kept = await repo.find(number)
    assert (kept.state, kept.credit_note) == ("open", None)
    assert await _events(engine, "InvoiceCredited") == 0

    def audited(conn: Connection, row: InvoiceRow) -> None:
        WHO.write(conn, "invoice.cancel", row.number, {"credit_note": row.credit_note, "reason": "oops"}, NOW)

    row = await repo.credit(number, reason="oops", today=TODAY, now=NOW, also=audited)
    # The failed attempt took no number: the credit note is still the year's first.
    assert row.credit_note == f"CN-{TODAY.year}-0001"
    assert await audit_rows(engine, "invoice.cancel") == [
        ("ann", "api", number, {"credit_note": row.credit_note, "reason": "oops"})
    ]

    with pytest.raises(BillingError, match="credited already"):
        await repo.credit(number, reason="again", today=TODAY, now=NOW, also=_never)
    assert len(await audit_rows(engine, "invoice.cancel")) == 1


async def test_a_milestone_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    repo = BillingRepo(engine)
    package = MILESTONES.model_dump(mode="json")
    client = CLIENT.model_dump(mode="json")
    await repo.open_account(deal_id=3, client=client, package=package, start_on=TODAY, signed_at=NOW, now=NOW)
    await repo.link_project(str(PROJECT), 3)
    project = str(PROJECT)[:8]

    with pytest.raises(AuditBroken):
        await repo.reach_milestone(project, "site launched", by="ann", now=NOW, also=broken)
    seen: list[tuple[int, bool]] = []

    def audited(conn: Connection, result: tuple[int, bool]) -> None:
        seen.append(result)
        deal, new = result
        if new:
            WHO.write(conn, "invoice.milestone", project, {"deal_id": deal, "milestone": "site launched"}, NOW)

    # Not kept when its row was lost: reached now, for the first time.
    assert await repo.reach_milestone(project, "site launched", by="ann", now=NOW, also=audited) == (3, True)
    assert await repo.reach_milestone(project, "site launched", by="ann", now=NOW, also=audited) == (3, False)
    assert seen == [(3, True), (3, False)]
    assert await audit_rows(engine, "invoice.milestone") == [
        ("ann", "api", project, {"deal_id": 3, "milestone": "site launched"})
    ]

    with pytest.raises(BillingError, match="no milestone 'launch'"):
        await repo.reach_milestone(project, "launch", by="ann", now=NOW, also=_never)


# -- reporting ------------------------------------------------------------------------------------------------------


async def test_a_kpi_value_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = ReportingStore(engine)
    assert await store.learn_client(_new_client(), NOW)

    with pytest.raises(AuditBroken):
        await store.record_kpi("Acme Logistics", "cost_per_lead", "2026-03", 42.5, source="t", now=NOW, also=broken)
    assert await store.kpis() == []

    def audited(conn: Connection, value: KpiValue) -> None:
        detail = {"kpi": value.kpi, "period": value.period, "value": value.value}
        WHO.write(conn, "kpi.record", value.client_ref, detail, NOW)

    value = await store.record_kpi(
        "Acme Logistics", "cost_per_lead", "2026-03", 42.5, source="t", now=NOW, also=audited
    )
    assert (value.value, value.attained) == (42.5, True)
    assert await audit_rows(engine, "kpi.record") == [
        ("ann", "api", value.client_ref, {"kpi": "cost_per_lead", "period": "2026-03", "value": 42.5})
    ]

    with pytest.raises(ReportingError, match="no KPI 'likes'"):
        await store.record_kpi("Acme Logistics", "likes", "2026-03", 1, source="t", now=NOW, also=_never)
    assert len(await audit_rows(engine, "kpi.record")) == 1


async def test_a_kpi_import_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = ReportingStore(engine)
    assert await store.learn_client(_new_client(), NOW)
    good = parse_kpi_csv("client,kpi,period,value\nAcme Logistics,cost_per_lead,2026-03,44\n").rows
    bad = parse_kpi_csv("client,kpi,period,value\nAcme Logistics,likes,2026-03,3\n").rows

    with pytest.raises(AuditBroken):
        await store.import_kpis(good, source="csv:k.csv", now=NOW, also=broken)
    assert await store.kpis() == []
    # A dry run writes nothing, so it adds nothing either.
    assert await store.import_kpis(good, source="", now=NOW, dry_run=True, also=_never) == []

    told: list[list[str]] = []

    def audited(conn: Connection, errors: list[str]) -> None:
        told.append(errors)
        if not errors:
            WHO.write(conn, "kpi.import", "k.csv", {"rows": 1}, NOW)

    errors = await store.import_kpis(bad, source="csv:k.csv", now=NOW, also=audited)
    assert errors and told == [errors] and await store.kpis() == []
    assert await store.import_kpis(good, source="csv:k.csv", now=NOW, also=audited) == []
    assert told[-1] == [] and [v.value for v in await store.kpis()] == [44.0]
    assert await audit_rows(engine, "kpi.import") == [("ann", "api", "k.csv", {"rows": 1})]


async def test_a_schedule_change_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = ReportingStore(engine)
    assert await store.learn_client(_new_client(), NOW)
    ref = str(REPORTED.client_ref)

    with pytest.raises(AuditBroken):
        await store.set_schedule("Acme Logistics", now=NOW, hour=7, period="week", also=broken)
    kept = await store.schedule(ref)
    assert (kept.hour, kept.period) == (8, "month")

    seen: list[Schedule] = []

    def audited(conn: Connection, schedule: Schedule) -> None:
        seen.append(schedule)
        WHO.write(conn, "reporting.schedule", schedule.client_ref, {"hour": 7, "period": "week"}, NOW)

    after = await store.set_schedule("Acme Logistics", now=NOW, hour=7, period="week", also=audited)
    # The row sees the schedule after the change, read in the change's transaction.
    assert seen == [after] and (after.hour, after.period) == (7, "week")
    assert await store.schedule(ref) == after
    assert await audit_rows(engine, "reporting.schedule") == [("ann", "api", ref, {"hour": 7, "period": "week"})]

    with pytest.raises(ReportingError, match="hour 25"):
        await store.set_schedule("Acme Logistics", now=NOW, hour=25, also=_never)
    with pytest.raises(ReportingError, match="no client"):
        await store.set_schedule("Nobody", now=NOW, hour=6, also=_never)
    assert len(await audit_rows(engine, "reporting.schedule")) == 1


# -- through the API, the web app and the command line ----------------------------------------------------------------


def _write_lost(self: AuditActor, *args: Any, **kwargs: Any) -> int:
    """`AuditActor.write` failing: the audit row cannot be written (after the change, in its transaction)."""
    raise AuditBroken("the audit row could not be written")


async def _refused(call: Any) -> None:
    """A request whose audit row failed: answered 500 (or the error raised through the test's
    transport, which re-raises the app's exceptions)."""
    try:
        answer = await call
    except AuditBroken:
        return
    assert answer.status_code == 500, answer.text


async def test_the_api_writes_a_payment_and_a_kpi_with_their_audit_rows(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = BillingRepo(client.engine)
    number = (await _issued(repo)).number
    body = {"amount": "1000.00", "received_on": TODAY.isoformat()}
    with monkeypatch.context() as patched:
        patched.setattr(AuditActor, "write", _write_lost)
        await _refused(client.call("POST", f"/invoices/{number}/payments", "operator", json=body))
    assert (await repo.show(number)).payments == ()
    assert await audit_rows(client.engine, "invoice.pay") == []

    paid = await client.call("POST", f"/invoices/{number}/payments", "operator", json=body)
    assert paid.status_code == 201, paid.text
    assert await audit_rows(client.engine, "invoice.pay") == [
        ("operator1", "api", number, {"amount": "1000.00", "balance": "1142.00"})
    ]

    store = ReportingStore(client.engine)
    assert await store.learn_client(_new_client(), NOW)
    kpi = {"client": "Acme Logistics", "kpi": "cost_per_lead", "period": "2026-03", "value": 42.5}
    with monkeypatch.context() as patched:
        patched.setattr(AuditActor, "write", _write_lost)
        await _refused(client.call("POST", "/kpis", "operator", json=kpi))
    assert await store.kpis() == [] and await audit_rows(client.engine, "kpi.record") == []
    answer = await client.call("POST", "/kpis", "operator", json=kpi)
    assert answer.status_code == 201, answer.text
    assert await audit_rows(client.engine, "kpi.record") == [
        ("operator1", "api", str(REPORTED.client_ref), {"kpi": "cost_per_lead", "period": "2026-03", "value": 42.5})
    ]


async def test_the_web_form_writes_a_payment_with_its_audit_row(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = BillingRepo(client.engine)
    number = (await _issued(repo)).number
    secret = b"a test secret of the web app"
    session = client.tokens["operator"]
    form = {"csrf": csrf_token(secret, session), "amount": "500", "received_on": "", "note": "ref 7"}
    transport = httpx.ASGITransport(app=build_webapp(client.api, secret))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", cookies={COOKIE: session}) as web:
        with monkeypatch.context() as patched:
            patched.setattr(AuditActor, "write", _write_lost)
            await _refused(web.post(f"/invoices/{number}/payments", data=form))
        assert (await repo.show(number)).payments == ()
        answer = await web.post(f"/invoices/{number}/payments", data=form)
    assert answer.status_code == 303 and "recorded" in answer.headers["location"], answer.text
    assert [p.amount for p in (await repo.show(number)).payments] == [Decimal("500")]
    assert await audit_rows(client.engine, "invoice.pay") == [
        ("operator1", "web", number, {"amount": "500.00", "balance": "1642.00"})
    ]


def test_the_command_line_writes_its_changes_with_their_audit_rows(run: Run) -> None:
    def audited(action: str) -> list[tuple[str, str, dict[str, Any]]]:
        code, out, err = run("audit", "--action", action, "--json")
        assert code == 0, err
        return [(r["source"], r["target"], r["detail"]) for r in reversed(json.loads(out))]

    first = f"{(datetime.now(UTC) - timedelta(days=40)).year}-0001"
    assert run("pay", first, "1000")[0] == 0
    assert audited("invoice.pay") == [("cli", first, {"amount": "1000.00", "balance": "1500.00"})]
    assert run("invoice", "cancel", first, "--yes")[0] != 0  # refused (it has a payment): nothing recorded
    assert audited("invoice.cancel") == []
    second = json.loads(run("invoices", "--json", "--state", "open")[1].splitlines()[0])["number"]
    assert second != first and run("invoice", "cancel", second, "--yes", "--reason", "sent by mistake")[0] == 0
    credit_note = f"CN-{datetime.now(UTC).year}-0001"
    assert audited("invoice.cancel") == [("cli", second, {"credit_note": credit_note, "reason": "sent by mistake"})]
    assert run("invoice", "milestone", str(PROJECT)[:8], "site launched")[0] == 0
    assert run("invoice", "milestone", str(PROJECT)[:8], "site launched")[0] == 0
    assert audited("invoice.milestone") == [("cli", str(PROJECT)[:8], {"deal_id": 3, "milestone": "site launched"})]

    async def signed() -> None:
        engine = make_engine(os.environ["AICMO_DATABASE_URL"])
        try:
            await ReportingStore(engine).learn_client(_new_client(), NOW)
        finally:
            await engine.dispose()

    anyio.run(signed)
    open("k.csv", "w", encoding="utf-8").write("client,kpi,period,value\nAcme Logistics,cost_per_lead,2027-01,44\n")
    assert run("kpi", "import", "k.csv")[0] == 0
    assert audited("kpi.import") == [("cli", "k.csv", {"rows": 1})]
    assert run("reporting", "schedule", "Acme Logistics")[0] == 0  # only shown: nothing audited
    assert run("reporting", "schedule", "Acme Logistics", "--hour", "7")[0] == 0
    assert audited("reporting.schedule") == [("cli", str(REPORTED.client_ref), {"hour": 7})]
