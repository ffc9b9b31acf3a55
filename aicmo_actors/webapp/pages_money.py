"""Money and reports after the deal: invoices (all, or only the overdue ones), one invoice whole
(lines, tax, payments, reminders, balance) and its PDF, as `python run.py invoices`, `invoice ID`
and `invoice ID --pdf` show them; a payment recorded against one (operate), as `pay NUMBER AMOUNT`
and `POST /api/v1/invoices/{id}/payments` record it; and the reports made for clients, as
`python run.py reports` lists them, each as the client received it (its page, its PDF)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.billing.emails import invoice_pdf
from aicmo_actors.billing.money import shown
from aicmo_actors.billing.repos import BillingError, BillingRepo, InvoiceRow
from aicmo_actors.billing.rules import CREDITED, OPEN, PAID
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal
from aicmo_actors.reporting.repos import ReportingStore
from aicmo_actors.webapp.web import Web, page

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

STATES = (OPEN, PAID, CREDITED)
#: As long as the API lets an amount and a note be (`api/billing_routes.PaymentBody`).
MAX_AMOUNT_CHARS, MAX_NOTE_CHARS = 40, 500


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
    today = web.api.now().date()
    return web.render(
        request,
        "invoice.html",
        title=f"Invoice {row.number}",
        detail=detail,
        row=row,
        late=days_late(row, today),
        today=today.isoformat(),
        max_note=MAX_NOTE_CHARS,
        money=money,
    )


def received_day(text: str, today: date) -> date:
    """The day a payment was received, as typed in the form ("" is today). Pure; a `ValueError`
    with one line for people when it is no day."""
    written = text.strip()
    if not written:
        return today
    try:
        return date.fromisoformat(written)
    except ValueError:
        raise ValueError(f"{written!r} is not a day: write it as YYYY-MM-DD") from None


@page("operate")
async def invoice_pay(request: Request, web: Web, who: Principal) -> Response:
    """Record a payment: the repository call (and its checks) of the API and `python run.py pay`."""
    number: str = request.path_params["number"]
    here = f"/invoices/{quote(number, safe='')}"
    form = await request.form()
    amount = str(form.get("amount", "")).strip()
    note = str(form.get("note", "")).strip()
    now = web.api.now()
    if not amount:
        return web.done(here, problem="Say the amount received, e.g. 1500 or 1500.50. Nothing was recorded.")
    if len(amount) > MAX_AMOUNT_CHARS or len(note) > MAX_NOTE_CHARS:
        return web.done(
            here,
            problem=f"At most {MAX_AMOUNT_CHARS} characters of amount, {MAX_NOTE_CHARS} of note. Nothing was recorded.",
        )
    try:
        received_on = received_day(str(form.get("received_on", "")), now.date())
    except ValueError as exc:
        return web.done(here, problem=f"{exc}. Nothing was recorded.")

    def audited(conn: Connection, result: tuple[InvoiceRow, Decimal]) -> None:
        row, paid = result
        detail = {"amount": str(paid), "balance": str(row.balance)}
        AuditActor(who.name, "web").write(conn, "invoice.pay", row.number, detail, now)

    try:
        row, paid = await BillingRepo(web.api.cam.engine).pay(
            number, amount, received_on=received_on, by=who.name, now=now, note=note, also=audited
        )
    except BillingError as exc:
        if str(exc).startswith("no invoice"):
            return _not_found(request, web, number, exc)
        return web.done(here, problem=f"{exc}. Nothing was recorded.")
    if row.balance == 0:
        left = "paid in full"
    elif row.balance < 0:
        left = f"paid over: a credit of {money(-row.balance, row.currency)}"
    else:
        left = f"still owed: {money(row.balance, row.currency)}"
    return web.done(f"/invoices/{row.number}", f"{money(paid, row.currency)} recorded; {left}.")


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


#: A report's page as the client received it is the agency's own HTML, but shown in the app it is
#: kept from doing anything a page of the app could: no script, no request anywhere (its chart is
#: inlined), no form; a sandbox of its own origin.
REPORT_PAGE_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


def report_parts(raw: bytes) -> tuple[str | None, bytes | None]:
    """A report email's HTML, its inline images made `data:` URLs (the page stands alone), and its
    PDF attachment; None for a part the email does not have. Pure."""
    import base64
    from email import message_from_bytes, policy

    message = message_from_bytes(raw, policy=policy.default)
    html_part = message.get_body(("html",))
    html = html_part.get_content() if html_part is not None else None
    pdf = None
    for part in message.walk():
        content_id = str(part.get("Content-ID") or "").strip().strip("<>")
        if html is not None and content_id and part.get_content_maintype() == "image":
            data = base64.b64encode(bytes(part.get_content())).decode()
            html = html.replace(f"cid:{content_id}", f"data:{part.get_content_type()};base64,{data}")
        if part.get_content_type() == "application/pdf" and part.get_filename():
            pdf = bytes(part.get_content())
    return html, pdf


async def _report(request: Request, web: Web) -> tuple[str, str, str | None, bytes | None] | Response:
    try:
        report_id = int(request.path_params["report_id"])
    except ValueError:
        report_id = -1
    found = await ReportingStore(web.api.cam.engine).report_email(report_id) if report_id > 0 else None
    if found is None:
        text = f"There is no report {request.path_params['report_id']!r}."
        return web.render(request, "error.html", 404, title="Not found", text=text)
    company, period, raw = found
    return (company, period, *report_parts(raw))


@page("read")
async def report_page(request: Request, web: Web, who: Principal) -> Response:
    """The report's HTML as the client received it, on a page of its own (`REPORT_PAGE_POLICY`)."""
    found = await _report(request, web)
    if isinstance(found, Response):
        return found
    html = found[2]
    if html is None:
        return web.render(request, "error.html", 404, title="Not found", text="This report was sent without HTML.")
    headers = {
        "Content-Security-Policy": REPORT_PAGE_POLICY,
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)


@page("read")
async def report_download(request: Request, web: Web, who: Principal) -> Response:
    """The PDF the report's email carried."""
    found = await _report(request, web)
    if isinstance(found, Response):
        return found
    company, period, _, pdf = found
    if pdf is None:
        return web.render(request, "error.html", 404, title="Not found", text="This report was sent without a PDF.")
    name = "".join(c if c.isalnum() else "-" for c in f"report-{company}-{period}".lower())
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"', "Cache-Control": "no-store"},
    )


ROUTES = [
    Route("/invoices", invoices, methods=["GET"]),
    Route("/invoices/{number}", invoice, methods=["GET"]),
    Route("/invoices/{number}/pdf", invoice_download, methods=["GET"]),
    Route("/invoices/{number}/payments", invoice_pay, methods=["POST"]),
    Route("/reports", reports, methods=["GET"]),
    Route("/reports/{report_id}", report_page, methods=["GET"]),
    Route("/reports/{report_id}/pdf", report_download, methods=["GET"]),
]
