"""Retention: keeping clients (health checks, renewals).

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class RetentionMessage(Message):
    contract_version: int = CONTRACT_VERSION


class RetentionEvent(Event):
    contract_version: int = CONTRACT_VERSION


class CheckClientHealth(RetentionMessage):
    client_ref: uuid.UUID


class ChurnRiskDetected(RetentionEvent):
    client_ref: uuid.UUID
    reason: str
