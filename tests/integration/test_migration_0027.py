"""Migration 0027: on SQLite each after-deal table whose rows outgrow a page keeps its short
columns before its long ones (the others are listed as left on purpose), every row and
constraint survives the rebuild; PostgreSQL is left as it is (both databases)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from aicmo_actors.storage import client_mail
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import MIGRATIONS_DIR, check_drift, downgrade, load_metadata, migrate, upgrade

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

AT = datetime(2027, 1, 4, 9, tzinfo=UTC)
#: Modules whose tables 0027 leaves in their declared order (client acquisition and the runtime).
UNTOUCHED = ("cam_", "identity_", "runtime_", "alembic_")


def _migration() -> Any:
    path = Path(MIGRATIONS_DIR) / "versions" / "0027_long_columns_last.py"
    spec = importlib.util.spec_from_file_location("migration_0027", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _email(n: int) -> EmailMessage:
    message = EmailMessage()
    message["To"] = f"client{n}@example.org"
    message["Subject"] = f"Your piece {n}"
    message["Message-ID"] = f"<piece{n}@agency.example>"
    message.set_content("Attached.\n")
    message.add_attachment(b"%PDF-1.4 " + bytes(range(256)) * 200, maintype="application", subtype="pdf")
    return message


def _fill(conn: sa.Connection) -> None:
    """Rows in two rebuilt tables, with the long values (an email's 50 KB) the rebuild moves."""
    emails = load_metadata().tables["delivery_emails"]
    deliveries = load_metadata().tables["delivery_deliveries"]
    for n in range(3):
        key = f"p1:item{n}:1:email"
        assert client_mail.queue_in(conn, emails, key=key, project_id="p1", kind="delivery", message=_email(n), now=AT)
        conn.execute(
            deliveries.insert().values(
                key=key,
                project_id="p1",
                item_id=f"item{n}",
                version=1,
                method="email",
                client={"company": "Acme", "n": n},
                title=f"Piece {n}",
                type="blog_post",
                channel="blog",
                text="words " * 500,
                html="<p>words</p>" * 300,
                state="queued" if n else "delivered",
                attempts=n,
                next_attempt_at=AT,
                receipt=None if n else "250 ok",
                error=None,
                permanent=False,
                rounds=0,
                created_at=AT,
                delivered_at=None if n else AT,
                client_ref="c1",
            )
        )


def _rows(conn: sa.Connection) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name in ("delivery_emails", "delivery_deliveries"):
        rows = conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY id")).mappings().all()
        out[name] = [dict(row) for row in rows]
    return out


def _long(declared: str) -> bool:
    return declared.upper() in ("TEXT", "JSON", "BLOB")


def _out_of_order(conn: sa.Connection) -> dict[str, list[str]]:
    """Each after-deal table whose long columns do not all come after its short ones, unless
    0027 leaves it so on purpose (`LEFT`: its rows fit a page)."""
    found = {}
    left = set(_migration().LEFT)
    for table in conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars():
        if table.startswith(UNTOUCHED) or table.startswith("sqlite_") or table in left:
            continue
        columns = [(row[1], _long(row[2])) for row in conn.execute(sa.text(f"PRAGMA table_info({table})"))]
        longs = [i for i, (_, long) in enumerate(columns) if long]
        if longs and any(not long for _, long in columns[longs[0] :]):
            found[table] = [name for name, _ in columns]
    return found


def test_long_last_keeps_the_order_within_each_kind() -> None:
    order = _migration().long_last([("id", False), ("raw", True), ("status", False), ("error", True), ("at", False)])
    assert order == ["id", "status", "at", "raw", "error"]


def test_a_create_table_is_reordered_with_its_constraints_after_its_columns() -> None:
    migration = _migration()
    create = (
        'CREATE TABLE "t" (\n\tid INTEGER NOT NULL, \n\t"key" VARCHAR(200) NOT NULL, \n\tbody TEXT, \n\t'
        "state VARCHAR(16) NOT NULL DEFAULT 'a,b', \n\tCONSTRAINT pk_t PRIMARY KEY (id), \n\t"
        "CONSTRAINT ck_t_state CHECK (state IN ('a', 'b')), \n\tCONSTRAINT uq_t_key UNIQUE (\"key\")\n)"
    )
    new = migration.reordered(create, ["id", "key", "state", "body"])
    assert new == (
        'CREATE TABLE "_aicmo_0027_new" (\n\tid INTEGER NOT NULL,\n\t"key" VARCHAR(200) NOT NULL,\n\t'
        "state VARCHAR(16) NOT NULL DEFAULT 'a,b',\n\tbody TEXT,\n\tCONSTRAINT pk_t PRIMARY KEY (id),\n\t"
        "CONSTRAINT ck_t_state CHECK (state IN ('a', 'b')),\n\tCONSTRAINT uq_t_key UNIQUE (\"key\")\n)"
    )
    # Not the columns asked for: not read (the migration then uses Alembic's batch mode).
    assert migration.reordered(create, ["id", "key", "state"]) is None
    assert migration.reordered(create, ["id", "key", "state", "body", "other"]) is None


def test_every_table_after_the_deal_is_rebuilt_or_left_on_purpose() -> None:
    migration = _migration()
    after_deal = {name for name in load_metadata().tables if not name.startswith(UNTOUCHED)}
    assert not set(migration.TABLES) & set(migration.LEFT)
    assert set(migration.TABLES) | set(migration.LEFT) <= after_deal


async def test_rows_and_constraints_survive_and_long_columns_end_each_row(database_url: str) -> None:
    await migrate(database_url, "0026")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_fill)
        async with engine.connect() as conn:
            before = await conn.run_sync(_rows)
        await upgrade(database_url)
        await engine.dispose()  # SQLite: the tables were rebuilt under another connection
        async with engine.connect() as conn:
            after = await conn.run_sync(_rows)
            sqlite = conn.dialect.name == "sqlite"
            disorder = await conn.run_sync(_out_of_order) if sqlite else {}
            plan = (
                "EXPLAIN QUERY PLAN SELECT id FROM delivery_deliveries WHERE state = 'queued' "
                "AND next_attempt_at <= '2027-02-01'"
            )
            planned = (await conn.execute(sa.text(plan))).all() if sqlite else []
        assert after == before  # every row, every value, under the same names
        assert len(after["delivery_emails"][0]["raw"]) > 50_000
        if sqlite:
            assert disorder == {}, f"declare short columns first, or rebuild these tables: {disorder}"
            assert any("ix_delivery_deliveries_state_next_attempt_at" in str(row) for row in planned)
        assert await check_drift(database_url) == []
        async with engine.begin() as conn:  # the unique key still holds
            emails = load_metadata().tables["delivery_emails"]
            with pytest.raises(IntegrityError):
                await conn.execute(
                    emails.insert().values(
                        idempotency_key="p1:item0:1:email",
                        project_id="p1",
                        kind="delivery",
                        to_address="x@example.org",
                        subject="again",
                        message_id="<again@agency.example>",
                        raw=b"x",
                        status="queued",
                        attempts=0,
                        next_attempt_at=AT,
                        created_at=AT,
                    )
                )
        await downgrade(database_url, "0026")  # nothing to undo: the rows stay
        async with engine.connect() as conn:
            assert await conn.run_sync(_rows) == before
    finally:
        await engine.dispose()
