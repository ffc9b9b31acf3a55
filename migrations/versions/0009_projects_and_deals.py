"""After the deal, part 1: deals, project sagas.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

- ``cam_deals``: a lead that signed, the client it became and the package it bought
  (`python run.py deal won`); ``cam_leads.state`` gains ``client``.
- ``orchestration_projects``, ``orchestration_steps``, ``orchestration_project_events``: one
  saga per signed deal, its steps (what was asked, what it waits for, until when) and its
  history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)
OLD_STATES = (
    "state IN ('active', 'paused', 'replied', 'not_interested', 'unsubscribed', 'bounced', 'completed', 'stopped')"
)
NEW_STATES = (
    "state IN ('active', 'paused', 'replied', 'not_interested', 'unsubscribed', 'bounced', 'completed', 'stopped', "
    "'client')"
)


def upgrade() -> None:
    with op.batch_alter_table("cam_leads") as batch:
        batch.drop_constraint(op.f("ck_cam_leads_state"), type_="check")
        batch.create_check_constraint(op.f("ck_cam_leads_state"), NEW_STATES)
    op.create_table(
        "cam_deals",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("lead_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("company_domain", sa.String(length=255), nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("package_name", sa.String(length=100), nullable=False),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("signed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("signed_by", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("opened_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["cam_leads.id"], name=op.f("fk_cam_deals_lead_id_cam_leads")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["cam_campaigns.id"], name=op.f("fk_cam_deals_campaign_id_cam_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cam_deals")),
        sa.UniqueConstraint("lead_id", name=op.f("uq_cam_deals_lead_id")),
        sa.UniqueConstraint("client_ref", name=op.f("uq_cam_deals_client_ref")),
    )
    op.create_index(op.f("ix_cam_deals_company_domain"), "cam_deals", ["company_domain"])
    op.create_table(
        "orchestration_projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("company", sa.String(length=300), nullable=False),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("package_name", sa.String(length=100), nullable=False),
        sa.Column("package", sa.JSON(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("cancel_requested_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("cancelled_by", sa.String(length=200), nullable=True),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestration_projects")),
        sa.UniqueConstraint("deal_id", name=op.f("uq_orchestration_projects_deal_id")),
    )
    op.create_index(op.f("ix_orchestration_projects_state"), "orchestration_projects", ["state"])
    op.create_table(
        "orchestration_steps",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("command_sent_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("commands_sent", sa.Integer(), nullable=False),
        sa.Column("waiting_for", sa.Text(), nullable=True),
        sa.Column("deadline_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("overdue_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("done_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("compensated_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestration_steps")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_orchestration_steps_idempotency_key")),
        sa.UniqueConstraint("project_id", "step", name=op.f("uq_orchestration_steps_project_id_step")),
    )
    op.create_index(
        op.f("ix_orchestration_steps_state_command_sent_at"), "orchestration_steps", ["state", "command_sent_at"]
    )
    op.create_table(
        "orchestration_project_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("at", UTC_TIMESTAMP, nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestration_project_events")),
    )
    op.create_index(op.f("ix_orchestration_project_events_project_id"), "orchestration_project_events", ["project_id"])


def downgrade() -> None:
    op.drop_table("orchestration_project_events")
    op.drop_table("orchestration_steps")
    op.drop_table("orchestration_projects")
    op.drop_table("cam_deals")
    op.execute("UPDATE cam_leads SET state = 'stopped' WHERE state = 'client'")
    with op.batch_alter_table("cam_leads") as batch:
        batch.drop_constraint(op.f("ck_cam_leads_state"), type_="check")
        batch.create_check_constraint(op.f("ck_cam_leads_state"), OLD_STATES)
