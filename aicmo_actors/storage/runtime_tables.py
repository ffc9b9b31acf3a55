"""Tables of the actor runtime (prefix ``runtime_``): dead letters, the worker lease, secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime


class RuntimeDeadLetter(Base):
    """A message that could not be delivered or processed (`contracts.runtime.DeadLetter`)."""

    __tablename__ = "runtime_dead_letters"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: The DeadLetter event's own message id: storing the same letter twice keeps one row.
    letter_id: Mapped[str] = mapped_column(String(36), unique=True)
    correlation_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    message_type: Mapped[str] = mapped_column(String(200))
    #: The message as JSON when it was JSON (a contract model), else its text as a JSON string.
    payload: Mapped[Any] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "at"),)


class RuntimeLease(Base):
    """Who may write effects: one row per lease name, with a token that only grows."""

    __tablename__ = "runtime_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The process holding (or last holding) the lease; '' once released.
    holder: Mapped[str] = mapped_column(String(200))
    #: Fencing token: incremented whenever another holder takes the lease over.
    token: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RuntimeSecret(Base):
    """Secrets generated on first run (e.g. the unsubscribe HMAC key), kept across restarts."""

    __tablename__ = "runtime_secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


# The Core tables, typed as such (``__table__`` is typed as a plain FromClause).
runtime_dead_letters = cast(Table, RuntimeDeadLetter.__table__)
runtime_lease = cast(Table, RuntimeLease.__table__)
runtime_secrets = cast(Table, RuntimeSecret.__table__)
