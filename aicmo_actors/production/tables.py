"""The tables of production (prefix ``production_``). Declarations only: no business logic.

- ``production_runs``: one row per project, what the saga asked (`ProducePeriod`: its key,
  the period, the plan's version) and the cancellation (`CancelProduction`, which may come
  first), with when the other modules confirmed it (reviews withdrawn, deliveries cancelled);
- ``production_items``: one work item per planned piece: its state, due and start days, the
  version it is at, its counters (retakes, review rounds), who works on it, a copy of the
  client, package and brief, and when its current command (a `CheckDraft`) was last told;
- ``production_versions``: every version of an item, stored whole when written (title, text,
  HTML, source, tokens) and then only annotated: the QC verdict, the client's verdict;
- ``production_batches`` / ``production_batch_items``: the review batches sent to the client;
- ``production_deliveries``: one row per item, version and delivery method (its key);
- ``production_alerts``: alerts to a person, an outbox told to "cam.alerts" until marked;
- ``production_item_events``: each item's history, for a person following it.

The allowed values of a state column are repeated in a CHECK constraint on purpose: a new
value is a schema change and gets a migration (copy the literal list there).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime

PLANNED, DRAFTING, IN_QC, SIGNOFF, IN_REVIEW = "planned", "drafting", "in_qc", "signoff", "in_review"
CHANGES_REQUESTED, APPROVED, DELIVERED, CANCELLED = "changes_requested", "approved", "delivered", "cancelled"
#: The same list as `contracts.production.ITEM_STATES` (a test says so).
ITEM_STATES = (PLANNED, DRAFTING, IN_QC, SIGNOFF, IN_REVIEW, CHANGES_REQUESTED, APPROVED, DELIVERED, CANCELLED)
SOURCES = ("template", "llm", "person")
METHODS = ("email", "webhook", "folder")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class ProductionRun(Base):
    """What the saga asked for one project, and its cancellation."""

    __tablename__ = "production_runs"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: The `ProducePeriod`'s key (None: only a cancellation arrived).
    produce_key: Mapped[str | None] = mapped_column(String(200))
    period: Mapped[int | None] = mapped_column(Integer)
    plan_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: How many review batches were made (the next is "<project>:review:<batches + 1>").
    batches: Mapped[int] = mapped_column(Integer)
    #: When every item was delivered.
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_key: Mapped[str | None] = mapped_column(String(200))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    #: When `WithdrawReviews` / `CancelDeliveries` were last told (again until confirmed).
    cancel_told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reviews_withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deliveries_cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ProductionItem(Base):
    """One work item (see the module docstring)."""

    __tablename__ = "production_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    period: Mapped[int] = mapped_column(Integer)
    #: The planned item's key ("<type>:<channel>:<piece>") and the planned item as JSON.
    key: Mapped[str] = mapped_column(String(200))
    item: Mapped[Any] = mapped_column(JSON)
    type: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(60))
    topic: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    start_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str] = mapped_column(String(200))
    client_ref: Mapped[str] = mapped_column(String(36))
    client: Mapped[Any] = mapped_column(JSON)
    package: Mapped[Any] = mapped_column(JSON)
    brief: Mapped[Any] = mapped_column(JSON)
    #: The current version (0: none written yet).
    version: Mapped[int] = mapped_column(Integer)
    #: Retakes after a failed QC in the current round; change rounds the client asked for.
    retakes: Mapped[int] = mapped_column(Integer)
    rounds: Mapped[int] = mapped_column(Integer)
    #: Failed attempts of the generator at the next version, the last one's time and error.
    gen_attempts: Mapped[int] = mapped_column(Integer)
    gen_failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    gen_error: Mapped[str | None] = mapped_column(Text)
    #: Set while the item waits for a person's draft (`work upload`): no generator runs.
    needs_person_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When the current command (`CheckDraft` of the version) was last told; None: to tell.
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    batch_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    late_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("project_id", "period", "key"),
        Index(None, "state"),
        # A client's period (the tokens it used before another draft is written).
        Index(None, "client_ref", "period"),
        CheckConstraint(_one_of("state", ITEM_STATES), name="state"),
    )


class ProductionVersion(Base):
    """One version of an item: written whole, then annotated with its verdicts."""

    __tablename__ = "production_versions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))
    tokens: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: Who wrote it when a person did.
    author: Mapped[str | None] = mapped_column(String(200))
    qc_passed: Mapped[bool | None] = mapped_column(Boolean)
    qc_findings: Mapped[Any] = mapped_column(JSON, nullable=True)
    qc_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verdict: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(20))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    batch_key: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("item_id", "version"),
        CheckConstraint(_one_of("source", SOURCES), name="source"),
    )


class ProductionBatch(Base):
    """One review batch: the items that reached review in one tick for one project."""

    __tablename__ = "production_batches"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    n: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When `ReviewRequested` was heard, and the deadline it gave.
    requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "project_id"),)


class ProductionBatchItem(Base):
    __tablename__ = "production_batch_items"

    batch_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class ProductionDelivery(Base):
    """One delivery of one version of an item by one method (its key: "<item>:v<version>:<method>")."""

    __tablename__ = "production_deliveries"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(36))
    project_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    receipt: Mapped[str | None] = mapped_column(Text)
    failing_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When the courier said it keeps the delivery (`DeliveryKept`): told again only rarely.
    kept_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(None, "item_id"),
        CheckConstraint(_one_of("method", METHODS), name="method"),
    )


class ProductionAlert(Base):
    """An alert to a person, told to "cam.alerts" under its key until marked told."""

    __tablename__ = "production_alerts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    item_id: Mapped[str | None] = mapped_column(String(36))
    #: e.g. "late" (then `ItemLate` is published with it), "upload", "round", "signoff", "generator".
    kind: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "told_at"),)


class ProductionItemEvent(Base):
    """One line of an item's history."""

    __tablename__ = "production_item_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "item_id"),)


production_runs = cast(Table, ProductionRun.__table__)
production_items = cast(Table, ProductionItem.__table__)
production_versions = cast(Table, ProductionVersion.__table__)
production_batches = cast(Table, ProductionBatch.__table__)
production_batch_items = cast(Table, ProductionBatchItem.__table__)
production_deliveries = cast(Table, ProductionDelivery.__table__)
production_alerts = cast(Table, ProductionAlert.__table__)
production_item_events = cast(Table, ProductionItemEvent.__table__)
