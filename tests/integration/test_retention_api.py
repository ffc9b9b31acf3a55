"""Retention's routes through the real app on both databases (READ only): every client's health as
`health --json` lists it, one client's breakdown scored now by company, email or ref prefix, an
unknown client a 404 in the command's words, an anonymous caller refused."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import anyio
import pytest

from aicmo_actors.cli.main import main
from aicmo_actors.retention.repos import RetentionStore, Signed
from aicmo_actors.retention.rules import Scoring
from aicmo_actors.retention.signals import NewSignal
from tests.cli_env import command_on
from tests.integration.test_api import NOW, Client, client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
__all__ = ["client"]

ACME = "11111111-2222-4333-8444-555555555555"
BETA = "22222222-2222-4333-8444-555555555555"


async def _clients(caller: Client) -> None:
    """Acme with an overdue reminder, a hold (today) and a missed KPI (a month ago: half its
    weight): amber, 68; Beta without a signal: green, 100."""
    store, scoring = RetentionStore(caller.engine), Scoring()
    clients = [(ACME, "Acme Logistics", "ann@acme.example"), (BETA, "Beta Foods", "bo@beta.example")]
    for deal, (ref, company, email) in enumerate(clients, start=1):
        start = NOW.date() - timedelta(days=300)
        signed = Signed(ref, company, email, None, deal, deal, "spring", "starter", 12, start, date(2099, 1, 1), NOW)
        await store.sign(signed, NOW, scoring)
    signals = [
        NewSignal("r1", "reminder_sent", -8.0, NOW, "invoice 2027-0001: reminder 1 sent, 7 days overdue", ACME),
        NewSignal("h1", "client_on_hold", -20.0, NOW, "deliveries on hold for unpaid invoices", ACME),
        NewSignal("k1", "kpi_missed", -8.0, NOW - timedelta(days=30), "KPI leads missed", ACME),
    ]
    await store.record(signals, NOW, scoring)


async def test_every_clients_health_as_the_command_lists_it(
    client: Client,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _clients(client)
    answer = await client.call("GET", "/health", "viewer")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["next"] is None
    acme, beta = found["clients"]
    assert (acme["client_ref"], acme["company"], acme["band"], acme["score"]) == (ACME, "Acme Logistics", "amber", 68.0)
    assert acme["reasons"][0].startswith("deliveries on hold for unpaid invoices")
    assert any("reminder 1 sent" in reason for reason in acme["reasons"])
    assert acme["scored_at"] == NOW.isoformat() and acme["contract_end"] == "2099-01-01"
    assert (beta["company"], beta["band"], beta["score"], beta["reasons"]) == ("Beta Foods", "green", 100.0, [])
    # The command's own JSON, from the same rows: the same objects.
    command_on(database_url, monkeypatch, tmp_path)
    capsys.readouterr()
    assert await anyio.to_thread.run_sync(main, ["health", "--json"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == found["clients"]


@pytest.mark.parametrize("name", ["Acme Logistics", "acme", "1111", "ANN@acme.example"])
async def test_one_clients_breakdown_scored_now(client: Client, name: str) -> None:
    await _clients(client)
    answer = await client.call("GET", f"/health/{name}", "viewer")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["client_ref"], found["company"], found["band"], found["score"]) == (
        ACME,
        "Acme Logistics",
        "amber",
        68.0,
    )
    signals = [(s["kind"], s["weight"], s["reason"]) for s in found["signals"]]
    assert signals == [
        ("client_on_hold", -20.0, "deliveries on hold for unpaid invoices"),
        ("reminder_sent", -8.0, "invoice 2027-0001: reminder 1 sent, 7 days overdue"),
        ("kpi_missed", -8.0, "KPI leads missed"),
    ]
    # A month old with a 30-day half-life: half its weight today.
    assert [s["now"] for s in found["signals"]] == [-20.0, -8.0, pytest.approx(-4.0, abs=0.01)]
    assert found["signals"][2]["at"] == (NOW - timedelta(days=30)).isoformat()
    assert found["reasons"] and found["reasons"][0].startswith("deliveries on hold")
    assert found["stored"] == {"score": 68.0, "band": "amber", "scored_at": NOW.isoformat()}
    assert [(c["deal_id"], c["ends_on"]) for c in found["contracts"]] == [(1, "2099-01-01")]
    assert (found["contract_end"], found["next_renewal"]) == ("2099-01-01", "2098-11-02")


async def test_unknown_or_ambiguous_clients_are_refused_in_one_line(client: Client) -> None:
    await _clients(client)
    missing = await client.call("GET", "/health/Nobody Inc", "viewer")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no client 'Nobody Inc' (python run.py health lists them)"}
    slashed = await client.call("GET", "/health/Maersk A%2FS", "viewer")  # a "/" in a company's name
    assert slashed.status_code == 404 and slashed.json()["error"].startswith("no client 'Maersk A/S'")
    several = await client.call("GET", "/health/o", "viewer")
    assert several.status_code == 422 and several.json()["error"].startswith("'o' fits 2 clients")


async def test_health_needs_a_token(client: Client) -> None:
    for path in ("/health", "/health/acme"):
        refused = await client.call("GET", path)
        assert refused.status_code == 401 and refused.json()["error"].startswith("authentication required")
