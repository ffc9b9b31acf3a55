"""Strategy on both databases: its repositories, and `strategy.planner` in an actor system with
a fake clock, an in-memory mail transport and the client's page served in the test.

DraftStrategy told many times sends one email (the PDF attached) and issues one link; an
approval on the page is announced once; changes asked for make version 2 (version 1 kept as
it was), and changes beyond the package's review rounds need a person; an unanswered plan
is overdue once; a cancel revokes the link, withdraws the plan and tells the client once; a
restart (or a killed send) never sends an email twice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.runtime import ActorSystem, FakeClock, RuntimeSettings
from aicmo_actors.storage.client_mail import QUEUED, SENDING
from aicmo_actors.strategy import PLANNER, StrategyStore, strategy_routes, strategy_supervisor
from aicmo_actors.strategy.emails import Letterhead, plan_email
from aicmo_actors.strategy.plan import build_plan, plan_to_json
from aicmo_actors.strategy.repos import NewVersion
from aicmo_actors.strategy.tables import strategy_emails as emails_t
from aicmo_actors.strategy.tables import strategy_links as links_t
from aicmo_actors.strategy.tables import strategy_plans as plans_t
from aicmo_actors.strategy.tables import strategy_requests as requests_t
from contracts.base import Event
from contracts.clients import ClientInfo
from contracts.packages import Deliverable, Kpi, PackageSpec
from contracts.strategy import (
    CancelStrategy,
    DraftStrategy,
    PeriodPlanned,
    PlanApproved,
    PlanChangesRequested,
    PlanOverdue,
    PlanPeriod,
    PlanSent,
    StrategyCancelled,
    StrategyFailed,
)
from tests.integration.module_run import ModuleRun

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=7)
SECRET = b"strategy-test-secret-32-bytes!!!"
MAIL_FROM = "plans@agency.example"
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
# Monday 30 November 2026, 10:00 UTC (11:00 in Berlin).
START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
# Five of the client's business days later, 09:00 Berlin: Tue 1 ... Mon 7 December.
DEADLINE = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
TOKEN_IN_TEXT = re.compile(r"/client/plan/([0-9a-f]{64})")

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
        Deliverable(type="blog_post", count=2, channel="blog", max_words=1200),
        Deliverable(type="social_post", count=4, channel="linkedin", max_chars=1300),
    ),
    review_rounds=1,
    turnaround_days=5,
    reporting="monthly",
    kpis=(Kpi(name="organic_sessions", target=1200, unit="sessions"),),
)
BRIEF = {
    "business": "Route planning software.",
    "audience": "Operations managers at logistics firms.",
    "goals": "More demo requests",
    "brand_voice": "Clear.",
    "competitors": "routeco.example",
    "words_to_use": "route optimisation, fleet utilisation, on-time delivery",
    "words_to_avoid": "cheap",
}


@dataclass
class FakeTransport:
    """An in-memory MailTransport: keeps what it was given."""

    sent: list[EmailMessage] = field(default_factory=list)
    made: int = 0
    closed: int = 0

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        assert mail_from == MAIL_FROM
        assert list(rcpt_to) == ["ann@acme.example"]
        self.sent.append(message)
        return SendResult("accepted", 250, "ok")

    async def close(self) -> None:
        self.closed += 1


@dataclass
class Run(ModuleRun):
    http: httpx.AsyncClient
    actor: ClassVar[str] = PLANNER

    def draft(self, project: uuid.UUID = PROJECT, client: ClientInfo = CLIENT) -> DraftStrategy:
        return self.system.message(
            DraftStrategy,
            project_id=project,
            idempotency_key=f"{project}:strategy",
            client=client,
            package=PACKAGE,
            brief=BRIEF,
            start=date(2026, 12, 1),
        )

    def period(self, period: int, project: uuid.UUID = PROJECT) -> PlanPeriod:
        return self.system.message(
            PlanPeriod,
            project_id=project,
            idempotency_key=f"{project}:plan:{period}",
            client=CLIENT,
            package=PACKAGE,
            period=period,
            start=date(2027, period - 1, 1),  # the plan starts on 1 December 2026
        )

    def cancel(self, project: uuid.UUID = PROJECT) -> CancelStrategy:
        return self.system.message(
            CancelStrategy, project_id=project, idempotency_key=f"{project}:strategy", reason="deal cancelled"
        )

    async def post(self, token: str, action: str, **form: str) -> httpx.Response:
        return await self.http.post(f"/client/plan/{token}/{action}", data=form)


@asynccontextmanager
async def running(store: StrategyStore, transport: FakeTransport, at: datetime = START) -> AsyncIterator[Run]:
    clock = FakeClock(at, autojump=False)

    def make() -> FakeTransport:
        transport.made += 1
        return transport

    spec = strategy_supervisor(
        store,
        transport=make,
        mail_from=MAIL_FROM,
        agency_name="Bright Agency",
        public_url="https://agency.example",
        secret=SECRET,
    )
    app = Starlette(routes=strategy_routes(store, now=clock.now))
    async with (
        ActorSystem(SETTINGS, clock=clock, children=[spec]) as system,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events, http)


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


def token_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = TOKEN_IN_TEXT.search(body.get_content())
    assert found is not None
    return found.group(1)


def subject(message: EmailMessage) -> str:
    """The subject as a reader shows it (a long one arrives folded)."""
    return " ".join(str(message["Subject"]).split())


def attachments(message: EmailMessage) -> list[tuple[str | None, bytes]]:
    return [(a.get_filename(), a.get_content()) for a in message.iter_attachments()]


# -- drafting ------------------------------------------------------------------------------------------------------


async def test_draft_told_many_times_sends_one_email_with_the_pdf_and_issues_one_link(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tell(run.draft())
        await run.tick()
        await run.tell(run.draft())
        await run.tick()

        assert run.of(StrategyFailed) == []
        sent = run.of(PlanSent)
        assert len(sent) == 3
        assert {(e.project_id, e.version, e.deadline) for e in sent} == {(PROJECT, 1, DEADLINE)}
    (message,) = transport.sent
    assert message["To"] == "Ann Lee <ann@acme.example>"
    assert subject(message) == "Acme Logistics: your plan for December 2026, for your approval"
    (plan,) = await rows(engine, sa.select(plans_t))
    assert attachments(message) == [("plan-v1.pdf", plan["pdf"])]
    assert plan["pdf"].startswith(b"%PDF-")
    assert "<h1>Plan for Acme Logistics</h1>" in plan["html"]
    assert (plan["version"], plan["status"], plan["deadline_at"]) == (1, "awaiting", DEADLINE)
    assert plan["created_at"] == START
    assert len(plan["plan"]["items"]) == 6
    (email,) = await rows(engine, sa.select(emails_t))
    assert (email["idempotency_key"], email["kind"], email["status"]) == (f"{PROJECT}:strategy:plan:1", "plan", "SENT")
    (link,) = await rows(engine, sa.select(links_t))
    assert (link["purpose"], link["expires_at"], link["revoked_at"]) == ("plan", START + timedelta(days=30), None)
    (request,) = await rows(engine, sa.select(requests_t))
    assert request["draft_key"] == f"{PROJECT}:strategy"
    assert request["client"]["company"] == "Acme Logistics" and request["package"]["name"] == "growth"
    assert request["brief"] == BRIEF and request["start_date"] == date(2026, 12, 1)
    assert transport.made == transport.closed == 1  # opened for the one email, closed after it
    # The link in the email opens the page.
    view = await store.plans.page(token_of(message), START)
    assert not isinstance(view, str) and (view.company, view.version, view.state) == ("Acme Logistics", 1, "awaiting")


async def test_a_client_the_calendar_does_not_know_fails_and_stores_nothing(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft(client=CLIENT.model_copy(update={"country": "XX"})))
        await run.tell(run.draft(client=CLIENT.model_copy(update={"timezone": "Mars/Olympus"})))
        await run.tick()
        first, second = run.of(StrategyFailed)
        assert first.project_id == PROJECT and "'XX'" in first.reason
        assert "Mars/Olympus" in second.reason
        assert run.of(PlanSent) == []
    assert transport.sent == []
    assert await rows(engine, sa.select(plans_t)) == []
    assert await rows(engine, sa.select(requests_t)) == []


# -- answers -------------------------------------------------------------------------------------------------------


async def test_an_approval_on_the_page_is_announced_once(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tick()
        token = token_of(transport.sent[0])

        run.clock.advance(3600)
        response = await run.post(token, "approve", version="1")
        assert response.status_code == 303
        assert run.of(PlanApproved) == []  # announced by the planner, on its tick

        await run.tick()
        await run.tick()
        (approved,) = run.of(PlanApproved)
        assert (approved.project_id, approved.version, approved.deliverables) == (PROJECT, 1, 6)
        assert approved.approved_at == START + timedelta(hours=1)

        await run.tell(run.draft())  # the saga asks again: the state is said again
        assert len(run.of(PlanApproved)) == 2
        await run.tick(DEADLINE + timedelta(days=1))
        assert run.of(PlanOverdue) == []  # an answered plan is never overdue
    assert len(transport.sent) == 1
    (plan,) = await rows(engine, sa.select(plans_t))
    assert (plan["status"], plan["answered_at"], plan["comments"]) == ("approved", START + timedelta(hours=1), None)
    assert plan["announced_at"] == START + timedelta(hours=1)


async def test_a_later_period_is_planned_from_the_approved_plan_the_same_every_time(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tell(run.period(2))  # asked before the approval: refused, nothing stored
        (failed,) = run.of(StrategyFailed)
        assert "before the plan was approved" in failed.reason
        await run.tick()
        response = await run.post(token_of(transport.sent[0]), "approve", version="1")
        assert response.status_code == 303
        await run.tick()
        (approved,) = run.of(PlanApproved)
        await run.tell(run.period(2))
        await run.tell(run.period(2))
        await run.tell(run.period(3))
        first, again, third = run.of(PeriodPlanned)
    assert first == again.model_copy(update={"message_id": first.message_id, "correlation_id": first.correlation_id})
    assert (first.project_id, first.period, first.version, third.period) == (PROJECT, 2, 1, 3)
    assert [i.key for i in first.items] == [i.key for i in approved.items]
    assert all(date(2027, 1, 1) <= i.due <= date(2027, 1, 31) for i in first.items)
    assert all(date(2027, 2, 1) <= i.due <= date(2027, 2, 28) for i in third.items)
    topics = [i.topic for i in (*approved.items, *first.items, *third.items)]
    assert len(topics) == len(set(topics))
    assert len(transport.sent) == 1, "a later period's calendar is not sent for approval"
    assert len(await rows(engine, sa.select(plans_t))) == 1, "nor stored as a version"


async def test_changes_make_version_2_and_keep_version_1_as_it_was(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tick()
        token = token_of(transport.sent[0])
        (before,) = await rows(engine, sa.select(plans_t))

        run.clock.advance(7200)
        comments = "Please avoid 'fleet utilisation'. And can the first blog post be earlier?"
        response = await run.post(token, "changes", version="1", comments=comments)
        assert response.status_code == 303
        await run.tick()

        (changes,) = run.of(PlanChangesRequested)
        assert (changes.project_id, changes.version, changes.comments) == (PROJECT, 1, comments)
        sent = run.of(PlanSent)
        # Version 2 was made the same Monday: its five business days end on the same day.
        assert [(e.version, e.deadline) for e in sent] == [
            (1, DEADLINE),
            (2, datetime(2026, 12, 7, 8, 0, tzinfo=UTC)),
        ]
        assert len(transport.sent) == 2
        second = transport.sent[1]
        assert subject(second) == "Acme Logistics: your plan for December 2026 (version 2), for your approval"
        token2 = token_of(second)
        assert token2 != token

        await run.tick()
        assert len(run.of(PlanChangesRequested)) == 1 and len(run.of(PlanSent)) == 2  # once

        # Either link shows the latest version.
        for link in (token, token2):
            view = await store.plans.page(link, run.clock.now())
            assert not isinstance(view, str) and (view.version, view.state, view.last_round) == (2, "awaiting", True)

    v1, v2 = await rows(engine, sa.select(plans_t).order_by(plans_t.c.version))
    # Version 1: nothing but its status fields changed.
    for column in ("plan", "html", "pdf", "created_at", "deadline_at", "project_id", "version", "id"):
        assert v1[column] == before[column], column
    assert (v1["status"], v1["comments"]) == ("changes_requested", comments)
    assert v1["answered_at"] == START + timedelta(hours=2)
    assert v1["announced_at"] == START + timedelta(hours=2)
    # Version 2: the same calendar, the comments recorded, the avoided word gone.
    assert (v2["version"], v2["status"]) == (2, "awaiting")
    assert [i["due"] for i in v2["plan"]["items"]] == [i["due"] for i in v1["plan"]["items"]]
    assert v2["plan"]["changes"][0]["comments"] == comments
    assert not any("fleet utilisation" in i["topic"].lower() for i in v2["plan"]["items"])
    assert any("fleet utilisation" in i["topic"].lower() for i in v1["plan"]["items"])
    assert "Changes requested" in v2["html"] and "Changes requested" not in v1["html"]
    assert attachments(transport.sent[1]) == [("plan-v2.pdf", v2["pdf"])]
    keys = [e["idempotency_key"] for e in await rows(engine, sa.select(emails_t).order_by(emails_t.c.id))]
    assert keys == [f"{PROJECT}:strategy:plan:1", f"{PROJECT}:strategy:plan:2"]
    assert len(await rows(engine, sa.select(links_t))) == 2


async def test_changes_beyond_the_review_rounds_need_a_person(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tick()
        await run.post(token_of(transport.sent[0]), "changes", version="1", comments="Shorter topics.")
        await run.tick()
        token2 = token_of(transport.sent[1])
        await run.post(token2, "changes", version="2", comments="Still too long.")
        await run.tick()
        await run.tick()

        assert [(e.version, e.comments) for e in run.of(PlanChangesRequested)] == [
            (1, "Shorter topics."),
            (2, "Still too long."),
        ]
        assert [e.version for e in run.of(PlanSent)] == [1, 2]
        (overdue,) = run.of(PlanOverdue)
        assert overdue.version == 2

        await run.tell(run.draft())  # said again: changes asked for, a person needed
        assert [e.version for e in run.of(PlanOverdue)] == [2, 2]
        view = await store.plans.page(token2, run.clock.now())
        assert not isinstance(view, str) and (view.version, view.state) == (2, "changes_requested")
    assert len(transport.sent) == 2  # no third version
    versions = await rows(engine, sa.select(plans_t).order_by(plans_t.c.version))
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["needs_person_at"] is not None and versions[0]["needs_person_at"] is None


async def test_an_unanswered_plan_is_overdue_once(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tick()
        await run.tick(DEADLINE - timedelta(seconds=1))
        assert run.of(PlanOverdue) == []
        await run.tick(DEADLINE)
        await run.tick(DEADLINE + timedelta(days=2))
        (overdue,) = run.of(PlanOverdue)
        assert (overdue.project_id, overdue.version) == (PROJECT, 1)

        await run.tell(run.draft())
        assert len(run.of(PlanOverdue)) == 2 and len(run.of(PlanSent)) == 2

        # The client may still answer: it is announced as usual.
        await run.post(token_of(transport.sent[0]), "approve", version="1")
        await run.tick()
        assert [e.version for e in run.of(PlanApproved)] == [1]
    (plan,) = await rows(engine, sa.select(plans_t))
    assert plan["overdue_at"] == DEADLINE


# -- cancelling ----------------------------------------------------------------------------------------------------


async def test_a_cancel_revokes_the_link_withdraws_the_plan_and_tells_the_client_once(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tick()
        token = token_of(transport.sent[0])

        await run.tell(run.cancel())
        await run.tick()
        await run.tell(run.cancel())
        await run.tick()
        assert len(run.of(StrategyCancelled)) == 2

        assert await store.plans.page(token, run.clock.now()) == "revoked"
        assert (await run.http.get(f"/client/plan/{token}")).status_code == 410
        assert (await run.post(token, "approve", version="1")).status_code == 410

        await run.tell(run.draft())  # a late DraftStrategy makes nothing
        assert len(run.of(StrategyCancelled)) == 3
        await run.tick(DEADLINE + timedelta(days=1))
        assert run.of(PlanOverdue) == [] and run.of(PlanApproved) == []
    assert [subject(m) for m in transport.sent] == [
        "Acme Logistics: your plan for December 2026, for your approval",
        "Acme Logistics: the plan we sent you is withdrawn",
    ]
    (plan,) = await rows(engine, sa.select(plans_t))
    assert plan["withdrawn_at"] == START and plan["status"] == "awaiting"
    (link,) = await rows(engine, sa.select(links_t))
    assert link["revoked_at"] == START
    (request,) = await rows(engine, sa.select(requests_t))
    assert (request["cancel_key"], request["cancel_reason"]) == (f"{PROJECT}:strategy", "deal cancelled")
    keys = [e["idempotency_key"] for e in await rows(engine, sa.select(emails_t).order_by(emails_t.c.id))]
    assert keys == [f"{PROJECT}:strategy:plan:1", f"{PROJECT}:strategy:cancelled"]


async def test_a_cancel_before_the_plan_went_out_sends_nothing(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tell(run.cancel())  # before any tick: the plan email is still queued
        await run.tick()
        assert len(run.of(StrategyCancelled)) == 1
    assert transport.sent == []
    (email,) = await rows(engine, sa.select(emails_t))
    assert email["status"] == "CANCELLED"


async def test_a_cancel_before_any_plan_is_recorded_and_wins(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.cancel())
        await run.tell(run.draft())
        await run.tick()
        assert len(run.of(StrategyCancelled)) == 2
        assert run.of(PlanSent) == []
    assert transport.sent == []
    assert await rows(engine, sa.select(plans_t)) == []
    (request,) = await rows(engine, sa.select(requests_t))
    assert request["cancelled_at"] == START and request["client"] is None


# -- restarts ------------------------------------------------------------------------------------------------------


async def test_a_restart_does_not_send_again(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())
        await run.tick()
    assert len(transport.sent) == 1
    async with running(StrategyStore(engine), transport, at=START + timedelta(minutes=5)) as run:
        await run.tick()
        await run.tell(run.draft())
        await run.tick()
        assert [e.version for e in run.of(PlanSent)] == [1]
    assert len(transport.sent) == 1


async def test_an_email_a_killed_incarnation_was_sending_is_never_sent_again(engine: AsyncEngine) -> None:
    store, transport = StrategyStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.draft())  # queued, not sent (no tick)
    async with engine.begin() as conn:  # as if the process died in the middle of the send
        await conn.execute(emails_t.update().where(emails_t.c.status == QUEUED).values(status=SENDING))
    async with running(StrategyStore(engine), transport) as run:
        await run.tick()
        await run.tick()
    assert transport.sent == []
    (email,) = await rows(engine, sa.select(emails_t))
    assert email["status"] == "UNCONFIRMED"


# -- the repositories ----------------------------------------------------------------------------------------------


def _new(version: int = 1, token: str = "ab" * 32) -> NewVersion:
    plan = build_plan(CLIENT, PACKAGE, BRIEF, date(2026, 12, 1), seed="p")
    head = Letterhead(MAIL_FROM, "Bright Agency", "https://agency.example")
    key = f"{PROJECT}:strategy:plan:{version}"
    message = plan_email(
        head, CLIENT, plan, key=key, pdf=b"%PDF", token=token, deadline=DEADLINE, last_round=False, now=START
    )
    return NewVersion(
        project_id=str(PROJECT),
        version=version,
        plan=plan_to_json(plan),
        html="<article>v</article>",
        pdf=b"%PDF",
        deadline_at=DEADLINE,
        token=token,
        link_expires_at=START + timedelta(days=30),
        email=message,
    )


async def _first(store: StrategyStore) -> bool:
    created, _ = await store.plans.create_first(
        _new(),
        draft_key="k",
        client=CLIENT.model_dump(mode="json"),
        package=PACKAGE.model_dump(mode="json"),
        brief=BRIEF,
        start=date(2026, 12, 1),
        now=START,
    )
    return created


async def test_repos_version_1_is_made_once(engine: AsyncEngine) -> None:
    store = StrategyStore(engine)
    assert await _first(store) is True
    assert await _first(store) is False
    state = await store.plans.state(str(PROJECT))
    assert state.latest is not None and state.latest.version == 1 and not state.cancelled
    assert len(await store.plans.versions(str(PROJECT))) == 1
    assert len(await rows(engine, sa.select(emails_t))) == 1
    document = await store.plans.document(str(PROJECT), 1)
    assert document == ("<article>v</article>", b"%PDF")
    assert await store.plans.document(str(PROJECT), 2) is None


async def test_repos_an_answer_only_for_the_latest_version_while_it_awaits(engine: AsyncEngine) -> None:
    store = StrategyStore(engine)
    await _first(store)
    token = "ab" * 32
    assert await store.plans.answer("cd" * 32, 1, approve=True, comments=None, now=START) == "unknown"
    stale = await store.plans.answer(token, 2, approve=True, comments=None, now=START)
    assert not isinstance(stale, str) and not stale.done and stale.view.state == "awaiting"
    done = await store.plans.answer(token, 1, approve=False, comments="Shorter.", now=START)
    assert not isinstance(done, str) and done.done and done.view.state == "changes_requested"
    again = await store.plans.answer(token, 1, approve=True, comments=None, now=START)
    assert not isinstance(again, str) and not again.done and again.view.state == "changes_requested"
    (pending,) = await store.plans.unannounced()
    assert (pending.version, pending.status, pending.comments) == (1, "changes_requested", "Shorter.")

    assert await store.plans.revise(pending.id, _new(2, "ef" * 32), START) is True
    assert await store.plans.revise(pending.id, _new(2, "ef" * 32), START) is False  # once
    assert await store.plans.unannounced() == []
    assert [v.version for v in await store.plans.versions(str(PROJECT))] == [1, 2]


async def test_repos_overdue_and_cancel(engine: AsyncEngine) -> None:
    store = StrategyStore(engine)
    await _first(store)
    assert await store.plans.overdue(DEADLINE - timedelta(seconds=1)) == []
    (late,) = await store.plans.overdue(DEADLINE)
    assert await store.plans.mark_overdue(late.id, DEADLINE) is True
    assert await store.plans.mark_overdue(late.id, DEADLINE) is False
    assert await store.plans.overdue(DEADLINE) == []

    first = await store.plans.cancel(str(PROJECT), key="k", reason="r", notice=None, now=DEADLINE)
    assert (first.first, first.links_revoked, first.emails_cancelled, first.notice_queued) == (True, 1, 1, False)
    again = await store.plans.cancel(str(PROJECT), key="k", reason="r", notice=None, now=DEADLINE)
    assert again.first is False
    assert (await store.plans.state(str(PROJECT))).cancelled
    assert await store.plans.pdf("ab" * 32, 1, DEADLINE) == "revoked"
