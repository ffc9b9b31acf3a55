"""Billing: invoices, credit notes, payments, dunning and the hold on a client who does not pay.

Amounts are `Decimal` in the invoice's currency (never floats). The module's own commands
are written by the command line and the API straight to its tables; what crosses to the
other modules are these events (retention reads the money signals, learning the revenue, the
delivery hold policy `ClientOnHold` / `ClientReleased`).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Literal

from contracts.base import Event, Message

CONTRACT_VERSION = 2

#: What an invoice bills: a period's retainer, the one-off price, a milestone's share, extra
#: review rounds, or a reminder's late fee.
InvoiceKind = Literal["retainer", "one_off", "milestone", "extra_round", "late_fee"]


class BillingMessage(Message):
    contract_version: int = CONTRACT_VERSION


class BillingEvent(Event):
    contract_version: int = CONTRACT_VERSION


class InvoiceIssued(BillingEvent):
    """An invoice was numbered and written (sent by email right after, see `InvoiceSent`)."""

    invoice_id: uuid.UUID
    number: str
    client_ref: uuid.UUID
    project_id: uuid.UUID | None = None
    kind: InvoiceKind
    total: Decimal
    currency: str
    issued_on: date
    due_on: date


class InvoiceSent(BillingEvent):
    """The invoice's email (PDF attached) went to the client's billing contact."""

    invoice_id: uuid.UUID
    number: str
    client_ref: uuid.UUID


class PaymentReceived(BillingEvent):
    """A payment was recorded against an invoice (full, partial or over)."""

    invoice_id: uuid.UUID
    number: str
    client_ref: uuid.UUID
    project_id: uuid.UUID | None = None
    amount: Decimal
    currency: str
    #: What is still owed on the invoice after this payment (negative: paid over).
    balance: Decimal
    paid_in_full: bool
    received_on: date
    #: Days after the due date (0: on time).
    days_late: int = 0


class ReminderSent(BillingEvent):
    """A dunning reminder went out: `level` 1..3, then 4 for every repeating reminder."""

    invoice_id: uuid.UUID
    number: str
    client_ref: uuid.UUID
    level: int
    fee: Decimal = Decimal("0")
    days_overdue: int


class InvoiceCredited(BillingEvent):
    """An invoice was cancelled by a credit note (it is never deleted)."""

    invoice_id: uuid.UUID
    number: str
    credit_note: str
    client_ref: uuid.UUID
    reason: str = ""


class ClientOnHold(BillingEvent):
    """A client owes an invoice overdue past the hold threshold: new deliveries wait (published
    again while the hold lasts; the hold policy de-duplicates)."""

    client_ref: uuid.UUID
    reason: str
    invoices: tuple[str, ...] = ()


class ClientReleased(BillingEvent):
    """The client no longer owes an invoice past the threshold: held deliveries go out."""

    client_ref: uuid.UUID
    reason: str = ""
