"""Routes after the deal: sign a deal, renew one, see the client projects, cancel one (as
`deal won`, `deal renew`, `projects`, `project ID` and `project cancel` do on the command line)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from aicmo_actors.api.app import Api
from aicmo_actors.api.auth import OPERATE, READ, ApiError
from aicmo_actors.api.control_routes import audit_line
from aicmo_actors.cam.repos.deals import Renewal, RenewalConflict
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


class DealBody(BaseModel):
    lead: str = Field(max_length=320, description="the lead's email address")
    package: str = Field(max_length=100, description="the service package's name (packages/NAME.toml)")
    country: str = Field(min_length=2, max_length=2, description="the client's country, ISO 3166-1 (its holidays)")
    start: date | None = Field(None, description="the first day of the work (default: today, the client's)")
    timezone: str | None = Field(None, max_length=64, description="IANA zone (default: the lead's, else UTC)")
    campaign: str | None = Field(None, max_length=200, description="the lead's campaign, if it is in several")
    company: str | None = Field(None, max_length=300)
    contact_name: str | None = Field(None, max_length=200)
    contact_email: str | None = Field(None, max_length=320)
    billing_address: str | None = Field(None, max_length=1000)
    language: str | None = Field(None, max_length=8, description="the client's language, ISO 639-1 (default: en)")
    webhook_url: str | None = Field(None, max_length=2000, description="where approved work is POSTed (webhook)")
    tax_id: str | None = Field(None, max_length=40, description="the client's VAT or tax number")
    billing_email: str | None = Field(None, max_length=320, description="where invoices go (default: the contact)")


@router.post("/deals", summary="A lead signed: make it a client and start its project", status_code=201)
async def deal_won(request: Request, body: DealBody, who: Principal = OPERATE) -> dict[str, Any]:
    from aicmo_actors.after_deal import DealError, sign_deal

    api = _api(request)
    try:
        deal = await sign_deal(
            api.cam,
            api.settings,
            address=body.lead,
            package_name=body.package,
            country=body.country,
            by=who.name,
            now=api.now(),
            start=body.start,
            timezone=body.timezone,
            campaign=body.campaign,
            company=body.company,
            contact_name=body.contact_name,
            contact_email=body.contact_email,
            billing_address=body.billing_address,
            language=body.language,
            webhook_url=body.webhook_url,
            tax_id=body.tax_id,
            billing_email=body.billing_email,
            audited_as=AuditActor(who.name, "api"),
        )
    except DealError as exc:
        raise ApiError(422, str(exc)) from None
    return {
        "deal": deal.deal_id,
        "lead_id": deal.lead_id,
        "campaign": deal.campaign,
        "client": deal.client,
        "package": body.package,
        "start": deal.start.isoformat(),
        "stopped_leads": deal.stopped,
    }


class RenewBody(BaseModel):
    months: int = Field(ge=1, le=120, description="how many months more, from the end of the term so far")
    number: int | None = Field(
        None,
        ge=1,
        description="the renewal's number you expect it to be (1 for the deal's first): a retry of a renewal "
        "already recorded returns it (200) instead of renewing twice; another number is a conflict (409)",
    )


@router.post("/deals/{deal_id}/renew", summary="The client renewed: months more of its monthly retainer")
async def deal_renew(
    deal_id: int, request: Request, body: RenewBody, response: Response, who: Principal = OPERATE
) -> dict[str, Any]:
    api = _api(request)
    now = api.now()

    def audited(conn: Connection, renewal: Renewal) -> None:
        if renewal.new:  # a retry renews nothing: no row
            detail = {"deal": deal_id, "number": renewal.number, "months": body.months}
            AuditActor(who.name, "api").write(conn, "deal.renew", str(deal_id), detail, now)

    try:
        renewal = await api.cam.deals.renew(
            deal_id, months=body.months, by=who.name, now=now, today=now.date(), number=body.number, also=audited
        )
    except RenewalConflict as exc:
        raise ApiError(409, str(exc)) from None
    if not renewal.new:
        return _renewal(renewal)  # a retry: recorded already
    response.status_code = 201
    return _renewal(renewal)


def _renewal(renewal: Any) -> dict[str, Any]:
    return {
        "deal": renewal.deal_id,
        "number": renewal.number,
        "months": renewal.months,
        "starts_on": renewal.starts_on.isoformat(),
        "ends_on": renewal.ends_on.isoformat(),
        "renewed_by": renewal.renewed_by,
        # Orchestration answered; and extended the project (not when it was cancelled).
        "answered": renewal.applied_at is not None,
        "applied": renewal.applied_at is not None and not renewal.outcome,
        "outcome": renewal.outcome,
    }


def _projects(api: Api) -> Any:
    from aicmo_actors.orchestration.projects import ProjectsRepo

    return ProjectsRepo(api.cam.engine)


@router.get("/projects", summary="Client projects: state, step, what it waits for and until when")
async def projects(request: Request, state: str | None = None, who: Principal = READ) -> dict[str, Any]:
    return {"items": _jsonable(await _projects(_api(request)).page(state=state)), "next": None}


@router.get("/projects/{project_id}", summary="One project: its steps, waits, deadlines and history")
async def project(project_id: str, request: Request, who: Principal = READ) -> Any:
    from aicmo_actors.orchestration.projects import ProjectError

    try:
        return _jsonable(await _projects(_api(request)).get(project_id))
    except ProjectError as exc:
        raise ApiError(404, str(exc)) from None


class CancelBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why (audited; the client is told it stopped)")


@router.post("/projects/{project_id}/cancel", summary="Undo a running project (the saga does it within a tick)")
async def cancel(project_id: str, request: Request, body: CancelBody, who: Principal = OPERATE) -> dict[str, Any]:
    from aicmo_actors.orchestration.projects import ProjectError

    api = _api(request)
    repo = _projects(api)
    try:
        found = await repo.get(project_id)
        full_id = str(found["project"]["id"])
        line = audit_line(api, who, "project.cancel", full_id, {"reason": body.reason})
        await repo.request_cancel(full_id, reason=body.reason, by=who.name, now=api.now(), also=line)
    except ProjectError as exc:
        status = 404 if "no project" in str(exc) else 409
        raise ApiError(status, str(exc)) from None
    return {"project": full_id, "cancel": "asked"}
