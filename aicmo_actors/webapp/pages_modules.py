"""Modules: each module's health with its reasons, its switch (with what stops), the worker."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.api.control_routes import modules_health
from aicmo_actors.api.plane import apply_switches_now, set_switch
from aicmo_actors.identity.roles import Principal
from aicmo_actors.orchestration.registry import WORKER, UnknownModule
from aicmo_actors.webapp.web import Web, page


@page("read")
async def modules(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    state = await api.plane.switches.state()
    health = {m["name"]: m for m in await modules_health(api, state)}
    items = [
        {
            "spec": spec,
            "health": health[spec.name],
            "enabled": state.enabled(spec.name),
            "dependents": api.plane.registry.dependents(spec.name),
        }
        for spec in api.plane.registry.specs()
    ]
    return web.render(
        request, "modules.html", title="Modules", items=items, worker_paused=state.worker_paused, switches=state
    )


async def _switch(web: Web, who: Principal, name: str, enabled: bool, reason: str | None) -> None:
    api = web.api
    await set_switch(api.plane.switches, name, enabled, actor=who.name, source="web", reason=reason, now=api.now())
    await apply_switches_now(api.system)


@page("operate")
async def switch(request: Request, web: Web, who: Principal) -> Response:
    name = request.path_params["name"]
    form = await request.form()
    enabled = form.get("enabled") == "on"
    reason = str(form.get("reason", "")).strip()[:500] or None
    if name != WORKER:
        try:
            spec = web.api.plane.registry.get(name)
        except UnknownModule as exc:
            return web.done("/modules", problem=str(exc))
        if not enabled and not spec.can_disable:
            return web.done("/modules", problem=f"module {name} cannot be switched off")
    await _switch(web, who, name, enabled, reason)
    if name == WORKER:
        said = "Sending resumed." if enabled else "Sending paused: replies are still read."
    else:
        said = f"Module {name} switched {'on' if enabled else 'off'}."
    return web.done("/modules", said)


ROUTES = [
    Route("/modules", modules, methods=["GET"]),
    Route("/modules/{name}/switch", switch, methods=["POST"]),
]
