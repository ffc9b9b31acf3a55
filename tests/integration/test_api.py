"""The control API on SQLite and PostgreSQL: who may call what, the OpenAPI document,
errors in JSON, and the routes that change state doing what they say.

The route table is walked: a route without a rule, or whose rule lets an anonymous caller
or a viewer's write through, fails `test_every_route_refuses_anonymous_and_viewer_writes`.
Requests go through httpx's ASGI transport to the real app (routing, auth, validation).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import Mount

from aicmo_actors.api.app import API_PREFIX, Api, build_api
from aicmo_actors.api.auth import PUBLIC, RULE_ATTRIBUTE
from aicmo_actors.api.plane import ControlPlane
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.identity.repos import IdentityStore
from aicmo_actors.identity.tables import identity_audit
from aicmo_actors.runtime import ActorSystem, FakeClock
from aicmo_actors.settings import Settings
from contracts.observability import UsageRecord
from tests.integration.test_control_plane import campaign, leads

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
EXAMPLE_CAMPAIGN = Path(__file__).resolve().parents[2] / "examples" / "campaign.toml"
#: A value for each path parameter, so that every route can be called.
SAMPLES = {
    "name": "cam",
    "lead_id": "1",
    "inbound_id": "1",
    "alert_id": "1",
    "token": "999",
    "address": "x@y.org",
    "project_id": "ffffffff",
    "deal_id": "1",
}


@dataclass
class Client:
    http: httpx.AsyncClient
    tokens: dict[str, str]
    api: Api
    engine: AsyncEngine
    app: Any

    async def call(self, method: str, path: str, role: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return await self.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)


@pytest.fixture
async def client(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Client]:
    from argon2 import PasswordHasher

    clock = FakeClock(NOW, autojump=False)
    settings = Settings(
        database_url=str(engine.url.render_as_string(hide_password=False)),
        seed=3,
        tick_interval_s=0,
        state_dir=tmp_path / ".aicmo",
        log_level="warning",
        allow_test_domains=True,
    )
    plane = ControlPlane(engine)
    store = CamStore(engine)
    await store.campaigns.create_or_update(campaign(), NOW)
    await store.leads.import_rows("control", leads(), NOW)
    identity = IdentityStore(engine, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    tokens = {}
    for role in ("owner", "operator", "viewer"):
        await identity.users.add(f"{role}1", role, "a-long-enough-password", NOW)
        tokens[role], _ = await identity.tokens.create(f"{role}1", "test", NOW)
    system = ActorSystem(settings, clock=clock, children=plane.supervisors())
    await system.start()
    api = Api(plane, store, identity, system, settings, clock.now)
    app = build_api(api)
    # Mounted as the service mounts it (cli/service.py `control_routes`).
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount(API_PREFIX, app=app)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Client(http, tokens, api, engine, app)
    await system.stop()


def _routes(client: Client) -> list[tuple[str, str, str | None]]:
    """(method, path with samples, rule) for every API route of the app."""
    from aicmo_actors.api import cam_routes, control_routes, project_routes

    found = []
    # The routers the app includes (FastAPI keeps them as included routers, not flat routes).
    for route in [*control_routes.router.routes, *cam_routes.router.routes, *project_routes.router.routes]:
        if not isinstance(route, APIRoute):
            continue
        rules = [getattr(d.call, RULE_ATTRIBUTE, None) for d in route.dependant.dependencies]
        rule = next((r for r in rules if r is not None), None)
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m[1]], route.path)
        for method in sorted(route.methods):
            found.append((method, path, rule if (route.path, method) not in PUBLIC else "public"))
    return found


async def test_every_route_has_a_rule(client: Client) -> None:
    routes = _routes(client)
    assert len(routes) > 25
    missing = [f"{m} {p}" for m, p, rule in routes if rule is None]
    assert not missing, f"routes without an authorisation rule: {missing}"


async def test_every_route_refuses_anonymous_and_viewer_writes(client: Client) -> None:
    for method, path, rule in _routes(client):
        if rule == "public":
            continue
        anonymous = await client.call(method, path)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["error"].startswith("authentication required")
        bad = await client.call(method, path, headers={"Authorization": "Bearer aicmo_not-a-real-token"})
        assert bad.status_code == 401, (method, path)
        viewer = await client.call(method, path, "viewer")
        if method == "GET" and rule == "read":
            assert viewer.status_code not in (401, 403), (method, path, viewer.text)
        else:
            assert viewer.status_code == 403, (method, path, viewer.text)
        operator = await client.call(method, path, "operator")
        if rule == "own":
            assert operator.status_code == 403, (method, path)
        else:
            assert operator.status_code not in (401, 403), (method, path, operator.text)
        owner = await client.call(method, path, "owner")
        assert owner.status_code not in (401, 403), (method, path, owner.text)
        for answer in (viewer, operator, owner):
            assert answer.status_code < 500, (method, path, answer.text)
            assert "error" in answer.json() if answer.status_code >= 400 else True


async def test_the_openapi_document_validates(client: Client) -> None:
    from openapi_spec_validator import validate

    response = await client.http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert "/leads/{lead_id}" in document["paths"]


async def test_errors_are_json_with_a_message_that_says_what_to_do(client: Client) -> None:
    response = await client.call("GET", "/no-such-thing", "viewer")
    assert response.status_code == 404 and "no such route" in response.json()["error"]
    response = await client.call("GET", "/leads?limit=100000", "viewer")
    assert response.status_code == 422
    assert response.json()["error"].startswith("invalid request: query limit")
    response = await client.call("GET", "/leads?state=sleepy", "viewer")
    assert response.status_code == 422
    response = await client.call("GET", "/modules/nope", "viewer")
    assert response.status_code == 404 and "no module named 'nope'" in response.json()["error"]
    response = await client.call("GET", "/usage?by=colour", "viewer")
    assert response.status_code == 422 and "cannot group usage by 'colour'" in response.json()["error"]


async def test_lists_paginate_without_gaps_or_repeats(client: Client) -> None:
    seen: list[int] = []
    after: int | None = None
    while True:
        query = "/leads?campaign=control&limit=5" + (f"&after={after}" if after is not None else "")
        body = (await client.call("GET", query, "viewer")).json()
        seen += [item["id"] for item in body["items"]]
        after = body["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == len(leads())


async def test_pausing_the_worker_is_kept_applied_and_audited(client: Client) -> None:
    response = await client.call("POST", "/worker/pause", "operator", json={"reason": "holiday"})
    assert response.status_code == 200 and response.json()["changed"] is True
    state = await client.api.plane.switches.state()
    assert state.worker_paused
    await client.api.system.settle()
    assert {"cam.scheduler", "cam.sender"} <= client.api.system.suspended
    status = (await client.call("GET", "/status", "viewer")).json()
    assert status["worker_paused"] is True
    async with client.engine.connect() as conn:
        rows = (await conn.execute(sa.select(identity_audit).order_by(identity_audit.c.id.desc()))).mappings().all()
    assert (rows[0]["actor"], rows[0]["action"], rows[0]["detail"]) == (
        "operator1",
        "worker.pause",
        {"reason": "holiday"},
    )
    response = await client.call("POST", "/worker/resume", "operator")
    assert response.json()["changed"] is True
    await client.api.system.settle()
    assert not client.api.system.suspended


async def test_usage_is_aggregated_and_api_calls_are_counted(client: Client) -> None:
    records = [
        UsageRecord(f"cam.email_sent:{n}", "cam", "email_sent", "control", 1, NOW.replace(day=9 + n % 2))
        for n in range(7)
    ]
    await client.api.plane.usage.record(records)
    await client.api.plane.usage.record(records)  # twice: counted once
    body = (await client.call("GET", "/usage?by=campaign,day&kind=email_sent", "viewer")).json()
    assert body["items"] == [
        {"campaign": "control", "day": "2026-03-09", "quantity": 4},
        {"campaign": "control", "day": "2026-03-10", "quantity": 3},
    ]
    assert client.api.plane.buffer.api_calls["viewer1"] >= 1


async def test_login_gives_a_token_and_slows_down_guessing(client: Client) -> None:
    response = await client.http.post(
        "/api/v1/auth/login", json={"name": "operator1", "password": "a-long-enough-password"}
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    me = await client.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "operator1", "role": "operator"}
    codes = []
    for _ in range(5):
        wrong = await client.http.post(
            "/api/v1/auth/login", json={"name": "operator1", "password": "guess-guess-guess"}
        )
        codes.append(wrong.status_code)
        assert "password" not in wrong.text.lower() or "wrong name or password" in wrong.text
    assert codes[:3] == [401, 401, 401] and 429 in codes[3:], codes


async def test_suppressions_campaigns_and_modules_change_through_the_api(client: Client) -> None:
    added = await client.call("POST", "/suppressions", "operator", json={"address": "P1@Prospect1.example.org"})
    assert added.status_code == 201, added.text
    listed = (await client.call("GET", "/suppressions", "viewer")).json()["items"]
    assert [s["address"] for s in listed] == ["p1@prospect1.example.org"]
    assert (
        await client.call("POST", "/suppressions", "operator", json={"address": "not an address"})
    ).status_code == 422
    gone = await client.call("DELETE", "/suppressions/p1@prospect1.example.org?reason=asked+by+phone", "operator")
    assert gone.status_code == 200, gone.text
    assert (await client.call("GET", "/suppressions", "viewer")).json()["items"] == []

    toml = EXAMPLE_CAMPAIGN.read_text()
    made = await client.call("POST", "/campaigns", "operator", content=toml, headers={"content-type": "text/plain"})
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert (await client.call("POST", f"/campaigns/{name}/pause", "operator")).json()["status"] == "paused"
    shown = (await client.call("GET", f"/campaigns/{name}", "viewer")).json()
    assert shown["status"] == "paused"
    bad = await client.call("POST", "/campaigns", "operator", content="name = ", headers={"content-type": "text/plain"})
    assert bad.status_code == 422 and bad.json()["error"]

    off = await client.call("POST", "/modules/cam/disable", "operator", json={"reason": "maintenance"})
    assert off.json() == {"name": "cam", "enabled": False, "changed": True, "also_stops": []}
    await client.api.system.settle()
    module = (await client.call("GET", "/modules/cam", "viewer")).json()
    assert module["health"]["status"] == "disabled"
    assert "maintenance" in module["health"]["reasons"][0]
    on = await client.call("POST", "/modules/cam/enable", "operator")
    assert on.json()["changed"] is True


async def test_unknown_campaigns_and_states_are_404_and_422_not_500(client: Client) -> None:
    response = await client.call("GET", "/leads?campaign=nope", "viewer")
    assert response.status_code == 404 and "nope" in response.json()["error"]
    response = await client.call("GET", "/alerts?state=sleepy", "viewer")
    assert response.status_code == 422, response.text
    response = await client.call("POST", "/replies/999/relabel", "operator", json={"category": "interested"})
    assert response.status_code == 404, response.text


async def test_a_deal_is_signed_and_its_project_seen_and_cancelled_through_the_api(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import date

    from aicmo_actors.orchestration.projects import ProjectsRepo

    packages = tmp_path / "packages"
    packages.mkdir()
    text = (EXAMPLE_CAMPAIGN.parent / "package.toml").read_text().replace('name = "package"', 'name = "growth"', 1)
    (packages / "growth.toml").write_text(text)
    client.api.settings = client.api.settings.model_copy(update={"packages_dir": packages})
    lead = leads()[0]["email"]
    body = {"lead": lead, "package": "growth", "country": "GB", "start": "2026-03-02"}
    assert (await client.call("POST", "/deals", "viewer", json=body)).status_code == 403
    signed = await client.call("POST", "/deals", "operator", json=body)
    assert signed.status_code == 201, signed.text
    assert signed.json()["client"]["country"] == "GB" and signed.json()["package"] == "growth"
    again = await client.call("POST", "/deals", "operator", json=body)
    assert again.status_code == 422 and "signed already" in again.json()["error"]
    for bad, said in (({**body, "package": "gold"}, "gold"), ({**body, "country": "XX"}, "country")):
        answer = await client.call("POST", "/deals", "operator", json=bad)
        assert answer.status_code == 422 and said in answer.json()["error"], answer.text
    nobody = await client.call("POST", "/deals", "operator", json={**body, "lead": "no@body.example.org"})
    assert nobody.status_code == 404, nobody.text
    # The saga opens the project (here by hand, as it does on `ClientSigned`).
    project_id, _ = await ProjectsRepo(client.engine).open(
        project_id="0b7c1c1e-0000-4000-8000-000000000001",
        deal_id=signed.json()["deal"],
        client=signed.json()["client"],
        package={"name": "growth"},
        start=date(2026, 3, 2),
        now=NOW,
    )
    listed = (await client.call("GET", "/projects", "viewer")).json()["items"]
    assert [(p["id"], p["step"], p["step_state"]) for p in listed] == [(project_id, "onboarding", "started")]
    one = await client.call("GET", f"/projects/{project_id[:8]}", "viewer")
    assert [s["step"] for s in one.json()["steps"]] == ["onboarding", "strategy", "production"]
    assert (await client.call("GET", "/projects/abcdef12", "viewer")).status_code == 404
    assert (
        await client.call("POST", f"/projects/{project_id}/cancel", "viewer", json={"reason": "x"})
    ).status_code == 403
    cancelled = await client.call("POST", f"/projects/{project_id}/cancel", "operator", json={"reason": "budget"})
    assert cancelled.status_code == 200, cancelled.text
    audit = (await client.call("GET", "/audit?action=project.cancel", "owner")).json()["items"]
    assert [a["target"] for a in audit] == [project_id]


async def test_work_items_are_listed_shown_assigned_and_replaced_through_the_api(client: Client) -> None:
    from datetime import date

    from aicmo_actors.production.repos import NewItem, ProductionStore, new_item_id

    project = "0b7c1c1e-0000-4000-8000-0000000000aa"
    piece = {"key": "blog_post:blog:1", "type": "blog_post", "channel": "blog", "piece": 1}
    item_id = new_item_id(project, 1, piece["key"])
    item = {**piece, "due": "2026-03-10", "topic": "Pumps for plant managers"}
    await ProductionStore(client.engine).items.create(
        project,
        key=f"{project}:production",
        period=1,
        plan_version=1,
        client={
            "client_ref": "00000000-0000-0000-0000-000000000007",
            "company": "Acme",
            "contact_email": "a@acme.example",
        },
        package={"name": "growth", "delivery": ["email"]},
        brief={"business": "Pumps"},
        items=[
            NewItem(
                item_id, piece["key"], item, "blog_post", "blog", item["topic"], date(2026, 3, 10), date(2026, 3, 3)
            )
        ],
        now=NOW,
    )
    listed = (await client.call("GET", "/work", "viewer")).json()["items"]
    assert [(i["id"], i["state"]) for i in listed] == [(item_id, "planned")]
    shown = await client.call("GET", f"/work/{item_id[:8]}", "viewer")
    assert shown.status_code == 200 and shown.json()["item"]["topic"] == "Pumps for plant managers", shown.text
    assert (await client.call("GET", "/work/ffffffff", "viewer")).status_code == 404
    draft = {"text": "# Pumps\n\nA person's own draft.", "title": "Pumps, by hand"}
    assert (await client.call("POST", f"/work/{item_id}/draft", "viewer", json=draft)).status_code == 403
    uploaded = await client.call("POST", f"/work/{item_id}/draft", "operator", json=draft)
    assert uploaded.status_code == 201 and uploaded.json()["version"] == 1, uploaded.text
    assigned = await client.call("POST", f"/work/{item_id}/assign", "operator", json={"user": "nobody-here"})
    assert assigned.status_code == 422 and "no user" in assigned.json()["error"]
    assigned = await client.call("POST", f"/work/{item_id}/assign", "operator", json={"user": "unassigned"})
    assert assigned.status_code == 200
    audit = (await client.call("GET", "/audit?action=work.", "owner")).json()["items"]
    assert {a["action"] for a in audit} >= {"work.upload", "work.assign"}
