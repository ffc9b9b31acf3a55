"""Leads: found by part of their address, their company, campaign or state; one lead's
whole history (every email, reply, classification and alert, and their timeline); a lead
signed as a client (operate), as `python run.py deal won` and `POST /api/v1/deals` sign it."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.api.project_routes import DealBody
from aicmo_actors.cam.repos.leads import LeadsRepo
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal
from aicmo_actors.orchestration.packages import PackageSpec, list_packages
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
    signable = found["state"] != LeadState.CLIENT.value
    return web.render(
        request,
        "lead.html",
        title=f"Lead {lead_id}: {found['email']}",
        history=history,
        lead=found,
        lead_id=lead_id,
        can_sign=signable,
        packages=_packages(web) if signable else [],
    )


def _packages(web: Web) -> list[str]:
    """The names of the packages a deal can be signed on: the packages folder's valid ones."""
    try:
        listed = list_packages(web.api.settings.packages_dir)
    except OSError:
        return []
    return [path.stem for path, spec in listed if isinstance(spec, PackageSpec)]


def _longest(name: str) -> int:
    """The most characters the API's `DealBody` lets field `name` hold (its `max_length`)."""
    return next(int(m.max_length) for m in DealBody.model_fields[name].metadata if hasattr(m, "max_length"))


#: What the form's optional fields may hold at most: what the API lets them, read from it.
_MOST = {name: _longest(name) for name in ("timezone", "company", "billing_email", "tax_id", "webhook_url")}


@page("operate")
async def lead_deal(request: Request, web: Web, who: Principal) -> Response:
    """Sign a deal for this lead: the call of `POST /api/v1/deals` (`after_deal.sign_deal`); the
    service starts the client's project, invoices and reports on its next tick."""
    from aicmo_actors.after_deal import DealError, sign_deal

    lead_id: int = request.path_params["lead_id"]
    history = await web.api.cam.leads.history(lead_id)
    if history is None:
        return web.render(request, "error.html", 404, title="Not found", text=f"There is no lead with id {lead_id}.")
    found = history["lead"]
    here = f"/leads/{quote(str(lead_id), safe='')}"
    form = await request.form()
    given = {k: str(form.get(k, "")).strip() for k in ("package", "country", "start", *_MOST)}
    if not given["package"]:
        return web.done(here, problem="Choose the package the client signed. Nothing was changed.")
    if not re.fullmatch(r"[A-Za-z]{2}", given["country"]):
        return web.done(
            here, problem="Say the client's country in two letters (ISO 3166-1: US, GB, DE). Nothing was changed."
        )
    start = None
    if given["start"]:
        try:
            start = date.fromisoformat(given["start"])
        except ValueError:
            return web.done(here, problem="Say the first day of the work as a date (2027-01-04). Nothing was changed.")
    for name, most in _MOST.items():
        if len(given[name]) > most:
            label = name.replace("_", " ")
            return web.done(here, problem=f"The {label} is at most {most} characters. Nothing was changed.")
    now = web.api.now()
    try:
        deal = await sign_deal(
            web.api.cam,
            web.api.settings,
            address=found["email"],
            campaign=found["campaign"],
            package_name=given["package"],
            country=given["country"],
            by=who.name,
            now=now,
            start=start,
            timezone=given["timezone"] or None,
            company=given["company"] or None,
            billing_email=given["billing_email"] or None,
            tax_id=given["tax_id"] or None,
            webhook_url=given["webhook_url"] or None,
            audited_as=AuditActor(who.name, "web"),
        )
    except (DealError, RecordError) as exc:
        return web.done(here, problem=f"{exc}. Nothing was changed.")
    company = deal.client.get("company") or found["email"]
    return web.done(
        here,
        f"Deal {deal.deal_id} signed: {company} is a client on {given['package']} from {deal.start.isoformat()}; "
        "the service opens its project within a tick.",
    )


ROUTES = [
    Route("/leads", leads, methods=["GET"]),
    Route("/leads/{lead_id:int}", lead, methods=["GET"]),
    Route("/leads/{lead_id:int}/deal", lead_deal, methods=["POST"]),
]
