"""Retention: each client's health (score, band and the reasons behind it) and renewals."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from contracts.base import Event, Message

CONTRACT_VERSION = 2

Band = Literal["green", "amber", "red"]


class RetentionMessage(Message):
    contract_version: int = CONTRACT_VERSION


class RetentionEvent(Event):
    contract_version: int = CONTRACT_VERSION


class ClientHealthChanged(RetentionEvent):
    """A client's health band changed (published when the band moves, not on every score)."""

    client_ref: uuid.UUID
    score: float
    band: Band
    previous: Band | None = None
    #: The largest contributions, worded for a person ("invoice 2027-0004 overdue 21 days").
    reasons: tuple[str, ...] = ()


class RenewalDue(RetentionEvent):
    """A client's contract ends soon: the owner is reminded (once per contract and reminder)."""

    client_ref: uuid.UUID
    project_id: uuid.UUID | None = None
    contract_end: date
    days_left: int
