"""Learning's route through the real app on both databases (READ only): a bandit campaign's sends,
positive replies, deals and revenue per step and variant, as `learn CAMPAIGN --json` shows them;
a campaign without `[bandit]` answered as the command answers it; an unknown campaign a 404; an
anonymous caller refused."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from aicmo_actors.cam.campaign import parse_campaign
from aicmo_actors.cli.main import main
from aicmo_actors.learning import LearningStore
from tests.cli_env import command_on
from tests.integration.test_api import NOW, Client, client
from tests.integration.test_learning import CAMPAIGN, NAME, START

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
__all__ = ["client"]


async def _outcomes(caller: Client) -> None:
    """Step 1 sent once as A and once as B (a week before NOW, a 1-day window); B's lead replied
    asking for a meeting, signed, and paid 500.00 then 700.00 EUR."""
    await caller.api.cam.campaigns.create_or_update(parse_campaign(CAMPAIGN), START)
    outcomes = LearningStore(caller.engine).outcomes
    await outcomes.record_campaign(NAME, 1.0, 20, 0.05, {1: {"A": 1.0, "B": 1.0}, 2: {"A": 1.0, "B": 1.0}}, START)
    for outbound_id, lead_id, variant in ((1, 10, "A"), (2, 11, "B")):
        await outcomes.record_send(
            outbound_id=outbound_id,
            campaign=NAME,
            step=1,
            variant=variant,
            lead_id=lead_id,
            sent_at=START,
            correlation_id=None,
        )
    await outcomes.record_reply(
        inbound_id=5,
        outbound_id=2,
        lead_id=11,
        campaign=NAME,
        category="meeting_request",
        positive=True,
        received_at=START + timedelta(hours=2),
        correlation_id=uuid.uuid4(),
    )
    client_ref = uuid.uuid4()
    assert await outcomes.record_deal(
        deal_id=1, lead_id=11, campaign=NAME, client_ref=client_ref, signed_at=START, correlation_id=None
    )
    invoice = uuid.uuid4()
    for amount, balance in ((Decimal("500.00"), Decimal("700.00")), (Decimal("700.00"), Decimal("0.00"))):
        await outcomes.record_payment(
            invoice_id=invoice,
            client_ref=client_ref,
            amount=amount,
            balance=balance,
            currency="eur",
            received_on=date(2026, 3, 20),
            now=START,
            correlation_id=None,
        )


async def test_a_bandit_campaigns_variants_sends_replies_deals_and_revenue(
    client: Client,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert START < NOW - timedelta(days=1)  # the 1-day reward window of every send is closed
    await _outcomes(client)
    answer = await client.call("GET", f"/campaigns/{NAME}/learning", "viewer")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["campaign"], found["bandit"], found["window_days"], found["burn_in"], found["floor"]) == (
        NAME,
        True,
        1.0,
        20,
        0.05,
    )
    lines = {(v["step"], v["variant"]): v for v in found["variants"]}
    assert sorted(lines) == [(1, "A"), (1, "B"), (2, "A"), (2, "B")]
    a, b = lines[(1, "A")], lines[(1, "B")]
    assert (a["sends"], a["positive_replies"], a["successes"], a["failures"], a["deals"]) == (1, 0, 0, 1, 0)
    assert (b["sends"], b["positive_replies"], b["successes"], b["failures"], b["deals"]) == (1, 1, 1, 0, 1)
    assert (a["rate"], b["rate"]) == (0.0, 1.0)
    assert 0 < b["rate_95"][0] < b["rate_95"][1] < 1 and b["p_best"] > a["p_best"]
    assert b["revenue"] == {"EUR": "1200.00"} and a["revenue"] == {}  # exact text, never a float
    assert lines[(2, "A")]["sends"] == 0 and b["weight"] is None and found["weights"] == []
    # The command's own JSON on the same rows: the same answer.
    command_on(database_url, monkeypatch, tmp_path)
    capsys.readouterr()
    assert await anyio.to_thread.run_sync(main, ["learn", NAME, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == found


async def test_a_campaign_without_a_bandit_is_answered_as_the_command_answers(
    client: Client,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer = await client.call("GET", "/campaigns/control/learning", "viewer")  # the fixture's campaign
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found == {
        "campaign": "control",
        "bandit": False,
        "window_days": None,
        "burn_in": None,
        "floor": None,
        "variants": [],
        "weights": [],
    }
    command_on(database_url, monkeypatch, tmp_path)
    capsys.readouterr()
    assert await anyio.to_thread.run_sync(main, ["learn", "control", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == found


async def test_an_unknown_campaign_is_a_404_in_the_commands_words(client: Client) -> None:
    missing = await client.call("GET", "/campaigns/nope/learning", "viewer")
    assert missing.status_code == 404
    assert missing.json() == {"error": "unknown campaign 'nope' (campaigns: control)"}


async def test_learning_needs_a_token(client: Client) -> None:
    refused = await client.call("GET", f"/campaigns/{NAME}/learning")
    assert refused.status_code == 401 and refused.json()["error"].startswith("authentication required")
