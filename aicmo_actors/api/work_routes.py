"""Routes of production's work items (as `work list|show|upload|assign|signoff` do on the
command line): READ to see them, OPERATE to change them, every change audited in the
change's own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from aicmo_actors.api.app import Api
from aicmo_actors.api.auth import OPERATE, READ, ApiError
from aicmo_actors.api.control_routes import audit_line
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

router = APIRouter()


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


def _jsonable(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)


def _items(api: Api) -> Any:
    from aicmo_actors.production.repos import ItemsRepo

    return ItemsRepo(api.cam.engine)


async def _resolve(api: Api, item_id: str) -> str:
    from aicmo_actors.production.repos import ProductionError

    try:
        found: str = await _items(api).resolve(item_id)
    except ProductionError as exc:
        raise ApiError(404, str(exc)) from None
    return found


def _conflict(exc: Exception) -> ApiError:
    return ApiError(409, str(exc))


@router.get("/work", summary="Work items: state, due date, version, assignee")
async def work_list(
    request: Request, project: str | None = None, state: str | None = None, who: Principal = READ
) -> dict[str, Any]:
    return {"items": _jsonable(await _items(_api(request)).page(project=project, state=state)), "next": None}


@router.get("/work/{item_id}", summary="One work item: versions, QC findings, verdicts, deliveries, history")
async def work_item(item_id: str, request: Request, who: Principal = READ) -> Any:
    api = _api(request)
    return _jsonable(await _items(api).show(await _resolve(api, item_id)))


class DraftBody(BaseModel):
    text: str = Field(min_length=1, max_length=200_000, description="the draft, Markdown or plain text")
    title: str | None = Field(None, max_length=300, description="its title (default: the last version's)")


@router.post("/work/{item_id}/draft", summary="A person's draft becomes the item's next version", status_code=201)
async def work_draft(item_id: str, request: Request, body: DraftBody, who: Principal = OPERATE) -> dict[str, Any]:
    from aicmo_actors.production.drafting import to_html
    from aicmo_actors.production.repos import ProductionError

    api = _api(request)
    full = await _resolve(api, item_id)
    now = api.now()

    def audited(conn: Connection, version: int) -> None:
        detail = {"version": version, "bytes": len(body.text.encode())}
        AuditActor(who.name, "api").write(conn, "work.upload", full, detail, now)

    try:
        version = await _items(api).upload(
            full, title=body.title, text=body.text, html=to_html(body.text), by=who.name, now=now, also=audited
        )
    except ProductionError as exc:
        raise _conflict(exc) from None
    return {"item": full, "version": version, "next": "quality control on the next tick"}


class AssignBody(BaseModel):
    user: str = Field(min_length=1, max_length=200, description="a user's name, or 'unassigned'")


@router.post("/work/{item_id}/assign", summary="Name who works on an item")
async def work_assign(item_id: str, request: Request, body: AssignBody, who: Principal = OPERATE) -> dict[str, Any]:
    from aicmo_actors.production.repos import UNASSIGNED, ProductionError

    api = _api(request)
    full = await _resolve(api, item_id)
    user = body.user.strip()
    if user.lower() == UNASSIGNED:
        user = UNASSIGNED
    else:
        found = await api.identity.users.get(user)
        if found is None:
            raise ApiError(422, f"no user {user!r}, or say {UNASSIGNED}")
        user = found.name
    try:
        await _items(api).assign(full, user, api.now(), also=audit_line(api, who, "work.assign", full, {"user": user}))
    except ProductionError as exc:
        raise _conflict(exc) from None
    return {"item": full, "assignee": user}


@router.post("/work/{item_id}/signoff", summary="Let an item that passed QC go to the client")
async def work_signoff(item_id: str, request: Request, who: Principal = OPERATE) -> dict[str, Any]:
    from aicmo_actors.production.repos import ProductionError

    api = _api(request)
    full = await _resolve(api, item_id)
    now = api.now()

    def audited(conn: Connection, version: int) -> None:
        AuditActor(who.name, "api").write(conn, "work.signoff", full, {"version": version}, now)

    try:
        version = await _items(api).signoff(full, who.name, now, also=audited)
    except ProductionError as exc:
        raise _conflict(exc) from None
    return {"item": full, "version": version, "state": "in_review"}
