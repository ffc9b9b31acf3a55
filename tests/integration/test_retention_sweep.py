"""The hourly sweep (`RetentionStore.rescore_all`) on both databases: it keeps each client's
signals between sweeps and reads again only the clients whose signals changed, so the check
here is that what it writes is always what scoring every client from scratch gives, whoever
wrote the signals: this store, another process's store (which this one never hears of), or a
signal tied to its client later; across the day its kept signals start from, and with decay
alone moving the scores."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.retention.repos import RetentionStore, Signed
from aicmo_actors.retention.rules import Scoring, SignalIn, health
from aicmo_actors.retention.signals import NewSignal
from aicmo_actors.retention.tables import retention_clients, retention_signals

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SCORING = Scoring(half_life_days=10)
REFS = [f"{n}1111111-2222-4333-8444-555555555555" for n in range(1, 5)]


async def _signed(store: RetentionStore) -> None:
    for deal, ref in enumerate(REFS, start=1):
        signed = Signed(ref, f"Client {deal}", f"c{deal}@example.com", None, deal, deal, "spring", "starter", 12,
                        NOW.date(), date(2099, 1, 1), NOW)  # fmt: skip
        await store.sign(signed, NOW, SCORING)


async def _stored(engine: AsyncEngine) -> dict[str, tuple[float | None, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(retention_clients.c.client_ref, retention_clients.c.score,
                                            retention_clients.c.band))  # fmt: skip
        return {r.client_ref: (r.score, r.band) for r in rows}


async def _from_scratch(engine: AsyncEngine, now: datetime) -> dict[str, tuple[float, str]]:
    """Every client scored from all its signals, read now (no store, nothing kept)."""
    since = now - timedelta(days=SCORING.horizon_days)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(retention_signals).where(retention_signals.c.at >= since))).all()
    found = {}
    for ref in REFS:
        signals = [SignalIn(r.key, r.kind, float(r.weight), r.at, r.reason) for r in rows if r.client_ref == ref]
        h = health(signals, now, SCORING)
        found[ref] = (h.score, h.band)
    return found


async def _insert_behind_its_back(engine: AsyncEngine, key: str, ref: str | None, weight: float, at: datetime) -> None:
    """A signal written by another process: nothing rescored, nothing said to this store."""
    async with engine.begin() as conn:
        await conn.execute(
            retention_signals.insert().values(
                key=key,
                client_ref=ref,
                project_id=None,
                kind="client_on_hold",
                weight=weight,
                at=at,
                reason=key,
                detail={},
                recorded_at=at,
            )
        )


def _moved_enough(stored: tuple[float | None, str | None], scratch: tuple[float, str]) -> bool:
    score, band = stored
    return score is None or band != scratch[1] or abs(scratch[0] - score) >= 1.0


async def _sweep_agrees(store: RetentionStore, engine: AsyncEngine, now: datetime) -> None:
    """After a sweep at `now` no client is left that scoring from scratch would write."""
    await store.rescore_all(now, SCORING)
    stored, scratch = await _stored(engine), await _from_scratch(engine, now)
    left = {ref: (stored[ref], scratch[ref]) for ref in REFS if _moved_enough(stored[ref], scratch[ref])}
    assert left == {}


async def test_the_sweep_writes_what_scoring_from_scratch_gives(engine: AsyncEngine) -> None:
    store = RetentionStore(engine)
    await _signed(store)
    await store.record(
        [
            NewSignal("a1", "client_on_hold", -20.0, NOW, "on hold", REFS[0]),
            NewSignal("b1", "reminder_sent", -8.0, NOW, "reminder", REFS[1]),
        ],
        NOW,
        SCORING,
    )
    at = NOW + timedelta(hours=1)
    await _sweep_agrees(store, engine, at)
    before = await _stored(engine)
    assert before[REFS[0]] == (80.0, "green")

    # Another process's signals, for a client that had none and for one already kept; one
    # written without its client, tied to it after the sweep kept the client's signals.
    await _insert_behind_its_back(engine, "c1", REFS[2], -45.0, at)
    await _insert_behind_its_back(engine, "a2", REFS[0], -30.0, at)
    await _insert_behind_its_back(engine, "d1", None, -25.0, at)
    at += timedelta(hours=1)
    await _sweep_agrees(store, engine, at)
    after = await _stored(engine)
    assert after[REFS[2]][1] == "amber" and after[REFS[0]][1] == "amber"
    assert after[REFS[3]] == (100.0, "green")

    async with engine.begin() as conn:
        await conn.execute(retention_signals.update().where(retention_signals.c.key == "d1").values(client_ref=REFS[3]))
    at += timedelta(hours=1)
    await _sweep_agrees(store, engine, at)
    score, band = (await _stored(engine))[REFS[3]]
    assert band == "green" and score is not None and 75.0 <= score < 76.0

    # Decay alone, hour by hour over days (the kept signals' first day moves at midnight):
    # the scores climb back, each written when it moved a point or changed band.
    seen = set()
    for _ in range(24 * 12):
        at += timedelta(hours=1)
        await _sweep_agrees(store, engine, at)
        seen.add((await _stored(engine))[REFS[0]][1])
    assert seen == {"amber", "green"}
    final = await _stored(engine)
    assert all(band == "green" for _, band in final.values())
