"""Campaigns remember when they were last resumed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The auto-pause rates of a resumed campaign count from its resumption, so a campaign
resumed by a human is not paused again at once by the very numbers that paused it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cam_campaigns") as batch:
        batch.add_column(sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cam_campaigns") as batch:
        batch.drop_column("resumed_at")
