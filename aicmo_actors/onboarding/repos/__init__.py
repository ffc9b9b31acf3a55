"""Onboarding's repositories: every read and write of the `onboarding_*` tables.

Each method is one transaction (a unit of work of `storage.work`) and returns rows or plain
dataclasses, never contract messages: the actor builds those. `OnboardingStore` is the
module's store: its repositories over one engine.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.onboarding.repos.forms import BY_CLIENT, FormsRepo, FormView, Saved
from aicmo_actors.onboarding.repos.intakes import (
    PURPOSE,
    CompletedNews,
    IntakeError,
    IntakesRepo,
    NewIntake,
    News,
    OverdueNews,
    ReplyNews,
)
from aicmo_actors.onboarding.repos.records import IntakeRow
from aicmo_actors.onboarding.repos.replies import InboundReply, RepliesRepo, ReplyRow, StoredReply
from aicmo_actors.onboarding.tables import onboarding_emails
from aicmo_actors.storage.client_mail import MailBook


class OnboardingStore:
    """Onboarding's repositories over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.intakes = IntakesRepo(engine)
        self.forms = FormsRepo(engine)
        self.replies = RepliesRepo(engine)
        #: The client emails' outbox (`storage.client_mail`).
        self.mail = MailBook(engine, onboarding_emails)


__all__ = [
    "BY_CLIENT",
    "PURPOSE",
    "CompletedNews",
    "FormView",
    "FormsRepo",
    "InboundReply",
    "IntakeError",
    "IntakeRow",
    "IntakesRepo",
    "NewIntake",
    "News",
    "OnboardingStore",
    "OverdueNews",
    "RepliesRepo",
    "ReplyNews",
    "ReplyRow",
    "Saved",
    "StoredReply",
]
