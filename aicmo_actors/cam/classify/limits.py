"""How much of one message the classifier reads: MIME parts, nesting and decoded text.

The stdlib parser builds every part of a message, recursing into each nested one, before
anything can look at it: tens of thousands of tiny parts cost seconds and hundreds of
megabytes, a thousand levels of nesting end in a RecursionError. So the raw bytes are
scanned first for the structure the stdlib parser will find (its header syntax, its
boundary rules, read with its own Content-Type parsing) and cut at the line where a limit
is passed. What comes before, the headers and the first parts, is parsed and classified,
and the classification says why the rest was not read.

Counting is cheap for an ordinary message: unless a quick count of delimiter-like lines,
boundaries and embedded messages says a limit could be near, nothing is scanned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage

from aicmo_actors.cam.classify.parse import POLICY

__all__ = ["Bounded", "ParseLimits", "bound"]


@dataclass(frozen=True)
class ParseLimits:
    """The most the classifier reads of one message; past a limit it classifies what it read."""

    #: MIME entities below the top one (each part, each embedded message).
    max_parts: int = 200
    #: Levels of multiparts and embedded messages, one inside the other.
    max_depth: int = 20
    #: Bytes of part bodies, as decoded (base64 counts three quarters of its size).
    max_decoded_bytes: int = 25_000_000

    def __post_init__(self) -> None:
        for name in ("max_parts", "max_depth", "max_decoded_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"ParseLimits.{name} must be at least 1, not {getattr(self, name)}")


@dataclass(frozen=True)
class Bounded:
    """The raw message to parse: all of it, or its beginning and why it was cut."""

    raw: bytes
    limited: str | None = None


#: A header line or its continuation, as the stdlib parser tells them (feedparser.headerRE).
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")
#: Content-Type values longer than this are cut, as `POLICY` cuts them for the parser.
_MAX_VALUE = 16384


@dataclass
class _Frame:
    """An open multipart (its boundary) or embedded message (no boundary)."""

    boundary: bytes | None
    digest: bool = False  # multipart/digest: a part without Content-Type is a message/rfc822


@dataclass(frozen=True)
class _Entity:
    kind: str  # "multipart", "message" or "leaf"
    boundary: bytes | None = None
    digest: bool = False
    base64: bool = False


def _entity(content_type: bytes | None, encoding: bytes | None, default_message: bool) -> _Entity:
    """What the stdlib parser makes of a part with these headers (its own Content-Type parsing)."""
    probe = EmailMessage(policy=POLICY)
    if default_message:
        probe.set_default_type("message/rfc822")
    if content_type is not None:
        probe.set_raw("Content-Type", content_type[:_MAX_VALUE].decode("ascii", "surrogateescape"))
    base64 = (encoding or b"").strip().lower() == b"base64"
    try:
        ctype = probe.get_content_type()
        if ctype.startswith("multipart/"):
            boundary = probe.get_boundary()
            if boundary is None:
                return _Entity("leaf", base64=base64)
            return _Entity(
                "multipart",
                boundary.encode("ascii", "surrogateescape"),
                ctype == "multipart/digest",
            )
    except Exception:  # a header the stdlib cannot read is read as text, as the parser does
        return _Entity("leaf", base64=base64)
    if ctype.startswith("message/") and ctype != "message/delivery-status":
        return _Entity("message")
    return _Entity("leaf", base64=base64)


def _plainly_within(raw: bytes, limits: ParseLimits) -> bool:
    """True when simple counts prove every limit holds (the case of nearly every message)."""
    if len(raw) > limits.max_decoded_bytes:
        return False
    lower = raw.lower()
    if b"digest" in lower:
        return False  # parts of a digest are messages without saying so
    delimiters = raw.count(b"\n--") + raw.startswith(b"--")
    messages = lower.count(b"message/")
    return delimiters + messages <= limits.max_parts and lower.count(b"boundary") + messages <= limits.max_depth


class _Scan:
    """One pass over the raw message, split as the stdlib parser will split it, up to the
    first limit passed. Every step moves forward; a body is skipped with `bytes.find`."""

    def __init__(self, raw: bytes, limits: ParseLimits) -> None:
        self.raw = raw
        self.limits = limits
        self.frames: list[_Frame] = []
        self.parts = 0
        self.decoded = 0.0

    def _line_end(self, start: int) -> int:
        end = self.raw.find(b"\n", start)
        return len(self.raw) if end < 0 else end

    def _delimiter(self, start: int, end: int) -> tuple[int, bool] | None:
        """(frame index, closing) when the line is a delimiter of an open multipart, the
        innermost first (RFC 2046 5.1.2: an outer boundary ends every inner part)."""
        line = self.raw[start:end]
        if not line.startswith(b"--"):
            return None
        rest = line[2:].rstrip(b" \t")
        for index in range(len(self.frames) - 1, -1, -1):
            boundary = self.frames[index].boundary
            if boundary is None:
                continue
            if rest == boundary:
                return index, False
            if rest == boundary + b"--":
                return index, True
        return None

    def _next_delimiter(self, pos: int) -> tuple[int, int, int, bool] | None:
        """(line start, line end, frame index, closing) of the next delimiter from `pos` (a line start)."""
        if all(frame.boundary is None for frame in self.frames):
            return None
        raw = self.raw
        start = pos if raw.startswith(b"--", pos) else -1
        while True:
            if start < 0:
                newline = raw.find(b"\n--", pos)
                if newline < 0:
                    return None
                start = newline + 1
            end = self._line_end(start)
            found = self._delimiter(start, end)
            if found is not None:
                return start, end, *found
            pos, start = end, -1

    def _headers(self, start: int) -> tuple[int, bytes | None, bytes | None]:
        """Read a header block: (where its body starts, Content-Type, Content-Transfer-Encoding)."""
        fields: dict[bytes, list[bytes]] = {}
        current: list[bytes] | None = None
        kept = 0  # bytes of the current field kept so far
        pos, size = start, len(self.raw)
        while pos < size:
            end = self._line_end(pos)
            if self.frames and self._delimiter(pos, end) is not None:
                break  # an enclosing boundary ends the part, headers and all
            line = self.raw[pos:end]
            if not _HEADER_LINE.match(line):
                if not line:
                    pos = end + 1  # the blank line between the header and the body
                break
            if line[:1] in (b" ", b"\t"):
                if current is not None and kept < _MAX_VALUE:
                    current.append(line)
                    kept += len(line)
            else:
                name, _, value = line.partition(b":")
                key = name.lower()
                current = None if key in fields else [value.lstrip(b" \t")]  # the first one counts
                if current is not None:
                    fields[key] = current
                    kept = len(current[0])
            pos = end + 1
        content_type, encoding = (
            fields.get(b"content-type"),
            fields.get(b"content-transfer-encoding"),
        )
        return (
            min(pos, size),
            b"\n".join(content_type) if content_type is not None else None,
            b"\n".join(encoding) if encoding is not None else None,
        )

    def run(self) -> Bounded:
        raw, limits, size = self.raw, self.limits, len(self.raw)
        pos = 0  # where the next header block or body starts
        in_headers = True
        entity_cut = 0  # where to cut to leave out the entity whose header block starts at `pos`
        default_message = False
        leaf = base64 = False
        while True:
            if in_headers:
                body, content_type, encoding = self._headers(pos)
                entity = _entity(content_type, encoding, default_message)
                if entity.kind != "leaf":
                    if len(self.frames) >= limits.max_depth:
                        return Bounded(raw[:entity_cut], f"MIME nesting deeper than {limits.max_depth}")
                    self.frames.append(_Frame(entity.boundary, entity.digest))
                if entity.kind == "message":  # the embedded message's header block follows
                    self.parts += 1
                    if self.parts > limits.max_parts:
                        return Bounded(raw[:body], f"more than {limits.max_parts} MIME parts")
                    pos = entity_cut = body
                    default_message = False
                    continue
                pos, in_headers = body, False
                leaf, base64 = entity.kind == "leaf", entity.base64
                continue
            # A body: a leaf's, a multipart's preamble or epilogue, up to the next delimiter.
            found = self._next_delimiter(pos)
            body_end = found[0] if found is not None else size
            if leaf:
                factor = 0.75 if base64 else 1.0
                if self.decoded + (body_end - pos) * factor > limits.max_decoded_bytes:
                    allowed = pos + int((limits.max_decoded_bytes - self.decoded) / factor)
                    cut = max(raw.rfind(b"\n", pos, allowed + 1), pos)
                    return Bounded(raw[:cut], f"decoded text larger than {_size(limits.max_decoded_bytes)}")
                self.decoded += (body_end - pos) * factor
            if found is None:
                return Bounded(raw)
            line_start, line_end, index, closing = found
            del self.frames[index + 1 :]  # the delimiter ends every part inside its multipart
            pos = line_end + 1
            if closing:
                self.frames.pop()
                leaf = False  # the epilogue, up to a delimiter of an enclosing multipart
                continue
            self.parts += 1
            if self.parts > limits.max_parts:
                return Bounded(raw[:line_start], f"more than {limits.max_parts} MIME parts")
            in_headers, entity_cut, default_message = True, line_start, self.frames[index].digest


def _size(count: int) -> str:
    """25000000 -> '25 MB'; 1500 -> '1500 bytes'."""
    return f"{count / 1_000_000:g} MB" if count >= 1_000_000 else f"{count} bytes"


def bound(raw: bytes, limits: ParseLimits) -> Bounded:
    """The part of `raw` (line ends already LF) the stdlib parser may be given under `limits`."""
    if _plainly_within(raw, limits):
        return Bounded(raw)
    return _Scan(raw, limits).run()
