"""Learning: recording outcomes so campaigns improve.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class LearningMessage(Message):
    contract_version: int = CONTRACT_VERSION


class LearningEvent(Event):
    contract_version: int = CONTRACT_VERSION


class RecordOutcome(LearningMessage):
    subject: str
    outcome: str
    value: float = 0.0


class OutcomeRecorded(LearningEvent):
    subject: str
    outcome: str
