"""One approved piece as the files a client receives: Markdown, HTML, PDF and Word. Pure: the
same piece gives the same bytes (the documents' dates are the piece's, handed in; the Word
file's ZIP entries carry that date too).

- HTML: a page of its own, through a sandboxed, autoescaping Jinja2 environment. The piece's
  HTML (made by production) is cleaned again with nh3 (no script, no event handler, no style
  can come through); a piece without HTML shows its text as escaped paragraphs.
- PDF: fpdf2 in DejaVu Sans when installed (any text the font has glyphs for; a character it
  lacks is printed as "?"), else the built-in Helvetica (Latin-1).
- Word: python-docx, the title as a heading and the text paragraph by paragraph.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

import nh3
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from aicmo_actors.delivery import texts
from aicmo_actors.gateways.pdf import FontPdf, font_files

_PAGE = """<!DOCTYPE html>
<html lang="{{ language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em;line-height:1.5}
.meta{color:#555;font-size:.9em}</style>
</head>
<body>
<article>
<h1>{{ title }}</h1>
<p class="meta">{{ meta }}{% if agency %} - {{ agency }}{% endif %}</p>
{% if body %}{{ body }}{% else %}{% for paragraph in paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}{% endif %}
</article>
</body>
</html>
"""


@dataclass(frozen=True)
class Piece:
    """What is delivered: one approved version of one item."""

    title: str
    type: str
    channel: str
    version: int
    text: str
    html: str
    company: str
    agency: str
    language: str
    created: datetime


def paragraphs(text: str) -> list[str]:
    """The text's paragraphs (blank lines between them), each on one line."""
    blocks = [" ".join(block.split()) for block in text.replace("\r\n", "\n").split("\n\n")]
    return [b for b in blocks if b]


def markdown(piece: Piece) -> bytes:
    meta = texts.meta_line(piece.type, piece.channel, piece.version)
    return f"# {texts.one_line(piece.title)}\n\n_{meta}_\n\n{piece.text.strip()}\n".encode()


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=True)


def html(piece: Piece) -> bytes:
    """The piece as a page of its own (see the module)."""
    body = Markup(nh3.clean(piece.html)) if piece.html.strip() else None
    page = (
        _environment()
        .from_string(_PAGE)
        .render(
            language=piece.language or "en",
            title=texts.one_line(piece.title),
            meta=texts.meta_line(piece.type, piece.channel, piece.version),
            agency=piece.agency,
            body=body,
            paragraphs=paragraphs(piece.text),
        )
    )
    return page.encode()


#: Typographic characters outside Latin-1, as the built-in font prints them.
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def _latin1(piece: Piece) -> Piece | None:
    """The piece in Latin-1 (typographic quotes and dashes made plain), or None when it has
    characters only a Unicode font prints."""
    fields = (piece.title, piece.text, piece.agency or "", piece.type, piece.channel)
    plain = [f.translate(_PLAIN).replace("\u2026", "...") for f in fields]
    try:
        for text in plain:
            text.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return replace(piece, title=plain[0], text=plain[1], agency=plain[2] or piece.agency)


def pdf(piece: Piece, *, compress: bool = True) -> bytes:
    """The piece as an A4 PDF: title, what it is, the text. A text Latin-1 can hold is set in
    the PDF's built-in Helvetica (nothing embedded: a small file, made in a few milliseconds);
    any other in DejaVu Sans, embedded (loading a TrueType font costs ~0.1 s per document)."""
    plain = _latin1(piece)
    document = FontPdf(font_files() if plain is None else None)
    piece = plain or piece
    document.set_compression(compress)
    document.set_creation_date(piece.created)
    document.set_title(document.clean(texts.one_line(piece.title)))
    document.set_author(document.clean(piece.agency or "AICMO"))
    document.set_creator("AICMO delivery")
    document.set_auto_page_break(True, margin=16)
    document.set_margins(16, 16, 16)
    document.add_page()
    document.set_font(document.family_name, "B", 16)
    document.left_aligned(document.clean(texts.one_line(piece.title)), 8)
    document.set_font(document.family_name, "", 9)
    document.set_text_color(90)
    meta = texts.meta_line(piece.type, piece.channel, piece.version)
    document.left_aligned(document.clean(meta), 5)
    document.set_text_color(0)
    document.ln(3)
    document.set_font(document.family_name, "", 11)
    # Left-aligned, broken into lines by `FontPdf.lines` (fpdf2's justified `multi_cell` took
    # 50 ms a page, most of a delivery's time on the main thread).
    for paragraph in paragraphs(piece.text) or [""]:
        document.left_aligned(document.clean(paragraph), 6)
        document.ln(2)
    return bytes(document.output())


def docx(piece: Piece) -> bytes:
    """The piece as a Word document (.docx)."""
    from docx import Document  # on first use: python-docx takes ~20 ms to import, at every start of the service

    document = Document()
    properties = document.core_properties
    properties.title = _xml_safe(texts.one_line(piece.title))[:250]
    properties.author = _xml_safe(piece.agency) or "AICMO"
    properties.created = properties.modified = piece.created.replace(tzinfo=None)
    properties.last_modified_by = _xml_safe(piece.agency) or "AICMO"
    properties.revision = 1
    document.add_heading(_xml_safe(texts.one_line(piece.title)), level=1)
    document.add_paragraph(texts.meta_line(piece.type, piece.channel, piece.version))
    for paragraph in paragraphs(piece.text):
        document.add_paragraph(_xml_safe(paragraph))
    out = io.BytesIO()
    document.save(out)
    return _fixed_zip_dates(out.getvalue(), piece.created)


def _xml_safe(text: str) -> str:
    """XML 1.0 refuses most control characters: they are dropped."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


def _fixed_zip_dates(data: bytes, when: datetime) -> bytes:
    """The same ZIP with every entry dated `when` (zipfile dates entries with the wall clock).

    The date is written over in place, in each entry's local header and in its central
    directory record (the checksums cover the contents only): the compressed data is kept as
    it is, not inflated and deflated again, which took a third of the Word file's time. A ZIP
    this does not recognise (ZIP64, a multi-part archive) is written again entry by entry."""
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    dos_time = (stamp[3] << 11) | (stamp[4] << 5) | (stamp[5] // 2)
    dos_date = ((stamp[0] - 1980) << 9) | (stamp[1] << 5) | stamp[2]
    dated = struct.pack("<HH", dos_time, dos_date)
    source = zipfile.ZipFile(io.BytesIO(data))
    out = bytearray(data)
    central = getattr(source, "start_dir", None)
    if not isinstance(central, int):
        return _rezipped(source, stamp)
    entries = source.infolist()
    for info in entries:
        at = info.header_offset
        if out[at : at + 4] != b"PK\x03\x04":
            return _rezipped(source, stamp)
        out[at + 10 : at + 14] = dated  # local header: time, date
    at = central
    for _ in entries:
        if out[at : at + 4] != b"PK\x01\x02":
            return _rezipped(source, stamp)
        out[at + 12 : at + 16] = dated  # central directory record: time, date
        name, extra, comment = struct.unpack("<HHH", out[at + 28 : at + 34])
        at += 46 + name + extra + comment
    return bytes(out)


def _rezipped(source: zipfile.ZipFile, stamp: tuple[int, int, int, int, int, int]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def all_files(piece: Piece) -> dict[str, bytes]:
    """Every kind, by extension (`names.EXTENSIONS`)."""
    return dict(_all_files(piece))


@lru_cache(maxsize=8)
def _all_files(piece: Piece) -> tuple[tuple[str, bytes], ...]:
    # Pure, and a retried export or a re-sent piece asks again for the same bytes: the last
    # few are kept (a PDF takes tens of milliseconds to draw).
    return (("md", markdown(piece)), ("html", html(piece)), ("pdf", pdf(piece)), ("docx", docx(piece)))
