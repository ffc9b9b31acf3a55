"""Client review: the client approves or asks for changes.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class ClientReviewMessage(Message):
    contract_version: int = CONTRACT_VERSION


class ClientReviewEvent(Event):
    contract_version: int = CONTRACT_VERSION


class RequestReview(ClientReviewMessage):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID


class ReviewApproved(ClientReviewEvent):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID


class ChangesRequested(ClientReviewEvent):
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    notes: str = ""
