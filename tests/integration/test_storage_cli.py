"""`migrate` and `dead-letters` from the command line, on both backends."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aicmo_actors.cli import storage as cli
from aicmo_actors.cli.errors import UserError
from aicmo_actors.storage.dead_letters import store_dead_letters
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import head_revision
from contracts.runtime import DeadLetter

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py")
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _run(*argv: str) -> int:
    args = _parse(*argv)
    return int(args.func(args))


async def _store(url: str, letters: list[DeadLetter]) -> None:
    engine = make_engine(url)
    try:
        await store_dead_letters(engine, letters)
    finally:
        await engine.dispose()


def test_migrate_up_down_and_up(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    head = head_revision()
    assert _run("migrate", "--database-url", database_url) == 0
    assert capsys.readouterr().out.strip().endswith(f"empty (no schema) -> {head}")
    assert _run("migrate", "--database-url", database_url) == 0
    assert capsys.readouterr().out.strip().endswith(f"already at {head}")
    assert _run("migrate", "--to", "base", "--database-url", database_url) == 0
    assert capsys.readouterr().out.strip().endswith(f"{head} -> empty (no schema)")
    with pytest.raises(UserError, match="unknown revision"):
        _run("migrate", "--to", "zzz", "--database-url", database_url)


def test_dead_letters_listed(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match=r"python run\.py migrate"):
        _run("dead-letters", "--database-url", database_url)
    _run("migrate", "--database-url", database_url)
    capsys.readouterr()
    assert _run("dead-letters", "--database-url", database_url) == 0
    assert capsys.readouterr().out.strip() == "no dead letters"

    t0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    letters = [
        DeadLetter(
            kind="poison",
            actor="cam.sender",
            message_type="SendEmail",
            payload=json.dumps({"outbound_id": n}),
            error=f"RuntimeError: boom {n}\n  at line 3",
            at=t0 + timedelta(minutes=n),
        )
        for n in range(3)
    ]
    asyncio.run(_store(database_url, letters))

    assert _run("dead-letters", "--limit", "2", "--database-url", database_url) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "(UTC)", "kind", "actor", "type", "error"]
    assert lines[1].split() == [
        "2026-06-01", "10:02:00", "poison", "cam.sender", "SendEmail", "RuntimeError:", "boom", "2"
    ]  # fmt: skip
    assert len(lines) == 3

    assert _run("dead-letters", "--json", "--database-url", database_url) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["payload"] for row in rows] == [
        {"outbound_id": 2},
        {"outbound_id": 1},
        {"outbound_id": 0},
    ]
    assert rows[0]["at"] == "2026-06-01T10:02:00+00:00"
    assert rows[0]["error"].startswith("RuntimeError: boom 2")


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no database at"):
        _run("dead-letters", "--database-url", f"sqlite:///{tmp_path}/missing.db")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(UserError, match="cannot reach the database"):
        _run("migrate", "--database-url", "postgresql://u@127.0.0.1:1/x")
    with pytest.raises(UserError, match="unsupported database URL"):
        _run("migrate", "--database-url", "mysql://u@h/x")
    with pytest.raises(SystemExit):
        _parse("dead-letters", "--limit", "0")


def test_run_py_migrate_end_to_end(tmp_path: Path) -> None:
    """Through the real entry point, with the URL from the environment."""
    url = f"sqlite+aiosqlite:///{tmp_path}/e2e.db"
    env = {"AICMO_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "run.py", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"-> {head_revision()}")
    bad = subprocess.run(
        [sys.executable, "run.py", "migrate", "--to", "nope"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: unknown revision") and "Traceback" not in bad.stderr
