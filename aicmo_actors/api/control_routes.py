"""Routes of the control plane: status, modules and their switches, the worker, usage, the
cycle reports, dead letters, the audit trail, users and tokens, and logging in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from aicmo_actors.api.app import Api, page
from aicmo_actors.api.auth import OPERATE, OWN, READ, ApiError
from aicmo_actors.api.plane import apply_switches_now, set_switch
from aicmo_actors.identity.repos import AuditActor, IdentityError, LoginRefused
from aicmo_actors.identity.roles import Principal
from aicmo_actors.orchestration.health import module_health, readiness
from aicmo_actors.orchestration.registry import WORKER, UnknownModule
from aicmo_actors.orchestration.switches import SwitchState
from aicmo_actors.runtime.clock_actor import CLOCK_ACTOR
from aicmo_actors.storage.dead_letters import list_dead_letters
from contracts.runtime import SystemSnapshot, Tick

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=500, description="items per page (at most 500)")]
After = Annotated[int | None, Query(description="the `next` of the previous page")]


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


async def audit(api: Api, who: Principal, action: str, target: str | None, detail: dict[str, Any]) -> None:
    """An audit row in a transaction of its own: for a request that changes nothing in the
    database (a cycle run now). A change's row goes in the change's transaction (`audit_line`)."""
    await api.identity.audit.record(who.name, "api", action, target, detail, api.now())


def audit_line(
    api: Api,
    who: Principal,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    *,
    source: str = "api",
    only_if: Callable[[Any], object] | None = None,
) -> Callable[[Connection, Any], object]:
    """The request's audit row as a repository's `also`: written in the change's own transaction
    (`storage.work.Also`), so a crash never keeps the change without its row. `source`: "web"
    for the web app's forms; `only_if`: as `AuditActor.line`."""
    return AuditActor(who.name, source).line(action, target, detail, api.now(), only_if=only_if)


async def modules_health(
    api: Api, state: SwitchState | None = None, snapshot: SystemSnapshot | None = None
) -> list[dict[str, Any]]:
    """Each module's health (the switches and the snapshot taken here unless the caller has them)."""
    state = state if state is not None else await api.plane.switches.state()
    snapshot = snapshot if snapshot is not None else api.system.snapshot()
    return [module_health(spec, snapshot, state, api.plane.registry) for spec in api.plane.registry.specs()]


# -- status ---------------------------------------------------------------------------------------
@router.get("/status", summary="The service: actors, switches, dependencies, readiness")
async def status(request: Request, who: Principal = READ) -> dict[str, Any]:
    api = _api(request)
    snapshot = api.system.snapshot()
    state = await api.plane.switches.state()
    modules = await modules_health(api, state, snapshot)
    ready, reasons = readiness(snapshot, modules, lease_held=api.plane.lease_held())
    return {
        "ready": ready,
        "reasons": reasons,
        "worker_paused": state.worker_paused,
        "disabled": state.disabled,
        "modules": [{"name": m["name"], "status": m["status"]} for m in modules],
        "snapshot": snapshot.model_dump(mode="json"),
    }


@router.get("/me", summary="Who this token belongs to")
async def me(who: Principal = READ) -> dict[str, Any]:
    return {"name": who.name, "role": who.role}


# -- modules --------------------------------------------------------------------------------------
@router.get("/modules", summary="Every module: its declaration, switch and health")
async def modules(request: Request, who: Principal = READ) -> dict[str, Any]:
    api = _api(request)
    health = {m["name"]: m for m in await modules_health(api)}
    items = []
    for spec in api.plane.registry.specs():
        items.append({**spec.model_dump(mode="json"), "health": health[spec.name]})
    return {"items": items, "next": None}


def _spec(api: Api, name: str) -> Any:
    try:
        return api.plane.registry.get(name)
    except UnknownModule as exc:
        raise ApiError(404, f"{exc}: see GET /api/v1/modules") from None


@router.get("/modules/{name}", summary="One module: declaration, switch and health of each actor")
async def module(name: str, request: Request, who: Principal = READ) -> dict[str, Any]:
    api = _api(request)
    spec = _spec(api, name)
    health = {m["name"]: m for m in await modules_health(api)}
    return {
        **spec.model_dump(mode="json"),
        "health": health[name],
        "stops_with_it": api.plane.registry.dependents(name),
    }


class SwitchBody(BaseModel):
    reason: str | None = Field(None, max_length=500, description="why (kept with the switch and in the audit)")


async def _switch(api: Api, who: Principal, name: str, enabled: bool, reason: str | None) -> dict[str, Any]:
    changed = await set_switch(
        api.plane.switches, name, enabled, actor=who.name, source="api", reason=reason, now=api.now()
    )
    await apply_switches_now(api.system)
    stops = api.plane.registry.dependents(name) if name != WORKER else []
    return {"name": name, "enabled": enabled, "changed": changed, "also_stops": stops}


@router.post("/modules/{name}/disable", summary="Switch a module off (its waiting work is kept)")
async def disable(
    name: str, request: Request, body: SwitchBody | None = None, who: Principal = OPERATE
) -> dict[str, Any]:
    api = _api(request)
    spec = _spec(api, name)
    if not spec.can_disable:
        raise ApiError(409, f"module {name!r} cannot be switched off")
    return await _switch(api, who, name, False, body.reason if body else None)


@router.post("/modules/{name}/enable", summary="Switch a module back on: it processes what waited")
async def enable(
    name: str, request: Request, body: SwitchBody | None = None, who: Principal = OPERATE
) -> dict[str, Any]:
    api = _api(request)
    _spec(api, name)
    return await _switch(api, who, name, True, body.reason if body else None)


# -- worker ---------------------------------------------------------------------------------------
@router.post("/worker/pause", summary="Pause all sending (replies are still read and stored)")
async def worker_pause(request: Request, body: SwitchBody | None = None, who: Principal = OPERATE) -> Any:
    return await _switch(_api(request), who, WORKER, False, body.reason if body else None)


@router.post("/worker/resume", summary="Resume sending")
async def worker_resume(request: Request, body: SwitchBody | None = None, who: Principal = OPERATE) -> Any:
    return await _switch(_api(request), who, WORKER, True, body.reason if body else None)


@router.post("/worker/cycle", summary="Run one cycle now (every step, as a tick would)")
async def worker_cycle(request: Request, who: Principal = OPERATE) -> dict[str, Any]:
    api = _api(request)
    interval = float(getattr(api.settings, "tick_interval_s", 60.0))
    try:
        clock = api.system.ref(CLOCK_ACTOR, Tick)
    except Exception:
        raise ApiError(409, "this service runs without a clock (tick interval 0): nothing to run") from None
    now = api.now()
    # seq 0: a cycle run by hand (the clock's own ticks count from 1).
    await clock.tell(api.system.message(Tick, seq=0, at=now, interval_s=interval))
    await audit(api, who, "worker.cycle", None, {})
    return {"started": True, "at": now.isoformat()}


@router.get("/cycles", summary="The cycle reports: what each step did on each tick")
async def cycles(
    request: Request,
    step: str | None = None,
    limit: Limit = 50,
    before: Annotated[int | None, Query(description="the `next` of the previous page (newest first)")] = None,
    who: Principal = READ,
) -> dict[str, Any]:
    api = _api(request)
    items = await api.cam.metrics.cycle_reports(step=step, before_id=before, limit=limit)
    return page(items, limit)


# -- usage ----------------------------------------------------------------------------------------
def _since(value: str | None, now: datetime) -> datetime | None:
    from aicmo_actors.cli.timespec import parse_since

    if value is None:
        return None
    try:
        return parse_since(value, now)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


@router.get("/usage", summary="Usage totals, grouped (by=module,kind | campaign | day)")
async def usage(
    request: Request,
    by: Annotated[str, Query(description="comma-separated: module, kind, campaign, day")] = "module,kind",
    since: Annotated[str | None, Query(description="ISO date/time, or an age: 7d, 12h")] = None,
    until: Annotated[str | None, Query(description="ISO date/time (excluded)")] = None,
    module: str | None = None,
    kind: str | None = None,
    campaign: str | None = None,
    who: Principal = READ,
) -> dict[str, Any]:
    api = _api(request)
    now = api.now()
    groups = [g.strip() for g in by.split(",") if g.strip()]
    try:
        totals = await api.plane.usage.totals(
            by=groups,  # type: ignore[arg-type]
            since=_since(since, now),
            until=_since(until, now),
            module=module,
            kind=kind,
            campaign=campaign,
        )
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return {"by": groups, "items": [{**t.group, "quantity": t.quantity} for t in totals], "next": None}


# -- dead letters, audit ----------------------------------------------------------------------------
@router.get("/dead-letters", summary="Messages that could not be delivered or processed (newest first)")
async def dead_letters(
    request: Request,
    limit: Limit = 50,
    before: Annotated[int | None, Query(description="the `next` of the previous page")] = None,
    who: Principal = READ,
) -> dict[str, Any]:
    api = _api(request)
    rows = await list_dead_letters(api.plane.engine, limit, before=before)
    items = [
        {
            "id": r.id,
            "kind": r.kind,
            "actor": r.actor,
            "message_type": r.message_type,
            "error": r.error,
            "at": r.at.isoformat(),
            "payload": r.payload,
        }
        for r in rows
    ]
    return page(items, limit)


@router.get("/audit", summary="Who changed what, newest first (owners only)")
async def audit_list(
    request: Request,
    actor: str | None = None,
    action: Annotated[str | None, Query(description="an action or its prefix: module., campaign.pause")] = None,
    since: str | None = None,
    limit: Limit = 50,
    before: Annotated[int | None, Query(description="the `next` of the previous page")] = None,
    who: Principal = OWN,
) -> dict[str, Any]:
    api = _api(request)
    rows = await api.identity.audit.list(
        since=_since(since, api.now()), actor=actor, action=action, limit=limit, before_id=before
    )
    items = [_plain(r) for r in rows]
    return page(items, limit)


def _by(who: Principal) -> AuditActor:
    return AuditActor(who.name, "api")


def _plain(row: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    data = asdict(row) if is_dataclass(row) and not isinstance(row, type) else dict(row)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items() if k != "password_hash"}


# -- users and tokens ---------------------------------------------------------------------------------
class LoginBody(BaseModel):
    name: str = Field(max_length=100)
    password: str = Field(max_length=1000)


@router.post("/auth/login", summary="Exchange a name and password for a token valid 12 hours")
async def login(request: Request, body: Annotated[LoginBody, Body()]) -> dict[str, Any]:
    api = _api(request)
    now = api.now()
    found = await api.identity.login(body.name, body.password, now)
    if isinstance(found, LoginRefused):
        wait = int(found.retry_after_s)
        if found.reason == "locked":
            raise ApiError(429, f"too many failed logins: try again in {wait} s", {"Retry-After": str(wait)})
        message = "wrong name or password"
        if wait:
            message += f"; after repeated failures the next try must wait {wait} s"
        raise ApiError(401, message, {"Retry-After": str(wait)} if wait else None)
    expires = now + timedelta(hours=12)
    raw, _ = await api.identity.tokens.create(
        found.name, "login", now, expires_at=expires, by=AuditActor(found.name, "api")
    )
    return {"token": raw, "expires_at": expires.astimezone(UTC).isoformat(), "role": found.role}


@router.get("/users", summary="Users and their roles (owners only)")
async def users(request: Request, who: Principal = OWN) -> dict[str, Any]:
    api = _api(request)
    return {"items": [_plain(u) for u in await api.identity.users.list()], "next": None}


class UserBody(BaseModel):
    name: str = Field(max_length=100)
    role: Literal["owner", "operator", "viewer"]
    password: str | None = Field(None, max_length=1000)


@router.post("/users", summary="Add a user (owners only)", status_code=201)
async def add_user(request: Request, body: UserBody, who: Principal = OWN) -> dict[str, Any]:
    api = _api(request)
    try:
        user = await api.identity.users.add(body.name, body.role, body.password, api.now(), by=_by(who))
    except IdentityError as exc:
        raise ApiError(409 if "already" in str(exc) else 422, str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return _plain(user)


@router.delete("/users/{name}", summary="Remove a user and their tokens (owners only)")
async def remove_user(name: str, request: Request, who: Principal = OWN) -> dict[str, Any]:
    api = _api(request)
    try:
        removed = await api.identity.users.remove(name, api.now(), by=_by(who))
    except IdentityError as exc:
        raise ApiError(409, str(exc)) from None
    if not removed:
        raise ApiError(404, f"no user named {name!r}")
    return {"removed": name}


class TokenBody(BaseModel):
    label: str = Field("api", max_length=100)
    expires_days: int | None = Field(None, ge=1, le=3650)


@router.post("/users/{name}/tokens", summary="Make a token for a user (shown once; owners only)", status_code=201)
async def make_token(
    name: str, request: Request, body: TokenBody | None = None, who: Principal = OWN
) -> dict[str, Any]:
    api = _api(request)
    body = body or TokenBody()
    now = api.now()
    expires = now + timedelta(days=body.expires_days) if body.expires_days else None
    try:
        raw, token = await api.identity.tokens.create(name, body.label, now, expires_at=expires, by=_by(who))
    except IdentityError as exc:
        raise ApiError(404 if "no user" in str(exc) else 422, str(exc)) from None
    return {"token": raw, "token_info": _plain(token), "note": "shown once: keep it now"}


@router.delete("/tokens/{token}", summary="Revoke a token by id or prefix (owners only)")
async def revoke_token(token: str, request: Request, who: Principal = OWN) -> dict[str, Any]:
    api = _api(request)
    if not await api.identity.tokens.revoke(int(token) if token.isdigit() else token, api.now(), by=_by(who)):
        raise ApiError(404, f"no live token {token!r}")
    return {"revoked": token}
