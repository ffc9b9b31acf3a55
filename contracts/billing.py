"""Billing: invoices and payments.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class BillingMessage(Message):
    contract_version: int = CONTRACT_VERSION


class BillingEvent(Event):
    contract_version: int = CONTRACT_VERSION


class IssueInvoice(BillingMessage):
    project_id: uuid.UUID
    amount_cents: int
    currency: str = "EUR"


class InvoiceIssued(BillingEvent):
    project_id: uuid.UUID
    invoice_id: uuid.UUID
    amount_cents: int
    currency: str


class PaymentReceived(BillingEvent):
    invoice_id: uuid.UUID
    amount_cents: int
