"""Leads: found by part of their address, their company, campaign or state; one lead's
whole history (every email, reply, classification and alert, and their timeline)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.cam.repos.leads import LeadsRepo
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.identity.roles import Principal
from aicmo_actors.webapp.web import Web, page
from contracts.cam import LeadState

PAGE = 50


async def find_leads(
    leads: LeadsRepo,
    *,
    campaign: str | None,
    state: str | None,
    email: str | None,
    company: str | None,
    after: int | None,
    limit: int = PAGE,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of leads by id, and the `after` of the next one (None: the last page)."""
    items = await leads.page(
        campaign=campaign, state=state, email_contains=email, company_contains=company, after_id=after, limit=limit
    )
    return items, (int(items[-1]["id"]) if len(items) == limit else None)


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value[:320] or None


@page("read")
async def leads(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    filters = {
        "email": _query(request, "email"),
        "company": _query(request, "company"),
        "campaign": _query(request, "campaign"),
        "state": _query(request, "state"),
    }
    after_text = _query(request, "after")
    notice = ""
    items: list[dict[str, Any]] = []
    next_after: int | None = None
    after = int(after_text) if after_text and after_text.isdigit() else None
    if after_text and after is None:
        notice = "That page link is not one of ours: showing the first page."
    try:
        items, next_after = await find_leads(
            api.cam.leads,
            campaign=filters["campaign"],
            state=filters["state"],
            email=filters["email"],
            company=filters["company"],
            after=after,
        )
    except RecordError as exc:
        notice = str(exc)
    return web.render(
        request,
        "leads.html",
        title="Leads",
        items=items,
        filters=filters,
        states=[s.value for s in LeadState],
        campaigns=list(await api.cam.campaigns.all()),
        after=after,
        next_after=next_after,
        notice=notice,
    )


@page("read")
async def lead(request: Request, web: Web, who: Principal) -> Response:
    lead_id: int = request.path_params["lead_id"]
    history = await web.api.cam.leads.history(lead_id)
    if history is None:
        return web.render(request, "error.html", 404, title="Not found", text=f"There is no lead with id {lead_id}.")
    found = history["lead"]
    return web.render(request, "lead.html", title=f"Lead {lead_id}: {found['email']}", history=history, lead=found)


ROUTES = [
    Route("/leads", leads, methods=["GET"]),
    Route("/leads/{lead_id:int}", lead, methods=["GET"]),
]
