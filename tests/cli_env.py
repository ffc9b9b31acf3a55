"""Running `python run.py` commands in the test process: on the test's database, in its own
folder, with none of the machine's AICMO_ settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def command_on(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the commands at `database_url` (every other AICMO_ setting unset, `tmp_path` the
    working folder); the monkeypatch undoes it after the test."""
    for name in list(os.environ):
        if name.upper().startswith("AICMO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AICMO_DATABASE_URL", database_url)
