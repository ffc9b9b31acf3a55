"""`cam.classifier` on a SQLite file: batches give what one message at a time gives, once.

The reference below is the classifier's matching done one message at a time with the
store's single-message queries; the actor reads, matches and saves in batches and must
reach the same rows and publish one event per row, in id order, whatever happens to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import aicmo_actors.cam.classifier as classifier_module
from aicmo_actors.cam.classifier import FALLBACK_CONFIDENCE_FACTOR, REPORTS, Classifier
from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.repos.inbound import InboundRepo
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.runtime import ActorSystem, ChildSpec, RuntimeSettings
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from bench.inbox import with_message_id
from contracts.cam import ReplyClassified, ReplyReceived
from tests.unit.inbound_fixtures import NOW, corpus, fetched, sent_emails

pytestmark = pytest.mark.anyio

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=1, backoff_base_s=0, max_restarts=20)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path}/cam.db"
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


def recipient_of(raw: bytes) -> str | None:
    c = classify_message(raw)
    if c.category in REPORTS and c.failed_recipients:
        return c.failed_recipients[0]
    return c.from_address


async def corpus_with_sends(engine: AsyncEngine, copies: int = 1) -> list[int]:
    """Store the corpus (`copies` times, unique Message-IDs); a third matches by our
    Message-ID, a third by address only, a third nothing. Returns the stored ids."""
    raws = list(corpus().values())
    sends: dict[str, str] = {}
    for n, raw in enumerate(raws):
        c = classify_message(raw)
        recipient = recipient_of(raw)
        if recipient is None:
            continue
        if n % 3 == 0 and c.in_reply_to:
            sends.setdefault(c.in_reply_to, recipient)
        elif n % 3 == 1:
            sends[f"<other-{n}@outreach.example.com>"] = recipient
    await sent_emails(engine, [(recipient, message_id) for message_id, recipient in sends.items()])
    store = CamStore(engine)
    unique = [with_message_id(raw, f"<copy{k}-{n}@test.example>") for k in range(copies) for n, raw in enumerate(raws)]
    return await store.inbound.store("inbox", 1, fetched(unique), NOW)


async def one_at_a_time(store: CamStore, raw: bytes) -> tuple[Any, ...]:
    """What the classifier concluded before it worked in batches, for one message."""
    c = classify_message(raw)
    ids = [i for i in (c.in_reply_to, *c.referenced_ids) if i]
    match = await store.inbound.match_by_message_ids(ids)
    matched_by = None
    confidence = c.confidence
    if match is not None:
        matched_by = "report" if c.category in REPORTS else "message_id"
    elif c.category in REPORTS and c.failed_recipients:
        match = await store.inbound.match_by_recipient(c.failed_recipients[0])
        matched_by = "report_recipient" if match else None
        if match is not None:  # a guess: anyone can name anyone in a report
            confidence = round(c.confidence * FALLBACK_CONFIDENCE_FACTOR, 3)
    elif c.from_address:
        match = await store.inbound.match_by_recipient(c.from_address)
        if match is not None:
            matched_by = "sender"
            confidence = round(c.confidence * FALLBACK_CONFIDENCE_FACTOR, 3)
    return (
        c.category.value,
        matched_by,
        match.lead_id if match else None,
        match.outbound_id if match else None,
        confidence,
    )


async def saved(engine: AsyncEngine) -> dict[int, tuple[Any, ...]]:
    columns = inbound_t.c
    query = sa.select(
        columns.id, columns.category, columns.matched_by, columns.lead_id, columns.outbound_id,
        columns.confidence, columns.processed_at,
    ).order_by(columns.id)  # fmt: skip
    async with engine.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in await conn.execute(query)}


class Run:
    """An actor system with just the classifier, recording what it publishes."""

    def __init__(self, store: CamStore) -> None:
        self.store = store
        self.events: list[ReplyClassified] = []
        self.system: ActorSystem | None = None

    async def __aenter__(self) -> Run:
        self.system = ActorSystem(SETTINGS, children=[ChildSpec("cam.classifier", lambda: Classifier(self.store))])
        await self.system.start()
        self.system.events.tap(lambda e: self.events.append(e) if isinstance(e, ReplyClassified) else None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.system is not None
        await self.system.stop()

    async def hand_on(self, ids: list[int]) -> None:
        assert self.system is not None
        ref = self.system.ref("cam.classifier", ReplyReceived)
        for inbound_id in ids:
            await ref.tell(self.system.message(ReplyReceived, inbound_id=inbound_id, mailbox="inbox"))
        await self.system.settle()

    def restarts(self) -> int:
        assert self.system is not None
        return {a.name: a for a in self.system.snapshot().actors}["cam.classifier"].restarts


async def test_batches_reach_what_one_message_at_a_time_reaches(engine: AsyncEngine) -> None:
    ids = await corpus_with_sends(engine, copies=2)
    store = CamStore(engine)
    raws = {i: await store.inbound.raw(i) for i in ids}
    expected = {i: await one_at_a_time(store, raw) for i, raw in raws.items() if raw is not None}
    async with Run(store) as run:
        await run.hand_on(ids)
    rows = await saved(engine)
    assert {i: row[:5] for i, row in rows.items()} == expected
    assert all(row[5] is not None for row in rows.values())
    assert [e.inbound_id for e in run.events] == ids  # one each, in id order
    assert {e.matched_by for e in run.events} >= {
        "message_id",
        "report",
        "report_recipient",
        "sender",
        None,
    }
    by_id = {e.inbound_id: e for e in run.events}
    for inbound_id, (category, matched_by, lead_id, outbound_id, confidence) in expected.items():
        event = by_id[inbound_id]
        assert event.mailbox == "inbox"
        assert (event.classification.category.value, event.matched_by) == (category, matched_by)
        assert (event.lead_id, event.outbound_id) == (lead_id, outbound_id)
        assert event.classification.confidence == confidence
        assert (event.campaign is not None) == (lead_id is not None)


async def test_a_message_handed_on_twice_is_classified_and_published_once(
    engine: AsyncEngine,
) -> None:
    ids = await corpus_with_sends(engine)
    store = CamStore(engine)
    async with Run(store) as run:
        await run.hand_on(ids[:10])
        await run.hand_on(ids[:10] + ids)  # as Inbox.on_start hands on the unclassified again
    assert [e.inbound_id for e in run.events] == ids
    before = await saved(engine)
    async with Run(store) as again:  # a new process: nothing is left to do
        await again.hand_on(ids)
    assert again.events == []
    assert await saved(engine) == before


async def test_a_message_that_crashes_the_classifier_crashes_alone(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await corpus_with_sends(engine)
    store = CamStore(engine)
    poison = ids[20]
    poison_raw = await store.inbound.raw(poison)

    def classify(raw: bytes, **limits: Any) -> Any:
        if raw == poison_raw:
            raise RuntimeError("a classifier bug")
        return classify_message(raw, **limits)

    monkeypatch.setattr(classifier_module, "classify_message", classify)
    async with Run(store) as run:
        await run.hand_on(ids)
        assert run.system is not None
        letters = [d for d in run.system.dead_letters.recent if d.kind == "poison"]
    # It was retried up to the threshold and given up on; every other message went through.
    assert len(letters) == 1 and "a classifier bug" in letters[0].error
    assert run.restarts() == SETTINGS.poison_threshold
    assert [e.inbound_id for e in run.events] == [i for i in ids if i != poison]
    rows = await saved(engine)
    assert rows[poison][5] is None  # left unclassified: the next start hands it on again
    assert all(rows[i][5] is not None for i in ids if i != poison)


@pytest.mark.parametrize(("failing_calls", "restarts"), [({2}, 0), ({2, 3}, 1)])
async def test_a_failed_save_loses_nothing_and_repeats_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, failing_calls: set[int], restarts: int
) -> None:
    # Call 2 saves the first batch after the solo first message; when it fails, the head is
    # saved alone (call 3); when that fails too, the actor crashes and its replacement goes on.
    ids = await corpus_with_sends(engine)
    store = CamStore(engine)
    real_save = InboundRepo.save_classifications
    calls = 0

    async def flaky_save(self: InboundRepo, results: Any, now: Any) -> list[int]:
        nonlocal calls
        calls += 1
        if calls in failing_calls:
            raise ConnectionError("the database went away")
        return await real_save(self, results, now)

    monkeypatch.setattr(InboundRepo, "save_classifications", flaky_save)
    async with Run(store) as run:
        await run.hand_on(ids)
    assert run.restarts() == restarts
    assert [e.inbound_id for e in run.events] == ids
    assert all(row[5] is not None for row in (await saved(engine)).values())


async def test_a_row_the_database_refuses_is_given_up_alone(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await corpus_with_sends(engine)
    store = CamStore(engine)
    refused = ids[30]
    real_save = InboundRepo.save_classifications

    async def save(self: InboundRepo, results: Any, now: Any) -> list[int]:
        if any(r[0] == refused for r in results):
            raise ValueError("value too long for type character varying(64)")
        return await real_save(self, results, now)

    monkeypatch.setattr(InboundRepo, "save_classifications", save)
    async with Run(store) as run:
        await run.hand_on(ids)
    assert run.restarts() == SETTINGS.poison_threshold
    assert [e.inbound_id for e in run.events] == [i for i in ids if i != refused]
    rows = await saved(engine)
    assert rows[refused][5] is None
    assert all(rows[i][5] is not None for i in ids if i != refused)


async def test_a_batch_never_reads_more_than_its_size(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await corpus_with_sends(engine)
    store = CamStore(engine)
    sizes: list[int] = []
    real_read = InboundRepo.unclassified_raw

    async def read(self: InboundRepo, from_id: int, limit: int) -> list[tuple[int, str, bytes]]:
        rows = await real_read(self, from_id, limit)
        sizes.append(len(rows))
        return rows

    monkeypatch.setattr(InboundRepo, "unclassified_raw", read)
    system = ActorSystem(SETTINGS, children=[ChildSpec("cam.classifier", lambda: Classifier(store, batch=7))])
    async with system:
        ref = system.ref("cam.classifier", ReplyReceived)
        for inbound_id in ids:
            await ref.tell(system.message(ReplyReceived, inbound_id=inbound_id, mailbox="inbox"))
        await system.settle()
    assert sizes[0] == 1 and max(sizes) == 7
    assert sum(sizes) == len(ids)  # each row read once
    with pytest.raises(ValueError):
        Classifier(store, batch=0)
    await asyncio.sleep(0)
