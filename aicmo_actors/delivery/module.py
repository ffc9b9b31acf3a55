"""`delivery` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actor.
"""

from __future__ import annotations

from contracts.delivery import CONTRACT_VERSION
from contracts.orchestration import ModuleSpec

#: The actor's name (`delivery.courier.COURIER`), spelled here so this file stays pure data.
ACTORS = ("delivery.courier",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="delivery",
        title="Delivery: approved work handed over once per item and method (email, signed webhook, folder)",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=("DeliverItem", "CancelDeliveries", "HoldDeliveries", "ReleaseDeliveries", "Tick"),
        emits=(
            "ItemDelivered",
            "DeliveryFailing",
            "DeliveryKept",
            "DeliveriesCancelled",
            "DeliveriesHeld",
            "DeliveriesReleased",
        ),
        can_disable=True,
        switchable=ACTORS,
        sending=ACTORS,
        stops=(
            "nothing is delivered, retried or cancelled and no alert about a failing delivery is raised; "
            "commands wait in the mailbox and deliveries in the database, and are made when it is switched on"
        ),
    )
