"""What a hold found delivered (the order of a hold and a delivery at one instant).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05

- ``delivery_holds.delivered_before``: how many of the client's deliveries were delivered when
  the hold was written. A delivery and a hold may carry one instant (the simulation's fake clock
  does not move between them); this count says whether the delivery came before the hold. Holds
  recorded before this change keep NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("delivery_holds", sa.Column("delivered_before", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_holds") as batch:
        batch.drop_column("delivered_before")
