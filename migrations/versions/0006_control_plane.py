"""The control plane's tables: users, tokens and audit; module switches; usage events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

- ``identity_users``, ``identity_tokens``, ``identity_audit``: who may use the control API,
  their API tokens (kept as SHA-256 only) and who changed what.
- ``orchestration_switches``: a module (or the worker's sending) switched off by someone;
  no row means on.
- ``observability_usage``: every countable act, once (``key`` is unique).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_users",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_login_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint("role IN ('owner', 'operator', 'viewer')", name=op.f("ck_identity_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_users")),
        sa.UniqueConstraint("name", name=op.f("uq_identity_users_name")),
    )
    op.create_table(
        "identity_tokens",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_used_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["identity_users.id"],
            name=op.f("fk_identity_tokens_user_id_identity_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_identity_tokens_token_hash")),
    )
    op.create_index(op.f("ix_identity_tokens_user_id"), "identity_tokens", ["user_id"])
    op.create_table(
        "identity_audit",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_audit")),
    )
    op.create_index(op.f("ix_identity_audit_at"), "identity_audit", ["at"])
    op.create_index(op.f("ix_identity_audit_actor"), "identity_audit", ["actor"])
    op.create_table(
        "orchestration_switches",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changed_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_orchestration_switches")),
    )
    op.create_table(
        "observability_usage",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("module", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observability_usage")),
        sa.UniqueConstraint("key", name=op.f("uq_observability_usage_key")),
    )
    op.create_index(op.f("ix_observability_usage_day_module_kind"), "observability_usage", ["day", "module", "kind"])
    op.create_index(op.f("ix_observability_usage_subject_day"), "observability_usage", ["subject", "day"])


def downgrade() -> None:
    op.drop_table("observability_usage")
    op.drop_table("orchestration_switches")
    op.drop_table("identity_audit")
    op.drop_table("identity_tokens")
    op.drop_table("identity_users")
