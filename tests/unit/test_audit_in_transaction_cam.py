"""Client acquisition's changes made by a person (the API, the web app, the command line) and
their audit rows are one transaction: each repository method's `also` sees the change and its
result, an `also` that fails takes the change with it, and a refused change records nothing.
Through the API, the row is written with the change, and a row that cannot be written leaves
no change behind. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.campaign import load_campaign
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.identity import repos as identity_repos
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.tables import identity_audit
from aicmo_actors.storage.work import Also, run_read
from contracts.cam import ReplyCategory
from tests.audit_support import AuditBroken, broken
from tests.integration.test_api import Client, client
from tests.integration.test_cam_records import CAMPAIGN, CAMPAIGN_FILE, NOW, add_leads, new_store, reply, sent

pytestmark = [pytest.mark.anyio]
__all__ = ["client"]

LATER = NOW + timedelta(hours=1)


def _value(conn: Connection, column: sa.Column[Any], where: sa.ColumnElement[bool]) -> Any:
    return conn.execute(sa.select(column).where(where)).scalar_one_or_none()


@dataclass
class Case:
    """A repository change: set-up (the ids it made), the change with an `also`, and whether it
    was made (a read that runs inside the change's transaction as well as after it)."""

    setup: Callable[[CamStore], Awaitable[dict[str, Any]]]
    change: Callable[[CamStore, dict[str, Any], Also[Any]], Awaitable[Any]]
    made: Callable[[dict[str, Any], Connection], bool]


async def _nothing(store: CamStore) -> dict[str, Any]:
    return {}


async def _a_reply(store: CamStore) -> dict[str, Any]:
    (lead,) = await add_leads(store, ["remy@relabel.example.com"])
    return {"inbound": await reply(store, lead, await sent(store, lead, 1, NOW), ReplyCategory.AUTO_REPLY, NOW)}


async def _suppressed(store: CamStore) -> dict[str, Any]:
    await store.leads.suppress("gone@example.com", "manual", "test", NOW)
    return {}


async def _failed_alert(store: CamStore) -> dict[str, Any]:
    (lead,) = await add_leads(store, ["ivy@keen.example.com"])
    await reply(store, lead, await sent(store, lead, 1, NOW), ReplyCategory.INTERESTED, NOW)
    (alert,) = await store.alerts.page()
    await store.alerts.finish(alert["id"], "failed", NOW, "email: permanent 550", [])
    return {"alert": alert["id"]}


def _campaign(conn: Connection, column: sa.Column[Any], name: str = CAMPAIGN) -> Any:
    return _value(conn, column, campaigns_t.c.name == name)


def _is_suppressed(conn: Connection) -> bool:
    return _value(conn, suppressions_t.c.id, suppressions_t.c.address == "gone@example.com") is not None


def _fresh_spec() -> Any:
    return load_campaign(CAMPAIGN_FILE, allow_test_domains=True).model_copy(update={"name": "fresh"})


CASES = {
    "campaigns.create_or_update": Case(
        _nothing,
        lambda store, _, also: store.campaigns.create_or_update(_fresh_spec(), NOW, also=also),
        lambda _, conn: _campaign(conn, campaigns_t.c.id, "fresh") is not None,
    ),
    "campaigns.set_status": Case(
        _nothing,
        lambda store, _, also: store.campaigns.set_status(CAMPAIGN, "paused", "by hand", NOW, also=also),
        lambda _, conn: _campaign(conn, campaigns_t.c.status) == "paused",
    ),
    "campaigns.archive": Case(
        _nothing,
        lambda store, _, also: store.campaigns.archive(CAMPAIGN, NOW, also=also),
        lambda _, conn: _campaign(conn, campaigns_t.c.paused_reason) == "archived",
    ),
    "inbound.relabel": Case(
        _a_reply,
        lambda store, ids, also: store.inbound.relabel(ids["inbound"], "interested", by="pat", now=LATER, also=also),
        lambda ids, conn: _value(conn, inbound_t.c.category, inbound_t.c.id == ids["inbound"]) == "interested",
    ),
    "inbound.mark_handled": Case(
        _a_reply,
        lambda store, ids, also: store.inbound.mark_handled(ids["inbound"], "pat", LATER, also=also),
        lambda ids, conn: _value(conn, inbound_t.c.handled_at, inbound_t.c.id == ids["inbound"]) is not None,
    ),
    "leads.import_rows": Case(
        _nothing,
        lambda store, _, also: store.leads.import_rows(
            CAMPAIGN, [{"email": "new@lead.example.com"}, {"email": "other@lead.example.com"}], NOW, also=also
        ),
        lambda _, conn: conn.execute(sa.select(sa.func.count()).select_from(leads_t)).scalar_one() == 2,
    ),
    "leads.suppress": Case(
        _nothing,
        lambda store, _, also: store.leads.suppress("Gone@Example.com", "manual", "test", NOW, also=also),
        lambda _, conn: _is_suppressed(conn),
    ),
    "leads.unsuppress": Case(
        _suppressed,
        lambda store, _, also: store.leads.unsuppress("gone@example.com", also=also),
        lambda _, conn: not _is_suppressed(conn),
    ),
    "alerts.retry_now": Case(
        _failed_alert,
        lambda store, ids, also: store.alerts.retry_now(ids["alert"], LATER, also=also),
        lambda ids, conn: _value(conn, alerts_t.c.state, alerts_t.c.id == ids["alert"]) == "pending",
    ),
}


async def _audit_rows(engine: AsyncEngine, action: str) -> list[dict[str, Any]]:
    query = sa.select(identity_audit).where(identity_audit.c.action == action).order_by(identity_audit.c.id)
    return await run_read(engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])


@pytest.mark.parametrize("method", sorted(CASES))
async def test_a_change_and_its_audit_row_are_one_transaction(engine: AsyncEngine, method: str) -> None:
    case = CASES[method]
    store = await new_store(engine)
    ids = await case.setup(store)

    def made(conn: Connection) -> bool:
        return case.made(ids, conn)

    with pytest.raises(AuditBroken):
        await case.change(store, ids, broken)
    assert not await run_read(engine, made), "the change was kept without its audit row"

    seen: list[Any] = []

    def audited(conn: Connection, result: object) -> None:
        assert made(conn), "the also ran before the change"
        seen.append(result)
        AuditActor("pat", "test").write(conn, method, "target", {"n": len(seen)}, NOW)

    result = await case.change(store, ids, audited)
    assert seen == [result] and result not in (None, False)
    assert await run_read(engine, made)
    assert [(r["actor"], r["source"], r["target"]) for r in await _audit_rows(engine, method)] == [
        ("pat", "test", "target")
    ]


async def test_a_refused_change_records_nothing(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    line = AuditActor("pat", "test").line("refused", None, {}, NOW)
    with pytest.raises(RecordError):
        await store.campaigns.archive("nope", NOW, also=line)
    with pytest.raises(RecordError):
        await store.inbound.relabel(999, "interested", by="pat", now=NOW, also=line)
    assert await _audit_rows(engine, "refused") == []


# -- through the API ---------------------------------------------------------------------------------------


async def test_the_api_writes_each_audit_row_with_its_change(client: Client) -> None:
    toml = CAMPAIGN_FILE.read_text()
    made = await client.call("POST", "/campaigns", "operator", content=toml, headers={"content-type": "text/plain"})
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert (await client.call("POST", f"/campaigns/{name}/pause", "operator", json={"reason": "check"})).is_success
    added = await client.call("POST", "/suppressions", "operator", json={"address": "P1@Prospect1.example.org"})
    assert added.status_code == 201, added.text
    gone = await client.call("DELETE", "/suppressions/p1@prospect1.example.org?reason=asked+by+phone", "operator")
    assert gone.status_code == 200, gone.text
    # Not suppressed, no such alert: refused, nothing recorded.
    assert (await client.call("DELETE", "/suppressions/p1@prospect1.example.org?reason=again", "operator")).is_error
    assert (await client.call("POST", "/alerts/999/retry", "operator")).status_code == 404

    rows = [
        (r["action"], r["actor"], r["source"], r["target"], r["detail"])
        for r in await _audit_rows(client.engine, "campaign.create")
        + await _audit_rows(client.engine, "campaign.pause")
        + await _audit_rows(client.engine, "suppression.add")
        + await _audit_rows(client.engine, "suppression.remove")
        + await _audit_rows(client.engine, "alert.retry")
    ]
    steps = len(load_campaign(CAMPAIGN_FILE, allow_test_domains=True).steps)
    assert rows == [
        ("campaign.create", "operator1", "api", name, {"steps": steps}),
        ("campaign.pause", "operator1", "api", name, {"reason": "check"}),
        ("suppression.add", "operator1", "api", "p1@prospect1.example.org", {"reason": "manual"}),
        ("suppression.remove", "operator1", "api", "p1@prospect1.example.org", {"reason": "asked by phone"}),
    ]


async def test_the_api_keeps_no_change_whose_audit_row_fails(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: object, **kwargs: object) -> int:
        raise AuditBroken("the audit table is unreachable")

    monkeypatch.setattr(identity_repos, "record_in", down)
    try:
        response = await client.call("POST", "/suppressions", "operator", json={"address": "kept@nowhere.example.org"})
    except AuditBroken:
        pass  # the test transport raises what the app raised (the client got a 500)
    else:
        assert response.status_code == 500, response.text
    monkeypatch.undo()
    assert await client.api.cam.leads.suppressed(["kept@nowhere.example.org"]) == set()
    assert await _audit_rows(client.engine, "suppression.add") == []
