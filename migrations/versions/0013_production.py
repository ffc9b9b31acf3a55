"""The production module's tables (prefix production_).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

- ``production_runs``: one row per project, what the saga asked and its cancellation;
- ``production_items``: the work items, their state, counters and copies of the request;
- ``production_versions``: every version of an item (title, text, HTML, source, tokens,
  the QC verdict, the client's verdict);
- ``production_batches``, ``production_batch_items``: the review batches;
- ``production_deliveries``: one row per item, version and delivery method;
- ``production_alerts``: alerts to a person (an outbox told to cam.alerts);
- ``production_item_events``: each item's history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
ITEM_STATES = (
    "state IN ('planned', 'drafting', 'in_qc', 'signoff', 'in_review', 'changes_requested', 'approved', "
    "'delivered', 'cancelled')"
)
SOURCES = "source IN ('template', 'llm', 'person')"
METHODS = "method IN ('email', 'webhook', 'folder')"


def upgrade() -> None:
    op.create_table(
        "production_runs",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("produce_key", sa.String(length=200), nullable=True),
        sa.Column("period", sa.Integer(), nullable=True),
        sa.Column("plan_version", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("delivered_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancelled_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancel_key", sa.String(length=200), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("cancel_told_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("reviews_withdrawn_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("deliveries_cancelled_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_production_runs")),
    )
    op.create_table(
        "production_items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=60), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("brief", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("retakes", sa.Integer(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("gen_attempts", sa.Integer(), nullable=False),
        sa.Column("gen_failed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("gen_error", sa.Text(), nullable=True),
        sa.Column("needs_person_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("told_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("batch_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("delivered_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("late_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(ITEM_STATES, name=op.f("ck_production_items_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_items")),
        sa.UniqueConstraint("project_id", "period", "key", name=op.f("uq_production_items_project_id_period_key")),
    )
    op.create_index(op.f("ix_production_items_state"), "production_items", ["state"], unique=False)
    op.create_table(
        "production_versions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("qc_passed", sa.Boolean(), nullable=True),
        sa.Column("qc_findings", sa.JSON(), nullable=True),
        sa.Column("qc_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=20), nullable=True),
        sa.Column("reviewed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("batch_key", sa.String(length=200), nullable=True),
        sa.CheckConstraint(SOURCES, name=op.f("ck_production_versions_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_versions")),
        sa.UniqueConstraint("item_id", "version", name=op.f("uq_production_versions_item_id_version")),
    )
    op.create_table(
        "production_batches",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("told_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("requested_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("deadline_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_production_batches")),
    )
    op.create_index(op.f("ix_production_batches_project_id"), "production_batches", ["project_id"], unique=False)
    op.create_table(
        "production_batch_items",
        sa.Column("batch_key", sa.String(length=200), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("batch_key", "item_id", name=op.f("pk_production_batch_items")),
    )
    op.create_table(
        "production_deliveries",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("told_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("delivered_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.Column("failing_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(METHODS, name=op.f("ck_production_deliveries_method")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_production_deliveries")),
    )
    op.create_index(op.f("ix_production_deliveries_item_id"), "production_deliveries", ["item_id"], unique=False)
    op.create_table(
        "production_alerts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("told_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_production_alerts")),
    )
    op.create_index(op.f("ix_production_alerts_told_at"), "production_alerts", ["told_at"], unique=False)
    op.create_table(
        "production_item_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_item_events")),
    )
    op.create_index(op.f("ix_production_item_events_item_id"), "production_item_events", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_table("production_item_events")
    op.drop_table("production_alerts")
    op.drop_table("production_deliveries")
    op.drop_table("production_batch_items")
    op.drop_table("production_batches")
    op.drop_table("production_versions")
    op.drop_table("production_items")
    op.drop_table("production_runs")
