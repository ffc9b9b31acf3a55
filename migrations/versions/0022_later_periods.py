"""Later periods of a project (the saga begins each period of a monthly retainer's term).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05

- ``orchestration_projects.next_period_on``: the day the saga next looks at beginning a later
  period. A project still running whose plan is approved gets its start day, so that the
  saga's next tick works out which period comes next and when (a project finished before
  this change stays as it is: it delivered its first period only).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orchestration_projects", sa.Column("next_period_on", sa.Date(), nullable=True))
    op.execute(
        sa.text(
            "UPDATE orchestration_projects SET next_period_on = start_date "
            "WHERE state = 'running' AND cancel_requested_at IS NULL AND id IN "
            "(SELECT project_id FROM orchestration_steps WHERE step = 'strategy' AND state = 'done')"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("orchestration_projects") as batch:
        batch.drop_column("next_period_on")
