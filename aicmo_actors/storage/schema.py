"""Alembic, driven from code: upgrade, downgrade, where the database is, and drift checks.

There is no alembic.ini: the Config is built here and points at the top-level
``migrations/`` folder. `ensure_schema` is what the service calls on start: an embedded
SQLite database is upgraded in place; PostgreSQL behind head is refused with a one-line
message naming ``python run.py migrate`` (several services may share it, and an operator
decides when its schema changes).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import CheckConstraint, Connection, MetaData, inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from aicmo_actors.storage.engine import _sqlite_in_memory, make_engine, parse_url, unavailable
from aicmo_actors.storage.metadata import metadata

#: Where the migration scripts live (env.py, versions/).
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

#: Modules that declare tables on the shared metadata. A module adding tables adds itself here
#: (by name, so storage never imports a business module at import time).
TABLE_MODULES: tuple[str, ...] = (
    "aicmo_actors.storage.runtime_tables",
    "aicmo_actors.cam.tables",
    "aicmo_actors.identity.tables",
    "aicmo_actors.orchestration.tables",
    "aicmo_actors.observability.tables",
    "aicmo_actors.onboarding.tables",
    "aicmo_actors.strategy.tables",
    "aicmo_actors.production.tables",
    "aicmo_actors.qc.tables",
    "aicmo_actors.client_review.tables",
    "aicmo_actors.delivery.tables",
    "aicmo_actors.billing.tables",
    "aicmo_actors.reporting.tables",
    "aicmo_actors.retention.tables",
    "aicmo_actors.learning.tables",
)

MIGRATE_COMMAND = "python run.py migrate"
#: How long a migration waits for SQLite's write lock (another migration may be running).
MIGRATION_BUSY_TIMEOUT_MS = 120_000


class SchemaError(Exception):
    """The database schema does not match what this code needs (one-line message)."""


class SchemaBehindError(SchemaError):
    """The database is behind the code's head revision and will not be upgraded implicitly."""


class SchemaUnknownError(SchemaError):
    """The database is at a revision this code does not know (written by a newer version?)."""


@dataclass(frozen=True)
class Migration:
    """What a migrate call did: the revision before and after (None: empty schema)."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def load_metadata() -> MetaData:
    """The shared MetaData with every module's tables declared on it."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return metadata


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for ``migrations/``; with `connection`, env.py migrates on it."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise SchemaError(f"migrations not found at {MIGRATIONS_DIR}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the migration scripts."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - there is always 0001
        raise SchemaError("no migration scripts found")
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@asynccontextmanager
async def _migration_engine(target: str | URL | AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine to migrate with: our own one (SQLite foreign keys off) unless we must share."""
    if isinstance(target, AsyncEngine):
        url = target.url
        if url.get_backend_name() != "sqlite" or _sqlite_in_memory(url):
            yield target
            return
    else:
        url = parse_url(target)
    # SQLite batch mode copies and drops tables; foreign-key enforcement would block that.
    # (Checked after the migration with PRAGMA foreign_key_check.)
    # A second `migrate` at once waits for the first to finish (SQLite: for its write lock; the
    # whole upgrade takes a second or more on a busy machine, past the usual busy timeout).
    engine = make_engine(
        url, sqlite_foreign_keys=False, sqlite_busy_timeout_ms=MIGRATION_BUSY_TIMEOUT_MS, poolclass=NullPool
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def _run(target: str | URL | AsyncEngine, work: Any, *args: Any) -> Any:
    async with _migration_engine(target) as engine:
        conn = engine.connect()
        try:
            await conn.start()
        except (OSError, TimeoutError, DBAPIError) as exc:
            raise unavailable(engine.url, exc) from exc
        try:
            async with conn.begin():
                return await conn.run_sync(work, *args)
        finally:
            await conn.close()


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise SchemaError(f"migration left rows with dangling foreign keys: {broken[:5]}")


def _resolve(script: ScriptDirectory, rev: str) -> str | None:
    """A full revision id for `rev` ("head", "base", an id or a unique prefix of one)."""
    if rev == "base":
        return None
    if rev == "head":
        return script.get_current_head()
    try:
        revision = script.get_revision(rev)
    except CommandError as exc:
        raise SchemaError(f"unknown revision {rev!r}: {exc}") from None
    if revision is None:
        raise SchemaError(f"unknown revision {rev!r}")
    return revision.revision


#: pg_advisory_xact_lock key: two `migrate` runs at once take turns instead of colliding.
_PG_MIGRATION_LOCK = 0x41494D4F  # "AIMO"


def _migrate_sync(connection: Connection, rev: str) -> Migration:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    # (SQLite needs nothing: the transaction began IMMEDIATE, so it already holds the write lock.)
    config = alembic_config(connection)
    script = ScriptDirectory.from_config(config)
    before = _current(connection)
    if before is not None and before not in {r.revision for r in script.walk_revisions()}:
        raise SchemaUnknownError(_unknown_message(before))
    target = _resolve(script, rev)
    if target == before:
        return Migration(before, before)
    below_current = before is not None and {r.revision for r in script.iterate_revisions(before, "base")} | {None}
    if below_current and target in below_current:
        command.downgrade(config, target or "base")
    else:
        command.upgrade(config, target or "head")
    _check_foreign_keys(connection)
    return Migration(before, _current(connection))


async def migrate(target: str | URL | AsyncEngine, rev: str = "head") -> Migration:
    """Move the schema to `rev` ("head", "base", a revision id), up or down as needed."""
    result: Migration = await _run(target, _migrate_sync, rev)
    return result


async def upgrade(target: str | URL | AsyncEngine, rev: str = "head") -> Migration:
    """Upgrade the schema to `rev` (default the newest)."""
    return await migrate(target, rev)


async def downgrade(target: str | URL | AsyncEngine, rev: str = "base") -> Migration:
    """Downgrade the schema to `rev` ("base": drop every table the migrations made)."""
    return await migrate(target, rev)


async def current_revision(target: str | URL | AsyncEngine) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    result: str | None = await _run(target, _current)
    return result


def _unknown_message(current: str) -> str:
    return (
        f"the database schema is at revision {current}, which this code does not know "
        "(written by a newer version?): run the newer version or restore a matching backup"
    )


async def ensure_schema(engine: AsyncEngine) -> str:
    """Make sure the schema is at head before the service starts; return the head revision.

    SQLite behind head is upgraded here. PostgreSQL behind head raises `SchemaBehindError`
    (one line naming ``python run.py migrate``); an unknown revision raises
    `SchemaUnknownError` on both.
    """
    head = head_revision()
    current = await current_revision(engine)
    if current == head:
        return head
    script = ScriptDirectory.from_config(alembic_config())
    if current is not None and current not in {r.revision for r in script.walk_revisions()}:
        raise SchemaUnknownError(_unknown_message(current))
    if engine.url.get_backend_name() == "sqlite":
        await upgrade(engine, "head")
        return head
    where = "has no schema yet" if current is None else f"is at revision {current}"
    raise SchemaBehindError(f"the database {where} and this code needs revision {head}: run `{MIGRATE_COMMAND}`")


def _drift_sync(connection: Connection) -> list[str]:
    target = load_metadata()
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    differences = [_describe(diff) for diff in compare_metadata(context, target)]
    differences.extend(_check_constraint_drift(connection, target))
    return differences


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(_describe(item) for item in diff)
    return " ".join(str(part) for part in diff)


_LITERAL = re.compile(r"'([^']*)'")


def _check_constraint_drift(connection: Connection, target: MetaData) -> list[str]:
    """CHECK constraints, which Alembic's autogenerate does not compare: names and allowed values."""
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    differences: list[str] = []
    for table in target.sorted_tables:
        if table.name not in existing:
            continue
        in_db = {
            str(ck["name"]): set(_LITERAL.findall(str(ck["sqltext"])))
            for ck in inspector.get_check_constraints(table.name)
        }
        in_model = {
            str(ck.name): set(_LITERAL.findall(str(ck.sqltext)))
            for ck in table.constraints
            if isinstance(ck, CheckConstraint) and ck.name is not None
        }
        for name in sorted(in_model.keys() | in_db.keys()):
            if name not in in_db:
                differences.append(f"add_check_constraint {table.name} {name}")
            elif name not in in_model:
                differences.append(f"remove_check_constraint {table.name} {name}")
            elif in_db[name] != in_model[name]:
                differences.append(
                    f"modify_check_constraint {table.name} {name}: database allows "
                    f"{sorted(in_db[name])}, models allow {sorted(in_model[name])}"
                )
    return differences


async def check_drift(target: str | URL | AsyncEngine) -> list[str]:
    """Differences between the declared tables and the database's schema ([] when none).

    The equivalent of ``alembic check`` (plus CHECK constraints): run it on a database at
    head to prove the migrations create exactly what the models declare.
    """
    result: list[str] = await _run(target, _drift_sync)
    return result
