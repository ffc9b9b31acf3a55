"""Production on both databases: `production.studio` in an actor system on a fake clock, with
stand-ins named "qc.checker", "client_review.reviews", "delivery.courier" and "cam.alerts"
that answer as the real modules do (each effect once per idempotency key, the state said
again on every command).

One period from ProducePeriod to PeriodDelivered; a QC failure then a retake; a change
request then a new version; rounds beyond the package alert; cancel withdraws and cancels;
told twice does everything once; killed at every kill point still delivers each item once
per method.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.production import STUDIO, ProductionStore, production_supervisor
from aicmo_actors.production.tables import production_item_events as events_t
from aicmo_actors.production.tables import production_items as items_t
from aicmo_actors.production.tables import production_runs as runs_t
from aicmo_actors.production.tables import production_versions as versions_t
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings, SupervisorSpec
from contracts.base import Event
from contracts.cam import AlertRequested
from contracts.client_review import ItemReviewed, RequestReview, ReviewRequested, ReviewsWithdrawn, WithdrawReviews
from contracts.clients import ClientInfo
from contracts.delivery import CancelDeliveries, DeliveriesCancelled, DeliverItem, DeliveryKept, ItemDelivered
from contracts.packages import Deliverable, PackageSpec
from contracts.production import (
    CancelProduction,
    DraftWritten,
    ItemLate,
    PeriodDelivered,
    ProducePeriod,
    ProductionCancelled,
    ProductionFailed,
    ProductionStarted,
)
from contracts.qc import CheckDraft, DraftChecked, Finding
from contracts.runtime import Tick
from contracts.strategy import PlannedItem
from tests.integration.module_run import ModuleRun

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=11)
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
# Monday 30 November 2026, 10:00 UTC (11:00 in Berlin).
START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Logistics",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    timezone="Europe/Berlin",
    country="DE",
)
PACKAGE = PackageSpec(
    name="growth",
    title="Growth",
    price=Decimal("2400"),
    currency="EUR",
    billing="monthly",
    deliverables=(
        Deliverable(type="blog_post", count=1, channel="blog", min_words=300, max_words=600),
        Deliverable(type="social_post", count=2, channel="linkedin", max_chars=600),
    ),
    review_rounds=1,
    turnaround_days=3,
    reporting="monthly",
    delivery=("email", "webhook"),
)
BRIEF = {
    "business": "Route planning software.",
    "audience": "Operations managers at logistics firms.",
    "goals": "More demo requests",
    "brand_voice": "Clear.",
    "words_to_use": "route optimisation, fleet utilisation",
    "words_to_avoid": "cheap",
}
ITEMS = (
    PlannedItem(
        key="blog_post:blog:1",
        type="blog_post",
        channel="blog",
        piece=1,
        due=date(2026, 12, 3),
        topic="How route optimisation brings more demo requests",
        min_words=300,
        max_words=600,
    ),
    PlannedItem(
        key="social_post:linkedin:1",
        type="social_post",
        channel="linkedin",
        piece=1,
        due=date(2026, 12, 3),
        topic="Fleet utilisation in one week",
        max_chars=600,
    ),
    PlannedItem(
        key="social_post:linkedin:2",
        type="social_post",
        channel="linkedin",
        piece=2,
        due=date(2026, 12, 10),
        topic="Three questions for operations managers",
        max_chars=600,
    ),
)


@dataclass
class World:
    """The stand-ins' durable state (it outlives a killed system) and what they will answer."""

    effects: Counter[str] = field(default_factory=Counter)
    #: QC: how many times each item (by key) fails before it passes.
    qc_fails: dict[str, int] = field(default_factory=dict)
    qc_seen: dict[str, int] = field(default_factory=dict)
    qc_verdicts: dict[str, DraftChecked] = field(default_factory=dict)
    #: Review: per item, the verdicts given in turn ("changes:<comment>" or "approved").
    answers: dict[str, list[str]] = field(default_factory=dict)
    verdicts: dict[str, ItemReviewed] = field(default_factory=dict)
    batches: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    delivered: dict[str, ItemDelivered] = field(default_factory=dict)
    alerts: Counter[str] = field(default_factory=Counter)
    checks: list[CheckDraft] = field(default_factory=list)
    reviews: list[RequestReview] = field(default_factory=list)
    #: Delivery methods the courier keeps waiting (it says `DeliveryKept`), and those it never
    #: answers at all (as if every answer were lost); when each delivery was told, by key.
    keep: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    told: dict[str, list[datetime]] = field(default_factory=dict)
    #: Review: "held" says `ReviewRequested` and no verdict (the client never answers), "silent"
    #: answers nothing at all (every answer lost); when each batch was told, by key.
    review: str = "answers"
    review_told: dict[str, list[datetime]] = field(default_factory=dict)


def key_of(item_id: uuid.UUID) -> str:
    from aicmo_actors.production.rules import item_id as make_id

    for period in (1, 2):
        for item in ITEMS:
            if make_id(PROJECT, period, item.key) == item_id:
                return item.key if period == 1 else f"{item.key}@{period}"
    raise KeyError(item_id)


class Qc(Actor[CheckDraft]):
    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: CheckDraft) -> None:
        w = self.world
        w.checks.append(message)
        verdict = w.qc_verdicts.get(message.idempotency_key)
        if verdict is None:
            w.effects[message.idempotency_key] += 1
            key = key_of(message.item_id)
            seen = w.qc_seen.get(key, 0)
            w.qc_seen[key] = seen + 1
            failed = seen < w.qc_fails.get(key, 0)
            findings = (Finding(check="forbidden_word", severity="error", message="a word to avoid", excerpt="cheap"),)
            verdict = DraftChecked(
                project_id=message.project_id,
                item_id=message.item_id,
                version=message.version,
                passed=not failed,
                findings=findings if failed else (),
                checked_at=self.ctx.clock.now(),
            )
            w.qc_verdicts[message.idempotency_key] = verdict
        await self.ctx.publish(verdict)


class Reviews(Actor[RequestReview | WithdrawReviews | Tick]):
    subscribes = (Tick,)

    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: RequestReview | WithdrawReviews | Tick) -> None:
        w = self.world
        if isinstance(message, Tick):
            return
        if isinstance(message, WithdrawReviews):
            if w.effects[message.idempotency_key] == 0:
                w.effects[message.idempotency_key] += 1
            await self.ctx.publish(ReviewsWithdrawn(project_id=message.project_id))
            return
        w.reviews.append(message)
        w.review_told.setdefault(message.idempotency_key, []).append(self.ctx.clock.now())
        if w.review == "silent":
            return
        if message.idempotency_key not in w.batches:
            w.effects[message.idempotency_key] += 1
            w.batches[message.idempotency_key] = [(str(i.item_id), i.version) for i in message.items]
        await self.ctx.publish(
            ReviewRequested(
                project_id=message.project_id,
                batch_key=message.idempotency_key,
                deadline=self.ctx.clock.now() + timedelta(days=3),
            )
        )
        if w.review == "held":
            return
        for item_id, version in w.batches[message.idempotency_key]:
            vkey = f"{item_id}:{version}"
            verdict = w.verdicts.get(vkey)
            if verdict is None:
                queue = w.answers.get(key_of(uuid.UUID(item_id)), [])
                answer = queue.pop(0) if queue else "approved"
                kind, _, comment = answer.partition(":")
                verdict = ItemReviewed(
                    project_id=message.project_id,
                    batch_key=message.idempotency_key,
                    item_id=uuid.UUID(item_id),
                    version=version,
                    verdict="approved" if kind == "approved" else "changes",
                    comment=comment,
                    by="page",
                    at=self.ctx.clock.now(),
                )
                w.verdicts[vkey] = verdict
            await self.ctx.publish(verdict)


class Courier(Actor[DeliverItem | CancelDeliveries]):
    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: DeliverItem | CancelDeliveries) -> None:
        w = self.world
        if isinstance(message, CancelDeliveries):
            if w.effects[message.idempotency_key] == 0:
                w.effects[message.idempotency_key] += 1
            await self.ctx.publish(DeliveriesCancelled(project_id=message.project_id))
            return
        w.told.setdefault(message.idempotency_key, []).append(self.ctx.clock.now())
        if message.method in w.silent:
            return
        if message.method in w.keep:
            kept = DeliveryKept(
                project_id=message.project_id,
                item_id=message.item_id,
                version=message.version,
                method=message.method,
                state="queued",
            )
            await self.ctx.publish(kept)
            return
        done = w.delivered.get(message.idempotency_key)
        if done is None:
            w.effects[message.idempotency_key] += 1
            done = ItemDelivered(
                project_id=message.project_id,
                item_id=message.item_id,
                version=message.version,
                method=message.method,
                delivered_at=self.ctx.clock.now(),
                receipt=f"250 ok {message.method}",
            )
            w.delivered[message.idempotency_key] = done
        await self.ctx.publish(done)


class Alerts(Actor[AlertRequested]):
    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: AlertRequested) -> None:
        self.world.alerts[message.idempotency_key] += 1


def stand_ins(world: World) -> SupervisorSpec:
    return SupervisorSpec(
        "others",
        children=[
            ChildSpec("qc.checker", lambda: Qc(world)),
            ChildSpec("client_review.reviews", lambda: Reviews(world)),
            ChildSpec("delivery.courier", lambda: Courier(world)),
            ChildSpec("cam.alerts", lambda: Alerts(world)),
        ],
        max_restarts=100,
    )


def produce(
    system: ActorSystem, items: tuple[PlannedItem, ...] = ITEMS, package: PackageSpec = PACKAGE, period: int = 1
) -> ProducePeriod:
    return system.message(
        ProducePeriod,
        project_id=PROJECT,
        idempotency_key=f"{PROJECT}:production" + (f":{period}" if period > 1 else ""),
        client=CLIENT,
        package=package,
        brief=BRIEF,
        plan_version=1,
        items=items,
        period=period,
    )


def later(period: int) -> tuple[PlannedItem, ...]:
    """The same pieces `period - 1` weeks later, with their own topics (a later period's calendar)."""
    return tuple(
        item.model_copy(update={"due": item.due + timedelta(weeks=period - 1), "topic": f"{item.topic}, part {period}"})
        for item in ITEMS
    )


@dataclass
class Run(ModuleRun):
    actor: ClassVar[str] = STUDIO

    async def tick(self, hours: float = 1) -> None:  # type: ignore[override]
        """An hourly tick, `hours` after the last one."""
        await super().tick(self.clock.now() + timedelta(hours=hours), interval_s=3600.0)


@asynccontextmanager
async def running(engine: AsyncEngine, world: World, at: datetime = START) -> AsyncIterator[Run]:
    clock = FakeClock(at, autojump=False)
    spec = production_supervisor(ProductionStore(engine))
    async with ActorSystem(SETTINGS, clock=clock, children=[stand_ins(world), spec]) as system:
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events)


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


# -- tests -----------------------------------------------------------------------------------------------------------


async def test_one_period_from_produce_to_delivered_once_per_method(engine: AsyncEngine) -> None:
    world = World()
    async with running(engine, world) as run:
        await run.tell(produce(run.system))
        await run.tell(produce(run.system))  # told twice: one run, the state said twice
        started = run.of(ProductionStarted)
        assert len(started) == 2 and started[0].items == 3 and started[0].delivered == 0
        # The last due day (10 Dec) at 17:00 Berlin.
        assert started[0].deadline == datetime(2026, 12, 10, 16, 0, tzinfo=UTC)
        assert started[0].waiting_for == "0 of 3 items delivered; 3 not started"
        for _ in range(10 * 6):
            await run.tick(4)
            if run.of(PeriodDelivered):
                break
        [done] = run.of(PeriodDelivered)
        assert done.project_id == PROJECT and done.items == 3
        await run.tell(produce(run.system))
        assert len(run.of(PeriodDelivered)) == 2  # said again when asked
    # Each item delivered once per method; one QC check and one review per item.
    delivery_keys = [k for k in world.effects if k.endswith((":email", ":webhook"))]
    assert len(delivery_keys) == 6 and set(world.effects.values()) == {1}
    items = await rows(engine, sa.select(items_t))
    assert {i["state"] for i in items} == {"delivered"} and {i["version"] for i in items} == {1}
    versions = await rows(engine, sa.select(versions_t))
    assert all(v["qc_passed"] and v["verdict"] == "approved" and v["source"] == "template" for v in versions)
    assert all("cheap" not in v["text"].lower() for v in versions)
    assert len(run.of(DraftWritten)) == 3
    history = await rows(engine, sa.select(events_t.c.state).order_by(events_t.c.id))
    assert [h["state"] for h in history].count("delivered") == 3
    # The two items due 3 Dec start the day of the request; the one due 10 Dec waits.
    assert not world.alerts, world.alerts


async def test_a_delivery_the_courier_keeps_is_asked_about_again_only_after_a_week(engine: AsyncEngine) -> None:
    # Webhooks are kept (a client on hold); emails are never answered (every answer lost).
    world = World(keep={"webhook"}, silent={"email"})
    async with running(engine, world) as run:
        await run.tell(produce(run.system))
        for _ in range(24 * 10):
            await run.tick()
    kept = {key: times for key, times in world.told.items() if key.endswith(":webhook")}
    unanswered = {key: times for key, times in world.told.items() if key.endswith(":email")}
    assert len(kept) == len(unanswered) == len(ITEMS)
    gaps = {key: [b - a for a, b in itertools.pairwise(times)] for key, times in world.told.items()}
    # Kept: asked again a week after the last telling, not before; the first ones twice by now.
    assert all(gap >= timedelta(days=7) for key in kept for gap in gaps[key])
    assert sum(len(times) == 2 for times in kept.values()) >= 2
    # Never answered: asked again after 1 h, then as long as it has waited, at most a day apart.
    for key in unanswered:
        assert gaps[key][:3] == [timedelta(hours=1), timedelta(hours=1), timedelta(hours=2)]
        assert len(unanswered[key]) > 3 * len(kept[key.replace(":email", ":webhook")])


@pytest.mark.parametrize("review", ["held", "silent"])
async def test_a_batch_client_review_holds_is_told_again_only_after_a_week(engine: AsyncEngine, review: str) -> None:
    # Held: client review says ReviewRequested and the client never answers. Silent: every
    # answer lost, so the batch is told again after 6 h, 6 h, then every 12 h.
    world = World(review=review)
    async with running(engine, world) as run:
        await run.tell(produce(run.system))
        for _ in range(24 * 10):
            await run.tick()
    first, *later = sorted(world.review_told.items())
    gaps = {key: [b - a for a, b in itertools.pairwise(times)] for key, times in world.review_told.items()}
    if review == "held":
        # The first period's batch twice (day 0 and day 7), the second period's once so far.
        assert len(first[1]) == 2 and later
        assert all(gap >= timedelta(days=7) for key in gaps for gap in gaps[key])
    else:
        assert gaps[first[0]][:4] == [timedelta(hours=6), timedelta(hours=6), timedelta(hours=12), timedelta(hours=12)]
        assert len(first[1]) > 15
        assert all(gap <= timedelta(hours=12) for key in gaps for gap in gaps[key])


async def test_qc_failure_then_a_retake_and_after_two_retakes_a_person(engine: AsyncEngine) -> None:
    world = World(qc_fails={"blog_post:blog:1": 1, "social_post:linkedin:1": 3})
    async with running(engine, world) as run:
        await run.tell(produce(run.system, ITEMS[:2]))
        for _ in range(6):
            await run.tick()
    items = {i["key"]: i for i in await rows(engine, sa.select(items_t))}
    blog = items["blog_post:blog:1"]
    assert (blog["state"], blog["version"], blog["retakes"]) == ("delivered", 2, 1)
    social = items["social_post:linkedin:1"]
    assert (social["state"], social["version"], social["retakes"]) == ("drafting", 3, 2)
    assert social["needs_person_at"] is not None
    assert world.alerts == Counter({f"{social['id']}:upload:v3": 1})
    versions = await rows(engine, sa.select(versions_t).where(versions_t.c.item_id == blog["id"]))
    assert [v["qc_passed"] for v in versions] == [False, True]
    assert versions[0]["qc_findings"][0]["excerpt"] == "cheap"


async def test_changes_requested_make_a_new_version_and_rounds_beyond_the_package_alert(engine: AsyncEngine) -> None:
    comment = 'Please do not use the word "steps", and write more about our customers\' own stories.'
    world = World(answers={"blog_post:blog:1": [f"changes:{comment}", "changes:Shorter please.", "approved"]})
    async with running(engine, world) as run:
        await run.tell(produce(run.system, ITEMS[:1]))
        for _ in range(12):
            await run.tick()
        assert run.of(PeriodDelivered)
    [blog] = await rows(engine, sa.select(items_t))
    assert (blog["state"], blog["version"], blog["rounds"]) == ("delivered", 3, 2)
    v1, v2, v3 = await rows(engine, sa.select(versions_t).order_by(versions_t.c.version))
    assert v1["verdict"] == "changes" and v1["comment"] == comment
    assert " steps" in v1["text"] and " steps" not in v2["text"].replace("Steps", "")
    assert "customers' own stories" in v2["text"]
    assert v3["verdict"] == "approved"
    # Round 2 is beyond the package's one round: one alert (billable), the revision still made.
    assert world.alerts == Counter({f"{blog['id']}:round:2": 1})
    assert len(world.batches) == 3


async def test_each_period_has_its_own_items_and_is_announced_delivered_on_its_own(engine: AsyncEngine) -> None:
    world = World()
    async with running(engine, world) as run:
        await run.tell(produce(run.system))
        await run.tell(produce(run.system, later(2), period=2))  # the next period, beside the first
        await run.tell(produce(run.system, later(2), period=2))  # told twice: its items made once
        first, second, again = run.of(ProductionStarted)
        assert (first.period, first.items, second.period, second.items) == (1, 3, 2, 3)
        assert second.deadline == datetime(2026, 12, 17, 16, 0, tzinfo=UTC)  # its own last due day
        said = ("period", "items", "delivered", "waiting_for", "deadline")
        assert [getattr(again, f) for f in said] == [getattr(second, f) for f in said]
        for _ in range(20 * 6):
            await run.tick(4)
            if len(run.of(PeriodDelivered)) == 2:
                break
        done = run.of(PeriodDelivered)
        assert [(d.period, d.items) for d in done] == [(1, 3), (2, 3)]
        await run.tell(produce(run.system, later(2), period=2))
        assert run.of(PeriodDelivered)[-1].period == 2  # said again, for the period asked
    items = await rows(engine, sa.select(items_t))
    assert sorted((i["period"], i["key"]) for i in items) == sorted(
        (period, item.key) for period in (1, 2) for item in ITEMS
    )
    assert {i["state"] for i in items} == {"delivered"}
    assert len({i["id"] for i in items}) == 6
    (run_row,) = await rows(engine, sa.select(runs_t))
    assert (run_row["produce_key"], run_row["period"]) == (f"{PROJECT}:production", 2)
    assert run_row["delivered_at"] is not None
    assert len([k for k in world.effects if k.endswith((":email", ":webhook"))]) == 12


async def test_cancel_withdraws_reviews_and_cancels_deliveries(engine: AsyncEngine) -> None:
    world = World(answers={"blog_post:blog:1": ["changes:More detail."] * 5})
    async with running(engine, world) as run:
        await run.tell(produce(run.system))
        await run.tick()
        cancel = run.system.message(
            CancelProduction, project_id=PROJECT, idempotency_key=f"{PROJECT}:production", reason="deal cancelled"
        )
        await run.tell(cancel)
        await run.tell(cancel)
        assert len(run.of(ProductionCancelled)) == 2
        await run.tell(produce(run.system))
        assert len(run.of(ProductionCancelled)) == 3
        await run.tell(produce(run.system, later(2), period=2))  # a later period of a cancelled run
        assert len(run.of(ProductionCancelled)) == 4 and len(run.of(ProductionStarted)) == 1
        await run.tick()
    items = await rows(engine, sa.select(items_t))
    assert {i["state"] for i in items} <= {"cancelled", "delivered"} and {i["period"] for i in items} == {1}
    assert world.effects[f"{PROJECT}:production:withdraw"] == 1
    assert world.effects[f"{PROJECT}:production:cancel"] == 1


async def test_cancel_first_then_produce_makes_nothing(engine: AsyncEngine) -> None:
    world = World()
    async with running(engine, world) as run:
        cancel = run.system.message(CancelProduction, project_id=PROJECT, idempotency_key="k", reason="no")
        await run.tell(cancel)
        await run.tell(produce(run.system))
        assert len(run.of(ProductionCancelled)) == 2 and not run.of(ProductionStarted)
    assert await rows(engine, sa.select(items_t)) == []


async def test_an_empty_plan_fails(engine: AsyncEngine) -> None:
    async with running(engine, World()) as run:
        await run.tell(produce(run.system, ()))
        [failed] = run.of(ProductionFailed)
        assert "no items" in failed.reason


async def test_late_work_is_announced_once(engine: AsyncEngine) -> None:
    world = World()
    # QC never answers: the items stay in QC past their due day.
    async with running(engine, world) as run:
        run.system  # noqa: B018
        world.qc_fails = {"blog_post:blog:1": 99}
        await run.tell(produce(run.system, ITEMS[:1]))
        for _ in range(5):
            await run.tick(24)
        late = run.of(ItemLate)
        assert len(late) == 1 and late[0].due == date(2026, 12, 3)
    [blog] = await rows(engine, sa.select(items_t))
    assert world.alerts[f"{blog['id']}:late"] == 1


# -- kills ----------------------------------------------------------------------------------------------------------


async def _life(engine: AsyncEngine, clock: FakeClock, world: World, n: int) -> bool:
    """One life of the system, killed at its n-th kill point (True) or run to the end (False).
    As the saga would, `ProducePeriod` is told at the start of each life."""
    from aicmo_actors.runtime import killpoints
    from aicmo_actors.settings import Settings
    from tests.integration.actor_kills import KillAt

    kill = KillAt(n)
    settings = Settings(database_url=str(engine.url), seed=5, tick_interval_s=3600, log_level="warning")
    spec = production_supervisor(ProductionStore(engine))
    system = ActorSystem(settings, clock=clock, children=[stand_ins(world), spec])
    with killpoints.installed(kill.hook):
        await kill.until(system.start())
        if not kill.reached.is_set():
            await kill.until(system.ref(STUDIO, ProducePeriod).tell(produce(system, ITEMS[:2])))
        for _ in range(8):
            if kill.reached.is_set():
                break
            await kill.until(clock.sleep(1800))
        if kill.reached.is_set():
            await kill.kill(system)
            return True
    await system.stop()
    return False


async def test_killed_at_every_kill_point_each_item_is_delivered_once_per_method(engine: AsyncEngine) -> None:
    if engine.url.get_backend_name() != "sqlite":
        pytest.skip("every kill point once is enough on one backend")
    tables = (
        "production_item_events",
        "production_alerts",
        "production_deliveries",
        "production_batch_items",
        "production_batches",
        "production_versions",
        "production_items",
        "production_runs",
    )
    n, runs = 1, 0
    while True:
        world, clock = World(qc_fails={"blog_post:blog:1": 1}), FakeClock(START)
        async with engine.begin() as conn:
            for table in tables:
                await conn.exec_driver_sql(f"DELETE FROM {table}")
        killed = await _life(engine, clock, world, n)
        if killed:
            assert not await _life(engine, clock, world, 10**9)
        runs += 1
        items = await rows(engine, sa.select(items_t))
        assert {i["state"] for i in items} == {"delivered"}, f"killed at {n}: {[i['state'] for i in items]}"
        deliveries = sorted(k for k in world.effects if k.endswith((":email", ":webhook")))
        assert len(deliveries) == 4 and all(world.effects[k] == 1 for k in deliveries), f"at {n}: {deliveries}"
        assert set(world.effects.values()) == {1}, f"at {n}: {world.effects}"
        if not killed:
            break
        n += 1
    assert runs > 20, runs


async def test_a_persons_upload_goes_to_qc_and_on_and_show_follows_the_item(engine: AsyncEngine) -> None:
    from aicmo_actors.production.repos import ItemsRepo, ProductionError

    world = World(qc_fails={"blog_post:blog:1": 3})
    signoff = PACKAGE.model_copy(update={"qc_signoff": True})
    async with running(engine, world) as run:
        await run.tell(produce(run.system, ITEMS[:1], package=signoff))
        for _ in range(4):
            await run.tick()
        repo = ItemsRepo(engine)
        [row] = await repo.page()
        assert row["needs_person_at"] is not None and row["version"] == 3
        item_id = await repo.resolve(row["id"][:6])
        for wild in ("____", "%%%%", row["id"][:4] + "%"):  # LIKE's wildcards are not an id's
            with pytest.raises(ProductionError, match="no work item"):
                await repo.resolve(wild)
        assert [r["id"] for r in await repo.page(project="%")] == []
        with pytest.raises(ProductionError, match="awaiting sign-off"):
            await repo.signoff(item_id, "ann", run.clock.now())
        world.qc_fails = {}
        version = await repo.upload(
            item_id, title=None, text="Our own words.\n", html="<p>Our own words.</p>", by="ann", now=run.clock.now()
        )
        assert version == 4
        await repo.assign(item_id, "ann", run.clock.now())
        await run.tick()
        [row] = await repo.page()
        assert row["state"] == "signoff"  # passed QC; the package wants a person's sign-off
        await repo.signoff(item_id, "ann", run.clock.now())
        await run.tick()
        await run.tick()
        shown = await repo.show(item_id)
    assert shown["item"]["state"] == "delivered" and shown["item"]["assignee"] == "ann"
    assert [v["source"] for v in shown["versions"]] == ["template"] * 3 + ["person"]
    assert shown["versions"][3]["author"] == "ann" and shown["versions"][3]["verdict"] == "approved"
    assert len(shown["deliveries"]) == 2 and all(d["receipt"] for d in shown["deliveries"])
    details = " | ".join(h["detail"] for h in shown["history"])
    assert "failed QC" in details and "person: ann" in details and "signed off by ann" in details
    assert "delivered by email" in details
    assert set(world.alerts) == {f"{item_id}:upload:v3", f"{item_id}:signoff:v4"}
