"""`billing` as the module registry sees it: its declaration, made here once (pure data)."""

from __future__ import annotations

from contracts.billing import CONTRACT_VERSION
from contracts.orchestration import ModuleSpec

#: The actor's name (`billing.ledger.LEDGER`), spelled here so this file stays pure data.
ACTORS = ("billing.ledger",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="billing",
        title="Billing: invoices from the package, payments, dunning with late fees, the hold on clients who owe",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=(
            "ClientSigned",
            "ContractRenewed",
            "ProjectOpened",
            "ProjectStepChanged",
            "ProjectFinished",
            "ItemReviewed",
            "Tick",
        ),
        emits=(
            "InvoiceIssued",
            "InvoiceSent",
            "PaymentReceived",
            "ReminderSent",
            "InvoiceCredited",
            "ClientOnHold",
            "ClientReleased",
        ),
        can_disable=True,
        switchable=ACTORS,
        sending=ACTORS,
        stops=(
            "no invoice is issued or emailed, no reminder sent, no hold decided; events wait in the mailbox and "
            "payments recorded meanwhile are announced when it is switched on"
        ),
    )
