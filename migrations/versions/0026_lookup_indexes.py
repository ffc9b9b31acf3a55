"""Two lookups that scanned a whole table.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06

- ``ix_production_items_client_ref_period``: the tokens a client's period used, asked before each
  draft is written (a scan of every item ever planned without it);
- ``ix_cam_outbound_emails_recipient``: the latest email sent to an address, asked for a bounce or
  a reply that does not carry our Message-ID (a scan of every email ever sent without it).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_production_items_client_ref_period", "production_items", ["client_ref", "period"])
    op.create_index("ix_cam_outbound_emails_recipient", "cam_outbound_emails", ["recipient"])


def downgrade() -> None:
    op.drop_index("ix_cam_outbound_emails_recipient", table_name="cam_outbound_emails")
    op.drop_index("ix_production_items_client_ref_period", table_name="production_items")
