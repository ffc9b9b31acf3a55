"""Alembic environment: one set of migrations for SQLite and PostgreSQL.

Normally driven from code (`aicmo_actors.storage.schema`; `python run.py migrate`), which
hands over an open connection in ``config.attributes["connection"]``. Run by the plain
``alembic`` command instead (with a config file naming ``script_location = migrations``),
the URL comes from ``-x url=...`` or AICMO_DATABASE_URL.

Autogenerate renders batch operations, so a generated migration also runs on SQLite,
which cannot ALTER most things in place.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from aicmo_actors.storage.engine import database_url_from_env, make_engine
from aicmo_actors.storage.schema import load_metadata

config = context.config
target_metadata = load_metadata()


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or database_url_from_env()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(_url(), sqlite_foreign_keys=False, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
