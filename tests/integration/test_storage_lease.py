"""The worker lease in one process: atomic acquire, takeover, a token that only grows, fencing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.tables import cam_mailbox_cursors as cursors
from aicmo_actors.storage.lease import FencedOut, WorkerLease, require_fenced
from aicmo_actors.storage.runtime_tables import runtime_lease

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=10)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _fenced_cursor_write(engine: AsyncEngine, lease: WorkerLease, uid: int) -> None:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(cursors).where(cursors.c.mailbox == "INBOX", lease.fence()).values(last_uid=uid)
        )
        require_fenced(result, "cursor update")


async def test_takeover_after_expiry_and_fencing(engine: AsyncEngine) -> None:
    a = WorkerLease(engine, holder="a", ttl=TTL)
    b = WorkerLease(engine, holder="b", ttl=TTL)
    async with engine.begin() as conn:
        await conn.execute(insert(cursors).values(mailbox="INBOX", uidvalidity=1, last_uid=0, updated_at=T0))

    assert await a.acquire(_at(0)) and a.token == 1 and a.held
    assert await a.acquire(_at(1)) and a.token == 1  # re-acquiring our own lease keeps the token
    assert not await b.acquire(_at(5)) and not b.held
    assert await a.renew(_at(8))
    assert not await b.acquire(_at(15))  # renewed at 8: valid until 18
    await _fenced_cursor_write(engine, a, 1)

    assert await b.acquire(_at(19)) and b.token == 2  # expired: taken over, token grows
    assert not await a.renew(_at(20)) and not a.held and a.token is None
    # A stale holder that still believes its old token is refused by the fence.
    stale = a.fence(token=1)
    async with engine.begin() as conn:
        result = await conn.execute(update(cursors).where(cursors.c.mailbox == "INBOX", stale).values(last_uid=99))
    with pytest.raises(FencedOut):
        require_fenced(result)
    with pytest.raises(FencedOut):
        await _fenced_cursor_write(engine, a, 98)  # not held: never matches
    await _fenced_cursor_write(engine, b, 2)
    async with engine.connect() as conn:
        assert (await conn.execute(select(cursors.c.last_uid))).scalar_one() == 2


async def test_fenced_insert_writes_only_for_the_holder(engine: AsyncEngine) -> None:
    a = WorkerLease(engine, holder="a", ttl=TTL)
    b = WorkerLease(engine, holder="b", ttl=TTL)
    assert await a.acquire(_at(0))
    row = {"mailbox": "INBOX", "uidvalidity": 5, "last_uid": 1, "updated_at": _at(0)}
    async with engine.begin() as conn:
        assert (await conn.execute(a.fenced_insert(cursors, row))).rowcount == 1
        refused = await conn.execute(b.fenced_insert(cursors, {**row, "mailbox": "Other"}))
        assert refused.rowcount == 0
        got = (await conn.execute(select(cursors.c.updated_at, cursors.c.uidvalidity))).one()
    assert tuple(got) == (_at(0), 5)


async def test_release_lets_a_standby_in_at_once_with_a_new_token(engine: AsyncEngine) -> None:
    a = WorkerLease(engine, holder="a", ttl=TTL)
    b = WorkerLease(engine, holder="b", ttl=TTL)
    assert await a.acquire(_at(0))
    old = a.fence()
    await a.release()
    assert not a.held
    async with engine.begin() as conn:
        # Released: even the old token of the old holder no longer passes the fence.
        assert (await conn.execute(select(old))).scalar_one() is False
    assert await b.acquire(_at(1)) and b.token == 2
    await b.release()
    assert await a.acquire(_at(2)) and a.token == 3


async def test_only_one_of_many_concurrent_acquirers_wins(engine: AsyncEngine) -> None:
    leases = [WorkerLease(engine, holder=f"w{i}", ttl=TTL) for i in range(6)]
    results: dict[str, bool] = {}

    async def contend(lease: WorkerLease) -> None:
        results[lease.holder] = await lease.acquire(_at(0))

    async with anyio.create_task_group() as tg:
        for lease in leases:
            tg.start_soon(contend, lease)
    winners = [holder for holder, won in results.items() if won]
    assert len(winners) == 1
    async with engine.connect() as conn:
        row = (await conn.execute(select(runtime_lease.c.holder, runtime_lease.c.token))).one()
    assert tuple(row) == (winners[0], 1)


async def test_valid_at_follows_the_last_successful_renewal(engine: AsyncEngine) -> None:
    lease = WorkerLease(engine, holder="a", ttl=TTL)
    assert not lease.valid_at(_at(0))
    assert await lease.acquire(_at(0))
    assert lease.valid_at(_at(9)) and not lease.valid_at(_at(10))
    assert await lease.renew(_at(5))
    assert lease.expires_at == _at(15) and lease.valid_at(_at(14))


def test_lease_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="holder"):
        WorkerLease(None, holder="", ttl=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        WorkerLease(None, holder="a", ttl=0)  # type: ignore[arg-type]
