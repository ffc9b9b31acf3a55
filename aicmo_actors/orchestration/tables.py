"""Tables of `orchestration` (prefix ``orchestration_``): the modules' switches and the
project sagas (one project per signed deal, its steps, and what happened to it)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Date, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime


class OrchestrationSwitch(Base):
    """Whether a module (or the whole worker's sending, name ``worker``) is switched on.

    No row means on: a module is switched off only by someone, and the choice outlives restarts.
    """

    __tablename__ = "orchestration_switches"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrchestrationProject(Base):
    """A client project: the saga of one signed deal (`orchestration.saga`)."""

    __tablename__ = "orchestration_projects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: The deal it was opened for (CAM's id): one project per deal.
    deal_id: Mapped[int] = mapped_column(Id, unique=True)
    client_ref: Mapped[str] = mapped_column(String(36))
    company: Mapped[str] = mapped_column(String(300))
    client: Mapped[Any] = mapped_column(JSON)
    package_name: Mapped[str] = mapped_column(String(100))
    package: Mapped[Any] = mapped_column(JSON)
    start_date: Mapped[date] = mapped_column(Date)
    #: running, cancelling, delivering, compensated, failed (`orchestration.saga`).
    state: Mapped[str] = mapped_column(String(20), index=True)
    #: The step it is on (or compensating).
    step: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_by: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The day the saga next looks at beginning a later period (None: no period left to begin,
    #: or the plan not approved yet); `saga_rules.plan_on` says which day that is.
    next_period_on: Mapped[date | None] = mapped_column(Date)
    #: How many of the deal's renewals are applied (`ContractRenewed` number): each one adds its
    #: months to `package`'s ``term_months``, so `saga_rules.periods` counts the renewed periods.
    renewals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class OrchestrationStep(Base):
    """One step of a project's saga, durable: what was asked, what it waits for, until when."""

    __tablename__ = "orchestration_steps"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36))
    step: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer)
    #: pending, started, waiting, done, compensating, compensated (`orchestration.saga`).
    state: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When the step's command (or its compensation) was last told to the module.
    command_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    commands_sent: Mapped[int] = mapped_column(Integer, default=0)
    waiting_for: Mapped[str | None] = mapped_column(Text)
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    compensated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)

    __table_args__ = (UniqueConstraint("project_id", "step"), Index(None, "state", "command_sent_at"))


class OrchestrationProjectEvent(Base):
    """What happened to a project, in order (`python run.py project ID` shows it)."""

    __tablename__ = "orchestration_project_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    step: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")


orchestration_switches = cast(Table, OrchestrationSwitch.__table__)
orchestration_projects = cast(Table, OrchestrationProject.__table__)
orchestration_steps = cast(Table, OrchestrationStep.__table__)
orchestration_project_events = cast(Table, OrchestrationProjectEvent.__table__)
