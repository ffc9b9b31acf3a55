"""Billing's decisions, pure: numbers, periods, what an account owes when, the invoice's
amounts, dunning's schedule, balances and the hold. No database, no clock (today is handed in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from aicmo_actors.billing.money import ZERO, rounded
from aicmo_actors.billing.tax import Tax
from aicmo_actors.gateways.calendar import add_months

#: The two numbered series: invoices ("2027-0001") and credit notes ("CN-2027-0001").
INVOICE, CREDIT_NOTE = "INV", "CN"
#: An invoice's states: open (something owed), paid (nothing owed; over-paid too), credited.
OPEN, PAID, CREDITED = "open", "paid", "credited"


# -- numbers ----------------------------------------------------------------------------------------------------


def number(series: str, year: int, seq: int) -> str:
    """`2027-0001` (invoices), `CN-2027-0001` (credit notes): sequential per year, 4 digits at least."""
    if seq < 1:
        raise ValueError("a sequence number starts at 1")
    core = f"{year}-{seq:04d}"
    return core if series == INVOICE else f"{series}-{core}"


# -- time -------------------------------------------------------------------------------------------------------


def local_date(now: datetime, timezone: str) -> date:
    """The date at `now` in `timezone` (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date()


def start_of_day(day: date, timezone: str) -> datetime:
    """Midnight of `day` in `timezone`, as an aware datetime."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime(day.year, day.month, day.day, tzinfo=zone)


@dataclass(frozen=True)
class Period:
    """One retainer's period: its index from 0, its first day and its last day."""

    index: int
    first: date
    last: date


def periods(start: date, period_months: int, term_months: int) -> list[Period]:
    """The retainer periods of a contract: from `start`, every `period_months`, until `start` +
    `term_months` (the last one cut at the term's end). Each start is counted from `start` (a
    contract started on the 31st renews on the last day of shorter months, then the 31st again)."""
    end = add_months(start, term_months)
    out: list[Period] = []
    index = 0
    while (first := add_months(start, index * period_months)) < end:
        following = min(add_months(start, (index + 1) * period_months), end)
        out.append(Period(index, first, following - timedelta(days=1)))
        index += 1
    return out


def due_periods(
    start: date, period_months: int, term_months: int, *, today: date, stopped_on: date | None
) -> list[Period]:
    """The periods whose retainer is due by `today`: begun, and begun before the project stopped."""
    return [
        p
        for p in periods(start, period_months, term_months)
        if p.first <= today and (stopped_on is None or p.first < stopped_on)
    ]


def next_period_start(
    start: date, period_months: int, term_months: int, *, today: date, stopped_on: date | None
) -> date | None:
    """The first day of the next period not begun by `today` (None: no more retainers)."""
    for p in periods(start, period_months, term_months):
        if p.first > today:
            return p.first if stopped_on is None or p.first < stopped_on else None
    return None


# -- what an invoice says ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of an invoice: what, how many, the unit price and the line's net amount."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    def as_json(self) -> dict[str, str]:
        return {
            "description": self.description,
            "quantity": str(self.quantity),
            "unit_price": str(self.unit_price),
            "amount": str(self.amount),
        }

    @classmethod
    def of(cls, value: dict[str, str]) -> Line:
        return cls(
            value["description"], Decimal(value["quantity"]), Decimal(value["unit_price"]), Decimal(value["amount"])
        )


def line(description: str, unit_price: Decimal, currency: str, quantity: Decimal = Decimal(1)) -> Line:
    price = rounded(unit_price, currency)
    return Line(description, quantity, price, rounded(price * quantity, currency))


@dataclass(frozen=True)
class Totals:
    net: Decimal
    tax: Decimal
    total: Decimal


def totals(lines: Sequence[Line], tax: Tax, currency: str) -> Totals:
    """Net (the lines), VAT (the rate on the net, rounded once) and total."""
    net = rounded(sum((x.amount for x in lines), ZERO), currency)
    vat = rounded(net * tax.rate / 100, currency)
    return Totals(net, vat, net + vat)


def share_of(price: Decimal, share: Decimal, currency: str) -> Decimal:
    return rounded(price * share, currency)


def due_on(issued_on: date, payment_days: int) -> date:
    return issued_on + timedelta(days=payment_days)


def days_late(due: date, on: date) -> int:
    """Days after the due date (0: on time or early)."""
    return max(0, (on - due).days)


@dataclass(frozen=True)
class NewInvoice:
    """An invoice decided, not numbered yet (the repository numbers it when it writes it)."""

    key: str
    kind: str
    client: Mapping[str, Any]
    currency: str
    lines: tuple[Line, ...]
    tax: Tax
    payment_days: int
    deal_id: int | None = None
    project_id: str | None = None
    service_from: date | None = None
    service_to: date | None = None
    for_invoice: str | None = None


# -- balances ---------------------------------------------------------------------------------------------------


def balance(total: Decimal, paid: Decimal) -> Decimal:
    """What is still owed (negative: paid over, a credit in the client's favour)."""
    return total - paid


def state_after_payment(total: Decimal, paid: Decimal) -> str:
    return PAID if balance(total, paid) <= 0 else OPEN


# -- extra review rounds ----------------------------------------------------------------------------------------


def extra_round(round_number: int, included: int, price: Decimal | None) -> bool:
    """Round `round_number` (1 = the first change request on a piece) is billed: past the
    package's `included` rounds, when the package sets a price for one."""
    return price is not None and price > 0 and round_number > included


# -- dunning ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderRule:
    """One reminder level: sent `after_days` after the due date, with a late fee of `fee_percent`
    percent of what is still owed (0: no fee)."""

    after_days: int
    fee_percent: Decimal = ZERO


#: Invoice Ninja's shape: three reminders, then one every `REPEAT_EVERY_DAYS`.
DEFAULT_REMINDERS = (
    ReminderRule(7),
    ReminderRule(14, Decimal("2")),
    ReminderRule(28, Decimal("3")),
)
REPEAT_EVERY_DAYS = 14


def check_schedule(rules: Sequence[ReminderRule], repeat_every_days: int) -> None:
    """A schedule a person wrote: 1 to 3 levels, each later than the one before, fees 0..100 %."""
    if not 1 <= len(rules) <= 3:
        raise ValueError("dunning has 1 to 3 reminder levels")
    previous = 0
    for rule in rules:
        if rule.after_days <= previous and not (previous == 0 and rule.after_days == 0):
            raise ValueError("each reminder comes after the one before (days after the due date, increasing)")
        if not ZERO <= rule.fee_percent <= 100:
            raise ValueError("a late fee is 0 to 100 percent")
        previous = rule.after_days
    if repeat_every_days < 1:
        raise ValueError("the repeating reminder comes every 1 day or more")


def reminder_day(due: date, seq: int, rules: Sequence[ReminderRule], repeat_every_days: int) -> date:
    """When reminder `seq` (1, 2, ...) is due: a level's own delay, then every `repeat_every_days`."""
    if seq <= len(rules):
        return due + timedelta(days=rules[seq - 1].after_days)
    return due + timedelta(days=rules[-1].after_days + (seq - len(rules)) * repeat_every_days)


def level_of(seq: int, rules: Sequence[ReminderRule]) -> int:
    """The level `ReminderSent` says: 1..len(rules), then len(rules) + 1 for every repeat."""
    return min(seq, len(rules) + 1)


@dataclass(frozen=True)
class ReminderDue:
    seq: int
    level: int
    fee_percent: Decimal
    days_overdue: int


def reminder_due(
    due: date, sent: int, today: date, rules: Sequence[ReminderRule], repeat_every_days: int
) -> ReminderDue | None:
    """The reminder to send today after `sent` reminders, or None. After a pause (the service
    down for weeks) only the latest reminder due is sent: no burst of them at once."""
    seq = sent + 1
    if reminder_day(due, seq, rules, repeat_every_days) > today:
        return None
    while reminder_day(due, seq + 1, rules, repeat_every_days) <= today:
        seq += 1
    fee = rules[seq - 1].fee_percent if seq <= len(rules) else ZERO
    return ReminderDue(seq, level_of(seq, rules), fee, (today - due).days)


def next_reminder_on(due: date, sent: int, rules: Sequence[ReminderRule], repeat_every_days: int) -> date:
    return reminder_day(due, sent + 1, rules, repeat_every_days)


def late_fee(owed: Decimal, percent: Decimal, currency: str) -> Decimal:
    """The fee of a reminder: `percent` of what is owed, in the currency's minor units."""
    if owed <= 0 or percent <= 0:
        return ZERO
    return rounded(owed * percent / 100, currency)


# -- the hold ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owed:
    """An open invoice as the hold sees it."""

    client_ref: str
    number: str
    due_on: date


def on_hold(owed: Iterable[Owed], today: date, hold_after_days: int) -> dict[str, tuple[str, ...]]:
    """The clients to hold: each with an invoice at least `hold_after_days` days overdue
    (client_ref -> those invoices' numbers, sorted)."""
    found: dict[str, list[str]] = {}
    for invoice in owed:
        if (today - invoice.due_on).days >= hold_after_days:
            found.setdefault(invoice.client_ref, []).append(invoice.number)
    return {client: tuple(sorted(numbers)) for client, numbers in found.items()}


def hold_alert_key(client_ref: str, hold_round: int) -> str:
    return f"billing:hold:{client_ref}:{hold_round}"
