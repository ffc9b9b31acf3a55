"""Migrations on SQLite and PostgreSQL: from empty, down to base and up again, no drift."""

from __future__ import annotations

from datetime import UTC, date, datetime

import anyio
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.storage.engine import backend_of, make_engine
from aicmo_actors.storage.schema import (
    SchemaBehindError,
    SchemaError,
    SchemaUnknownError,
    check_drift,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    load_metadata,
    migrate,
    upgrade,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_creates_every_declared_table(database_url: str) -> None:
    assert await current_revision(database_url) is None
    result = await upgrade(database_url)
    assert (result.before, result.after) == (None, head_revision())
    assert await _tables(database_url) == set(load_metadata().tables) | {"alembic_version"}
    again = await upgrade(database_url)
    assert not again.changed


async def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    await upgrade(database_url)
    down = await downgrade(database_url, "base")
    assert (down.before, down.after) == (head_revision(), None)
    assert await _tables(database_url) <= {"alembic_version"}
    up = await migrate(database_url, "0001")
    assert (up.before, up.after) == (None, "0001")
    rest = await upgrade(database_url)
    assert (rest.before, rest.after) == ("0001", head_revision())
    assert await check_drift(database_url) == []


async def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    await upgrade(database_url)
    assert await check_drift(database_url) == []


async def test_drift_is_reported(database_url: str) -> None:
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP INDEX ix_cam_leads_next_action_at"))
            await conn.execute(text("CREATE TABLE stray (x INTEGER)"))
            if backend_of(database_url) == "postgresql":
                # SQLite cannot alter a CHECK constraint in place; PostgreSQL shows the check.
                await conn.execute(text("ALTER TABLE cam_campaigns DROP CONSTRAINT ck_cam_campaigns_status"))
                await conn.execute(
                    text(
                        "ALTER TABLE cam_campaigns ADD CONSTRAINT ck_cam_campaigns_status CHECK (status IN ('active'))"
                    )
                )
    finally:
        await engine.dispose()
    drift = "\n".join(await check_drift(database_url))
    assert "add_index" in drift and "ix_cam_leads_next_action_at" in drift
    assert "remove_table" in drift and "stray" in drift
    if backend_of(database_url) == "postgresql":
        assert "modify_check_constraint cam_campaigns ck_cam_campaigns_status" in drift


async def test_ensure_schema_upgrades_sqlite_and_refuses_postgresql(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        if backend_of(database_url) == "sqlite":
            assert await ensure_schema(engine) == head_revision()
            assert await current_revision(database_url) == head_revision()
        else:
            with pytest.raises(SchemaBehindError) as info:
                await ensure_schema(engine)
            message = str(info.value)
            assert "`python run.py migrate`" in message and "\n" not in message
            assert await current_revision(database_url) is None
            await upgrade(database_url)
            assert await ensure_schema(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_a_revision_from_the_future_is_refused(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaUnknownError, match="9999"):
        await ensure_schema(engine)
    with pytest.raises(SchemaUnknownError):
        await upgrade(engine)


async def test_unknown_target_revision_is_a_schema_error(database_url: str) -> None:
    with pytest.raises(SchemaError, match="unknown revision"):
        await migrate(database_url, "nope")


async def test_two_migrations_at_once_take_turns(database_url: str) -> None:
    results = []

    async def run() -> None:
        results.append(await upgrade(database_url))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        tg.start_soon(run)
    assert sorted((r.before or "", r.after) for r in results) == [
        ("", head_revision()),
        (head_revision(), head_revision()),
    ]


async def test_0022_gives_running_projects_whose_plan_is_approved_a_day_to_look_at_later_periods(
    database_url: str,
) -> None:
    await migrate(database_url, "0021")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for n, (state, strategy, cancel) in enumerate(
                [
                    ("running", "done", None),
                    ("running", "waiting", None),
                    ("delivered", "done", None),
                    ("running", "done", datetime(2026, 3, 10, 9, tzinfo=UTC)),
                ],
                start=1,
            ):
                await conn.execute(
                    text(
                        "INSERT INTO orchestration_projects (id, deal_id, client_ref, company, client, package_name,"
                        " package, start_date, state, step, created_at, updated_at, cancel_requested_at)"
                        " VALUES (:id, :deal, :ref, 'Acme', '{}', 'growth', '{}', :start, :state, 'production',"
                        " :at, :at, :cancel)"
                    ),
                    {
                        "id": f"p{n}",
                        "deal": n,
                        "ref": f"c{n}",
                        "start": date(2026, 3, 2),
                        "state": state,
                        "at": datetime(2026, 3, 2, 8, tzinfo=UTC),
                        "cancel": cancel,
                    },
                )
                await conn.execute(
                    text(
                        "INSERT INTO orchestration_steps (project_id, step, position, state, idempotency_key,"
                        " commands_sent) VALUES (:id, 'strategy', 1, :state, :key, 1)"
                    ),
                    {"id": f"p{n}", "state": strategy, "key": f"p{n}:strategy"},
                )
    finally:
        await engine.dispose()
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, next_period_on FROM orchestration_projects ORDER BY id"))).all()
    finally:
        await engine.dispose()
    found = {row[0]: (str(row[1]) if row[1] is not None else None) for row in rows}
    assert found == {"p1": "2026-03-02", "p2": None, "p3": None, "p4": None}
