"""The delivery module's tables (prefix delivery_).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

- ``delivery_deliveries``: one row per delivery (an item's version by one method), under the
  command's idempotency key, with its state, attempts, receipt, error and alert;
- ``delivery_cancels``: the projects whose deliveries were cancelled;
- ``delivery_emails``: the emails of the "email" method (`storage.client_mail`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
STATES = "state IN ('queued', 'sending', 'retrying', 'delivered', 'unconfirmed', 'failed', 'cancelled')"
METHODS = "method IN ('email', 'webhook', 'folder')"


def upgrade() -> None:
    op.create_table(
        "delivery_deliveries",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=60), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("alert_due_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("alerted_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("delivered_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancelled_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(STATES, name=op.f("ck_delivery_deliveries_state")),
        sa.CheckConstraint(METHODS, name=op.f("ck_delivery_deliveries_method")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_deliveries")),
        sa.UniqueConstraint("key", name=op.f("uq_delivery_deliveries_key")),
    )
    op.create_index(op.f("ix_delivery_deliveries_project_id"), "delivery_deliveries", ["project_id"], unique=False)
    op.create_index(
        op.f("ix_delivery_deliveries_state_next_attempt_at"),
        "delivery_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "delivery_cancels",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cancelled_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_delivery_cancels")),
    )
    op.create_table(
        "delivery_emails",
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_emails")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_delivery_emails_idempotency_key")),
    )
    op.create_index(op.f("ix_delivery_emails_project_id"), "delivery_emails", ["project_id"], unique=False)
    op.create_index(op.f("ix_delivery_emails_message_id"), "delivery_emails", ["message_id"], unique=False)
    op.create_index(
        "ix_delivery_emails_status_next_attempt_at", "delivery_emails", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("delivery_emails")
    op.drop_table("delivery_cancels")
    op.drop_table("delivery_deliveries")
