"""Strategy: the plan for a client's first period (deliverables calendar, topics, KPIs),
sent to the client for approval; a changed plan is a new version. Each later period of the
contract gets its calendar from the approved plan (`PlanPeriod`: same deliverables, same
words to use and avoid, new topics), without another approval: the client reviews every
piece anyway.

Orchestration tells `strategy.planner` to draft (or cancel) a project's plan and to plan its
later periods; the module answers with events. Commands carry the idempotency key of the
project's step.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec

CONTRACT_VERSION = 4  # 4: PlanPeriod and PeriodPlanned (later periods)


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


class PlanPeriod(StrategyMessage):
    """Orchestration -> strategy: the calendar of period `period` (2 or later), which begins on
    `start`, drawn from the project's approved plan. Pure and repeatable: the same command
    always gives the same items."""

    project_id: uuid.UUID
    idempotency_key: str
    client: ClientInfo
    package: PackageSpec
    period: int
    start: date


class PeriodPlanned(StrategyEvent):
    """The calendar of period `period`, from version `version` of the approved plan."""

    project_id: uuid.UUID
    period: int
    version: int
    items: tuple[PlannedItem, ...]


class StrategyCancelled(StrategyEvent):
    project_id: uuid.UUID


class StrategyFailed(StrategyEvent):
    project_id: uuid.UUID
    reason: str
