"""`python run.py health [CLIENT] [--json]` in process (`cli.main.main`) over a SQLite file:
the overview, one client's breakdown by company, ref prefix or email, one-line errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from aicmo_actors.cli.main import main
from aicmo_actors.retention.repos import RetentionStore, Signed
from aicmo_actors.retention.rules import Scoring
from aicmo_actors.retention.signals import NewSignal
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade

Run = Callable[..., tuple[int, str, str]]
NOW = datetime.now(UTC)
ACME = "11111111-2222-4333-8444-555555555555"
BETA = "22222222-2222-4333-8444-555555555555"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("AICMO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/aicmo.db"
    monkeypatch.setenv("AICMO_DATABASE_URL", url)

    async def fill() -> None:
        await upgrade(url)
        engine = make_engine(url)
        store, scoring = RetentionStore(engine), Scoring()
        for deal, (ref, company, email) in enumerate(
            [(ACME, "Acme Logistics", "ann@acme.example"), (BETA, "Beta Foods", "bo@beta.example")], start=1
        ):
            start = NOW.date() - timedelta(days=300)
            await store.sign(
                Signed(ref, company, email, None, deal, deal, "spring", "starter", 12, start, date(2099, 1, 1), NOW),
                NOW,
                scoring,
            )
        signals = [
            NewSignal("r1", "reminder_sent", -8.0, NOW, "invoice 2027-0001: reminder 1 sent, 7 days overdue", ACME),
            NewSignal("h1", "client_on_hold", -20.0, NOW, "deliveries on hold for unpaid invoices", ACME),
            NewSignal("k1", "kpi_missed", -8.0, NOW - timedelta(days=30), "KPI leads missed", ACME),
        ]
        await store.record(signals, NOW, scoring)
        await engine.dispose()

    anyio.run(fill)
    return tmp_path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], workdir: Path) -> Run:
    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["health", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_the_overview_lists_every_client_reddest_first(run: Run) -> None:
    code, out, _ = run()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["CLIENT", "COMPANY", "BAND", "SCORE"]
    assert lines[1].startswith("11111111") and "Acme Logistics" in lines[1] and "amber" in lines[1]
    assert "deliveries on hold" in lines[1] and lines[2].startswith("22222222")
    assert "CONTRACT END" in lines[0] and "2099-01-01" in lines[1]
    code, out, _ = run("--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["company"] for r in rows] == ["Acme Logistics", "Beta Foods"]
    assert rows[0]["contract_end"] == rows[1]["contract_end"] == "2099-01-01"
    assert (rows[0]["score"], rows[0]["band"]) == (68.0, "amber")
    assert (rows[1]["score"], rows[1]["band"], rows[1]["reasons"]) == (100.0, "green", [])


@pytest.mark.parametrize("name", ["Acme Logistics", "acme logistics", "acme", "1111", ACME, "ANN@acme.example"])
def test_one_client_by_company_ref_or_email(run: Run, name: str) -> None:
    code, out, _ = run(name, "--json")
    assert code == 0
    found = json.loads(out)
    assert (found["client_ref"], found["band"], found["score"]) == (ACME, "amber", 68.0)
    assert [s["kind"] for s in found["signals"]] == ["client_on_hold", "reminder_sent", "kpi_missed"]
    assert found["signals"][2]["now"] == pytest.approx(-4.0, abs=0.01)
    assert found["contract_end"] == "2099-01-01" and found["next_renewal"] == "2098-11-02"


def test_one_client_as_text(run: Run) -> None:
    code, out, _ = run("acme logistics")
    assert code == 0
    assert "Acme Logistics (11111111-2222-4333-8444-555555555555)" in out
    assert "health now:    amber, 68.0/100" in out
    assert "next renewal reminder: 2098-11-02" in out
    assert "client_on_hold" in out and "-20.0" in out


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Nobody Inc", "error: no client 'Nobody Inc' (python run.py health lists them)"),
        ("2222222", None),
        ("o", "error: 'o' fits 2 clients: Acme Logistics (11111111), Beta Foods (22222222)"),
        ("", "error: name a client"),
    ],
)
def test_errors_are_one_line(run: Run, name: str, message: str | None) -> None:
    code, out, err = run(name)
    if message is None:
        assert code == 0
        return
    assert code == 2 and out == ""
    assert err.strip().startswith(message) and len(err.strip().splitlines()) == 1
