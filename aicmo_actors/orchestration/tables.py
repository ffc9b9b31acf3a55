"""Tables of `orchestration` (prefix ``orchestration_``): the modules' switches."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Boolean, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, UtcDateTime


class OrchestrationSwitch(Base):
    """Whether a module (or the whole worker's sending, name ``worker``) is switched on.

    No row means on: a module is switched off only by someone, and the choice outlives restarts.
    """

    __tablename__ = "orchestration_switches"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


orchestration_switches = cast(Table, OrchestrationSwitch.__table__)
