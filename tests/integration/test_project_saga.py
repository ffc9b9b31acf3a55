"""The project saga (`orchestration.saga`) on both databases, against stand-in modules.

The stand-ins answer as the real onboarding, strategy and production modules do (the protocol in
`orchestration/saga_rules.py`): the first command with a key does the effect, every later
one re-announces where the step stands. Their "database" is a dict that outlives a killed
system, as a module's tables would. With them: a deal opens one project whose steps run in
order, through both periods of its two-month term; a project rests between periods and
begins the next on its day; a cancelled project undoes its steps last first; and a system
killed at every kill point of a whole saga (each unit of work, publish and tell) resumes
where it was, with no effect done twice and the project where it should end.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.orchestration import saga_rules as rules
from aicmo_actors.orchestration.projects import ProjectsRepo
from aicmo_actors.orchestration.wiring import projects_supervisor
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, SupervisorSpec, killpoints
from aicmo_actors.settings import Settings
from aicmo_actors.storage.schema import ensure_schema
from contracts.base import Event
from contracts.cam import ClientSigned, ContractRenewed
from contracts.clients import ClientInfo
from contracts.onboarding import (
    CancelOnboarding,
    OnboardingCancelled,
    OnboardingCompleted,
    OnboardingStarted,
    StartOnboarding,
)
from contracts.orchestration import ProjectFinished, ProjectOpened, RenewalApplied
from contracts.packages import Deliverable, PackageSpec
from contracts.production import (
    CancelProduction,
    PeriodDelivered,
    ProducePeriod,
    ProductionCancelled,
    ProductionStarted,
)
from contracts.runtime import Tick
from contracts.strategy import (
    CancelStrategy,
    DraftStrategy,
    PeriodPlanned,
    PlanApproved,
    PlannedItem,
    PlanPeriod,
    PlanSent,
    StrategyCancelled,
)
from tests.integration.actor_kills import KillAt, run_for

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PACKAGE = PackageSpec(
    name="growth",
    title="Growth",
    price="2500.00",
    currency="EUR",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=4, channel="blog"),),
    review_rounds=2,
    turnaround_days=5,
    reporting="monthly",
    term_months=2,
)
#: The project's first day: a month ago, so that its second period begins at once (a week
#: before 9 March) and runs beside the first.
STARTED_ON = date(2026, 2, 9)
CLIENT = ClientInfo(
    client_ref=uuid.UUID(int=7),
    company="Acme GmbH",
    contact_email="ceo@acme.example",
    timezone="Europe/Berlin",
    country="DE",
)


@dataclass
class World:
    """The stand-in modules' durable state, and what the test tells them to do next."""

    effects: Counter[str] = field(default_factory=Counter)
    #: project -> step -> "waiting" | "done" | "cancelled"
    state: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Answers the person gives: steps to complete on the next tick.
    complete: set[str] = field(default_factory=set)
    heard: list[Event] = field(default_factory=list)
    #: The deal's package and first day.
    package: PackageSpec = PACKAGE
    start: date = STARTED_ON
    #: The deal's renewals (their months), announced until the saga answers.
    renewals: list[int] = field(default_factory=list)


DEADLINE = START + timedelta(days=5)


class Onboarding(Actor[StartOnboarding | CancelOnboarding | Tick]):
    subscribes = (Tick,)

    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: StartOnboarding | CancelOnboarding | Tick) -> None:
        w = self.world
        if isinstance(message, Tick):
            for (pid, step), state in list(w.state.items()):
                if step == "onboarding" and state == "waiting" and "onboarding" in w.complete:
                    w.state[(pid, step)] = "done"
                    await self.ctx.publish(self._done(pid))
            return
        pid = str(message.project_id)
        if isinstance(message, CancelOnboarding):
            if w.state.get((pid, "onboarding")) != "cancelled":
                w.state[(pid, "onboarding")] = "cancelled"
                w.effects[message.idempotency_key] += 1
            await self.ctx.publish(OnboardingCancelled(project_id=message.project_id))
            return
        assert message.idempotency_key == rules.step_key(pid, "onboarding")
        state = w.state.get((pid, "onboarding"))
        if state is None:
            w.state[(pid, "onboarding")] = state = "waiting"
            w.effects[message.idempotency_key] += 1  # the welcome email
        if state == "waiting":
            await self.ctx.publish(
                OnboardingStarted(project_id=message.project_id, waiting_for="intake answers", deadline=DEADLINE)
            )
        elif state == "done":
            await self.ctx.publish(self._done(pid))
        else:
            await self.ctx.publish(OnboardingCancelled(project_id=message.project_id))

    def _done(self, pid: str) -> OnboardingCompleted:
        brief = {"business": "Industrial pumps", "audience": "plant managers"}
        return OnboardingCompleted(project_id=uuid.UUID(pid), brief=brief, completed_at=self.ctx.clock.now())


class Strategy(Actor[DraftStrategy | PlanPeriod | CancelStrategy | Tick]):
    subscribes = (Tick,)

    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: DraftStrategy | PlanPeriod | CancelStrategy | Tick) -> None:
        w = self.world
        if isinstance(message, PlanPeriod):
            # Pure, as the real one: nothing stored, the same items every time.
            assert message.idempotency_key == rules.step_key(str(message.project_id), f"plan:{message.period}")
            assert message.start == rules.period_start(w.start, w.package.model_dump(mode="json"), message.period)
            w.effects[f"asked {message.idempotency_key}"] = 1
            await self.ctx.publish(
                PeriodPlanned(
                    project_id=message.project_id, period=message.period, version=1, items=items(message.period)
                )
            )
            return
        if isinstance(message, Tick):
            for (pid, step), state in list(w.state.items()):
                if step == "strategy" and state == "waiting" and "strategy" in w.complete:
                    w.state[(pid, step)] = "done"
                    await self.ctx.publish(self._approved(pid))
            return
        pid = str(message.project_id)
        if isinstance(message, CancelStrategy):
            if w.state.get((pid, "strategy")) != "cancelled":
                w.state[(pid, "strategy")] = "cancelled"
                w.effects[message.idempotency_key] += 1
            await self.ctx.publish(StrategyCancelled(project_id=message.project_id))
            return
        assert message.brief["business"] == "Industrial pumps", "the brief of onboarding reaches strategy"
        state = w.state.get((pid, "strategy"))
        if state is None:
            w.state[(pid, "strategy")] = state = "waiting"
            w.effects[message.idempotency_key] += 1  # the plan email
        if state == "waiting":
            await self.ctx.publish(PlanSent(project_id=message.project_id, version=1, deadline=DEADLINE))
        elif state == "done":
            await self.ctx.publish(self._approved(pid))
        else:
            await self.ctx.publish(StrategyCancelled(project_id=message.project_id))

    def _approved(self, pid: str) -> PlanApproved:
        return PlanApproved(
            project_id=uuid.UUID(pid), version=1, approved_at=self.ctx.clock.now(), deliverables=2, items=items(1)
        )


def items(period: int) -> tuple[PlannedItem, ...]:
    """A period's calendar: two posts, each period's own days and topics."""
    return tuple(
        PlannedItem(
            key=f"blog_post:blog:{n}",
            type="blog_post",
            channel="blog",
            piece=n,
            due=date(2026, 2 + period, 9 + n),
            topic=f"{topic} ({period})",
        )
        for n, topic in ((1, "Pumps for plant managers"), (2, "Five questions about seals"))
    )


class Production(Actor[ProducePeriod | CancelProduction | Tick]):
    subscribes = (Tick,)

    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: ProducePeriod | CancelProduction | Tick) -> None:
        w = self.world
        if isinstance(message, Tick):
            for (pid, step), state in list(w.state.items()):
                if step.startswith("production") and state == "waiting" and "production" in w.complete:
                    w.state[(pid, step)] = "done"
                    await self.ctx.publish(self._delivered(pid, rules.period_of(step)))
            return
        pid = str(message.project_id)
        if isinstance(message, CancelProduction):
            # As the real one: the project's whole run is cancelled; each cancel key counted once.
            for key in [k for k in w.state if k[0] == pid and k[1].startswith("production")]:
                w.state[key] = "cancelled"
            if w.state.get((pid, f"cancel {message.idempotency_key}")) is None:
                w.state[(pid, f"cancel {message.idempotency_key}")] = "done"
                w.effects[message.idempotency_key] += 1
            await self.ctx.publish(ProductionCancelled(project_id=message.project_id))
            return
        period = message.period
        assert message.items == items(period) and message.plan_version == 1, "the period's plan reaches production"
        step = rules.step_name("production", period)
        state = w.state.get((pid, step))
        if state is None and not any(k[0] == pid and k[1].startswith("cancel ") for k in w.state):
            w.state[(pid, step)] = state = "waiting"
            w.effects[message.idempotency_key] += 1  # the work items
        if state == "waiting":
            await self.ctx.publish(
                ProductionStarted(
                    project_id=message.project_id,
                    period=period,
                    items=2,
                    delivered=0,
                    waiting_for="0 of 2 items delivered",
                    deadline=DEADLINE,
                )
            )
        elif state == "done":
            await self.ctx.publish(self._delivered(pid, period))
        else:
            await self.ctx.publish(ProductionCancelled(project_id=message.project_id))

    def _delivered(self, pid: str, period: int) -> PeriodDelivered:
        return PeriodDelivered(project_id=uuid.UUID(pid), period=period, items=2, delivered_at=self.ctx.clock.now())


class Signer(Actor[Tick | ProjectOpened | RenewalApplied]):
    """Announces the deal on every tick, as `cam.deals` does until it hears `ProjectOpened`;
    and each renewal in `world.renewals` until it hears `RenewalApplied`."""

    subscribes = (Tick, ProjectOpened, RenewalApplied)

    def __init__(self, world: World) -> None:
        self.world = world

    async def receive(self, message: Tick | ProjectOpened | RenewalApplied) -> None:
        w = self.world
        if isinstance(message, ProjectOpened):
            self.world.state[("deal", "opened")] = str(message.project_id)
            return
        if isinstance(message, RenewalApplied):
            w.state[("renewal", str(message.number))] = message.detail
            return
        for number, months in enumerate(w.renewals, start=1):
            if ("renewal", str(number)) not in w.state:
                await self.ctx.publish(
                    ContractRenewed(
                        deal_id=1,
                        client_ref=str(CLIENT.client_ref),
                        number=number,
                        months=months,
                        starts_on=START.date(),
                        ends_on=START.date(),
                        renewed_at=START,
                    )
                )
        if ("deal", "opened") not in self.world.state:
            await self.ctx.publish(
                ClientSigned(
                    deal_id=1,
                    lead_id=1,
                    campaign="intro",
                    client=CLIENT,
                    package=self.world.package,
                    start=self.world.start,
                    signed_at=START,
                )
            )


def _system(engine: AsyncEngine, clock: FakeClock, world: World) -> ActorSystem:
    settings = Settings(database_url=str(engine.url), seed=3, tick_interval_s=3600, log_level="warning")
    modules = SupervisorSpec(
        "modules",
        children=[
            ChildSpec("onboarding.intake", lambda: Onboarding(world)),
            ChildSpec("strategy.planner", lambda: Strategy(world)),
            ChildSpec("production.studio", lambda: Production(world)),
            ChildSpec("cam.deals", lambda: Signer(world)),
        ],
        max_restarts=100,
    )
    system = ActorSystem(settings, clock=clock, children=[modules, projects_supervisor(ProjectsRepo(engine))])
    system.events.tap(world.heard.append)
    return system


async def test_a_deal_opens_one_project_whose_steps_run_in_order(engine: AsyncEngine) -> None:
    await ensure_schema(engine)
    world, clock = World(), FakeClock(START, autojump=False)
    system = _system(engine, clock, world)
    await system.start()
    try:
        await run_for(system, clock, 3 * 3600)
        repo = ProjectsRepo(engine)
        [project] = await repo.page()
        assert project["state"] == rules.RUNNING and project["step"] == "onboarding"
        assert project["step_state"] == rules.WAITING and project["deadline_at"] == DEADLINE
        assert project["waiting_for"] == "intake answers"
        world.complete.add("onboarding")
        await run_for(system, clock, 2 * 3600)
        [project] = await repo.page()
        assert (project["step"], project["step_state"]) == ("strategy", rules.WAITING)
        world.complete.add("strategy")
        await run_for(system, clock, 2 * 3600)
        # The second period began at once (its day is past): both periods are in production.
        [project] = await repo.page()
        assert (project["step"], project["step_state"]) == ("production:2", rules.WAITING)
        assert project["waiting_for"] == "0 of 2 items delivered"
        found = await repo.get(project["id"])
        assert [(s["step"], s["state"]) for s in found["steps"]] == [
            ("onboarding", rules.DONE),
            ("strategy", rules.DONE),
            ("production", rules.WAITING),
            ("plan:2", rules.DONE),
            ("production:2", rules.WAITING),
        ]
        world.complete.add("production")
        await run_for(system, clock, 2 * 3600)
        [project] = await repo.page()
        assert (project["state"], project["step"]) == (rules.DELIVERED, rules.AFTER_LAST)
    finally:
        await system.stop()
    # Announced every tick until opened, yet one project; each effect once.
    assert sum(isinstance(e, ClientSigned) for e in world.heard) >= 1
    assert await ProjectsRepo(engine).deal_ids() == [1]
    pid = project["id"]
    assert set(world.effects.values()) == {1}
    assert set(world.effects) == {
        rules.step_key(pid, "onboarding"),
        rules.step_key(pid, "strategy"),
        rules.step_key(pid, "production"),
        f"asked {rules.step_key(pid, 'plan:2')}",
        rules.step_key(pid, "production:2"),
    }
    finished = [e for e in world.heard if isinstance(e, ProjectFinished)]
    assert [(e.outcome, str(e.project_id)) for e in finished] == [(rules.DELIVERED, project["id"])]
    found = await ProjectsRepo(engine).get(project["id"][:8])
    assert [s["state"] for s in found["steps"]] == [rules.DONE] * 5
    assert found["steps"][0]["result"]["business"] == "Industrial pumps"
    assert len(found["steps"][1]["result"]["items"]) == 2
    assert found["steps"][2]["result"] == {"period": 1, "items": 2}
    assert next(i["topic"] for i in found["steps"][3]["result"]["items"]) == "Pumps for plant managers (2)"
    assert found["steps"][4]["result"] == {"period": 2, "items": 2}
    assert found["project"]["next_period_on"] is None
    assert [h["state"] for h in found["history"] if h["step"] == "project"] == [
        rules.RUNNING,
        "period",
        rules.DELIVERED,
    ]


async def test_a_project_rests_between_periods_and_begins_the_next_on_its_day(engine: AsyncEngine) -> None:
    await ensure_schema(engine)
    world, clock = World(start=date(2026, 3, 2)), FakeClock(START, autojump=False)
    world.complete.update({"onboarding", "strategy", "production"})
    system = _system(engine, clock, world)
    await system.start()
    try:
        await run_for(system, clock, 8 * 3600)
        repo = ProjectsRepo(engine)
        [project] = await repo.page()
        # The first period is delivered; the second begins a week before 2 April.
        assert (project["state"], project["step"], project["step_state"]) == (
            rules.RUNNING,
            "production",
            rules.DONE,
        )
        found = await repo.get(project["id"])
        assert found["project"]["next_period_on"] == date(2026, 3, 26)
        assert len(found["steps"]) == 3
        await run_for(system, clock, (date(2026, 3, 25) - date(2026, 3, 2)).days * 86400)
        assert len((await repo.get(project["id"]))["steps"]) == 3, "not a day early"
        await run_for(system, clock, 2 * 86400)
        [project] = await repo.page()
        assert (project["state"], project["step"]) == (rules.DELIVERED, rules.AFTER_LAST)
    finally:
        await system.stop()
    found = await ProjectsRepo(engine).get(project["id"])
    [begun] = [h for h in found["history"] if h["state"] == "period"]
    assert begun["detail"] == "period 2 of 2 begins on 2026-04-02"
    assert date(2026, 3, 26) <= begun["at"].date() <= date(2026, 3, 27)


async def test_a_renewed_contract_runs_its_delivered_project_again_for_the_renewed_periods(engine: AsyncEngine) -> None:
    await ensure_schema(engine)
    world, clock = World(start=date(2026, 3, 2)), FakeClock(START, autojump=False)
    world.complete.update({"onboarding", "strategy", "production"})
    system = _system(engine, clock, world)
    await system.start()
    repo = ProjectsRepo(engine)
    try:
        await run_for(system, clock, 27 * 86400)
        [project] = await repo.page()
        assert (project["state"], project["step"]) == (rules.DELIVERED, rules.AFTER_LAST)
        world.renewals += [1, 2]  # one month more, then two: periods 3, then 4 and 5
        await run_for(system, clock, 3 * 3600)
        found = await repo.get(project["id"])
        assert (found["project"]["state"], found["project"]["renewals"]) == (rules.RUNNING, 2)
        assert found["project"]["package"]["term_months"] == 5 and found["project"]["finished_at"] is None
        assert found["project"]["next_period_on"] == date(2026, 4, 25), "period 3 begins a week before 2 May"
        assert found["project"]["step"] == "production:2", "the last step it has, until period 3 begins"
        await run_for(system, clock, (date(2026, 7, 27) - date(2026, 3, 29)).days * 86400)
        [project] = await repo.page()
        assert (project["state"], project["step"]) == (rules.DELIVERED, rules.AFTER_LAST)
    finally:
        await system.stop()
    found = await repo.get(project["id"])
    assert [s["step"] for s in found["steps"]][-4:] == ["plan:4", "production:4", "plan:5", "production:5"]
    assert {s["state"] for s in found["steps"]} == {rules.DONE}
    assert world.state[("renewal", "1")] == "renewal 1: 1 more month, periods 3 to 3"
    assert world.state[("renewal", "2")] == "renewal 2: 2 more months, periods 4 to 5"
    # Announced until answered, applied once each; the project ended twice (before and after).
    assert [h["detail"] for h in found["history"] if h["state"] == "renewal"] == [
        "renewal 1: 1 more month, periods 3 to 3",
        "renewal 2: 2 more months, periods 4 to 5",
    ]
    finished = [e.outcome for e in world.heard if isinstance(e, ProjectFinished)]
    assert finished == [rules.DELIVERED, rules.DELIVERED]
    assert set(world.effects.values()) == {1}


async def test_a_renewal_of_a_cancelled_project_extends_nothing_and_is_answered_again_the_same(
    engine: AsyncEngine,
) -> None:
    await ensure_schema(engine)
    repo = ProjectsRepo(engine)
    package = PACKAGE.model_dump(mode="json")
    pid, _ = await repo.open(
        project_id=str(uuid.UUID(int=99)),
        deal_id=4,
        client=CLIENT.model_dump(mode="json"),
        package=package,
        start=STARTED_ON,
        now=START,
    )
    assert await repo.renew(4, 2, 3, START) is None, "the second before the first: asked again later"
    assert await repo.renew(5, 1, 3, START) is None, "no project for that deal yet"
    await repo.request_cancel(pid, reason="client left", by="test", now=START)
    await repo.begin_cancels(START)
    first = await repo.renew(4, 1, 3, START)
    again = await repo.renew(4, 1, 3, START + timedelta(hours=1))
    assert first is not None and again is not None
    assert (first.applied, first.first, again.applied, again.first) == (False, True, False, False)
    assert first.detail == again.detail == "renewal 1: not applied, the project is cancelling (cancelled)"
    found = await repo.get(pid)
    assert found["project"]["package"]["term_months"] == 2 and found["project"]["renewals"] == 1


async def test_a_cancelled_project_undoes_its_steps_last_first(engine: AsyncEngine) -> None:
    await ensure_schema(engine)
    world, clock = World(), FakeClock(START, autojump=False)
    system = _system(engine, clock, world)
    await system.start()
    try:
        world.complete.add("onboarding")
        await run_for(system, clock, 4 * 3600)
        repo = ProjectsRepo(engine)
        [project] = await repo.page()
        assert (project["step"], project["step_state"]) == ("strategy", rules.WAITING)
        await repo.request_cancel(project["id"], reason="the client changed its mind", by="test", now=clock.now())
        await run_for(system, clock, 2 * 3600)
    finally:
        await system.stop()
    found = await ProjectsRepo(engine).get(project["id"])
    assert found["project"]["state"] == rules.COMPENSATED
    assert [s["state"] for s in found["steps"]] == [rules.UNDONE, rules.UNDONE, rules.SKIPPED]
    undone = [h["step"] for h in found["history"] if h["state"] == rules.COMPENSATING]
    assert undone == ["strategy", "onboarding"]
    pid = project["id"]
    assert (
        world.effects[rules.cancel_key(pid, "strategy")] == 1
        and world.effects[rules.cancel_key(pid, "onboarding")] == 1
    )
    with pytest.raises(LookupError, match="only a running project"):
        await ProjectsRepo(engine).request_cancel(pid, reason="again", by="test", now=clock.now())


async def test_a_project_cancelled_in_production_undoes_production_first(engine: AsyncEngine) -> None:
    await ensure_schema(engine)
    world, clock = World(), FakeClock(START, autojump=False)
    system = _system(engine, clock, world)
    await system.start()
    try:
        world.complete.update({"onboarding", "strategy"})
        await run_for(system, clock, 6 * 3600)
        repo = ProjectsRepo(engine)
        [project] = await repo.page()
        assert (project["step"], project["step_state"]) == ("production:2", rules.WAITING)
        await repo.request_cancel(project["id"], reason="contract ended", by="test", now=clock.now())
        await run_for(system, clock, 3 * 3600)
    finally:
        await system.stop()
    found = await ProjectsRepo(engine).get(project["id"])
    assert found["project"]["state"] == rules.COMPENSATED
    undone = [h["step"] for h in found["history"] if h["state"] == rules.COMPENSATING]
    assert undone == ["production:2", "production", "strategy", "onboarding"]
    assert [(s["step"], s["state"]) for s in found["steps"]][3] == ("plan:2", rules.UNDONE)
    assert {s["state"] for s in found["steps"]} == {rules.UNDONE}
    assert world.effects[rules.cancel_key(project["id"], "production")] == 1
    assert world.effects[rules.cancel_key(project["id"], "production:2")] == 1


async def _life_killed_at(
    engine: AsyncEngine, clock: FakeClock, world: World, n: int, *, cancel: bool = False, renew: bool = False
) -> bool:
    """One life of the system on an auto-jumping clock, killed at its n-th kill point (True)
    or run to the end (False). `cancel`: the plan is never approved; once it waits, a person
    cancels the project (and its undoing is what the kills hit). `renew`: once the project is
    delivered, its contract is renewed for a month (the reopened project's third period is
    what the kills hit)."""
    kill = KillAt(n)
    system = _system(engine, clock, world)
    with killpoints.installed(kill.hook):
        await kill.until(system.start())
        for _ in range(16 if not renew else 24):
            if kill.reached.is_set():
                break
            await kill.until(clock.sleep(1800))
            world.complete.update({"onboarding"} if cancel else {"onboarding", "strategy", "production"})
            if cancel and not kill.reached.is_set():
                await _cancel_once_waiting(engine, clock)
            if renew and not world.renewals and not kill.reached.is_set():
                projects = await ProjectsRepo(engine).page()
                if projects and projects[0]["state"] == rules.DELIVERED:
                    world.renewals.append(1)
        if kill.reached.is_set():
            await kill.kill(system)
            return True
    await system.stop()
    return False


async def _cancel_once_waiting(engine: AsyncEngine, clock: FakeClock) -> None:
    from aicmo_actors.orchestration.projects import ProjectError

    for project in await ProjectsRepo(engine).page():
        if (project["state"], project["step"], project["step_state"]) == (rules.RUNNING, "strategy", rules.WAITING):
            with contextlib.suppress(ProjectError):
                await ProjectsRepo(engine).request_cancel(
                    project["id"], reason="budget cut", by="test", now=clock.now()
                )


@pytest.mark.parametrize("path", ["delivers", "cancelled", "renewed"])
async def test_killed_at_every_kill_point_the_saga_resumes_and_does_nothing_twice(
    engine: AsyncEngine, path: str
) -> None:
    if (engine.url.get_backend_name() != "sqlite") != (path == "cancelled"):
        pytest.skip("every kill point once is enough on one backend: the cancel path on the other")
    cancel, renew = path == "cancelled", path == "renewed"
    await ensure_schema(engine)
    n = 1
    runs = 0
    while True:
        # Renewed: a month more makes a third period, whose day (a week before 9 March) is past.
        world, clock = World(start=STARTED_ON if not renew else date(2026, 1, 9)), FakeClock(START)
        # A fresh database per run: the saga's tables emptied.
        async with engine.begin() as conn:
            for table in ("orchestration_project_events", "orchestration_steps", "orchestration_projects"):
                await conn.exec_driver_sql(f"DELETE FROM {table}")
        killed = await _life_killed_at(engine, clock, world, n, cancel=cancel, renew=renew)
        if killed:
            # The next life, on the same database and the same world, runs to the end.
            assert not await _life_killed_at(engine, clock, world, 10**9, cancel=cancel, renew=renew)
        runs += 1
        [project] = await ProjectsRepo(engine).page()
        if renew:
            # Reopened once, its third period begun once, each effect once, delivered again.
            assert (project["state"], project["step"]) == (rules.DELIVERED, rules.AFTER_LAST), f"killed at {n}"
            found = await ProjectsRepo(engine).get(project["id"])
            assert found["project"]["renewals"] == 1 and found["project"]["package"]["term_months"] == 3, n
            assert [s["step"] for s in found["steps"]][-2:] == ["plan:3", "production:3"], n
            assert [h["state"] for h in found["history"] if h["state"] == "renewal"] == ["renewal"], n
            assert world.state[("renewal", "1")] == "renewal 1: 1 more month, periods 3 to 3", n
            assert set(world.effects.values()) == {1} and len(world.effects) == 7, f"at point {n}: {world.effects}"
        elif cancel:
            # Undone last step first, each undoing once, whatever instant the process died.
            assert project["state"] == rules.COMPENSATED, f"killed at point {n}: {project}"
            found = await ProjectsRepo(engine).get(project["id"])
            undone = [h["step"] for h in found["history"] if h["state"] == rules.COMPENSATING]
            assert undone[:2] == ["strategy", "onboarding"] and set(undone) == {"strategy", "onboarding"}, n
            assert set(world.effects.values()) == {1} and len(world.effects) == 4, f"at point {n}: {world.effects}"
        else:
            assert (project["state"], project["step"]) == (rules.DELIVERED, rules.AFTER_LAST), f"killed at {n}"
            assert set(world.effects.values()) == {1} and len(world.effects) == 5, f"at point {n}: {world.effects}"
        if not killed:
            break
        n += 1
    assert runs > 20, "the saga went through fewer kill points than expected"
