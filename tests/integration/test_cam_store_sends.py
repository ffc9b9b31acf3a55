"""The send path's store operations on SQLite and PostgreSQL: claims, finishes, interruptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.campaign import parse_campaign
from aicmo_actors.cam.planning import PlannedSend, SchedulePlan
from aicmo_actors.cam.repos import CamStore, Finished
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from contracts.cam import OutboundStatus

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CAMPAIGN = """
name = "sends"
timezone = "UTC"
postal_address = "Agency Ltd, 1 Road, Town"
[[mailboxes]]
address = "alex@outreach.example.com"
[[steps]]
subject = "Hello {{ first_name }}"
body = "One"
[[steps]]
delay_days = 3
body = "Two"
"""


async def _queued(store: CamStore, leads: int = 2) -> list[int]:
    spec = parse_campaign(CAMPAIGN)
    campaign_id, _ = await store.campaigns.create_or_update(spec, NOW)
    await store.leads.import_rows(
        "sends", [{"email": f"p{i}@prospect.example.com", "first_name": f"P{i}"} for i in range(leads)], NOW
    )
    due = await store.leads.due(NOW, 10)
    plan = SchedulePlan(
        sends=[
            PlannedSend(
                d.lead_id,
                campaign_id,
                "sends",
                1,
                "A",
                "alex@outreach.example.com",
                d.email,
                f"<s.{d.lead_id}.1@outreach.example.com>",
            )
            for d in due
        ]
    )
    return [job.outbound_id for _, job in await store.outbox.apply_plan(plan, NOW)]


async def _lead_of(engine: AsyncEngine, outbound_id: int) -> sa.Row[tuple[int, datetime | None, str]]:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                sa.select(leads_t.c.current_step, leads_t.c.next_action_at, outbound_t.c.status)
                .join(outbound_t, outbound_t.c.lead_id == leads_t.c.id)
                .where(outbound_t.c.id == outbound_id)
            )
        ).one()


async def test_a_claim_wins_once_and_a_finish_moves_the_lead_to_its_next_step(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    first, _ = await _queued(store)
    job = await store.outbox.claim(first, NOW)
    assert job is not None and job.step == 1 and job.lead_fields["first_name"] == "P0"
    assert await store.outbox.claim(first, NOW) is None  # SENDING: not claimed twice ...
    # ... and a second claim of a SENDING row means its sender died mid-send: UNCONFIRMED.
    row = await _lead_of(engine, first)
    assert row.status == OutboundStatus.UNCONFIRMED.value
    assert row.current_step == 1 and row.next_action_at is not None  # the sequence goes on


async def test_a_send_cut_off_by_a_crash_still_moves_its_lead_on(engine: AsyncEngine) -> None:
    """Found by the kill test: an interrupted send became UNCONFIRMED but its lead stayed
    active with nothing scheduled, so its later steps were never sent."""
    store = CamStore(engine)
    first, second = await _queued(store)
    assert await store.outbox.claim(first, NOW) is not None  # then the process dies
    assert await store.outbox.mark_interrupted(NOW + timedelta(minutes=5)) == 1
    row = await _lead_of(engine, first)
    assert row.status == OutboundStatus.UNCONFIRMED.value
    assert row.current_step == 1
    assert row.next_action_at is not None
    assert row.next_action_at.replace(tzinfo=UTC) == NOW + timedelta(minutes=5) + timedelta(days=3)
    # The other lead's row was never claimed: untouched, still QUEUED.
    assert (await _lead_of(engine, second)).status == OutboundStatus.QUEUED.value


async def test_a_finish_carried_by_the_next_claim_commits_both(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    first, second = await _queued(store)
    job = await store.outbox.claim(first, NOW)
    assert job is not None
    nxt = await store.outbox.claim(second, NOW, finish=Finished(job, OutboundStatus.SENT, NOW, subject="Hello P0"))
    assert nxt is not None
    assert (await _lead_of(engine, first)).status == OutboundStatus.SENT.value
    assert (await _lead_of(engine, second)).status == OutboundStatus.SENDING.value


async def test_a_queued_send_whose_lead_replied_meanwhile_is_not_sent(engine: AsyncEngine) -> None:
    """Planned, then the reply (or an unsubscribe) was read before its paced moment came."""
    store = CamStore(engine)
    first, second = await _queued(store)
    async with engine.begin() as conn:
        await conn.execute(
            leads_t.update()
            .where(leads_t.c.id == sa.select(outbound_t.c.lead_id).where(outbound_t.c.id == first).scalar_subquery())
            .values(state="replied")
        )
    await store.leads.suppress("p1@prospect.example.com", "unsubscribe", "test", NOW)
    assert await store.outbox.claim(first, NOW) is None
    assert await store.outbox.claim(second, NOW) is None
    async with engine.connect() as conn:
        rows = dict(
            (
                await conn.execute(
                    sa.select(outbound_t.c.id, outbound_t.c.last_error).where(outbound_t.c.id.in_([first, second]))
                )
            ).all()
        )
    assert rows[first] == "not sent: the lead is replied"
    assert rows[second] == "not sent: the address is suppressed"
    assert (await _lead_of(engine, first)).status == OutboundStatus.CANCELLED.value


async def test_a_send_due_outside_its_window_or_while_paused_waits(engine: AsyncEngine) -> None:
    from aicmo_actors.cam.repos import PAUSED_HOLD, Held

    store = CamStore(engine)
    first, _ = await _queued(store)
    # The campaign's window (the default: weekdays 09:00-17:00 in UTC) is closed at 20:00.
    late, opens = NOW + timedelta(hours=11), NOW + timedelta(days=1)
    held = await store.outbox.claim(first, late)
    assert held == Held(opens, "outside the send window")
    assert (await _lead_of(engine, first)).status == OutboundStatus.QUEUED.value
    assert await store.outbox.claim(first, late + timedelta(hours=1)) is None  # not due until then
    job = await store.outbox.claim(first, opens)  # the window opened: it goes
    assert job is not None and not isinstance(job, Held) and job.outbound_id == first
    await store.campaigns.pause("sends", "testing", NOW)
    _, third = await _queued_again(store)
    held = await store.outbox.claim(third, NOW)
    assert held == Held(NOW + PAUSED_HOLD, "campaign paused")


async def _queued_again(store: CamStore) -> tuple[int, int]:
    """Two more leads queued in the same campaign."""
    spec = parse_campaign(CAMPAIGN)
    campaign_id, _ = await store.campaigns.create_or_update(spec, NOW)
    await store.leads.import_rows(
        "sends", [{"email": f"q{i}@prospect.example.com", "first_name": f"Q{i}"} for i in range(2)], NOW
    )
    due = [d for d in await store.leads.due(NOW, 10) if d.email.startswith("q")]
    plan = SchedulePlan(
        sends=[
            PlannedSend(
                d.lead_id,
                campaign_id,
                "sends",
                1,
                "A",
                "alex@outreach.example.com",
                d.email,
                f"<s.{d.lead_id}.1@outreach.example.com>",
            )
            for d in due
        ]
    )
    ids = [job.outbound_id for _, job in await store.outbox.apply_plan(plan, NOW)]
    return ids[0], ids[1]


async def test_lost_queued_rows_are_paged_through_once_each(engine: AsyncEngine) -> None:
    """At start-up every QUEUED row goes to the sender again; they stay QUEUED until it
    claims them, so the pages must move on by id, not read the first page again."""
    store = CamStore(engine)
    queued = await _queued(store, leads=5)
    seen: list[int] = []
    after = 0
    while page := await store.outbox.queued_ready(NOW, 2, lost=True, after=after):
        seen += [job.outbound_id for job in page]
        after = page[-1].outbound_id
    assert seen == sorted(queued)


async def test_a_scheduler_restarted_alone_leaves_the_senders_email_in_flight(engine: AsyncEngine) -> None:
    """Under one_for_one the scheduler can restart while the sender is mid-send: the row the
    sender holds stays SENDING (only the sender settles it), and is not handed on again."""
    from aicmo_actors.cam.scheduler import Scheduler
    from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings
    from contracts.cam import SendEmail

    store = CamStore(engine)
    first, second = await _queued(store)
    assert await store.outbox.claim(first, NOW) is not None  # the sender is sending it
    handed: list[int] = []

    class Sender(Actor[SendEmail]):
        async def receive(self, message: SendEmail) -> None:
            handed.append(message.outbound_id)

    children = [ChildSpec("cam.sender", Sender), ChildSpec("cam.scheduler", lambda: Scheduler(store))]
    async with ActorSystem(
        RuntimeSettings(tick_interval_s=0, seed=1), clock=FakeClock(NOW), children=children
    ) as system:
        await system.settle()
    assert (await _lead_of(engine, first)).status == OutboundStatus.SENDING.value
    assert handed == [second]  # the QUEUED one is handed on; the one in flight is not
