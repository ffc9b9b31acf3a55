"""The reporting module's tables (prefix reporting_).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05

- ``reporting_clients``: each client's copy and report schedule;
- ``reporting_projects``: project -> deal;
- ``reporting_items``, ``reporting_reviews``: deliverables planned, late, delivered; verdicts;
- ``reporting_kpi_values``: KPI values per client, KPI and period;
- ``reporting_funnel``, ``reporting_funnel_seen``: CAM's funnel per campaign and day;
- ``reporting_reports``: one row per client and period reported;
- ``reporting_emails``: the reports' emails (`storage.client_mail`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
PERIODS = "period IN ('day', 'week', 'fortnight', 'month')"


def upgrade() -> None:
    op.create_table(
        "reporting_clients",
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("company", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("signed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("formats", sa.String(length=40), nullable=False),
        sa.Column("campaigns", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(PERIODS, name=op.f("ck_reporting_clients_period")),
        sa.PrimaryKeyConstraint("client_ref", name=op.f("pk_reporting_clients")),
        sa.UniqueConstraint("deal_id", name=op.f("uq_reporting_clients_deal_id")),
    )
    op.create_table(
        "reporting_projects",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_reporting_projects")),
    )
    op.create_index(op.f("ix_reporting_projects_deal_id"), "reporting_projects", ["deal_id"], unique=False)
    op.create_table(
        "reporting_items",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=60), nullable=False),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("planned", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("delivered_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_reporting_items")),
    )
    op.create_index(op.f("ix_reporting_items_project_id"), "reporting_items", ["project_id"], unique=False)
    op.create_table(
        "reporting_reviews",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("item_id", "version", name=op.f("pk_reporting_reviews")),
    )
    op.create_index(op.f("ix_reporting_reviews_project_id"), "reporting_reviews", ["project_id"], unique=False)
    op.create_table(
        "reporting_kpi_values",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("kpi", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("attained", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("published_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_kpi_values")),
        sa.UniqueConstraint("client_ref", "kpi", "period", name=op.f("uq_reporting_kpi_values_client_ref_kpi_period")),
    )
    op.create_index(
        op.f("ix_reporting_kpi_values_published_at"), "reporting_kpi_values", ["published_at"], unique=False
    )
    op.create_table(
        "reporting_funnel",
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("positive", sa.Integer(), nullable=False),
        sa.Column("signed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "day", name=op.f("pk_reporting_funnel")),
    )
    op.create_table(
        "reporting_funnel_seen",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ref", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("kind", "ref", name=op.f("pk_reporting_funnel_seen")),
    )
    op.create_table(
        "reporting_reports",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=30), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("formats", sa.String(length=40), nullable=False),
        sa.Column("email_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("published_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_reports")),
        sa.UniqueConstraint("client_ref", "period", name=op.f("uq_reporting_reports_client_ref_period")),
    )
    op.create_index(op.f("ix_reporting_reports_published_at"), "reporting_reports", ["published_at"], unique=False)
    op.create_table(
        "reporting_emails",
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_emails")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reporting_emails_idempotency_key")),
    )
    op.create_index(op.f("ix_reporting_emails_project_id"), "reporting_emails", ["project_id"], unique=False)
    op.create_index(op.f("ix_reporting_emails_message_id"), "reporting_emails", ["message_id"], unique=False)
    op.create_index(
        "ix_reporting_emails_status_next_attempt_at", "reporting_emails", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    for table in (
        "reporting_emails",
        "reporting_reports",
        "reporting_funnel_seen",
        "reporting_funnel",
        "reporting_kpi_values",
        "reporting_reviews",
        "reporting_items",
        "reporting_projects",
        "reporting_clients",
    ):
        op.drop_table(table)
