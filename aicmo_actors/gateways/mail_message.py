"""Building outbound messages with the stdlib `email` package (policy.SMTP: CRLF, RFC 2047).

Header injection is refused before anything is built: a CR, LF or NUL (or any other
character str.splitlines() breaks on) in any header name or value, display name, address,
subject or Message-ID raises `HeaderInjectionError`. Other malformed input (an address
with two @, a header name with a space, a Message-ID without <>) raises `ValueError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

# CR, LF, NUL and the rest of what str.splitlines() breaks on (the email package refuses
# those too, but with a message that does not say which header).
_FORBIDDEN = ("\r", "\n", "\0", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# RFC 5322 field names: printable US-ASCII except the colon.
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
# Local part and domain of an address without quoting: no spaces, brackets or separators.
_ADDRESS_PART = re.compile(r'^[^\s<>()\[\],;:"\\@]+$')
# Lenient on purpose (ids from other mailers are not always id@domain): one token in <>.
_MESSAGE_ID = re.compile(r"^<[^<>\s]+>$")
#: Headers build_message writes itself; `extra_headers` may not set them a second time.
MANAGED_HEADERS = frozenset({
    "from", "to", "subject", "date", "message-id", "in-reply-to", "references", "list-unsubscribe",
    "list-unsubscribe-post", "mime-version", "content-type", "content-transfer-encoding",
})


class HeaderInjectionError(ValueError):
    """A header name or value contained a line break or NUL."""

    def __init__(self, header: str) -> None:
        shown = header if _HEADER_NAME.match(header) else repr(header)  # the message stays one line
        super().__init__(f"refused: line break or NUL in the {shown} header")
        self.header = header


def _clean(header: str, value: str | None) -> str | None:
    if value is not None and any(c in value for c in _FORBIDDEN):
        raise HeaderInjectionError(header)
    return value


def _address(header: str, address: str, name: str | None) -> Address:
    _clean(header, address)
    _clean(header, name)
    local, _, domain = address.partition("@")
    if not (_ADDRESS_PART.match(local) and _ADDRESS_PART.match(domain)):
        raise ValueError(f"{header}: {address!r} is not an address")
    if not local.isascii():
        # It would need SMTPUTF8; RFC 2047 words (what the email package writes) are not allowed there.
        raise ValueError(f"{header}: {address!r}: a non-ASCII part before the @ is not supported")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")  # exämple.com -> xn--exmple-cua.com
    except UnicodeError:
        raise ValueError(f"{header}: {address!r}: the domain is not a valid host name") from None
    return Address(display_name=name or "", username=local, domain=ascii_domain)


def _message_id(header: str, value: str) -> None:
    _clean(header, value)
    if not _MESSAGE_ID.match(value):
        raise ValueError(f"{header}: {value!r} is not a message id like <unique@domain> (one token in <>)")


def make_message_id(domain: str, unique: str) -> str:
    _clean("Message-ID", domain)
    _clean("Message-ID", unique)
    if not domain or any(c in domain for c in " <>@"):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    if not unique or any(c.isspace() or c in "<>@" for c in unique):
        raise ValueError(f"not a unique part for a Message-ID: {unique!r}")
    return f"<{unique}@{domain}>"


def references_for(previous_ids: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """(In-Reply-To, References) for a follow-up after `previous_ids` (oldest first)."""
    if not previous_ids:
        return None, ()
    return previous_ids[-1], tuple(previous_ids)


#: How outbound mail is written: SMTP's CRLF line ends, and the headers we fold ourselves
#: kept as written. The stock policy re-folds any header line over 78 characters, and an
#: unbreakable one (a long unsubscribe URL) then came out as RFC 2047 encoded words, which
#: no mail provider reads as the List-Unsubscribe link it must be (RFC 2369, RFC 8058).
#: Structured headers (From, To, Subject) still fold themselves.
WIRE_POLICY = SMTP.clone(refold_source="none")


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as it goes on the wire (and into the Maildir outbox)."""
    return message.as_bytes(policy=WIRE_POLICY)


def _fold_list(items: list[str], separator: str, width: int = 76) -> str:
    """Items joined by `separator`, a new folded line (CRLF-less "\n ") wherever the next item
    would pass `width`: the generator then writes the lines as they are (RFC 5322 2.2.3)."""
    lines = [items[0]]
    for item in items[1:]:
        joined = lines[-1] + separator + item
        if len(joined) <= width:
            lines[-1] = joined
        else:
            lines[-1] += separator.rstrip()
            lines.append(item)
    return "\n ".join(lines)


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
    _message_id("Message-ID", message_id)
    if in_reply_to:
        _message_id("In-Reply-To", in_reply_to)
    for ref in references:
        _message_id("References", ref)
    for target in (list_unsubscribe_url, list_unsubscribe_mailto):
        _clean("List-Unsubscribe", target)
        # Each target sits in <...>: a '>' or ',' inside would add targets of its own.
        if target is not None and any(c.isspace() or c in "<>," for c in target):
            raise ValueError(f"List-Unsubscribe: {target!r} must not contain spaces, '<', '>' or ','")
    if list_unsubscribe_mailto is not None and not list_unsubscribe_mailto.startswith("mailto:"):
        raise ValueError(f"List-Unsubscribe: {list_unsubscribe_mailto!r} does not start with mailto:")
    for key, value in (extra_headers or {}).items():
        _clean(key, key)
        _clean(key, value)
        if not _HEADER_NAME.match(key):
            raise ValueError(f"{key!r} is not a header name (printable ASCII, no spaces or ':')")
        if key.lower() in MANAGED_HEADERS:
            raise ValueError(f"{key}: set by build_message itself, not through extra_headers")
    msg = EmailMessage(policy=WIRE_POLICY)
    # From, To and Subject go through the policy (RFC 2047 for non-ASCII, quoting). The rest
    # are ASCII we composed and checked above: stored as written (`set_raw`, folded here),
    # since the policy would parse each into a structured header only to print it back,
    # which was most of the cost of building an email.
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg.set_raw("Date", format_datetime(date))
    msg.set_raw("Message-ID", message_id)
    if in_reply_to:
        msg.set_raw("In-Reply-To", in_reply_to)
    if references:
        msg.set_raw("References", _fold_list(list(references), " "))
    targets = []
    if list_unsubscribe_url:
        targets.append(f"<{list_unsubscribe_url}>")
    if list_unsubscribe_mailto:
        targets.append(f"<{list_unsubscribe_mailto}>")
    if targets:
        msg.set_raw("List-Unsubscribe", _fold_list(targets, ", "))
    if list_unsubscribe_url:
        msg.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    for key, value in (extra_headers or {}).items():
        msg[key] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
        # The email package draws MIME boundaries from the global random module: derive one
        # from the Message-ID instead, so the same message is the same bytes.
        msg.set_boundary("alt." + "".join(c for c in message_id if c.isalnum())[:40])
    return msg
