"""What billing says to people: email subjects and bodies, invoice labels, alerts. Pure."""

from __future__ import annotations

from datetime import date

from aicmo_actors.billing.money import shown

KIND_TITLES = {
    "retainer": "Retainer",
    "one_off": "One-off",
    "milestone": "Milestone",
    "extra_round": "Extra review round",
    "late_fee": "Late payment fee",
}


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def retainer_line(title: str, first: date, last: date) -> str:
    return f"{one_line(title)}: retainer {first.isoformat()} to {last.isoformat()}"


def one_off_line(title: str) -> str:
    return f"{one_line(title)}"


def milestone_line(title: str, name: str) -> str:
    return f"{one_line(title)}: milestone {one_line(name)!r}"


def extra_round_line(title: str, item_id: str, round_number: int, included: int) -> str:
    return f"{one_line(title)}: review round {round_number} on piece {item_id[:8]} ({included} included in the package)"


def late_fee_line(number: str, level: int, percent: str) -> str:
    return f"Late payment fee on invoice {number} (reminder {level}, {percent} % of the amount owed)"


def payment_terms(due: date, payment_days: int) -> str:
    if payment_days == 0:
        return f"Payable on receipt ({due.isoformat()})."
    return f"Payable within {payment_days} days, by {due.isoformat()}, quoting the invoice number."


def invoice_subject(agency: str, number: str, total: str) -> str:
    return one_line(f"Invoice {number} from {agency}: {total}")


def invoice_body(*, contact: str | None, agency: str, number: str, total: str, due: date, kind: str) -> str:
    hello = f"Dear {one_line(contact)}," if contact else "Hello,"
    return (
        f"{hello}\n\n"
        f"please find attached invoice {number} ({KIND_TITLES.get(kind, kind).lower()}) for {total}, "
        f"due on {due.isoformat()}.\n\n"
        "Please quote the invoice number with your payment. If anything on it looks wrong, just reply "
        "to this email.\n\n"
        f"Kind regards,\n{agency}\n"
    )


#: The words a reminder's subject starts with, by level (the repeating reminders' after the last).
REMINDER_WORDS = {1: "Payment reminder", 2: "Second reminder", 3: "Final reminder"}
REPEAT_REMINDER_WORD = "Payment still outstanding"


def reminder_subject(agency: str, number: str, level: int) -> str:
    word = REMINDER_WORDS.get(level, REPEAT_REMINDER_WORD)
    return one_line(f"{word}: invoice {number} from {agency}")


def reminder_body(
    *,
    contact: str | None,
    agency: str,
    number: str,
    owed: str,
    due: date,
    days_overdue: int,
    level: int,
    fee: str | None,
    fee_number: str | None,
) -> str:
    hello = f"Dear {one_line(contact)}," if contact else "Hello,"
    opening = (
        "this is a friendly reminder that"
        if level == 1
        else "we have not yet received payment and kindly remind you again that"
    )
    text = (
        f"{hello}\n\n{opening} invoice {number} was due on {due.isoformat()} "
        f"({days_overdue} days ago); {owed} is still outstanding.\n\n"
    )
    if fee and fee_number:
        text += f"As set out in our terms, a late payment fee of {fee} is charged on invoice {fee_number}.\n\n"
    text += (
        "If you have paid in the meantime, thank you, and please ignore this email. If something is holding "
        "the payment up, reply to this email and we will sort it out.\n\n"
        f"Kind regards,\n{agency}\n"
    )
    return text


def credit_subject(agency: str, credit_note: str, number: str) -> str:
    return one_line(f"Credit note {credit_note} from {agency} (cancels invoice {number})")


def credit_body(*, contact: str | None, agency: str, credit_note: str, number: str, total: str) -> str:
    hello = f"Dear {one_line(contact)}," if contact else "Hello,"
    return (
        f"{hello}\n\nplease find attached credit note {credit_note}, which cancels invoice {number} "
        f"({total}). Nothing is owed on that invoice any more.\n\nKind regards,\n{agency}\n"
    )


def hold_summary(company: str, numbers: tuple[str, ...], days: int) -> str:
    listed = ", ".join(numbers)
    return one_line(f"{company} is on hold: invoice {listed} overdue {days}+ days; new deliveries wait")


def hold_text(company: str, numbers: tuple[str, ...], days: int) -> str:
    return (
        f"{one_line(company)} owes invoice(s) {', '.join(numbers)}, overdue for at least {days} days. New "
        "deliveries for this client are held until they are paid or credited (python run.py invoices "
        "--overdue; python run.py pay NUMBER AMOUNT records a payment)."
    )


#: Why a client is released (`ClientReleased.reason`).
RELEASED = "no invoice overdue past the threshold any more"


def hold_reason(numbers: tuple[str, ...], days: int) -> str:
    return f"invoice {', '.join(numbers)} overdue {days}+ days"


def money(amount_text: str, currency: str) -> str:
    from decimal import Decimal

    return shown(Decimal(amount_text), currency)
