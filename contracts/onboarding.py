"""Onboarding: turning a signed client into a project with a brief and access.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class OnboardingMessage(Message):
    contract_version: int = CONTRACT_VERSION


class OnboardingEvent(Event):
    contract_version: int = CONTRACT_VERSION


class OnboardingStarted(OnboardingEvent):
    project_id: uuid.UUID
    client_ref: uuid.UUID


class StartOnboarding(OnboardingMessage):
    project_id: uuid.UUID
    client_ref: uuid.UUID
    contact_email: str


class OnboardingCompleted(OnboardingEvent):
    project_id: uuid.UUID
    brief: dict[str, str] = {}


class OnboardingFailed(OnboardingEvent):
    project_id: uuid.UUID
    reason: str
