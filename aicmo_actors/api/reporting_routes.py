"""Routes of reporting (as `kpi list|import` and `reports` do on the command line): KPI values
read (READ) and recorded (OPERATE, audited), the reports made (READ)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator

from aicmo_actors.api.app import Api
from aicmo_actors.api.auth import OPERATE, READ, ApiError
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from aicmo_actors.reporting.repos import KpiValue

router = APIRouter()


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


def _store(api: Api) -> Any:
    from aicmo_actors.reporting.repos import ReportingStore

    return ReportingStore(api.cam.engine)


def _jsonable(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)


class KpiBody(BaseModel):
    client: str = Field(min_length=1, max_length=320, description="the client: company, client ref or contact email")
    kpi: str = Field(min_length=1, max_length=100, description="a KPI name of the client's package")
    period: str = Field(min_length=7, max_length=30, description="2027-01 (month), 2027-W03 (week), 2027-01-15 (day)")
    value: float = Field(description="the KPI's value for the period")

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


@router.get("/kpis", summary="KPI values recorded for clients, with their targets and attainment")
async def kpi_list(request: Request, client: str | None = None, who: Principal = READ) -> dict[str, Any]:
    from aicmo_actors.reporting.repos import ReportingError

    try:
        values = await _store(_api(request)).kpis(client=client)
    except ReportingError as exc:
        raise ApiError(404, str(exc)) from None
    return {"kpis": _jsonable([v.__dict__ for v in values]), "next": None}


@router.post("/kpis", summary="Record a KPI value of a client for a period (replaces an earlier one)", status_code=201)
async def kpi_record(request: Request, body: KpiBody, who: Principal = OPERATE) -> dict[str, Any]:
    from aicmo_actors.reporting.repos import ReportingError

    api = _api(request)
    now = api.now()

    def audited(conn: Connection, value: KpiValue) -> None:
        detail = {"kpi": value.kpi, "period": value.period, "value": value.value}
        AuditActor(who.name, "api").write(conn, "kpi.record", value.client_ref, detail, now)

    try:
        value = await _store(api).record_kpi(
            body.client, body.kpi, body.period, body.value, source=f"api:{who.name}", now=now, also=audited
        )
    except ReportingError as exc:
        raise ApiError(404 if str(exc).startswith("no client") else 422, str(exc)) from None
    return {"kpi": _jsonable(value.__dict__), "next": "announced (KpiMeasured) on the service's next tick"}


@router.get("/reports", summary="Reports made for clients, newest first, and whether their email went out")
async def report_list(request: Request, client: str | None = None, who: Principal = READ) -> dict[str, Any]:
    from aicmo_actors.reporting.repos import ReportingError

    store = _store(_api(request))
    try:
        ref = (await store.find(client)).client_ref if client else None
    except ReportingError as exc:
        raise ApiError(404, str(exc)) from None
    return {"reports": _jsonable([r.__dict__ for r in await store.reports(client_ref=ref)]), "next": None}
