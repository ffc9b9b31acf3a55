"""`python -m bench api`: a tiny run end to end prints its figures as the last line (not their size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

CASES = ("lead_list", "lead_history", "usage")


def test_a_tiny_run_prints_its_figures_as_the_last_line() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "api",
            "--leads",
            "200",
            "--usage-per-day",
            "50",
            "--seconds",
            "0.2",
            "--sim-leads",
            "5",
            "--sim-days",
            "1",
            "--sim-rounds",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "api" and result["db"] == "sqlite" and result["leads"] == 200
    assert result["populated"]["leads"] == 200 and result["populated"]["usage_records"] == 30 * 50
    assert result["populated"]["outbound"] > 0 and result["populated"]["inbound"] > 0
    for case in CASES:
        figures = result[case]
        assert figures["api_rps"] > 0 and figures["direct_rps"] > 0 and figures["api_calls"] > 0, case
        assert figures["ratio"] == pytest.approx(figures["api_rps"] / figures["direct_rps"], rel=0.01), case
    assert result["metering_overhead"] > 0
    assert result["harness_rps"] > 0
    assert set(result["met"]) == {*CASES, "metering_overhead"}
    assert result["targets"] == {"ratio": 0.5, "metering_overhead": 0.95}
