"""Production: the work of a period, piece by piece, from a first draft to its delivery.

The saga tells `production.studio` to produce a project's period (the approved plan's
items) or to cancel it; the module answers with events. Production owns every work item
and its state (planned, drafting, in_qc, signoff, in_review, changes_requested, approved,
delivered, cancelled) and drives each through quality control (`contracts.qc`), the
client's review (`contracts.client_review`) and delivery (`contracts.delivery`) with
commands that carry idempotency keys and may be told again: each module records its
effects under the key and says again where it stands, so no acknowledgement is needed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec
from contracts.strategy import PlannedItem

CONTRACT_VERSION = 2

#: A work item's states, in the order an item normally goes through them.
ITEM_STATES = (
    "planned",
    "drafting",
    "in_qc",
    "signoff",
    "in_review",
    "changes_requested",
    "approved",
    "delivered",
    "cancelled",
)


class ProductionMessage(Message):
    contract_version: int = CONTRACT_VERSION


class ProductionEvent(Event):
    contract_version: int = CONTRACT_VERSION


class ProducePeriod(ProductionMessage):
    """Orchestration -> production: make, check, get approved and deliver these items."""

    project_id: uuid.UUID
    idempotency_key: str
    client: ClientInfo
    package: PackageSpec
    brief: dict[str, str]
    plan_version: int
    items: tuple[PlannedItem, ...]
    period: int = 1


class ProductionStarted(ProductionEvent):
    """The period's work items exist; how far they are, and when the last is due."""

    project_id: uuid.UUID
    period: int
    items: int
    delivered: int
    waiting_for: str
    deadline: datetime


class PeriodDelivered(ProductionEvent):
    """Every item of the period is delivered (each by every method of the package)."""

    project_id: uuid.UUID
    period: int
    items: int
    delivered_at: datetime


class ItemLate(ProductionEvent):
    """An item is past its due date, or past the package's turnaround from its request."""

    project_id: uuid.UUID
    item_id: uuid.UUID
    due: date
    state: str


class CancelProduction(ProductionMessage):
    """Orchestration -> production (compensation): stop the period's work, withdraw the
    reviews awaiting the client, cancel the deliveries not made."""

    project_id: uuid.UUID
    idempotency_key: str
    reason: str


class ProductionCancelled(ProductionEvent):
    project_id: uuid.UUID


class ProductionFailed(ProductionEvent):
    project_id: uuid.UUID
    reason: str


class DraftWritten(ProductionEvent):
    """A new version of an item was written (by the template or LLM generator, or uploaded by
    a person). Added for issue 19: usage (the generator's tokens) and the trace count it."""

    project_id: uuid.UUID
    item_id: uuid.UUID
    version: int
    #: "template", "llm" or "person".
    source: str
    tokens: int = 0
    client_ref: uuid.UUID | None = None
