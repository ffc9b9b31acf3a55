"""Strategy's emails to the client as messages ready to queue. Pure: the same inputs make the
same bytes (Message-IDs and MIME boundaries come from the idempotency key, never at random).

- the plan (each version): the words of `texts.plan_email`, the link to the client's page,
  the PDF attached as ``plan-v{n}.pdf``;
- the notice that the plan is withdrawn (a cancelled project).

Headers go through `gateways.mail_message.build_message` (header injection refused).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from aicmo_actors.gateways.mail_message import build_message, make_message_id
from aicmo_actors.strategy import texts
from aicmo_actors.strategy.plan import Plan
from contracts.clients import ClientInfo

#: Where the client's page is served, below the public URL.
PAGE_PATH = "/client/plan/"


@dataclass(frozen=True)
class Letterhead:
    """Who strategy writes as, and where its links point."""

    mail_from: str
    agency_name: str
    public_url: str

    @property
    def domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "localhost"


def page_url(public_url: str, token: str) -> str:
    """The client's page for a link: ``{public_url}/client/plan/{token}``."""
    return f"{public_url.rstrip('/')}{PAGE_PATH}{token}"


def pdf_filename(version: int) -> str:
    return f"plan-v{version}.pdf"


def one_line(text: str | None) -> str | None:
    """A name as a header can carry it: every run of blank space (line breaks too) one space."""
    return " ".join(text.split()) if text is not None else None


def _message_id(head: Letterhead, key: str) -> str:
    return make_message_id(head.domain, "strategy." + hashlib.sha256(key.encode()).hexdigest()[:32])


def plan_email(
    head: Letterhead,
    client: ClientInfo,
    plan: Plan,
    *,
    key: str,
    pdf: bytes,
    token: str,
    deadline: datetime,
    last_round: bool,
    now: datetime,
) -> EmailMessage:
    """The email that sends version `plan.version` of the plan, the PDF attached."""
    message_id = _message_id(head, key)
    message = build_message(
        from_address=head.mail_from,
        from_name=head.agency_name,
        to_address=client.contact_email,
        to_name=one_line(client.contact_name),
        subject=texts.plan_subject(one_line(client.company) or "", plan.period_start, plan.version),
        text=texts.plan_email(
            contact_name=client.contact_name,
            company=client.company,
            agency=head.agency_name,
            summary=plan.summary,
            url=page_url(head.public_url, token),
            deadline=texts.deadline_text(deadline, client.timezone),
            version=plan.version,
            last_round=last_round,
        ),
        message_id=message_id,
        date=now,
    )
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_filename(plan.version))
    # The email package would draw the multipart/mixed boundary at random.
    message.set_boundary("mixed." + "".join(c for c in message_id if c.isalnum())[:40])
    return message


def cancelled_email(head: Letterhead, client: ClientInfo, *, key: str, now: datetime) -> EmailMessage:
    """The short notice that the plan sent is withdrawn."""
    return build_message(
        from_address=head.mail_from,
        from_name=head.agency_name,
        to_address=client.contact_email,
        to_name=one_line(client.contact_name),
        subject=texts.cancelled_subject(one_line(client.company) or ""),
        text=texts.cancelled_email(contact_name=client.contact_name, company=client.company, agency=head.agency_name),
        message_id=_message_id(head, key),
        date=now,
    )
