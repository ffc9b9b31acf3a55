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

The tables are those of the modules after the deal whose rows outgrow a page (`TABLES`;
`LEFT` names the others, whose rows fit one); client acquisition's are left as they are.
Nothing else changes: names, types, constraints and indexes are carried over, and the drift
check compares them with the models. Each table is rebuilt the way SQLite's documentation
gives for schema changes ALTER TABLE cannot make, in a few statements; Alembic's batch mode
(which reflects the table first, about ten times the statements: 0.7 s on every new
database) only for a CREATE TABLE this does not read.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables rebuilt: their rows are longer than a page (1 KB) in a real quarter (a client's
#: JSON, a piece's text and HTML, an email's raw bytes, a plan's PDF) and their short columns
#: are read on their own (a tick's scan, a state, a due time).
TABLES = (
    "billing_accounts",
    "billing_emails",
    "billing_invoices",
    "client_review_batches",
    "client_review_emails",
    "client_review_items",
    "delivery_deliveries",
    "delivery_emails",
    "onboarding_emails",
    "onboarding_intakes",
    "orchestration_projects",
    "orchestration_steps",
    "production_items",
    "production_versions",
    "qc_checks",
    "reporting_clients",
    "reporting_emails",
    "strategy_emails",
    "strategy_plans",
    "strategy_requests",
)
#: The other tables after the deal with a long column before a short one, left as they are:
#: their rows fit a page (measured on a 1,000-lead quarter: a few hundred bytes of long values
#: at most), so the order costs nothing, and each rebuild costs a new database about 8 ms.
LEFT = (
    "billing_events",
    "billing_holds",
    "billing_payments",
    "client_review_passwords",
    "client_review_replies",
    "client_review_withdrawals",
    "delivery_cancels",
    "delivery_holds",
    "learning_campaigns",
    "learning_weights",
    "onboarding_replies",
    "orchestration_switches",
    "production_alerts",
    "production_deliveries",
    "production_runs",
    "retention_clients",
    "retention_notices",
    "retention_signals",
)


#: Declared types SQLite may keep past the first page of a row.
LONG_TYPES = ("TEXT", "JSON", "BLOB")
#: What opens a table constraint (not a column) in a CREATE TABLE.
_CONSTRAINT_WORDS = ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN")


def long_last(columns: Sequence[tuple[str, bool]]) -> list[str]:
    """(name, is long) in the table's order -> the short names, then the long ones."""
    return [name for name, long in columns if not long] + [name for name, long in columns if long]


def split_top(body: str) -> list[str]:
    """A CREATE TABLE's parenthesised body split at its top-level commas (not those inside
    parentheses or quotes)."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for at, char in enumerate(body):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:at].strip())
            start = at + 1
    parts.append(body[start:].strip())
    return [part for part in parts if part]


def _name(definition: str) -> str | None:
    """The column a definition declares (None: a table constraint)."""
    if definition[0] in '"`[':
        close = "]" if definition[0] == "[" else definition[0]
        return definition[1 : definition.index(close, 1)]
    word = definition.split(None, 1)[0]
    return None if word.upper() in _CONSTRAINT_WORDS else word


def reordered(create: str, order: Sequence[str]) -> str | None:
    """`create` (a table's CREATE TABLE, as SQLite keeps it) with its column definitions in
    `order` and its table constraints after them, as ``CREATE TABLE "_aicmo_0027_new"``; None
    when it does not declare exactly the columns of `order`."""
    body = create[create.index("(") + 1 : create.rindex(")")]
    columns: dict[str, str] = {}
    constraints: list[str] = []
    for definition in split_top(body):
        name = _name(definition)
        if name is None:
            constraints.append(definition)
        else:
            columns[name] = definition
    if sorted(columns) != sorted(order) or len(columns) != len(order):
        return None
    parts = [columns[name] for name in order] + constraints
    return 'CREATE TABLE "_aicmo_0027_new" (\n\t' + ",\n\t".join(parts) + "\n)"


def _shape(bind: sa.Connection, table: str) -> dict[str, tuple[object, ...]]:
    rows = bind.exec_driver_sql(f'PRAGMA table_info("{table}")').all()
    return {row[1]: tuple(row[2:]) for row in rows}


def _rebuild(bind: sa.Connection, table: str, order: Sequence[str], before: dict[str, tuple[object, ...]]) -> bool:
    """SQLite's own way to change a table (https://www.sqlite.org/lang_altertable.html, "making
    other kinds of table schema changes"): a new table, the rows copied, the old one dropped,
    the new one renamed, the indexes made again. False (nothing done) when the table's CREATE
    TABLE is not one this can read. `before`: the table's `_shape` as it is."""
    create = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    new = reordered(str(create or ""), order)
    if new is None:
        return False
    indexes = (
        bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
        )
        .scalars()
        .all()
    )
    listed = ", ".join(f'"{name}"' for name in order)
    bind.exec_driver_sql(new)
    bind.exec_driver_sql(f'INSERT INTO "_aicmo_0027_new" ({listed}) SELECT {listed} FROM "{table}"')
    bind.exec_driver_sql(f'DROP TABLE "{table}"')
    bind.exec_driver_sql(f'ALTER TABLE "_aicmo_0027_new" RENAME TO "{table}"')
    for index in indexes:
        bind.exec_driver_sql(index)
    after = _shape(bind, table)
    if list(after) != list(order) or after != before:
        raise RuntimeError(f"0027: {table} came out of its rebuild changed: {before} -> {after}")
    return True


def upgrade() -> None:
    if context.is_offline_mode() or op.get_bind().dialect.name != "sqlite":
        return
    bind = op.get_bind()
    for table in TABLES:
        shape = _shape(bind, table)  # name -> (type, notnull, default, pk), in the table's order
        order = long_last([(name, str(about[0]).upper() in LONG_TYPES) for name, about in shape.items()])
        if order == list(shape):
            continue
        if not _rebuild(bind, table, order, shape):  # a CREATE TABLE written some other way: Alembic's batch
            with op.batch_alter_table(table, recreate="always", partial_reordering=[tuple(order)]):
                pass


def downgrade() -> None:
    """Nothing to undo: the order of the columns is how SQLite lays rows out, not the schema."""
