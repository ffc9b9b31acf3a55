"""Money and reports after the deal: invoices (all, or only the overdue ones), one invoice whole
(lines, tax, payments, reminders, balance) and its PDF, as `python run.py invoices`, `invoice ID`
and `invoice ID --pdf` show them; and the reports made for clients, as `python run.py reports`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.billing.emails import invoice_pdf
from aicmo_actors.billing.money import shown
from aicmo_actors.billing.repos import BillingError, BillingRepo, InvoiceRow
from aicmo_actors.billing.rules import CREDITED, OPEN, PAID
from aicmo_actors.identity.roles import Principal
from aicmo_actors.reporting.repos import ReportingStore
from aicmo_actors.webapp.web import Web, page

STATES = (OPEN, PAID, CREDITED)


def days_late(row: InvoiceRow, today: date) -> int:
    """How many days an open invoice is past its due date (0: not late, or not open). Pure."""
    return (today - row.due_on).days if row.state == OPEN and row.due_on < today else 0


def money(amount: Decimal, currency: str) -> str:
    """An amount as the invoice shows it: "2,500.00 EUR"."""
    return shown(amount, currency)


def _not_found(request: Request, web: Web, number: str, exc: BillingError) -> Response:
    if str(exc).startswith("no invoice"):
        return web.render(request, "error.html", 404, title="Not found", text=f"There is no invoice {number!r}.")
    return web.render(request, "error.html", 404, title="Not found", text=str(exc))


@page("read")
async def invoices(request: Request, web: Web, who: Principal) -> Response:
    overdue = request.query_params.get("overdue", "") not in ("", "0", "no")
    state = request.query_params.get("state", "").strip() or None
    if state is not None and state not in STATES:
        return web.done("/invoices", problem=f"Show invoices in one of these states: {', '.join(STATES)}.")
    today = web.api.now().date()
    rows = await BillingRepo(web.api.cam.engine).page(overdue_on=today if overdue else None, state=state)
    items = [{"row": r, "late": days_late(r, today)} for r in rows]
    return web.render(
        request,
        "invoices.html",
        title="Invoices",
        items=items,
        overdue=overdue,
        state=state,
        states=STATES,
        money=money,
    )


@page("read")
async def invoice(request: Request, web: Web, who: Principal) -> Response:
    number: str = request.path_params["number"]
    try:
        detail = await BillingRepo(web.api.cam.engine).show(number)
    except BillingError as exc:
        return _not_found(request, web, number, exc)
    row = detail.invoice
    return web.render(
        request,
        "invoice.html",
        title=f"Invoice {row.number}",
        detail=detail,
        row=row,
        late=days_late(row, web.api.now().date()),
        money=money,
    )


@page("read")
async def invoice_download(request: Request, web: Web, who: Principal) -> Response:
    number: str = request.path_params["number"]
    try:
        row = await BillingRepo(web.api.cam.engine).find(number)
    except BillingError as exc:
        return _not_found(request, web, number, exc)
    return Response(
        invoice_pdf(row.facts()),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="invoice-{row.number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@page("read")
async def reports(request: Request, web: Web, who: Principal) -> Response:
    rows = await ReportingStore(web.api.cam.engine).reports()
    return web.render(request, "reports.html", title="Reports", items=rows)


ROUTES = [
    Route("/invoices", invoices, methods=["GET"]),
    Route("/invoices/{number}", invoice, methods=["GET"]),
    Route("/invoices/{number}/pdf", invoice_download, methods=["GET"]),
    Route("/reports", reports, methods=["GET"]),
]
