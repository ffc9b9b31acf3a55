"""QC on both databases: `qc.checker` in an actor system on a fake clock.

A CheckDraft told many times with one key is checked once and answered with the recorded
verdict every time (also by a restarted checker); a failed draft's findings come back; a
later draft of the same client that repeats a passed one of another item is a near-duplicate,
and the checks of one item's versions are not compared with each other.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.qc import CHECKER, QcStore, qc_supervisor
from aicmo_actors.qc.tables import qc_checks
from aicmo_actors.runtime import ActorSystem, FakeClock, RuntimeSettings
from contracts.base import Event
from contracts.packages import Deliverable, PackageSpec
from contracts.qc import CheckDraft, DraftChecked
from tests.unit.qc.cases import EN_BLOG, EN_LINKEDIN

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=7)
START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
BLOG_ITEM = uuid.UUID("00000000-0000-4000-8000-000000000001")
POST_ITEM = uuid.UUID("00000000-0000-4000-8000-000000000002")
OTHER_POST = uuid.UUID("00000000-0000-4000-8000-000000000003")
PACKAGE = PackageSpec(
    name="growth",
    title="Growth",
    price=Decimal("2400"),
    currency="GBP",
    billing="monthly",
    deliverables=(Deliverable(type="blog_post", count=2, channel="blog"),),
    review_rounds=1,
    turnaround_days=5,
    reporting="monthly",
    reading_grade=8,
)


@dataclass
class Run:
    system: ActorSystem
    clock: FakeClock
    events: list[Event]

    def checked(self) -> list[DraftChecked]:
        return [e for e in self.events if isinstance(e, DraftChecked)]

    async def tell(self, message: CheckDraft) -> DraftChecked:
        before = len(self.checked())
        await self.system.ref(CHECKER, CheckDraft).tell(message)
        await self.system.settle()
        answers = self.checked()[before:]
        assert len(answers) == 1
        return answers[0]

    def draft(self, item_id: uuid.UUID, version: int, text: str, *, case: Any = EN_BLOG) -> CheckDraft:
        return self.system.message(
            CheckDraft,
            project_id=PROJECT,
            item_id=item_id,
            version=version,
            idempotency_key=f"{PROJECT}:qc:{item_id}:{version}",
            client=case.client,
            package=PACKAGE,
            brief=case.brief,
            item=case.item,
            title=case.title,
            text=text,
        )


@asynccontextmanager
async def running(store: QcStore) -> AsyncIterator[Run]:
    clock = FakeClock(START, autojump=False)
    async with ActorSystem(SETTINGS, clock=clock, children=[qc_supervisor(store)]) as system:
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events)


async def rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(sa.select(qc_checks).order_by(qc_checks.c.id))).mappings()]


async def test_a_key_is_checked_once_and_its_verdict_said_again(engine: AsyncEngine) -> None:
    store = QcStore(engine)
    bad = EN_BLOG.planted("At Acme Analytics", "At ACME Analytics")
    async with running(store) as run:
        first = await run.tell(run.draft(BLOG_ITEM, 1, bad))
        run.clock.advance(3600)
        again = await run.tell(run.draft(BLOG_ITEM, 1, bad))
    assert (first.project_id, first.item_id, first.version, first.passed) == (PROJECT, BLOG_ITEM, 1, False)
    assert [f.check for f in first.findings] == ["brand_name"]
    assert first.checked_at == START
    assert (again.passed, again.findings, again.checked_at) == (False, first.findings, START)
    (row,) = await rows(engine)
    assert (row["idempotency_key"], row["passed"], row["version"]) == (f"{PROJECT}:qc:{BLOG_ITEM}:1", False, 1)
    assert row["findings"][0]["check"] == "brand_name" and row["text"] == bad
    assert row["client_ref"] == str(EN_BLOG.client.client_ref)
    # A new incarnation (after a kill) answers from the database, without checking again.
    async with running(store) as run:
        third = await run.tell(run.draft(BLOG_ITEM, 1, "a different text entirely: not checked"))
    assert third.findings == first.findings and third.checked_at == START
    assert len(await rows(engine)) == 1


async def test_the_next_version_passes_and_later_drafts_are_compared_with_other_items(engine: AsyncEngine) -> None:
    store = QcStore(engine)
    async with running(store) as run:
        failed = await run.tell(run.draft(POST_ITEM, 1, EN_LINKEDIN.text + "\n\nTODO add a link", case=EN_LINKEDIN))
        passed = await run.tell(run.draft(POST_ITEM, 2, EN_LINKEDIN.text, case=EN_LINKEDIN))
        # Version 3 of the same item is not a duplicate of its own version 2...
        again = await run.tell(run.draft(POST_ITEM, 3, EN_LINKEDIN.text.replace("spring", "autumn"), case=EN_LINKEDIN))
        # ... but another item repeating it is.
        copied = EN_LINKEDIN.text.replace("last spring", "last autumn")
        duplicate = await run.tell(run.draft(OTHER_POST, 1, copied, case=EN_LINKEDIN))
    assert (failed.passed, [f.check for f in failed.findings]) == (False, ["placeholder"])
    assert (passed.passed, passed.findings) == (True, ())
    assert (again.passed, again.findings) == (True, ())
    assert duplicate.passed is False
    (finding,) = duplicate.findings
    assert finding.check == "near_duplicate" and f"item {POST_ITEM}, version " in finding.message
    assert len(await rows(engine)) == 4
    checks = await store.checks.of_item(str(PROJECT), str(POST_ITEM))
    assert [(c.version, c.passed) for c in checks] == [(1, False), (2, True), (3, True)]
