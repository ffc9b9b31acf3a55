"""Send-time facts and later outcomes apart; inbound messages acted on durably.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

- ``cam_outbound_emails``: what came back after sending (``bounce``, ``bounce_reason``,
  ``bounce_at``, ``complained_at``, ``delayed_at``, ``delay_note``) is kept beside what the
  server did at send time (``status``), which a bounce no longer rewrites; ``accepted_at``
  (the first 250, never cleared); ``replies``, every attempt's answer; a ``CANCELLED``
  status for emails the last check stopped before anything was sent (they were FAILED with
  "not sent: ..." before).
- ``cam_inbound_emails``: ``acted_on`` as a state of its own (``acted_at``: the lead
  decision, suppression and alert were written with it), ``set_aside`` (why a message was
  not read in full) and ``size``.

Existing rows are carried over: accepted_at from sent_at where a server accepted the email,
outcomes from the inbound reports tied to each email, acted_at from processed_at (the old
code acted right after classifying), CANCELLED from "not sent: ..." rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
OLD_STATUSES = "status IN ('QUEUED', 'SENDING', 'SENT', 'UNCONFIRMED', 'FAILED')"
NEW_STATUSES = "status IN ('QUEUED', 'SENDING', 'SENT', 'UNCONFIRMED', 'FAILED', 'CANCELLED')"


def upgrade() -> None:
    with op.batch_alter_table("cam_outbound_emails") as batch:
        batch.add_column(sa.Column("accepted_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("bounce", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("bounce_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("bounce_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("complained_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("delayed_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("delay_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("replies", sa.JSON(), nullable=True))
        batch.drop_constraint(op.f("ck_cam_outbound_emails_status"), type_="check")
        batch.create_check_constraint(op.f("ck_cam_outbound_emails_status"), NEW_STATUSES)
    with op.batch_alter_table("cam_inbound_emails") as batch:
        batch.add_column(sa.Column("acted_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("set_aside", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=True))
        batch.create_index(op.f("ix_cam_inbound_emails_acted_at"), ["acted_at"])

    outbound = sa.table(
        "cam_outbound_emails",
        sa.column("id"),
        sa.column("status"),
        sa.column("last_error"),
        sa.column("sent_at"),
        sa.column("accepted_at"),
        sa.column("bounce"),
        sa.column("bounce_reason"),
        sa.column("bounce_at"),
        sa.column("complained_at"),
    )
    inbound = sa.table(
        "cam_inbound_emails",
        sa.column("outbound_id"),
        sa.column("category"),
        sa.column("reason"),
        sa.column("processed_at"),
        sa.column("acted_at"),
    )
    op.execute(
        outbound.update()
        .where(sa.or_(outbound.c.status == "SENT", outbound.c.last_error == "soft bounce"))
        .values(accepted_at=outbound.c.sent_at)
    )
    op.execute(
        outbound.update()
        .where(outbound.c.status == "FAILED", outbound.c.last_error.like("not sent:%"))
        .values(status="CANCELLED")
    )
    for category, kind in (("bounce_soft", "soft"), ("bounce_hard", "hard")):  # hard last: it wins
        report = (
            sa.select(inbound.c.reason, inbound.c.processed_at)
            .where(inbound.c.outbound_id == outbound.c.id, inbound.c.category == category)
            .order_by(inbound.c.processed_at)
            .limit(1)
        )
        op.execute(
            outbound.update()
            .where(sa.exists(report))
            .values(
                bounce=kind,
                bounce_reason=report.with_only_columns(inbound.c.reason).scalar_subquery(),
                bounce_at=report.with_only_columns(inbound.c.processed_at).scalar_subquery(),
            )
        )
    complaint = (
        sa.select(sa.func.min(inbound.c.processed_at))
        .where(inbound.c.outbound_id == outbound.c.id, inbound.c.category == "complaint")
        .scalar_subquery()
    )
    op.execute(outbound.update().values(complained_at=complaint))
    op.execute(inbound.update().where(inbound.c.processed_at.is_not(None)).values(acted_at=inbound.c.processed_at))


def downgrade() -> None:
    outbound = sa.table("cam_outbound_emails", sa.column("status"))
    op.execute(outbound.update().where(outbound.c.status == "CANCELLED").values(status="FAILED"))
    with op.batch_alter_table("cam_inbound_emails") as batch:
        batch.drop_index(op.f("ix_cam_inbound_emails_acted_at"))
        batch.drop_column("size")
        batch.drop_column("set_aside")
        batch.drop_column("acted_at")
    with op.batch_alter_table("cam_outbound_emails") as batch:
        batch.drop_constraint(op.f("ck_cam_outbound_emails_status"), type_="check")
        batch.create_check_constraint(op.f("ck_cam_outbound_emails_status"), OLD_STATUSES)
        batch.drop_column("replies")
        batch.drop_column("delay_note")
        batch.drop_column("delayed_at")
        batch.drop_column("complained_at")
        batch.drop_column("bounce_at")
        batch.drop_column("bounce_reason")
        batch.drop_column("bounce")
        batch.drop_column("accepted_at")
