"""`reporting` as the module registry sees it: its declaration, made here once (pure data)."""

from __future__ import annotations

from contracts.orchestration import ModuleSpec
from contracts.reporting import CONTRACT_VERSION

#: The actor's name (`reporting.reporter.REPORTER`), spelled here so this file stays pure data.
ACTORS = ("reporting.reporter",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="reporting",
        title="Reporting: each client's results report (deliverables, reviews, KPIs, funnel) once per period",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=(
            "Tick",
            "ClientSigned",
            "ProjectOpened",
            "PlanApproved",
            "PeriodPlanned",
            "ItemLate",
            "ItemDelivered",
            "ItemReviewed",
            "EmailSent",
            "ReplyClassified",
        ),
        emits=("ReportSent", "KpiMeasured"),
        can_disable=True,
        switchable=ACTORS,
        sending=ACTORS,
        stops=(
            "no report is made or sent and no KPI value is announced; events wait in the mailbox, and the reports "
            "of the periods that ended meanwhile are made when it is switched on"
        ),
    )
