"""`python run.py invoices|invoice|pay`: billing's invoices, payments, credit notes, milestones.

- `invoices [--overdue] [--client X] [--state S] [--json]`: invoices, newest first;
- `invoice ID [--pdf PATH] [--json]`: one invoice whole (lines, tax, payments, reminders,
  balance); ID is its number ("2027-0001"), its credit note's, or the start of its id;
- `pay NUMBER AMOUNT [--on DATE]` (also `invoice pay ...`): record a payment (full, partial or
  over; the amount exactly, in the invoice's currency);
- `invoice cancel ID [--reason TEXT] [--yes]`: cancel an unpaid invoice with a credit note;
- `invoice milestone PROJECT NAME`: a milestone a person says is reached, invoiced by the
  running service within a tick.

Changes are audited; the events they cause (`PaymentReceived`, `InvoiceCredited`, the hold's
release) are published by the running service on its next tick.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.identity_cmd import cli_actor
from aicmo_actors.cli.records import _cli_user, _confirm, _now, _page_size, _run_with_store, _table

STATES = ("open", "paid", "credited")
ACTIONS = ("pay", "cancel", "milestone")


def _guarded(work: Any) -> Any:
    from aicmo_actors.billing.repos import BillingError

    async def guarded(store: Any) -> Any:
        try:
            return await work(store)
        except BillingError as exc:
            raise UserError(str(exc)) from None

    return guarded


def _repo(store: Any) -> Any:
    from aicmo_actors.billing.repos import BillingRepo

    return BillingRepo(store.engine)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (write YYYY-MM-DD)") from None


def invoice_json(row: Any) -> dict[str, Any]:
    from aicmo_actors.billing.views import invoice_json as as_json

    return as_json(row)


def detail_json(detail: Any) -> dict[str, Any]:
    from aicmo_actors.billing.views import detail_json as as_json

    return as_json(detail)


def _money(amount: Any, currency: str) -> str:
    from aicmo_actors.billing.money import shown

    return shown(amount, currency)


def cmd_invoices(args: argparse.Namespace) -> int:
    today = _now().date()
    rows = _run_with_store(
        _guarded(
            lambda store: _repo(store).page(
                overdue_on=today if args.overdue else None, client=args.client, state=args.state, limit=args.limit
            )
        )
    )
    if args.json:
        for row in rows:
            print(json.dumps(invoice_json(row), ensure_ascii=False))
        return 0
    if not rows:
        print("No invoices" + (" overdue" if args.overdue else "") + ": a signed client's package makes them")
        return 0
    shown = [
        {
            "number": r.number,
            "company": r.company,
            "kind": r.kind,
            "issued": r.issued_on.isoformat(),
            "due": r.due_on.isoformat(),
            "total": _money(r.total, r.currency),
            "balance": _money(r.balance, r.currency),
            "state": r.state
            + (f" {r.credit_note}" if r.credit_note else "")
            + (f", {(today - r.due_on).days}d late" if r.state == "open" and r.due_on < today else ""),
        }
        for r in rows
    ]
    _table(
        shown,
        [
            ("NUMBER", "number"),
            ("CLIENT", "company"),
            ("KIND", "kind"),
            ("ISSUED", "issued"),
            ("DUE", "due"),
            ("TOTAL", "total"),
            ("BALANCE", "balance"),
            ("STATE", "state"),
        ],
        right=frozenset({"total", "balance"}),
    )
    return 0


def _show(args: argparse.Namespace, ref: str) -> int:
    detail = _run_with_store(_guarded(lambda store: _repo(store).show(ref)))
    row = detail.invoice
    if args.pdf:
        from aicmo_actors.billing.emails import invoice_pdf

        path = Path(args.pdf)
        try:
            path.write_bytes(invoice_pdf(row.facts()))
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(f"wrote {path} (invoice {row.number})")
        return 0
    if args.json:
        print(json.dumps(detail_json(detail), ensure_ascii=False))
        return 0
    cur = row.currency
    print(
        f"Invoice {row.number} ({row.kind}), {row.state}"
        + (f" by credit note {row.credit_note}" if row.credit_note else "")
    )
    print(f"  id:        {row.id}")
    to = row.client.get("billing_email") or row.client.get("contact_email")
    print(f"  client:    {row.company} ({row.client.get('country', '')}), to {to}")
    if row.client.get("tax_id"):
        print(f"  VAT no.:   {row.client['tax_id']}")
    print(f"  issued:    {row.issued_on.isoformat()}, due {row.due_on.isoformat()}")
    if row.service_from and row.service_to:
        print(f"  period:    {row.service_from.isoformat()} to {row.service_to.isoformat()}")
    print(
        f"  emailed:   {detail.email_status or '-'}" + (f" ({row.sent_at.isoformat()[:16]} UTC)" if row.sent_at else "")
    )
    print("  lines:")
    for x in row.lines:
        print(
            f"    {x.description}  {x.quantity.normalize():f} x {_money(x.unit_price, cur)} = {_money(x.amount, cur)}"
        )
    print(f"  net:       {_money(row.net, cur)}")
    print(f"  VAT:       {row.tax_rate.normalize():f} % = {_money(row.tax, cur)} ({row.tax_kind})")
    print(f"  total:     {_money(row.total, cur)}")
    for note in row.notes:
        print(f"  note:      {note}")
    for p in detail.payments:
        print(f"  paid:      {_money(p.amount, cur)} on {p.received_on.isoformat()} (by {p.by})")
    for r in detail.reminders:
        fee = f", fee {_money(r.fee, cur)} ({r.fee_invoice})" if r.fee > 0 else ""
        print(f"  reminder:  #{r.seq} level {r.level} on {r.sent_on.isoformat()}, {r.days_overdue} days late{fee}")
    if row.state == "open" and row.next_reminder_on:
        print(f"  next reminder: {row.next_reminder_on.isoformat()}")
    balance = row.balance
    said = " (a credit in the client's favour)" if balance < 0 else ""
    print(f"  balance:   {_money(balance, cur)}{said}")
    return 0


def _pay(ref: str, amount: str, on: date | None, note: str) -> int:
    now = _now()
    actor = cli_actor()

    def audited(conn: Any, result: Any) -> None:
        row, paid = result
        detail = {"amount": str(paid), "balance": str(row.balance)}
        actor.write(conn, "invoice.pay", row.number, detail, now)

    async def work(store: Any) -> Any:
        return await _repo(store).pay(
            ref, amount, received_on=on or now.date(), by=_cli_user(), now=now, note=note, also=audited
        )

    row, paid = _run_with_store(_guarded(work))
    balance = row.balance
    if balance == 0:
        state = "paid in full"
    elif balance < 0:
        state = f"paid over: a credit of {_money(-balance, row.currency)}"
    else:
        state = f"still owed: {_money(balance, row.currency)}"
    print(f"invoice {row.number}: {_money(paid, row.currency)} recorded; {state}")
    return 0


def _cancel(args: argparse.Namespace, ref: str) -> int:
    found = _run_with_store(_guarded(lambda store: _repo(store).find(ref)))
    _confirm(
        f"cancel invoice {found.number} ({_money(found.total, found.currency)}, {found.company}) with a credit note?",
        args,
    )
    now = _now()
    actor = cli_actor()

    def audited(conn: Any, row: Any) -> None:
        detail = {"credit_note": row.credit_note, "reason": args.reason}
        actor.write(conn, "invoice.cancel", row.number, detail, now)

    async def work(store: Any) -> Any:
        return await _repo(store).credit(found.number, reason=args.reason, today=now.date(), now=now, also=audited)

    row = _run_with_store(_guarded(work))
    print(
        f"invoice {row.number}: cancelled by credit note {row.credit_note}; the running service emails it within a tick"
    )
    return 0


def _milestone(project: str, name: str) -> int:
    now = _now()
    actor = cli_actor()

    def audited(conn: Any, result: tuple[int, bool]) -> None:
        deal, new = result
        if new:  # reached already: nothing changed, nothing to audit
            actor.write(conn, "invoice.milestone", project, {"deal_id": deal, "milestone": name}, now)

    async def work(store: Any) -> Any:
        return await _repo(store).reach_milestone(project, name, by=_cli_user(), now=now, also=audited)

    _, new = _run_with_store(_guarded(work))
    if new:
        print(f"milestone {name!r} reached: the running service invoices it within a tick")
    else:
        print(f"milestone {name!r} was reached already (python run.py invoices shows its invoice)")
    return 0


def cmd_invoice(args: argparse.Namespace) -> int:
    words = args.words
    action = words[0] if words[0] in ACTIONS else None
    if action is None:
        if len(words) != 1:
            raise UserError("say one invoice (python run.py invoice 2027-0001), or: invoice pay|cancel|milestone ...")
        return _show(args, words[0])
    rest = words[1:]
    if action == "pay":
        if len(rest) != 2:
            raise UserError("usage: python run.py invoice pay NUMBER AMOUNT [--on YYYY-MM-DD]")
        return _pay(rest[0], rest[1], args.on, args.note)
    if action == "cancel":
        if len(rest) != 1:
            raise UserError("usage: python run.py invoice cancel NUMBER [--reason TEXT] [--yes]")
        return _cancel(args, rest[0])
    if len(rest) != 2:
        raise UserError('usage: python run.py invoice milestone PROJECT "MILESTONE NAME"')
    return _milestone(rest[0], rest[1])


def cmd_pay(args: argparse.Namespace) -> int:
    return _pay(args.number, args.amount, args.on, args.note)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    invoices = sub.add_parser(
        "invoices",
        help="invoices, newest first (--overdue: only those past due)",
        description="Every invoice billing issued: retainers, one-off prices, milestones, extra review rounds and "
        "late fees, numbered per year without gaps. Amounts in each invoice's currency; a negative balance is a "
        "credit in the client's favour.",
    )
    invoices.add_argument("--overdue", action="store_true", help="only open invoices past their due date")
    invoices.add_argument("--client", metavar="X", help="only this client's (a part of the company's name, or its ref)")
    invoices.add_argument("--state", choices=STATES, help="only invoices in this state")
    invoices.add_argument("--limit", type=_page_size, default=100, metavar="N", help="at most N (default 100, max 500)")
    invoices.add_argument("--json", action="store_true", help="one JSON object per line (amounts as exact text)")
    invoices.set_defaults(func=cmd_invoices)

    invoice = sub.add_parser(
        "invoice",
        help="one invoice (lines, tax, payments, reminders, balance); pay, cancel, milestone",
        description="python run.py invoice ID shows one invoice (ID: its number, e.g. 2027-0001, or the start of "
        "its id); --pdf PATH writes its PDF. Also: invoice pay NUMBER AMOUNT [--on DATE] records a payment; "
        "invoice cancel NUMBER [--reason TEXT] [--yes] cancels an unpaid invoice with a credit note (it is never "
        'deleted); invoice milestone PROJECT "NAME" says a milestone was reached (invoiced within a tick).',
    )
    invoice.add_argument(
        "words",
        nargs="+",
        metavar="ID",
        help="an invoice (2027-0001), or: pay NUMBER AMOUNT | cancel NUMBER | milestone PROJECT NAME",
    )
    invoice.add_argument("--pdf", metavar="PATH", help="write the invoice's PDF there")
    invoice.add_argument("--json", action="store_true", help="print one JSON object")
    invoice.add_argument("--on", type=_day, metavar="YYYY-MM-DD", help="pay: the day it was received (default today)")
    invoice.add_argument("--note", default="", help="pay: a note kept with the payment (e.g. the bank reference)")
    invoice.add_argument("--reason", default="cancelled", help="cancel: why (printed on the credit note)")
    invoice.add_argument("--yes", action="store_true", help="cancel: do not ask for confirmation")
    invoice.set_defaults(func=cmd_invoice)

    pay = sub.add_parser(
        "pay",
        help="record a payment against an invoice (full, partial or over)",
        description="Record AMOUNT received against invoice NUMBER, exactly, in the invoice's currency (at most "
        "its decimals: 1500.50 EUR, 250000 JPY). What is still owed is kept; a payment over the total leaves a "
        "credit. Audited; the running service announces it (and lifts a hold) on its next tick.",
    )
    pay.add_argument("number", metavar="NUMBER", help="the invoice's number (e.g. 2027-0001)")
    pay.add_argument("amount", metavar="AMOUNT", help="e.g. 1500 or 1500.50 (no thousands separators)")
    pay.add_argument("--on", type=_day, metavar="YYYY-MM-DD", help="the day it was received (default today)")
    pay.add_argument("--note", default="", help="a note kept with the payment (e.g. the bank reference)")
    pay.set_defaults(func=cmd_pay)
