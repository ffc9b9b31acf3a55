"""The strategy module's tables (prefix `strategy_`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

- ``strategy_requests``: one row per project, what the saga asked (and whether it cancelled);
- ``strategy_plans``: one row per version of a project's plan (JSON, HTML, PDF), never
  changed afterwards except its status fields;
- ``strategy_emails``: the emails to clients (`storage.client_mail`);
- ``strategy_links``: the capability links of the plan pages (`storage.links`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
PLAN_STATUSES = "status IN ('awaiting', 'approved', 'changes_requested')"


def upgrade() -> None:
    op.create_table(
        "strategy_requests",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("draft_key", sa.String(length=200), nullable=True),
        sa.Column("client", sa.JSON(), nullable=True),
        sa.Column("package", sa.JSON(), nullable=True),
        sa.Column("brief", sa.JSON(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("cancelled_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancel_key", sa.String(length=200), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_strategy_requests")),
    )
    op.create_table(
        "strategy_plans",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("deadline_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("answered_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("announced_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("overdue_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("needs_person_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("withdrawn_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(PLAN_STATUSES, name=op.f("ck_strategy_plans_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_plans")),
        sa.UniqueConstraint("project_id", "version", name=op.f("uq_strategy_plans_project_id_version")),
    )
    op.create_index(
        op.f("ix_strategy_plans_status_announced_at"), "strategy_plans", ["status", "announced_at"], unique=False
    )
    op.create_table(
        "strategy_emails",
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_emails")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_strategy_emails_idempotency_key")),
    )
    op.create_index(op.f("ix_strategy_emails_project_id"), "strategy_emails", ["project_id"], unique=False)
    op.create_index(op.f("ix_strategy_emails_message_id"), "strategy_emails", ["message_id"], unique=False)
    op.create_index(
        "ix_strategy_emails_status_next_attempt_at", "strategy_emails", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "strategy_links",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_used_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_strategy_links_token_hash")),
    )
    op.create_index(op.f("ix_strategy_links_project_id"), "strategy_links", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_table("strategy_links")
    op.drop_table("strategy_emails")
    op.drop_table("strategy_plans")
    op.drop_table("strategy_requests")
