"""Strategy: the plan for a client's first period (deliverables calendar, topics, KPIs),
sent to the client for approval; a changed plan is a new version.

Orchestration tells `strategy.planner` to draft (or cancel) a project's plan; the module
answers with events. Commands carry the idempotency key of the project's step.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec

CONTRACT_VERSION = 2


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
