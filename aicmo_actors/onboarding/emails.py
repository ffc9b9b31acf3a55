"""Onboarding's emails as messages ready to queue: the words of `texts`, the invitation of
`invite`, headers through `gateways.mail_message.build_message` (header injection refused).
Pure: the same inputs make the same bytes (Message-IDs and MIME boundaries are derived
from the project, never drawn at random).

Message-IDs are ``<onboarding.{kind}.{project}@{domain of mail_from}>``: unique per project
and email, and what a reply's In-Reply-To or References must name for onboarding to read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from aicmo_actors.gateways.mail_message import build_message, make_message_id
from aicmo_actors.onboarding import texts
from aicmo_actors.onboarding.invite import CONTENT_TYPE, FILENAME, Kickoff, kickoff_ics

WELCOME, REMINDER, CANCELLED = "welcome", "reminder", "cancelled"


@dataclass(frozen=True)
class Letterhead:
    """Who onboarding writes as, and where its links point."""

    mail_from: str
    agency_name: str
    public_url: str

    @property
    def domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class Recipient:
    """The client's contact, as the deal carried it."""

    project_id: str
    company: str
    contact_name: str | None
    contact_email: str
    timezone: str

    def addressee(self, agency: str) -> texts.Addressee:
        return texts.Addressee(self.company, self.contact_name, agency, self.timezone)


def email_key(project_id: str, kind: str, number: int | None = None) -> str:
    """The idempotency key of one email: ``{project}:onboarding:{kind}[:{n}]``."""
    return f"{project_id}:onboarding:{kind}" + (f":{number}" if number is not None else "")


def message_id(head: Letterhead, project_id: str, kind: str, number: int | None = None) -> str:
    unique = f"onboarding.{kind}" + (f".{number}" if number is not None else "") + f".{project_id}"
    return make_message_id(head.domain, unique)


def _build(head: Letterhead, to: Recipient, words: texts.Words, msg_id: str, now: datetime) -> EmailMessage:
    return build_message(
        from_address=head.mail_from,
        from_name=head.agency_name,
        to_address=to.contact_email,
        to_name=to.contact_name,
        subject=words.subject,
        text=words.text,
        html=words.html,
        message_id=msg_id,
        date=now,
    )


def welcome_email(
    head: Letterhead, to: Recipient, *, token: str, expires_at: datetime, kickoff_at: datetime, now: datetime
) -> EmailMessage:
    """The welcome, with the intake link and the kickoff invitation attached (invite.ics)."""
    words = texts.welcome(
        to.addressee(head.agency_name),
        link=texts.intake_url(head.public_url, token),
        expires_at=expires_at,
        kickoff_at=kickoff_at,
    )
    msg_id = message_id(head, to.project_id, WELCOME)
    message = _build(head, to, words, msg_id, now)
    ics = kickoff_ics(
        Kickoff(
            project_id=to.project_id,
            company=to.company,
            agency=head.agency_name,
            organizer=head.mail_from,
            attendee=to.contact_email,
            attendee_name=to.contact_name,
            start=kickoff_at,
            stamp=now,
        )
    )
    maintype, subtype = CONTENT_TYPE
    message.add_attachment(
        ics, maintype=maintype, subtype=subtype, filename=FILENAME, params={"method": "REQUEST", "charset": "UTF-8"}
    )
    # The email package would draw the new multipart/mixed boundary at random.
    message.set_boundary("mixed." + "".join(c for c in msg_id if c.isalnum())[:40])
    return message


def reminder_email(
    head: Letterhead, to: Recipient, *, number: int, token: str, expires_at: datetime, now: datetime
) -> EmailMessage:
    words = texts.reminder(
        to.addressee(head.agency_name),
        number=number,
        link=texts.intake_url(head.public_url, token),
        expires_at=expires_at,
    )
    return _build(head, to, words, message_id(head, to.project_id, REMINDER, number), now)


def cancelled_email(head: Letterhead, to: Recipient, *, now: datetime) -> EmailMessage:
    words = texts.cancelled(to.addressee(head.agency_name))
    return _build(head, to, words, message_id(head, to.project_id, CANCELLED), now)
