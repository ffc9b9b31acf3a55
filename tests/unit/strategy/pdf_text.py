"""The text of a PDF, to check that a plan's PDF says what it should.

With `pypdf` installed it does the reading. Without it, a small reader of what fpdf2 writes
when compression is off (`render_pdf(..., compress=False)`): the text operators (Tj, TJ) of
the content streams, each string decoded through its font's ToUnicode map (the two-byte glyph
codes of an embedded TrueType font) or as Latin-1 (a built-in font). It reads no other PDF.
"""

from __future__ import annotations

import io
import re

_OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.DOTALL)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
_FONT_REF = re.compile(rb"/(F\d+) (\d+) 0 R")
_TO_UNICODE = re.compile(rb"/ToUnicode (\d+) 0 R")
_BFCHAR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def pdf_text(data: bytes) -> str:
    try:
        from pypdf import PdfReader  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return uncompressed_text(data)
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def _objects(data: bytes) -> dict[int, bytes]:
    return {int(m.group(1)): m.group(2) for m in _OBJECT.finditer(data)}


def _cmap(stream: bytes) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for section in re.findall(rb"beginbfchar(.*?)endbfchar", stream, re.DOTALL):
        for code, text in _BFCHAR.findall(section):
            mapping[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
    return mapping


def _string(content: bytes, at: int) -> tuple[bytes, int]:
    """The literal string starting at `content[at] == b"("`, and the index after it."""
    out = bytearray()
    depth = 0
    i = at
    while i < len(content):
        c = content[i : i + 1]
        if c == b"\\":
            nxt = content[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out += _ESCAPES[nxt]
                i += 2
            elif nxt.isdigit():
                digits = re.match(rb"[0-7]{1,3}", content[i + 1 : i + 4])
                assert digits is not None
                out.append(int(digits.group(0), 8))
                i += 1 + len(digits.group(0))
            else:
                out += nxt
                i += 2
            continue
        if c == b"(":
            depth += 1
            if depth > 1:
                out += c
        elif c == b")":
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
            out += c
        else:
            out += c
        i += 1
    raise ValueError("unterminated string")


def uncompressed_text(data: bytes) -> str:
    """The text of a PDF fpdf2 wrote without compression (see the module)."""
    objects = _objects(data)
    fonts: dict[bytes, dict[int, str] | None] = {}
    for name, number in _FONT_REF.findall(data):
        body = objects.get(int(number), b"")
        found = _TO_UNICODE.search(body)
        fonts[name] = _cmap(objects[int(found.group(1))]) if found else None
    lines: list[str] = []
    for body in objects.values():
        stream = _STREAM.search(body)
        if stream is None or b"/Filter" in body[: stream.start()]:
            continue
        content = stream.group(1)
        if b"BT" not in content:
            continue
        font: dict[int, str] | None = None
        line: list[str] = []
        i = 0
        pending: list[bytes] = []
        while i < len(content):
            c = content[i : i + 1]
            if c == b"(":
                text, i = _string(content, i)
                pending.append(text)
                continue
            if c == b"/":
                name = re.match(rb"/(\w+)", content[i:])
                assert name is not None
                if name.group(1) in fonts:
                    font = fonts[name.group(1)]
                i += len(name.group(0))
                continue
            op = re.match(rb"(Tj|TJ|ET)\b", content[i:])
            if op is not None:
                if op.group(1) == b"ET":
                    if line:
                        lines.append("".join(line))
                        line = []
                else:
                    for raw in pending:
                        if font is None:
                            line.append(raw.decode("latin-1"))
                        else:
                            codes = [int.from_bytes(raw[k : k + 2], "big") for k in range(0, len(raw) - 1, 2)]
                            line.append("".join(font.get(code, "\ufffd") for code in codes))
                pending = []
                i += len(op.group(0))
                continue
            i += 1
    return "\n".join(lines)
