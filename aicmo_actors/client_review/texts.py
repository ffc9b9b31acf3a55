"""What client review says to people, in one place: the emails to the client, the alerts to a
person, the page's sentences. Pure functions of their arguments (no locale: month names are
spelled here, so an email reads the same on every machine). The page's layout is in
`templates/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aicmo_actors.gateways.calendar import zone

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def moment(value: datetime, tz: str) -> str:
    """ "Mon 7 December 2026, 09:00 (Europe/Berlin)", in the client's zone."""
    local = value.astimezone(zone(tz))
    day = f"{WEEKDAYS[local.weekday()][:3]} {local.day} {MONTHS[local.month - 1]} {local.year}"
    return f"{day}, {local:%H:%M} ({tz})"


def pieces(count: int) -> str:
    return "1 piece" if count == 1 else f"{count} pieces"


def _hello(contact_name: str | None) -> str:
    return f"Hello {contact_name}," if contact_name else "Hello,"


def review_subject(company: str, count: int) -> str:
    return f"{company}: {pieces(count)} for your review"


def reminder_subject(company: str, count: int, number: int) -> str:
    return (
        f"Reminder: {review_subject(company, count)}"
        if number == 1
        else f"Reminder {number}: {review_subject(company, count)}"
    )


def withdrawn_subject(company: str) -> str:
    return f"{company}: the review we asked you for is withdrawn"


def _list(titles: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"- {title} ({kind})" for title, kind in titles)


def _how_to_answer(url: str, link_expires: str, deadline: str, auto_approve: str | None) -> str:
    auto = (
        f"\nIf we hear nothing from you by {auto_approve}, your package has us treat the pieces as approved.\n"
        if auto_approve
        else ""
    )
    return (
        "You can look at each piece and approve it or ask for changes, with a comment, on this page:\n\n"
        f"{url}\n\n"
        f"(The link works until {link_expires}. It is personal: whoever has it can answer for you, "
        "so please do not forward it.)\n\n"
        'Or simply reply to this email: a reply saying "approved" approves every piece still open; '
        "anything else you write is read as a request for changes and passed on to our team.\n\n"
        f"We would be grateful for your answer by {deadline}.\n{auto}"
    )


def review_email(
    *,
    contact_name: str | None,
    company: str,
    agency: str,
    titles: Sequence[tuple[str, str]],
    url: str,
    link_expires: str,
    deadline: str,
    auto_approve: str | None,
) -> str:
    """The plain-text email asking the client to review a batch."""
    return (
        f"{_hello(contact_name)}\n\n"
        f"{pieces(len(titles)).capitalize()} for {company} {'is' if len(titles) == 1 else 'are'} ready "
        "for your review:\n\n"
        f"{_list(titles)}\n\n"
        f"{_how_to_answer(url, link_expires, deadline, auto_approve)}\n"
        f"Best regards,\n{agency}\n"
    )


def reminder_email(
    *,
    contact_name: str | None,
    company: str,
    agency: str,
    titles: Sequence[tuple[str, str]],
    url: str,
    link_expires: str,
    deadline: str,
    auto_approve: str | None,
) -> str:
    """A reminder: the pieces still waiting for an answer."""
    return (
        f"{_hello(contact_name)}\n\n"
        f"A gentle reminder: {pieces(len(titles))} for {company} still "
        f"{'waits' if len(titles) == 1 else 'wait'} for your answer:\n\n"
        f"{_list(titles)}\n\n"
        f"{_how_to_answer(url, link_expires, deadline, auto_approve)}\n"
        f"Best regards,\n{agency}\n"
    )


def withdrawn_email(*, contact_name: str | None, company: str, agency: str) -> str:
    return (
        f"{_hello(contact_name)}\n\n"
        f"The pieces we asked you to review for {company} are withdrawn: the project has been stopped, "
        "and the review links no longer work. Nothing more is needed from you.\n\n"
        "If you have a question, simply reply to this email.\n\n"
        f"Best regards,\n{agency}\n"
    )


# -- alerts to a person ---------------------------------------------------------------------------------------------


def unclear_reply_alert(company: str, batch_key: str, sender: str | None, text: str) -> tuple[str, str]:
    """(summary, text) of the alert for a reply that neither clearly approves nor asks for changes."""
    snippet = " ".join(text.split())[:200]
    summary = f'{company}: review reply from {sender or "the client"} needs a person: "{snippet}"'
    body = (
        f"The client answered the review request {batch_key} by email, and the answer is not clearly an "
        "approval or a change request. Nothing was decided. Read it and decide:\n"
        f"  python run.py review decide {batch_key} --approve\n"
        f'  python run.py review decide {batch_key} --changes "what should change" [--item ITEM]\n\n'
        f"{text[:4000]}"
    )
    return summary, body


def late_reply_alert(company: str, batch_key: str, sender: str | None, text: str) -> tuple[str, str]:
    """(summary, text) of the alert for changes asked after every piece was answered."""
    snippet = " ".join(text.split())[:200]
    summary = f'{company}: changes asked by email after the review {batch_key} was answered: "{snippet}"'
    body = (
        f"Every piece of {batch_key} was already answered when {sender or 'the client'} wrote this; "
        f"nothing was changed. Read it and settle it with the client.\n\n{text[:4000]}"
    )
    return summary, body


def unanswered_alert(company: str, batch_key: str, reminders: int, open_items: int) -> tuple[str, str]:
    summary = f"{company}: no answer to the review {batch_key} after {reminders} reminder(s)"
    body = (
        f"{pieces(open_items).capitalize()} of {batch_key} still wait for the client's answer, and the package "
        "does not approve them after silence. Call the client, or decide for them:\n"
        f"  python run.py review decide {batch_key} --approve\n"
        f'  python run.py review decide {batch_key} --changes "what should change" [--item ITEM]'
    )
    return summary, body


# -- the page -------------------------------------------------------------------------------------------------------

VERDICT_WORDS = {"approved": "Approved", "changes": "Changes requested"}
BY_WORDS = {
    "page": "on this page",
    "email": "by email",
    "auto": "automatically, after silence",
    "person": "by us, for you",
}
