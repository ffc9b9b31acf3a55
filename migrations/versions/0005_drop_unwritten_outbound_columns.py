"""Drop three columns of `cam_outbound_emails` that nothing ever wrote.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

`in_reply_to` and `references_header` were meant to keep a follow-up's threading headers,
but those are read from the earlier steps' rows when the email is built; `fencing_token` was
meant to record the lease token of the last move, but the claim is fenced by its WHERE
clause and never wrote it. All three were NULL on every row. The downgrade adds them back
(empty, as they always were).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: RFC 5322 line limit: a Message-ID header value cannot be longer (cam.tables.MESSAGE_ID).
MESSAGE_ID = 998


def upgrade() -> None:
    with op.batch_alter_table("cam_outbound_emails") as batch:
        batch.drop_column("in_reply_to")
        batch.drop_column("references_header")
        batch.drop_column("fencing_token")


def downgrade() -> None:
    with op.batch_alter_table("cam_outbound_emails") as batch:
        batch.add_column(sa.Column("in_reply_to", sa.String(length=MESSAGE_ID), nullable=True))
        batch.add_column(sa.Column("references_header", sa.Text(), nullable=True))
        batch.add_column(sa.Column("fencing_token", sa.BigInteger(), nullable=True))
