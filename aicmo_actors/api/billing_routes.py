"""Routes of billing (as `invoices`, `invoice ID`, `pay` do on the command line): READ to see
invoices and their PDF, OPERATE to record a payment, every payment audited. Amounts are exact
decimal text in the invoice's currency (never a JSON float)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from aicmo_actors.api.app import Api
from aicmo_actors.api.auth import OPERATE, READ, ApiError
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from aicmo_actors.billing.repos import InvoiceRow

router = APIRouter()


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


def _repo(api: Api) -> Any:
    from aicmo_actors.billing.repos import BillingRepo

    return BillingRepo(api.cam.engine)


def _missing_or_bad(exc: Exception) -> ApiError:
    message = str(exc)
    return ApiError(404 if message.startswith("no invoice") else 422, message)


@router.get("/invoices", summary="Invoices, newest first (overdue: only open ones past their due date)")
async def invoices_list(
    request: Request,
    overdue: bool = False,
    client: Annotated[str | None, Query(description="a part of the company's name, or its client_ref")] = None,
    state: Annotated[str | None, Query(pattern="^(open|paid|credited)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = READ,
) -> dict[str, Any]:
    from aicmo_actors.billing.views import invoice_json

    api = _api(request)
    today = api.now().date()
    rows = await _repo(api).page(overdue_on=today if overdue else None, client=client, state=state, limit=limit)
    return {"invoices": [invoice_json(r) for r in rows], "next": None}


@router.get("/invoices/{invoice_id}", summary="One invoice: lines, tax, payments, reminders, balance")
async def invoice_show(invoice_id: str, request: Request, who: Principal = READ) -> dict[str, Any]:
    from aicmo_actors.billing.repos import BillingError
    from aicmo_actors.billing.views import detail_json

    try:
        detail = await _repo(_api(request)).show(invoice_id)
    except BillingError as exc:
        raise _missing_or_bad(exc) from None
    return detail_json(detail)


@router.get(
    "/invoices/{invoice_id}/pdf",
    summary="The invoice's PDF, as emailed",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def invoice_pdf(invoice_id: str, request: Request, who: Principal = READ) -> Response:
    from aicmo_actors.billing.emails import invoice_pdf as make_pdf
    from aicmo_actors.billing.repos import BillingError

    try:
        row = await _repo(_api(request)).find(invoice_id)
    except BillingError as exc:
        raise _missing_or_bad(exc) from None
    return Response(
        make_pdf(row.facts()),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="invoice-{row.number}.pdf"'},
    )


class PaymentBody(BaseModel):
    amount: str = Field(
        min_length=1, max_length=40, description='exact, as text, in the invoice\'s currency: "1500.50"'
    )
    received_on: date | None = Field(None, description="the day it was received (default: today)")
    note: str = Field("", max_length=500, description="e.g. the bank reference")


@router.post("/invoices/{invoice_id}/payments", summary="Record a payment (full, partial or over)", status_code=201)
async def invoice_pay(invoice_id: str, request: Request, body: PaymentBody, who: Principal = OPERATE) -> dict[str, Any]:
    from aicmo_actors.billing.repos import BillingError

    api = _api(request)
    now = api.now()

    def audited(conn: Connection, result: tuple[InvoiceRow, Decimal]) -> None:
        row, paid = result
        detail = {"amount": str(paid), "balance": str(row.balance)}
        AuditActor(who.name, "api").write(conn, "invoice.pay", row.number, detail, now)

    try:
        row, paid = await _repo(api).pay(
            invoice_id,
            body.amount,
            received_on=body.received_on or now.date(),
            by=who.name,
            now=now,
            note=body.note,
            also=audited,
        )
    except BillingError as exc:
        raise _missing_or_bad(exc) from None
    return {
        "invoice": row.number,
        "amount": str(paid),
        "currency": row.currency,
        "balance": str(row.balance),
        "state": row.state,
        "next": "announced (PaymentReceived) by the running service on its next tick",
    }
