"""What a signed account owes by a given day, from its package: pure.

- "monthly": a retainer per period from the start until start + term_months (`rules.periods`),
  each due on its period's first day (the client's calendar), none for a period starting on or
  after the day the project stopped (compensated);
- "one_off": the price, once, at signing;
- "milestones": each milestone's share of the price once reached (by a saga step, at signing,
  or by a person).

Each invoice has a key (`deal:<id>:retainer:<n>`, `deal:<id>:one_off`, `deal:<id>:milestone:<name>`):
what has a key issued already is not planned again.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from aicmo_actors.billing import rules, texts
from aicmo_actors.billing.rules import NewInvoice
from aicmo_actors.billing.tax import Tax


@dataclass(frozen=True)
class Plan:
    invoices: tuple[NewInvoice, ...]
    #: The next day the account owes something new by itself (None: nothing more without an event).
    next_due_on: date | None


def retainer_key(deal_id: int, index: int) -> str:
    return f"deal:{deal_id}:retainer:{index}"


def plan_account(
    *,
    deal_id: int,
    client: Mapping[str, Any],
    package: Mapping[str, Any],
    start_on: date,
    stopped_on: date | None,
    project_id: str | None,
    reached: Set[str],
    issued: Set[str],
    today: date,
    tax: Tax,
) -> Plan:
    currency = str(package["currency"])
    price = Decimal(str(package["price"]))
    title = str(package.get("title") or package["name"])
    payment_days = int(package.get("payment_days", 14))
    term = int(package.get("term_months", 12))
    period = int(package.get("period_months", 1))
    billing = package["billing"]

    def new(key: str, kind: str, lines: tuple[rules.Line, ...], first: date | None = None, last: date | None = None):  # type: ignore[no-untyped-def]
        return NewInvoice(
            key=key,
            kind=kind,
            client=client,
            currency=currency,
            lines=lines,
            tax=tax,
            payment_days=payment_days,
            deal_id=deal_id,
            project_id=project_id,
            service_from=first,
            service_to=last,
        )

    out: list[NewInvoice] = []
    next_due: date | None = None
    if billing == "monthly":
        for p in rules.due_periods(start_on, period, term, today=today, stopped_on=stopped_on):
            key = retainer_key(deal_id, p.index)
            if key not in issued:
                line = rules.line(texts.retainer_line(title, p.first, p.last), price, currency)
                out.append(new(key, "retainer", (line,), p.first, p.last))
        next_due = rules.next_period_start(start_on, period, term, today=today, stopped_on=stopped_on)
    elif billing == "one_off":
        key = f"deal:{deal_id}:one_off"
        if key not in issued:
            out.append(new(key, "one_off", (rules.line(texts.one_off_line(title), price, currency),)))
    elif billing == "milestones":
        for milestone in package.get("milestones") or ():
            name = str(milestone["name"])
            key = f"deal:{deal_id}:milestone:{name}"
            if name in reached and key not in issued:
                amount = rules.share_of(price, Decimal(str(milestone["share"])), currency)
                out.append(new(key, "milestone", (rules.line(texts.milestone_line(title, name), amount, currency),)))
    return Plan(tuple(out), next_due)


def extra_round_invoice(
    *,
    deal_id: int,
    client: Mapping[str, Any],
    package: Mapping[str, Any],
    project_id: str,
    item_id: str,
    round_number: int,
    tax: Tax,
) -> NewInvoice | None:
    """The invoice of review round `round_number` on a piece, when past the package's rounds and priced."""
    included = int(package.get("review_rounds", 0))
    raw = package.get("extra_round_price")
    price = Decimal(str(raw)) if raw is not None else None
    if not rules.extra_round(round_number, included, price):
        return None
    assert price is not None
    currency = str(package["currency"])
    title = str(package.get("title") or package["name"])
    return NewInvoice(
        key=f"round:{project_id}:{item_id}:{round_number}",
        kind="extra_round",
        client=client,
        currency=currency,
        lines=(rules.line(texts.extra_round_line(title, item_id, round_number, included), price, currency),),
        tax=tax,
        payment_days=int(package.get("payment_days", 14)),
        deal_id=deal_id,
        project_id=project_id,
    )
