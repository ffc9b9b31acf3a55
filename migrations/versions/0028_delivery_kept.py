"""Production remembers that the courier keeps a delivery (`DeliveryKept`).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06

- ``production_deliveries.kept_at``: when the courier said it has the delivery and keeps it
  (a client on hold, a retry waiting). Such a delivery is told again only rarely
  (`Silence.delivery_kept`), not on the doubling schedule of one never answered.

On SQLite the table is rebuilt so that the new column comes before the long ones (0027).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: production_deliveries' columns, short ones first (0027), with the new one among them.
ORDER = (
    "key",
    "item_id",
    "project_id",
    "version",
    "method",
    "created_at",
    "told_at",
    "delivered_at",
    "failing_at",
    "kept_at",
    "attempts",
    "receipt",
    "error",
)


def _sqlite() -> bool:
    return not context.is_offline_mode() and op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    column = sa.Column("kept_at", sa.DateTime(timezone=True), nullable=True)
    if not _sqlite():
        op.add_column("production_deliveries", column)
        return
    with op.batch_alter_table("production_deliveries", recreate="always", partial_reordering=[ORDER]) as batch:
        batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("production_deliveries") as batch:
        batch.drop_column("kept_at")
