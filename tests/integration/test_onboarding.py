"""Onboarding on both databases: its repositories, and `onboarding.intake` in an actor system
with a fake clock and an in-memory mail transport.

StartOnboarding told many times sends one welcome and issues one link; reminders go on the
client's business days, then the intake is overdue once; a cancel revokes the link and
stops the reminders; a reply is read only when it names one of our Message-IDs; a
completion through the form is announced; a killed actor never sends an email twice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.onboarding import INTAKE, OnboardingStore, onboarding_supervisor
from aicmo_actors.onboarding.repos import IntakeError
from aicmo_actors.onboarding.tables import onboarding_emails as emails_t
from aicmo_actors.onboarding.tables import onboarding_intakes as intakes_t
from aicmo_actors.onboarding.tables import onboarding_links as links_t
from aicmo_actors.onboarding.tables import onboarding_replies as replies_t
from aicmo_actors.runtime import ActorSystem, FakeClock, RuntimeSettings, killpoints
from contracts.base import Event
from contracts.cam import UnmatchedReply
from contracts.clients import ClientInfo
from contracts.onboarding import (
    CancelOnboarding,
    IntakeReplyReceived,
    OnboardingCancelled,
    OnboardingCompleted,
    OnboardingFailed,
    OnboardingOverdue,
    OnboardingStarted,
    StartOnboarding,
)
from contracts.packages import Deliverable, PackageSpec
from tests.integration.module_run import ModuleRun

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=11)
SECRET = b"onboarding-test-secret-32-bytes!"
MAIL_FROM = "hello@agency.example"
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
# Monday 12 July 2027, 10:00 UTC; Wednesday 14 July is a French public holiday.
START = datetime(2027, 7, 12, 10, 0, tzinfo=UTC)
#: The client's reminders (3 business days apart, 09:00 Paris = 07:00 UTC) and the alert.
FIRST_REMINDER = datetime(2027, 7, 16, 7, 0, tzinfo=UTC)  # Tue, (Wed 14 holiday), Thu, Fri
SECOND_REMINDER = datetime(2027, 7, 21, 7, 0, tzinfo=UTC)  # Mon, Tue, Wed
DEADLINE = datetime(2027, 7, 26, 7, 0, tzinfo=UTC)  # Thu, Fri, Mon
TOKEN_IN_TEXT = re.compile(r"/client/intake/([0-9a-f]{64})")
ANSWERS = {
    "business": "We sell tea to cafes.",
    "audience": "Cafe owners in France.",
    "goals": "Twenty new cafes this year.",
    "brand_voice": "Warm, precise, calm.",
    "competitors": "teaco.example",
}

CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Tea",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    timezone="Europe/Paris",
    country="FR",
)
PACKAGE = PackageSpec(
    name="starter",
    title="Starter",
    price=Decimal("1500"),
    currency="EUR",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=2, channel="blog"),),
    review_rounds=1,
    turnaround_days=5,
    reporting="monthly",
)


@dataclass
class FakeTransport:
    """An in-memory MailTransport: keeps what it was given; `after_send` runs after each one."""

    sent: list[EmailMessage] = field(default_factory=list)
    closed: int = 0
    after_send: Callable[[], None] | None = None

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        assert mail_from == MAIL_FROM
        assert list(rcpt_to) == [str(message["To"]).rpartition("<")[2].rstrip(">")]
        self.sent.append(message)
        if self.after_send is not None:
            self.after_send()
        return SendResult("accepted", 250, "ok")

    async def close(self) -> None:
        self.closed += 1

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.sent]


@dataclass
class Run(ModuleRun):
    actor: ClassVar[str] = INTAKE

    def start(self, project: uuid.UUID = PROJECT, client: ClientInfo = CLIENT) -> StartOnboarding:
        return self.system.message(
            StartOnboarding,
            project_id=project,
            idempotency_key=f"{project}:onboarding",
            client=client,
            package=PACKAGE,
            start=date(2027, 7, 12),
        )

    def cancel(self, project: uuid.UUID = PROJECT) -> CancelOnboarding:
        return self.system.message(
            CancelOnboarding, project_id=project, idempotency_key=f"{project}:onboarding", reason="deal cancelled"
        )

    def restarts(self) -> int:
        return next(a.restarts for a in self.system.snapshot().actors if a.name == INTAKE)


@asynccontextmanager
async def running(store: OnboardingStore, transport: FakeTransport, at: datetime = START) -> AsyncIterator[Run]:
    clock = FakeClock(at, autojump=False)
    spec = onboarding_supervisor(
        store,
        transport=lambda: transport,
        mail_from=MAIL_FROM,
        agency_name="Bright Agency",
        public_url="https://agency.example",
        secret=SECRET,
    )
    async with ActorSystem(SETTINGS, clock=clock, children=[spec]) as system:
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events)


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


def token_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = TOKEN_IN_TEXT.search(body.get_content())
    assert found is not None
    return found.group(1)


# -- starting ---------------------------------------------------------------------------------


async def test_start_told_many_times_sends_one_welcome_and_issues_one_link(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start())
        await run.tell(run.start())
        await run.tick()
        await run.tell(run.start())
        await run.tick()

        assert run.of(OnboardingFailed) == []
        started = run.of(OnboardingStarted)
        assert len(started) == 3
        assert {(e.project_id, e.waiting_for, e.deadline) for e in started} == {
            (PROJECT, "intake answers from ann@acme.example", DEADLINE)
        }
    assert transport.message_ids() == [f"<onboarding.welcome.{PROJECT}@agency.example>"]
    (welcome,) = transport.sent
    assert welcome["To"] == "Ann Lee <ann@acme.example>"
    assert [a.get_filename() for a in welcome.iter_attachments()] == ["invite.ics"]
    (email,) = await rows(engine, sa.select(emails_t))
    assert (email["idempotency_key"], email["status"]) == (f"{PROJECT}:onboarding:welcome", "SENT")
    (link,) = await rows(engine, sa.select(links_t))
    assert (link["purpose"], link["expires_at"], link["revoked_at"]) == ("intake", START + timedelta(days=30), None)
    (intake,) = await rows(engine, sa.select(intakes_t))
    assert intake["state"] == "waiting"
    assert intake["client"]["company"] == "Acme Tea"
    assert intake["package"]["name"] == "starter"
    assert (intake["next_action_at"], intake["deadline_at"]) == (FIRST_REMINDER, DEADLINE)
    # The link in the email opens the form.
    view = await store.forms.open(token_of(welcome), START)
    assert not isinstance(view, str) and view.company == "Acme Tea"


async def test_a_client_the_calendar_does_not_know_fails_and_stores_nothing(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start(client=CLIENT.model_copy(update={"timezone": "Mars/Olympus"})))
        await run.tick()
        (failed,) = run.of(OnboardingFailed)
        assert failed.project_id == PROJECT and "Mars/Olympus" in failed.reason
    assert transport.sent == []
    assert await rows(engine, sa.select(intakes_t)) == []


# -- reminders --------------------------------------------------------------------------------


async def test_reminders_go_on_the_clients_business_days_then_a_person_is_alerted_once(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start())
        await run.tick()
        token = token_of(transport.sent[0])

        await run.tick(FIRST_REMINDER - timedelta(minutes=1))  # Friday 08:59 Paris: not yet
        assert len(transport.sent) == 1
        await run.tick(FIRST_REMINDER)
        assert transport.message_ids()[1:] == [f"<onboarding.reminder.1.{PROJECT}@agency.example>"]
        await run.tick(FIRST_REMINDER + timedelta(hours=3))
        assert len(transport.sent) == 2  # one reminder per step

        await run.tick(SECOND_REMINDER)
        assert transport.message_ids()[2:] == [f"<onboarding.reminder.2.{PROJECT}@agency.example>"]
        assert [token_of(m) for m in transport.sent[1:]] == [token, token]  # the same link
        assert [m["Date"].datetime for m in transport.sent[1:]] == [FIRST_REMINDER, SECOND_REMINDER]
        assert run.of(OnboardingOverdue) == []

        await run.tick(DEADLINE - timedelta(seconds=1))
        assert run.of(OnboardingOverdue) == []
        await run.tick(DEADLINE)
        await run.tick(DEADLINE + timedelta(days=3))
        (overdue,) = run.of(OnboardingOverdue)
        assert (overdue.project_id, overdue.reminders_sent) == (PROJECT, 2)
        assert len(transport.sent) == 3
        # Told to start again: still waiting (Started), and still overdue.
        await run.tell(run.start())
        assert [type(e) for e in run.events[-2:]] == [OnboardingStarted, OnboardingOverdue]
    (intake,) = await rows(engine, sa.select(intakes_t))
    assert intake["overdue_at"] == DEADLINE and intake["overdue_announced_at"] == DEADLINE
    assert intake["reminders_sent"] == 2 and intake["next_action_at"] is None
    # The transport was made for each tick that sent, and closed after it.
    assert transport.closed >= 3


# -- cancelling -------------------------------------------------------------------------------


async def test_cancel_revokes_the_link_stops_the_reminders_and_tells_the_client_once(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start())
        await run.tick()
        token = token_of(transport.sent[0])
        await run.tell(run.cancel())
        await run.tell(run.cancel())
        await run.tick()
        await run.tick(DEADLINE + timedelta(days=1))
        await run.tell(run.start())  # the saga told again after its restart: nothing starts

        assert [e.project_id for e in run.of(OnboardingCancelled)] == [PROJECT] * 3
        assert run.of(OnboardingOverdue) == []
        assert len(run.of(OnboardingStarted)) == 1
    assert transport.message_ids() == [
        f"<onboarding.welcome.{PROJECT}@agency.example>",
        f"<onboarding.cancelled.{PROJECT}@agency.example>",
    ]
    (link,) = await rows(engine, sa.select(links_t))
    assert link["revoked_at"] == START
    assert await store.forms.open(token, START) == "revoked"
    (intake,) = await rows(engine, sa.select(intakes_t))
    assert (intake["state"], intake["cancel_reason"], intake["reminders_sent"]) == ("cancelled", "deal cancelled", 0)


async def test_a_cancel_before_the_welcome_went_out_cancels_it_and_says_nothing(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start())
        await run.tell(run.cancel())  # before any tick: the welcome is still queued
        await run.tick()
    assert transport.sent == []
    assert [(r["kind"], r["status"]) for r in await rows(engine, sa.select(emails_t))] == [("welcome", "CANCELLED")]


async def test_a_cancel_with_no_intake_is_kept_so_a_late_start_starts_nothing(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.cancel())
        await run.tell(run.cancel())
        await run.tell(run.start())
        await run.tick()
        assert len(run.of(OnboardingCancelled)) == 3
        assert run.of(OnboardingStarted) == []
    assert transport.sent == []
    assert await rows(engine, sa.select(links_t)) == []
    (intake,) = await rows(engine, sa.select(intakes_t))
    assert (intake["state"], intake["client"]) == ("cancelled", None)


# -- replies ----------------------------------------------------------------------------------


async def test_a_reply_is_read_only_when_it_names_one_of_our_message_ids(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start())
        await run.tick()
        welcome_id = str(transport.sent[0]["Message-ID"])

        def reply(inbound_id: int, **fields: Any) -> UnmatchedReply:
            defaults: dict[str, Any] = {
                "from_address": "ann@acme.example",
                "subject": "Re: Welcome to Bright Agency: a few questions to get started",
                "text": "Our business: tea.\nOur audience: cafes.",
                "received_at": START + timedelta(hours=2),
            }
            return run.system.message(UnmatchedReply, inbound_id=inbound_id, **{**defaults, **fields})

        # The contact's own address and our subject, but no Message-ID of ours: not ours.
        await run.system.events.publish(reply(1, in_reply_to="<other@acme.example>", references=("<x@y.example>",)))
        await run.system.settle()
        assert run.of(IntakeReplyReceived) == []
        assert await rows(engine, sa.select(replies_t)) == []

        # Ours in References (In-Reply-To names something else), from anyone: kept, once.
        ours = reply(
            2, from_address="assistant@elsewhere.example", in_reply_to="<z@y.example>", references=(welcome_id,)
        )
        await run.system.events.publish(ours)
        await run.system.events.publish(ours)
        await run.system.settle()
        (received,) = run.of(IntakeReplyReceived)
        assert (received.project_id, received.inbound_ref) == (PROJECT, "2")

        # A person reads it: no reminders, the alert at the deadline if nothing completes it.
        await run.tick(FIRST_REMINDER)
        await run.tick(SECOND_REMINDER)
        assert transport.message_ids() == [welcome_id]
        await run.tell(run.start())
        assert run.of(OnboardingStarted)[-1].waiting_for == (
            "a person to read the intake answers ann@acme.example sent by email"
        )
        await run.tick(DEADLINE)
        (overdue,) = run.of(OnboardingOverdue)
        assert overdue.reminders_sent == 0
    (stored,) = await rows(engine, sa.select(replies_t))
    assert (stored["project_id"], stored["inbound_id"], stored["from_address"]) == (
        str(PROJECT),
        2,
        "assistant@elsewhere.example",
    )
    assert stored["text"] == "Our business: tea.\nOur audience: cafes."
    (intake,) = await rows(engine, sa.select(intakes_t))
    assert intake["state"] == "waiting" and intake["needs_person_at"] == START
    assert [r.inbound_id for r in await store.replies.of_project(str(PROJECT))] == [2]


# -- completing -------------------------------------------------------------------------------


async def test_a_form_completion_is_announced_at_least_once_and_stops_the_reminders(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start())
        await run.tick()
        token = token_of(transport.sent[0])
        # The form, served by the service's HTTP server, writes; the actor announces.
        done_at = START + timedelta(days=1)
        saved = await store.forms.save(token, ANSWERS, submit=True, now=done_at)
        assert not isinstance(saved, str) and saved.completed_now
        await run.tick(done_at + timedelta(minutes=1))
        await run.tick(FIRST_REMINDER)
        (completed,) = run.of(OnboardingCompleted)
        assert completed.project_id == PROJECT
        assert completed.completed_at == done_at
        assert {k: v for k, v in completed.brief.items() if v} == ANSWERS
        assert completed.brief["assets"] == ""
        await run.tell(run.start())  # told again: the same answer
        assert len(run.of(OnboardingCompleted)) == 2
    assert len(transport.sent) == 1
    (intake,) = await rows(engine, sa.select(intakes_t))
    assert (intake["completed_by"], intake["announced_at"]) == ("client", done_at + timedelta(minutes=1))


async def test_complete_by_hand(engine: AsyncEngine) -> None:
    store, transport = OnboardingStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.start())
        later = START + timedelta(days=2)
        with pytest.raises(IntakeError, match="no onboarding for project"):
            await store.intakes.complete_by_hand(str(uuid.UUID(int=5)), ANSWERS, "maria", later)
        with pytest.raises(IntakeError, match="required answers missing: competitors"):
            await store.intakes.complete_by_hand(
                str(PROJECT), {k: v for k, v in ANSWERS.items() if k != "competitors"}, "maria", later
            )
        with pytest.raises(IntakeError, match="unknown questions: colour"):
            await store.intakes.complete_by_hand(str(PROJECT), {**ANSWERS, "colour": "red"}, "maria", later)
        row = await store.intakes.complete_by_hand(str(PROJECT), ANSWERS, "maria", later)
        assert (row.state, row.completed_by, row.completed_at) == ("completed", "maria", later)
        with pytest.raises(IntakeError, match="is completed, not waiting"):
            await store.intakes.complete_by_hand(str(PROJECT), ANSWERS, "maria", later)
        await run.tick(later)
        (completed,) = run.of(OnboardingCompleted)
        assert completed.brief["business"] == ANSWERS["business"]


# -- kills ------------------------------------------------------------------------------------


async def test_an_actor_killed_after_the_send_never_sends_that_email_again(engine: AsyncEngine) -> None:
    """Killed between the SMTP server's 250 and the SENT commit: the restarted actor finds the
    row SENDING, marks it UNCONFIRMED and never sends it again (at most once)."""
    store, transport = OnboardingStore(engine), FakeTransport()
    armed = False

    def arm() -> None:
        nonlocal armed
        armed = True

    async def kill_at_the_next_write(kind: str) -> None:
        nonlocal armed
        if armed and kind == killpoints.STORE:
            armed = False
            raise RuntimeError("killed after the send, before its commit")

    transport.after_send = arm
    async with running(store, transport) as run:
        await run.tell(run.start())
        with killpoints.installed(kill_at_the_next_write):
            await run.tick()
            assert run.restarts() == 1
            await run.tell(run.start())
            await run.tick()
        await run.tick(START + timedelta(hours=1))
    assert transport.message_ids() == [f"<onboarding.welcome.{PROJECT}@agency.example>"]
    (email,) = await rows(engine, sa.select(emails_t))
    assert (email["status"], email["error"]) == ("UNCONFIRMED", "interrupted during the send")


async def test_a_new_incarnation_rebuilds_everything_from_the_database(engine: AsyncEngine) -> None:
    """A whole process stopped and started again (a new system on the same database): the
    welcome is not sent twice, the reminders go on where they were."""
    store = OnboardingStore(engine)
    first, second = FakeTransport(), FakeTransport()
    async with running(store, first) as run:
        await run.tell(run.start())
        await run.tick()
        await run.tick(FIRST_REMINDER)
    async with running(store, second, at=FIRST_REMINDER + timedelta(hours=1)) as run:
        await run.tell(run.start())
        await run.tick()
        await run.tick(SECOND_REMINDER)
        assert len(run.of(OnboardingStarted)) == 1
    assert len(first.sent) == 2
    assert second.message_ids() == [f"<onboarding.reminder.2.{PROJECT}@agency.example>"]
