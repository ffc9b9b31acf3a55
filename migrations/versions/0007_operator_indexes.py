"""Indexes for the control API's reads: a campaign's leads by state, a lead's alerts, usage totals.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Measured by `python -m bench api` on 100,000 leads: a filtered page of the lead list read
the whole campaign and sorted it (18-27 ms on SQLite, under 0.1 ms with the index); a
lead's history scanned every alert; usage totals read every usage row.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_cam_leads_campaign_id_state_id"), "cam_leads", ["campaign_id", "state", "id"])
    op.create_index(op.f("ix_cam_alerts_lead_id"), "cam_alerts", ["lead_id"])
    op.create_index(
        op.f("ix_observability_usage_module_kind_at_day_subject_quantity"),
        "observability_usage",
        ["module", "kind", "at", "day", "subject", "quantity"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_observability_usage_module_kind_at_day_subject_quantity"), "observability_usage")
    op.drop_index(op.f("ix_cam_alerts_lead_id"), "cam_alerts")
    op.drop_index(op.f("ix_cam_leads_campaign_id_state_id"), "cam_leads")
