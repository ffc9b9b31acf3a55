"""Building outbound messages with the stdlib `email` package (policy.SMTP: CRLF, RFC 2047).

Header injection is refused before anything is built: a CR, LF or NUL in any header
value, display name, address, subject or Message-ID raises `HeaderInjectionError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

_FORBIDDEN = ("\r", "\n", "\0")


class HeaderInjectionError(ValueError):
    """A header value contained CR, LF or NUL."""

    def __init__(self, header: str) -> None:
        super().__init__(f"refused: line break or NUL in the {header} header")
        self.header = header


def _clean(header: str, value: str | None) -> str | None:
    if value is not None and any(c in value for c in _FORBIDDEN):
        raise HeaderInjectionError(header)
    return value


def _address(header: str, address: str, name: str | None) -> Address:
    _clean(header, address)
    _clean(header, name)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{header}: {address!r} is not an address")
    return Address(display_name=name or "", username=local, domain=domain)


def make_message_id(domain: str, unique: str) -> str:
    _clean("Message-ID", domain)
    _clean("Message-ID", unique)
    if not domain or any(c in domain for c in " <>@"):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    return f"<{unique}@{domain}>"


def references_for(previous_ids: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """(In-Reply-To, References) for a follow-up after `previous_ids` (oldest first)."""
    if not previous_ids:
        return None, ()
    return previous_ids[-1], tuple(previous_ids)


def build_message(
    *,
    from_address: str,
    from_name: str | None = None,
    to_address: str,
    to_name: str | None = None,
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str,
    date: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    list_unsubscribe_url: str | None = None,
    list_unsubscribe_mailto: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """One email, plain text (and HTML as multipart/alternative), headers checked first."""
    sender = _address("From", from_address, from_name)
    recipient = _address("To", to_address, to_name)
    _clean("Subject", subject)
    _clean("Message-ID", message_id)
    _clean("In-Reply-To", in_reply_to)
    for ref in references:
        _clean("References", ref)
    _clean("List-Unsubscribe", list_unsubscribe_url)
    _clean("List-Unsubscribe", list_unsubscribe_mailto)
    for key, value in (extra_headers or {}).items():
        _clean(key, key)
        _clean(key, value)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    targets = []
    if list_unsubscribe_url:
        targets.append(f"<{list_unsubscribe_url}>")
    if list_unsubscribe_mailto:
        targets.append(f"<{list_unsubscribe_mailto}>")
    if targets:
        msg["List-Unsubscribe"] = ", ".join(targets)
    if list_unsubscribe_url:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for key, value in (extra_headers or {}).items():
        msg[key] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
        # The email package draws MIME boundaries from the global random module: derive one
        # from the Message-ID instead, so the same message is the same bytes.
        msg.set_boundary("alt." + "".join(c for c in message_id if c.isalnum())[:40])
    return msg
