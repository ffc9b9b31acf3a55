"""The tables of delivery (prefix ``delivery_``). Declarations only: no business logic.

- ``delivery_deliveries``: one row per delivery (an item's version by one method), recorded
  under the command's idempotency key the first time `DeliverItem` arrives, with everything
  needed to make it (the client's copy, the piece's title, type, channel, text and HTML) and
  where it stands: its state, attempts, the next attempt's time, the receiver's answer
  (receipt), the last error, and the alert (decided, then told);
- ``delivery_cancels``: the projects whose deliveries were cancelled (`CancelDeliveries`): a
  delivery asked for afterwards is recorded cancelled, never made;
- ``delivery_emails``: the emails of the "email" method (`storage.client_mail`), at most once.

The allowed values of `state` and `method` are repeated in CHECK constraints on purpose: a new
value is a schema change and gets a migration (copy the literal list there, never import it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, CheckConstraint, Index, Integer, String, Table, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.client_mail import mail_table
from aicmo_actors.storage.metadata import Base, Id, UtcDateTime

#: A delivery's states. queued: recorded, not tried yet; sending: an attempt in flight;
#: retrying: the last attempt failed for now (next_attempt_at says when again); delivered;
#: unconfirmed: an email that may or may not have gone out (a crash in its send: never resent);
#: failed: for good (a permanent answer, or too many attempts); cancelled.
QUEUED, SENDING, RETRYING, DELIVERED, UNCONFIRMED, FAILED, CANCELLED = (
    "queued",
    "sending",
    "retrying",
    "delivered",
    "unconfirmed",
    "failed",
    "cancelled",
)
STATES = (QUEUED, SENDING, RETRYING, DELIVERED, UNCONFIRMED, FAILED, CANCELLED)
#: States a delivery leaves only by a person's `delivery retry` (failed, unconfirmed) or never.
FINAL = (DELIVERED, UNCONFIRMED, FAILED, CANCELLED)
METHODS = ("email", "webhook", "folder")
#: The rows of the partial index of alerts not told (repeated in migration 0025).
_ALERT_PENDING = "alert_due_at IS NOT NULL AND alerted_at IS NULL"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Delivery(Base):
    """One delivery of one version of one item by one method (see the module docstring)."""

    __tablename__ = "delivery_deliveries"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: The `DeliverItem`'s idempotency key ("<item>:v<version>:<method>").
    key: Mapped[str] = mapped_column(String(200), unique=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    item_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))
    #: The client as the command carried it (`ClientInfo` as JSON).
    client: Mapped[Any] = mapped_column(JSON)
    title: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    #: Attempts that ended (failed or not); for an email, its outbox row's.
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: What the other side said when it took it (an SMTP acceptance, a webhook's answer, a path).
    receipt: Mapped[str | None] = mapped_column(Text)
    #: The last failure (a webhook's answer, a network error, an SMTP reply, an OS error).
    error: Mapped[str | None] = mapped_column(Text)
    #: The failure cannot get better by retrying (a 4xx, no URL, a refused address).
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    #: How many times a person asked for it again (`delivery retry`): part of the alert's key.
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    #: The alert: decided (with the failure, in its transaction), then told to cam.alerts.
    alert_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The client's ref (from `client`): what a hold names (NULL on rows older than holds).
    client_ref: Mapped[str | None] = mapped_column(String(36), index=True)

    __table_args__ = (
        Index(None, "state", "next_attempt_at"),
        # The alerts decided and not told: a few rows, read at every tick that follows a write
        # (a scan of every delivery ever made, with its texts, without it).
        Index(
            "ix_delivery_deliveries_alert_pending",
            "id",
            sqlite_where=sql_text(_ALERT_PENDING),
            postgresql_where=sql_text(_ALERT_PENDING),
        ),
        CheckConstraint(_one_of("state", STATES), name="state"),
        CheckConstraint(_one_of("method", METHODS), name="method"),
    )


class Cancel(Base):
    """A project whose deliveries were cancelled (`CancelDeliveries`, the first one)."""

    __tablename__ = "delivery_cancels"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    cancelled_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Hold(Base):
    """A hold on a client's deliveries (billing's hold policy: an invoice overdue past the
    threshold): while `released_at` is NULL nothing is delivered to the client; deliveries are
    recorded and wait. One row per hold, kept after its release (the history says when a
    client was on hold: no delivery may fall inside)."""

    __tablename__ = "delivery_holds"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    client_ref: Mapped[str] = mapped_column(String(36), index=True)
    #: The `HoldDeliveries` command's key (the first one of this hold).
    idempotency_key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    held_at: Mapped[datetime] = mapped_column(UtcDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: How many of the client's deliveries were delivered when the hold was written: a clock
    #: (the simulation's fake one) may give a delivery and the hold one instant, and this says
    #: which came first (NULL on holds older than it).
    delivered_before: Mapped[int | None] = mapped_column(Integer)


delivery_deliveries = cast(Table, Delivery.__table__)
delivery_holds = cast(Table, Hold.__table__)
delivery_cancels = cast(Table, Cancel.__table__)
delivery_emails = mail_table("delivery")
