"""The worker lease: one active worker per database, and fencing so a stale one cannot write.

A row in ``runtime_lease`` names the holder, a fencing token and an expiry. `acquire` takes
the lease atomically when it is free, expired or already ours (one conditional upsert; on
SQLite inside ``BEGIN IMMEDIATE``); a takeover by another holder increments the token, so it
only grows. The holder renews three times per lease period (`LeaseKeeper`), and stops its
effects when a renewal fails. The write that lets an email leave, cam's claim of an outbound
row, adds `fence()` to its WHERE clause: once another worker has taken over, the stale
holder's claim matches 0 rows and nothing is sent. (A writer that must stop outright instead
can check its result with `require_fenced`, which raises `FencedOut`.) Other writes are not
fenced: until its next renewal a stale worker may still write, and every such row is keyed (stored
once whoever writes it), but an alert it is delivering then may also go out from the new holder.

`now` is always passed in (the runtime's clock). Holders on different machines compare
expiries written by each other's clocks, so those clocks must agree to well under the lease
time (NTP does).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Table, and_, case, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from aicmo_actors.storage.runtime_tables import runtime_lease

log = structlog.get_logger("aicmo.storage.lease")

DEFAULT_LEASE_NAME = "worker"


class FencedOut(Exception):
    """A fenced effect write touched no row: another worker holds the lease now. Stop."""


def default_holder_id() -> str:
    """A holder id unique to this process incarnation: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def require_fenced(result: Any, what: str = "write") -> None:
    """Raise `FencedOut` when a fenced UPDATE/INSERT matched no row."""
    rowcount = result.rowcount if isinstance(result, CursorResult) else result
    if rowcount == 0:
        raise FencedOut(f"{what} refused: this worker no longer holds the lease")


class WorkerLease:
    """One worker's view of a named lease in ``runtime_lease``.

    Usage: ``if await lease.acquire(clock.now()):`` become active; on every tick
    ``if not await lease.renew(clock.now()):`` stop effects; write effects with
    ``.where(..., lease.fence())`` and `require_fenced`; `release` on clean shutdown.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        holder: str,
        ttl: timedelta | float,
        name: str = DEFAULT_LEASE_NAME,
    ) -> None:
        if not holder:
            raise ValueError("holder id must not be empty")
        self._engine = engine
        self.holder = holder
        self.name = name
        self.ttl = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
        if self.ttl <= timedelta(0):
            raise ValueError("lease ttl must be positive")
        self._token: int | None = None
        self._expires_at: datetime | None = None
        self._log = log.bind(lease=name, holder=holder)
        self._fences: dict[int | None, ColumnElement[bool]] = {}

    @property
    def token(self) -> int | None:
        """The fencing token while held (None when not held)."""
        return self._token

    @property
    def held(self) -> bool:
        """Whether the last acquire or renew succeeded (and no release or loss since)."""
        return self._token is not None

    @property
    def expires_at(self) -> datetime | None:
        """When the lease runs out unless renewed (None when not held)."""
        return self._expires_at

    def valid_at(self, now: datetime) -> bool:
        """Held and not past its expiry at `now` (e.g. renewals failed because the db is down)."""
        return self._expires_at is not None and self._token is not None and now < self._expires_at

    def fence(self, token: int | None = None) -> ColumnElement[bool]:
        """SQL condition true only while this holder still holds the lease with `token`.

        Add it to every effect write's WHERE clause; `token` defaults to the current one.
        """
        token = self._token if token is None else token
        # The same element for the same token: statements built on it can be cached by it.
        fence = self._fences.get(token)
        if fence is None:
            if token is None:
                # Not held: a condition that never matches, so an unguarded effect cannot slip by.
                fence = literal(False)
            else:
                fence = exists().where(
                    runtime_lease.c.name == self.name,
                    runtime_lease.c.holder == self.holder,
                    runtime_lease.c.token == token,
                )
            if len(self._fences) > 8:
                self._fences.clear()
            self._fences[token] = fence
        return fence

    def fenced_insert(self, table: Table, row: dict[str, Any]) -> Insert:
        """An ``INSERT INTO table (...) SELECT <row> WHERE <fence>``: 0 rows once fenced out."""
        values = [literal(value, type_=table.c[key].type).label(key) for key, value in row.items()]
        return table.insert().from_select(list(row), select(*values).where(self.fence()))

    def _upsert(self, now: datetime) -> Any:
        expires_at = now + self.ttl
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(runtime_lease).values(
            name=self.name,
            holder=self.holder,
            token=1,
            expires_at=expires_at,
            acquired_at=now,
            renewed_at=now,
        )
        table = runtime_lease.c
        ours = table.holder == stmt.excluded.holder
        return stmt.on_conflict_do_update(
            index_elements=[table.name],
            set_={
                "holder": stmt.excluded.holder,
                # A takeover bumps the token; re-acquiring our own lease keeps it.
                "token": case((ours, table.token), else_=table.token + 1),
                "expires_at": stmt.excluded.expires_at,
                "acquired_at": case((ours, table.acquired_at), else_=stmt.excluded.acquired_at),
                "renewed_at": stmt.excluded.renewed_at,
            },
            where=(table.expires_at < now) | ours,
        ).returning(table.token)

    async def acquire(self, now: datetime) -> bool:
        """Take the lease if it is free, expired or already ours; True when we hold it."""
        async with self._engine.begin() as conn:
            token = (await conn.execute(self._upsert(now))).scalar_one_or_none()
        if token is None:
            if self._token is not None:
                self._log.warning("lease lost", token=self._token)
            self._token = None
            self._expires_at = None
            return False
        if token != self._token:
            self._log.info("lease acquired", token=token)
        self._token = int(token)
        self._expires_at = now + self.ttl
        return True

    async def renew(self, now: datetime) -> bool:
        """Extend the lease we hold; False (and not held any more) if someone else took it."""
        if self._token is None:
            return False
        stmt = (
            update(runtime_lease)
            .where(
                and_(
                    runtime_lease.c.name == self.name,
                    runtime_lease.c.holder == self.holder,
                    runtime_lease.c.token == self._token,
                )
            )
            .values(expires_at=now + self.ttl, renewed_at=now)
        )
        async with self._engine.begin() as conn:
            renewed = (await conn.execute(stmt)).rowcount == 1
        if renewed:
            self._expires_at = now + self.ttl
        else:
            self._log.warning("lease lost", token=self._token)
            self._token = None
            self._expires_at = None
        return renewed

    async def release(self) -> None:
        """Give the lease up now (clean shutdown), so a standby need not wait for the expiry."""
        if self._token is None:
            return
        table = runtime_lease.c
        stmt = (
            update(runtime_lease)
            .where(table.name == self.name, table.holder == self.holder, table.token == self._token)
            # Expired as of its last renewal, and no holder: our fenced writes stop matching.
            .values(holder="", expires_at=table.renewed_at)
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)
        self._log.info("lease released", token=self._token)
        self._token = None
        self._expires_at = None
