"""`production` as the module registry sees it: its declaration, made here once (pure data)."""

from __future__ import annotations

from contracts.orchestration import ModuleSpec
from contracts.production import CONTRACT_VERSION

#: The actor's name (`production.studio.STUDIO`), spelled here so this file stays pure data.
ACTORS = ("production.studio",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="production",
        title="Production: every planned piece drafted, checked, reviewed by the client and delivered",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=(
            "ProducePeriod",
            "CancelProduction",
            "Tick",
            "DraftChecked",
            "ReviewRequested",
            "ItemReviewed",
            "ReviewsWithdrawn",
            "ItemDelivered",
            "DeliveryFailing",
            "DeliveryKept",
            "DeliveriesCancelled",
        ),
        emits=(
            "ProductionStarted",
            "PeriodDelivered",
            "ItemLate",
            "ProductionCancelled",
            "ProductionFailed",
            "DraftWritten",
        ),
        can_disable=True,
        switchable=ACTORS,
        sending=(),
        stops=(
            "no draft is written and no item moves on; commands and verdicts wait in the mailbox and are "
            "processed when it is switched on (commands in flight are told again then)"
        ),
    )
