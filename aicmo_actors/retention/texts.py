"""What retention says to people: the reasons behind a score, the alerts to the owner. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal


def item(item_id: str) -> str:
    """An item as a reason names it (its id's first characters: `python run.py` finds it by them)."""
    return f"item {item_id[:8]}"


def overdue(number: str, due_on: date) -> str:
    return f"invoice {number} unpaid past its due date ({due_on.isoformat()})"


def reminder(number: str, level: int, days_overdue: int) -> str:
    which = "a repeating reminder" if level > 3 else f"reminder {level}"
    return f"invoice {number}: {which} sent, {days_overdue} days overdue"


def partial(number: str, balance: Decimal, currency: str) -> str:
    return f"invoice {number} paid in part: {balance} {currency} still owed"


def paid_late(number: str, days: int) -> str:
    return f"invoice {number} paid {days} day{'s' if days != 1 else ''} late"


def paid_on_time(number: str) -> str:
    return f"invoice {number} paid on time"


def on_hold(invoices: Sequence[str]) -> str:
    listed = f" ({', '.join(invoices)})" if invoices else ""
    return f"deliveries on hold for unpaid invoices{listed}"


def released() -> str:
    return "hold released: the overdue invoices are paid"


def credited(number: str, credit_note: str) -> str:
    return f"invoice {number} cancelled by credit note {credit_note}"


def revision(item_id: str, version: int) -> str:
    return f"changes asked on {item(item_id)} (version {version})"


def slow_review(item_id: str, days: float) -> str:
    return f"review of {item(item_id)} answered after {days:.0f} days"


def silent_review(item_id: str) -> str:
    return f"no answer to the review of {item(item_id)}: approved by silence"


def approved(item_id: str) -> str:
    return f"{item(item_id)} approved"


def item_late(item_id: str, due: date) -> str:
    return f"{item(item_id)} late (due {due.isoformat()})"


def retake(item_id: str, version: int) -> str:
    return f"{item(item_id)} version {version} failed quality control: a retake"


def delivered_late(item_id: str, days: int) -> str:
    return f"{item(item_id)} delivered {days} day{'s' if days != 1 else ''} after its due date"


def delivered_on_time(item_id: str) -> str:
    return f"{item(item_id)} delivered on time"


def delivery_failing(item_id: str, method: str, attempts: int) -> str:
    return f"delivery of {item(item_id)} by {method} failing after {attempts} attempt{'s' if attempts != 1 else ''}"


def kpi(name: str, period: str, value: float, target: float, *, attained: bool) -> str:
    verdict = "met" if attained else "missed"
    return f"KPI {name} {verdict} in {period}: {value:g} against a target of {target:g}"


def reply(category: str, *, weak: bool) -> str:
    words = category.replace("_", " ")
    tie = " (tied to the client by the sender's address only: a weak tie)" if weak else ""
    return f"a reply from the client read as {words}{tie}"


# -- alerts to the owner ------------------------------------------------------------------------------------------


def red_summary(company: str, score: float) -> str:
    return f"{company} is red: health {score:.0f}/100"


def red_text(company: str, client_ref: str, score: float, reasons: Sequence[str]) -> str:
    lines = [f"The health of {company} fell to {score:.0f}/100 (red). The largest reasons:"]
    lines += [f"- {r}" for r in reasons]
    lines += ["", f"The whole breakdown: python run.py health {client_ref[:8]}"]
    return "\n".join(lines)


def renewal_summary(company: str, end: date, days_left: int) -> str:
    return f"{company}: the contract ends {end.isoformat()} (in {days_left} days): time to talk about renewal"


def renewal_text(
    company: str, client_ref: str, end: date, days_left: int, band: str | None, score: float | None
) -> str:
    lines = [f"The contract of {company} ends on {end.isoformat()}, in {days_left} days."]
    if band is not None and score is not None:
        lines.append(f"Its health today: {band} ({score:.0f}/100).")
    lines += ["", f"The breakdown: python run.py health {client_ref[:8]}"]
    return "\n".join(lines)
