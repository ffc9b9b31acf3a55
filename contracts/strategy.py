"""Strategy: a plan (goals, channels, calendar) for a project.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class StrategyMessage(Message):
    contract_version: int = CONTRACT_VERSION


class StrategyEvent(Event):
    contract_version: int = CONTRACT_VERSION


class DraftStrategy(StrategyMessage):
    project_id: uuid.UUID
    brief: dict[str, str] = {}


class StrategyReady(StrategyEvent):
    project_id: uuid.UUID
    plan: dict[str, str] = {}


class StrategyFailed(StrategyEvent):
    project_id: uuid.UUID
    reason: str
