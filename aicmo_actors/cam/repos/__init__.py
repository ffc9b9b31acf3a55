"""CAM's repositories: every read and write of the `cam_*` tables, one concern per file.

Each method is one transaction (one unit of work of `storage.work`) over tables imported
from `cam.tables`, and returns rows or plain dataclasses, never contract messages: the
actors build those. Writes one repository makes inside another's transaction (a lead's
decision while acting on a reply, an alert with the pause it announces) are the plain
functions taking a `Connection` (`leads.apply_decision_in`, `alerts.insert_alert`, ...).

`CamStore` is the module's store: its repositories over one engine, sharing one cache of
parsed campaign specs; the claim of an outbound row is fenced by the worker lease's token.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.repos.alerts import AlertRow, AlertsRepo
from aicmo_actors.cam.repos.campaigns import CampaignRow, CampaignsRepo, Specs
from aicmo_actors.cam.repos.deals import Deal, DealsRepo
from aicmo_actors.cam.repos.inbound import STRONG_MATCHES, WEAK_MATCHES, Acted, InboundRepo, Match
from aicmo_actors.cam.repos.leads import DueLead, LeadsRepo
from aicmo_actors.cam.repos.metrics import Figures, MetricsRepo
from aicmo_actors.cam.repos.outbox import (
    NOT_BUILT,
    PAUSED_HOLD,
    AttemptReply,
    FailureOutcome,
    Finished,
    Held,
    NotSent,
    OutboundJob,
    OutboxRepo,
    QueuedSend,
    SendFailure,
)


class CamStore:
    """CAM's repositories over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, fence: Callable[[], sa.ColumnElement[bool]] | None = None) -> None:
        self.engine = engine
        specs = Specs()
        self.campaigns = CampaignsRepo(engine, specs)
        self.leads = LeadsRepo(engine, self.campaigns)
        self.outbox = OutboxRepo(engine, specs, fence)
        self.inbound = InboundRepo(engine)
        self.alerts = AlertsRepo(engine)
        self.metrics = MetricsRepo(engine, self.campaigns)
        self.deals = DealsRepo(engine)


__all__ = [
    "NOT_BUILT",
    "PAUSED_HOLD",
    "STRONG_MATCHES",
    "WEAK_MATCHES",
    "Acted",
    "AlertRow",
    "AttemptReply",
    "CamStore",
    "CampaignRow",
    "Deal",
    "DueLead",
    "FailureOutcome",
    "Figures",
    "Finished",
    "Held",
    "Match",
    "NotSent",
    "OutboundJob",
    "QueuedSend",
    "SendFailure",
]
