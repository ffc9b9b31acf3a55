"""billing: invoices from the package (retainers, one-off, milestones, extra review rounds),
numbered without gaps per year, as PDF by email; payments, dunning with late fees, credit notes,
and the hold on a client who owes past a threshold. See docs/billing.md.

What the module exports (docs/modules.md): its actor, its store and `billing_supervisor`. The
names load on first use (PEP 562): importing a pure file (`rules`, `tax`, `money`) does not load
the actor and the database layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.billing.ledger import LEDGER, Ledger
    from aicmo_actors.billing.repos import BillingStore
    from aicmo_actors.billing.rules import ReminderRule
    from aicmo_actors.billing.wiring import billing_supervisor

_EXPORTS = {
    "LEDGER": "aicmo_actors.billing.ledger",
    "Ledger": "aicmo_actors.billing.ledger",
    "BillingStore": "aicmo_actors.billing.repos",
    "ReminderRule": "aicmo_actors.billing.rules",
    "billing_supervisor": "aicmo_actors.billing.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["LEDGER", "BillingStore", "Ledger", "ReminderRule", "billing_supervisor"]
