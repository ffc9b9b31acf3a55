"""The tables of billing (prefix ``billing_``). Declarations only: no business logic.

- ``billing_accounts``: one per signed deal (`ClientSigned`, the first time): the client's and
  the package's copies, the start, the project once opened, when it stopped (compensated), and
  when the account next needs a look (`next_due_at`: a retainer's period starting, a milestone
  reached);
- ``billing_milestones``: the milestones reached (by a saga step, at signing, or by a person);
- ``billing_invoices``: every invoice ever numbered, never deleted (a credit note cancels one);
  amounts are decimal text in the invoice's currency, exact;
- ``billing_counters``: the last number of each series and year (invoices, credit notes), taken
  in the transaction that writes the invoice: a number exists iff its invoice does;
- ``billing_payments``: payments recorded against invoices;
- ``billing_reminders``: dunning reminders sent, one per invoice and sequence number;
- ``billing_rounds``: the change requests on each piece (`ItemReviewed`), counted per item;
- ``billing_holds``: the clients on hold for an invoice overdue past the threshold;
- ``billing_events``: the events decided with each write, published after it (at least once);
- ``billing_emails``: invoices, reminders and credit notes to clients (`storage.client_mail`).
"""

from __future__ import annotations

import sqlalchemy as sa

from aicmo_actors.storage.client_mail import mail_table
from aicmo_actors.storage.metadata import Id, UtcDateTime, metadata

#: Decimal amounts as text: exact on both databases (SQLite has no decimal type).
AMOUNT = sa.String(40)

billing_accounts = sa.Table(
    "billing_accounts",
    metadata,
    sa.Column("deal_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("client_ref", sa.String(36), nullable=False, index=True),
    sa.Column("company", sa.Text, nullable=False),
    sa.Column("client", sa.JSON, nullable=False),
    sa.Column("package", sa.JSON, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("start_on", sa.Date, nullable=False),
    sa.Column("signed_at", UtcDateTime, nullable=False),
    sa.Column("project_id", sa.String(36), unique=True),
    sa.Column("stopped_on", sa.Date),
    sa.Column("next_due_at", UtcDateTime, index=True),
    #: How many of the deal's renewals are applied (`ContractRenewed` number): each one added its
    #: months to `package`'s ``term_months`` (more retainers).
    sa.Column("renewals", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

billing_milestones = sa.Table(
    "billing_milestones",
    metadata,
    sa.Column("deal_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("reached_at", UtcDateTime, nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
)

billing_invoices = sa.Table(
    "billing_invoices",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("number", sa.String(24), nullable=False, unique=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("deal_id", sa.Integer, index=True),
    sa.Column("client_ref", sa.String(36), nullable=False, index=True),
    sa.Column("project_id", sa.String(36)),
    sa.Column("client", sa.JSON, nullable=False),
    #: The seller as printed on it (the agency's name, address, country, VAT number then).
    sa.Column("seller", sa.JSON, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("net", AMOUNT, nullable=False),
    sa.Column("tax_rate", AMOUNT, nullable=False),
    sa.Column("tax", AMOUNT, nullable=False),
    sa.Column("total", AMOUNT, nullable=False),
    sa.Column("tax_kind", sa.String(16), nullable=False),
    sa.Column("notes", sa.JSON, nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("service_from", sa.Date),
    sa.Column("service_to", sa.Date),
    sa.Column("paid", AMOUNT, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    #: The invoice a late fee is for.
    sa.Column("for_invoice", sa.String(36)),
    sa.Column("reminders", sa.Integer, nullable=False),
    sa.Column("next_reminder_on", sa.Date),
    sa.Column("credit_note", sa.String(24), unique=True),
    sa.Column("credited_on", sa.Date),
    sa.Column("credit_reason", sa.Text),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("year", "seq"),
    sa.Index("ix_billing_invoices_state_next_reminder_on", "state", "next_reminder_on"),
    sa.CheckConstraint("kind IN ('retainer', 'one_off', 'milestone', 'extra_round', 'late_fee')", name="kind"),
    sa.CheckConstraint("state IN ('open', 'paid', 'credited')", name="state"),
)

billing_counters = sa.Table(
    "billing_counters",
    metadata,
    sa.Column("series", sa.String(8), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last", sa.Integer, nullable=False),
)

billing_payments = sa.Table(
    "billing_payments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("invoice_id", sa.String(36), nullable=False, index=True),
    sa.Column("amount", AMOUNT, nullable=False),
    sa.Column("received_on", sa.Date, nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

billing_reminders = sa.Table(
    "billing_reminders",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("invoice_id", sa.String(36), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("fee", AMOUNT, nullable=False),
    sa.Column("fee_invoice", sa.String(24)),
    sa.Column("days_overdue", sa.Integer, nullable=False),
    sa.Column("sent_on", sa.Date, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("invoice_id", "seq"),
)

billing_rounds = sa.Table(
    "billing_rounds",
    metadata,
    sa.Column("project_id", sa.String(36), primary_key=True),
    sa.Column("item_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)

billing_holds = sa.Table(
    "billing_holds",
    metadata,
    sa.Column("client_ref", sa.String(36), primary_key=True),
    sa.Column("company", sa.Text, nullable=False),
    #: How many holds this client has had (part of the alert's key).
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("invoices", sa.JSON, nullable=False),
    sa.Column("since", UtcDateTime, nullable=False),
    sa.Column("released_at", UtcDateTime),
    sa.Column("alerted_at", UtcDateTime),
)

billing_events = sa.Table(
    "billing_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("published_at", UtcDateTime, index=True),
)

billing_emails = mail_table("billing")
