"""Drop `cam_sequence_steps`: written on every campaign update, read by nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

A campaign's steps live in its spec (`cam_campaigns.spec`, parsed once per spec hash);
the table copied them and nothing ever read the copy. The downgrade brings the table back
and fills it from the specs, as the old code wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_table("cam_sequence_steps")


def downgrade() -> None:
    steps = op.create_table(
        "cam_sequence_steps",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("delay_days", sa.Float(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("variants", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["cam_campaigns.id"],
            name=op.f("fk_cam_sequence_steps_campaign_id_cam_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cam_sequence_steps")),
        sa.UniqueConstraint("campaign_id", "step", name=op.f("uq_cam_sequence_steps_campaign_id_step")),
    )
    campaigns = sa.table("cam_campaigns", sa.column("id", ID), sa.column("spec", sa.JSON()))
    rows = []
    for campaign_id, spec in op.get_bind().execute(sa.select(campaigns.c.id, campaigns.c.spec)):
        parsed = json.loads(spec) if isinstance(spec, str) else spec or {}
        for index, step in enumerate(parsed.get("steps", []), start=1):
            rows.append(
                {
                    "campaign_id": campaign_id,
                    "step": index,
                    "delay_days": float(step.get("delay_days", 0)),
                    "subject": step.get("subject", ""),
                    "body": step.get("body", ""),
                    "html": step.get("html"),
                    "variants": step.get("variants") or [],
                }
            )
    if rows:
        op.bulk_insert(steps, rows)
