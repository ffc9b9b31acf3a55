"""The tables of strategy (prefix ``strategy_``). Declarations only: no business logic.

- ``strategy_requests``: one row per project, what the saga asked (`DraftStrategy`: its
  idempotency key, the client, the package, the brief, the start) and whether the strategy
  was cancelled (`CancelStrategy`, which may come first: then only the cancellation is set);
- ``strategy_plans``: one row per version of a project's plan, written whole when the version
  is made (the plan as JSON, its HTML and PDF) and never changed afterwards except its status
  fields: the client's answer (status, answered_at, comments), when the module announced it,
  when it was found overdue, when a person was needed, when it was withdrawn;
- ``strategy_emails`` and ``strategy_links``: the client emails (`storage.client_mail`) and the
  capability links (`storage.links`), as every module after the deal has them.

The allowed values of `status` are repeated in a CHECK constraint on purpose: a new value is
a schema change and gets a migration (copy the literal list there, never import it).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.client_mail import mail_table
from aicmo_actors.storage.links import link_table
from aicmo_actors.storage.metadata import Base, Id, UtcDateTime

#: A version's answer: none yet, approved, or changes asked for (then a next version follows).
AWAITING, APPROVED, CHANGES_REQUESTED = "awaiting", "approved", "changes_requested"
PLAN_STATUSES = (AWAITING, APPROVED, CHANGES_REQUESTED)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class StrategyRequest(Base):
    """What the saga asked for one project, and whether it was cancelled."""

    __tablename__ = "strategy_requests"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: The `DraftStrategy`'s idempotency key (None: only a cancellation arrived).
    draft_key: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[Any] = mapped_column(JSON, nullable=True)
    package: Mapped[Any] = mapped_column(JSON, nullable=True)
    brief: Mapped[Any] = mapped_column(JSON, nullable=True)
    start_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_key: Mapped[str | None] = mapped_column(String(200))
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class StrategyPlan(Base):
    """One version of a project's plan (see the module docstring)."""

    __tablename__ = "strategy_plans"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    #: `plan.plan_to_json` of the version.
    plan: Mapped[Any] = mapped_column(JSON)
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: When the client's answer is awaited until (the client's business days, 9:00 local).
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # -- the status fields, the only ones ever updated -------------------------------------------------------------
    status: Mapped[str] = mapped_column(String(20))
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    comments: Mapped[str | None] = mapped_column(Text)
    #: When the answer was announced (`PlanApproved`, or `PlanChangesRequested` and the next step).
    announced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When `PlanOverdue` was published for the deadline.
    overdue_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When a person was needed (changes asked for beyond the package's review rounds).
    needs_person_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("project_id", "version"),
        Index(None, "status", "announced_at"),
        CheckConstraint(_one_of("status", PLAN_STATUSES), name="status"),
    )


strategy_requests = cast(Table, StrategyRequest.__table__)
strategy_plans = cast(Table, StrategyPlan.__table__)
strategy_emails = mail_table("strategy")
strategy_links = link_table("strategy")
