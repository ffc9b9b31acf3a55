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

KEYS = {"pipeline_per_s", "classify_per_s", "pipeline_vs_classify", "raw_fetch_per_s", "ratio", "messages"}


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
    # Issue 22: the target is the pipeline against classifying alone; the raw fetch is a figure.
    assert result["targets"] == {"pipeline_vs_classify": 0.8}
    pipeline = result["pipeline_per_s"]
    assert result["pipeline_vs_classify"] == pytest.approx(pipeline / result["classify_per_s"], rel=0.01, abs=0.001)
    assert result["ratio"] == pytest.approx(pipeline / result["raw_fetch_per_s"], rel=0.01, abs=0.001)
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


def test_the_baseline_classifies_every_message_once_per_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    raws = bench.inbox.make_messages(len(bench.inbox.corpus()) + 5)
    seen: list[bytes] = []
    monkeypatch.setattr(bench.inbox, "classify_message", seen.append)
    bench.inbox.warm_up(raws)
    assert seen == raws[: len(bench.inbox.corpus())]  # each distinct message once
    seen.clear()
    assert bench.inbox.classify_rate(raws, seconds=0) > 0
    passes = len(seen) // len(raws)
    assert passes >= 1 and seen == raws * passes  # whole passes, in order: weighted as in the pipeline


def test_the_messages_are_the_corpus_with_a_message_id_each() -> None:
    raws = bench.inbox.make_messages(250)
    ids = [next(line for line in raw.split(b"\r\n") if line.lower().startswith(b"message-id:")) for raw in raws]
    assert len(set(ids)) == 250
    for raw in raws:
        head = raw.split(b"\r\n\r\n", 1)[0].lower().split(b"\r\n")
        assert sum(line.startswith(b"message-id:") for line in head) == 1
    assert all(b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"") for raw in raws)
