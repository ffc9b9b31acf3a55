"""Observability: usage records (one countable act of a module, as modules hand them to the
meter) and the meter's own event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.base import Event

CONTRACT_VERSION = 1


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One countable act (not a message: a plain value, cheap to make on a hot path).

    `key` names the act itself, unique across the installation (``cam.email_sent:42``), so
    that recording it twice counts it once.
    """

    key: str
    module: str
    kind: str
    subject: str | None
    quantity: int
    at: datetime


class UsageFlushed(Event):
    """The meter wrote a batch of usage records (`new` of them were not there yet)."""

    contract_version: int = CONTRACT_VERSION
    records: int
    new: int
