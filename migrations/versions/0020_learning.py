"""The learning module's tables (prefix learning_), and CAM's bandit tables.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05

- ``learning_sends``, ``learning_replies``, ``learning_deals``, ``learning_payments``: the outcome
  records (each once); ``learning_campaigns``: the campaigns that ask for a bandit;
  ``learning_weights``: each allocation decided (and whether it was told to CAM);
- ``cam_variant_weights``: the allocations CAM was told (`SetVariantWeights`), once per key;
  ``cam_variant_assignments``: the variant a bandit campaign's lead first got (sticky).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "learning_sends",
        sa.Column("outbound_id", ID, autoincrement=False, nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("lead_id", ID, nullable=False),
        sa.Column("sent_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("correlation_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("outbound_id", name=op.f("pk_learning_sends")),
    )
    op.create_index(op.f("ix_learning_sends_lead_id"), "learning_sends", ["lead_id"], unique=False)
    op.create_index(
        op.f("ix_learning_sends_campaign_step_variant"), "learning_sends", ["campaign", "step", "variant"], unique=False
    )
    op.create_table(
        "learning_replies",
        sa.Column("inbound_id", ID, autoincrement=False, nullable=False),
        sa.Column("outbound_id", ID, nullable=False),
        sa.Column("lead_id", ID, nullable=True),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("correlation_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("inbound_id", name=op.f("pk_learning_replies")),
    )
    op.create_index(op.f("ix_learning_replies_outbound_id"), "learning_replies", ["outbound_id"], unique=False)
    op.create_table(
        "learning_deals",
        sa.Column("deal_id", ID, autoincrement=False, nullable=False),
        sa.Column("lead_id", ID, nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("signed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("correlation_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("deal_id", name=op.f("pk_learning_deals")),
    )
    op.create_index(op.f("ix_learning_deals_lead_id"), "learning_deals", ["lead_id"], unique=False)
    op.create_index(op.f("ix_learning_deals_client_ref"), "learning_deals", ["client_ref"], unique=False)
    op.create_table(
        "learning_payments",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("correlation_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_learning_payments")),
    )
    op.create_index(op.f("ix_learning_payments_client_ref"), "learning_payments", ["client_ref"], unique=False)
    op.create_table(
        "learning_campaigns",
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("window_days", sa.Float(), nullable=False),
        sa.Column("burn_in", sa.Integer(), nullable=False),
        sa.Column("floor", sa.Float(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("campaign", name=op.f("pk_learning_campaigns")),
    )
    op.create_table(
        "learning_weights",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("burn_in", sa.Boolean(), nullable=False),
        sa.Column("floor", sa.Float(), nullable=False),
        sa.Column("as_of", UTC_TIMESTAMP, nullable=False),
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.Column("told_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learning_weights")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_learning_weights_idempotency_key")),
    )
    op.create_index(
        op.f("ix_learning_weights_campaign_step_as_of"), "learning_weights", ["campaign", "step", "as_of"], unique=False
    )
    op.create_table(
        "cam_variant_weights",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("as_of", UTC_TIMESTAMP, nullable=False),
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cam_variant_weights")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_cam_variant_weights_idempotency_key")),
    )
    op.create_index(
        op.f("ix_cam_variant_weights_campaign_step_as_of"),
        "cam_variant_weights",
        ["campaign", "step", "as_of"],
        unique=False,
    )
    op.create_table(
        "cam_variant_assignments",
        sa.Column("lead_id", ID, autoincrement=False, nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("assigned_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["cam_leads.id"], name=op.f("fk_cam_variant_assignments_lead_id_cam_leads")
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_cam_variant_assignments")),
    )


def downgrade() -> None:
    op.drop_table("cam_variant_assignments")
    op.drop_table("cam_variant_weights")
    op.drop_table("learning_weights")
    op.drop_table("learning_campaigns")
    op.drop_table("learning_payments")
    op.drop_table("learning_deals")
    op.drop_table("learning_replies")
    op.drop_table("learning_sends")
