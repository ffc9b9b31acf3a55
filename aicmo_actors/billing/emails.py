"""Who billing writes as (`Letterhead`), and the papers and emails it makes from an invoice:
the invoice and the credit note as PDF (`document`), the invoice's email with its PDF attached,
the reminder's email, the credit note's email. Pure: the same invoice makes the same bytes
(Message-ID and MIME boundary come from the email's idempotency key)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

from aicmo_actors.billing import texts
from aicmo_actors.billing.document import Paper, Party, pdf
from aicmo_actors.billing.money import shown
from aicmo_actors.billing.rules import DEFAULT_REMINDERS, REPEAT_EVERY_DAYS, Line, ReminderRule
from aicmo_actors.gateways.mail_message import build_message, make_message_id


@dataclass(frozen=True)
class Letterhead:
    """The agency as its invoices name it, and the rules it bills by (the supervisor's parameters)."""

    mail_from: str
    agency_name: str
    agency_country: str
    agency_tax_id: str | None = None
    agency_address: str = ""
    #: Country code -> VAT percent, replacing or adding to `tax.EU_STANDARD_RATES`.
    tax_rates: Mapping[str, Decimal] = field(default_factory=dict)
    reminders: Sequence[ReminderRule] = DEFAULT_REMINDERS
    repeat_every_days: int = REPEAT_EVERY_DAYS
    hold_after_days: int = 30
    #: The agency's own calendar: invoice dates, due dates and dunning days.
    agency_timezone: str = "UTC"

    @property
    def domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "localhost"

    @property
    def seller(self) -> Party:
        return Party(
            name=self.agency_name, address=self.agency_address, country=self.agency_country, tax_id=self.agency_tax_id
        )

    def seller_json(self) -> dict[str, Any]:
        """The seller as an invoice stores it: its PDF is made again exactly as issued."""
        return {
            "name": self.agency_name,
            "address": self.agency_address,
            "country": self.agency_country,
            "tax_id": self.agency_tax_id,
        }


def email_key(kind: str, invoice_id: str, seq: int | None = None) -> str:
    """The outbox key of an invoice's email ("invoice:<id>"), a reminder's ("reminder:<id>:<seq>"),
    a credit note's ("credit:<id>")."""
    return f"{kind}:{invoice_id}" if seq is None else f"{kind}:{invoice_id}:{seq}"


def buyer(client: Mapping[str, Any], *, with_tax_id: bool) -> Party:
    return Party(
        name=str(client.get("company", "")),
        address=str(client.get("billing_address") or ""),
        country=str(client.get("country") or ""),
        tax_id=client.get("tax_id") if with_tax_id else None,
    )


def billing_address_of(client: Mapping[str, Any]) -> str:
    return str(client.get("billing_email") or client["contact_email"])


@dataclass(frozen=True)
class InvoiceFacts:
    """What the papers need of an invoice row."""

    seller: Party
    number: str
    kind: str
    client: Mapping[str, Any]
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
    payment_days: int


def invoice_paper(facts: InvoiceFacts) -> Paper:
    return Paper(
        title="Invoice",
        number=facts.number,
        issued_on=facts.issued_on,
        seller=facts.seller,
        # The buyer's VAT number is printed whenever it is known (required for the reverse charge).
        buyer=buyer(facts.client, with_tax_id=True),
        currency=facts.currency,
        lines=facts.lines,
        net=facts.net,
        tax_rate=facts.tax_rate.normalize(),
        tax=facts.tax,
        total=facts.total,
        due_on=facts.due_on,
        service_from=facts.service_from,
        service_to=facts.service_to,
        notes=facts.notes,
        terms=texts.payment_terms(facts.due_on, facts.payment_days),
    )


def credit_paper(facts: InvoiceFacts, credit_note: str, on: date, reason: str) -> Paper:
    negative = tuple(Line(x.description, x.quantity, -x.unit_price, -x.amount) for x in facts.lines)
    notes = (*facts.notes, f"Reason: {texts.one_line(reason)}") if reason else facts.notes
    return Paper(
        title="Credit note",
        number=credit_note,
        issued_on=on,
        seller=facts.seller,
        buyer=buyer(facts.client, with_tax_id=True),
        currency=facts.currency,
        lines=negative,
        net=-facts.net,
        tax_rate=facts.tax_rate.normalize(),
        tax=-facts.tax,
        total=-facts.total,
        service_from=facts.service_from,
        service_to=facts.service_to,
        notes=notes,
        refers_to=facts.number,
    )


def _message(head: Letterhead, client: Mapping[str, Any], *, key: str, subject: str, text: str, now: datetime) -> Any:
    # "billing-invoice.<hash>", "billing-dunning.<hash>", "billing-credit.<hash>": which email it is.
    label = {"invoice": "invoice", "reminder": "dunning", "credit": "credit"}.get(key.partition(":")[0], "mail")
    message_id = make_message_id(head.domain, f"billing-{label}." + hashlib.sha256(key.encode()).hexdigest()[:32])
    name = client.get("contact_name")
    message = build_message(
        from_address=head.mail_from,
        from_name=head.agency_name,
        to_address=billing_address_of(client),
        to_name=texts.one_line(name) if name and not client.get("billing_email") else None,
        subject=subject,
        text=text,
        message_id=message_id,
        date=now,
    )
    return message, message_id


def _attach(message: EmailMessage, message_id: str, data: bytes, filename: str) -> EmailMessage:
    message.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    message.set_boundary("mixed." + "".join(c for c in message_id if c.isalnum())[:40])
    return message


def invoice_email(head: Letterhead, facts: InvoiceFacts, *, key: str, now: datetime) -> EmailMessage:
    total = shown(facts.total, facts.currency)
    message, message_id = _message(
        head,
        facts.client,
        key=key,
        subject=texts.invoice_subject(head.agency_name, facts.number, total),
        text=texts.invoice_body(
            contact=facts.client.get("contact_name"),
            agency=head.agency_name,
            number=facts.number,
            total=total,
            due=facts.due_on,
            kind=facts.kind,
        ),
        now=now,
    )
    return _attach(message, message_id, pdf(invoice_paper(facts)), f"invoice-{facts.number}.pdf")


def credit_email(
    head: Letterhead, facts: InvoiceFacts, credit_note: str, on: date, reason: str, *, key: str, now: datetime
) -> EmailMessage:
    message, message_id = _message(
        head,
        facts.client,
        key=key,
        subject=texts.credit_subject(head.agency_name, credit_note, facts.number),
        text=texts.credit_body(
            contact=facts.client.get("contact_name"),
            agency=head.agency_name,
            credit_note=credit_note,
            number=facts.number,
            total=shown(facts.total, facts.currency),
        ),
        now=now,
    )
    paper = credit_paper(facts, credit_note, on, reason)
    return _attach(message, message_id, pdf(paper), f"credit-note-{credit_note}.pdf")


def reminder_email(
    head: Letterhead,
    facts: InvoiceFacts,
    *,
    key: str,
    owed: Decimal,
    level: int,
    days_overdue: int,
    fee: Decimal,
    fee_number: str | None,
    now: datetime,
) -> EmailMessage:
    message, _ = _message(
        head,
        facts.client,
        key=key,
        subject=texts.reminder_subject(head.agency_name, facts.number, level),
        text=texts.reminder_body(
            contact=facts.client.get("contact_name"),
            agency=head.agency_name,
            number=facts.number,
            owed=shown(owed, facts.currency),
            due=facts.due_on,
            days_overdue=days_overdue,
            level=level,
            fee=shown(fee, facts.currency) if fee > 0 else None,
            fee_number=fee_number,
        ),
        now=now,
    )
    return message  # type: ignore[no-any-return]


def invoice_pdf(facts: InvoiceFacts) -> bytes:
    """The invoice's PDF, as it was emailed (`python run.py invoice ID --pdf PATH`)."""
    return pdf(invoice_paper(facts))


def credit_pdf(facts: InvoiceFacts, credit_note: str, on: date, reason: str) -> bytes:
    return pdf(credit_paper(facts, credit_note, on, reason))
