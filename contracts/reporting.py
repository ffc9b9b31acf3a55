"""Reporting: scheduled results reports for clients, and the KPI values behind them."""

from __future__ import annotations

import uuid

from contracts.base import Event, Message

CONTRACT_VERSION = 2


class ReportingMessage(Message):
    contract_version: int = CONTRACT_VERSION


class ReportingEvent(Event):
    contract_version: int = CONTRACT_VERSION


class ReportSent(ReportingEvent):
    """A client's report for one period went out (once per client and period)."""

    client_ref: uuid.UUID
    project_id: uuid.UUID | None = None
    #: The period's label: "2027-01" (month), "2027-W03" (week), "2027-01-15" (day).
    period: str
    formats: tuple[str, ...] = ()


class KpiMeasured(ReportingEvent):
    """A KPI's value for a period, against the package's target (retention reads attainment)."""

    client_ref: uuid.UUID
    kpi: str
    period: str
    value: float
    target: float
    #: The value meets the target in the KPI's direction.
    attained: bool
