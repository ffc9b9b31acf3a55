"""Production: making the deliverables the strategy calls for.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class ProductionMessage(Message):
    contract_version: int = CONTRACT_VERSION


class ProductionEvent(Event):
    contract_version: int = CONTRACT_VERSION


class ProduceDeliverables(ProductionMessage):
    project_id: uuid.UUID
    items: tuple[str, ...] = ()


class DeliverableProduced(ProductionEvent):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    kind: str


class ProductionFailed(ProductionEvent):
    project_id: uuid.UUID
    reason: str
