"""Tables of `observability` (prefix ``observability_``): usage events."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime


class ObservabilityUsage(Base):
    """One countable act (or a batch of like acts) of one module.

    `key` names the act itself (``cam.email_sent:<outbound id>``): recording it again, after a
    crash or a replay, finds the row there and counts nothing twice.
    """

    __tablename__ = "observability_usage"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    module: Mapped[str] = mapped_column(String(64))
    #: ``email_sent``, ``message_read``, ``message_classified``, ``alert_delivered``, ``api_call``.
    kind: Mapped[str] = mapped_column(String(64))
    #: The campaign (or, later, the client) the act was for; NULL when none.
    subject: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: The UTC day of `at` (YYYY-MM-DD): grouping by day the same way on both databases.
    day: Mapped[str] = mapped_column(String(10))

    __table_args__ = (
        Index(None, "day", "module", "kind"),
        Index(None, "subject", "day"),
        # Covers the aggregates: read from the index alone (not the wider rows with their keys),
        # in module and kind order, so the commonest grouping needs no sort.
        Index(None, "module", "kind", "at", "day", "subject", "quantity"),
    )


observability_usage = cast(Table, ObservabilityUsage.__table__)
