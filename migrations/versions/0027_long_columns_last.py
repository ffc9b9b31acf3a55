"""SQLite: each row's short columns before its long ones.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06

SQLite keeps a row's columns in the order the table declares them, and a row longer than a
page (1 KB in our databases) continues on overflow pages, chained one after the other. A
column that comes after a long one (an email's raw bytes, a piece's text and HTML, a client's
JSON) is reached only by reading every overflow page before it: checking the status of a
delivery email walked past its 60 KB of attachments. Each table below is rebuilt (Alembic's
batch "move and copy") with its short columns first, in their order, then its long ones
(TEXT, JSON, BLOB), in theirs. A table already in that order is left as it is, as is
PostgreSQL, which keeps long values out of line on its own (TOAST).

The tables are those of the modules after the deal; client acquisition's are left as they
are. Nothing else changes: names, types, constraints and indexes are carried over, and the
drift check compares them with the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "billing_accounts",
    "billing_emails",
    "billing_events",
    "billing_holds",
    "billing_invoices",
    "billing_payments",
    "client_review_batches",
    "client_review_emails",
    "client_review_items",
    "client_review_passwords",
    "client_review_replies",
    "client_review_withdrawals",
    "delivery_cancels",
    "delivery_deliveries",
    "delivery_emails",
    "delivery_holds",
    "learning_campaigns",
    "learning_weights",
    "onboarding_emails",
    "onboarding_intakes",
    "onboarding_replies",
    "orchestration_projects",
    "orchestration_steps",
    "orchestration_switches",
    "production_alerts",
    "production_deliveries",
    "production_items",
    "production_runs",
    "production_versions",
    "qc_checks",
    "reporting_clients",
    "reporting_emails",
    "retention_clients",
    "retention_notices",
    "retention_signals",
    "strategy_emails",
    "strategy_plans",
    "strategy_requests",
)


def _long(column_type: sa.types.TypeEngine[object]) -> bool:
    return isinstance(column_type, (sa.Text, sa.JSON, sa.LargeBinary))


def long_last(columns: Sequence[tuple[str, bool]]) -> list[str]:
    """(name, is long) in the table's order -> the short names, then the long ones."""
    return [name for name, long in columns if not long] + [name for name, long in columns if long]


def upgrade() -> None:
    if context.is_offline_mode() or op.get_bind().dialect.name != "sqlite":
        return
    inspector = sa.inspect(op.get_bind())
    for table in TABLES:
        columns = [(c["name"], _long(c["type"])) for c in inspector.get_columns(table)]
        order = long_last(columns)
        if order == [name for name, _ in columns]:
            continue
        with op.batch_alter_table(table, recreate="always", partial_reordering=[tuple(order)]):
            pass


def downgrade() -> None:
    """Nothing to undo: the order of the columns is how SQLite lays rows out, not the schema."""
