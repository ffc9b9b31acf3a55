"""What onboarding says to people: the client's emails (welcome, reminders, "we have
stopped"), the kickoff invitation's words and what the saga is told it waits for. Pure.

Plain text is the email; the HTML alternative says the same, every value escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from aicmo_actors.gateways.calendar import zone


@dataclass(frozen=True)
class Words:
    """One email's subject and bodies."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Addressee:
    """Who an email is for and from whom: the client's contact and company, the agency."""

    company: str
    contact_name: str | None
    agency: str
    #: The client's zone: dates are written as the client reads them.
    timezone: str


def intake_url(public_url: str, token: str) -> str:
    """The intake form's address: ``{public_url}/client/intake/{token}``."""
    return f"{public_url.rstrip('/')}/client/intake/{token}"


def local_day(moment: datetime, tz: str) -> str:
    """A day as the client reads it: Friday 5 March 2027 (in the client's zone)."""
    local = moment.astimezone(zone(tz))
    return f"{local:%A} {local.day} {local:%B %Y}"


def local_time(moment: datetime, tz: str) -> str:
    """A time as the client reads it: Friday 5 March 2027 at 10:00 (Europe/Paris)."""
    local = moment.astimezone(zone(tz))
    return f"{local_day(moment, tz)} at {local:%H:%M} ({tz})"


def greeting(to: Addressee) -> str:
    return f"Hello {to.contact_name.strip()}," if to.contact_name and to.contact_name.strip() else "Hello,"


def _html(paragraphs: list[str], link: str | None = None) -> str:
    """Paragraphs (plain text, escaped here) and the one link, as a simple HTML body."""
    body = []
    for paragraph in paragraphs:
        escaped = html.escape(paragraph).replace("\n", "<br>\n")
        if link is not None and html.escape(link) in escaped:
            escaped = escaped.replace(html.escape(link), f'<a href="{html.escape(link)}">{html.escape(link)}</a>')
        body.append(f"<p>{escaped}</p>")
    head = '<!DOCTYPE html>\n<html><body style="font-family:sans-serif;line-height:1.5">\n'
    return head + "\n".join(body) + "\n</body></html>\n"


def _email(subject: str, paragraphs: list[str], link: str | None = None) -> Words:
    return Words(subject, "\n\n".join(paragraphs) + "\n", _html(paragraphs, link))


def welcome(to: Addressee, *, link: str, expires_at: datetime, kickoff_at: datetime) -> Words:
    """The first email after the deal: thanks, what happens next, the questionnaire, the kickoff."""
    return _email(
        f"Welcome to {to.agency}: a few questions to get started",
        [
            greeting(to),
            f"Thank you for choosing {to.agency}. We are glad to start working with {to.company}.",
            "What happens next:\n"
            "1. You answer a short questionnaire about your business, your audience and your goals "
            "(about 15 minutes; you can save and finish later).\n"
            "2. We meet for a 45-minute kickoff call to go through your answers.\n"
            "3. We write your strategy and send it to you for approval.",
            f"The questionnaire:\n{link}",
            f"This link is personal to {to.company}: please do not forward it. "
            f"It works until {local_day(expires_at, to.timezone)}.",
            f"We have proposed the kickoff call for {local_time(kickoff_at, to.timezone)}: "
            "the invitation is attached. If that time does not suit you, reply with one that does.",
            f"Kind regards,\n{to.agency}",
        ],
        link,
    )


def reminder(to: Addressee, *, number: int, link: str, expires_at: datetime) -> Words:
    """A short nudge to answer the questionnaire (reminder `number`, 1 first)."""
    subject = "Reminder: a few questions to get started" if number == 1 else "Still waiting for your answers"
    return _email(
        f"{subject} ({to.agency})",
        [
            greeting(to),
            "To start the work for "
            f"{to.company} we need your answers to our short questionnaire. Answers you saved are kept.",
            f"{link}",
            f"The link works until {local_day(expires_at, to.timezone)}. "
            "If something is unclear, simply reply to this email.",
            f"Kind regards,\n{to.agency}",
        ],
        link,
    )


def cancelled(to: Addressee) -> Words:
    """The onboarding was stopped (the project was cancelled): short, no link."""
    return _email(
        f"We have stopped the onboarding ({to.agency})",
        [
            greeting(to),
            f"We have stopped the onboarding of {to.company}: the questionnaire link no longer works "
            "and you will receive no more reminders from us about it.",
            "If this is unexpected, simply reply to this email.",
            f"Kind regards,\n{to.agency}",
        ],
    )


def kickoff_summary(company: str, agency: str) -> str:
    return f"Kickoff: {company} and {agency}"


def kickoff_description(company: str, agency: str) -> str:
    return (
        f"Kickoff call between {company} and {agency}: your answers to the questionnaire, "
        "your goals, and the next steps. Reply to propose another time."
    )


def waiting_for(contact_email: str, *, needs_person: bool = False) -> str:
    """What the saga is told onboarding waits for."""
    if needs_person:
        return f"a person to read the intake answers {contact_email} sent by email"
    return f"intake answers from {contact_email}"
