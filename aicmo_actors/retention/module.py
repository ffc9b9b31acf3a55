"""`retention` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actor.
"""

from __future__ import annotations

from contracts.orchestration import ModuleSpec
from contracts.retention import CONTRACT_VERSION

#: The actor's name (`retention.monitor.MONITOR`), spelled here so this file stays pure data.
ACTORS = ("retention.monitor",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="retention",
        title="Retention: each client's health (score, band, reasons) and the renewal reminders",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=(
            "Tick",
            "ClientSigned",
            "ContractRenewed",
            "ProjectOpened",
            "ProjectFinished",
            "InvoiceIssued",
            "PaymentReceived",
            "ReminderSent",
            "ClientOnHold",
            "ClientReleased",
            "InvoiceCredited",
            "ReviewRequested",
            "ItemReviewed",
            "ItemLate",
            "DraftChecked",
            "ItemDelivered",
            "DeliveryFailing",
            "KpiMeasured",
            "ReplyClassified",
        ),
        emits=("ClientHealthChanged", "RenewalDue"),
        can_disable=True,
        switchable=ACTORS,
        stops=(
            "no signal is recorded, no score moves, no band change or renewal is announced or alerted; "
            "signals published meanwhile are not heard (the events are not stored for it), renewal "
            "reminders due meanwhile are made when it is switched on"
        ),
    )
