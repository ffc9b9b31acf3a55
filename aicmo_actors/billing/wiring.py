"""`billing_supervisor`: the billing module's supervision tree.

The one way to start billing: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from aicmo_actors.billing.emails import Letterhead
from aicmo_actors.billing.ledger import LEDGER, Ledger
from aicmo_actors.billing.repos import BillingStore
from aicmo_actors.billing.rules import DEFAULT_REMINDERS, REPEAT_EVERY_DAYS, ReminderRule, check_schedule
from aicmo_actors.billing.tax import rates
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def billing_supervisor(
    store: BillingStore,
    *,
    transport: Callable[[], MailTransport],
    mail_from: str,
    agency_name: str,
    agency_country: str,
    agency_tax_id: str | None = None,
    agency_address: str = "",
    tax_rates: Mapping[str, Decimal] | None = None,
    reminders: Sequence[ReminderRule] = DEFAULT_REMINDERS,
    repeat_every_days: int = REPEAT_EVERY_DAYS,
    hold_after_days: int = 30,
    agency_timezone: str = "UTC",
) -> SupervisorSpec:
    """Billing as a supervision tree: its one actor, `billing.ledger`.

    `transport` makes the connection billing's emails go through (made for a batch, closed after
    it); `mail_from` is their From, `agency_name` the seller's name on invoices. `agency_country`
    (ISO 3166-1 alpha-2) and `agency_tax_id` (the agency's VAT number, printed on every invoice)
    decide the VAT (`tax.tax_for`), `agency_address` is printed as the seller's address.
    `tax_rates` replaces or adds standard rates (country -> percent). `reminders`: 1 to 3 levels,
    each `ReminderRule(after_days, fee_percent)` after the due date; then a reminder every
    `repeat_every_days`. A client with an invoice `hold_after_days` days overdue is put on hold.
    `agency_timezone` is the calendar of invoice dates, due dates and dunning.
    """
    country = agency_country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValueError(f"agency_country {agency_country!r} is not an ISO 3166-1 alpha-2 code (e.g. DE)")
    check_schedule(reminders, repeat_every_days)
    if hold_after_days < 1:
        raise ValueError("hold_after_days must be at least 1")
    overrides = {k.upper(): Decimal(v) for k, v in (tax_rates or {}).items()}
    for code, rate in overrides.items():
        if not Decimal(0) <= rate <= 100:
            raise ValueError(f"the VAT rate of {code} ({rate}) is not a percentage from 0 to 100")
    rates(overrides)
    head = Letterhead(
        mail_from=mail_from,
        agency_name=agency_name,
        agency_country=country,
        agency_tax_id=agency_tax_id or None,
        agency_address=agency_address,
        tax_rates=overrides,
        reminders=tuple(reminders),
        repeat_every_days=repeat_every_days,
        hold_after_days=hold_after_days,
        agency_timezone=agency_timezone,
    )

    def make() -> Ledger:
        return Ledger(store, transport=transport, head=head)

    children: list[ChildSpec | SupervisorSpec] = [ChildSpec(LEDGER, make)]
    return SupervisorSpec("billing", children=children, strategy="one_for_one", max_restarts=10, period=60)
