"""What the client-review tests share: a client, packages with and without auto-approval, a
batch of items, an in-memory mail transport, a stand-in for cam.alerts, and
`client_review.reviews` running in an actor system on a fake clock with the review page served
in the test (`client_review_routes`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, ClassVar

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from aicmo_actors.client_review import REVIEWS, ReviewStore, client_review_routes, client_review_supervisor
from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings, SupervisorSpec
from contracts.base import Event
from contracts.cam import AlertRequested, UnmatchedReply
from contracts.client_review import RequestReview, ReviewItem, WithdrawReviews
from contracts.clients import ClientInfo
from contracts.packages import Deliverable, PackageSpec
from tests.integration.module_run import ModuleRun

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=11)
SECRET = b"client-review-test-secret-32-by!"
MAIL_FROM = "reviews@agency.example"
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
BATCH = f"{PROJECT}:review:1"
# Monday 30 November 2026, 10:00 UTC (11:00 in Berlin).
START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TOKEN_IN_TEXT = re.compile(r"/client/review/([0-9a-f]{64})")


def at9(day: int) -> datetime:
    """09:00 Berlin in December 2026 (08:00 UTC)."""
    return datetime(2026, 12, day, 8, 0, tzinfo=UTC)


# Three business days: Tue 1, Wed 2, Thu 3 December; reminders every three after that.
DEADLINE = at9(3)
REMINDER_2 = at9(8)
ALERT_AT = at9(11)

CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Logistics",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    timezone="Europe/Berlin",
    country="DE",
)


def package(auto_approve_days: int | None = None) -> PackageSpec:
    return PackageSpec(
        name="growth",
        title="Growth",
        price=Decimal("2400"),
        currency="EUR",
        billing="monthly",
        deliverables=(Deliverable(type="blog_post", count=2, channel="blog", max_words=1200),),
        review_rounds=1,
        turnaround_days=5,
        reporting="monthly",
        auto_approve_days=auto_approve_days,
    )


ITEM_1 = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001")
ITEM_2 = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000002")
ITEMS = (
    ReviewItem(
        item_id=ITEM_1,
        version=1,
        title="Route optimisation in 2027",
        type="blog_post",
        channel="blog",
        text="# Route optimisation\n\nFleets that plan routes save fuel.",
        html="<h2>Route optimisation</h2><p>Fleets that plan routes <strong>save fuel</strong>.</p>"
        '<script>alert("x")</script><img src="https://tracker.example/x.gif" onerror="alert(1)">',
    ),
    ReviewItem(
        item_id=ITEM_2,
        version=1,
        title="On-time delivery <b>matters</b>",
        type="social_post",
        channel="linkedin",
        text="On-time delivery is a promise. <script>alert(2)</script>",
    ),
)


@dataclass
class FakeTransport:
    sent: list[EmailMessage] = field(default_factory=list)

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        assert mail_from == MAIL_FROM
        self.sent.append(message)
        return SendResult("accepted", 250, "ok")

    async def close(self) -> None:
        pass

    def subjects(self) -> list[str]:
        return [" ".join(str(m["Subject"]).split()) for m in self.sent]


class AlertsSink(Actor[AlertRequested]):
    """Stands in for cam.alerts: keeps every AlertRequested."""

    def __init__(self, seen: list[AlertRequested]) -> None:
        self.seen = seen

    async def receive(self, message: AlertRequested) -> None:
        self.seen.append(message)


@dataclass
class Run(ModuleRun):
    alerts: list[AlertRequested]
    http: httpx.AsyncClient
    actor: ClassVar[str] = REVIEWS

    async def publish(self, event: Event) -> None:
        await self.system.events.publish(event)
        await self.system.settle()

    def request(self, *, auto_approve_days: int | None = None, key: str = BATCH) -> RequestReview:
        return self.system.message(
            RequestReview,
            project_id=PROJECT,
            idempotency_key=key,
            client=CLIENT,
            package=package(auto_approve_days),
            items=ITEMS,
        )

    def withdraw(self) -> WithdrawReviews:
        return self.system.message(
            WithdrawReviews, project_id=PROJECT, idempotency_key=f"{PROJECT}:review:withdraw", reason="cancelled"
        )

    def reply(self, inbound_id: int, text: str, intent: str | None, **fields: Any) -> UnmatchedReply:
        values: dict[str, Any] = {
            "from_address": "ann@acme.example",
            "subject": "Re: Acme Logistics: 2 pieces for your review",
            "text": text,
            "received_at": self.clock.now(),
            "review_intent": intent,
            "review_comment": text,
            **fields,
        }
        return self.system.message(UnmatchedReply, inbound_id=inbound_id, **values)


@asynccontextmanager
async def running(
    store: ReviewStore, transport: FakeTransport, at: datetime = START, *, reminders: int = 2
) -> AsyncIterator[Run]:
    clock = FakeClock(at, autojump=False)
    alerts: list[AlertRequested] = []
    spec = client_review_supervisor(
        store,
        transport=lambda: transport,
        mail_from=MAIL_FROM,
        agency_name="Bright Agency",
        public_url="https://agency.example",
        secret=SECRET,
        review_days=3,
        reminders=reminders,
    )
    cam = SupervisorSpec("cam", children=[ChildSpec("cam.alerts", lambda: AlertsSink(alerts))])
    app = Starlette(routes=client_review_routes(store, now=clock.now))
    async with (
        ActorSystem(SETTINGS, clock=clock, children=[cam, spec]) as system,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events, alerts, http)


def token_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = TOKEN_IN_TEXT.search(body.get_content())
    assert found is not None
    return found.group(1)


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]
