"""Deals and projects write a change's audit row in the change's own transaction (`also`):
`DealsRepo.win`, `DealsRepo.renew` and `ProjectsRepo.request_cancel` run `also(conn, result)`
after the change, seeing it; when `also` fails, the change is not kept; a refused change
records nothing. Through the API, a renewal and a cancel are audited with the change, and an
audit row that cannot be written leaves no change behind. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.campaign import load_campaign
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.repos.deals import Deal, Renewal
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.cam.tables import cam_deals, cam_leads, cam_renewals
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.orchestration.projects import ProjectError, ProjectsRepo
from aicmo_actors.orchestration.tables import orchestration_projects
from tests.audit_support import AuditBroken, audit_rows, broken, count, post_fails
from tests.integration.test_api import NOW, Client, client
from tests.integration.test_cam_records import CAMPAIGN_FILE, add_leads
from tests.integration.test_control_plane import leads
from tests.integration.test_deal_renewals import PACKAGE, START

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
__all__ = ["client"]

ACTOR = AuditActor("ops1", "api")
PROJECT_ID = "0b7c1c1e-0000-4000-8000-0000000000a1"


async def _win(store: CamStore, address: str, also: Any = None) -> Deal:
    return await store.deals.win(
        address,
        campaign=None,
        client={"company": address.split("@")[1], "contact_name": "Ann Lee", "timezone": "UTC", "country": "DE"},
        package=PACKAGE.model_dump(mode="json"),
        start=START,
        by="ops1",
        now=NOW,
        also=also,
    )


async def _store_with_leads(engine: AsyncEngine, addresses: list[str]) -> CamStore:
    store = CamStore(engine)
    await store.campaigns.create_or_update(load_campaign(CAMPAIGN_FILE, allow_test_domains=True), NOW)
    await add_leads(store, addresses)
    return store


async def _open(engine: AsyncEngine, deal: Deal) -> str:
    project_id, _ = await ProjectsRepo(engine).open(
        project_id=PROJECT_ID,
        deal_id=deal.deal_id,
        client=deal.client,
        package={"name": "retainer"},
        start=date(2026, 3, 2),
        now=NOW,
    )
    return project_id


# -- the repositories ----------------------------------------------------------------------------------------------
async def test_a_deal_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = await _store_with_leads(engine, ["ann@one.example.com", "bob@one.example.com"])

    with pytest.raises(AuditBroken):
        await _win(store, "ann@one.example.com", also=broken)
    # Nothing signed: no deal, the lead and its colleague as they were.
    assert await count(engine, cam_deals) == 0
    assert await count(engine, cam_leads, cam_leads.c.state.in_(("client", "stopped"))) == 0

    def audited(conn: Connection, deal: Deal) -> None:
        # After the change, in its transaction: the deal is there to be seen.
        assert conn.execute(sa.select(cam_deals.c.id).where(cam_deals.c.id == deal.deal_id)).scalar() is not None
        ACTOR.write(conn, "deal.won", deal.client["contact_email"], {"deal": deal.deal_id}, NOW)

    deal = await _win(store, "ann@one.example.com", also=audited)
    assert deal.stopped == 1
    assert await audit_rows(engine, "deal.won") == [("ops1", "api", "ann@one.example.com", {"deal": deal.deal_id})]

    # Refused (signed already): nothing recorded.
    with pytest.raises(RecordError, match="signed already"):
        await _win(store, "ann@one.example.com", also=audited)
    assert len(await audit_rows(engine, "deal.won")) == 1


async def test_a_renewal_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = await _store_with_leads(engine, ["ann@one.example.com"])
    deal = await _win(store, "ann@one.example.com")

    with pytest.raises(AuditBroken):
        await store.deals.renew(deal.deal_id, months=3, by="ops1", now=NOW, today=NOW.date(), also=broken)
    assert await count(engine, cam_renewals) == 0

    seen: list[Renewal] = []

    def audited(conn: Connection, renewal: Renewal) -> None:
        assert conn.execute(sa.select(sa.func.count()).select_from(cam_renewals)).scalar_one() == renewal.number
        seen.append(renewal)
        if renewal.new:
            ACTOR.write(conn, "deal.renew", str(deal.deal_id), {"number": renewal.number}, NOW)

    first = await store.deals.renew(deal.deal_id, months=3, by="ops1", now=NOW, today=NOW.date(), also=audited)
    assert first.number == 1 and first.new
    # A retry naming the renewal recorded: `also` hears it is not new, and writes nothing.
    again = await store.deals.renew(
        deal.deal_id, months=3, by="ops1", now=NOW, today=NOW.date(), number=1, also=audited
    )
    assert not again.new and [r.new for r in seen] == [True, False]
    assert await audit_rows(engine, "deal.renew") == [("ops1", "api", str(deal.deal_id), {"number": 1})]

    # Refused (the number is not the next): nothing recorded, `also` not called.
    with pytest.raises(RecordError, match="the next is number 2"):
        await store.deals.renew(deal.deal_id, months=3, by="ops1", now=NOW, today=NOW.date(), number=3, also=audited)
    assert len(seen) == 2 and await count(engine, cam_renewals) == 1


async def test_a_cancel_asked_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = await _store_with_leads(engine, ["ann@one.example.com"])
    project_id = await _open(engine, await _win(store, "ann@one.example.com"))
    repo = ProjectsRepo(engine)
    asked = orchestration_projects.c.cancel_requested_at.is_not(None)

    with pytest.raises(AuditBroken):
        await repo.request_cancel(project_id, reason="budget", by="ops1", now=NOW, also=broken)
    assert await count(engine, orchestration_projects, asked) == 0

    def audited(conn: Connection, result: None) -> None:
        query = sa.select(orchestration_projects.c.cancel_reason).where(orchestration_projects.c.id == project_id)
        assert conn.execute(query).scalar_one() == "budget"
        ACTOR.write(conn, "project.cancel", project_id, {"reason": "budget"}, NOW)

    await repo.request_cancel(project_id, reason="budget", by="ops1", now=NOW, also=audited)
    assert await count(engine, orchestration_projects, asked) == 1
    assert await audit_rows(engine, "project.cancel") == [("ops1", "api", project_id, {"reason": "budget"})]

    # Refused (no such project): nothing recorded.
    with pytest.raises(ProjectError, match="no project"):
        await repo.request_cancel("ffffffff", reason="budget", by="ops1", now=NOW, also=audited)
    assert len(await audit_rows(engine, "project.cancel")) == 1


# -- through the API -----------------------------------------------------------------------------------------------
async def test_the_api_audits_a_renewal_and_a_cancel_with_the_change_or_keeps_neither(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.api.cam
    deal = await _win(store, leads()[0]["email"])
    project_id = await _open(client.engine, deal)
    renew, cancel = f"/deals/{deal.deal_id}/renew", f"/projects/{project_id}/cancel"

    # The audit row cannot be written: the request fails and neither change is kept.
    tried: list[str] = []

    def broken(self: AuditActor, conn: Connection, action: str, *args: Any) -> int:
        tried.append(action)
        raise AuditBroken("the audit row could not be written")

    with monkeypatch.context() as patched:
        patched.setattr(AuditActor, "write", broken)
        for path, body in ((renew, {"months": 3}), (cancel, {"reason": "budget"})):
            await post_fails(client, path, body)
    assert tried == ["deal.renew", "project.cancel"]
    assert await store.deals.renewals() == []
    assert (
        await count(client.engine, orchestration_projects, orchestration_projects.c.cancel_requested_at.is_not(None))
        == 0
    )
    assert await audit_rows(client.engine, "deal.renew") == await audit_rows(client.engine, "project.cancel") == []

    # As it should be: each change with its row, and a retry with none.
    made = await client.call("POST", renew, "operator", json={"months": 3})
    assert made.status_code == 201, made.text
    again = await client.call("POST", renew, "operator", json={"months": 3, "number": 1})
    assert again.status_code == 200, again.text
    cancelled = await client.call("POST", cancel, "operator", json={"reason": "budget"})
    assert cancelled.status_code == 200, cancelled.text
    assert [r.number for r in await store.deals.renewals()] == [1]
    assert await audit_rows(client.engine, "deal.renew") == [
        ("operator1", "api", str(deal.deal_id), {"deal": deal.deal_id, "number": 1, "months": 3})
    ]
    assert await audit_rows(client.engine, "project.cancel") == [("operator1", "api", project_id, {"reason": "budget"})]
