"""After the deal, end to end with the real modules, up to the work: a deal, `ClientSigned`
from `cam.deals`, the saga, onboarding's welcome (the client answers through the form's
repository call, with the token of the link in the email), strategy's plan (approved the same
way), the project's production step started with the approved plan. Then the same, killed at
every kill point of the saga's own steps' boundaries (each unit of work committed, each
publish and each tell of every actor), a new system started on the same database each time:
the project always reaches production and no email goes to the client twice for one step.
The work itself (production, QC, the client's review, delivery), whole and killed, is
`test_delivery_cycle.py`.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.after_deal import AfterDeal
from aicmo_actors.cam.campaign import load_campaign
from aicmo_actors.cam.deals import Deals
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.orchestration import saga_rules as rules
from aicmo_actors.orchestration.packages import load_package
from aicmo_actors.runtime import ActorSystem, ChildSpec, FakeClock, SupervisorSpec, killpoints
from aicmo_actors.settings import Settings
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import ensure_schema
from contracts.onboarding import BRIEF_FIELDS
from tests.integration.actor_kills import KillAt, run_for
from tests.integration.test_cam_records import CAMPAIGN_FILE, add_leads

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday
PACKAGE = load_package(Path(__file__).resolve().parents[2] / "examples" / "package.toml")
CLIENT_ADDRESS = "ann@acme.example.com"
LINK = re.compile(r"/client/(intake|plan)/([0-9a-f]{32,128})")


@dataclass
class Outside:
    """The world outside the process: the client's mailbox, and what the client did."""

    sent: list[EmailMessage] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        self.sent.append(message)
        return SendResult("accepted", 250, "ok")

    async def close(self) -> None:
        return None

    def links(self, kind: str) -> list[str]:
        found = []
        for message in self.sent:
            body = message.get_body(("plain",))
            text = body.get_content() if body is not None else ""
            found += [token for k, token in LINK.findall(text) if k == kind]
        return found

    def subjects(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.sent)


async def _deal(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    await store.campaigns.create_or_update(_campaign(), START)
    await add_leads(store, [CLIENT_ADDRESS])
    await store.deals.win(
        CLIENT_ADDRESS,
        campaign=None,
        client={"company": "Acme", "contact_name": "Ann Lee", "timezone": "Europe/Berlin", "country": "DE"},
        package=PACKAGE.model_dump(mode="json"),
        start=date(2026, 3, 2),
        by="test",
        now=START,
    )


def _campaign() -> Any:
    return load_campaign(CAMPAIGN_FILE, allow_test_domains=True)


def _system(engine: AsyncEngine, clock: FakeClock, outside: Outside) -> ActorSystem:
    settings = Settings(
        database_url=str(engine.url), seed=5, tick_interval_s=3600, log_level="warning", public_url="https://a.example"
    )
    after = AfterDeal(engine)
    cam = SupervisorSpec("cam", children=[ChildSpec("cam.deals", lambda: Deals(CamStore(engine)))], max_restarts=100)
    children = [
        cam,
        *after.supervisors(
            settings,
            secret=b"after-the-deal-test-secret-0123",
            mail_from="hello@agency.example",
            transport=lambda: outside,
        ),
    ]
    return ActorSystem(settings, clock=clock, children=children)


async def _client_acts(engine: AsyncEngine, clock: FakeClock, outside: Outside) -> None:
    """What the client does once an email with a link is in: answer the intake, approve the plan."""
    after = AfterDeal(engine)
    for token in outside.links("intake"):
        if token not in outside.answered:
            answers = {f.key: f"answer to {f.key}" for f in BRIEF_FIELDS if f.required}
            await after.onboarding.forms.save(token, answers, submit=True, now=clock.now())
            outside.answered.add(token)
    for token in outside.links("plan"):
        if token not in outside.answered:
            await after.strategy.plans.answer(token, 1, approve=True, comments=None, now=clock.now())
            outside.answered.add(token)


async def _project(engine: AsyncEngine) -> dict[str, object]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT id, state, step FROM orchestration_projects"))).mappings().all()
    assert len(rows) <= 1
    return dict(rows[0]) if rows else {}


async def test_a_deal_becomes_a_project_that_onboards_plans_and_starts_the_work(engine: AsyncEngine) -> None:
    await ensure_schema(engine)
    await _deal(engine)
    outside, clock = Outside(), FakeClock(START, autojump=False)
    system = _system(engine, clock, outside)
    await system.start()
    try:
        for _ in range(8):
            await run_for(system, clock, 3600)
            await _client_acts(engine, clock, outside)
        assert system.failure is None
    finally:
        await system.stop()
    project = await _project(engine)
    assert (project["state"], project["step"]) == (rules.RUNNING, "production")
    kinds = [_kind(m) for m in outside.sent]
    # The first retainer's invoice (billing, at the start); the welcome, then the plan; then the
    # first pieces of work may already be up for review.
    assert kinds.count("invoice") == 1, kinds
    kinds.remove("invoice")
    assert kinds[:2] == ["welcome", "plan"] and set(kinds[2:]) <= {"review"}, kinds
    assert outside.sent[0].get_content_type() == "multipart/mixed"  # the kickoff invitation attached
    assert {m["To"].addresses[0].addr_spec for m in outside.sent} == {CLIENT_ADDRESS}
    async with engine.connect() as conn:
        opened = (await conn.execute(sa.text("SELECT project_id FROM cam_deals"))).scalar_one()
    assert opened == project["id"]


async def _life(engine: AsyncEngine, clock: FakeClock, outside: Outside, n: int) -> bool:
    """One life on an auto-jumping clock, killed at its n-th commit, publish, tell or send of
    an actor (True), or run until the project's production starts (False)."""
    kinds = (killpoints.COMMITTED, killpoints.PUBLISH, killpoints.TELL, killpoints.SEND)
    # The saga's own steps (the work's modules are killed in test_delivery_cycle.py).
    kill = KillAt(n, kinds=kinds, actors=("cam.deals", "orchestration.saga", "onboarding.intake", "strategy.planner"))
    system = _system(engine, clock, outside)
    with killpoints.installed(kill.hook):
        await kill.until(system.start())
        # Half-hour steps for a day, then six-hour ones for ten days: an email interrupted in
        # its send is never sent again (UNCONFIRMED), so the client may only get the link with
        # the first reminder, three business days later.
        for step in [1800.0] * 16 + [6 * 3600.0] * 40:
            if kill.reached.is_set() or await _in_production(engine):
                break
            await kill.until(clock.sleep(step))
            if not kill.reached.is_set():
                await _client_acts(engine, clock, outside)
        if kill.reached.is_set():
            await kill.kill(system)
            return True
    await system.stop()
    return False


async def test_killed_at_every_boundary_the_project_still_reaches_production_and_nothing_is_sent_twice(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    if engine.url.get_backend_name() != "sqlite":
        pytest.skip("every kill point once, on SQLite; PostgreSQL runs the whole chain above")
    template = tmp_path / "template.db"
    made = make_engine(f"sqlite+aiosqlite:///{template}")
    await ensure_schema(made)
    await _deal(made)
    await made.dispose()
    n = 1
    interrupted: list[int] = []
    while True:
        # A fresh copy of the database with the deal signed, for each kill point.
        target = tmp_path / "run.db"
        shutil.copyfile(template, target)
        run_engine = make_engine(f"sqlite+aiosqlite:///{target}")
        try:
            outside, clock = Outside(), FakeClock(START)
            killed = await _life(run_engine, clock, outside, n)
            if killed:
                assert not await _life(run_engine, clock, outside, 10**9), f"killed at point {n}: killed again?"
            project = await _project(run_engine)
            async with run_engine.connect() as conn:
                unconfirmed = (
                    await conn.execute(sa.text("SELECT count(*) FROM strategy_emails WHERE status = 'UNCONFIRMED'"))
                ).scalar_one()
                overdue = (
                    await conn.execute(
                        sa.text(
                            "SELECT count(*) FROM orchestration_steps"
                            " WHERE step = 'strategy' AND overdue_at IS NOT NULL"
                        )
                    )
                ).scalar_one()
        finally:
            await run_engine.dispose()
        if unconfirmed:
            # Killed inside the plan's send: it may have gone out, so it is never sent again;
            # the client never saw it (here), the step runs past its deadline and a person is told.
            assert (project.get("state"), project.get("step"), overdue) == (rules.RUNNING, "strategy", 1), n
            interrupted.append(n)
            n += 1
            continue
        assert (project.get("state"), project.get("step")) == (rules.RUNNING, "production"), (
            f"killed at point {n}: the project is {project}"
        )
        twice = [mid for mid, count in outside.subjects().items() if count > 1]
        assert not twice, f"killed at point {n}: sent twice: {twice}"
        kinds = Counter(_kind(m) for m in outside.sent)
        assert kinds["plan"] == 1 and kinds["welcome"] + kinds["reminder"] >= 1, f"killed at point {n}: {kinds}"
        assert kinds["welcome"] <= 1, f"killed at point {n}: {kinds}"
        if kinds["reminder"]:
            interrupted.append(n)
        if not killed:
            break
        n += 1
    assert n > 30, f"only {n} kill points: the chain went through fewer boundaries than expected"
    # Only a kill inside a send (the welcome's: the client waits for the first reminder; the
    # plan's: a person is told when it is overdue) takes the short way off the happy path.
    assert len(interrupted) <= 3, interrupted


async def _in_production(engine: AsyncEngine) -> bool:
    """The production step has its work items (what the saga hands over to the delivery cycle)."""
    async with engine.connect() as conn:
        items = (await conn.execute(sa.text("SELECT count(*) FROM production_items"))).scalar_one()
    return bool(items)


def _kind(message: EmailMessage) -> str:
    """Which email it is: the plan (its link), else onboarding's kind or billing's (named in its
    Message-ID)."""
    mid = str(message["Message-ID"])
    if "billing-" in mid:
        return mid.partition("billing-")[2].partition(".")[0]
    body = message.get_body(("plain",))
    if body is not None and "/client/plan/" in body.get_content():
        return "plan"
    if body is not None and "/client/review/" in body.get_content():
        return "review"
    for kind in ("welcome", "reminder"):
        if kind in mid:
            return kind
    return mid
