"""Client review: the client approves each piece, or asks for changes, by link or by reply.

Production tells `client_review.reviews` to ask the client about a batch of items (one
review email with one capability link per batch); the module answers `ReviewRequested`,
then `ItemReviewed` for each item as the client answers (on the page, by replying to the
email, or by the package's auto-approval), and says all of it again whenever the same
`RequestReview` is told again. `WithdrawReviews` (a cancelled project) revokes the links
and cancels what is not sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec

CONTRACT_VERSION = 2

Verdict = Literal["approved", "changes"]
#: Who gave the verdict: the client on the review page, the client by email, the package's
#: auto-approval after silence, or a person of the agency on the client's behalf.
ReviewedBy = Literal["page", "email", "auto", "person"]


class ReviewItem(BaseModel):
    """One piece as the client sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: uuid.UUID
    version: int
    title: str
    type: str
    channel: str
    #: The piece as plain text (Markdown allowed) and as HTML (made by production, shown
    #: escaped-safe by the page: it is the agency's own output, sanitised at render time).
    text: str
    html: str = ""


class ClientReviewMessage(Message):
    contract_version: int = CONTRACT_VERSION


class ClientReviewEvent(Event):
    contract_version: int = CONTRACT_VERSION


class RequestReview(ClientReviewMessage):
    """Production -> client review: ask the client about these items (one batch)."""

    project_id: uuid.UUID
    #: The batch's key: "<project>:review:<n>".
    idempotency_key: str
    client: ClientInfo
    package: PackageSpec
    items: tuple[ReviewItem, ...]


class ReviewRequested(ClientReviewEvent):
    """The batch's review email is on its way; answers are awaited until `deadline`."""

    project_id: uuid.UUID
    batch_key: str
    deadline: datetime
    #: When silence becomes approval (the package allows it), else None.
    auto_approve_at: datetime | None = None


class ItemReviewed(ClientReviewEvent):
    """The client's verdict on one version of one item (said again on every ask)."""

    project_id: uuid.UUID
    batch_key: str
    item_id: uuid.UUID
    version: int
    verdict: Verdict
    comment: str = ""
    by: ReviewedBy
    at: datetime


class WithdrawReviews(ClientReviewMessage):
    """Production -> client review (a cancelled project): revoke every link of the project,
    cancel the queued emails, tell the client once if a review request may have reached them."""

    project_id: uuid.UUID
    idempotency_key: str
    reason: str


class ReviewsWithdrawn(ClientReviewEvent):
    project_id: uuid.UUID
