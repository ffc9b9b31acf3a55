"""Quality control: a draft checked against the brief and the package before a client sees it.

Production tells `qc.checker` to check one version of one item; the checker runs the pure
checks (`aicmo_actors.qc.checks`), records the verdict under the command's idempotency key
(told again, it answers the recorded verdict: a check never runs twice for one version) and
answers `DraftChecked`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec
from contracts.strategy import PlannedItem

CONTRACT_VERSION = 2


class Finding(BaseModel):
    """One problem found: which check, how bad, what, and where (a short excerpt)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check: str  # e.g. "spelling", "readability", "length", "forbidden_word", "placeholder"
    severity: Literal["error", "warning"]
    message: str
    excerpt: str = ""


class QcMessage(Message):
    contract_version: int = CONTRACT_VERSION


class QcEvent(Event):
    contract_version: int = CONTRACT_VERSION


class CheckDraft(QcMessage):
    """Production -> qc: check version `version` of an item."""

    project_id: uuid.UUID
    item_id: uuid.UUID
    version: int
    idempotency_key: str
    client: ClientInfo
    package: PackageSpec
    brief: dict[str, str]
    item: PlannedItem
    title: str
    #: The draft as plain text (Markdown allowed).
    text: str
    #: The language the draft is written in (ISO 639-1; spelling and readability are checked
    #: in it); None: the client's. The offline templates write English whatever the client's.
    language: str | None = None


class DraftChecked(QcEvent):
    """The verdict on one version: `passed` when no finding is an error."""

    project_id: uuid.UUID
    item_id: uuid.UUID
    version: int
    passed: bool
    findings: tuple[Finding, ...] = ()
    checked_at: datetime
