"""The tables of retention (prefix ``retention_``). Declarations only.

- ``retention_clients``: each client (from cam's `ClientSigned`), with its current score, band
  and reasons, how many times it entered red (part of the alert's key);
- ``retention_contracts``: each signed deal: its start, term and end (renewals count down to
  it), cancelled when its project was compensated;
- ``retention_projects``: orchestration's projects and the deal each is for (the signals of
  production, review and delivery name a project, not a client);
- ``retention_signals``: every signal once (unique source key), with its signed weight, time,
  a reason worded for a person, the client (NULL while its project is not tied to one yet);
- ``retention_invoices``: each invoice issued, until paid in full or credited (unpaid past its
  due date: a signal);
- ``retention_reviews``: when each review batch was asked (slow answers are timed from it);
- ``retention_renewals``: each renewal reminder of a contract, sent or skipped, once;
- ``retention_notices``: what was decided and is to be said (a band change, a renewal due,
  with its alert): written with the decision, published and told after, marked told.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import JSON, CheckConstraint, Date, Float, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime

BANDS = ("green", "amber", "red")
NOTICE_KINDS = ("band", "renewal")
RENEWAL_STATES = ("sent", "skipped")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Client(Base):
    """A client as retention knows it, and its current health."""

    __tablename__ = "retention_clients"

    client_ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    company: Mapped[str] = mapped_column(Text)
    contact_email: Mapped[str] = mapped_column(String(320), index=True)
    billing_email: Mapped[str | None] = mapped_column(String(320))
    score: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(8))
    reasons: Mapped[Any] = mapped_column(JSON)
    scored_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: How many times the band changed (part of a band notice's key).
    band_changes: Mapped[int] = mapped_column(Integer, default=0)
    #: How many times it entered red (part of the red alert's key).
    red_entries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint(f"band IS NULL OR {_one_of('band', BANDS)}", name="band"),)


class Contract(Base):
    """One signed deal of a client."""

    __tablename__ = "retention_contracts"

    deal_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    client_ref: Mapped[str] = mapped_column(String(36), index=True)
    lead_id: Mapped[int] = mapped_column(Id, index=True)
    campaign: Mapped[str] = mapped_column(String(200))
    package: Mapped[str] = mapped_column(String(200))
    term_months: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date, index=True)
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: Its project was cancelled (compensated): no renewal reminders.
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: How many of the deal's renewals are applied (`ContractRenewed` number): each one added its
    #: months to `term_months` and moved `ends_on`.
    renewals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Project(Base):
    """A project of orchestration's saga and its deal (NULL until `ProjectOpened` says)."""

    __tablename__ = "retention_projects"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[int | None] = mapped_column(Id, index=True)
    outcome: Mapped[str | None] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Signal(Base):
    """One signal about a client, stored once under its source key."""

    __tablename__ = "retention_signals"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    client_ref: Mapped[str | None] = mapped_column(String(36))
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    #: Points it adds to the score when new (negative: it lowers it); it decays with age.
    weight: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[Any] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "client_ref", "at"),)


class Invoice(Base):
    """An invoice billing issued, until it is paid in full or credited (an overdue one is a signal)."""

    __tablename__ = "retention_invoices"

    invoice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_ref: Mapped[str] = mapped_column(String(36))
    number: Mapped[str] = mapped_column(String(60))
    due_on: Mapped[date] = mapped_column(Date)
    #: Paid in full or credited: never overdue.
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: When its overdue signal was recorded.
    overdue_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "settled_at", "overdue_at", "due_on"),)


class Review(Base):
    """When a review batch was first asked."""

    __tablename__ = "retention_reviews"

    batch_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Renewal(Base):
    """One renewal reminder of one contract's end: sent, or skipped (superseded by a nearer one).
    A renewed contract has a new end, and its reminders again."""

    __tablename__ = "retention_renewals"

    deal_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    contract_end: Mapped[date] = mapped_column(Date, primary_key=True)
    days: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    client_ref: Mapped[str] = mapped_column(String(36))
    due_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(8))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint(_one_of("state", RENEWAL_STATES), name="state"),)


class Notice(Base):
    """A decision to announce: the event to publish and the alert to tell, until told."""

    __tablename__ = "retention_notices"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    client_ref: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: The event's fields (ClientHealthChanged or RenewalDue) as JSON.
    event: Mapped[Any] = mapped_column(JSON)
    #: The AlertRequested's fields, when the owner is alerted.
    alert: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index(None, "told_at"),
        CheckConstraint(_one_of("kind", NOTICE_KINDS), name="kind"),
    )


retention_clients = cast(Table, Client.__table__)
retention_contracts = cast(Table, Contract.__table__)
retention_projects = cast(Table, Project.__table__)
retention_signals = cast(Table, Signal.__table__)
retention_invoices = cast(Table, Invoice.__table__)
retention_reviews = cast(Table, Review.__table__)
retention_renewals = cast(Table, Renewal.__table__)
retention_notices = cast(Table, Notice.__table__)
