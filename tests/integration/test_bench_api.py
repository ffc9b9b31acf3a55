"""`python -m bench api`: a tiny run end to end prints its figures as the last line (not their size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

CASES = ("lead_list", "lead_history", "usage")
PAGES = (
    "dashboard",
    "dashboard_fresh",
    "inbox",
    "inbox_interested",
    "inbox_message",
    "leads_replied",
    "leads_company",
    "lead",
    "usage",
)
#: The pages measured against a direct call on the storage layer too.
WITH_DIRECT = ("inbox", "inbox_interested", "leads_replied", "leads_company", "lead")


def bench_api(*options: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "api", *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_tiny_run_prints_its_figures_as_the_last_line() -> None:
    result = bench_api(
        "--leads",
        "200",
        "--inbound",
        "400",
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
    )
    assert result["bench"] == "api" and result["db"] == "sqlite" and result["leads"] == 200
    assert result["populated"]["leads"] == 200 and result["populated"]["usage_records"] == 30 * 50
    assert result["populated"]["outbound"] > 0 and result["populated"]["inbound"] == 400
    assert 0 < result["populated"]["inbound_hot"] < 400
    for case in CASES:
        figures = result[case]
        assert figures["api_rps"] > 0 and figures["direct_rps"] > 0 and figures["api_calls"] > 0, case
        assert figures["ratio"] == pytest.approx(figures["api_rps"] / figures["direct_rps"], rel=0.01), case
    assert tuple(result["pages"]) == PAGES
    for name, figures in result["pages"].items():
        assert figures["path"].startswith("/app/"), name
        assert figures["rps"] > 0 and figures["calls"] > 0 and figures["html_kb"] > 0, name
        assert 0 < figures["p50_ms"] <= figures["p95_ms"], name
        if name in WITH_DIRECT:
            assert figures["direct_rps"] > 0, name
            assert figures["ratio"] == pytest.approx(figures["rps"] / figures["direct_rps"], rel=0.01), name
        else:
            assert "direct_rps" not in figures and "ratio" not in figures, name
    assert result["metering_overhead"] > 0
    assert result["harness_rps"] > 0
    assert set(result["met"]) == {*CASES, "metering_overhead"}
    assert result["targets"] == {"ratio": 0.5, "metering_overhead": 0.95}


def test_skip_pages_leaves_the_pages_out_and_inbound_0_only_the_replies() -> None:
    result = bench_api(
        "--leads",
        "40",
        "--inbound",
        "0",
        "--usage-per-day",
        "5",
        "--seconds",
        "0.05",
        "--skip-pages",
        "--skip-metering",
    )
    assert result["pages"] is None and result["metering_overhead"] is None
    populated = result["populated"]
    # Without more mail, the inbound messages are the replies that stopped a lead: one each.
    assert 0 < populated["inbound"] <= 40
    assert populated["inbound_hot"] == populated["alerts"]
    for case in CASES:
        assert result[case]["api_calls"] > 0, case
