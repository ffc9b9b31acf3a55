"""Onboarding: from a signed client to a brief (the intake questionnaire answered).

Orchestration tells `onboarding.intake` to start (or cancel) a project's onboarding; the
module answers with events. Every command carries the idempotency key of the project's
step: told twice (a saga resumed after a kill), the module does its effects once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec

CONTRACT_VERSION = 2


@dataclass(frozen=True)
class BriefField:
    """One question of the intake questionnaire; its key is the brief's key (strategy reads
    the brief by these keys)."""

    key: str
    label: str
    required: bool
    help: str = ""


#: The intake questionnaire, in order: the brief is {key: answer}.
BRIEF_FIELDS: tuple[BriefField, ...] = (
    BriefField("business", "What does your business do, and for whom?", True, "Two or three sentences."),
    BriefField(
        "audience", "Who do you want to reach?", True, "Roles, industries, places; the more precise the better."
    ),
    BriefField("goals", "What should the next months achieve?", True, "For example: more demo requests, a new market."),
    BriefField("brand_voice", "How should you sound?", True, "Three adjectives, or a text you like."),
    BriefField("competitors", "Who do you compete with?", True, "Names or web addresses, one per line."),
    BriefField("words_to_use", "Words and phrases to use", False, "Product names, terms your clients use."),
    BriefField("words_to_avoid", "Words and phrases to avoid", False, "Anything we must never write."),
    BriefField("assets", "Assets and access", False, "Links to logos, brand guide, photos; which accounts to share."),
)


class OnboardingMessage(Message):
    contract_version: int = CONTRACT_VERSION


class OnboardingEvent(Event):
    contract_version: int = CONTRACT_VERSION


class StartOnboarding(OnboardingMessage):
    """Orchestration -> onboarding: welcome the client and ask the intake questions."""

    project_id: uuid.UUID
    idempotency_key: str
    client: ClientInfo
    package: PackageSpec
    start: date


class OnboardingStarted(OnboardingEvent):
    """The welcome (with the intake link) is on its way; what it waits for and until when."""

    project_id: uuid.UUID
    waiting_for: str
    deadline: datetime


class IntakeReplyReceived(OnboardingEvent):
    """The client answered by email instead of the form: kept as raw answers for a person."""

    project_id: uuid.UUID
    inbound_ref: str


class OnboardingCompleted(OnboardingEvent):
    """The required answers are in: the brief (question key -> answer)."""

    project_id: uuid.UUID
    brief: dict[str, str]
    completed_at: datetime


class OnboardingOverdue(OnboardingEvent):
    """Reminders went unanswered: a person should call the client."""

    project_id: uuid.UUID
    reminders_sent: int


class CancelOnboarding(OnboardingMessage):
    """Orchestration -> onboarding (compensation): revoke the intake link, stop the reminders,
    tell the client."""

    project_id: uuid.UUID
    idempotency_key: str
    reason: str


class OnboardingCancelled(OnboardingEvent):
    project_id: uuid.UUID


class OnboardingFailed(OnboardingEvent):
    project_id: uuid.UUID
    reason: str
