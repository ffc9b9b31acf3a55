"""Projects after the deal: every client project (its state, the step it is on, what that step
waits for and until when), and one project whole (its steps in order, later periods included,
and its history), as `python run.py projects` and `project ID` show them; and a running project's
cancel asked (operate), as `POST /api/v1/projects/{id}/cancel` asks it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.identity.roles import Principal
from aicmo_actors.orchestration.projects import ProjectError, ProjectsRepo
from aicmo_actors.orchestration.saga_rules import PROJECT_STATES, RUNNING, kind_of, period_of, periods
from aicmo_actors.webapp.web import Web, page

#: As long as the API lets a reason be (`api/project_routes.CancelBody`).
MAX_REASON_CHARS = 500


def step_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A project's steps in order, each with its kind and period ("production:2": production,
    period 2). Pure."""
    ordered = sorted(steps, key=lambda s: s["position"])
    return [{**s, "kind": kind_of(s["step"]), "period": period_of(s["step"])} for s in ordered]


@page("read")
async def projects(request: Request, web: Web, who: Principal) -> Response:
    state = request.query_params.get("state", "").strip() or None
    if state is not None and state not in PROJECT_STATES:
        return web.done("/projects", problem=f"Show projects in one of these states: {', '.join(PROJECT_STATES)}.")
    items = await ProjectsRepo(web.api.cam.engine).page(state=state)
    return web.render(request, "projects.html", title="Projects", items=items, states=PROJECT_STATES, state=state)


def _not_found(request: Request, web: Web, project_id: str, exc: ProjectError) -> Response:
    # A start of several ids says so; anything else is no project of ours.
    text = str(exc) if "several" in str(exc) else f"There is no project {project_id!r}."
    return web.render(request, "error.html", 404, title="Not found", text=text)


@page("read")
async def project(request: Request, web: Web, who: Principal) -> Response:
    project_id: str = request.path_params["project_id"]
    try:
        found = await ProjectsRepo(web.api.cam.engine).get(project_id)
    except ProjectError as exc:
        return _not_found(request, web, project_id, exc)
    p = found["project"]
    steps = step_rows(found["steps"])
    return web.render(
        request,
        "project.html",
        title=f"Project {p['company']}",
        project=p,
        client=p.get("client") or {},
        steps=steps,
        period=max((s["period"] for s in steps), default=1),
        periods=periods(p.get("package") or {}),
        history=found["history"],
        can_cancel=p["state"] == RUNNING and p["cancel_requested_at"] is None,
        max_reason=MAX_REASON_CHARS,
    )


@page("operate")
async def project_cancel(request: Request, web: Web, who: Principal) -> Response:
    """Ask for a running project to be cancelled: the repository call of the API; the saga undoes it."""
    project_id: str = request.path_params["project_id"]
    repo = ProjectsRepo(web.api.cam.engine)
    try:
        found = await repo.get(project_id)
    except ProjectError as exc:
        return _not_found(request, web, project_id, exc)
    p = found["project"]
    full_id = str(p["id"])
    here = f"/projects/{quote(full_id, safe='')}"
    form = await request.form()
    reason = str(form.get("reason", "")).strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        return web.done(here, problem=f"Say why, in 1 to {MAX_REASON_CHARS} characters. Nothing was changed.")
    if form.get("understood") != "yes":
        return web.done(here, problem='Tick "I understand" to cancel the project. Nothing was changed.')
    if p["state"] == RUNNING and p["cancel_requested_at"] is not None:
        return web.done(here, f"Cancelling project {p['company']} was asked already: it is being undone.")
    now = web.api.now()
    try:
        await repo.request_cancel(full_id, reason=reason, by=who.name, now=now)
    except ProjectError as exc:
        return web.done(here, problem=f"{exc}. Nothing was changed.")
    await web.api.identity.audit.record(who.name, "web", "project.cancel", full_id, {"reason": reason}, now)
    return web.done(
        here, f"Cancel asked for project {p['company']}: the service undoes its steps, last first, on its next tick."
    )


ROUTES = [
    Route("/projects", projects, methods=["GET"]),
    Route("/projects/{project_id}", project, methods=["GET"]),
    Route("/projects/{project_id}/cancel", project_cancel, methods=["POST"]),
]
