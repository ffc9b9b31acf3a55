"""Projects after the deal: every client project (its state, the step it is on, what that step
waits for and until when), and one project whole (its steps in order, later periods included,
and its history), as `python run.py projects` and `project ID` show them, with a monthly retainer's
contract (its end and its renewals); a running project's cancel asked (operate), as
`POST /api/v1/projects/{id}/cancel` asks it, and its contract renewed (operate), as
`POST /api/v1/deals/{deal_id}/renew` renews it."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.api.control_routes import audit_line
from aicmo_actors.cam.repos.deals import MOST_MONTHS, Renewal, RenewalConflict, contract_end, renew_problem
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal
from aicmo_actors.orchestration.projects import ProjectError, ProjectsRepo
from aicmo_actors.orchestration.saga_rules import DELIVERED, PROJECT_STATES, RUNNING, kind_of, period_of, periods
from aicmo_actors.webapp.web import Web, page

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: As long as the API lets a reason be (`api/project_routes.CancelBody`).
MAX_REASON_CHARS = 500


def step_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A project's steps in order, each with its kind and period ("production:2": production,
    period 2). Pure."""
    ordered = sorted(steps, key=lambda s: s["position"])
    return [{**s, "kind": kind_of(s["step"]), "period": period_of(s["step"])} for s in ordered]


def _whole(text: str) -> int | None:
    """A form's whole number of at most four ASCII digits, else None. Pure."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else None


def is_retainer(project: dict[str, Any]) -> bool:
    """Whether a project's deal is a monthly retainer: the only contract that is renewed."""
    return (project.get("package") or {}).get("billing") == "monthly"


def renewable(project: dict[str, Any]) -> bool:
    """Whether a project's contract may be renewed from its page: a monthly retainer, running or
    delivered, no cancel asked (the saga applies no renewal to a cancelled project). Pure."""
    alive = project["state"] in (RUNNING, DELIVERED) and project.get("cancel_requested_at") is None
    return is_retainer(project) and alive


def contract(project: dict[str, Any], renewals: list[Renewal]) -> dict[str, Any]:
    """A retainer's contract as its page shows it: its end (the day after its last day, as `deal
    list` shows it: the last renewal's, else the start plus the signed term), the term as signed
    and each renewal, applied or waiting. The project's own term counts the renewals it applied:
    the signed term is the months from its start to the first renewal's first day. Pure."""
    package, start = project.get("package") or {}, project["start_date"]
    signed = int(package.get("term_months") or 12)
    end: date = contract_end(start, package)
    if renewals:
        first = renewals[0].starts_on
        signed = (first.year - start.year) * 12 + first.month - start.month
        end = renewals[-1].ends_on
    rows = [
        {
            "number": r.number,
            "months": r.months,
            "starts_on": r.starts_on,
            "ends_on": r.ends_on,
            "state": "waiting" if r.applied_at is None else ("not applied" if r.outcome else "applied"),
            "outcome": r.outcome or "",
            "renewed_at": r.renewed_at,
            "renewed_by": r.renewed_by,
        }
        for r in renewals
    ]
    return {"deal_id": project["deal_id"], "end": end, "signed_months": signed, "renewals": rows}


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
    retainer, renew_months, refused = None, 1, None
    if is_retainer(p):
        retainer = contract(p, await web.api.cam.deals.renewals(int(p["deal_id"])))
        # The term as signed again, within what one renewal may add.
        renew_months = min(max(retainer["signed_months"], 1), MOST_MONTHS)
        # What the repository would refuse (a contract ended too long ago) is said, not offered.
        refused = renew_problem(p.get("package") or {}, renew_months, retainer["end"], web.api.now().date())
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
        contract=retainer,
        can_renew=renewable(p) and refused is None,
        renew_refused=refused if renewable(p) else None,
        most_months=MOST_MONTHS,
        renew_months=renew_months,
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
    line = audit_line(web.api, who, "project.cancel", full_id, {"reason": reason}, source="web")
    try:
        await repo.request_cancel(full_id, reason=reason, by=who.name, now=web.api.now(), also=line)
    except ProjectError as exc:
        return web.done(here, problem=f"{exc}. Nothing was changed.")
    return web.done(
        here, f"Cancel asked for project {p['company']}: the service undoes its steps, last first, on its next tick."
    )


@page("operate")
async def project_renew(request: Request, web: Web, who: Principal) -> Response:
    """Renew a retainer's contract for more months: the repository call of the API; the saga,
    billing and retention apply it on the service's next tick."""
    project_id: str = request.path_params["project_id"]
    try:
        found = await ProjectsRepo(web.api.cam.engine).get(project_id)
    except ProjectError as exc:
        return _not_found(request, web, project_id, exc)
    p = found["project"]
    here = f"/projects/{quote(str(p['id']), safe='')}"
    form = await request.form()
    given = str(form.get("months", "")).strip()
    months = _whole(given) or 0
    if not 1 <= months <= MOST_MONTHS:
        return web.done(
            here, problem=f"Say how many months: a whole number from 1 to {MOST_MONTHS}. Nothing was changed."
        )
    if is_retainer(p) and not renewable(p):
        asked = ", its cancel asked" if p["cancel_requested_at"] is not None else ""
        return web.done(
            here,
            problem=f"Project {p['company']} is {p['state']}{asked}: its contract is not renewed "
            "(sign a new deal for new work). Nothing was changed.",
        )
    deal_id = int(p["deal_id"])
    # The form says which renewal it makes: sent twice (a double click), it is recorded once
    # (the repository checks the number in the renewal's own transaction).
    given_number = str(form.get("number", "")).strip()
    number = _whole(given_number)
    now = web.api.now()

    def audited(conn: Connection, renewal: Renewal) -> None:
        if renewal.new:  # sent again: recorded already, no second row
            detail = {"deal": deal_id, "number": renewal.number, "months": months}
            AuditActor(who.name, "web").write(conn, "deal.renew", str(deal_id), detail, now)

    try:
        renewal = await web.api.cam.deals.renew(
            deal_id, months=months, by=who.name, now=now, today=now.date(), number=number, also=audited
        )
    except RenewalConflict as exc:
        return web.done(here, problem=f"{exc}: reload the page to renew again. Nothing was changed.")
    except RecordError as exc:
        return web.done(here, problem=f"{exc}. Nothing was changed.")
    if not renewal.new:
        return web.done(
            here, f"Renewal {renewal.number} was recorded already: {renewal.months} more months, to {renewal.ends_on}."
        )
    return web.done(
        here,
        f"Renewal {renewal.number} recorded: {renewal.months} more months, to {renewal.ends_on.isoformat()}; "
        "the service applies it within a tick.",
    )


ROUTES = [
    Route("/projects", projects, methods=["GET"]),
    Route("/projects/{project_id}", project, methods=["GET"]),
    Route("/projects/{project_id}/cancel", project_cancel, methods=["POST"]),
    Route("/projects/{project_id}/renew", project_renew, methods=["POST"]),
]
