"""Control API benchmark (issue 16): reads through the HTTP API against the same reads made
straight on the storage layer, the web app's pages (issue 17), and what metering costs the
simulation.

    python -m bench api [--leads N] [--inbound I] [--db sqlite|postgresql|both] [--pg-url URL]
                        [--seconds S] [--usage-per-day U] [--seed SEED] [--skip-pages]
                        [--skip-metering] [--sim-leads M] [--sim-days D] [--sim-rounds R]

A scratch database gets N leads (default 100,000) in four campaigns, bulk-inserted (not
through the actors), with the emails, replies, alerts and suppressions their states imply,
more inbound mail up to I messages in all (default 50,000; `EXTRA_INBOUND`: follow-ups in
the threads of leads that answered, a third of them hot - interested, meeting request,
question, referral - and mail that matched nothing we sent), and a month of usage (30 days
x --usage-per-day records, default 10,000: emails sent, messages read and classified,
alerts delivered, API calls). Then three read cases, each timed for S seconds (default 3)
as sequential calls, the API and the direct calls taking turns in two rounds of S/2
seconds each:

- lead_list: GET /api/v1/leads?campaign=C&state=X&limit=50&after=..., paging through each
  (campaign, state) pair in turn, against `CamStore.leads.page(...)` with the same
  arguments;
- lead_history: GET /api/v1/leads/{id} for seeded random leads, against
  `CamStore.leads.history(id)`;
- usage: GET /api/v1/usage?by=module,kind and ?by=day in turn, against
  `UsageRepo.totals(by=...)`.

The API is called in process, through httpx's ASGI transport, on the app the service
serves (the public routes with the control API mounted under /api/v1, behind the access
log middleware), with a viewer's bearer token: it measures the API stack (routing,
authentication, validation, the query, serialisation) and not the network. `ratio` is
api_rps / direct_rps (target >= 0.5 each). `harness_rps` is the same client against an
ASGI app that answers `{}` at once: what the client side alone allows.

`pages` (issue 17; --skip-pages: null): the web app's pages, opened with a viewer's session
cookie through the same client, each for S seconds as sequential calls: the dashboard (with
its figures kept, as an operator opening it again sees it) and the same with every figure
read again (`dashboard_fresh`: `/app/?fresh=1`, what the first visit costs), the inbox's
first page, its first page of `interested`, random messages, the leads in state replied,
leads found by part of a company name, random leads, usage. Each has `rps`, `p50_ms` and
`p95_ms` (figures, not targets: about 300 ms at p95 is where a page feels slow)
and `html_kb`; the inbox lists, the lead lists and the lead page also their direct
equivalent on the storage layer, in turns as above (`direct_rps`, `ratio` = rps /
direct_rps; the page also renders, and reads what its filters and menus show).

`metering_overhead`: the simulation (M leads, default 1,000; D days, default 30; the `sim`
bench's speed campaign) run with metering on and off, alternating, R times each (default
2); speed is simulated lead-days per wall second, best of each; the figure is on / off
(target >= 0.95).

PostgreSQL (--db postgresql or both): a scratch database on --pg-url, else
AICMO_TEST_DATABASE_URL, else postgresql+asyncpg://postgres@127.0.0.1:5432/test.
With the defaults a run takes about three minutes on a 2-core machine: ~25 s to populate,
~20 s of API calls, ~50 s of pages, ~80 s of simulations (--skip-metering leaves them out).

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

TARGET_RATIO = 0.5
TARGET_METERING = 0.95
CAMPAIGNS = 4
PAGE = 50
#: Lead states and their shares (what a month-old set of campaigns looks like).
STATES: tuple[tuple[str, float], ...] = (
    ("active", 0.55),
    ("completed", 0.15),
    ("stopped", 0.08),
    ("replied", 0.05),
    ("not_interested", 0.05),
    ("bounced", 0.05),
    ("paused", 0.04),
    ("unsubscribed", 0.03),
)
#: The (campaign, state) pairs the lead list pages through: a common state and two rarer ones.
LIST_STATES = ("completed", "replied", "active")
#: What an inbound message of a lead in this state was classified as.
INBOUND_CATEGORY = {
    "replied": "interested",
    "not_interested": "not_interested",
    "unsubscribed": "unsubscribe",
    "paused": "auto_reply",
    "bounced": "bounce_hard",
}
#: The categories a person should answer first (the inbox puts them on top; they raise alerts).
HOT = ("interested", "meeting_request", "question", "referral")
#: The inbound mail beyond the replies that stopped a lead (`extra_inbound`), as shares:
#: (the state of the lead it comes from, None: matched nothing we sent; its categories).
EXTRA_INBOUND: tuple[tuple[str | None, tuple[tuple[str, float], ...], float], ...] = (
    ("replied", (("interested", 0.4), ("meeting_request", 0.25), ("question", 0.25), ("referral", 0.1)), 0.35),
    ("replied", (("other", 0.6), ("auto_reply", 0.4)), 0.10),
    ("paused", (("auto_reply", 1.0),), 0.15),
    ("not_interested", (("not_interested", 0.8), ("other", 0.2)), 0.10),
    ("bounced", (("bounce_hard", 0.7), ("bounce_soft", 0.3)), 0.05),
    (None, (("other", 0.7), ("auto_reply", 0.2), ("question", 0.1)), 0.25),
)
BODIES = {
    "interested": "Sounds good, let's talk next week.",
    "meeting_request": "Can we meet on Tuesday at 10?",
    "question": "How does the pricing work?",
    "referral": "Please write to my colleague Kim instead.",
    "other": "Thanks for the note.",
    "auto_reply": "I am out of the office until Monday.",
    "not_interested": "Not for us, sorry.",
    "bounce_hard": "550 5.1.1 user unknown",
    "bounce_soft": "452 4.2.2 mailbox full",
}
#: Usage kinds per day, as shares of --usage-per-day.
USAGE_KINDS: tuple[tuple[str, str, float], ...] = (
    ("cam", "email_sent", 0.62),
    ("cam", "message_read", 0.15),
    ("cam", "message_classified", 0.15),
    ("cam", "alert_delivered", 0.03),
    ("api", "api_call", 0.05),
)
CHUNK = 5000
#: Each page is opened at least this many times, however slow (its p95 is their slowest).
MIN_PAGE_CALLS = 5
SENDERS = ("alex@outreach.example.com", "sam@outreach.example.com")
RAW_REPLY = (
    "From: {who}\r\nTo: alex@outreach.example.com\r\nSubject: Re: Quick question\r\n"
    "Message-ID: <reply-{n}@example.net>\r\nIn-Reply-To: {irt}\r\nDate: {date}\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "Hi Alex,\r\n\r\nthanks for writing. {body}\r\n\r\nBest,\r\n{name}\r\n"
)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BenchError(Exception):
    """Something the run cannot go on without: one line for the user."""


# -- the database ---------------------------------------------------------------------------------


@dataclass
class Data:
    """What was written, for the workloads: campaign names, lead ids, when the month ends,
    the inbound messages' ids."""

    campaigns: list[str]
    lead_ids: list[int]
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)
    inbound_ids: list[int] = field(default_factory=list)


def _campaign_specs(n: int) -> list[Any]:
    from aicmo_actors.cam.campaign import CampaignSpec, parse_campaign
    from aicmo_actors.cli.demo import EXAMPLES

    text = (EXAMPLES / "campaign.toml").read_text(encoding="utf-8")
    base = json.loads(parse_campaign(text, "examples/campaign.toml", allow_test_domains=True).to_json())
    return [CampaignSpec.model_validate({**base, "name": f"{base['name']}-{i + 1}"}) for i in range(n)]


async def _insert(engine: AsyncEngine, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows[start : start + CHUNK])


async def _ids(engine: AsyncEngine, column: Any, expected: int) -> list[int]:
    async with engine.connect() as conn:
        ids = [int(i) for i in (await conn.execute(select(column).order_by(column))).scalars()]
    if len(ids) != expected:
        raise BenchError(f"expected {expected} rows in {column.table.name}, found {len(ids)}")
    return ids


def _states(rng: random.Random, n: int) -> list[str]:
    names = [s for s, _ in STATES]
    weights = [w for _, w in STATES]
    return rng.choices(names, weights, k=n)


def _inbound_row(
    n: int,
    who: str,
    category: str,
    received: datetime,
    body: str,
    name: str,
    lead_id: int | None,
    replied_to: tuple[int, dict[str, Any]] | None,
) -> dict[str, Any]:
    """The n-th inbound message (uid n), classified and acted on; `replied_to` is the
    (id, row) of the email it answers (None: it matched nothing we sent)."""
    irt = replied_to[1]["message_id"] if replied_to else None
    raw = RAW_REPLY.format(
        who=who,
        n=n,
        irt=irt or "<none@example.net>",
        date=received.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        body=body,
        name=name,
    )
    return {
        "mailbox": "replies@outreach.example.com",
        "uidvalidity": 1,
        "uid": n,
        "message_id": f"<reply-{n}@example.net>",
        "in_reply_to": irt,
        "from_address": who.lower(),
        "subject": "Re: Quick question" if replied_to else "Partnership opportunity",
        "raw": raw.encode(),
        "received_at": received,
        "stored_at": received + timedelta(seconds=30),
        "category": category,
        "reason": "bench",
        "confidence": 0.9,
        "classification": {"category": category, "reasons": [f"bench: {category}"]},
        "lead_id": lead_id,
        "outbound_id": replied_to[0] if replied_to else None,
        "matched_by": "message_id" if replied_to else None,
        "processed_at": received + timedelta(seconds=31),
        "acted_at": received + timedelta(seconds=32),
        "size": len(raw),
    }


def extra_inbound(
    count: int,
    first: int,
    lead_ids: list[int],
    lead_rows: list[dict[str, Any]],
    last_email: dict[int, tuple[int, dict[str, Any]]],
    end: datetime,
    seed: int,
) -> list[dict[str, Any]]:
    """`count` more inbound messages (uids after `first`), as `EXTRA_INBOUND` says: more
    messages in the threads of leads that answered already (hot ones from replied leads) and
    mail that matched nothing we sent. Its own random stream: `--inbound 0` leaves the rest
    of the data as it was without it."""
    if count <= 0:
        return []
    rng = random.Random(f"inbound:{seed}")
    by_state: dict[str, list[int]] = {}
    for lead_id, row in zip(lead_ids, lead_rows, strict=True):
        if lead_id in last_email:
            by_state.setdefault(row["state"], []).append(lead_id)
    row_of = dict(zip(lead_ids, lead_rows, strict=True))
    kinds = [(state, categories) for state, categories, _ in EXTRA_INBOUND]
    weights = [w for _, _, w in EXTRA_INBOUND]
    rows: list[dict[str, Any]] = []
    for n in range(first + 1, first + count + 1):
        state, categories = rng.choices(kinds, weights)[0]
        category = rng.choices([c for c, _ in categories], [w for _, w in categories])[0]
        candidates = by_state.get(state or "", [])
        received = end - timedelta(hours=rng.uniform(0.1, 29 * 24))
        if not candidates:
            who = f"someone{n}@elsewhere{n % 500}.example.org"
            rows.append(_inbound_row(n, who, category, received, BODIES[category], "Someone", None, None))
            continue
        lead_id = candidates[rng.randrange(len(candidates))]
        out_id, out = last_email[lead_id]
        received = max(received, out["sent_at"] + timedelta(hours=rng.uniform(0.1, 30)))
        row = row_of[lead_id]
        who = "MAILER-DAEMON@mx.example.net" if category.startswith("bounce") else row["email"]
        body = BODIES[category]
        rows.append(_inbound_row(n, who, category, received, body, row["first_name"], lead_id, (out_id, out)))
    return rows


async def populate(engine: AsyncEngine, leads: int, usage_per_day: int, seed: int, inbound: int = 0) -> Data:
    """Campaigns, leads, their emails, replies, alerts and suppressions, at least `inbound`
    inbound messages (`extra_inbound`), and a month of usage."""
    from aicmo_actors.cam.repos import CamStore
    from aicmo_actors.cam.tables import cam_alerts, cam_inbound_emails, cam_leads, cam_outbound_emails, cam_suppressions
    from aicmo_actors.observability.usage import UsageRepo
    from contracts.observability import UsageRecord

    rng = random.Random(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=30)
    created = start - timedelta(days=2)
    store = CamStore(engine)
    campaign_ids: dict[str, int] = {}
    for spec in _campaign_specs(CAMPAIGNS):
        campaign_ids[spec.name], _ = await store.campaigns.create_or_update(spec, created)
    names = list(campaign_ids)

    # Leads: spread over the campaigns, in the states of a month-old campaign.
    states = _states(rng, leads)
    lead_rows: list[dict[str, Any]] = []
    for i, state in enumerate(states):
        step = rng.randint(0, 2) if state == "active" else rng.randint(1, 3)
        last_sent = start + timedelta(days=rng.uniform(0, 29)) if step else None
        lead_rows.append(
            {
                "campaign_id": campaign_ids[names[i % CAMPAIGNS]],
                "email": f"lead{i}@company{i % 20000}.example.com",
                "email_domain": f"company{i % 20000}.example.com",
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "company": f"Company {i % 20000}",
                "timezone": "Europe/Berlin" if i % 3 else None,
                "variables": {"industry": "SaaS", "city": "Berlin"} if i % 2 else {},
                "state": state,
                "state_reason": None if state == "active" else f"bench: {state}",
                "current_step": step,
                "next_action_at": end + timedelta(hours=rng.uniform(0, 96)) if state == "active" else None,
                "soft_bounces": 0,
                "last_sent_at": last_sent,
                "created_at": created,
                "updated_at": last_sent or created,
            }
        )
    progress(f"  {leads:,} leads ...")
    await _insert(engine, cam_leads, lead_rows)
    lead_ids = await _ids(engine, cam_leads.c.id, leads)

    # Emails: one per step sent, the last one bounced for a bounced lead.
    out_rows: list[dict[str, Any]] = []
    for lead_id, row in zip(lead_ids, lead_rows, strict=True):
        for step in range(1, row["current_step"] + 1):
            queued = created + timedelta(days=2 + 4 * (step - 1), hours=rng.uniform(0, 48))
            sent = queued + timedelta(seconds=rng.uniform(5, 600))
            bounced = row["state"] == "bounced" and step == row["current_step"]
            out_rows.append(
                {
                    "lead_id": lead_id,
                    "campaign_id": row["campaign_id"],
                    "step": step,
                    "variant": "B" if step == 1 and lead_id % 2 else None,
                    "mailbox": SENDERS[lead_id % 2],
                    "recipient": row["email"],
                    "subject": "Quick question about " + row["company"] if step == 1 else "",
                    "status": "SENT",
                    "attempts": 1,
                    "message_id": f"<{lead_id}.{step}.bench@outreach.example.com>",
                    "idempotency_key": f"bench:{lead_id}:{step}",
                    "queued_at": queued,
                    "sending_at": sent,
                    "sent_at": sent,
                    "accepted_at": sent,
                    "smtp_code": 250,
                    "bounce": "hard" if bounced else None,
                    "bounce_reason": "user_unknown" if bounced else None,
                    "bounce_at": sent + timedelta(minutes=3) if bounced else None,
                    "replies": [
                        {
                            "at": sent.isoformat(),
                            "stage": "data",
                            "code": 250,
                            "status": "2.0.0",
                            "reason": None,
                            "text": "2.0.0 Ok: queued as 4F1A2B3C",
                        }
                    ],
                }
            )
    progress(f"  {len(out_rows):,} outbound emails ...")
    await _insert(engine, cam_outbound_emails, out_rows)
    out_ids = await _ids(engine, cam_outbound_emails.c.id, len(out_rows))
    last_email: dict[int, tuple[int, dict[str, Any]]] = {}
    for out_id, out in zip(out_ids, out_rows, strict=True):
        last_email[out["lead_id"]] = (out_id, out)

    # Replies (and bounce reports) to the last email of every lead a message stopped.
    in_rows: list[dict[str, Any]] = []
    suppressions: list[dict[str, Any]] = []
    for lead_id, row in zip(lead_ids, lead_rows, strict=True):
        category = INBOUND_CATEGORY.get(row["state"])
        if category is None or lead_id not in last_email:
            continue
        out_id, out = last_email[lead_id]
        received = out["sent_at"] + timedelta(hours=rng.uniform(0.1, 30))
        who = "MAILER-DAEMON@mx.example.net" if category == "bounce_hard" else row["email"]
        in_rows.append(
            _inbound_row(
                len(in_rows) + 1,
                who,
                category,
                received,
                "Let's talk next week." if category == "interested" else "Not for us, sorry.",
                row["first_name"],
                lead_id,
                (out_id, out),
            )
        )
        if category in ("unsubscribe", "bounce_hard"):
            suppressions.append(
                {
                    "address": row["email"],
                    "reason": "unsubscribe" if category == "unsubscribe" else "hard_bounce",
                    "source": "bench",
                    "created_at": received + timedelta(seconds=32),
                }
            )
    # More mail up to --inbound: a whole inbox, not only the replies that stopped a lead.
    in_rows += extra_inbound(inbound - len(in_rows), len(in_rows), lead_ids, lead_rows, last_email, end, seed)
    progress(f"  {len(in_rows):,} inbound messages, {len(suppressions):,} suppressions ...")
    await _insert(engine, cam_inbound_emails, in_rows)
    in_ids = await _ids(engine, cam_inbound_emails.c.id, len(in_rows))
    await _insert(engine, cam_suppressions, suppressions)
    campaign_of = {v: k for k, v in campaign_ids.items()}
    campaign_by_lead = {lead_id: campaign_of[r["campaign_id"]] for lead_id, r in zip(lead_ids, lead_rows, strict=True)}
    alerts = [
        {
            "idempotency_key": f"bench:reply:{in_id}",
            "kind": "reply" if row["category"] == "interested" else row["category"],
            "lead_id": row["lead_id"],
            "campaign": campaign_by_lead[row["lead_id"]],
            "inbound_id": in_id,
            "payload": {"category": row["category"]},
            "state": "delivered",
            "attempts": 1,
            "created_at": row["acted_at"],
            "delivered_at": row["acted_at"] + timedelta(seconds=5),
        }
        for in_id, row in zip(in_ids, in_rows, strict=True)
        if row["category"] in HOT and row["lead_id"] is not None
    ]
    await _insert(engine, cam_alerts, alerts)

    # A month of usage, through the repository (its keys, its day column).
    usage = UsageRepo(engine)
    kinds = [(m, k) for m, k, _ in USAGE_KINDS]
    weights = [w for _, _, w in USAGE_KINDS]
    progress(f"  30 days x {usage_per_day:,} usage records ...")
    n = 0
    for day in range(30):
        records = []
        for module, kind in rng.choices(kinds, weights, k=usage_per_day):
            n += 1
            at = start + timedelta(days=day, seconds=rng.uniform(0, 86399))
            subject = "viewer" if module == "api" else names[n % CAMPAIGNS]
            records.append(UsageRecord(f"bench.{kind}:{n}", module, kind, subject, 1, at))
        await usage.record(records)
    return Data(
        names,
        lead_ids,
        end,
        {
            "leads": leads,
            "outbound": len(out_rows),
            "inbound": len(in_rows),
            "inbound_hot": sum(1 for r in in_rows if r["category"] in HOT),
            "alerts": len(alerts),
            "suppressions": len(suppressions),
            "usage_records": n,
        },
        in_ids,
    )


# -- the API as the service serves it ------------------------------------------------------------


@asynccontextmanager
async def served_api(engine: AsyncEngine, url: str, state_dir: Path) -> AsyncIterator[tuple[ASGIApp, str, str, Any]]:
    """The app the service's HTTP server runs (public routes, /api/v1 and the web app under
    /app), a viewer's token, a viewer's web session (the cookie's value, as signing in makes
    it) and the stores behind it: (app, token, session, (store, plane))."""
    from aicmo_actors.api.plane import ControlPlane
    from aicmo_actors.cam.repos import CamStore
    from aicmo_actors.cam.unsubscribe import build_app
    from aicmo_actors.cli.service import control_routes
    from aicmo_actors.gateways.http import _AccessLog, mask_path
    from aicmo_actors.identity.repos import IdentityStore
    from aicmo_actors.runtime import ActorSystem, RealClock
    from aicmo_actors.settings import Settings
    from aicmo_actors.webapp.session import LIFETIME

    clock = RealClock()
    settings = Settings(database_url=url, tick_interval_s=0, state_dir=state_dir, allow_test_domains=True)
    store = CamStore(engine)
    plane = ControlPlane(engine)
    now = clock.now()
    identity = IdentityStore(engine)
    await identity.users.add("viewer", "viewer", None, now)
    token, _ = await identity.tokens.create("viewer", "bench", now)
    session, _ = await identity.tokens.create("viewer", "web", now, expires_at=now + LIFETIME)
    # A started system with no children: the read routes only need it to exist.
    system = ActorSystem(settings, clock=clock, children=())
    await system.start()
    try:
        routes: list[BaseRoute] = control_routes(plane, store, settings, clock, b"bench-secret-0123456789")(system)

        async def nothing() -> dict[str, Any]:
            return {"ok": True}

        async def no_metrics() -> str:
            return ""

        async def no_unsubscribe(lead_id: int) -> bool:
            return False

        app = build_app(
            secret=os.urandom(32), on_unsubscribe=no_unsubscribe, health=nothing, metrics=no_metrics, routes=routes
        )
        yield _AccessLog(app, mask_path), token, session, (store, plane)
    finally:
        await system.stop()


async def empty_app(scope: Any, receive: Any, send: Any) -> None:
    """The harness's floor: an ASGI app answering `{}` at once."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


# -- the workloads --------------------------------------------------------------------------------


def lead_list_args(data: Data) -> Iterator[tuple[str, str]]:
    """The (campaign, state) pairs the lead list pages through, forever."""
    while True:
        for state in LIST_STATES:
            for campaign in data.campaigns:
                yield campaign, state


class LeadList:
    """Page through each (campaign, state) in turn; `next` of a page is the next `after`."""

    def __init__(self, data: Data) -> None:
        self.pairs = lead_list_args(data)
        self.pair = next(self.pairs)
        self.after: int | None = None
        self.rows = 0

    def args(self) -> tuple[str, str, int | None]:
        return (*self.pair, self.after)

    def done(self, items: int, next_after: int | None) -> None:
        self.rows += items
        self.after = next_after
        if next_after is None:
            self.pair = next(self.pairs)


def history_ids(data: Data, seed: int) -> Iterator[int]:
    rng = random.Random(f"history:{seed}")
    while True:
        yield data.lead_ids[rng.randrange(len(data.lead_ids))]


USAGE_GROUPS: tuple[tuple[str, ...], ...] = (("module", "kind"), ("day",))


def usage_groups() -> Iterator[tuple[str, ...]]:
    while True:
        yield from USAGE_GROUPS


@dataclass
class Case:
    """One read, made through the API (`api`) or straight on the storage layer (`direct`)."""

    name: str
    api: Callable[[], Awaitable[None]]
    direct: Callable[[], Awaitable[None]]


def cases(client: httpx.AsyncClient, store: Any, plane: Any, data: Data, seed: int) -> list[Case]:
    from aicmo_actors.api.app import page

    api_list, direct_list = LeadList(data), LeadList(data)
    api_ids, direct_ids = history_ids(data, seed), history_ids(data, seed)
    api_groups, direct_groups = usage_groups(), usage_groups()

    async def get(path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        response = await client.get(path, params=params)
        if response.status_code != 200:
            raise BenchError(f"GET {path} {params or ''} answered {response.status_code}: {response.text[:300]}")
        return response

    async def list_api() -> None:
        campaign, state, after = api_list.args()
        params: dict[str, Any] = {"campaign": campaign, "state": state, "limit": PAGE}
        if after is not None:
            params["after"] = after
        body = json.loads((await get("/api/v1/leads", params)).content)
        api_list.done(len(body["items"]), body["next"])

    async def list_direct() -> None:
        campaign, state, after = direct_list.args()
        items = await store.leads.page(campaign=campaign, state=state, after_id=after, limit=PAGE)
        direct_list.done(len(items), page(items, PAGE)["next"])

    async def history_api() -> None:
        await get(f"/api/v1/leads/{next(api_ids)}")

    async def history_direct() -> None:
        if await store.leads.history(next(direct_ids)) is None:
            raise BenchError("a lead written by the bench has no history")

    async def usage_api() -> None:
        await get("/api/v1/usage", {"by": ",".join(next(api_groups))})

    async def usage_direct() -> None:
        await plane.usage.totals(by=list(next(direct_groups)))

    return [
        Case("lead_list", list_api, list_direct),
        Case("lead_history", history_api, history_direct),
        Case("usage", usage_api, usage_direct),
    ]


async def timed(call: Callable[[], Awaitable[None]], seconds: float, min_calls: int = 1) -> tuple[int, float]:
    """Sequential calls for about `seconds`, and at least `min_calls`: (calls, elapsed)."""
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        await call()
        calls += 1
        now = time.perf_counter()
        if now >= deadline and calls >= min_calls:
            return calls, now - started


async def compare(case: Case, seconds: float, rounds: int = 2) -> dict[str, Any]:
    """Direct and API in turn, `rounds` times S/rounds each; rps over all rounds."""
    await case.direct()  # warm both paths (first statements compiled, caches filled)
    await case.api()
    totals = {"api": [0, 0.0], "direct": [0, 0.0]}
    for _ in range(rounds):
        for side in ("direct", "api"):
            calls, elapsed = await timed(getattr(case, side), seconds / rounds)
            totals[side][0] += calls
            totals[side][1] += elapsed
    api_rps = totals["api"][0] / totals["api"][1]
    direct_rps = totals["direct"][0] / totals["direct"][1]
    return {
        "api_rps": round(api_rps, 1),
        "direct_rps": round(direct_rps, 1),
        "ratio": round(api_rps / direct_rps, 3),
        "api_calls": int(totals["api"][0]),
    }


# -- the web app's pages --------------------------------------------------------------------------


@dataclass
class PageCase:
    """One page of the web app: its path as the figures show it (`label`), the next path to
    open, a text the page must show, and its direct equivalent on the storage layer when
    there is one."""

    name: str
    label: str
    path: Callable[[], str]
    shows: str = ""
    direct: Callable[[], Awaitable[None]] | None = None


def company_terms(data: Data, seed: int) -> Iterator[str]:
    """Parts of company names ("Company 123" -> "pany 123"), seeded: most match a handful of
    companies, so the search reads most of the table for its first page."""
    rng = random.Random(f"company:{seed}")
    companies = min(20000, len(data.lead_ids))
    while True:
        yield f"pany {rng.randrange(companies)}"


def inbound_ids(data: Data, seed: int) -> Iterator[int]:
    rng = random.Random(f"inbound:{seed}")
    while True:
        yield data.inbound_ids[rng.randrange(len(data.inbound_ids))]


def page_cases(store: Any, data: Data, seed: int) -> list[PageCase]:
    """The pages `python -m bench api` opens, with a viewer's session (no message page when
    there are no inbound messages)."""
    page_terms, direct_terms = company_terms(data, seed), company_terms(data, seed)
    page_leads, direct_leads = history_ids(data, seed + 1), history_ids(data, seed + 1)
    messages = inbound_ids(data, seed)

    def fixed(path: str) -> tuple[str, Callable[[], str]]:
        return path, lambda: path

    async def inbox_direct() -> None:
        await store.inbound.inbox(limit=PAGE)

    async def interested_direct() -> None:
        await store.inbound.inbox(category="interested", limit=PAGE)

    async def replied_direct() -> None:
        await store.leads.page(state="replied", limit=PAGE)

    async def company_direct() -> None:
        await store.leads.page(company_contains=next(direct_terms), limit=PAGE)

    async def lead_direct() -> None:
        if await store.leads.history(next(direct_leads)) is None:
            raise BenchError("a lead written by the bench has no history")

    listed = '<table id="inbox">' if data.inbound_ids else "No inbound messages match"
    return [
        PageCase("dashboard", *fixed("/app/"), "Dashboard"),
        # Every figure read again (the dashboard otherwise keeps them for 30 s).
        PageCase("dashboard_fresh", *fixed("/app/?fresh=1"), "Dashboard"),
        PageCase("inbox", *fixed("/app/inbox"), listed, inbox_direct),
        PageCase("inbox_interested", *fixed("/app/inbox?category=interested"), "Inbox", interested_direct),
        *(
            [PageCase("inbox_message", "/app/inbox/{id}", lambda: f"/app/inbox/{next(messages)}", "Message #")]
            if data.inbound_ids
            else []
        ),
        PageCase("leads_replied", *fixed("/app/leads?state=replied"), "/app/leads/", replied_direct),
        PageCase(
            "leads_company",
            "/app/leads?company={part}",
            lambda: "/app/leads?" + urlencode({"company": next(page_terms)}),
            "Leads",
            company_direct,
        ),
        PageCase("lead", "/app/leads/{id}", lambda: f"/app/leads/{next(page_leads)}", "Lead ", lead_direct),
        PageCase("usage", *fixed("/app/usage"), "Usage"),
    ]


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def measure_page(client: httpx.AsyncClient, case: PageCase, seconds: float, rounds: int = 2) -> dict[str, Any]:
    """The page (and its direct equivalent, in turns, as `compare`) for S seconds each, the
    page at least `MIN_PAGE_CALLS` times: requests per second, latency p50 and p95, the mean
    size of the HTML."""
    latencies: list[float] = []
    sizes: list[int] = []

    async def visit() -> None:
        path = case.path()
        started = time.perf_counter()
        response = await client.get(path)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise BenchError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        if case.shows not in response.text:
            raise BenchError(f"GET {path} does not show {case.shows!r}: {response.text[:300]}")
        sizes.append(len(response.content))

    if case.direct is not None:
        await case.direct()
    await visit()
    latencies.clear()
    sizes.clear()
    sides: list[tuple[str, Callable[[], Awaitable[None]]]] = [("page", visit)]
    if case.direct is not None:
        sides.insert(0, ("direct", case.direct))
    totals = {side: [0, 0.0] for side, _ in sides}
    for _ in range(rounds):
        for side, call in sides:
            calls, elapsed = await timed(call, seconds / rounds, -(-MIN_PAGE_CALLS // rounds) if side == "page" else 1)
            totals[side][0] += calls
            totals[side][1] += elapsed
    rps = totals["page"][0] / totals["page"][1]
    figures: dict[str, Any] = {
        "path": case.label,
        "rps": round(rps, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "calls": len(latencies),
        "html_kb": round(sum(sizes) / len(sizes) / 1024, 1),
    }
    if "direct" in totals:
        direct_rps = totals["direct"][0] / totals["direct"][1]
        figures["direct_rps"] = round(direct_rps, 1)
        figures["ratio"] = round(rps / direct_rps, 3)
    return figures


async def measure_pages(app: ASGIApp, session: str, store: Any, data: Data, args: argparse.Namespace) -> dict[str, Any]:
    """Every page of `page_cases` with a viewer's session cookie, through the same
    in-process client as the API."""
    from aicmo_actors.webapp.session import COOKIE

    transport = httpx.ASGITransport(app=app)
    headers = {"Cookie": f"{COOKIE}={session}"}
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
        for case in page_cases(store, data, args.seed):
            progress(f"  page {case.name}: {args.seconds:g} s" + (" and as much direct" if case.direct else ""))
            out[case.name] = figures = await measure_page(client, case, args.seconds)
            direct = f", direct {figures['direct_rps']:,.1f}/s, ratio {figures['ratio']:.2f}" if case.direct else ""
            progress(
                f"    {figures['rps']:,.1f}/s, p50 {figures['p50_ms']:,.1f} ms, p95 {figures['p95_ms']:,.1f} ms{direct}"
            )
    return out


async def harness_rps(seconds: float) -> float:
    transport = httpx.ASGITransport(app=empty_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def call() -> None:
            await client.get("/api/v1/leads", params={"campaign": "c", "state": "active", "limit": PAGE})

        await call()
        calls, elapsed = await timed(call, seconds)
    return round(calls / elapsed, 1)


# -- one database ---------------------------------------------------------------------------------


@asynccontextmanager
async def database(kind: str, pg_url: str | None) -> AsyncIterator[str]:
    """A scratch database's URL: a file in a temporary folder, or a PostgreSQL database
    made and dropped by `bench._pg` (its `ScratchDatabaseError` when the server refuses)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="aicmo-bench-api-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/api.db"
        return
    from bench._pg import pg_server, scratch_database

    async with scratch_database(pg_server(pg_url)) as url:
        yield url


async def bench_db(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from aicmo_actors.storage.engine import make_engine
    from aicmo_actors.storage.schema import ensure_schema

    async with database(kind, args.pg_url) as url:
        engine = make_engine(url)
        try:
            await ensure_schema(engine)
            progress(f"{kind}: populating ...")
            started = time.perf_counter()
            data = await populate(engine, args.leads, args.usage_per_day, args.seed, args.inbound)
            progress(f"  populated in {time.perf_counter() - started:.0f} s: {data.counts}")
            with tempfile.TemporaryDirectory(prefix="aicmo-bench-api-state-") as state_dir:
                async with served_api(engine, url, Path(state_dir)) as (app, token, session, (store, plane)):
                    transport = httpx.ASGITransport(app=app)
                    headers = {"Authorization": f"Bearer {token}"}
                    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as c:
                        out: dict[str, Any] = {"populated": data.counts}
                        for case in cases(c, store, plane, data, args.seed):
                            progress(f"  {case.name}: {args.seconds:g} s through the API and {args.seconds:g} s direct")
                            out[case.name] = figures = await compare(case, args.seconds)
                            progress(
                                f"    api {figures['api_rps']:,.1f}/s, direct {figures['direct_rps']:,.1f}/s, "
                                f"ratio {figures['ratio']:.2f}"
                            )
                    out["pages"] = None if args.skip_pages else await measure_pages(app, session, store, data, args)
        finally:
            await engine.dispose()
    return out


# -- metering -------------------------------------------------------------------------------------


async def metering_overhead(leads: int, days: float, rounds: int) -> dict[str, Any]:
    """Simulation speed (lead-days per wall second) with metering on / off, best of each."""
    from aicmo_actors.cli.demo import EXAMPLES, load_demo_inputs
    from aicmo_actors.simulation.run import simulate
    from bench.sim import SPEED_BEHAVIOUR, speed_campaign

    spec = speed_campaign(mailboxes=max(1, -(-leads // 400)))
    _, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", leads)
    speeds: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="aicmo-bench-api-sim-") as tmp:
        for n in range(rounds):
            for metering in (True, False) if n % 2 == 0 else (False, True):
                started = time.perf_counter()
                result = await simulate(
                    workdir=Path(tmp) / "sim",
                    spec=spec,
                    leads=rows,
                    days=days,
                    seed=1,
                    behaviour=SPEED_BEHAVIOUR,
                    metering=metering,
                )
                wall = time.perf_counter() - started
                if result.violations:
                    raise BenchError(f"the simulation broke an invariant: {result.violations[0]}")
                speeds[metering].append(leads * days / wall)
                progress(f"  metering {'on ' if metering else 'off'}: {wall:.1f} s")
    on, off = max(speeds[True]), max(speeds[False])
    return {
        "metering_overhead": round(on / off, 3),
        "sim": {
            "leads": leads,
            "days": days,
            "lead_days_per_s_on": round(on, 1),
            "lead_days_per_s_off": round(off, 1),
            "runs_each": rounds,
        },
    }


# -- the command ----------------------------------------------------------------------------------

CASES = ("lead_list", "lead_history", "usage")


def _met(figures: dict[str, Any], prefix: str = "") -> dict[str, bool]:
    return {f"{prefix}{name}": figures[name]["ratio"] >= TARGET_RATIO for name in CASES if name in figures}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    result: dict[str, Any] = {
        "bench": "api",
        "db": args.db,
        "leads": args.leads,
        "seconds": args.seconds,
        "measures": "in-process ASGI calls (httpx.ASGITransport): routing, auth, validation, query, "
        "serialisation; not the network",
    }
    met: dict[str, bool] = {}
    per_db = {kind: await bench_db(kind, args) for kind in kinds}
    if len(kinds) == 1:
        result.update(per_db[kinds[0]])
        met.update(_met(per_db[kinds[0]]))
    else:
        for kind, figures in per_db.items():
            result[kind] = figures
            met.update(_met(figures, f"{kind}."))
    progress(f"harness: the same client against an app that answers {{}} for {args.seconds:g} s")
    result["harness_rps"] = await harness_rps(args.seconds)
    if args.skip_metering:
        result["metering_overhead"] = None
    else:
        progress(f"metering: {args.sim_leads:,} leads x {args.sim_days:g} days, on and off x {args.sim_rounds} ...")
        result.update(await metering_overhead(args.sim_leads, args.sim_days, args.sim_rounds))
        met["metering_overhead"] = result["metering_overhead"] >= TARGET_METERING
    result["targets"] = {"ratio": TARGET_RATIO, "metering_overhead": TARGET_METERING}
    result["met"] = met
    return result


def quiet_logs() -> None:
    """Warnings and up, to stderr: stdout is for the figures."""
    from aicmo_actors.runtime.logging import configure_logging

    configure_logging("warning", "console", sys.stderr)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench api", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=100_000, help="leads in the database (default 100,000)")
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="sqlite", help="database (default sqlite)"
    )
    parser.add_argument(
        "--pg-url",
        default=None,
        help="PostgreSQL server for the scratch database (default: AICMO_TEST_DATABASE_URL, else the local server)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per side of each case (default 3)")
    parser.add_argument(
        "--usage-per-day", type=int, default=10_000, help="usage records per day, 30 days (default 10,000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the data and the requests (default 1)")
    parser.add_argument(
        "--inbound", type=int, default=50_000, help="inbound messages at least (default 50,000; 0: only the replies)"
    )
    parser.add_argument("--skip-pages", action="store_true", help="skip the web app's pages")
    parser.add_argument("--skip-metering", action="store_true", help="skip the metering overhead (the simulations)")
    parser.add_argument("--sim-leads", type=int, default=1_000, help="leads in each simulation (default 1,000)")
    parser.add_argument("--sim-days", type=float, default=30, help="simulated days in each (default 30)")
    parser.add_argument("--sim-rounds", type=int, default=2, help="runs with metering on, and off (default 2)")
    args = parser.parse_args(argv)
    if args.leads < CAMPAIGNS or args.seconds <= 0 or args.usage_per_day < 1 or args.inbound < 0:
        parser.error(f"--leads must be >= {CAMPAIGNS}, --seconds > 0, --usage-per-day >= 1, --inbound >= 0")
    if args.sim_leads < 1 or args.sim_days <= 0 or args.sim_rounds < 1:
        parser.error("--sim-leads and --sim-rounds must be >= 1, --sim-days > 0")
    quiet_logs()
    from bench._pg import ScratchDatabaseError

    try:
        result = asyncio.run(run(args))
    except (BenchError, ScratchDatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
