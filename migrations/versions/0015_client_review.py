"""The client-review module's tables (prefix client_review_).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

- ``client_review_batches``: one row per batch of items the client is asked to review;
- ``client_review_items``: a copy of each item of a batch and the verdict on it;
- ``client_review_replies``: the client's emailed answers, with the intent read from them;
- ``client_review_withdrawals``: the withdrawn projects;
- ``client_review_passwords``: the optional password of a project's review pages;
- ``client_review_emails``: the emails to clients (`storage.client_mail`);
- ``client_review_links``: the capability links of the review pages (`storage.links`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
BATCH_STATES = "state IN ('open', 'answered', 'withdrawn')"
ITEM_STATUSES = "status IN ('awaiting', 'approved', 'changes')"
REVIEWERS = "reviewed_by IN ('page', 'email', 'auto', 'person')"
INTENTS = "intent IN ('approve', 'changes', 'unclear')"


def upgrade() -> None:
    op.create_table(
        "client_review_batches",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("batch_key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("deadline_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("auto_approve_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("link_nonce", sa.BigInteger(), nullable=False),
        sa.Column("link_hash", sa.String(length=64), nullable=False),
        sa.Column("link_expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("reminders_planned", sa.Integer(), nullable=False),
        sa.Column("reminder_every", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("next_action_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("needs_person_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("person_alerted_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("withdrawn_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(BATCH_STATES, name=op.f("ck_client_review_batches_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_review_batches")),
        sa.UniqueConstraint("batch_key", name=op.f("uq_client_review_batches_batch_key")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_client_review_batches_link_hash")),
    )
    op.create_index(op.f("ix_client_review_batches_project_id"), "client_review_batches", ["project_id"], unique=False)
    op.create_index(
        op.f("ix_client_review_batches_state_next_action_at"),
        "client_review_batches",
        ["state", "next_action_at"],
        unique=False,
    )
    op.create_table(
        "client_review_items",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("batch_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=60), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=10), nullable=True),
        sa.Column("reviewed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("announced_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(ITEM_STATUSES, name=op.f("ck_client_review_items_status")),
        sa.CheckConstraint(REVIEWERS, name=op.f("ck_client_review_items_reviewed_by")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_review_items")),
        sa.UniqueConstraint(
            "batch_id", "item_id", "version", name=op.f("uq_client_review_items_batch_id_item_id_version")
        ),
    )
    op.create_index(op.f("ix_client_review_items_batch_id"), "client_review_items", ["batch_id"], unique=False)
    op.create_index(
        op.f("ix_client_review_items_status_announced_at"),
        "client_review_items",
        ["status", "announced_at"],
        unique=False,
    )
    op.create_table(
        "client_review_replies",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("batch_id", ID, nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("inbound_id", sa.BigInteger(), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=10), nullable=False),
        sa.Column("decided", sa.Integer(), nullable=False),
        sa.Column("received_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("stored_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("needs_person_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("person_alerted_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(INTENTS, name=op.f("ck_client_review_replies_intent")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_review_replies")),
        sa.UniqueConstraint("batch_id", "inbound_id", name=op.f("uq_client_review_replies_batch_id_inbound_id")),
    )
    op.create_index(op.f("ix_client_review_replies_project_id"), "client_review_replies", ["project_id"], unique=False)
    op.create_table(
        "client_review_withdrawals",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("withdrawn_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_client_review_withdrawals")),
    )
    op.create_table(
        "client_review_passwords",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("set_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failures_since", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_client_review_passwords")),
    )
    op.create_table(
        "client_review_emails",
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_review_emails")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_client_review_emails_idempotency_key")),
    )
    op.create_index(op.f("ix_client_review_emails_project_id"), "client_review_emails", ["project_id"], unique=False)
    op.create_index(op.f("ix_client_review_emails_message_id"), "client_review_emails", ["message_id"], unique=False)
    op.create_index(
        "ix_client_review_emails_status_next_attempt_at",
        "client_review_emails",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "client_review_links",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_used_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_review_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_client_review_links_token_hash")),
    )
    op.create_index(op.f("ix_client_review_links_project_id"), "client_review_links", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_table("client_review_links")
    op.drop_table("client_review_emails")
    op.drop_table("client_review_passwords")
    op.drop_table("client_review_withdrawals")
    op.drop_table("client_review_replies")
    op.drop_table("client_review_items")
    op.drop_table("client_review_batches")
