"""`SwitchesRepo`: which modules are switched off (and whether the worker is paused), kept.

No row means on. A change is one transaction, and whoever asks for it may write alongside
(`also`: the audit record of who did it), so the switch and its audit line are never apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.orchestration.tables import orchestration_switches as switches_t
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.work import run_write


@dataclass(frozen=True)
class Switch:
    name: str
    enabled: bool
    reason: str | None
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True)
class SwitchState:
    """The switches as a whole: what is off, and whether the worker is paused."""

    rows: dict[str, Switch]

    def enabled(self, name: str) -> bool:
        row = self.rows.get(name)
        return row is None or row.enabled

    @property
    def disabled(self) -> list[str]:
        return sorted(name for name, row in self.rows.items() if not row.enabled and name != "worker")

    @property
    def worker_paused(self) -> bool:
        return not self.enabled("worker")


def _read(conn: Connection) -> SwitchState:
    rows = conn.execute(sa.select(switches_t)).mappings()
    return SwitchState({r["name"]: Switch(**dict(r)) for r in rows})


class SwitchesRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # asked every tick (storage.changes)

    async def state(self) -> SwitchState:
        return await self.kept.read("state", _read)

    async def set(
        self,
        name: str,
        enabled: bool,
        *,
        by: str,
        reason: str | None,
        now: datetime,
        also: Callable[[Connection], object] | None = None,
    ) -> bool:
        """Switch `name` on or off; True when that changed something."""

        def work(conn: Connection) -> bool:
            before = _read(conn).enabled(name)
            values = {"enabled": enabled, "reason": reason, "changed_by": by, "changed_at": now}
            updated = conn.execute(switches_t.update().where(switches_t.c.name == name).values(**values)).rowcount
            if not updated:
                conn.execute(switches_t.insert().values(name=name, **values))
            if also is not None:
                also(conn)
            return before != enabled

        return await run_write(self.engine, work)
