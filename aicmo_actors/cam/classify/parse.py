"""Reading whatever a mail server hands us: stdlib `email` with `policy.default`, made robust.

Line ends are normalised first (LF, CRLF or a lone CR), so a message saved on any system
parses the same; nothing here raises on bad input.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


def normalise_line_ends(raw: bytes) -> bytes:
    return _LINE_ENDS.sub(b"\n", raw)


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes; a message that breaks the parser still gives a (possibly empty) message."""
    try:
        msg: Any = message_from_bytes(normalise_line_ends(raw), policy=policy.default)
        return msg  # type: ignore[no-any-return]
    except Exception:  # pragma: no cover - the stdlib parser is lenient; belt and braces
        return EmailMessage(policy=policy.default)


def header(msg: Message, name: str) -> str:
    """A header as text, '' when missing or undecodable (never raises)."""
    try:
        value = msg.get(name)
    except Exception:
        value = None
        for key, raw_value in msg.raw_items() if hasattr(msg, "raw_items") else []:
            if key.lower() == name.lower():
                value = raw_value
                break
    if value is None:
        return ""
    return " ".join(str(value).split())


def part_text(part: Message) -> str:
    """The decoded text of one part: declared charset, then UTF-8, then Latin-1 (never raises)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        inner = part.get_payload()
        if isinstance(inner, str):
            return inner
        if isinstance(inner, list):
            return "\n".join(part_text(p) for p in inner if isinstance(p, Message))
        return ""
    if not isinstance(payload, bytes):
        return str(payload)
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8", "latin-1"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", errors="replace")  # pragma: no cover - latin-1 always decodes


class _TextFromHtml(HTMLParser):
    BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "blockquote", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "head"}:
            self._skip += 1
        if tag in self.BLOCK:
            self.out.append("\n")
        if tag == "blockquote":
            self.out.append("\n> ")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style", "head"} and self._skip:
            self._skip -= 1
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        return re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\n\s*\n+", "\n\n", "".join(parser.out)).strip()


def message_text(msg: Message) -> str:
    """The best human text of a message: text/plain first, else HTML made text."""
    plain: list[str] = []
    html: list[str] = []
    try:
        parts = list(msg.walk())
    except Exception:
        parts = [msg]
    for part in parts:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (header(part, "Content-Disposition") or "").lower()
        if disposition.startswith("attachment"):
            continue
        if ctype == "text/plain":
            plain.append(part_text(part))
        elif ctype == "text/html":
            html.append(html_to_text(part_text(part)))
    if plain:
        return "\n".join(plain)
    if html:
        return "\n".join(html)
    # Broken MIME (a multipart without a boundary, say): the raw body is all there is.
    payload = msg.get_payload()
    return payload if isinstance(payload, str) else ""


def body_text(raw: bytes) -> str:
    """The best human text of raw message bytes (never raises)."""
    return message_text(parse_message(raw))


_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def first_address(value: str) -> str | None:
    match = _ADDRESS.search(value or "")
    return match.group(0).lower() if match else None


_MSGID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


def message_ids(value: str) -> list[str]:
    return _MSGID.findall(value or "")
