"""`python -m bench units`: a small run reports each figure and its ratio to the sqlite3
baseline of the same run (not their size: no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "units", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_small_run_reports_every_figure_against_its_baseline() -> None:
    done = _bench("--rows", "20", "--calls", "30", "--repeat", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert (figures["rows"], figures["calls"], figures["repeat"]) == (20, 30, 1)
    for key in ("unit_empty_us", "unit_read_us", "unit_read_built_us", "unit_write_us", "raw_read_us", "raw_write_us"):
        assert figures[key] > 0, key
    for ratio, unit, raw in (
        ("ratio_empty", "unit_empty_us", "raw_read_us"),
        ("ratio_read", "unit_read_us", "raw_read_us"),
        ("ratio_read_built", "unit_read_built_us", "raw_read_us"),
        ("ratio_write", "unit_write_us", "raw_write_us"),
    ):
        # The JSON rounds each figure to three decimals: the ratio agrees to within 1 %.
        assert abs(figures[ratio] - figures[unit] / figures[raw]) <= 0.01 * figures[ratio], ratio


def test_a_bad_count_is_one_line_not_a_traceback() -> None:
    done = _bench("--calls", "0")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--calls: must be at least 1, not 0" in done.stderr
