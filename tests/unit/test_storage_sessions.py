"""Module sessions: a module writes only its own tables (rule 2), reads anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.tables import CamSuppression, cam_suppressions
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.runtime_tables import RuntimeSecret, runtime_secrets
from aicmo_actors.storage.schema import load_metadata
from aicmo_actors.storage.sessions import ForeignTableWrite, module_sessions, owns

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/s.db")
    async with engine.begin() as conn:
        await conn.run_sync(load_metadata().create_all)
    yield engine
    await engine.dispose()


def test_ownership_is_by_prefix() -> None:
    assert owns("cam", "cam_leads")
    assert not owns("cam", "campaigns")
    assert not owns("cam", "runtime_lease")
    assert owns("runtime", "public.runtime_lease")


def test_module_name_is_checked() -> None:
    with pytest.raises(ValueError, match="module name"):
        module_sessions(make_engine("sqlite+aiosqlite://"), "Cam-Stuff")


@pytest.mark.anyio
async def test_a_module_writes_its_own_tables(sqlite_engine: AsyncEngine) -> None:
    sessions = module_sessions(sqlite_engine, "cam")
    async with sessions() as session, session.begin():
        session.add(CamSuppression(address="a@x.com", reason="bounce", source="t", created_at=NOW))
        await session.execute(
            insert(cam_suppressions).values(address="b@x.com", reason="bounce", source="t", created_at=NOW)
        )
        await session.execute(update(CamSuppression).values(source="u"))
        await session.execute(text("UPDATE cam_suppressions SET reason = 'manual'"))
    async with sessions() as session:
        rows = (await session.execute(select(CamSuppression.source, CamSuppression.reason))).all()
    assert sorted(rows) == [("u", "manual"), ("u", "manual")]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "statement",
    [
        insert(runtime_secrets).values(name="k", value="v", created_at=NOW),
        update(RuntimeSecret).values(value="w"),
        delete(runtime_secrets),
        text("INSERT INTO runtime_secrets (name, value, created_at) VALUES ('k', 'v', '2026')"),
        text('  update "runtime_secrets" set value = 1'),
        text("DELETE FROM runtime_secrets"),
    ],
    ids=["core-insert", "orm-update", "core-delete", "text-insert", "text-update", "text-delete"],
)
async def test_writing_another_modules_table_is_refused(sqlite_engine: AsyncEngine, statement: object) -> None:
    sessions = module_sessions(sqlite_engine, "cam")
    async with sessions() as session:
        with pytest.raises(ForeignTableWrite, match="'runtime_secrets'"):
            await session.execute(statement)  # type: ignore[call-overload]


@pytest.mark.anyio
async def test_flushing_another_modules_object_is_refused(sqlite_engine: AsyncEngine) -> None:
    sessions = module_sessions(sqlite_engine, "cam")
    async with sessions() as session:
        session.add(RuntimeSecret(name="hmac", value="x", created_at=NOW))
        with pytest.raises(ForeignTableWrite, match="insert into table 'runtime_secrets'"):
            await session.flush()
    # ...while the owner may, and other modules may still read it.
    async with module_sessions(sqlite_engine, "runtime")() as session, session.begin():
        session.add(RuntimeSecret(name="hmac", value="x", created_at=NOW))
    async with sessions() as session:
        assert (await session.execute(select(RuntimeSecret.value))).scalar_one() == "x"
