"""Projects after the deal: every client project (its state, the step it is on, what that step
waits for and until when), and one project whole (its steps in order, later periods included,
and its history), as `python run.py projects` and `project ID` show them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.identity.roles import Principal
from aicmo_actors.orchestration.projects import ProjectError, ProjectsRepo
from aicmo_actors.orchestration.saga_rules import PROJECT_STATES, kind_of, period_of, periods
from aicmo_actors.webapp.web import Web, page


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


@page("read")
async def project(request: Request, web: Web, who: Principal) -> Response:
    project_id: str = request.path_params["project_id"]
    try:
        found = await ProjectsRepo(web.api.cam.engine).get(project_id)
    except ProjectError as exc:
        # A start of several ids says so; anything else is no project of ours.
        text = str(exc) if "several" in str(exc) else f"There is no project {project_id!r}."
        return web.render(request, "error.html", 404, title="Not found", text=text)
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
    )


ROUTES = [
    Route("/projects", projects, methods=["GET"]),
    Route("/projects/{project_id}", project, methods=["GET"]),
]
