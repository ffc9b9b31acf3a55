"""Migration 0012 moves projects opened before the production step on to it (both databases)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import downgrade, migrate

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

PROJECTS = {
    "00000000-0000-0000-0000-000000000001": "delivering",
    "00000000-0000-0000-0000-000000000002": "running",
    "00000000-0000-0000-0000-000000000003": "compensated",
}


async def test_old_projects_get_the_production_step(database_url: str) -> None:
    await migrate(database_url, "0011")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for n, (pid, state) in enumerate(PROJECTS.items(), start=1):
                await conn.execute(
                    text(
                        "INSERT INTO orchestration_projects (id, deal_id, client_ref, company, client, package_name, "
                        "package, start_date, state, step, created_at, updated_at) VALUES (:id, :deal, 'c', 'Acme', "
                        ":j, 'growth', :j, '2026-03-02', :state, :step, '2026-03-02 08:00:00', '2026-03-02 08:00:00')"
                    ),
                    {"id": pid, "deal": n, "j": json.dumps({}), "state": state, "step": "strategy"},
                )
        await migrate(database_url, "0012")
        async with engine.connect() as conn:
            steps = dict(
                (
                    await conn.execute(
                        text("SELECT project_id, state FROM orchestration_steps WHERE step = 'production'")
                    )
                ).all()
            )
            projects = dict(
                (await conn.execute(text("SELECT id, state || ':' || step FROM orchestration_projects"))).all()
            )
        ids = list(PROJECTS)
        assert steps == {ids[0]: "started", ids[1]: "pending", ids[2]: "skipped"}
        assert projects[ids[0]] == "running:production" and projects[ids[1]] == "running:strategy"
        await downgrade(database_url, "0011")
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT count(*) FROM orchestration_steps"))).scalar()
            state = (
                await conn.execute(text("SELECT state FROM orchestration_projects WHERE id = :i"), {"i": ids[0]})
            ).scalar()
        assert left == 0 and state == "delivering"
    finally:
        await engine.dispose()
