"""Routes of client acquisition: campaigns, leads and their history, replies and the
unmatched mail, re-labelling a reply by hand, suppressions and alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from aicmo_actors.api.app import Api, page
from aicmo_actors.api.auth import OPERATE, READ, ApiError
from aicmo_actors.api.control_routes import After, Limit, audit_line
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal
from contracts.cam import LeadState, ReplyCategory, RetryAlert

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

router = APIRouter()

ALERTS = "cam.alerts"


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


def _jsonable(value: Any) -> dict[str, Any]:
    from fastapi.encoders import jsonable_encoder

    encoded: dict[str, Any] = jsonable_encoder(value)
    return encoded


# -- campaigns --------------------------------------------------------------------------------------
@router.get("/campaigns", summary="Every campaign with its status and counts")
async def campaigns(request: Request, who: Principal = READ) -> dict[str, Any]:
    api = _api(request)
    items = []
    for name, row in sorted((await api.cam.campaigns.all()).items()):
        funnel = await api.cam.metrics.funnel(name)
        items.append(
            {
                "name": name,
                "status": row.status,
                "leads": sum(funnel["leads"].values()),
                "sent": funnel["figures"]["sent"],
                "replies": sum(funnel["replies"].values()),
            }
        )
    return {"items": items, "next": None}


async def _campaign(api: Api, name: str) -> Any:
    row = (await api.cam.campaigns.all()).get(name)
    if row is None:
        raise ApiError(404, f"no campaign named {name!r}: see GET /api/v1/campaigns")
    return row


@router.get("/campaigns/{name}", summary="A campaign's funnel: leads by state, emails, replies, figures")
async def campaign(name: str, request: Request, who: Principal = READ) -> dict[str, Any]:
    api = _api(request)
    row = await _campaign(api, name)
    funnel = await api.cam.metrics.funnel(name)
    return _jsonable({"name": name, "status": row.status, "spec": row.spec.model_dump(mode="json"), **funnel})


@router.post("/campaigns", summary="Create or update a campaign from its TOML file", status_code=201)
async def create_campaign(
    request: Request,
    toml: Annotated[str, Body(media_type="text/plain", description="the campaign file (TOML)", max_length=1_000_000)],
    who: Principal = OPERATE,
) -> dict[str, Any]:
    from aicmo_actors.cam.campaign import CampaignFileError, parse_campaign
    from aicmo_actors.cli.campaign_check import campaign_problems

    api = _api(request)
    try:
        spec = parse_campaign(toml, "<request body>", allow_test_domains=api.settings.allow_test_domains)
    except CampaignFileError as exc:
        raise ApiError(422, str(exc)) from None
    problems = [str(p) for p in campaign_problems(spec, api.settings)]
    if problems:
        raise ApiError(422, f"campaign {spec.name!r} was not stored: " + "; ".join(problems[:10]))
    now = api.now()

    def audited(conn: Connection, stored: tuple[int, bool]) -> None:
        action = "campaign.create" if stored[1] else "campaign.update"
        AuditActor(who.name, "api").write(conn, action, spec.name, {"steps": len(spec.steps)}, now)

    _, created = await api.cam.campaigns.create_or_update(spec, now, also=audited)
    return {"name": spec.name, "created": created}


class ReasonBody(BaseModel):
    reason: str | None = Field(None, max_length=500)


async def _set_status(api: Api, who: Principal, name: str, status: str, reason: str | None) -> dict[str, Any]:
    from aicmo_actors.cam.repos.campaigns import is_archived

    row = await _campaign(api, name)
    if is_archived(row.status, row.paused_reason):
        # Pausing would overwrite the "archived" reason, and then a resume would work.
        raise ApiError(409, f"campaign {name!r} is archived: it cannot be paused or resumed")
    why = reason or ("paused through the API" if status == "paused" else None)
    line = audit_line(api, who, "campaign.pause" if status == "paused" else "campaign.resume", name, {"reason": reason})
    await api.cam.campaigns.set_status(name, status, why, api.now(), also=line)
    return {"name": name, "status": status}


@router.post("/campaigns/{name}/pause", summary="Stop sending for a campaign (replies are still read)")
async def pause_campaign(
    name: str, request: Request, body: ReasonBody | None = None, who: Principal = OPERATE
) -> dict[str, Any]:
    return await _set_status(_api(request), who, name, "paused", body.reason if body else None)


@router.post("/campaigns/{name}/resume", summary="Resume a paused campaign (also after an auto-pause)")
async def resume_campaign(
    name: str, request: Request, body: ReasonBody | None = None, who: Principal = OPERATE
) -> dict[str, Any]:
    return await _set_status(_api(request), who, name, "active", body.reason if body else None)


# -- leads ------------------------------------------------------------------------------------------
@router.get("/leads", summary="Leads, filtered by campaign and state")
async def leads(
    request: Request,
    campaign: str | None = None,
    state: LeadState | None = None,
    email: Annotated[str | None, Query(description="part of the address")] = None,
    limit: Limit = 50,
    after: After = None,
    who: Principal = READ,
) -> dict[str, Any]:
    api = _api(request)
    items = await api.cam.leads.page(
        campaign=campaign,
        state=state.value if state else None,
        email_contains=email,
        after_id=after,
        limit=limit,
    )
    return page(items, limit)


@router.get("/leads/{lead_id}", summary="A lead's whole history: every email, reply, classification and change")
async def lead(lead_id: int, request: Request, who: Principal = READ) -> dict[str, Any]:
    api = _api(request)
    history = await api.cam.leads.history(lead_id)
    if history is None:
        raise ApiError(404, f"no lead with id {lead_id}: see GET /api/v1/leads")
    return history


# -- replies ----------------------------------------------------------------------------------------
@router.get("/replies", summary="Replies by category, with the evidence of their reading")
async def replies(
    request: Request,
    category: ReplyCategory | None = None,
    campaign: str | None = None,
    handled: Annotated[bool | None, Query(description="acted on (true) or still waiting (false)")] = None,
    limit: Limit = 50,
    after: After = None,
    who: Principal = READ,
) -> dict[str, Any]:
    api = _api(request)
    items = await api.cam.inbound.replies(
        category=category.value if category else None, campaign=campaign, handled=handled, after_id=after, limit=limit
    )
    return page(items, limit)


@router.get("/inbox/unmatched", summary="Inbound mail matched to no lead")
async def unmatched(request: Request, limit: Limit = 50, after: After = None, who: Principal = READ) -> Any:
    api = _api(request)
    items = await api.cam.inbound.unmatched_page(after_id=after, limit=limit)
    return page(items, limit)


class RelabelBody(BaseModel):
    category: ReplyCategory


@router.post("/replies/{inbound_id}/relabel", summary="Re-label a reply by hand: the lead moves as for that label")
async def relabel(inbound_id: int, request: Request, body: RelabelBody, who: Principal = OPERATE) -> dict[str, Any]:
    api = _api(request)
    from aicmo_actors.cam.wiring import lead_rules

    result = await api.cam.inbound.relabel(
        inbound_id,
        body.category.value,
        by=who.name,
        now=api.now(),
        rules=lead_rules(api.settings),
        also=audit_line(api, who, "reply.relabel", str(inbound_id), {"category": body.category.value}),
    )
    for alert_id in result.get("alert_ids", ()):
        await retry_alert_now(api, alert_id)
    return result


# -- suppressions -----------------------------------------------------------------------------------
@router.get("/suppressions", summary="Addresses never to email again, with the reason")
async def suppressions(request: Request, limit: Limit = 50, after: After = None, who: Principal = READ) -> Any:
    api = _api(request)
    items = await api.cam.leads.suppressions(after_id=after, limit=limit)
    return page(items, limit)


class SuppressBody(BaseModel):
    address: str = Field(max_length=320)
    reason: str = Field("manual", max_length=64)


@router.post("/suppressions", summary="Suppress an address", status_code=201)
async def suppress(request: Request, body: SuppressBody, who: Principal = OPERATE) -> dict[str, Any]:
    from email_validator import EmailNotValidError, validate_email

    api = _api(request)
    try:
        address = validate_email(body.address, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ApiError(422, f"{body.address!r} is not an email address: {exc}") from None
    line = audit_line(api, who, "suppression.add", address.lower(), {"reason": body.reason})
    new = await api.cam.leads.suppress(address, body.reason, f"api:{who.name}", api.now(), also=line)
    return {"address": address.lower(), "suppressed": True, "new": new}


@router.delete("/suppressions/{address}", summary="Remove an address from the suppressions (say why)")
async def unsuppress(
    address: str,
    request: Request,
    reason: Annotated[str, Query(min_length=3, max_length=500, description="why it may be emailed again")],
    who: Principal = OPERATE,
) -> dict[str, Any]:
    api = _api(request)
    line = audit_line(api, who, "suppression.remove", address.lower(), {"reason": reason}, only_if=bool)
    removed = await api.cam.leads.unsuppress(address, also=line)
    if not removed:
        raise ApiError(404, f"{address!r} is not suppressed")
    return {"address": address.lower(), "suppressed": False}


# -- alerts -----------------------------------------------------------------------------------------
@router.get("/alerts", summary="Alerts to people, with their delivery state")
async def alerts(
    request: Request,
    state: str | None = None,
    limit: Limit = 50,
    after: After = None,
    who: Principal = READ,
) -> Any:
    api = _api(request)
    items = await api.cam.alerts.page(state=state, after_id=after, limit=limit)
    return page(items, limit)


async def retry_alert_now(api: Api, alert_id: int) -> None:
    """Tell the alerts actor to deliver an alert now (the API and the web app, after a relabel
    or a retry); without cam running here, the alert waits in the database for its start."""
    try:
        ref = api.system.ref(ALERTS, RetryAlert)
    except Exception:
        return  # cam is not running here: the alert is due in the database and goes at its start
    await ref.tell(api.system.message(RetryAlert, alert_id=alert_id))


@router.post("/alerts/{alert_id}/retry", summary="Deliver a failed alert again")
async def retry_alert(alert_id: int, request: Request, who: Principal = OPERATE) -> dict[str, Any]:
    api = _api(request)
    line = audit_line(api, who, "alert.retry", str(alert_id), {}, only_if=bool)
    due = await api.cam.alerts.retry_now(alert_id, api.now(), also=line)
    if not due:
        raise ApiError(404, f"no alert {alert_id} that could be retried: see GET /api/v1/alerts")
    await retry_alert_now(api, alert_id)
    return {"alert_id": alert_id, "retrying": True}
