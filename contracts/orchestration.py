"""Orchestration: the project saga from onboarding to delivery, with compensation.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class OrchestrationMessage(Message):
    contract_version: int = CONTRACT_VERSION


class OrchestrationEvent(Event):
    contract_version: int = CONTRACT_VERSION


class StartProject(OrchestrationMessage):
    client_ref: uuid.UUID
    contact_email: str


class SagaStepCompleted(OrchestrationEvent):
    project_id: uuid.UUID
    step: str


class SagaCompensating(OrchestrationEvent):
    project_id: uuid.UUID
    failed_step: str
    reason: str


class ProjectCompleted(OrchestrationEvent):
    project_id: uuid.UUID
