"""Building outbound messages with the stdlib `email` package (policy.SMTP: CRLF, RFC 2047).

Header injection is refused before anything is built: a CR, LF or NUL (or any other
character str.splitlines() breaks on) in any header name or value, display name, address,
subject or Message-ID raises `HeaderInjectionError`. Other malformed input (an address
with two @, a header name with a space, a Message-ID without <>) raises `ValueError`.

The email package decodes RFC 2047 encoded words (`=?utf-8?q?a=0D=0A?=`) in what it is
given, so a value that is clean as written can still carry a line break onto the wire (it
does on CPython 3.11). Text we did not encode ourselves is therefore never handed to it as
encoded words (see `_literal_words`), and the built message is checked twice more: what
each header holds once parsed, and the header block as it will be written (every line a
header we set or a continuation, none over 998 octets). Subjects and display names are cut
to `MAX_SUBJECT_CHARS` and `MAX_DISPLAY_NAME_CHARS`.

Speed (issue 22): what we compose ourselves is stored as written (`set_raw`), never parsed by
the policy only to be printed back. Plain ASCII names, addresses and subjects that fit on one
line are written as the policy would write them (a test holds the two paths to the same
text); anything else (non-ASCII, quoting, folding) still goes through the policy. The body's
MIME headers and transfer encoding are chosen here the way `set_content` chooses them.
Building a typical email went from about 550 to about 60 microseconds.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from email import quoprimime
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any, cast

# CR, LF, NUL and the rest of what str.splitlines() breaks on (the email package refuses
# those too, but with a message that does not say which header).
_FORBIDDEN = ("\r", "\n", "\0", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_FORBIDDEN_RE = re.compile("[" + "".join(_FORBIDDEN) + "]")
# RFC 5322 field names: printable US-ASCII except the colon.
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
# Local part and domain of an address without quoting: no spaces, brackets or separators.
_ADDRESS_PART = re.compile(r'^[^\s<>()\[\],;:"\\@]+$')
# Text any header writes as it is: printable ASCII words, one space between them.
_PLAIN_TEXT = re.compile(r"^[!-~]+(?: [!-~]+)*$")
# A display name that needs neither quotes nor encoding: RFC 5322 atext words (or none).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_NAME = re.compile(rf"^(?:{_ATEXT}(?: {_ATEXT})*)?$")
_DOT_ATOM = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*$")
# Lenient on purpose (ids from other mailers are not always id@domain): one token in <>.
_MESSAGE_ID = re.compile(r"^<[^<>\s]+>$")
#: Headers build_message writes itself; `extra_headers` may not set them a second time.
MANAGED_HEADERS = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
#: Longer subjects and display names are cut to this many characters: nobody reads more,
#: and it keeps each header far under the line limit below.
MAX_SUBJECT_CHARS = 250
MAX_DISPLAY_NAME_CHARS = 100
#: RFC 5322 2.1.1: a line is at most 998 octets, CRLF not counted.
MAX_LINE_OCTETS = 998
#: What opens an RFC 2047 encoded word; every decoder in the email package starts there.
_ENCODED_WORD_START = "=?"
#: UTF-8 bytes per encoded word we write: 48 base64 characters, 60 with the =?utf-8?b? ?=
#: around them, so "Subject: " and one word stay within 78 characters.
_WORD_BYTES = 36
#: Which class the policy parses each header with (the stock registry, as WIRE_POLICY's).
_HEADER_CLASSES = HeaderRegistry()


class HeaderInjectionError(ValueError):
    """A header name or value contained a line break or NUL."""

    def __init__(self, header: str) -> None:
        shown = header if _HEADER_NAME.match(header) else repr(header)  # the message stays one line
        super().__init__(f"refused: line break or NUL in the {shown} header")
        self.header = header


def _clean(header: str, value: str | None) -> str | None:
    if value is not None and _FORBIDDEN_RE.search(value):
        raise HeaderInjectionError(header)
    return value


def _literal_words(text: str) -> list[str]:
    """`text` as RFC 2047 encoded words (UTF-8, base64) that decode to exactly `text`.

    Text that looks like an encoded word itself is written this way instead of being handed
    to the email package, which would decode it (and any CR/LF inside) on the way in. We
    chose writing it over refusing it: a lead's name or a subject with "=?" in it is odd
    but harmless data, and refusing it would fail the send over a cosmetic detail, while
    words of our own are decoded exactly once by the reader and show the text literally.
    """
    chunks: list[bytes] = []
    chunk = b""
    for char in text:  # split between characters: each word is valid UTF-8 on its own
        data = char.encode("utf-8", "replace")
        if chunk and len(chunk) + len(data) > _WORD_BYTES:
            chunks.append(chunk)
            chunk = b""
        chunk += data
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks]


def _address(header: str, address: str, name: str | None) -> Address:
    _clean(header, address)
    _clean(header, name)
    local, _, domain = address.partition("@")
    if not (_ADDRESS_PART.match(local) and _ADDRESS_PART.match(domain)):
        raise ValueError(f"{header}: {address!r} is not an address")
    if _ENCODED_WORD_START in address:
        # The email package decodes encoded words even in an address; there is no literal form.
        raise ValueError(f"{header}: {address!r}: an encoded word ('=?') cannot be part of an address")
    if not local.isascii():
        # It would need SMTPUTF8; RFC 2047 words (what the email package writes) are not allowed there.
        raise ValueError(f"{header}: {address!r}: a non-ASCII part before the @ is not supported")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")  # exämple.com -> xn--exmple-cua.com
    except UnicodeError:
        raise ValueError(f"{header}: {address!r}: the domain is not a valid host name") from None
    return Address(display_name=(name or "")[:MAX_DISPLAY_NAME_CHARS], username=local, domain=ascii_domain)


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


class CachedHeaderRegistry(HeaderRegistry):
    """The stock registry, with each header's class made once: `HeaderRegistry.__getitem__`
    builds a new class on every call (`type(...)`), a large part of what setting a header cost."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


#: How outbound mail is written: SMTP's CRLF line ends, and the headers we fold ourselves
#: kept as written. The stock policy re-folds any header line over 78 characters, and an
#: unbreakable one (a long unsubscribe URL) then came out as RFC 2047 encoded words, which
#: no mail provider reads as the List-Unsubscribe link it must be (RFC 2369, RFC 8058).
#: Structured headers (From, To, Subject) still fold themselves.
WIRE_POLICY = SMTP.clone(refold_source="none", header_factory=CachedHeaderRegistry())
#: The policy's line length (78, RFC 5322's "SHOULD").
_LINE_LENGTH: int = WIRE_POLICY.max_line_length or 78


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as it goes on the wire (and into the Maildir outbox): what
    `message.as_bytes(policy=WIRE_POLICY)` writes. The messages `build_message` makes (headers
    stored as written, a text body or a multipart/alternative of two) are written here
    directly, without the generator's parse of each part's Content-Type; anything else (a
    header set through the policy, attachments) goes through the generator."""
    out: list[str] = []
    if _write_simple(message, out):
        return "".join(out).encode("ascii", "surrogateescape")
    return message.as_bytes(policy=WIRE_POLICY)


# Line ends in a text payload, as the generator splits them (each becomes CRLF).
_LINE_ENDS = re.compile(r"\r\n|\r|\n")
# The multipart Content-Type `build_message` writes, and its boundary.
_OUR_MULTIPART = re.compile(r'^multipart/alternative; boundary="([0-9A-Za-z.]+)"$')


def _write_simple(msg: EmailMessage, out: list[str]) -> bool:
    """Append `msg` as the generator writes it (CRLF, headers as stored) to `out`; False, with
    `out` unusable, for anything but stored-as-written headers over a text payload or our
    multipart/alternative of such parts."""
    if msg.preamble is not None or msg.epilogue is not None or msg.get_unixfrom():
        return False
    content_type = None
    for name, value in msg.raw_items():
        if type(value) is not str:  # a header object the policy parsed: the generator's job
            return False
        if name.lower() == "content-type":
            content_type = value
        out.append(name + ": " + "\r\n".join(value.splitlines()) + "\r\n")
    out.append("\r\n")
    payload = cast(Any, msg)._payload  # what the generator reads (get_payload() would decode 8bit text)
    if isinstance(payload, str):
        out.append(_LINE_ENDS.sub("\r\n", payload))
        return True
    if not isinstance(payload, list) or not payload or content_type is None:
        return False
    multipart = _OUR_MULTIPART.match(content_type)
    if multipart is None:
        return False
    dash = "--" + multipart.group(1)
    out.append(dash + "\r\n")
    for number, part in enumerate(payload):
        if number:
            out.append("\r\n" + dash + "\r\n")
        if not isinstance(part, EmailMessage) or isinstance(cast(Any, part)._payload, list):
            return False
        if not _write_simple(part, out):
            return False
    out.append("\r\n" + dash + "--\r\n")
    return True


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


def _held_texts(header: Any) -> list[str]:
    """What a parsed header holds, decoded: its text, its groups' and addresses' parts, its
    MIME parameters (RFC 2231 decoded)."""
    texts = [str(header)]
    for group in getattr(header, "groups", ()):
        texts.append(group.display_name or "")
        for address in group.addresses:
            texts += [address.display_name, address.username, address.domain]
    texts += [str(v) for v in getattr(header, "params", {}).values()]
    return texts


def _set_parsed(msg: EmailMessage, name: str, value: str) -> None:
    """`msg[name] = value`, read back: parsed as the policy parses it, refused if what it holds
    (decoded) has a forbidden character, and stored folded (`set_raw`), so the generator
    writes the text checked here and the header is folded once."""
    header = WIRE_POLICY.header_factory(name, value)
    if any(_FORBIDDEN_RE.search(text) for text in _held_texts(header)):
        raise HeaderInjectionError(name)
    folded = header.fold(policy=WIRE_POLICY)
    msg.set_raw(name, folded.removeprefix(f"{name}:").removeprefix(" ").removesuffix(WIRE_POLICY.linesep))


def _fits_one_line(name: str, value: str) -> bool:
    """`name: value` fits on one line (78 characters, RFC 5322's "SHOULD"), so nothing folds it."""
    return len(name) + 2 + len(value) <= _LINE_LENGTH


def _set_text(msg: EmailMessage, name: str, text: str) -> None:
    """A header given as text (Subject, extra headers): as written when it is plain ASCII on
    one line, through the policy otherwise (RFC 2047 for non-ASCII, folding), or as
    `_literal_words` when it looks like encoded words itself."""
    if _ENCODED_WORD_START in text:
        msg.set_raw(name, _fold_list(_literal_words(text), " "))
    elif _PLAIN_TEXT.match(text) and _fits_one_line(name, text):
        msg.set_raw(name, text)  # what the policy writes for it, without parsing it first
    else:
        _set_parsed(msg, name, text)


def _set_address(msg: EmailMessage, name: str, address: Address) -> None:
    if _ENCODED_WORD_START in address.display_name:
        words = _literal_words(address.display_name)
        msg.set_raw(name, _fold_list([*words, f"<{address.addr_spec}>"], " "))
    elif (
        _PLAIN_NAME.match(address.display_name)
        and _DOT_ATOM.match(address.username)
        and _DOT_ATOM.match(address.domain)
        and _fits_one_line(name, plain := str(address))
    ):
        # ASCII words and a dot-atom address: the policy would write `str(address)` itself.
        msg.set_raw(name, plain)
    else:
        # As text, not as the Address: the header's addresses are then the ones parsed from
        # it, which are the ones it writes and `_set_parsed` reads back. The email package
        # parses str(address) for an Address as well, so the bytes are the same.
        _set_parsed(msg, name, str(address))


def _check_wire_lines(name: str, folded: bytes) -> None:
    """One header as it goes on the wire: lines that start it or continue it, ASCII, no NUL,
    none blank and none over 998 octets."""
    lines = folded.split(b"\r\n")
    if lines.pop() != b"" or not lines[0].startswith(name.encode("ascii") + b":"):
        raise HeaderInjectionError(name)
    for number, line in enumerate(lines):
        # A line that starts anew would be a header of its own; a blank one ends the block.
        if number and (line[:1] not in (b" ", b"\t") or not line.strip()):
            raise HeaderInjectionError(name)
        if b"\r" in line or b"\n" in line or b"\0" in line:
            raise HeaderInjectionError(name)
        if not line.isascii():
            raise ValueError(f"{name}: not ASCII, so it cannot be written as a header")
        if len(line) > MAX_LINE_OCTETS:
            raise ValueError(f"{name}: a header line of {len(line)} octets (at most {MAX_LINE_OCTETS} are allowed)")


def _check_header_block(msg: EmailMessage) -> None:
    """The header block as it will be written, checked line by line (see `_check_wire_lines`).

    `fold_binary` on each of `raw_items` is what BytesGenerator does with them. The headers
    still parsed here are the MIME ones `set_content` added; they are read back as well.
    """
    for name, value in msg.raw_items():
        if hasattr(value, "name") and any(_FORBIDDEN_RE.search(text) for text in _held_texts(value)):
            raise HeaderInjectionError(name)
        try:
            folded = WIRE_POLICY.fold_binary(name, value)
        except UnicodeEncodeError:
            raise ValueError(f"{name}: not ASCII, so it cannot be written as a header") from None
        _check_wire_lines(name, folded)


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
    subject = subject[:MAX_SUBJECT_CHARS]
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
        if _ENCODED_WORD_START in value and not issubclass(_HEADER_CLASSES[key], UnstructuredHeader):
            # Text is written literally (`_set_text`), like a subject; an address list, a date
            # or MIME parameters have no literal form for an encoded word (RFC 2047 section 5),
            # so there it is refused, as in an address.
            raise ValueError(f"{key}: an encoded word ('=?') is not allowed in this header")
    msg = EmailMessage(policy=WIRE_POLICY)
    # From, To and Subject go through the policy (RFC 2047 for non-ASCII, quoting) unless
    # they look like encoded words (see `_literal_words`), and are kept folded as checked
    # (`_set_parsed`). The rest are ASCII we composed and checked above: stored as written
    # (`set_raw`, folded here), since the policy would parse each into a structured header
    # only to print it back, which was most of the cost of building an email.
    _set_address(msg, "From", sender)
    _set_address(msg, "To", recipient)
    _set_text(msg, "Subject", subject)
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
        _set_text(msg, key, value)  # a structured one with "=?" was refused above
    if html:
        # The boundary comes from the Message-ID (the email package would draw it from the
        # global random module), so the same message is the same bytes.
        boundary = "alt." + "".join(c for c in message_id if c.isalnum())[:40]
        msg.set_raw("MIME-Version", "1.0")
        msg.set_raw("Content-Type", f'multipart/alternative; boundary="{boundary}"')
        parts = [
            _text_part(EmailMessage(policy=WIRE_POLICY), body, kind) for body, kind in ((text, "plain"), (html, "html"))
        ]
        msg.set_payload(cast(Any, parts))
    else:
        _text_part(msg, text, "plain")
        msg.set_raw("MIME-Version", "1.0")
    _check_header_block(msg)
    return msg


def _text_part(part: EmailMessage, text: str, subtype: str) -> EmailMessage:
    """`part` given `text` as its UTF-8 content, the way `set_content` writes it (7bit when
    ASCII in short lines, 8bit when only short lines, else the shorter of quoted-printable
    and base64), with its two headers set as written instead of parsed."""
    cte, payload = _encoded_body(text)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_raw("Content-Transfer-Encoding", cte)
    part.set_payload(payload)
    return part


def _encoded_body(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, payload) for `text` in UTF-8, lines ended by LF (the
    generator writes the policy's CRLF)."""
    lines = text.encode("utf-8").splitlines()
    body = b"\n".join(lines) + b"\n"
    limit = _LINE_LENGTH
    if all(len(line) <= limit for line in lines):
        if body.isascii():
            return "7bit", body.decode("ascii")
        return "8bit", body.decode("ascii", "surrogateescape")  # the generator writes the bytes back
    quoted = quoprimime.body_encode(body.decode("latin-1"), limit)
    if len(quoted) <= len(body) * 4 // 3 + len(body) // 57 + 4:  # about the base64 length
        return "quoted-printable", quoted
    # Base64 carries text in its canonical form, CRLF line ends (RFC 2045 6.8).
    encoded = base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode("ascii")
    return "base64", "".join(encoded[i : i + 76] + "\n" for i in range(0, len(encoded), 76))
