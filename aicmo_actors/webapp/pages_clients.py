"""Clients' health: every client's band, score, contract end and top reasons, the reddest first
(as the running service last scored them), and one client whole, scored now: every signal with
its weight, its contracts and renewal reminders. The same as `python run.py health [CLIENT]`
and `GET /api/v1/health[/CLIENT]`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.identity.roles import Principal
from aicmo_actors.retention.report import breakdown_json, client_json, setup_of
from aicmo_actors.retention.repos import RetentionError, RetentionStore
from aicmo_actors.webapp.web import Web, page


@page("read")
async def health(request: Request, web: Web, who: Principal) -> Response:
    rows = await RetentionStore(web.api.cam.engine).clients(web.api.now().date())
    return web.render(request, "health.html", title="Client health", items=[client_json(r) for r in rows])


@page("read")
async def client_health(request: Request, web: Web, who: Principal) -> Response:
    client: str = request.path_params["client"]
    api = web.api
    try:
        setup = setup_of(api.settings)
    except ValueError as exc:
        return web.render(request, "error.html", 500, title="Settings", text=f"Retention settings: {exc}")
    store = RetentionStore(api.cam.engine)
    try:
        found = await store.find(client)
        detail = await store.breakdown(found.client_ref, api.now(), setup.scoring, setup.renewal_days)
    except RetentionError as exc:
        text = f"There is no client {client!r}." if str(exc).startswith("no client") else str(exc)
        return web.render(request, "error.html", 404, title="Not found", text=text)
    shown = breakdown_json(detail)
    return web.render(request, "client_health.html", title=f"Health: {shown['company']}", client=shown)


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/health/{client:path}", client_health, methods=["GET"]),
]
