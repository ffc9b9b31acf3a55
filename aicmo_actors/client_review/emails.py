"""Client review's emails to the client as messages ready to queue. Pure: the same inputs make
the same bytes (Message-IDs and MIME boundaries come from the idempotency key, never at random).

- the review request (per batch): the pieces, the link to the page, the deadline, how to
  answer by reply, plain text and a simple HTML version;
- the reminders, in the same thread (In-Reply-To the request);
- the notice that the review is withdrawn (a cancelled project).

Headers go through `gateways.mail_message.build_message` (header injection refused).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from markupsafe import Markup, escape

from aicmo_actors.client_review import texts
from aicmo_actors.gateways.mail_message import build_message, make_message_id
from contracts.clients import ClientInfo

#: Where the client's page is served, below the public URL.
PAGE_PATH = "/client/review/"


@dataclass(frozen=True)
class Letterhead:
    """Who client review writes as, and where its links point."""

    mail_from: str
    agency_name: str
    public_url: str

    @property
    def domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "localhost"


def page_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{PAGE_PATH}{token}"


def one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text is not None else None


def message_id(head: Letterhead, key: str) -> str:
    return make_message_id(head.domain, "review." + hashlib.sha256(key.encode()).hexdigest()[:32])


def _html(text: str, url: str) -> str:
    """The plain text as simple HTML: paragraphs, the link clickable, everything escaped."""
    parts = []
    for block in text.split("\n\n"):
        if block.strip() == url:
            parts.append(Markup('<p><a href="{0}">{0}</a></p>').format(url))
        elif block.startswith("- "):
            items = Markup("").join(Markup("<li>{}</li>").format(line[2:]) for line in block.splitlines())
            parts.append(Markup("<ul>{}</ul>").format(items))
        else:
            parts.append(Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in block.splitlines())))
    body = Markup("\n").join(parts)
    return str(
        Markup(
            '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5;max-width:40em">{}</body></html>'
        ).format(body)
    )


def _message(
    head: Letterhead,
    client: ClientInfo,
    *,
    key: str,
    subject: str,
    text: str,
    url: str | None,
    now: datetime,
    in_reply_to: str | None = None,
) -> EmailMessage:
    return build_message(
        from_address=head.mail_from,
        from_name=head.agency_name,
        to_address=client.contact_email,
        to_name=one_line(client.contact_name),
        subject=subject,
        text=text,
        html=_html(text, url) if url else None,
        message_id=message_id(head, key),
        date=now,
        in_reply_to=in_reply_to,
        references=(in_reply_to,) if in_reply_to else (),
    )


def review_email(
    head: Letterhead,
    client: ClientInfo,
    *,
    key: str,
    titles: Sequence[tuple[str, str]],
    token: str,
    link_expires_at: datetime,
    deadline: datetime,
    auto_approve_at: datetime | None,
    now: datetime,
) -> EmailMessage:
    """The email asking the client to review a batch."""
    url = page_url(head.public_url, token)
    text = texts.review_email(
        contact_name=client.contact_name,
        company=client.company,
        agency=head.agency_name,
        titles=titles,
        url=url,
        link_expires=texts.moment(link_expires_at, client.timezone),
        deadline=texts.moment(deadline, client.timezone),
        auto_approve=texts.moment(auto_approve_at, client.timezone) if auto_approve_at else None,
    )
    subject = texts.review_subject(one_line(client.company) or "", len(titles))
    return _message(head, client, key=key, subject=subject, text=text, url=url, now=now)


def reminder_email(
    head: Letterhead,
    client: ClientInfo,
    *,
    key: str,
    request_key: str,
    number: int,
    titles: Sequence[tuple[str, str]],
    token: str,
    link_expires_at: datetime,
    deadline: datetime,
    auto_approve_at: datetime | None,
    now: datetime,
) -> EmailMessage:
    """Reminder `number`, in the request's thread (the pieces still open)."""
    url = page_url(head.public_url, token)
    text = texts.reminder_email(
        contact_name=client.contact_name,
        company=client.company,
        agency=head.agency_name,
        titles=titles,
        url=url,
        link_expires=texts.moment(link_expires_at, client.timezone),
        deadline=texts.moment(deadline, client.timezone),
        auto_approve=texts.moment(auto_approve_at, client.timezone) if auto_approve_at else None,
    )
    subject = texts.reminder_subject(one_line(client.company) or "", len(titles), number)
    return _message(
        head, client, key=key, subject=subject, text=text, url=url, now=now, in_reply_to=message_id(head, request_key)
    )


def withdrawn_email(head: Letterhead, client: ClientInfo, *, key: str, now: datetime) -> EmailMessage:
    text = texts.withdrawn_email(contact_name=client.contact_name, company=client.company, agency=head.agency_name)
    subject = texts.withdrawn_subject(one_line(client.company) or "")
    return _message(head, client, key=key, subject=subject, text=text, url=None, now=now)
