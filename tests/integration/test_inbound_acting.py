"""Every decision durable: a classified message is acted on exactly once, whatever dies when.

The classifier commits a classification and then publishes `ReplyClassified`; a kill
between the two used to lose the decision for good. Now the follow-up finds whatever is
classified but not acted on, on start and on every tick, and acting is one transaction
(lead decision, suppression, alert row, outcome, `acted_at`): done once, never twice.
Both databases.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.followup import Followup
from aicmo_actors.cam.repos import CamStore, Match
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings
from contracts.cam import RetryAlert
from contracts.runtime import Tick
from tests.unit.inbound_fixtures import NOW, corpus, fetched, sent_emails

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=3)
OUR_ID = "<iq.1.1@outreach.example.com>"


class AlertsStub(Actor[RetryAlert]):
    """Stands in for cam.alerts: records which stored alerts it was asked to deliver."""

    told: list[int] = []

    async def receive(self, message: RetryAlert) -> None:
        AlertsStub.told.append(message.alert_id)


async def classified_not_acted(engine: AsyncEngine, names: list[str]) -> tuple[CamStore, list[int]]:
    """Store corpus replies to our email and save their classification, as a classifier
    killed right after its commit (before its event) leaves them."""
    raws = []
    for name in names:
        raw = corpus()[name]
        c = classify_message(raw)
        raws.append(raw.replace((c.in_reply_to or "<none>").encode(), OUR_ID.encode()))
    by_id = await sent_emails(engine, [("fay@prospect.example", OUR_ID)])
    store = CamStore(engine)
    ids = await store.inbound.store("inbox", 1, fetched(raws), NOW)
    async with engine.connect() as conn:
        lead_id = (await conn.execute(sa.select(leads_t.c.id))).scalar_one()
    match = Match(int(lead_id), "spring", by_id[OUR_ID])
    await store.inbound.save_classifications(
        [(i, classify_message(r), match, "message_id") for i, r in zip(ids, raws, strict=True)], NOW
    )
    return store, ids


async def run_followup(store: CamStore, *, ticks: int = 0) -> None:
    clock = FakeClock(NOW + timedelta(minutes=5), autojump=False)
    children = [ChildSpec("cam.alerts", AlertsStub), ChildSpec("cam.followup", lambda: Followup(store))]
    async with ActorSystem(SETTINGS, clock=clock, children=children) as system:
        await system.settle()
        for seq in range(ticks):
            await system.events.publish(system.message(Tick, seq=seq + 1, at=clock.now(), interval_s=60.0))
            await system.settle()


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def test_a_reply_classified_before_a_crash_is_acted_on_at_the_next_start_exactly_once(
    engine: AsyncEngine,
) -> None:
    AlertsStub.told = []
    store, (inbound_id,) = await classified_not_acted(engine, ["interested_with_quote.eml"])
    (row,) = await rows(engine, sa.select(inbound_t))
    assert row["processed_at"] is not None and row["acted_at"] is None

    await run_followup(store)
    (row,) = await rows(engine, sa.select(inbound_t))
    assert row["acted_at"] is not None
    (lead,) = await rows(engine, sa.select(leads_t))
    assert lead["state"] == "replied" and lead["next_action_at"] is None
    (alert,) = await rows(engine, sa.select(alerts_t))
    assert (alert["kind"], alert["state"], alert["inbound_id"]) == ("interested", "pending", inbound_id)
    assert AlertsStub.told == [alert["id"]]

    # Started again (and ticked): nothing is acted on twice, no second alert.
    await run_followup(store, ticks=2)
    assert len(await rows(engine, sa.select(alerts_t))) == 1
    assert AlertsStub.told == [alert["id"]]


async def test_a_remove_me_classified_before_a_crash_suppresses_before_the_next_step(engine: AsyncEngine) -> None:
    store, _ = await classified_not_acted(engine, ["remove_me.eml"])
    await run_followup(store)
    (lead,) = await rows(engine, sa.select(leads_t))
    assert lead["state"] == "unsubscribed"
    assert [r["address"] for r in await rows(engine, sa.select(suppressions_t))] == ["fay@prospect.example"]


async def test_a_tick_acts_on_what_an_event_lost_while_the_followup_lived(engine: AsyncEngine) -> None:
    """The classifier alone restarted (one_for_one) after its commit: the follow-up, alive
    all along, never got the event. Its next tick finds the message."""
    AlertsStub.told = []
    store = CamStore(engine)
    clock = FakeClock(NOW, autojump=False)
    children = [ChildSpec("cam.alerts", AlertsStub), ChildSpec("cam.followup", lambda: Followup(store))]
    async with ActorSystem(SETTINGS, clock=clock, children=children) as system:
        await system.settle()
        _, (_inbound_id,) = await classified_not_acted(engine, ["meeting_request.eml"])
        assert (await rows(engine, sa.select(inbound_t.c.acted_at)))[0]["acted_at"] is None
        await system.events.publish(system.message(Tick, seq=1, at=clock.now(), interval_s=60.0))
        await system.settle()
    (row,) = await rows(engine, sa.select(inbound_t))
    assert row["acted_at"] is not None
    assert len(AlertsStub.told) == 1


async def test_two_reports_of_one_failure_count_once(engine: AsyncEngine) -> None:
    store, _ = await classified_not_acted(engine, ["gmail_over_quota.eml"])
    # The same report again, under a Message-ID of its own (a server that reports twice).
    raw = corpus()["gmail_over_quota.eml"].replace(b"Message-ID: <", b"Message-ID: <second.")
    c = classify_message(raw)
    raw = raw.replace((c.in_reply_to or "<none>").encode(), OUR_ID.encode())
    (second,) = await store.inbound.store("inbox", 1, fetched([raw], first_uid=10), NOW)
    (lead,) = await rows(engine, sa.select(leads_t))
    (ours,) = await rows(engine, sa.select(outbound_t))
    await store.inbound.save_classifications(
        [(second, classify_message(raw), Match(int(lead["id"]), "spring", ours["id"]), "report")], NOW
    )
    await run_followup(store)
    (lead,) = await rows(engine, sa.select(leads_t))
    (ours,) = await rows(engine, sa.select(outbound_t))
    assert lead["soft_bounces"] == 1 and ours["bounce"] == "soft"
    assert ours["status"] == "SENT"  # what the server did at send time is not rewritten
    figures = (await store.metrics.figures("spring"))["spring"]
    assert (figures.sent, figures.soft_bounces, figures.attempted) == (1, 1, 1)


async def test_a_reason_longer_than_its_column_is_cut_not_refused(engine: AsyncEngine) -> None:
    """A feedback report's Feedback-Type (anyone can write one) becomes part of the reason:
    PostgreSQL refused a long one, and the classifier crashed on that message for good."""
    store = CamStore(engine)
    (inbound_id,) = await store.inbound.store("inbox", 1, fetched([corpus()["arf_abuse.eml"]]), NOW)
    long = classify_message(corpus()["arf_abuse.eml"]).model_copy(update={"reason": "delivery_feedback_" + "x" * 500})
    assert await store.inbound.save_classifications([(inbound_id, long, None, None)], NOW) == [inbound_id]
    (row,) = await rows(engine, sa.select(inbound_t))
    assert len(row["reason"]) == 64 and row["classification"]["reason"] == long.reason


async def test_the_stored_sender_is_never_an_address_from_the_display_name(engine: AsyncEngine) -> None:
    """Shown in `inbox unmatched`, alerts and `leads show`: quoted or not, the display name's
    address is not the sender."""
    store = CamStore(engine)
    raws = [
        f"From: {sender}\r\nTo: alex@outreach.example.com\r\n"
        f"Subject: hi\r\nMessage-ID: <s{n}@evil.example>\r\n\r\nhello\r\n".encode()
        for n, sender in enumerate(
            ['"bystander@gmail.example" <attacker@evil.example>', "bystander@gmail.example <attacker@evil.example>"]
        )
    ]
    await store.inbound.store("inbox", 1, fetched(raws), NOW)
    assert [r["from_address"] for r in await rows(engine, sa.select(inbound_t).order_by(inbound_t.c.id))] == [
        "attacker@evil.example"
    ] * 2
