"""The saga's third step, production, for projects opened before it existed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Projects now run onboarding -> strategy -> production (the period's work through quality
control, the client's review and delivery). A project opened earlier has no production step:

- one that had finished ("delivering": onboarded, plan approved) gets the step as started
  and not yet told, and is running again: the saga tells production when it starts, with the
  approved plan that the strategy step's result holds (a plan approved before the plan's items
  were recorded there gives production no items: it reports the project as failed, and a
  person sees why in `python run.py project ID`);
- a running or cancelling project gets it pending (a cancelled one never starts it);
- a compensated project gets it skipped.

No schema change: rows only. Downgrade removes the step rows and puts "delivering" back.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STEP = "production"
POSITION = 2


def upgrade() -> None:
    conn = op.get_bind()
    projects = conn.execute(sa.text("SELECT id, state FROM orchestration_projects")).all()
    have = {
        row.project_id
        for row in conn.execute(sa.text("SELECT project_id FROM orchestration_steps WHERE step = :s"), {"s": STEP})
    }
    for project_id, state in projects:
        if project_id in have:
            continue
        step_state = {"delivering": "started", "compensated": "skipped"}.get(state, "pending")
        conn.execute(
            sa.text(
                "INSERT INTO orchestration_steps (project_id, step, position, state, idempotency_key, commands_sent) "
                "VALUES (:p, :s, :pos, :st, :k, 0)"
            ),
            {"p": project_id, "s": STEP, "pos": POSITION, "st": step_state, "k": f"{project_id}:{STEP}"},
        )
        if state == "delivering":
            conn.execute(
                sa.text(
                    "UPDATE orchestration_projects SET state = 'running', step = :s, finished_at = NULL WHERE id = :p"
                ),
                {"s": STEP, "p": project_id},
            )


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE orchestration_projects SET state = 'delivering', step = 'delivery' WHERE id IN "
            "(SELECT project_id FROM orchestration_steps WHERE step = :s AND state IN ('started', 'waiting', 'done'))"
        ),
        {"s": STEP},
    )
    conn.execute(sa.text("DELETE FROM orchestration_steps WHERE step = :s"), {"s": STEP})
