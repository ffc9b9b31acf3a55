"""Production's work items: every item (its state, due date, version, assignee and project),
filtered by state or project, and one item whole (its versions with their text, QC findings, the
client's verdicts, deliveries and history), as `python run.py work list` and `work show ID --text`
show them; and what a person does with one (operate), as `work upload|assign|signoff` and
`POST /api/v1/work/{id}/draft|assign|signoff` do it: a draft uploaded as the next version, the
item assigned to a user, a piece that passed QC signed off for the client."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.cli.work_cmd import MAX_DRAFT_BYTES
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal, allows
from aicmo_actors.production.drafting import to_html
from aicmo_actors.production.repos import UNASSIGNED, ItemsRepo, ProductionError
from aicmo_actors.production.rules import SIGNOFF, UPLOADABLE
from aicmo_actors.webapp.pages_campaigns import FORM_SLACK, _upload
from aicmo_actors.webapp.web import Web, page
from contracts.production import ITEM_STATES

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: As long as the API lets a draft and its title be (`api/work_routes.DraftBody`), and a user's
#: name (`AssignBody`).
MAX_DRAFT_CHARS, MAX_TITLE_CHARS, MAX_USER_CHARS = 200_000, 300, 200
#: What an item's or a project's id (or its start) may hold: a UUID's characters. Anything else
#: names no item, and never reaches the repository's prefix match as a pattern (`%`, `_`).
_ID_START = re.compile(r"[0-9a-f-]{1,36}")


def listed_state(row: dict[str, Any]) -> str:
    """An item's state as `work list` shows it: "drafting (needs a person) LATE". Pure."""
    return (
        row["state"]
        + (" (needs a person)" if row.get("needs_person_at") else "")
        + (" LATE" if row.get("late_at") else "")
    )


def draft_text(text: str) -> str:
    """A draft as typed in the form: a browser sends a textarea's lines ending in CR LF; the draft
    keeps the person's LF, as a file uploaded with `work upload` has it. Pure."""
    return text.replace("\r\n", "\n")


def _is_id(text: str) -> bool:
    return _ID_START.fullmatch(text.lower()) is not None


def _not_found(request: Request, web: Web, item_id: str, exc: ProductionError | None = None) -> Response:
    # A start of several ids says so; anything else is no item of ours.
    said = str(exc) if exc is not None and "more than one" in str(exc) else f"There is no work item {item_id!r}."
    return web.render(request, "error.html", 404, title="Not found", text=said)


async def _resolve(web: Web, item_id: str) -> str | ProductionError | None:
    """The whole id an item's id (or its start) names; the repository's refusal; None: no id at all."""
    if not _is_id(item_id):
        return None
    try:
        return await ItemsRepo(web.api.cam.engine).resolve(item_id)
    except ProductionError as exc:
        return exc


def _here(item_id: str) -> str:
    return f"/work/{quote(item_id, safe='')}"


@page("read")
async def work_list(request: Request, web: Web, who: Principal) -> Response:
    state = request.query_params.get("state", "").strip() or None
    project = request.query_params.get("project", "").strip().lower() or None
    if state is not None and state not in ITEM_STATES:
        return web.done("/work", problem=f"Show work items in one of these states: {', '.join(ITEM_STATES)}.")
    if project is not None and not _is_id(project):
        return web.done("/work", problem="Give a project's id, or its first characters (0-9, a-f and -).")
    items = await ItemsRepo(web.api.cam.engine).page(project=project, state=state)
    return web.render(
        request,
        "work_list.html",
        title="Work",
        items=[{**r, "shown_state": listed_state(r)} for r in items],
        states=ITEM_STATES,
        state=state,
        project=project,
    )


@page("read")
async def work_item(request: Request, web: Web, who: Principal) -> Response:
    item_id: str = request.path_params["item_id"]
    full = await _resolve(web, item_id)
    if not isinstance(full, str):
        return _not_found(request, web, item_id, full)
    found = await ItemsRepo(web.api.cam.engine).show(full)
    item = found["item"]
    users = [u.name for u in await web.api.identity.users.list()] if allows(who.role, "operate") else []
    return web.render(
        request,
        "work_item.html",
        title=f"Work item {item['id'][:8]}",
        item=item,
        shown_state=listed_state(item),
        versions=found["versions"],
        deliveries=found["deliveries"],
        history=found["history"],
        can_upload=item["state"] in UPLOADABLE,
        can_signoff=item["state"] == SIGNOFF,
        users=users,
        unassigned=UNASSIGNED,
        max_chars=MAX_DRAFT_CHARS,
        max_title=MAX_TITLE_CHARS,
        max_mb=f"{MAX_DRAFT_BYTES / 1_000_000:g}",
    )


@page("operate", max_body=MAX_DRAFT_BYTES + FORM_SLACK)
async def work_draft(request: Request, web: Web, who: Principal) -> Response:
    """A person's draft (typed, or a UTF-8 file) becomes the item's next version: the repository
    call of the API and `work upload`, with the API's limits."""
    item_id: str = request.path_params["item_id"]
    full = await _resolve(web, item_id)
    if not isinstance(full, str):
        return _not_found(request, web, item_id, full)
    here = _here(full)
    form = await request.form()
    upload = await _upload(form, "file", MAX_DRAFT_BYTES)
    if isinstance(upload, str):
        return web.done(here, problem=f"{upload}. Nothing was recorded.")
    if upload is not None:
        filename, data = upload
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return web.done(
                here, problem=f"{filename} is not UTF-8 text (Markdown or plain text). Nothing was recorded."
            )
    else:
        text = draft_text(str(form.get("text", "")))
    title = str(form.get("title", "")).strip() or None
    if not text.strip():
        return web.done(here, problem="The draft is empty: write it in the box or choose a file. Nothing was recorded.")
    if len(text) > MAX_DRAFT_CHARS or (title is not None and len(title) > MAX_TITLE_CHARS):
        return web.done(
            here,
            problem=f"At most {MAX_DRAFT_CHARS:,} characters of draft, {MAX_TITLE_CHARS} of title. "
            "Nothing was recorded.",
        )
    now = web.api.now()

    def audited(conn: Connection, version: int) -> None:
        detail = {"version": version, "bytes": len(text.encode())}
        AuditActor(who.name, "web").write(conn, "work.upload", full, detail, now)

    try:
        version = await ItemsRepo(web.api.cam.engine).upload(
            full, title=title, text=text, html=to_html(text), by=who.name, now=now, also=audited
        )
    except ProductionError as exc:
        return web.done(here, problem=f"{exc}. Nothing was recorded.")
    return web.done(here, f"Version {version} uploaded: the service sends it to quality control on its next tick.")


@page("operate")
async def work_assign(request: Request, web: Web, who: Principal) -> Response:
    """Name who works on an item (a user identity knows, or "unassigned"): the call of the API."""
    item_id: str = request.path_params["item_id"]
    full = await _resolve(web, item_id)
    if not isinstance(full, str):
        return _not_found(request, web, item_id, full)
    here = _here(full)
    form = await request.form()
    user = str(form.get("user", "")).strip()
    if not user or len(user) > MAX_USER_CHARS:
        return web.done(here, problem=f"Choose a user, or {UNASSIGNED}. Nothing was changed.")
    if user.lower() == UNASSIGNED:
        user = UNASSIGNED
    else:
        found = await web.api.identity.users.get(user)
        if found is None:
            return web.done(
                here, problem=f"There is no user {user!r}: choose one, or {UNASSIGNED}. Nothing was changed."
            )
        user = found.name
    repo = ItemsRepo(web.api.cam.engine)
    item = await repo.item(full)
    if item is not None and item.assignee == user:
        return web.done(here, f"Item {full[:8]} is assigned to {user} already.")
    now = web.api.now()
    also = AuditActor(who.name, "web").line("work.assign", full, {"user": user}, now)
    try:
        await repo.assign(full, user, now, also=also)
    except ProductionError as exc:
        return web.done(here, problem=f"{exc}. Nothing was changed.")
    return web.done(here, f"Item {full[:8]} assigned to {user}.")


@page("operate")
async def work_signoff(request: Request, web: Web, who: Principal) -> Response:
    """Let an item that passed QC go to the client (packages with QC sign-off): the call of the API."""
    item_id: str = request.path_params["item_id"]
    full = await _resolve(web, item_id)
    if not isinstance(full, str):
        return _not_found(request, web, item_id, full)
    here = _here(full)
    now = web.api.now()

    def audited(conn: Connection, version: int) -> None:
        AuditActor(who.name, "web").write(conn, "work.signoff", full, {"version": version}, now)

    try:
        version = await ItemsRepo(web.api.cam.engine).signoff(full, who.name, now, also=audited)
    except ProductionError as exc:
        return web.done(here, problem=f"{exc}. Nothing was changed.")
    return web.done(here, f"Version {version} signed off: it goes to the client with the next review batch.")


ROUTES = [
    Route("/work", work_list, methods=["GET"]),
    Route("/work/{item_id}", work_item, methods=["GET"]),
    Route("/work/{item_id}/draft", work_draft, methods=["POST"]),
    Route("/work/{item_id}/assign", work_assign, methods=["POST"]),
    Route("/work/{item_id}/signoff", work_signoff, methods=["POST"]),
]
