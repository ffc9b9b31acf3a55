"""`python run.py qc FILE --brief CLIENT` in process (`cli.main.main`): a brief file (JSON or
TOML) or a client in the database (company name or project id prefix), stdin, exit codes."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from aicmo_actors.cli.main import main
from aicmo_actors.orchestration.projects import ProjectsRepo
from aicmo_actors.orchestration.tables import orchestration_steps
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from contracts.packages import Deliverable, PackageSpec
from tests.unit.qc.cases import ACME, ACME_BRIEF, DRAFTS

Run = Callable[..., tuple[int, dict[str, Any] | None, str]]
BLOG = str(DRAFTS / "en_blog.md")
PROJECT = "5e0c1f2a-0000-4000-8000-00000000abcd"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("AICMO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AICMO_PACKAGES_DIR", str(tmp_path / "packages"))
    monkeypatch.setenv("AICMO_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/aicmo.db")
    return tmp_path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    def call(*args: str, stdin: str | None = None) -> tuple[int, dict[str, Any] | None, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(["qc", *args])
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip() else None, err

    return call


def brief_file(workdir: Path, suffix: str = ".json", **extra: str) -> str:
    data = {**ACME_BRIEF, "company": ACME.company, "country": "GB", **extra}
    path = workdir / f"brief{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in data.items()), encoding="utf-8")
    return str(path)


def test_a_clean_draft_passes_with_a_json_or_toml_brief(run: Run, workdir: Path) -> None:
    code, out, err = run(BLOG, "--brief", brief_file(workdir))
    assert (code, err) == (0, "")
    assert out is not None
    assert (out["passed"], out["findings"], out["type"], out["channel"], out["language"]) == (
        True,
        [],
        "blog_post",
        "blog",
        "en",
    )
    code, out, _ = run(BLOG, "--brief", brief_file(workdir, ".toml"))
    assert code == 0 and out is not None and out["passed"]


def test_a_draft_with_errors_exits_1_and_lists_them(run: Run, workdir: Path) -> None:
    text = Path(BLOG).read_text(encoding="utf-8").replace("At Acme Analytics", "At ACME Analytics")
    code, out, _ = run("-", "--brief", brief_file(workdir), "--channel", "twitter", stdin=text)
    assert code == 1 and out is not None
    assert out["passed"] is False and out["errors"] == 2
    assert [(f["check"], f["severity"]) for f in out["findings"]] == [("length", "error"), ("brand_name", "error")]
    assert all(f["excerpt"] for f in out["findings"])


def test_language_and_title_options(run: Run, workdir: Path) -> None:
    code, out, _ = run(BLOG, "--brief", brief_file(workdir), "--language", "sv")
    assert code == 0 and out is not None and out["language"] == "sv"
    assert out["findings"][0]["message"] == "spelling not checked for sv: no dictionary for that language"
    code, out, _ = run(
        BLOG, "--brief", brief_file(workdir), "--type", "newsletter", "--channel", "email", "--title", ""
    )
    assert code == 1 and out is not None
    assert out["findings"][0]["message"] == "an email needs a subject line: the title is empty"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.md", "--brief", "{brief}"], "error: missing.md: no such file"),
        ([BLOG, "--brief", "nowhere.json"], "error: --brief nowhere.json: cannot read it: No such file or directory"),
        ([BLOG, "--brief", "{bad_key}"], "error: --brief {bad_key}: unknown key 'colour' (the keys are: business,"),
        ([BLOG, "--brief", "{bad_json}"], "error: --brief {bad_json}: not valid JSON: "),
        ([BLOG, "--brief", "{brief}", "--package", "nope"], "error: --package nope: "),
        ([BLOG, "--brief", "Nobody Ltd"], "error: --brief Nobody Ltd: not a brief file, nor a client's company"),
    ],
)
def test_bad_input_is_one_line_on_stderr(run: Run, workdir: Path, args: list[str], message: str) -> None:
    brief = brief_file(workdir)
    bad_key = workdir / "bad_key.json"
    bad_key.write_text(json.dumps({"colour": "blue"}))
    bad_json = workdir / "bad_json.json"
    bad_json.write_text("{not json")
    names = {"brief": brief, "bad_key": str(bad_key), "bad_json": str(bad_json)}
    args = [a.format(**names) for a in args]
    code, out, err = run(*args)
    assert (code, out) == (2, None)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(**names)), err


async def _project(url: str, *, brief: dict[str, str] | None) -> None:
    await upgrade(url)
    engine = make_engine(url)
    try:
        package = PackageSpec(
            name="growth",
            title="Growth",
            price=Decimal("2400"),
            currency="GBP",
            billing="monthly",
            deliverables=(Deliverable(type="social_post", count=4, channel="linkedin", max_chars=1300),),
            review_rounds=1,
            turnaround_days=5,
            reporting="monthly",
            reading_grade=8,
        )
        await ProjectsRepo(engine).open(
            project_id=PROJECT,
            deal_id=1,
            client=ACME.model_dump(mode="json"),
            package=package.model_dump(mode="json"),
            start=date(2027, 3, 1),
            now=datetime(2027, 3, 1, tzinfo=UTC),
        )
        if brief is not None:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.update(orchestration_steps)
                    .where(orchestration_steps.c.project_id == PROJECT, orchestration_steps.c.step == "onboarding")
                    .values(result=brief)
                )
    finally:
        await engine.dispose()


def test_a_client_in_the_database_by_company_or_project_id(run: Run, workdir: Path) -> None:
    url = os.environ["AICMO_DATABASE_URL"]
    anyio.run(lambda: _project(url, brief=None))
    code, out, err = run(BLOG, "--brief", "acme analytics ltd")
    assert (code, out) == (2, None)
    assert (
        err.strip() == f"error: project {PROJECT} (Acme Analytics Ltd) has no brief yet: its onboarding is not complete"
    )
    anyio.run(lambda: _project(url, brief=ACME_BRIEF))
    post = str(DRAFTS / "en_linkedin.md")
    code, out, _ = run(post, "--brief", "Acme Analytics Ltd", "--type", "social_post")
    assert code == 0 and out is not None
    assert (out["brief"], out["channel"], out["passed"]) == (f"project {PROJECT}", "linkedin", True)
    # The package's limit for the type applies (1,300 characters on LinkedIn).
    code, out, _ = run(BLOG, "--brief", PROJECT[:8], "--type", "social_post")
    assert code == 1 and out is not None
    assert out["findings"][0]["message"].endswith("characters; at most 1300")
