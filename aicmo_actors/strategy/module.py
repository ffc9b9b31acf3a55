"""`strategy` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actor.
"""

from __future__ import annotations

from contracts.orchestration import ModuleSpec
from contracts.strategy import CONTRACT_VERSION

#: The actor's name (`strategy.planner.PLANNER`), spelled here so this file stays pure data.
ACTORS = ("strategy.planner",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="strategy",
        title="Strategy: the first period's plan (calendar, topics, KPIs), sent for approval; later periods' calendars",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=("DraftStrategy", "PlanPeriod", "CancelStrategy", "Tick"),
        emits=(
            "PlanSent",
            "PlanChangesRequested",
            "PlanApproved",
            "PlanOverdue",
            "PeriodPlanned",
            "StrategyCancelled",
            "StrategyFailed",
        ),
        can_disable=True,
        switchable=ACTORS,
        sending=ACTORS,
        stops=(
            "no plan is drafted, sent, revised or withdrawn and no answer is announced; commands wait in the "
            "mailbox and answers in the database, and are processed when it is switched on; clients' plan "
            "pages keep working (served by the service's HTTP server) and keep recording their answers"
        ),
    )
