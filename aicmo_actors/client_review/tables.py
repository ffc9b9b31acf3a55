"""The tables of client_review (prefix ``client_review_``). Declarations only: no business logic.

- ``client_review_batches``: one row per `RequestReview` key (a batch), written whole the first
  time (the client and the package as JSON, the deadline, the auto-approval time, the link's
  nonce and hash) and afterwards changed only in its follow-up fields (state, reminders, the
  next thing due, the person alerted, withdrawn);
- ``client_review_items``: a copy of each `ReviewItem` of a batch, and the verdict on it (who
  gave it, when, and when the actor announced it);
- ``client_review_replies``: the client's emailed answers to a batch's emails, with the intent
  read from them and whether a person had to be alerted;
- ``client_review_withdrawals``: one row per withdrawn project (`WithdrawReviews`, which may come
  before any batch: a later `RequestReview` then makes none);
- ``client_review_passwords``: the optional password of a project's review pages (argon2 hash)
  and the count of wrong guesses;
- ``client_review_emails`` and ``client_review_links``: the client emails (`storage.client_mail`)
  and the capability links (`storage.links`), as every module after the deal has them.

The allowed values of a state column are repeated in a CHECK constraint on purpose: a new value
is a schema change and gets a migration (copy the literal list there, never import it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.client_mail import mail_table
from aicmo_actors.storage.links import link_table
from aicmo_actors.storage.metadata import Base, Id, UtcDateTime

#: A batch: some item still awaits the client's verdict; every item has one; withdrawn.
OPEN, ANSWERED, WITHDRAWN = "open", "answered", "withdrawn"
BATCH_STATES = (OPEN, ANSWERED, WITHDRAWN)
#: An item: no verdict yet, approved, changes asked for (the contract's `Verdict` plus "awaiting").
AWAITING, APPROVED, CHANGES = "awaiting", "approved", "changes"
ITEM_STATUSES = (AWAITING, APPROVED, CHANGES)
#: Who gave a verdict (the contract's `ReviewedBy`).
REVIEWERS = ("page", "email", "auto", "person")
#: What an emailed answer was read as (`cam.classify.review.review_intent`).
INTENTS = ("approve", "changes", "unclear")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class ReviewBatch(Base):
    """One batch of items the client is asked to review (see the module docstring)."""

    __tablename__ = "client_review_batches"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: The `RequestReview`'s idempotency key ("<project>:review:<n>").
    batch_key: Mapped[str] = mapped_column(String(200), unique=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    client: Mapped[Any] = mapped_column(JSON)
    package: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: When the answer is expected (the client's business days, 9:00 local).
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: When silence becomes approval (only where the package allows it).
    auto_approve_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The link's nonce (the token is made again from it for the reminders) and the token's hash.
    link_nonce: Mapped[int] = mapped_column(BigInteger)
    link_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reminders_planned: Mapped[int] = mapped_column(Integer)
    reminder_every: Mapped[int] = mapped_column(Integer)
    # -- the follow-up fields, the only ones ever updated ----------------------------------------------------------
    state: Mapped[str] = mapped_column(String(16))
    reminders_sent: Mapped[int] = mapped_column(Integer)
    #: The next reminder, or the alert after the last one; None: nothing more but auto-approval.
    next_action_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When a person was needed (no answer after the last reminder, no auto-approval) ...
    needs_person_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: ... and when `cam.alerts` was told so.
    person_alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index(None, "state", "next_action_at"),
        CheckConstraint(_one_of("state", BATCH_STATES), name="state"),
    )


class ReviewItemRow(Base):
    """One item of a batch, as the client sees it, and the verdict on it."""

    __tablename__ = "client_review_items"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(Id, index=True)
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    # -- the verdict -------------------------------------------------------------------------------------------------
    status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(10))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When `ItemReviewed` was published for the verdict.
    announced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("batch_id", "item_id", "version"),
        Index(None, "status", "announced_at"),
        CheckConstraint(_one_of("status", ITEM_STATUSES), name="status"),
        CheckConstraint(_one_of("reviewed_by", REVIEWERS), name="reviewed_by"),
    )


class ReviewReply(Base):
    """An email the client sent in answer to one of a batch's emails."""

    __tablename__ = "client_review_replies"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(Id)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    #: `cam_inbound_emails.id` (the `UnmatchedReply`'s `inbound_id`).
    inbound_id: Mapped[int] = mapped_column(BigInteger)
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(10))
    #: Items the reply decided (0: unclear, or nothing was left to decide).
    decided: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: When a person must read it (unclear, or changes asked after every item was answered) ...
    needs_person_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: ... and when `cam.alerts` was told so.
    person_alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("batch_id", "inbound_id"),
        CheckConstraint(_one_of("intent", INTENTS), name="intent"),
    )


class ReviewWithdrawal(Base):
    """A withdrawn project (`WithdrawReviews`)."""

    __tablename__ = "client_review_withdrawals"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    withdrawn_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReviewPassword(Base):
    """The optional password of a project's review pages, and the wrong guesses counted."""

    __tablename__ = "client_review_passwords"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: An argon2id hash (argon2-cffi's PHC string).
    password_hash: Mapped[str] = mapped_column(Text)
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)
    failures: Mapped[int] = mapped_column(Integer)
    failures_since: Mapped[datetime | None] = mapped_column(UtcDateTime)


client_review_batches = cast(Table, ReviewBatch.__table__)
client_review_items = cast(Table, ReviewItemRow.__table__)
client_review_replies = cast(Table, ReviewReply.__table__)
client_review_withdrawals = cast(Table, ReviewWithdrawal.__table__)
client_review_passwords = cast(Table, ReviewPassword.__table__)
client_review_emails = mail_table("client_review")
client_review_links = link_table("client_review")
