"""Quality control: checking deliverables before a client sees them.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class QcMessage(Message):
    contract_version: int = CONTRACT_VERSION


class QcEvent(Event):
    contract_version: int = CONTRACT_VERSION


class CheckDeliverable(QcMessage):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID


class QcPassed(QcEvent):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID


class QcRejected(QcEvent):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    findings: tuple[str, ...] = ()
