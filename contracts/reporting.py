"""Reporting: periodic results reports for clients.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class ReportingMessage(Message):
    contract_version: int = CONTRACT_VERSION


class ReportingEvent(Event):
    contract_version: int = CONTRACT_VERSION


class BuildReport(ReportingMessage):
    project_id: uuid.UUID
    period_start: datetime
    period_end: datetime


class ReportReady(ReportingEvent):
    project_id: uuid.UUID
    report_id: uuid.UUID
