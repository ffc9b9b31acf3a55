"""Billing's routes through the real app (auth, validation): READ lists invoices, shows one and
its PDF; OPERATE records a payment (audited); amounts are exact text; mistakes are 404 / 422."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aicmo_actors.billing.repos import BillingRepo
from aicmo_actors.billing.rules import NewInvoice, line
from aicmo_actors.billing.tax import tax_for
from tests.integration.test_api import NOW, Client, client
from tests.integration.test_billing import CLIENT
from tests.integration.test_billing_cli import HEAD

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
__all__ = ["client"]


async def test_invoices_through_the_api(client: Client) -> None:
    if client.engine.url.get_backend_name() != "sqlite":
        pytest.skip("the routes once are enough; the repository runs on both databases in test_billing.py")
    repo = BillingRepo(client.engine)
    new = NewInvoice(
        key="api:1",
        kind="one_off",
        client=CLIENT.model_dump(mode="json"),
        currency="EUR",
        lines=(line("Launch kit", Decimal("1800"), "EUR"),),
        tax=tax_for(agency_country="DE", client_country="FR", client_tax_id=None),
        payment_days=14,
    )
    issued = await repo.issue(HEAD, new, today=NOW.date(), now=NOW)
    assert issued is not None
    number = issued.number

    listed = await client.call("GET", "/invoices", "viewer")
    assert listed.status_code == 200
    (row,) = listed.json()["invoices"]
    assert (row["number"], row["total"], row["tax_rate"], row["balance"]) == (number, "2142.00", "19", "2142.00")
    assert (await client.call("GET", "/invoices?overdue=true", "viewer")).json()["invoices"] == []
    shown = await client.call("GET", f"/invoices/{issued.id[:8]}", "viewer")
    assert shown.status_code == 200 and shown.json()["number"] == number and shown.json()["payments"] == []
    pdf = await client.call("GET", f"/invoices/{number}/pdf", "viewer")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"
    assert (await client.call("GET", "/invoices/2031-0001", "viewer")).status_code == 404
    assert (await client.call("GET", "/invoices", None)).status_code == 401

    body = {"amount": "1000.00", "received_on": NOW.date().isoformat(), "note": "ref 1"}
    assert (await client.call("POST", f"/invoices/{number}/payments", "viewer", json=body)).status_code == 403
    paid = await client.call("POST", f"/invoices/{number}/payments", "operator", json=body)
    assert paid.status_code == 201, paid.text
    assert (paid.json()["balance"], paid.json()["state"]) == ("1142.00", "open")
    bad = await client.call("POST", f"/invoices/{number}/payments", "operator", json={"amount": "1.001"})
    assert bad.status_code == 422 and "more decimals than EUR" in bad.json()["error"]
    missing = await client.call("POST", "/invoices/2031-0001/payments", "operator", json={"amount": "1"})
    assert missing.status_code == 404
    audit = await client.api.identity.audit.list(action="invoice.pay")
    assert [(a.action, a.target) for a in audit] == [("invoice.pay", number)]
