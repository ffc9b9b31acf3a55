"""Learning with CAM on both databases, on a fake clock: a bandit campaign whose variant B
clearly draws more positive replies sends, the replies arrive, the weights move toward B while
A keeps its floor, every lead keeps its variant from step to step, a restart keeps the weights;
deals and payments are tied back to the variant; `python run.py learn` shows it all."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import cam_supervisor
from aicmo_actors.cam.campaign import parse_campaign
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_variant_assignments as assignments_t
from aicmo_actors.cam.tables import cam_variant_weights as cam_weights_t
from aicmo_actors.cli import learning_cmd
from aicmo_actors.cli.errors import UserError
from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.learning import LearningStore, learning_supervisor
from aicmo_actors.learning.tables import learning_weights as learning_weights_t
from aicmo_actors.runtime import ActorSystem, FakeClock
from aicmo_actors.settings import Settings
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from contracts.base import Event
from contracts.cam import Classification, EmailSent, ReplyCategory, ReplyClassified
from contracts.learning import BanditCampaign, VariantWeightsComputed

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

START = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # a Monday
HOUR = 3600.0
NAME = "bandit-test"
CAMPAIGN = f"""
name = "{NAME}"
timezone = "UTC"
postal_address = "Agency Ltd, 1 Road, Town"
[window]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "24:00"
[limits]
daily_cap = 100000
min_gap_seconds = 0
jitter_seconds = 0
[bandit]
window_days = 1
burn_in = 20
floor = 0.05
[[mailboxes]]
address = "alex@outreach.example.com"
[[steps]]
subject = "Hello {{{{ first_name }}}}"
body = "One"
  [[steps.variants]]
  name = "B"
  subject = "Hi {{{{ first_name }}}}, an idea"
[[steps]]
delay_days = 1
body = "Two"
  [[steps.variants]]
  name = "B"
  body = "Two, B"
"""
#: The chance of a positive reply to step 1, per variant: B is clearly better.
REPLY_RATE = {"A": 0.05, "B": 0.5}


@dataclass
class Outside:
    sent: list[EmailMessage] = field(default_factory=list)

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        self.sent.append(message)
        return SendResult("accepted", 250, "2.0.0 ok")

    async def close(self) -> None:
        return None


@dataclass
class World:
    engine: AsyncEngine
    clock: FakeClock
    outside: Outside
    events: list[Event] = field(default_factory=list)
    system: ActorSystem | None = None
    replied: set[int] = field(default_factory=set)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def settings(self) -> Settings:
        return Settings(database_url=str(self.engine.url), seed=7, tick_interval_s=HOUR, log_level="warning")

    async def start(self) -> None:
        settings = self.settings()
        cam = cam_supervisor(
            settings,
            CamStore(self.engine),
            secret=b"learning-test-secret-0123456789",
            http=False,
            transports=lambda profile, mailbox: self.outside,
            inboxes={},
        )
        learning = learning_supervisor(LearningStore(self.engine), interval_s=86400.0, draws=1000)
        self.system = ActorSystem(settings, clock=self.clock, children=[cam, learning])
        await self.system.start()
        self.system.events.tap(self.events.append)
        await self.system.settle()

    async def stop(self) -> None:
        assert self.system is not None
        await self.system.stop()
        self.system = None

    async def hours(self, n: int) -> None:
        """Let `n` hours pass, tick by tick, replying to each step-1 email as its variant draws."""
        assert self.system is not None
        for _ in range(n):
            self.clock.advance(HOUR)
            await self.system.settle()
            await self.reply()

    async def reply(self) -> None:
        assert self.system is not None
        for sent in self.of(EmailSent):
            if sent.step != 1 or sent.outbound_id in self.replied:
                continue
            self.replied.add(sent.outbound_id)
            if self.rng.random() >= REPLY_RATE[sent.variant]:
                continue
            reply = self.system.message(
                ReplyClassified,
                inbound_id=sent.outbound_id,
                mailbox=sent.mailbox,
                lead_id=sent.lead_id,
                campaign=sent.campaign,
                outbound_id=sent.outbound_id,
                matched_by="message_id",
                classification=Classification(category=ReplyCategory.INTERESTED, confidence=0.9),
            )
            await self.system.ref("learning.bandit", ReplyClassified).tell(reply)
        await self.system.settle()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def rows(self, query: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def add_leads(self, first: int, count: int) -> None:
        rows = [{"email": f"p{n}@prospect{n}.example.com", "first_name": f"P{n}"} for n in range(first, first + count)]
        await CamStore(self.engine).leads.import_rows(NAME, rows, self.clock.now())

    async def variants(self, step: int, leads_from: int = 0) -> dict[int, str]:
        """Each lead's variant at `step` (lead ids from `leads_from` on)."""
        rows = await self.rows(
            sa.select(outbound_t.c.lead_id, outbound_t.c.variant).where(
                outbound_t.c.step == step, outbound_t.c.lead_id >= leads_from
            )
        )
        return {int(r["lead_id"]): r["variant"] for r in rows}

    async def cam_weights(self) -> dict[int, dict[str, float]]:
        latest = await CamStore(self.engine).campaigns.variant_weights([NAME])
        return {step: found.weights for (_, step), found in latest.items()}


async def _world(engine: AsyncEngine) -> World:
    store = CamStore(engine)
    await store.campaigns.create_or_update(parse_campaign(CAMPAIGN), START)
    world = World(engine, FakeClock(START, autojump=False), Outside())
    await world.add_leads(0, 120)
    return world


async def test_weights_move_toward_the_better_variant_and_survive_a_restart(engine: AsyncEngine) -> None:
    world = await _world(engine)
    await world.start()
    try:
        await world.hours(2)  # the first tick sends step 1 to all; the announcement; a burn-in decision
        (announced, *_) = world.of(BanditCampaign)
        assert (announced.campaign, announced.burn_in, announced.floor) == (NAME, 20, 0.05)
        first = await world.variants(1)
        assert len(first) == 120 and set(Counter(first.values())) == {"A", "B"}
        burn_in = [e for e in world.of(VariantWeightsComputed) if e.step == 1]
        assert burn_in and burn_in[0].burn_in and burn_in[0].weights == pytest.approx({"A": 0.5, "B": 0.5})

        await world.hours(25)  # step 2 goes out; the windows of step 1 close; a day after: reweighted
        decided = [e for e in world.of(VariantWeightsComputed) if e.step == 1 and not e.burn_in]
        assert len(decided) == 1
        arms = {a.variant: a for a in decided[0].arms}
        assert arms["B"].successes > 3 * arms["A"].successes
        assert all(a.successes + a.failures == a.sends for a in arms.values())  # every window closed
        weights = (await world.cam_weights())[1]
        assert weights == pytest.approx(decided[0].weights)
        assert weights["B"] > 0.8 and weights["A"] == pytest.approx(0.05)  # the floor holds, no lower
        # Sticky: every lead got the same variant at step 2 as at step 1.
        second = await world.variants(2)
        assert len(second) == 120 and second == first
        assert len(await world.rows(sa.select(assignments_t))) == 120

        await world.add_leads(1000, 200)
        await world.hours(1)
        fresh = Counter((await world.variants(1, leads_from=121)).values())
        assert sum(fresh.values()) == 200 and fresh["B"] > 150 and fresh["A"] >= 1
        # Each decision was told once, recorded once.
        told = await world.rows(sa.select(learning_weights_t).where(learning_weights_t.c.told_at.is_(None)))
        assert told == []
        keys = [r["idempotency_key"] for r in await world.rows(sa.select(cam_weights_t))]
        assert len(keys) == len(set(keys)) == len(await world.rows(sa.select(learning_weights_t)))
    finally:
        await world.stop()

    # A restart: the same weights, no new decision before the interval, the leads keep their variants.
    before = await world.cam_weights()
    decisions = len(await world.rows(sa.select(learning_weights_t)))
    assignments = await world.rows(sa.select(assignments_t).order_by(assignments_t.c.lead_id))
    world.events.clear()
    await world.start()
    try:
        await world.add_leads(2000, 100)
        await world.hours(1)
        assert await world.cam_weights() == before
        assert len(await world.rows(sa.select(learning_weights_t))) == decisions
        later = Counter((await world.variants(1, leads_from=321)).values())
        assert sum(later.values()) == 100 and later["B"] > 75
        await world.hours(24)  # the next decision; the leads of before the restart go on with theirs
        kept = await world.rows(sa.select(assignments_t).order_by(assignments_t.c.lead_id))
        assert kept[: len(assignments)] == assignments
        step1, step2 = await world.variants(1), await world.variants(2)
        assert all(step2[lead] == step1[lead] for lead in step2)
    finally:
        await world.stop()


async def test_without_learning_a_bandit_campaign_keeps_its_file_weights(engine: AsyncEngine) -> None:
    world = await _world(engine)
    settings = world.settings()
    cam = cam_supervisor(
        settings,
        CamStore(engine),
        secret=b"learning-test-secret-0123456789",
        http=False,
        transports=lambda profile, mailbox: world.outside,
        inboxes={},
    )
    system = ActorSystem(settings, clock=world.clock, children=[cam])
    await system.start()
    try:
        world.clock.advance(HOUR)
        await system.settle()
    finally:
        await system.stop()
    chosen = Counter((await world.variants(1)).values())
    assert sum(chosen.values()) == 120 and min(chosen.values()) > 35  # about half each
    assert await world.cam_weights() == {}


# -- deals, payments and the command ------------------------------------------------------------------------------


async def _outcomes(url: str) -> None:
    """Two sends of step 1 (A and B), a positive reply to B's, B's lead signs and pays twice."""
    await upgrade(url)
    engine = make_engine(url)
    try:
        cam = CamStore(engine)
        await cam.campaigns.create_or_update(parse_campaign(CAMPAIGN), START)
        store = LearningStore(engine)
        outcomes = store.outcomes
        await outcomes.record_campaign(NAME, 1.0, 20, 0.05, {1: {"A": 1.0, "B": 1.0}, 2: {"A": 1.0, "B": 1.0}}, START)
        for outbound_id, lead_id, variant in ((1, 10, "A"), (2, 11, "B")):
            for _ in range(2):  # told twice: recorded once
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
        client = uuid.uuid4()
        assert await outcomes.record_deal(
            deal_id=1, lead_id=11, campaign=NAME, client_ref=client, signed_at=START, correlation_id=None
        )
        assert not await outcomes.record_deal(
            deal_id=1, lead_id=11, campaign=NAME, client_ref=client, signed_at=START, correlation_id=None
        )
        invoice = uuid.uuid4()
        for amount, balance in ((Decimal("500.00"), Decimal("700.00")), (Decimal("700.00"), Decimal("0.00"))):
            for _ in range(2):
                await outcomes.record_payment(
                    invoice_id=invoice,
                    client_ref=client,
                    amount=amount,
                    balance=balance,
                    currency="eur",
                    received_on=date(2026, 4, 1),
                    now=START,
                    correlation_id=None,
                )
    finally:
        await engine.dispose()


def _learn(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="run.py")
    learning_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["learn", *argv])
    return int(args.func(args))


@pytest.mark.anyio(False)
def test_learn_shows_sends_replies_deals_and_revenue_per_variant(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_outcomes(database_url))
    monkeypatch.setenv("AICMO_DATABASE_URL", database_url)
    assert _learn(NAME, "--json") == 0
    found = json.loads(capsys.readouterr().out)
    assert found["bandit"] is True and found["window_days"] == 1.0
    lines = {(v["step"], v["variant"]): v for v in found["variants"]}
    a, b = lines[(1, "A")], lines[(1, "B")]
    assert (a["sends"], a["positive_replies"], a["successes"], a["failures"], a["deals"]) == (1, 0, 0, 1, 0)
    assert (b["sends"], b["positive_replies"], b["successes"], b["failures"], b["deals"]) == (1, 1, 1, 0, 1)
    assert b["revenue"] == {"EUR": "1200.00"} and a["revenue"] == {}
    assert b["p_best"] > a["p_best"] and 0 < b["rate_95"][0] < b["rate_95"][1] < 1
    assert lines[(2, "A")]["sends"] == 0 and found["weights"] == []
    assert _learn(NAME) == 0
    table = capsys.readouterr().out
    assert "1200.00 EUR" in table and "No weights yet" in table and "within 1 day;" in table
    with pytest.raises(UserError, match="unknown campaign 'nope'"):
        _learn("nope")


async def test_a_decision_made_while_cam_is_away_is_told_when_it_is_back(engine: AsyncEngine) -> None:
    world = await _world(engine)
    store = LearningStore(engine)
    await store.outcomes.record_campaign(NAME, 1.0, 1, 0.05, {1: {"A": 1.0, "B": 1.0}}, START)
    for outbound_id in range(1, 21):
        variant = "AB"[outbound_id % 2]
        await store.outcomes.record_send(
            outbound_id=outbound_id,
            campaign=NAME,
            step=1,
            variant=variant,
            lead_id=outbound_id,
            sent_at=START - timedelta(days=2),
            correlation_id=None,
        )
        if variant == "B":
            await store.outcomes.record_reply(
                inbound_id=outbound_id,
                outbound_id=outbound_id,
                lead_id=outbound_id,
                campaign=NAME,
                category="question",
                positive=True,
                received_at=START - timedelta(days=1, hours=12),
                correlation_id=None,
            )
    settings = world.settings()
    alone = ActorSystem(settings, clock=world.clock, children=[learning_supervisor(store, draws=500)])
    await alone.start()
    try:
        world.clock.advance(HOUR)
        await alone.settle()
    finally:
        await alone.stop()
    (decided,) = await world.rows(sa.select(learning_weights_t))
    assert decided["told_at"] is None and not decided["burn_in"]
    assert decided["weights"]["B"] == pytest.approx(0.95) and decided["weights"]["A"] == pytest.approx(0.05)
    assert await world.cam_weights() == {}

    await world.start()  # learning tells what it decided at its start
    try:
        assert (await world.cam_weights())[1] == pytest.approx(decided["weights"])
        (told,) = await world.rows(sa.select(learning_weights_t))
        assert told["told_at"] is not None
    finally:
        await world.stop()
