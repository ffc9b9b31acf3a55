"""The quality-control module's tables (prefix qc_).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

- ``qc_checks``: one row per check (`CheckDraft` idempotency key), with its verdict, its
  findings and the draft's text (compared with later drafts of the same client).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "qc_checks",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("checked_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_checks")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_qc_checks_idempotency_key")),
    )
    op.create_index(op.f("ix_qc_checks_client_ref_passed"), "qc_checks", ["client_ref", "passed"], unique=False)
    op.create_index(op.f("ix_qc_checks_project_id_item_id"), "qc_checks", ["project_id", "item_id"], unique=False)


def downgrade() -> None:
    op.drop_table("qc_checks")
