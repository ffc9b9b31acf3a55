"""`python -m bench inbox`: a small run end to end (its own Dovecot), and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import bench.inbox
import tests.plugins.imap
from tests.plugins.imap import REPO_ROOT, dovecot_binary
from tests.plugins.servers import server_missing

KEYS = {"pipeline_per_s", "raw_fetch_per_s", "ratio", "classify_per_s", "messages"}


@pytest.mark.integration
def test_a_small_run_prints_its_figures_as_the_last_line() -> None:
    if dovecot_binary() is None:
        server_missing("Dovecot", "`dovecot` is not installed (run .ci/dovecot.sh install)")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "inbox", "--messages", "50"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "AICMO_INBOX_BATCH": "7"},  # the bench uses the service's default
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert result["messages"] == 50
    assert all(result[key] > 0 for key in KEYS)
    assert "Traceback" not in done.stderr


def test_without_dovecot_it_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tests.plugins.imap, "dovecot_binary", lambda: None)
    assert bench.inbox.main(["--messages", "3"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == ["error: Dovecot is not installed (run .ci/dovecot.sh install)"]
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_the_messages_are_the_corpus_with_a_message_id_each() -> None:
    raws = bench.inbox.make_messages(250)
    ids = [next(line for line in raw.split(b"\r\n") if line.lower().startswith(b"message-id:")) for raw in raws]
    assert len(set(ids)) == 250
    for raw in raws:
        head = raw.split(b"\r\n\r\n", 1)[0].lower().split(b"\r\n")
        assert sum(line.startswith(b"message-id:") for line in head) == 1
    assert all(b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"") for raw in raws)
