"""Delivery: handing approved work to the client.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class DeliveryMessage(Message):
    contract_version: int = CONTRACT_VERSION


class DeliveryEvent(Event):
    contract_version: int = CONTRACT_VERSION


class Deliver(DeliveryMessage):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID


class Delivered(DeliveryEvent):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    delivered_at: datetime
