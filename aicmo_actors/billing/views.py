"""Invoices as JSON (the command line's --json and the API): amounts as exact decimal text. Pure."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def invoice_json(row: Any) -> dict[str, Any]:
    """An invoice (`repos.InvoiceRow`) as JSON."""
    values = {k: _iso(v) for k, v in row.__dict__.items()}
    values["lines"] = [x.as_json() for x in row.lines]
    values["notes"] = list(row.notes)
    for name in ("net", "tax_rate", "tax", "total", "paid"):
        values[name] = str(getattr(row, name))
    values["balance"] = str(row.balance)
    values["company"] = row.company
    values.pop("client", None)
    values.pop("seller", None)
    values["client"] = {
        k: row.client.get(k) for k in ("company", "country", "tax_id", "billing_email", "contact_email")
    }
    return values


def detail_json(detail: Any) -> dict[str, Any]:
    out = invoice_json(detail.invoice)
    out["payments"] = [
        {"amount": str(p.amount), "received_on": p.received_on.isoformat(), "by": p.by, "note": p.note}
        for p in detail.payments
    ]
    out["reminders"] = [
        {
            "seq": r.seq,
            "level": r.level,
            "fee": str(r.fee),
            "fee_invoice": r.fee_invoice,
            "days_overdue": r.days_overdue,
            "sent_on": r.sent_on.isoformat(),
        }
        for r in detail.reminders
    ]
    out["email"] = detail.email_status
    return out
