"""`deal won`, `deal list`, `projects`, `project ID` and `project cancel`, in process, on the
records folder (ann replied interested; bob and cy are leads of other companies)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from aicmo_actors.orchestration.projects import ProjectsRepo
from aicmo_actors.storage.engine import make_engine
from tests.integration.test_cam_records import CAMPAIGN
from tests.unit.cli_records.conftest import Folder, Run, one_error_line

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def packages(folder: Folder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A packages folder with the example package, named `growth`."""
    target = folder.path / "packages"
    target.mkdir()
    text = (REPO / "examples" / "package.toml").read_text(encoding="utf-8")
    (target / "growth.toml").write_text(text.replace('name = "package"', 'name = "growth"', 1), encoding="utf-8")
    monkeypatch.setenv("AICMO_PACKAGES_DIR", str(target))
    return target


def _rows(folder: Folder, query: str) -> list[tuple[object, ...]]:
    async def read() -> list[tuple[object, ...]]:
        engine = make_engine(folder.url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(sa.text(query))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_a_deal_makes_the_lead_a_client_and_stops_its_company(folder: Folder, packages: Path, run: Run) -> None:
    # A colleague of ann's, at the same company, still being prospected.
    code, _, err = run("leads", "import", "--campaign", CAMPAIGN, str(_colleague_csv(folder.path)))
    assert code == 0, err
    code, out, err = run(
        "deal", "won", "ann@one.example.com", "--package", "growth", "--country", "DE", "--start", "2026-03-02",
        "--timezone", "Europe/Berlin", "--json",
    )  # fmt: skip
    assert code == 0, err
    deal = json.loads(out)
    assert deal["package"] == "growth" and deal["start"] == "2026-03-02" and deal["project_id"] is None
    assert deal["client"]["contact_email"] == "ann@one.example.com" and deal["client"]["country"] == "DE"
    states = dict(_rows(folder, "SELECT email, state FROM cam_leads"))
    assert states["ann@one.example.com"] == "client"
    assert states["dee@one.example.com"] == "stopped"
    assert states["bob@two.example.com"] == "paused" and states["cy@three.example.com"] == "active"
    # Signing twice is refused, in one line; a new lead of the company is not imported.
    code, _, err = run("deal", "won", "ann@one.example.com", "--package", "growth", "--country", "DE")
    assert code == 2 and "signed already" in one_error_line(err)
    code, out, err = run("leads", "import", "--campaign", CAMPAIGN, str(_colleague_csv(folder.path, "eve")))
    assert code == 0, err
    assert "eve@one.example.com" not in dict(_rows(folder, "SELECT email, state FROM cam_leads"))
    code, out, _ = run("deal", "list")
    assert code == 0 and "growth" in out and "(not opened yet)" in out
    audit = _rows(folder, "SELECT action, target FROM identity_audit WHERE action = 'deal.won'")
    assert audit == [("deal.won", "ann@one.example.com")]


def test_bad_deals_are_one_line_errors(folder: Folder, packages: Path, run: Run) -> None:
    cases = [
        (["nobody@nowhere.example", "--package", "growth", "--country", "DE"], "no lead"),
        (["ann@one.example.com", "--package", "gold", "--country", "DE"], "gold"),
        (["ann@one.example.com", "--package", "growth", "--country", "XX"], "country"),
        (["ann@one.example.com", "--package", "growth", "--country", "DE", "--timezone", "Mars/Base"], "timezone"),
        (["ann@one.example.com", "--package", "growth", "--country", "DE", "--language", "english"], "ISO 639-1"),
        (["ann@one.example.com", "--package", "growth", "--country", "DE", "--webhook", "ftp://x.example"], "http(s)"),
        (["ann@one.example.com", "--package", "hooked", "--country", "DE"], "delivers by webhook"),
    ]
    hooked = (packages / "growth.toml").read_text(encoding="utf-8").replace('name = "growth"', 'name = "hooked"')
    hooked = hooked.replace('delivery = ["email"]', 'delivery = ["email", "webhook"]')
    (packages / "hooked.toml").write_text(hooked, encoding="utf-8")
    for args, said in cases:
        code, _, err = run("deal", "won", *args)
        assert code != 0, args
        assert said in one_error_line(err), (args, err)
    with pytest.raises(SystemExit) as exited:
        run("deal", "won", "ann@one.example.com", "--package", "growth", "--country", "DE", "--start", "x")
    assert exited.value.code == 2
    assert _rows(folder, "SELECT count(*) FROM cam_deals") == [(0,)]


def test_projects_and_one_project_tell_where_a_client_stands(folder: Folder, packages: Path, run: Run) -> None:
    code, out, _ = run("projects")
    assert code == 0 and "No client projects yet" in out
    project_id = _open_project(folder)
    code, out, err = run("projects")
    assert code == 0, err
    assert project_id[:8] in out and "onboarding (started)" in out
    code, out, err = run("project", project_id[:8])
    assert code == 0, err
    assert f"Project {project_id}" in out and "1. onboarding" in out and "2. strategy" in out and "pending" in out
    code, out, _ = run("project", project_id, "--json")
    shown = json.loads(out)
    assert [s["step"] for s in shown["steps"]] == ["onboarding", "strategy", "production"]
    code, _, err = run("project", "ffff")
    assert code == 2 and "no project" in one_error_line(err)
    # Cancelling asks first, then is kept for the saga.
    code, _, err = run("project", "cancel", project_id[:8], "--reason", "lost the budget")
    assert code == 2 and "--yes" in one_error_line(err)
    code, out, err = run("project", "cancel", project_id[:8], "--reason", "lost the budget", "--yes")
    assert code == 0, err
    assert _rows(folder, "SELECT cancel_reason FROM orchestration_projects") == [("lost the budget",)]
    code, _, err = run("project", "cancel", project_id, "--reason", "again", "--yes")
    assert code == 0  # asked already: nothing more to do


def _open_project(folder: Folder) -> str:
    """As the saga does on `ClientSigned`: a project for deal 1, its first step asked."""
    from datetime import UTC, date, datetime

    async def open_() -> str:
        engine = make_engine(folder.url)
        try:
            project_id, _ = await ProjectsRepo(engine).open(
                project_id="3f0c2a52-0000-4000-8000-000000000001",
                deal_id=1,
                client={"company": "One", "contact_email": "ann@one.example.com", "country": "DE"},
                package={"name": "growth"},
                start=date(2026, 3, 2),
                now=datetime(2026, 3, 1, tzinfo=UTC),
            )
            return project_id
        finally:
            await engine.dispose()

    return asyncio.run(open_())


def _colleague_csv(path: Path, name: str = "dee") -> Path:
    target = path / f"{name}.csv"
    target.write_text(f"email,first_name,company\n{name}@one.example.com,{name.title()},One\n", encoding="utf-8")
    return target


def test_package_folder_is_named_in_the_error_when_missing(
    folder: Folder, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AICMO_PACKAGES_DIR", str(folder.path / "nowhere"))
    code, _, err = run("deal", "won", "ann@one.example.com", "--package", "growth", "--country", "DE")
    assert code != 0 and "growth" in one_error_line(err)
    shutil.rmtree(folder.path / "nowhere", ignore_errors=True)
