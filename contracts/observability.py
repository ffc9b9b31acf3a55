"""Observability: health and metrics collected from every actor.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class ObservabilityMessage(Message):
    contract_version: int = CONTRACT_VERSION


class ObservabilityEvent(Event):
    contract_version: int = CONTRACT_VERSION


class CollectHealth(ObservabilityMessage):
    pass


class HealthReport(ObservabilityEvent):
    ok: bool
    details: dict[str, str] = {}
