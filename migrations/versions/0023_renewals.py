"""Renewals of a client's contract.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05

- ``cam_renewals``: a deal's contract renewed (`python run.py deal renew`), announced to
  orchestration until it answers;
- ``orchestration_projects.renewals``, ``billing_accounts.renewals``,
  ``retention_contracts.renewals``: how many of the deal's renewals each module applied (0 for
  every row before this change: there were none);
- ``retention_renewals.contract_end``: the end a reminder was about, now part of its key (a
  renewed contract has a new end, and its reminders again). Filled from the contract's end for
  the reminders recorded before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cam_renewals",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("renewed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("renewed_by", sa.String(length=200), nullable=False),
        sa.Column("applied_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["deal_id"], ["cam_deals.id"], name=op.f("fk_cam_renewals_deal_id_cam_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cam_renewals")),
        sa.UniqueConstraint("deal_id", "number", name=op.f("uq_cam_renewals_deal_id_number")),
    )
    op.create_index(op.f("ix_cam_renewals_applied_at"), "cam_renewals", ["applied_at"], unique=False)
    for table in ("orchestration_projects", "billing_accounts", "retention_contracts"):
        op.add_column(table, sa.Column("renewals", sa.Integer(), nullable=False, server_default="0"))

    op.add_column("retention_renewals", sa.Column("contract_end", sa.Date(), nullable=True))
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE retention_renewals SET contract_end = (SELECT c.ends_on FROM retention_contracts c "
            "WHERE c.deal_id = retention_renewals.deal_id)"
        )
    )
    # A reminder without its contract (never written so): its day plus its days is the end it was about.
    rows = bind.execute(
        sa.text("SELECT deal_id, days, due_on FROM retention_renewals WHERE contract_end IS NULL")
    ).all()
    for deal_id, days, due_on in rows:
        due = due_on if isinstance(due_on, date) else date.fromisoformat(str(due_on))
        bind.execute(
            sa.text("UPDATE retention_renewals SET contract_end = :end WHERE deal_id = :deal AND days = :days"),
            {"end": due + timedelta(days=int(days)), "deal": deal_id, "days": days},
        )
    with op.batch_alter_table("retention_renewals") as batch:
        batch.alter_column("contract_end", existing_type=sa.Date(), nullable=False)
        batch.drop_constraint("pk_retention_renewals", type_="primary")
        batch.create_primary_key("pk_retention_renewals", ["deal_id", "contract_end", "days"])


def downgrade() -> None:
    # Only a contract's latest reminders of each kind are kept (the key had no end before).
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "DELETE FROM retention_renewals WHERE contract_end < (SELECT MAX(r.contract_end) FROM retention_renewals r "
            "WHERE r.deal_id = retention_renewals.deal_id)"
        )
    )
    with op.batch_alter_table("retention_renewals") as batch:
        batch.drop_constraint("pk_retention_renewals", type_="primary")
        batch.create_primary_key("pk_retention_renewals", ["deal_id", "days"])
        batch.drop_column("contract_end")
    for table in ("retention_contracts", "billing_accounts", "orchestration_projects"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("renewals")
    op.drop_index(op.f("ix_cam_renewals_applied_at"), table_name="cam_renewals")
    op.drop_table("cam_renewals")
