"""The billing module's tables (prefix billing_).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05

Accounts (one per signed deal), milestones reached, invoices (never deleted; amounts as exact
decimal text), the per-year counters of the invoice and credit-note series, payments,
reminders, review rounds, holds, the events waiting to be published, and the client emails
(`storage.client_mail`). See aicmo_actors/billing/tables.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
AMOUNT = sa.String(length=40)
KINDS = "kind IN ('retainer', 'one_off', 'milestone', 'extra_round', 'late_fee')"
STATES = "state IN ('open', 'paid', 'credited')"


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("deal_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("company", sa.Text(), nullable=False),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("signed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("stopped_on", sa.Date(), nullable=True),
        sa.Column("next_due_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("deal_id", name=op.f("pk_billing_accounts")),
        sa.UniqueConstraint("project_id", name=op.f("uq_billing_accounts_project_id")),
    )
    op.create_index(op.f("ix_billing_accounts_client_ref"), "billing_accounts", ["client_ref"], unique=False)
    op.create_index(op.f("ix_billing_accounts_next_due_at"), "billing_accounts", ["next_due_at"], unique=False)
    op.create_table(
        "billing_milestones",
        sa.Column("deal_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reached_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("deal_id", "name", name=op.f("pk_billing_milestones")),
    )
    op.create_table(
        "billing_invoices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("seller", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("net", AMOUNT, nullable=False),
        sa.Column("tax_rate", AMOUNT, nullable=False),
        sa.Column("tax", AMOUNT, nullable=False),
        sa.Column("total", AMOUNT, nullable=False),
        sa.Column("tax_kind", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("service_from", sa.Date(), nullable=True),
        sa.Column("service_to", sa.Date(), nullable=True),
        sa.Column("paid", AMOUNT, nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("for_invoice", sa.String(length=36), nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("next_reminder_on", sa.Date(), nullable=True),
        sa.Column("credit_note", sa.String(length=24), nullable=True),
        sa.Column("credited_on", sa.Date(), nullable=True),
        sa.Column("credit_reason", sa.Text(), nullable=True),
        sa.Column("sent_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(KINDS, name=op.f("ck_billing_invoices_kind")),
        sa.CheckConstraint(STATES, name=op.f("ck_billing_invoices_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_billing_invoices_number")),
        sa.UniqueConstraint("key", name=op.f("uq_billing_invoices_key")),
        sa.UniqueConstraint("credit_note", name=op.f("uq_billing_invoices_credit_note")),
        sa.UniqueConstraint("year", "seq", name=op.f("uq_billing_invoices_year_seq")),
    )
    op.create_index(op.f("ix_billing_invoices_deal_id"), "billing_invoices", ["deal_id"], unique=False)
    op.create_index(op.f("ix_billing_invoices_client_ref"), "billing_invoices", ["client_ref"], unique=False)
    op.create_index(
        "ix_billing_invoices_state_next_reminder_on", "billing_invoices", ["state", "next_reminder_on"], unique=False
    )
    op.create_table(
        "billing_counters",
        sa.Column("series", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", "year", name=op.f("pk_billing_counters")),
    )
    op.create_table(
        "billing_payments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_payments")),
    )
    op.create_index(op.f("ix_billing_payments_invoice_id"), "billing_payments", ["invoice_id"], unique=False)
    op.create_table(
        "billing_reminders",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("fee", AMOUNT, nullable=False),
        sa.Column("fee_invoice", sa.String(length=24), nullable=True),
        sa.Column("days_overdue", sa.Integer(), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_reminders")),
        sa.UniqueConstraint("invoice_id", "seq", name=op.f("uq_billing_reminders_invoice_id_seq")),
    )
    op.create_table(
        "billing_rounds",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "item_id", "version", name=op.f("pk_billing_rounds")),
    )
    op.create_table(
        "billing_holds",
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("company", sa.Text(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("invoices", sa.JSON(), nullable=False),
        sa.Column("since", UTC_TIMESTAMP, nullable=False),
        sa.Column("released_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("alerted_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("client_ref", name=op.f("pk_billing_holds")),
    )
    op.create_table(
        "billing_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("published_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_events")),
    )
    op.create_index(op.f("ix_billing_events_published_at"), "billing_events", ["published_at"], unique=False)
    op.create_table(
        "billing_emails",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("sent_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_emails")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_billing_emails_idempotency_key")),
    )
    op.create_index(op.f("ix_billing_emails_project_id"), "billing_emails", ["project_id"], unique=False)
    op.create_index(op.f("ix_billing_emails_message_id"), "billing_emails", ["message_id"], unique=False)
    op.create_index(
        "ix_billing_emails_status_next_attempt_at", "billing_emails", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    for table in (
        "billing_emails",
        "billing_events",
        "billing_holds",
        "billing_rounds",
        "billing_reminders",
        "billing_payments",
        "billing_counters",
        "billing_invoices",
        "billing_milestones",
        "billing_accounts",
    ):
        op.drop_table(table)
