"""Inbound mail a person marked handled: who and when.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

- ``cam_inbound_emails``: ``handled_at`` and ``handled_by``, set when someone marks a message
  handled in the web inbox (answered, passed on, nothing to do). Apart from ``acted_at``, the
  service's own acting on it. Existing rows stay unhandled.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cam_inbound_emails") as batch:
        batch.add_column(sa.Column("handled_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("handled_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cam_inbound_emails") as batch:
        batch.drop_column("handled_by")
        batch.drop_column("handled_at")
