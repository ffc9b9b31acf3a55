"""A partial index of the deliveries whose alert is decided and not told.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06

- ``ix_delivery_deliveries_alert_pending`` on ``delivery_deliveries (id)`` where ``alert_due_at
  IS NOT NULL AND alerted_at IS NULL``: the courier asks for those rows at every tick that follows
  a write, and without the index each ask read every delivery ever made, with its texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "alert_due_at IS NOT NULL AND alerted_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_delivery_deliveries_alert_pending",
        "delivery_deliveries",
        ["id"],
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_deliveries_alert_pending", table_name="delivery_deliveries")
