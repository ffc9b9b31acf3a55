"""Billing's repositories: every read and write of the `billing_*` tables.

Each public method is one transaction (`storage.work`) and returns rows or plain values, never
contract messages. What other modules must hear is written as a row of `billing_events` in the
transaction of the decision behind it; the ledger publishes those rows afterwards (at least
once: a kill between publishing and marking publishes again; subscribers de-duplicate).

An invoice is numbered, written, its email queued and its `InvoiceIssued` recorded in ONE
transaction (`_issue_in`): the per-year counter is read and advanced there, so an invoice exists
if and only if its number does; a crash before the commit leaves neither (the next attempt takes
the same number), a crash after it leaves both (the invoice's key stops a second one). Numbers
are never reused: invoices are never deleted, a credit note cancels one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.billing import rules, texts
from aicmo_actors.billing.document import Party
from aicmo_actors.billing.emails import InvoiceFacts, Letterhead, credit_email, email_key, invoice_email, reminder_email
from aicmo_actors.billing.money import ZERO, AmountError, parse_amount, shown
from aicmo_actors.billing.rules import CREDIT_NOTE, CREDITED, INVOICE, OPEN, PAID, Line, NewInvoice, ReminderDue
from aicmo_actors.billing.tables import (
    billing_accounts,
    billing_counters,
    billing_emails,
    billing_events,
    billing_holds,
    billing_invoices,
    billing_milestones,
    billing_payments,
    billing_reminders,
    billing_rounds,
)
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.client_mail import SENT, MailBook, queue_in
from aicmo_actors.storage.work import Also, run_read, run_write, run_write_if, with_also

_A, _M, _I, _N = billing_accounts, billing_milestones, billing_invoices, billing_counters
_P, _R, _RD, _H, _EV, _E = (
    billing_payments,
    billing_reminders,
    billing_rounds,
    billing_holds,
    billing_events,
    billing_emails,
)
MAX_PAGE = 500


class BillingError(LookupError):
    """No such invoice, project or milestone, or a request that does not fit (one line, for people)."""


# -- rows -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    deal_id: int
    client_ref: str
    company: str
    client: dict[str, Any]
    package: dict[str, Any]
    currency: str
    start_on: date
    signed_at: datetime
    project_id: str | None
    stopped_on: date | None
    next_due_at: datetime | None
    created_at: datetime
    #: How many renewals added their months to `package`'s term.
    renewals: int = 0


@dataclass(frozen=True)
class InvoiceRow:
    id: str
    number: str
    year: int
    seq: int
    key: str
    kind: str
    deal_id: int | None
    client_ref: str
    project_id: str | None
    client: dict[str, Any]
    seller: dict[str, Any]
    currency: str
    lines: tuple[Line, ...]
    net: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    tax_kind: str
    notes: tuple[str, ...]
    issued_on: date
    due_on: date
    service_from: date | None
    service_to: date | None
    paid: Decimal
    state: str
    for_invoice: str | None
    reminders: int
    next_reminder_on: date | None
    credit_note: str | None
    credited_on: date | None
    credit_reason: str | None
    sent_at: datetime | None
    created_at: datetime

    @property
    def balance(self) -> Decimal:
        return ZERO if self.state == CREDITED else rules.balance(self.total, self.paid)

    @property
    def company(self) -> str:
        return str(self.client.get("company", ""))

    def facts(self, payment_days: int | None = None) -> InvoiceFacts:
        return InvoiceFacts(
            seller=Party(**self.seller),
            number=self.number,
            kind=self.kind,
            client=self.client,
            currency=self.currency,
            lines=self.lines,
            net=self.net,
            tax_rate=self.tax_rate,
            tax=self.tax,
            total=self.total,
            tax_kind=self.tax_kind,
            notes=self.notes,
            issued_on=self.issued_on,
            due_on=self.due_on,
            service_from=self.service_from,
            service_to=self.service_to,
            payment_days=(self.due_on - self.issued_on).days if payment_days is None else payment_days,
        )


@dataclass(frozen=True)
class PaymentRow:
    id: int
    invoice_id: str
    amount: Decimal
    received_on: date
    by: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class ReminderRow:
    id: int
    invoice_id: str
    seq: int
    level: int
    fee: Decimal
    fee_invoice: str | None
    days_overdue: int
    sent_on: date
    created_at: datetime


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: InvoiceRow
    payments: tuple[PaymentRow, ...]
    reminders: tuple[ReminderRow, ...]
    email_status: str | None


@dataclass(frozen=True)
class PendingEvent:
    id: int
    kind: str
    body: dict[str, Any]


@dataclass(frozen=True)
class HoldRow:
    client_ref: str
    company: str
    round: int
    active: bool
    invoices: tuple[str, ...]
    since: datetime
    released_at: datetime | None
    alerted_at: datetime | None


def _invoice(row: Any) -> InvoiceRow:
    v = dict(row._mapping)
    for name in ("net", "tax_rate", "tax", "total", "paid"):
        v[name] = Decimal(v[name])
    v["lines"] = tuple(Line.of(x) for x in v["lines"])
    v["notes"] = tuple(v["notes"])
    return InvoiceRow(**v)


def _account(row: Any) -> AccountRow:
    return AccountRow(**dict(row._mapping))


def _hold(row: Any) -> HoldRow:
    v = dict(row._mapping)
    v["invoices"] = tuple(v["invoices"])
    v["active"] = bool(v["active"])
    return HoldRow(**v)


def _event_in(conn: Connection, kind: str, body: Mapping[str, Any], now: datetime) -> None:
    conn.execute(_EV.insert().values(kind=kind, body=dict(body), created_at=now))


def _take_number_in(conn: Connection, series: str, year: int) -> int:
    """The next number of `series` in `year`, taken (the caller's transaction writes its paper)."""
    found = conn.execute(
        sa.select(_N.c.last).where(_N.c.series == series, _N.c.year == year).with_for_update()
    ).scalar()
    if found is None:
        conn.execute(_N.insert().values(series=series, year=year, last=1))
        return 1
    conn.execute(_N.update().where(_N.c.series == series, _N.c.year == year).values(last=found + 1))
    return int(found) + 1


def _issue_in(conn: Connection, head: Letterhead, new: NewInvoice, *, today: date, now: datetime) -> InvoiceRow | None:
    """Number, write, queue the email of, and record `InvoiceIssued` for `new`, unless an invoice
    has its key (None then). Part of the caller's transaction."""
    if conn.execute(sa.select(_I.c.id).where(_I.c.key == new.key)).first() is not None:
        return None
    seq = _take_number_in(conn, INVOICE, today.year)
    number = rules.number(INVOICE, today.year, seq)
    # The id is derived from the key: the same decision always names the same invoice.
    invoice_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"aicmo-billing:{new.key}"))
    sums = rules.totals(new.lines, new.tax, new.currency)
    due = rules.due_on(today, new.payment_days)
    notes = tuple(n for n in (new.tax.note,) if n)
    conn.execute(
        _I.insert().values(
            id=invoice_id,
            number=number,
            year=today.year,
            seq=seq,
            key=new.key,
            kind=new.kind,
            deal_id=new.deal_id,
            client_ref=str(new.client["client_ref"]),
            project_id=new.project_id,
            client=dict(new.client),
            seller=head.seller_json(),
            currency=new.currency,
            lines=[x.as_json() for x in new.lines],
            net=str(sums.net),
            tax_rate=str(new.tax.rate),
            tax=str(sums.tax),
            total=str(sums.total),
            tax_kind=new.tax.kind,
            notes=list(notes),
            issued_on=today,
            due_on=due,
            service_from=new.service_from,
            service_to=new.service_to,
            paid="0",
            state=OPEN if sums.total > 0 else PAID,
            for_invoice=new.for_invoice,
            reminders=0,
            next_reminder_on=(
                rules.next_reminder_on(due, 0, head.reminders, head.repeat_every_days) if sums.total > 0 else None
            ),
            created_at=now,
        )
    )
    row = _invoice(conn.execute(sa.select(_I).where(_I.c.id == invoice_id)).one())
    key = email_key("invoice", invoice_id)
    queue_in(
        conn,
        _E,
        key=key,
        project_id=new.project_id or "",
        kind="invoice",
        message=invoice_email(head, row.facts(new.payment_days), key=key, now=now),
        now=now,
    )
    _event_in(
        conn,
        "InvoiceIssued",
        {
            "invoice_id": invoice_id,
            "number": number,
            "client_ref": row.client_ref,
            "project_id": new.project_id,
            "kind": new.kind,
            "total": str(sums.total),
            "currency": new.currency,
            "issued_on": today.isoformat(),
            "due_on": due.isoformat(),
        },
        now,
    )
    return row


def _find_in(conn: Connection, ref: str) -> InvoiceRow:
    """An invoice by its number ("2027-0001"), its credit note's, or a prefix of its id (4+ characters)."""
    ref = ref.strip()
    if not ref:
        raise BillingError("say which invoice: its number (e.g. 2027-0001) or the start of its id")
    row = conn.execute(sa.select(_I).where(sa.or_(_I.c.number == ref, _I.c.credit_note == ref))).first()
    if row is not None:
        return _invoice(row)
    if len(ref) >= 4 and all(c in "0123456789abcdef-" for c in ref.lower()):
        rows = conn.execute(sa.select(_I).where(_I.c.id.like(ref.lower() + "%")).limit(2)).all()
        if len(rows) == 1:
            return _invoice(rows[0])
        if len(rows) > 1:
            raise BillingError(f"{ref!r} is the start of more than one invoice's id: give more of it or the number")
    raise BillingError(f"no invoice {ref!r} (python run.py invoices lists them)")


# -- the store --------------------------------------------------------------------------------------------------


class BillingRepo:
    """Accounts, invoices, payments, reminders, rounds, holds and the events to publish."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    # accounts -----------------------------------------------------------------------------------------------

    async def open_account(
        self,
        *,
        deal_id: int,
        client: Mapping[str, Any],
        package: Mapping[str, Any],
        start_on: date,
        signed_at: datetime,
        now: datetime,
    ) -> bool:
        """The account of a signed deal, the first time (True); its "signed" milestones reached."""

        def work(conn: Connection) -> bool:
            if conn.execute(sa.select(_A.c.deal_id).where(_A.c.deal_id == deal_id)).first() is not None:
                return False
            conn.execute(
                _A.insert().values(
                    deal_id=deal_id,
                    client_ref=str(client["client_ref"]),
                    company=str(client["company"]),
                    client=dict(client),
                    package=dict(package),
                    currency=str(package["currency"]),
                    start_on=start_on,
                    signed_at=signed_at,
                    next_due_at=now,
                    created_at=now,
                )
            )
            for milestone in package.get("milestones") or ():
                if milestone.get("at") == "signed":
                    conn.execute(
                        _M.insert().values(deal_id=deal_id, name=milestone["name"], reached_at=now, by="signed")
                    )
            return True

        def due(conn: Connection) -> bool:  # told again on every tick until the project opens
            return conn.execute(sa.select(_A.c.deal_id).where(_A.c.deal_id == deal_id)).first() is None

        return await run_write_if(self.engine, due, work, False)

    async def link_project(self, project_id: str, deal_id: int) -> bool:
        """The project orchestration opened for the deal (True when newly linked)."""
        statement = _A.update().where(_A.c.deal_id == deal_id, _A.c.project_id.is_(None)).values(project_id=project_id)
        unlinked = sa.select(_A.c.deal_id).where(_A.c.deal_id == deal_id, _A.c.project_id.is_(None))
        return await run_write_if(
            self.engine,
            lambda conn: conn.execute(unlinked).first() is not None,
            lambda conn: bool(conn.execute(statement).rowcount),
            False,
        )

    async def step_done(self, project_id: str, step: str, now: datetime) -> list[str]:
        """A saga step is done: the milestones reached by it (newly), the account due for a look."""

        def work(conn: Connection) -> list[str]:
            row = conn.execute(sa.select(_A).where(_A.c.project_id == project_id)).first()
            if row is None:
                return []
            account = _account(row)
            reached = _reached_in(conn, account.deal_id)
            names = [
                m["name"]
                for m in account.package.get("milestones") or ()
                if m.get("at") == step and m["name"] not in reached
            ]
            for name in names:
                conn.execute(_M.insert().values(deal_id=account.deal_id, name=name, reached_at=now, by=f"step:{step}"))
            if names:
                conn.execute(_A.update().where(_A.c.deal_id == account.deal_id).values(next_due_at=now))
            return names

        return await run_write(self.engine, work)

    async def reach_milestone(
        self, project_ref: str, name: str, *, by: str, now: datetime, also: Also[tuple[int, bool]] | None = None
    ) -> tuple[int, bool]:
        """A person says a milestone is reached (`invoice milestone PROJECT NAME`): (deal, newly).
        Invoiced by the running service within a tick. `also`: run in the same transaction
        (`storage.work.Also`), after it, with its result (told whether it was newly reached)."""

        def work(conn: Connection) -> tuple[int, bool]:
            ref = project_ref.strip().lower()
            if len(ref) < 4:
                raise BillingError("give the project's id (at least its first 4 characters)")
            rows = conn.execute(sa.select(_A).where(_A.c.project_id.like(ref + "%")).limit(2)).all()
            if not rows:
                raise BillingError(f"no billed project {project_ref!r} (python run.py projects lists them)")
            if len(rows) > 1:
                raise BillingError(f"{project_ref!r} is the start of more than one project's id: give more of it")
            account = _account(rows[0])
            if account.package.get("billing") != "milestones":
                raise BillingError(f"project {account.project_id} is billed {account.package.get('billing')}")
            names = [m["name"] for m in account.package.get("milestones") or ()]
            if name not in names:
                listed = ", ".join(repr(n) for n in names)
                raise BillingError(f"no milestone {name!r} in the package (its milestones: {listed})")
            if name in _reached_in(conn, account.deal_id):
                return account.deal_id, False
            conn.execute(_M.insert().values(deal_id=account.deal_id, name=name, reached_at=now, by=by))
            conn.execute(_A.update().where(_A.c.deal_id == account.deal_id).values(next_due_at=now))
            return account.deal_id, True

        return await run_write(self.engine, with_also(work, also))

    async def stop(self, project_id: str, on: date) -> bool:
        """The project was compensated: no retainer for a period starting from `on`."""
        statement = _A.update().where(_A.c.project_id == project_id, _A.c.stopped_on.is_(None)).values(stopped_on=on)
        return await run_write(self.engine, lambda conn: bool(conn.execute(statement).rowcount))

    async def renew(self, deal_id: int, number: int, months: int) -> bool:
        """The deal's renewal `number`: its months added to the account's term (more retainers),
        once (the renewals before it applied first). True when applied now."""

        def work(conn: Connection) -> bool:
            row = conn.execute(sa.select(_A.c.package, _A.c.renewals).where(_A.c.deal_id == deal_id)).first()
            if row is None or int(row.renewals) != number - 1:
                return False
            package = dict(row.package)
            package["term_months"] = int(package.get("term_months", 12)) + months
            updated = conn.execute(
                _A.update()
                .where(_A.c.deal_id == deal_id, _A.c.renewals == number - 1)
                .values(package=package, renewals=number)
            )
            return bool(updated.rowcount)

        return await run_write(self.engine, work)

    async def accounts_due(self, now: datetime, limit: int = 200) -> list[int]:
        query = (
            sa.select(_A.c.deal_id)
            .where(_A.c.next_due_at.is_not(None), _A.c.next_due_at <= now)
            .order_by(_A.c.next_due_at, _A.c.deal_id)
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [int(x) for x in conn.execute(query).scalars()])

    async def account_state(self, deal_id: int) -> tuple[AccountRow, set[str], set[str]]:
        """The account, its milestones reached, and the keys of its invoices."""

        def work(conn: Connection) -> tuple[AccountRow, set[str], set[str]]:
            account = _account(conn.execute(sa.select(_A).where(_A.c.deal_id == deal_id)).one())
            keys = set(conn.execute(sa.select(_I.c.key).where(_I.c.deal_id == deal_id)).scalars())
            return account, _reached_in(conn, deal_id), keys

        return await run_read(self.engine, work)

    async def account_of_project(self, project_id: str) -> AccountRow | None:
        def work(conn: Connection) -> AccountRow | None:
            row = conn.execute(sa.select(_A).where(_A.c.project_id == project_id)).first()
            return _account(row) if row is not None else None

        return await run_read(self.engine, work)

    async def reschedule(self, deal_id: int, next_due_at: datetime | None) -> None:
        statement = _A.update().where(_A.c.deal_id == deal_id).values(next_due_at=next_due_at)
        await run_write(self.engine, lambda conn: conn.execute(statement))

    # invoices -----------------------------------------------------------------------------------------------

    async def issue(self, head: Letterhead, new: NewInvoice, *, today: date, now: datetime) -> InvoiceRow | None:
        """Issue `new` (numbered, written, emailed, announced) unless its key exists: the row, or None."""
        return await run_write(self.engine, lambda conn: _issue_in(conn, head, new, today=today, now=now))

    async def find(self, ref: str) -> InvoiceRow:
        return await run_read(self.engine, lambda conn: _find_in(conn, ref))

    async def show(self, ref: str) -> InvoiceDetail:
        def work(conn: Connection) -> InvoiceDetail:
            invoice = _find_in(conn, ref)
            payments = conn.execute(sa.select(_P).where(_P.c.invoice_id == invoice.id).order_by(_P.c.id)).all()
            reminders = conn.execute(sa.select(_R).where(_R.c.invoice_id == invoice.id).order_by(_R.c.seq)).all()
            status = conn.execute(
                sa.select(_E.c.status).where(_E.c.idempotency_key == email_key("invoice", invoice.id))
            ).scalar()
            return InvoiceDetail(
                invoice,
                tuple(
                    PaymentRow(**{**dict(p._mapping), "amount": Decimal(p.amount), "id": int(p.id)}) for p in payments
                ),
                tuple(ReminderRow(**{**dict(r._mapping), "fee": Decimal(r.fee), "id": int(r.id)}) for r in reminders),
                status,
            )

        return await run_read(self.engine, work)

    async def page(
        self,
        *,
        overdue_on: date | None = None,
        client: str | None = None,
        state: str | None = None,
        limit: int = MAX_PAGE,
    ) -> list[InvoiceRow]:
        """Invoices, newest first; `overdue_on`: only those open and past due on that day; `client`:
        a client's company (case-insensitive, a part of it) or client_ref."""
        query = sa.select(_I).order_by(_I.c.year.desc(), _I.c.seq.desc()).limit(min(limit, MAX_PAGE))
        if overdue_on is not None:
            query = query.where(_I.c.state == OPEN, _I.c.due_on < overdue_on)
        if state is not None:
            query = query.where(_I.c.state == state)
        if client:
            needle = client.strip().lower()
            query = query.where(sa.or_(_I.c.client_ref == needle, _I.c.client_ref.in_(_clients_named(needle))))
        return await run_read(self.engine, lambda conn: [_invoice(r) for r in conn.execute(query)])

    async def numbers(self) -> list[tuple[str, int, int]]:
        """Every (series, year, seq) ever issued, in order: for the invariants."""

        def work(conn: Connection) -> list[tuple[str, int, int]]:
            out = [(INVOICE, int(r.year), int(r.seq)) for r in conn.execute(sa.select(_I.c.year, _I.c.seq))]
            for (cn,) in conn.execute(sa.select(_I.c.credit_note).where(_I.c.credit_note.is_not(None))):
                _, year, seq = cn.split("-")
                out.append((CREDIT_NOTE, int(year), int(seq)))
            return sorted(out)

        return await run_read(self.engine, work)

    # payments -----------------------------------------------------------------------------------------------

    async def pay(
        self,
        ref: str,
        amount: str | Decimal,
        *,
        received_on: date,
        by: str,
        now: datetime,
        note: str = "",
        also: Also[tuple[InvoiceRow, Decimal]] | None = None,
    ) -> tuple[InvoiceRow, Decimal]:
        """Record a payment (full, partial or over) against an invoice: (the invoice after, the amount).
        `PaymentReceived` is recorded with it, and `also` (its audit row) with its result."""

        def work(conn: Connection) -> tuple[InvoiceRow, Decimal]:
            invoice = _find_in(conn, ref)
            if invoice.state == CREDITED:
                raise BillingError(f"invoice {invoice.number} was credited ({invoice.credit_note}): nothing is owed")
            try:
                paid = parse_amount(str(amount), invoice.currency)
            except AmountError as exc:
                raise BillingError(f"{exc} (invoice {invoice.number} is in {invoice.currency})") from None
            if received_on > now.date() + timedelta(days=1):
                raise BillingError(f"{received_on.isoformat()} is in the future: a payment is recorded once received")
            total_paid = invoice.paid + paid
            state = rules.state_after_payment(invoice.total, total_paid)
            conn.execute(
                _P.insert().values(
                    invoice_id=invoice.id,
                    amount=str(paid),
                    received_on=received_on,
                    by=by,
                    note=note,
                    created_at=now,
                )
            )
            conn.execute(
                _I.update()
                .where(_I.c.id == invoice.id)
                .values(
                    paid=str(total_paid),
                    state=state,
                    next_reminder_on=invoice.next_reminder_on if state == OPEN else None,
                )
            )
            balance = rules.balance(invoice.total, total_paid)
            _event_in(
                conn,
                "PaymentReceived",
                {
                    "invoice_id": invoice.id,
                    "number": invoice.number,
                    "client_ref": invoice.client_ref,
                    "project_id": invoice.project_id,
                    "amount": str(paid),
                    "currency": invoice.currency,
                    "balance": str(balance),
                    "paid_in_full": balance <= 0,
                    "received_on": received_on.isoformat(),
                    "days_late": rules.days_late(invoice.due_on, received_on),
                },
                now,
            )
            return _invoice(conn.execute(sa.select(_I).where(_I.c.id == invoice.id)).one()), paid

        return await run_write(self.engine, with_also(work, also))

    # credit notes -------------------------------------------------------------------------------------------

    async def credit(
        self, ref: str, *, reason: str, today: date, now: datetime, also: Also[InvoiceRow] | None = None
    ) -> InvoiceRow:
        """Cancel an invoice by a credit note (its own sequence, "CN-2027-0001"), recorded with
        `InvoiceCredited`, and `also` (its audit row) with the invoice after; the credit note's
        email is queued by the ledger when it publishes that."""

        def work(conn: Connection) -> InvoiceRow:
            invoice = _find_in(conn, ref)
            if invoice.state == CREDITED:
                raise BillingError(f"invoice {invoice.number} is credited already ({invoice.credit_note})")
            if invoice.paid > 0:
                raise BillingError(
                    f"invoice {invoice.number} has payments ({shown(invoice.paid, invoice.currency)}): "
                    "refund them first; a credit note cancels an unpaid invoice"
                )
            seq = _take_number_in(conn, CREDIT_NOTE, today.year)
            credit_note = rules.number(CREDIT_NOTE, today.year, seq)
            conn.execute(
                _I.update()
                .where(_I.c.id == invoice.id)
                .values(
                    state=CREDITED,
                    credit_note=credit_note,
                    credited_on=today,
                    credit_reason=texts.one_line(reason),
                    next_reminder_on=None,
                )
            )
            _event_in(
                conn,
                "InvoiceCredited",
                {
                    "invoice_id": invoice.id,
                    "number": invoice.number,
                    "credit_note": credit_note,
                    "client_ref": invoice.client_ref,
                    "reason": texts.one_line(reason),
                },
                now,
            )
            return _invoice(conn.execute(sa.select(_I).where(_I.c.id == invoice.id)).one())

        return await run_write(self.engine, with_also(work, also))

    async def queue_credit_email(self, head: Letterhead, invoice_id: str, now: datetime) -> bool:
        """The credit note's email (PDF attached), once per invoice."""

        def work(conn: Connection) -> bool:
            invoice = _invoice(conn.execute(sa.select(_I).where(_I.c.id == invoice_id)).one())
            if invoice.credit_note is None or invoice.credited_on is None:
                return False
            key = email_key("credit", invoice.id)
            message = credit_email(
                head,
                invoice.facts(),
                invoice.credit_note,
                invoice.credited_on,
                invoice.credit_reason or "",
                key=key,
                now=now,
            )
            return queue_in(
                conn, _E, key=key, project_id=invoice.project_id or "", kind="credit", message=message, now=now
            )

        return await run_write(self.engine, work)

    # dunning ------------------------------------------------------------------------------------------------

    async def reminders_due(self, today: date, limit: int = 200) -> list[InvoiceRow]:
        query = (
            sa.select(_I)
            .where(_I.c.state == OPEN, _I.c.next_reminder_on.is_not(None), _I.c.next_reminder_on <= today)
            .order_by(_I.c.next_reminder_on, _I.c.year, _I.c.seq)
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [_invoice(r) for r in conn.execute(query)])

    async def remind(
        self, head: Letterhead, invoice_id: str, *, today: date, now: datetime
    ) -> tuple[ReminderRow, InvoiceRow | None] | None:
        """Send the reminder due on an invoice today (one per invoice and sequence number): its row,
        recorded with its email, `ReminderSent`, and its late fee's invoice (issued in the same
        transaction) when the level has a fee. None: not due (paid, credited, sent already)."""

        def work(conn: Connection) -> tuple[ReminderRow, InvoiceRow | None] | None:
            invoice = _invoice(conn.execute(sa.select(_I).where(_I.c.id == invoice_id)).one())
            if invoice.state != OPEN:
                return None
            due = rules.reminder_due(invoice.due_on, invoice.reminders, today, head.reminders, head.repeat_every_days)
            if due is None:
                return None
            owed = invoice.balance
            # A late fee's own invoice is reminded of, never charged a fee again.
            percent = ZERO if invoice.kind == "late_fee" else due.fee_percent
            fee = rules.late_fee(owed, percent, invoice.currency)
            fee_invoice = None
            if fee > 0:
                fee_invoice = _issue_in(conn, head, _fee_invoice(invoice, due, fee, head), today=today, now=now)
            conn.execute(
                _R.insert().values(
                    invoice_id=invoice.id,
                    seq=due.seq,
                    level=due.level,
                    fee=str(fee),
                    fee_invoice=fee_invoice.number if fee_invoice else None,
                    days_overdue=due.days_overdue,
                    sent_on=today,
                    created_at=now,
                )
            )
            conn.execute(
                _I.update()
                .where(_I.c.id == invoice.id)
                .values(
                    reminders=due.seq,
                    next_reminder_on=rules.next_reminder_on(
                        invoice.due_on, due.seq, head.reminders, head.repeat_every_days
                    ),
                )
            )
            key = email_key("reminder", invoice.id, due.seq)
            message = reminder_email(
                head,
                invoice.facts(),
                key=key,
                owed=owed,
                level=due.level,
                days_overdue=due.days_overdue,
                fee=fee,
                fee_number=fee_invoice.number if fee_invoice else None,
                now=now,
            )
            queue_in(conn, _E, key=key, project_id=invoice.project_id or "", kind="reminder", message=message, now=now)
            _event_in(
                conn,
                "ReminderSent",
                {
                    "invoice_id": invoice.id,
                    "number": invoice.number,
                    "client_ref": invoice.client_ref,
                    "level": due.level,
                    "fee": str(fee),
                    "days_overdue": due.days_overdue,
                },
                now,
            )
            row = conn.execute(sa.select(_R).where(_R.c.invoice_id == invoice.id, _R.c.seq == due.seq)).one()
            return ReminderRow(**{**dict(row._mapping), "fee": Decimal(row.fee), "id": int(row.id)}), fee_invoice

        return await run_write(self.engine, work)

    # review rounds ------------------------------------------------------------------------------------------

    async def record_round(self, project_id: str, item_id: str, version: int, now: datetime) -> int:
        """A change request on a piece's version: its round number on that piece (1, 2, ...; the
        same number when told again)."""

        def work(conn: Connection) -> int:
            key = (_RD.c.project_id == project_id, _RD.c.item_id == item_id)
            found = conn.execute(sa.select(_RD.c.round).where(*key, _RD.c.version == version)).scalar()
            if found is not None:
                return int(found)
            count = conn.execute(sa.select(sa.func.count()).select_from(_RD).where(*key)).scalar() or 0
            round_number = int(count) + 1
            conn.execute(
                _RD.insert().values(project_id=project_id, item_id=item_id, version=version, round=round_number, at=now)
            )
            return round_number

        def known(conn: Connection) -> int | None:
            found = conn.execute(
                sa.select(_RD.c.round).where(
                    _RD.c.project_id == project_id, _RD.c.item_id == item_id, _RD.c.version == version
                )
            ).scalar()
            return None if found is None else int(found)

        found = await run_read(self.engine, known)  # said again on every ask: mostly known
        return found if found is not None else await run_write(self.engine, work)

    # holds --------------------------------------------------------------------------------------------------

    async def owed_since(self, due_before: date) -> list[rules.Owed]:
        """Open invoices due on or before `due_before` (the hold's candidates)."""
        query = sa.select(_I.c.client_ref, _I.c.number, _I.c.due_on).where(
            _I.c.state == OPEN, _I.c.due_on <= due_before
        )
        return await run_read(
            self.engine, lambda conn: [rules.Owed(r.client_ref, r.number, r.due_on) for r in conn.execute(query)]
        )

    async def apply_holds(
        self, wanted: Mapping[str, tuple[str, ...]], *, days: int, now: datetime
    ) -> tuple[list[HoldRow], list[HoldRow]]:
        """Make the holds what `wanted` says (client_ref -> invoices): (newly held, released), each
        recorded with `ClientOnHold` / `ClientReleased`. A hold's invoices changing is not news."""

        def due(conn: Connection) -> bool:
            active = {r.client_ref: tuple(r.invoices) for r in conn.execute(sa.select(_H).where(_H.c.active))}
            return set(active) != set(wanted) or any(active[c] != wanted[c] for c in active)

        def work(conn: Connection) -> tuple[list[HoldRow], list[HoldRow]]:
            held: list[HoldRow] = []
            released: list[HoldRow] = []
            rows = {r.client_ref: _hold(r) for r in conn.execute(sa.select(_H))}
            for client_ref, numbers in wanted.items():
                row = rows.get(client_ref)
                if row is not None and row.active:
                    if row.invoices != numbers:
                        conn.execute(_H.update().where(_H.c.client_ref == client_ref).values(invoices=list(numbers)))
                    continue
                company = _company_in(conn, client_ref)
                values = {
                    "company": company,
                    "round": (row.round + 1) if row is not None else 1,
                    "active": True,
                    "invoices": list(numbers),
                    "since": now,
                    "released_at": None,
                    "alerted_at": None,
                }
                if row is None:
                    conn.execute(_H.insert().values(client_ref=client_ref, **values))
                else:
                    conn.execute(_H.update().where(_H.c.client_ref == client_ref).values(**values))
                reason = texts.hold_reason(numbers, days)
                _event_in(
                    conn, "ClientOnHold", {"client_ref": client_ref, "reason": reason, "invoices": list(numbers)}, now
                )
                held.append(_hold(conn.execute(sa.select(_H).where(_H.c.client_ref == client_ref)).one()))
            for client_ref, row in rows.items():
                if row.active and client_ref not in wanted:
                    conn.execute(_H.update().where(_H.c.client_ref == client_ref).values(active=False, released_at=now))
                    _event_in(
                        conn,
                        "ClientReleased",
                        {"client_ref": client_ref, "reason": texts.RELEASED},
                        now,
                    )
                    released.append(_hold(conn.execute(sa.select(_H).where(_H.c.client_ref == client_ref)).one()))
            return held, released

        return await run_write_if(self.engine, due, work, ([], []))

    async def idle(self, now: datetime, today: date, hold_after_days: int) -> bool:
        """Nothing a tick could act on (one read: an idle tick then reads nothing else): no
        account due, no reminder due, no event to publish, no email due or to follow, no hold to
        start, release or alert."""
        owed_by = date.fromordinal(today.toordinal() - hold_after_days)

        def work(conn: Connection) -> bool:
            checks = (
                sa.select(_A.c.deal_id).where(_A.c.next_due_at.is_not(None), _A.c.next_due_at <= now),
                sa.select(_I.c.id).where(_I.c.state == OPEN, _I.c.next_reminder_on <= today),
                sa.select(_EV.c.id).where(_EV.c.published_at.is_(None)),
                sa.select(_E.c.id).where(_E.c.status == "QUEUED", _E.c.next_attempt_at <= now),
                sa.select(_I.c.id)
                .join(_E, _E.c.idempotency_key == sa.literal("invoice:", sa.String) + _I.c.id)
                .where(_I.c.sent_at.is_(None), _E.c.status == SENT),
                sa.select(_H.c.client_ref).where(_H.c.active, _H.c.alerted_at.is_(None)),
            )
            if any(conn.execute(query.limit(1)).first() for query in checks):
                return False
            owed = {
                (r.client_ref, r.number)
                for r in conn.execute(
                    sa.select(_I.c.client_ref, _I.c.number).where(_I.c.state == OPEN, _I.c.due_on <= owed_by)
                )
            }
            active = {r.client_ref: set(r.invoices) for r in conn.execute(sa.select(_H).where(_H.c.active))}
            wanted: dict[str, set[str]] = {}
            for client_ref, number in owed:
                wanted.setdefault(client_ref, set()).add(number)
            return wanted == active

        return await run_read(self.engine, work)

    async def holds(self, *, active_only: bool = True) -> list[HoldRow]:
        query = sa.select(_H).order_by(_H.c.since)
        if active_only:
            query = query.where(_H.c.active)
        return await run_read(self.engine, lambda conn: [_hold(r) for r in conn.execute(query)])

    async def mark_hold_alerted(self, client_ref: str, hold_round: int, now: datetime) -> None:
        statement = _H.update().where(_H.c.client_ref == client_ref, _H.c.round == hold_round).values(alerted_at=now)
        await run_write(self.engine, lambda conn: conn.execute(statement))

    # events and sent emails ---------------------------------------------------------------------------------

    async def pending_events(self, limit: int = 500) -> list[PendingEvent]:
        def read(conn: Connection) -> tuple[PendingEvent, ...]:
            query = sa.select(_EV).where(_EV.c.published_at.is_(None)).order_by(_EV.c.id).limit(limit)
            return tuple(PendingEvent(int(r.id), r.kind, dict(r.body)) for r in conn.execute(query))

        # The query is built only when the kept answer is old (the events changed).
        return list(await self.kept.read(("pending_events", limit), read))

    async def mark_published(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        statement = _EV.update().where(_EV.c.id.in_(list(ids))).values(published_at=now)
        await run_write(self.engine, lambda conn: conn.execute(statement))

    async def follow_sent(self, now: datetime) -> int:
        """Invoices whose email went out: marked sent, with `InvoiceSent` (once each)."""
        mail_key = sa.literal("invoice:", sa.String) + _I.c.id
        sent = (
            sa.select(_I.c.id, _I.c.number, _I.c.client_ref, _E.c.sent_at)
            .join(_E, _E.c.idempotency_key == mail_key)
            .where(_I.c.sent_at.is_(None), _E.c.status == SENT)
        )

        def due(conn: Connection) -> bool:
            return conn.execute(sent.limit(1)).first() is not None

        def work(conn: Connection) -> int:
            rows = conn.execute(sent).all()
            for r in rows:
                conn.execute(_I.update().where(_I.c.id == r.id).values(sent_at=r.sent_at or now))
                _event_in(
                    conn, "InvoiceSent", {"invoice_id": r.id, "number": r.number, "client_ref": r.client_ref}, now
                )
            return len(rows)

        return await run_write_if(self.engine, due, work, 0)


def _company_in(conn: Connection, client_ref: str) -> str:
    found = conn.execute(sa.select(_A.c.company).where(_A.c.client_ref == client_ref).limit(1)).scalar()
    if found is not None:
        return str(found)
    client = conn.execute(sa.select(_I.c.client).where(_I.c.client_ref == client_ref).limit(1)).scalar()
    return str((client or {}).get("company", client_ref))


def _reached_in(conn: Connection, deal_id: int) -> set[str]:
    return set(conn.execute(sa.select(_M.c.name).where(_M.c.deal_id == deal_id)).scalars())


def _clients_named(needle: str) -> Any:
    return sa.select(_A.c.client_ref).where(sa.func.lower(_A.c.company).like(f"%{needle}%"))


def _fee_invoice(invoice: InvoiceRow, due: ReminderDue, fee: Decimal, head: Letterhead) -> NewInvoice:
    from aicmo_actors.billing.tax import late_fee_tax

    return NewInvoice(
        key=f"late_fee:{invoice.id}:{due.seq}",
        kind="late_fee",
        client=invoice.client,
        currency=invoice.currency,
        lines=(
            rules.line(
                texts.late_fee_line(invoice.number, due.level, f"{due.fee_percent.normalize():f}"),
                fee,
                invoice.currency,
            ),
        ),
        tax=late_fee_tax(),
        payment_days=max(0, (invoice.due_on - invoice.issued_on).days),
        deal_id=invoice.deal_id,
        project_id=invoice.project_id,
        for_invoice=invoice.id,
    )


class BillingStore:
    """The module's store: `store.billing` (the repository) and `store.mail` (its client emails)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.billing = BillingRepo(engine)
        self.mail = MailBook(engine, billing_emails)


__all__ = [
    "AccountRow",
    "BillingError",
    "BillingRepo",
    "BillingStore",
    "HoldRow",
    "InvoiceDetail",
    "InvoiceRow",
    "NewInvoice",
    "PaymentRow",
    "PendingEvent",
    "ReminderRow",
]
