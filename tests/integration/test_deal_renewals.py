"""Contract renewals on SQLite and PostgreSQL, CAM's side: `DealsRepo.renew` (a monthly
retainer renewed from the end of its term so far, every refusal one line), the renewals
announced to orchestration, `POST /api/v1/deals/{id}/renew` (201, an idempotent retry 200, a
conflict 409, no deal 404, not renewable 422, a viewer 403, audited), `cam.deals` publishing
`ContractRenewed` until a day after it hears `RenewalApplied`, and migration 0023 keeping the
renewal reminders recorded before it. The saga, billing and retention sides are tested in
their own files."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.campaign import load_campaign
from aicmo_actors.cam.deals import Deals
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.repos.deals import ECHO, Deal, Renewal, RenewalConflict, contract_end
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.identity.tables import identity_audit
from aicmo_actors.runtime import ActorSystem, ChildSpec, FakeClock, RuntimeSettings, SupervisorSpec
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import migrate, upgrade
from contracts.base import Event
from contracts.cam import ClientSigned, ContractRenewed
from contracts.orchestration import RenewalApplied
from contracts.packages import Deliverable, Milestone, PackageSpec
from contracts.runtime import Tick
from tests.integration.test_api import NOW, Client, client
from tests.integration.test_cam_records import CAMPAIGN_FILE, add_leads
from tests.integration.test_control_plane import leads

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
__all__ = ["client"]

#: The first day of the work (a Monday); the API's clock (`NOW`, 9 March 2026) is a week later.
START = date(2026, 3, 2)
PACKAGE = PackageSpec(
    name="retainer",
    title="Retainer: a post a month",
    price="900.00",
    currency="EUR",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=1, channel="blog"),),
    review_rounds=1,
    turnaround_days=2,
    reporting="monthly",
    term_months=12,
)
QUARTERLY = PACKAGE.model_copy(update={"name": "quarterly", "period_months": 3})
ONE_OFF = PACKAGE.model_copy(update={"name": "launch", "billing": "one_off", "term_months": 1})
MILESTONES = PACKAGE.model_copy(
    update={
        "name": "site",
        "billing": "milestones",
        "milestones": (Milestone(name="signed", share="0.5", at="signed"), Milestone(name="live", share="0.5")),
    }
)


async def _deal(store: CamStore, address: str, package: PackageSpec = PACKAGE, start: date = START) -> Deal:
    """A new lead at `address` (of its own company) in the example campaign, signed for
    `package` from `start`, as test_delivery_cycle.py's deal is."""
    await store.campaigns.create_or_update(load_campaign(CAMPAIGN_FILE, allow_test_domains=True), NOW)
    await add_leads(store, [address])
    return await _sign(store, address, package, start)


async def _sign(store: CamStore, address: str, package: PackageSpec = PACKAGE, start: date = START) -> Deal:
    return await store.deals.win(
        address,
        campaign=None,
        client={"company": address.split("@")[1], "contact_name": "Ann Lee", "timezone": "UTC", "country": "DE"},
        package=package.model_dump(mode="json"),
        start=start,
        by="test",
        now=NOW,
    )


def _one_line(error: pytest.ExceptionInfo[Any]) -> str:
    message = str(error.value)
    assert message and "\n" not in message, message
    return message


# -- the repository ---------------------------------------------------------------------------------------------
async def test_a_monthly_retainer_is_renewed_from_the_end_of_its_term_so_far(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    deal = await _deal(store, "ann@one.example.com")
    first = await store.deals.renew(deal.deal_id, months=3, by="ops", now=NOW, today=NOW.date())
    assert first == Renewal(
        deal_id=deal.deal_id,
        number=1,
        months=3,
        starts_on=date(2027, 3, 2),  # the end of the 12 months' term
        ends_on=date(2027, 6, 2),
        renewed_at=NOW,
        renewed_by="ops",
        client_ref=deal.client["client_ref"],
        applied_at=None,
        outcome=None,
    )
    later = NOW + timedelta(days=1)
    second = await store.deals.renew(deal.deal_id, months=6, by="ops2", now=later, today=later.date())
    assert (second.number, second.months, second.starts_on, second.ends_on) == (2, 6, first.ends_on, date(2027, 12, 2))
    assert (second.renewed_at, second.renewed_by) == (later, "ops2")
    assert await store.deals.renewals(deal.deal_id) == [first, second]
    assert await store.deals.renewals() == [first, second]


async def test_a_renewal_adds_whole_periods_of_a_package_of_longer_periods(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    deal = await _deal(store, "ann@one.example.com", QUARTERLY)
    for months in (1, 4, 5):
        with pytest.raises(RecordError) as refused:
            await store.deals.renew(deal.deal_id, months=months, by="ops", now=NOW, today=NOW.date())
        said = _one_line(refused)
        assert said.startswith(f"deal {deal.deal_id} cannot be renewed: its periods are 3 months"), said
        assert "a multiple of 3 months" in said
    assert await store.deals.renewals(deal.deal_id) == []
    renewal = await store.deals.renew(deal.deal_id, months=6, by="ops", now=NOW, today=NOW.date())
    assert (renewal.number, renewal.starts_on, renewal.ends_on) == (1, date(2027, 3, 2), date(2027, 9, 2))


async def test_what_cannot_be_renewed_is_refused_in_one_line_and_nothing_is_written(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    monthly = await _deal(store, "ann@one.example.com")
    one_off = await _deal(store, "bo@two.example.com", ONE_OFF)
    milestones = await _deal(store, "cy@three.example.com", MILESTONES)
    cases: list[tuple[int, int, str]] = [
        (999, 3, "no deal 999 (python run.py deal list shows them)"),
        (one_off.deal_id, 1, f"deal {one_off.deal_id} cannot be renewed: its package 'launch' is billed one_off"),
        (
            milestones.deal_id,
            3,
            f"deal {milestones.deal_id} cannot be renewed: its package 'site' is billed milestones",
        ),
        (monthly.deal_id, 0, f"deal {monthly.deal_id} cannot be renewed: the months must be 1 to 120, not 0"),
        (monthly.deal_id, 121, f"deal {monthly.deal_id} cannot be renewed: the months must be 1 to 120, not 121"),
    ]
    for deal_id, months, said in cases:
        with pytest.raises(RecordError) as refused:
            await store.deals.renew(deal_id, months=months, by="ops", now=NOW, today=NOW.date())
        assert _one_line(refused).startswith(said), (deal_id, months, str(refused.value))
    assert await store.deals.renewals() == []
    # The bounds themselves are fine.
    assert (await store.deals.renew(monthly.deal_id, months=120, by="ops", now=NOW, today=NOW.date())).number == 1
    assert (await store.deals.renew(monthly.deal_id, months=1, by="ops", now=NOW, today=NOW.date())).number == 2


async def test_a_contract_may_be_renewed_until_thirty_days_after_its_end(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    # One month from 2 January: it ended on 2 February.
    deal = await _deal(store, "ann@one.example.com", PACKAGE.model_copy(update={"term_months": 1}), date(2026, 1, 2))
    with pytest.raises(RecordError) as refused:
        await store.deals.renew(deal.deal_id, months=1, by="ops", now=NOW, today=date(2026, 3, 5))
    assert _one_line(refused) == (
        f"deal {deal.deal_id} cannot be renewed: its contract ended on 2026-02-02, more than 30 days ago: "
        "sign a new deal"
    )
    assert await store.deals.renewals() == []
    # Thirty days after: still renewed, from the old end (not from the day it was renewed).
    late = await store.deals.renew(deal.deal_id, months=1, by="ops", now=NOW, today=date(2026, 3, 4))
    assert (late.number, late.starts_on, late.ends_on) == (1, date(2026, 2, 2), date(2026, 3, 2))


async def test_a_retry_naming_its_number_gets_the_renewal_recorded_and_another_number_conflicts(
    engine: AsyncEngine,
) -> None:
    store = CamStore(engine)
    deal = await _deal(store, "ann@one.example.com")
    first = await store.deals.renew(deal.deal_id, months=3, by="ops", now=NOW, today=NOW.date(), number=1)
    assert (first.number, first.starts_on, first.ends_on) == (1, date(2027, 3, 2), date(2027, 6, 2))
    later = NOW + timedelta(hours=1)
    again = await store.deals.renew(deal.deal_id, months=3, by="other", now=later, today=later.date(), number=1)
    assert again == first, "the renewal recorded, not a second one"
    assert first.new and not again.new
    conflicts = [
        (1, 6, f"renewal 1 of deal {deal.deal_id} was for 3 months"),
        (3, 3, f"deal {deal.deal_id} has 1 renewal(s): the next is number 2"),
    ]
    for number, months, said in conflicts:
        with pytest.raises(RenewalConflict) as refused:
            await store.deals.renew(deal.deal_id, months=months, by="ops", now=later, today=later.date(), number=number)
        assert _one_line(refused) == said
    assert await store.deals.renewals() == [first]
    second = await store.deals.renew(deal.deal_id, months=6, by="ops", now=later, today=later.date(), number=2)
    assert (second.number, second.starts_on, second.ends_on) == (2, date(2027, 6, 2), date(2027, 12, 2))


async def test_renewals_are_counted_from_the_start_so_each_begins_where_the_one_before_ended(
    engine: AsyncEngine,
) -> None:
    store = CamStore(engine)
    # One month from 31 January: it ends on 28 February (the day clamped to the month's last);
    # a month more ends on 31 March (the start's day again), not on 28 March.
    deal = await _deal(store, "ann@one.example.com", PACKAGE.model_copy(update={"term_months": 1}), date(2026, 1, 31))
    today = date(2026, 2, 20)
    first = await store.deals.renew(deal.deal_id, months=1, by="ops", now=NOW, today=today)
    second = await store.deals.renew(deal.deal_id, months=2, by="ops", now=NOW, today=today)
    assert [(r.starts_on, r.ends_on) for r in (first, second)] == [
        (date(2026, 2, 28), date(2026, 3, 31)),
        (date(2026, 3, 31), date(2026, 5, 31)),
    ]
    assert contract_end(deal.start, deal.package, 3) == second.ends_on


async def test_renewals_of_opened_deals_are_announced_in_order_until_a_day_after_their_answer(
    engine: AsyncEngine,
) -> None:
    store = CamStore(engine)
    opened = await _deal(store, "ann@one.example.com")
    waiting = await _deal(store, "bo@two.example.com")
    assert opened.deal_id < waiting.deal_id
    await store.deals.opened(opened.deal_id, str(uuid.UUID(int=1)), NOW)

    async def renew(deal: Deal, months: int) -> Renewal:
        return await store.deals.renew(deal.deal_id, months=months, by="ops", now=NOW, today=NOW.date())

    assert await store.deals.renewals_to_announce(NOW) == []
    a1 = await renew(opened, 1)
    b1 = await renew(waiting, 2)
    a2 = await renew(opened, 3)
    # The deal whose project is not open yet waits (its ClientSigned goes first).
    assert await store.deals.renewals_to_announce(NOW) == [a1, a2]
    await store.deals.opened(waiting.deal_id, str(uuid.UUID(int=2)), NOW)
    assert await store.deals.renewals_to_announce(NOW) == [a1, a2, b1]

    answered = NOW + timedelta(hours=1)
    assert await store.deals.renewal_applied(opened.deal_id, 1, "", answered) is True
    assert await store.deals.renewal_applied(opened.deal_id, 1, "again", answered + timedelta(hours=1)) is False
    assert await store.deals.renewal_applied(opened.deal_id, 9, "", answered) is False, "no such renewal"
    assert await store.deals.renewal_applied(waiting.deal_id, 1, "the project is cancelled", answered) is True
    # Still announced for a day after the answer (billing and retention hear the same event),
    # then no more; the unanswered one until it is answered.
    just_before = answered + ECHO - timedelta(seconds=1)
    assert await store.deals.renewals_to_announce(just_before) == [
        replace(a1, applied_at=answered, outcome=""),
        a2,
        replace(b1, applied_at=answered, outcome="the project is cancelled"),
    ]
    assert await store.deals.renewals_to_announce(answered + ECHO) == [a2]
    assert await store.deals.renewals_to_announce(answered + 30 * ECHO) == [a2]
    found = {(r.deal_id, r.number): (r.applied_at, r.outcome) for r in await store.deals.renewals()}
    assert found == {
        (opened.deal_id, 1): (answered, ""),
        (opened.deal_id, 2): (None, None),
        (waiting.deal_id, 1): (answered, "the project is cancelled"),
    }


# -- the API ------------------------------------------------------------------------------------------------------
async def test_a_renewal_through_the_api_is_recorded_retried_refused_and_audited(client: Client) -> None:
    store = client.api.cam
    address = leads()[0]["email"]
    deal = (await _sign(store, address)).deal_id
    path = f"/deals/{deal}/renew"

    viewer = await client.call("POST", path, "viewer", json={"months": 3})
    assert viewer.status_code == 403, viewer.text
    assert await store.deals.renewals() == []

    made = await client.call("POST", path, "operator", json={"months": 3})
    assert made.status_code == 201, made.text
    first = {
        "deal": deal,
        "number": 1,
        "months": 3,
        "starts_on": "2027-03-02",
        "ends_on": "2027-06-02",
        "renewed_by": "operator1",
        "answered": False,
        "applied": False,
        "outcome": None,
    }
    assert made.json() == first
    # A retry naming the renewal recorded gets it again, and renews nothing more.
    again = await client.call("POST", path, "operator", json={"months": 3, "number": 1})
    assert (again.status_code, again.json()) == (200, first)
    assert [r.number for r in await store.deals.renewals(deal)] == [1]
    # The same number for other months, or a number that is not the next: conflicts.
    other = await client.call("POST", path, "operator", json={"months": 6, "number": 1})
    assert other.status_code == 409 and other.json()["error"] == f"renewal 1 of deal {deal} was for 3 months"
    skipped = await client.call("POST", path, "operator", json={"months": 3, "number": 3})
    assert skipped.status_code == 409
    assert skipped.json()["error"] == f"deal {deal} has 1 renewal(s): the next is number 2"
    assert [r.number for r in await store.deals.renewals(deal)] == [1]
    # The next number expected: recorded, from where the first ended.
    second = await client.call("POST", path, "owner", json={"months": 6, "number": 2})
    assert second.status_code == 201, second.text
    assert (second.json()["number"], second.json()["starts_on"], second.json()["ends_on"]) == (
        2,
        "2027-06-02",
        "2027-12-02",
    )
    assert second.json()["renewed_by"] == "owner1"

    async with client.engine.connect() as conn:
        query = sa.select(identity_audit).where(identity_audit.c.action == "deal.renew").order_by(identity_audit.c.id)
        audited = (await conn.execute(query)).mappings().all()
    assert [(a["actor"], a["source"], a["target"], a["detail"]) for a in audited] == [
        ("operator1", "api", str(deal), {"deal": deal, "number": 1, "months": 3}),
        ("owner1", "api", str(deal), {"deal": deal, "number": 2, "months": 6}),
    ]
    listed = (await client.call("GET", "/audit?action=deal.renew", "owner")).json()["items"]
    assert [a["target"] for a in listed] == [str(deal), str(deal)]


async def test_a_renewal_that_cannot_be_is_404_or_422_in_the_repositorys_words(client: Client) -> None:
    store = client.api.cam
    one_off = (await _sign(store, leads()[0]["email"], ONE_OFF)).deal_id
    monthly = (await _sign(store, leads()[1]["email"])).deal_id

    missing = await client.call("POST", "/deals/999/renew", "operator", json={"months": 3})
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"] == "no deal 999 (python run.py deal list shows them)"
    refused = await client.call("POST", f"/deals/{one_off}/renew", "operator", json={"months": 1})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"].startswith(f"deal {one_off} cannot be renewed: its package 'launch' is billed")
    for body in ({"months": 0}, {"months": 121}, {"months": 3, "number": 0}, {}):
        invalid = await client.call("POST", f"/deals/{monthly}/renew", "operator", json=body)
        assert invalid.status_code == 422, (body, invalid.text)
        assert invalid.json()["error"].startswith("invalid request"), (body, invalid.text)
    assert await store.deals.renewals() == []
    async with client.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(identity_audit).where(identity_audit.c.action == "deal.renew")
        assert (await conn.execute(query)).scalar_one() == 0


# -- cam.deals ---------------------------------------------------------------------------------------------------
@dataclass
class DealsRun:
    """`cam.deals` alone in a system on a fake clock that does not move by itself: the test
    publishes each tick and each answer, and reads what was published."""

    system: ActorSystem
    clock: FakeClock
    heard: list[Event] = field(default_factory=list)
    ticks: int = 0

    async def tick(self) -> list[Event]:
        """One tick; what was published during it."""
        before = len(self.heard)
        self.ticks += 1
        await self.publish(self.system.message(Tick, seq=self.ticks, at=self.clock.now(), interval_s=60.0))
        return [e for e in self.heard[before:] if not isinstance(e, Tick)]

    async def publish(self, event: Event) -> None:
        await self.system.events.publish(event)
        await self.system.settle()


@asynccontextmanager
async def deals_running(engine: AsyncEngine) -> AsyncIterator[DealsRun]:
    cam = SupervisorSpec("cam", children=[ChildSpec("cam.deals", lambda: Deals(CamStore(engine)))])
    settings = RuntimeSettings(tick_interval_s=0, seed=4)
    clock = FakeClock(NOW, autojump=False)
    async with ActorSystem(settings, clock=clock, children=[cam]) as system:
        run = DealsRun(system, clock)
        system.events.tap(run.heard.append)
        await system.settle()
        yield run
        assert next(a.restarts for a in system.snapshot().actors if a.name == "cam.deals") == 0


def _renewals(events: list[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, ContractRenewed)]


def _renewed(event: Any) -> tuple[Any, ...]:
    return (
        event.deal_id,
        event.client_ref,
        event.number,
        event.months,
        event.starts_on,
        event.ends_on,
        event.renewed_at,
    )


async def test_cam_deals_announces_each_renewal_of_an_opened_deal_until_a_day_after_it_is_applied(
    engine: AsyncEngine,
) -> None:
    store = CamStore(engine)
    deal = await _deal(store, "ann@one.example.com")
    ref = deal.client["client_ref"]
    project = uuid.UUID(int=5)
    renewed_at = NOW - timedelta(hours=2)
    first = await store.deals.renew(deal.deal_id, months=3, by="ops", now=renewed_at, today=NOW.date())
    async with deals_running(engine) as run:
        # Not opened yet: the deal is announced, its renewal waits.
        assert [type(e) for e in await run.tick()] == [ClientSigned]
        assert await store.deals.opened(deal.deal_id, str(project), NOW)
        heard = await run.tick()
        # The renewal now that the project is open. The deal is announced for a day after its
        # answer too (a module killed before it wrote the deal hears it again), but an hour after
        # its last announcement at the earliest (`echo_due`), not at this same instant.
        assert [type(e) for e in heard] == [ContractRenewed]
        [announced] = _renewals(heard)
        assert isinstance(announced, ContractRenewed)
        expected = (deal.deal_id, ref, 1, 3, date(2027, 3, 2), date(2027, 6, 2), renewed_at)
        assert _renewed(announced) == expected == _renewed(first)
        # Announced on every tick until answered (at least once).
        assert [_renewed(e) for e in _renewals(await run.tick())] == [expected]

        answered = run.clock.now()
        await run.publish(run.system.message(RenewalApplied, deal_id=deal.deal_id, number=1, project_id=project))
        [row] = await store.deals.renewals(deal.deal_id)
        assert (row.applied_at, row.outcome) == (answered, "")
        # A day more (a module killed before it wrote the renewal hears it again), then never.
        run.clock.advance(ECHO.total_seconds() - 60)
        assert [_renewed(e) for e in _renewals(await run.tick())] == [expected]
        run.clock.advance(60)
        assert await run.tick() == [], "a day after the answers: neither the deal nor the renewal"
        run.clock.advance(ECHO.total_seconds())
        assert _renewals(await run.tick()) == []

        # A second renewal the saga could not apply: its detail is kept as the outcome.
        await store.deals.renew(deal.deal_id, months=6, by="ops", now=NOW, today=NOW.date())
        [announced] = _renewals(await run.tick())
        assert isinstance(announced, ContractRenewed)
        assert (announced.number, announced.starts_on, announced.ends_on) == (2, date(2027, 6, 2), date(2027, 12, 2))
        detail = "renewal 2: not applied, the project is cancelling (cancelled)"
        answer = run.system.message(
            RenewalApplied, deal_id=deal.deal_id, number=2, project_id=project, applied=False, detail=detail
        )
        second_answered = run.clock.now()
        await run.publish(answer)
        run.clock.advance(60)
        await run.publish(answer)  # heard twice (at least once): the first answer is kept
        # Without a detail, "not applied" is what is kept.
        await store.deals.renew(deal.deal_id, months=1, by="ops", now=NOW, today=NOW.date())
        # Renewal 2, announced a minute ago, echoes an hour after that at the earliest.
        assert [_renewed(e)[2] for e in _renewals(await run.tick())] == [3]
        third_answered = run.clock.now()
        await run.publish(
            run.system.message(RenewalApplied, deal_id=deal.deal_id, number=3, project_id=project, applied=False)
        )
        run.clock.advance(ECHO.total_seconds())
        assert _renewals(await run.tick()) == []
    found = [(r.number, r.applied_at, r.outcome) for r in await store.deals.renewals(deal.deal_id)]
    assert found == [
        (1, answered, ""),
        (2, second_answered, detail),
        (3, third_answered, "not applied"),
    ]


async def test_the_echo_after_the_answer_thins_out_and_a_restart_announces_again(engine: AsyncEngine) -> None:
    """Ticks every 10 minutes for a day after the deal's answer: the deal is announced again 1 h,
    2 h, 4 h, 8 h and 16 h after its last announcement before the answer, not on every tick; a
    new incarnation of `cam.deals` announces it at once (what the echo is for)."""
    store = CamStore(engine)
    deal = await _deal(store, "bo@two.example.com")
    async with deals_running(engine) as run:
        assert [type(e) for e in await run.tick()] == [ClientSigned]
        answered = run.clock.now()
        assert await store.deals.opened(deal.deal_id, str(uuid.UUID(int=6)), answered)
        echoes = []
        for _ in range(6 * 30):
            run.clock.advance(600)
            if await run.tick():
                echoes.append(run.clock.now() - answered)
        assert echoes == [timedelta(hours=h) for h in (1, 2, 4, 8, 16)]
    async with deals_running(engine) as run:
        run.clock.advance(3600 * 3)  # within the day after the answer
        assert [type(e) for e in await run.tick()] == [ClientSigned]
        assert await run.tick() == []


def test_echo_due() -> None:
    from aicmo_actors.cam.deals import echo_due

    at = NOW
    assert echo_due(None, at, at) and echo_due(at, None, at)
    assert not echo_due(at, at, at + timedelta(minutes=59)) and echo_due(at, at, at + timedelta(hours=1))
    last = at + timedelta(hours=4)
    assert not echo_due(at, last, last + timedelta(hours=3, minutes=59))
    assert echo_due(at, last, last + timedelta(hours=4))


# -- migration 0023 -----------------------------------------------------------------------------------------------
async def test_0023_keys_the_reminders_recorded_before_by_their_contracts_end(database_url: str) -> None:
    ends_on, orphan_due = date(2027, 3, 2), date(2027, 5, 1)
    at = datetime(2026, 3, 2, 8, tzinfo=UTC)
    await migrate(database_url, "0022")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO retention_contracts (deal_id, client_ref, lead_id, campaign, package, term_months,"
                    " starts_on, ends_on, signed_at, created_at) VALUES (1, 'c1', 1, 'spring', 'growth', 12,"
                    " :start, :end, :at, :at)"
                ),
                {"start": START, "end": ends_on, "at": at},
            )
            reminders = [(1, 60, ends_on - timedelta(days=60)), (1, 30, ends_on - timedelta(days=30))]
            # A reminder whose contract is not there (never written so): its day plus its days.
            reminders.append((2, 7, orphan_due))
            for deal, days, due in reminders:
                await conn.execute(
                    sa.text(
                        "INSERT INTO retention_renewals (deal_id, days, client_ref, due_on, state, recorded_at)"
                        " VALUES (:deal, :days, 'c1', :due, 'sent', :at)"
                    ),
                    {"deal": deal, "days": days, "due": due, "at": at},
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO orchestration_projects (id, deal_id, client_ref, company, client, package_name,"
                    " package, start_date, state, step, created_at, updated_at)"
                    " VALUES ('p1', 1, 'c1', 'Acme', '{}', 'growth', '{}', :start, 'running', 'production', :at, :at)"
                ),
                {"start": START, "at": at},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO billing_accounts (deal_id, client_ref, company, client, package, currency, start_on,"
                    " signed_at, created_at) VALUES (1, 'c1', 'Acme', '{}', '{}', 'EUR', :start, :at, :at)"
                ),
                {"start": START, "at": at},
            )
    finally:
        await engine.dispose()

    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text("SELECT deal_id, days, contract_end FROM retention_renewals ORDER BY deal_id, days")
                )
            ).all()
            assert [(r[0], r[1], _day(r[2])) for r in rows] == [
                (1, 30, ends_on),
                (1, 60, ends_on),
                (2, 7, orphan_due + timedelta(days=7)),
            ]
            for table in ("retention_contracts", "orchestration_projects", "billing_accounts"):
                counts = (await conn.execute(sa.text(f"SELECT renewals FROM {table}"))).scalars().all()
                assert counts == [0], table
        insert = sa.text(
            "INSERT INTO retention_renewals (deal_id, contract_end, days, client_ref, due_on, state, recorded_at)"
            " VALUES (1, :end, 60, 'c1', :due, 'sent', :at)"
        )
        # The renewed contract's end has its own 60 days' reminder ...
        renewed_end = date(2027, 6, 2)
        async with engine.begin() as conn:
            await conn.execute(insert, {"end": renewed_end, "due": renewed_end - timedelta(days=60), "at": at})
        # ... and the old end's is still there once.
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(insert, {"end": ends_on, "due": ends_on - timedelta(days=60), "at": at})
        async with engine.connect() as conn:
            query = sa.text("SELECT contract_end FROM retention_renewals WHERE deal_id = 1 AND days = 60")
            ends = sorted(_day(d) for d in (await conn.execute(query)).scalars())
        assert ends == [ends_on, renewed_end]
    finally:
        await engine.dispose()


def _day(value: Any) -> date:
    """A date column as read back by text SQL (SQLite gives its text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
