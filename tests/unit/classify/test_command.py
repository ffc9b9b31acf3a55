"""`python run.py classify FILE ...`: one JSON line per file, and no file stops it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).resolve().parents[3]
FIELDS = {
    "file",
    "category",
    "reason",
    "confidence",
    "reasons",
    "failed_recipients",
    "status",
    "return_date",
    "in_reply_to",
}


def test_the_command_prints_one_json_line_per_file_and_survives_bad_ones(tmp_path: Path) -> None:
    missing = tmp_path / "nope.eml"
    folder = tmp_path / "a-folder.eml"
    folder.mkdir()
    files = [CORPUS / "remove_me.eml", CORPUS / "garbage.eml", missing, folder, CORPUS / "postfix_user_unknown.eml"]
    out = subprocess.run(
        [sys.executable, "run.py", "classify", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert [line["category"] for line in lines] == ["unsubscribe", "other", "other", "other", "bounce_hard"]
    assert all(set(line) >= FIELDS for line in lines)
    assert lines[2]["reason"] == lines[3]["reason"] == "unreadable"
    assert lines[4]["status"] == "5.1.1" and lines[4]["failed_recipients"] == ["jane.doe@example.org"]
    assert "Traceback" not in out.stderr
    assert out.returncode == 1  # some files could not be read


def test_every_file_read_is_exit_zero() -> None:
    out = subprocess.run(
        [sys.executable, "run.py", "classify", str(CORPUS / "referral.eml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["category"] == "referral"
