"""The tables of qc (prefix ``qc_``). Declarations only: no business logic.

- ``qc_checks``: one row per check made (one `CheckDraft` idempotency key), written once with
  its verdict and never changed: told again with the same key, the checker answers this row.
  The draft's title and text are kept so that later drafts of the same client are compared
  with it (near-duplicates: the client's passed checks of other items).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime


class QcCheck(Base):
    """One version of one item, checked (see the module docstring)."""

    __tablename__ = "qc_checks"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: The `CheckDraft`'s idempotency key: a key is checked once.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    project_id: Mapped[str] = mapped_column(String(36))
    item_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    client_ref: Mapped[str] = mapped_column(String(36))
    passed: Mapped[bool] = mapped_column(Boolean)
    #: The findings, as `contracts.qc.Finding` dumps (errors first).
    findings: Mapped[Any] = mapped_column(JSON)
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "client_ref", "passed"), Index(None, "project_id", "item_id"))


qc_checks = cast(Table, QcCheck.__table__)
