"""Strategy: the plan for a client's first period (deliverables calendar, topics, KPIs),
sent to the client for approval; a changed plan is a new version.

Orchestration tells `strategy.planner` to draft (or cancel) a project's plan; the module
answers with events. Commands carry the idempotency key of the project's step.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec

CONTRACT_VERSION = 3


class PlannedItem(BaseModel):
    """One piece of work of an approved plan: piece `piece` of its `type` on `channel`, due on
    `due` (the client's date), about `topic`, within the package's limits for its type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Unique within the plan: "<type>:<channel>:<piece>".
    key: str
    type: str
    channel: str
    piece: int
    due: date
    topic: str
    min_words: int | None = None
    max_words: int | None = None
    max_chars: int | None = None


class StrategyMessage(Message):
    contract_version: int = CONTRACT_VERSION


class StrategyEvent(Event):
    contract_version: int = CONTRACT_VERSION


class DraftStrategy(StrategyMessage):
    """Orchestration -> strategy: plan the first period and send it for approval."""

    project_id: uuid.UUID
    idempotency_key: str
    client: ClientInfo
    package: PackageSpec
    brief: dict[str, str]
    start: date


class PlanSent(StrategyEvent):
    """Version `version` of the plan is with the client; approval is awaited until `deadline`."""

    project_id: uuid.UUID
    version: int
    deadline: datetime


class PlanChangesRequested(StrategyEvent):
    """The client asked for changes: a new version follows."""

    project_id: uuid.UUID
    version: int
    comments: str


class PlanApproved(StrategyEvent):
    project_id: uuid.UUID
    version: int
    approved_at: datetime
    #: How many deliverables the approved calendar holds for the period.
    deliverables: int
    #: The approved calendar itself (what production makes).
    items: tuple[PlannedItem, ...] = ()


class PlanOverdue(StrategyEvent):
    project_id: uuid.UUID
    version: int


class CancelStrategy(StrategyMessage):
    """Orchestration -> strategy (compensation): withdraw the plan (revoke its link), tell
    the client."""

    project_id: uuid.UUID
    idempotency_key: str
    reason: str


class StrategyCancelled(StrategyEvent):
    project_id: uuid.UUID


class StrategyFailed(StrategyEvent):
    project_id: uuid.UUID
    reason: str
