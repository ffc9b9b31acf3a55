"""Holds on a client's deliveries (billing's hold policy).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05

- ``delivery_holds``: one row per hold on a client's deliveries (released_at NULL while it lasts);
- ``delivery_deliveries.client_ref``: the client a delivery goes to (what a hold names), filled
  from the row's ``client`` JSON for the deliveries recorded before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delivery_holds",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("client_ref", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("held_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("released_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_holds")),
    )
    op.create_index(op.f("ix_delivery_holds_client_ref"), "delivery_holds", ["client_ref"], unique=False)
    op.add_column("delivery_deliveries", sa.Column("client_ref", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_delivery_deliveries_client_ref"), "delivery_deliveries", ["client_ref"], unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, client FROM delivery_deliveries")).all()
    for row_id, client in rows:
        value = json.loads(client) if isinstance(client, str) else client
        ref = (value or {}).get("client_ref")
        if ref:
            bind.execute(
                sa.text("UPDATE delivery_deliveries SET client_ref = :ref WHERE id = :id"),
                {"ref": str(ref), "id": row_id},
            )


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_deliveries_client_ref"), table_name="delivery_deliveries")
    with op.batch_alter_table("delivery_deliveries") as batch:
        batch.drop_column("client_ref")
    op.drop_index(op.f("ix_delivery_holds_client_ref"), table_name="delivery_holds")
    op.drop_table("delivery_holds")
