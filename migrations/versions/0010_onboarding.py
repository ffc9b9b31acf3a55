"""The onboarding module's tables (prefix `onboarding_`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

- ``onboarding_intakes``: one intake per project (welcome sent, answers saved, reminders,
  completed, cancelled), keyed by the project's id.
- ``onboarding_emails``: emails to the client, at most once per idempotency key
  (`storage.client_mail.mail_table`).
- ``onboarding_links``: the intake form's capability links (`storage.links.link_table`).
- ``onboarding_replies``: emails the client sent in answer to ours, kept for a person.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "onboarding_intakes",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("client", sa.JSON(), nullable=True),
        sa.Column("package", sa.JSON(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("link_nonce", sa.BigInteger(), nullable=True),
        sa.Column("link_expires_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("brief", sa.JSON(), nullable=True),
        sa.Column("reminder_every", sa.Integer(), nullable=False),
        sa.Column("reminders_planned", sa.Integer(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("next_action_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("deadline_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("overdue_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("overdue_announced_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("needs_person_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("completed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("completed_by", sa.String(length=200), nullable=True),
        sa.Column("announced_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancelled_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('waiting', 'completed', 'cancelled')", name=op.f("ck_onboarding_intakes_state")),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_onboarding_intakes")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_onboarding_intakes_idempotency_key")),
    )
    op.create_index(
        op.f("ix_onboarding_intakes_state_next_action_at"), "onboarding_intakes", ["state", "next_action_at"]
    )
    op.create_table(
        "onboarding_emails",
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_emails")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_onboarding_emails_idempotency_key")),
    )
    op.create_index(op.f("ix_onboarding_emails_project_id"), "onboarding_emails", ["project_id"])
    op.create_index(op.f("ix_onboarding_emails_message_id"), "onboarding_emails", ["message_id"])
    op.create_index(
        op.f("ix_onboarding_emails_status_next_attempt_at"), "onboarding_emails", ["status", "next_attempt_at"]
    )
    op.create_table(
        "onboarding_links",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_used_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_onboarding_links_token_hash")),
    )
    op.create_index(op.f("ix_onboarding_links_project_id"), "onboarding_links", ["project_id"])
    op.create_table(
        "onboarding_replies",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("inbound_id", sa.BigInteger(), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("stored_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("announced_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_replies")),
        sa.UniqueConstraint("project_id", "inbound_id", name=op.f("uq_onboarding_replies_project_id_inbound_id")),
    )
    op.create_index(op.f("ix_onboarding_replies_project_id"), "onboarding_replies", ["project_id"])


def downgrade() -> None:
    op.drop_table("onboarding_replies")
    op.drop_table("onboarding_links")
    op.drop_table("onboarding_emails")
    op.drop_table("onboarding_intakes")
