"""A working folder with its own SQLite database, a campaign, leads, emails sent and replies
acted on: what the record commands read and change, called in process (`cli.main.main`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cli.main import main
from aicmo_actors.storage.engine import make_engine
from contracts.cam import ReplyCategory
from tests.integration.test_cam_records import NOW, add_leads, reply, sent

REPO = Path(__file__).resolve().parents[3]
CAMPAIGN_FILE = REPO / "examples" / "campaign.toml"


@dataclass
class Folder:
    """The working folder: its database URL, and the ids of what is in it."""

    path: Path
    url: str
    leads: dict[str, int]
    replies: dict[str, int]


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`run("leads", "list")`: the exit code, stdout and stderr of `python run.py leads list`."""

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run) -> Folder:
    """A campaign (the example's) with three leads: ann (emailed, replied interested), bob
    (emailed, auto-reply), cy (not emailed yet); AICMO_DATABASE_URL names its database."""
    for name in [k for k in __import__("os").environ if k.upper().startswith("AICMO_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    monkeypatch.setenv("AICMO_DATABASE_URL", url)
    code, _, err = run("campaign", "create", str(CAMPAIGN_FILE))
    assert code == 0, err

    async def fill() -> tuple[dict[str, int], dict[str, int]]:
        engine = make_engine(url)
        try:
            store = CamStore(engine)
            ann, bob, cy = await add_leads(
                store, ["ann@one.example.com", "bob@two.example.com", "cy@three.example.com"]
            )
            interested = await reply(store, ann, await sent(store, ann, 1, NOW), ReplyCategory.INTERESTED, NOW)
            auto = await reply(store, bob, await sent(store, bob, 1, NOW), ReplyCategory.AUTO_REPLY, NOW)
            return {"ann": ann, "bob": bob, "cy": cy}, {"interested": interested, "auto": auto}
        finally:
            await engine.dispose()

    leads, replies = asyncio.run(fill())
    return Folder(tmp_path, url, leads, replies)


def one_error_line(err: str) -> str:
    """The single `error: ...` line a refused command printed."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]
