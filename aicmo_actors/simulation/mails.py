"""Realistic mail from simulated prospects and their mail servers, as raw bytes.

Replies quote what they answer and thread with In-Reply-To/References; bounces are RFC 3464
delivery status reports (multipart/report) with the original headers attached, the way
Postfix and Exchange send them; out-of-office replies carry RFC 3834 headers and a return
date in the text.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP as _STOCK_SMTP
from email.utils import format_datetime, parseaddr
from typing import Any

from aicmo_actors.gateways.mail_message import CachedHeaderRegistry, build_message, wire_bytes

#: SMTP's policy, each header's class made once (the stock registry makes a new class for
#: every header set or read, most of what writing a reply cost).
SMTP = _STOCK_SMTP.clone(header_factory=CachedHeaderRegistry())

REPLIES: dict[str, list[str]] = {
    "interested": [
        "This sounds interesting. Can you send me more information?",
        "Yes, we'd be interested. Tell me more about how this works for a team like ours.",
        "Sounds good, happy to learn more.",
    ],
    "not_interested": [
        "Thanks, but we're not interested.",
        "No thanks, we already have an agency we're happy with.",
        "Not interested, thank you.",
    ],
    "question": [
        "How much does this cost for a company of our size?",
        "What does the pricing look like? And how long does onboarding take?",
        "Do you have case studies from our industry?",
    ],
    "meeting": [
        "Let's set up a call. Are you free Tuesday afternoon?",
        "Happy to talk - can we book 30 minutes next week?",
    ],
    "unsubscribe": [
        "Please remove me from your list.",
        "Unsubscribe. Do not contact me again.",
        "Stop emailing me.",
    ],
    "referral": [
        "I'm not the right person for this. Please talk to my colleague {colleague}, she handles marketing.",
    ],
}

OOO = [
    (
        "Automatic reply: {subject}",
        "I am out of the office until {date:%A, %B} {date.day}, {date.year} with limited access to email.\n"
        "For urgent matters please contact office@{domain}.",
    ),
    ("Out of Office: {subject}", "Thank you for your message. I'm on vacation and will be back on {date:%Y-%m-%d}."),
    ("Abwesenheitsnotiz: {subject}", "Vielen Dank für Ihre Nachricht. Ich bin bis zum {date:%d.%m.%Y} nicht im Büro."),
]


def _quote(original_text: str, sender: str, date: datetime) -> str:
    quoted = "\n".join("> " + line for line in original_text.splitlines()[:12])
    return f"On {format_datetime(date)}, {sender} wrote:\n{quoted}\n"


def _header_of(message: EmailMessage, name: str) -> str:
    """`str(message[name])` ("" when absent), read from the stored text when that is plain
    (our own emails store their headers as written): parsing a header was most of what
    writing a reply cost."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            if type(value) is str and "=?" not in value:
                return " ".join(value.split())  # unfolded, as the parsed header reads
            return str(message[name])
    return ""


def _address(header: str) -> tuple[str | None, str]:
    name, address = parseaddr(header)
    return (name or None), address


def _answer(original: EmailMessage, **fields: Any) -> bytes:
    """An answer to `original` from its recipient to its sender, written the way our own
    emails are (`build_message`), as any mail client writes a plain-text message."""
    to_name, to_address = _address(_header_of(original, "To"))
    from_name, from_address = _address(_header_of(original, "From"))
    return wire_bytes(
        build_message(from_address=to_address, from_name=to_name, to_address=from_address, to_name=from_name, **fields)
    )


def reply(kind: str, original: EmailMessage, rng: random.Random, at: datetime, message_id: str) -> bytes:
    """A human reply of `kind` to `original` (one of REPLIES' keys)."""
    domain = parseaddr(_header_of(original, "To"))[1].rpartition("@")[2]
    text = rng.choice(REPLIES[kind]).format(colleague=f"jane.doe@{domain}")
    return reply_saying(text, original, at, message_id)


def reply_saying(text: str, original: EmailMessage, at: datetime, message_id: str) -> bytes:
    """A person's reply to `original` saying `text`, threaded and quoting it, signed with
    their first name."""
    to_name = parseaddr(_header_of(original, "To"))[0]
    from_header = _header_of(original, "From")
    original_id = _header_of(original, "Message-ID")
    first = to_name.split()[0] if to_name else "me"
    body_part = original.get_body(preferencelist=("plain",))
    original_text = body_part.get_content() if body_part is not None else ""
    subject = _header_of(original, "Subject")
    return _answer(
        original,
        subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
        text=f"{text}\n\n{first}\n\n{_quote(original_text, from_header, at - timedelta(hours=3))}",
        message_id=message_id,
        date=at,
        in_reply_to=original_id,
        references=(*_header_of(original, "References").split(), original_id),
    )


def out_of_office(original: EmailMessage, rng: random.Random, at: datetime, back: datetime, message_id: str) -> bytes:
    domain = parseaddr(_header_of(original, "To"))[1].rpartition("@")[2]
    subject_t, body_t = rng.choice(OOO)
    return _answer(
        original,
        subject=subject_t.format(subject=_header_of(original, "Subject")),
        text=body_t.format(date=back, domain=domain),
        message_id=message_id,
        date=at,
        in_reply_to=_header_of(original, "Message-ID"),
        extra_headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )


HARD = [
    ("5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"),
    (
        "5.1.1",
        "550-5.1.1 The email account that you tried to reach does not "
        "exist. Please try double-checking the recipient's email address",
    ),
    ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
]
SOFT = [
    ("4.2.2", "452 4.2.2 The email account that you tried to reach is over quota"),
    ("5.2.2", "552 5.2.2 <{rcpt}>: Mailbox full"),
]


def bounce(
    hard: bool, original: bytes, rcpt: str, rng: random.Random, at: datetime, message_id: str, reporting: str
) -> bytes:
    """A Postfix-style RFC 3464 delivery status notification for `original` to `rcpt`."""
    status, diagnostic = rng.choice(HARD if hard else SOFT)
    diagnostic = diagnostic.format(rcpt=rcpt)
    action = "failed" if hard or status.startswith("5") else "delayed"
    domain = rcpt.rpartition("@")[2]
    outer = MIMEMultipart("report", report_type="delivery-status")
    outer["From"] = f"MAILER-DAEMON@{reporting} (Mail Delivery System)"
    outer["To"] = parseaddr(_header(original, "From"))[1] or "postmaster"
    outer["Subject"] = (
        "Undelivered Mail Returned to Sender" if action == "failed" else "Delayed Mail (still being retried)"
    )
    outer["Date"] = format_datetime(at)
    outer["Message-ID"] = message_id
    outer["Auto-Submitted"] = "auto-replied"
    human = (
        f"This is the mail system at host {reporting}.\n\n"
        + (
            "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n"
            if action == "failed"
            else "Your message could not be delivered yet; the mail system will keep trying.\n"
        )
        + f"\n<{rcpt}>: host mx.{domain}[192.0.2.25] said: {diagnostic} (in reply to RCPT TO command)\n"
    )
    outer.attach(MIMEText(human, "plain", "us-ascii"))
    status_part = MIMEBase("message", "delivery-status")
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting}"
    per_message["Arrival-Date"] = format_datetime(at - timedelta(minutes=2))
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {rcpt}"
    per_recipient["Original-Recipient"] = f"rfc822;{rcpt}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Remote-MTA"] = f"dns; mx.{domain}"
    per_recipient["Diagnostic-Code"] = f"smtp; {diagnostic}"
    status_part.set_payload([per_message, per_recipient])
    outer.attach(status_part)
    headers_only = original.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
    outer.attach(MIMEText(headers_only + "\n", "rfc822-headers", "us-ascii" if headers_only.isascii() else "utf-8"))
    # The email package draws boundaries from the global random module: fix one from ours.
    outer.set_boundary(f"dsn.{rng.getrandbits(64):016x}")
    return outer.as_bytes(policy=SMTP)


def _header(raw: bytes, name: str) -> str:
    from email.parser import BytesHeaderParser

    return str(BytesHeaderParser().parsebytes(raw).get(name, ""))
