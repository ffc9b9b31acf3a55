"""Reporting's routes on both databases: KPI values posted (OPERATE, audited) and read (READ),
the reports listed; a viewer may read, not write; a bad client, KPI or period is answered in one line."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from aicmo_actors.identity.tables import identity_audit
from aicmo_actors.reporting.repos import NewClient, ReportingStore
from tests.integration.test_api import NOW, Client, client  # noqa: F401 (the fixture)
from tests.integration.test_reporting import CLIENT, PACKAGE

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def _signed(caller: Client) -> None:
    store = ReportingStore(caller.engine)
    new = NewClient(
        client_ref=str(CLIENT.client_ref),
        deal_id=7,
        company=CLIENT.company,
        contact_email=CLIENT.contact_email,
        client=CLIENT.model_dump(mode="json"),
        package=PACKAGE.model_dump(mode="json"),
        campaign="spring",
        start=NOW.date(),
        signed_at=NOW,
        period="month",
        hour=8,
        timezone=CLIENT.timezone,
        formats="html,pdf",
    )
    assert await store.learn_client(new, NOW)


async def test_kpis_posted_audited_and_read(client: Client) -> None:  # noqa: F811
    await _signed(client)
    body = {"client": "ann@acme.example", "kpi": "cost_per_lead", "period": "2026-03", "value": 42.5}
    assert (await client.call("POST", "/kpis", "viewer", json=body)).status_code == 403
    answer = await client.call("POST", "/kpis", "operator", json=body)
    assert answer.status_code == 201, answer.text
    kpi = answer.json()["kpi"]
    assert (kpi["company"], kpi["kpi"], kpi["period"], kpi["value"], kpi["target"], kpi["attained"]) == (
        "Acme Logistics",
        "cost_per_lead",
        "2026-03",
        42.5,
        50.0,
        True,
    )
    again = await client.call("POST", "/kpis", "operator", json={**body, "value": 70})
    assert again.json()["kpi"]["attained"] is False
    listed = await client.call("GET", "/kpis?client=Acme Logistics", "viewer")
    assert [(k["kpi"], k["value"]) for k in listed.json()["kpis"]] == [("cost_per_lead", 70.0)]
    async with client.engine.connect() as conn:
        actions = (await conn.execute(sa.select(identity_audit.c.action, identity_audit.c.actor))).all()
    assert [(a, who) for a, who in actions if a == "kpi.record"] == [("kpi.record", "operator1")] * 2


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"client": "Nobody"}, 404, "no client 'Nobody'"),
        ({"kpi": "likes"}, 422, "package has no KPI 'likes'"),
        ({"period": "2026-13-01"}, 422, "is not a date"),
    ],
)
async def test_bad_kpis_are_refused_in_one_line(client: Client, change: dict[str, str], status: int, says: str) -> None:  # noqa: F811
    await _signed(client)
    body = {"client": "Acme Logistics", "kpi": "organic_sessions", "period": "2026-03", "value": 1, **change}
    answer = await client.call("POST", "/kpis", "operator", json=body)
    assert answer.status_code == status and says in answer.json()["error"], answer.text


async def test_reports_listed(client: Client) -> None:  # noqa: F811
    await _signed(client)
    answer = await client.call("GET", "/reports", "viewer")
    assert answer.status_code == 200 and answer.json()["reports"] == []
    assert (await client.call("GET", "/reports?client=nobody", "viewer")).status_code == 404
