"""The retention module's tables (prefix retention_).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05

- ``retention_clients``: each client and its current score, band and reasons;
- ``retention_contracts``: each signed deal (start, term, end; cancelled with its project);
- ``retention_projects``: orchestration's projects and their deals;
- ``retention_signals``: every signal once, under its source key;
- ``retention_invoices``: each invoice issued, until paid in full or credited;
- ``retention_reviews``: when each review batch was asked;
- ``retention_renewals``: each renewal reminder of a contract, once;
- ``retention_notices``: band changes and renewals to announce, until told.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
BANDS = "band IS NULL OR band IN ('green', 'amber', 'red')"
RENEWAL_STATES = "state IN ('sent', 'skipped')"
NOTICE_KINDS = "kind IN ('band', 'renewal')"


def upgrade() -> None:
    op.create_table(
        "retention_clients",
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("company", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("billing_email", sa.String(length=320), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("band", sa.String(length=8), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("scored_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("band_changes", sa.Integer(), nullable=False),
        sa.Column("red_entries", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(BANDS, name=op.f("ck_retention_clients_band")),
        sa.PrimaryKeyConstraint("client_ref", name=op.f("pk_retention_clients")),
    )
    op.create_index(op.f("ix_retention_clients_contact_email"), "retention_clients", ["contact_email"], unique=False)
    op.create_table(
        "retention_contracts",
        sa.Column("deal_id", ID, autoincrement=False, nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("lead_id", ID, nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("package", sa.String(length=200), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("signed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("cancelled_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("deal_id", name=op.f("pk_retention_contracts")),
    )
    op.create_index(op.f("ix_retention_contracts_client_ref"), "retention_contracts", ["client_ref"], unique=False)
    op.create_index(op.f("ix_retention_contracts_lead_id"), "retention_contracts", ["lead_id"], unique=False)
    op.create_index(op.f("ix_retention_contracts_ends_on"), "retention_contracts", ["ends_on"], unique=False)
    op.create_table(
        "retention_projects",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("deal_id", ID, nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_retention_projects")),
    )
    op.create_index(op.f("ix_retention_projects_deal_id"), "retention_projects", ["deal_id"], unique=False)
    op.create_table(
        "retention_signals",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=True),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_signals")),
        sa.UniqueConstraint("key", name=op.f("uq_retention_signals_key")),
    )
    op.create_index(op.f("ix_retention_signals_project_id"), "retention_signals", ["project_id"], unique=False)
    op.create_index(op.f("ix_retention_signals_client_ref_at"), "retention_signals", ["client_ref", "at"], unique=False)
    op.create_table(
        "retention_invoices",
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("settled_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("overdue_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_retention_invoices")),
    )
    op.create_index(
        op.f("ix_retention_invoices_settled_at_overdue_at_due_on"),
        "retention_invoices",
        ["settled_at", "overdue_at", "due_on"],
        unique=False,
    )
    op.create_table(
        "retention_reviews",
        sa.Column("batch_key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("requested_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("batch_key", name=op.f("pk_retention_reviews")),
    )
    op.create_table(
        "retention_renewals",
        sa.Column("deal_id", ID, autoincrement=False, nullable=False),
        sa.Column("days", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(RENEWAL_STATES, name=op.f("ck_retention_renewals_state")),
        sa.PrimaryKeyConstraint("deal_id", "days", name=op.f("pk_retention_renewals")),
    )
    op.create_table(
        "retention_notices",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("alert", sa.JSON(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("told_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(NOTICE_KINDS, name=op.f("ck_retention_notices_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_notices")),
        sa.UniqueConstraint("key", name=op.f("uq_retention_notices_key")),
    )
    op.create_index(op.f("ix_retention_notices_client_ref"), "retention_notices", ["client_ref"], unique=False)
    op.create_index(op.f("ix_retention_notices_told_at"), "retention_notices", ["told_at"], unique=False)


def downgrade() -> None:
    op.drop_table("retention_notices")
    op.drop_table("retention_renewals")
    op.drop_table("retention_reviews")
    op.drop_table("retention_invoices")
    op.drop_table("retention_signals")
    op.drop_table("retention_projects")
    op.drop_table("retention_contracts")
    op.drop_table("retention_clients")
