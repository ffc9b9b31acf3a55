"""One approved piece as the files a client receives: Markdown, HTML, PDF and Word. Pure: the
same piece gives the same bytes (the documents' dates are the piece's, handed in; the Word
file's ZIP entries carry that date too).

- HTML: a page of its own, through a sandboxed, autoescaping Jinja2 environment. The piece's
  HTML (made by production) is cleaned again with nh3 (no script, no event handler, no style
  can come through); a piece without HTML shows its text as escaped paragraphs.
- PDF: fpdf2 in DejaVu Sans when installed (any text the font has glyphs for; a character it
  lacks is printed as "?"), else the built-in Helvetica (Latin-1).
- Word: python-docx, the title as a heading and the text paragraph by paragraph (its template
  parsed once per process, see `docx`).
"""

from __future__ import annotations

import io
import struct
import threading
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import nh3
from jinja2 import Template
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
def _page() -> Template:
    """The page's template, compiled once per process (`from_string` compiles on every call;
    compiling was most of a page's time)."""
    return SandboxedEnvironment(autoescape=True).from_string(_PAGE)


def html(piece: Piece) -> bytes:
    """The piece as a page of its own (see the module)."""
    body = Markup(nh3.clean(piece.html)) if piece.html.strip() else None
    page = _page().render(
        language=piece.language or "en",
        title=texts.one_line(piece.title),
        meta=texts.meta_line(piece.type, piece.channel, piece.version),
        agency=piece.agency,
        body=body,
        paragraphs=paragraphs(piece.text),
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
    """The piece as a Word document (.docx).

    python-docx's template is parsed once per process, not once per document: its styles
    are 0.8 MB of XML, and parsing them (~17 ms), then serialising and deflating them again
    on save (~15 ms), was most of a delivery's time on the main thread. One parsed template
    is kept and emptied back to its blank body for each piece; only the two parts a piece
    changes (`word/document.xml`, `docProps/core.xml`) are serialised and deflated, and every
    other part is copied as deflated once (`_Word`). The archive holds the same parts, in the
    same order and with the same contents, as python-docx's own save (`_docx_saved`), which
    is still used for a piece that would change any other part."""
    word = _word()
    with word.lock:
        document = word.document
        body = document.element.body
        for child in list(body):
            if child.tag != _SECTION:  # the blank template's body holds its section properties only
                body.remove(child)
        _fill(document, piece, word.heading)
        parts = tuple(document.part.package.iter_parts())
        if tuple((part.partname, len(part.rels)) for part in parts) != word.shape:
            # The piece added a part or a relationship (nothing does today): the kept template
            # is no longer blank; parse it again next time, and save this one whole.
            _word.cache_clear()
            return _docx_saved(piece)
        blobs = {str(part.partname).lstrip("/"): part.blob for part in parts if part.partname in _WORD_CHANGED}
    entries = [entry if entry.data is not None else _Entry.of(entry.name, blobs[entry.name]) for entry in word.entries]
    return _zip(entries, piece.created)


def _fill(document: Any, piece: Piece, heading: str | None = None) -> None:
    """`piece` written into `document`. `heading`: the id of the "Heading 1" style, when the
    caller looked it up once (python-docx's `add_heading` searches the template's 0.8 MB of
    styles by name, then for the default style, for every heading)."""
    properties = document.core_properties
    properties.title = _xml_safe(texts.one_line(piece.title))[:250]
    properties.author = _xml_safe(piece.agency) or "AICMO"
    properties.created = properties.modified = piece.created.replace(tzinfo=None)
    properties.last_modified_by = _xml_safe(piece.agency) or "AICMO"
    properties.revision = 1
    title = _xml_safe(texts.one_line(piece.title))
    if heading is None:
        document.add_heading(title, level=1)
    else:
        # What `add_heading(title, 1)` makes: a paragraph of the title, its style set by id.
        document.add_paragraph(title)._p.style = heading
    document.add_paragraph(texts.meta_line(piece.type, piece.channel, piece.version))
    for paragraph in paragraphs(piece.text):
        document.add_paragraph(_xml_safe(paragraph))


def _docx_saved(piece: Piece) -> bytes:
    """The piece through python-docx alone: a new document from its template, saved whole."""
    from docx import Document  # on first use: python-docx takes ~20 ms to import, at every start of the service

    document = Document()
    _fill(document, piece)
    out = io.BytesIO()
    document.save(out)
    return _fixed_zip_dates(out.getvalue(), piece.created)


#: The parts a piece writes: everything else in the archive is the template's, unchanged.
_WORD_CHANGED = frozenset({"/word/document.xml", "/docProps/core.xml"})
_SECTION = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}sectPr"


@dataclass(frozen=True)
class _Entry:
    """One file of a ZIP archive: its name, its bytes deflated (None: written per piece), their
    CRC-32 and size."""

    name: str
    data: bytes | None
    crc: int = 0
    size: int = 0

    @classmethod
    def of(cls, name: str, raw: bytes) -> _Entry:
        # Raw deflate at zlib's default level, as zipfile's ZIP_DEFLATED writes it.
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        return cls(name, packer.compress(raw) + packer.flush(), zlib.crc32(raw), len(raw))


@dataclass(frozen=True)
class _Word:
    """python-docx's blank template, parsed once: the document pieces are written into, every
    entry of its archive (the parts no piece changes already deflated), and what it is made of
    (each part and its number of relationships), to notice a piece that changed more."""

    document: Any
    entries: tuple[_Entry, ...]
    shape: tuple[tuple[str, int], ...]
    heading: str  # the id of its "Heading 1" style
    lock: threading.Lock = field(default_factory=threading.Lock)


@lru_cache(maxsize=1)
def _word() -> _Word:
    from docx import Document

    document = Document()
    out = io.BytesIO()
    document.save(out)
    archive = zipfile.ZipFile(out)
    changed = {name.lstrip("/") for name in _WORD_CHANGED}
    entries = tuple(
        _Entry(info.filename, None) if info.filename in changed else _Entry.of(info.filename, archive.read(info))
        for info in archive.infolist()
    )
    if {e.name for e in entries if e.data is None} != changed:
        raise RuntimeError("python-docx's template does not hold the parts a piece writes")
    shape = tuple((part.partname, len(part.rels)) for part in document.part.package.iter_parts())
    return _Word(document, entries, shape, document.styles["Heading 1"].style_id)


def _zip(entries: Sequence[_Entry], when: datetime) -> bytes:
    """A ZIP archive of entries already deflated, each dated `when`. zipfile deflates whatever
    it writes and has no way to take deflated bytes, hence these few lines of the format
    (PKWARE's APPNOTE, 4.3: local file headers, the central directory, its end record; no
    ZIP64, which a Word file of a piece never needs; a test reads the result back with zipfile)."""
    dos_time, dos_date = _dos(when)
    body = bytearray()
    central = bytearray()
    for entry in entries:
        name = entry.name.encode("ascii")
        data = entry.data or b""
        offset = len(body)
        fields = (dos_time, dos_date, entry.crc, len(data), entry.size, len(name))
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, *fields, 0) + name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, *fields, 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return bytes(body + central + end)


def _stamp(when: datetime) -> tuple[int, int, int, int, int, int]:
    """`when` as a ZIP entry's date and time fields (zipfile's `date_time`; from 1980)."""
    return (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)


def _dos(when: datetime) -> tuple[int, int]:
    """`when` as a ZIP entry's MS-DOS time and date (2-second steps, from 1980)."""
    stamp = _stamp(when)
    return (stamp[3] << 11) | (stamp[4] << 5) | (stamp[5] // 2), ((stamp[0] - 1980) << 9) | (stamp[1] << 5) | stamp[2]


def _xml_safe(text: str) -> str:
    """XML 1.0 refuses most control characters: they are dropped."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


def _fixed_zip_dates(data: bytes, when: datetime) -> bytes:
    """The same ZIP with every entry dated `when` (zipfile dates entries with the wall clock).

    The date is written over in place, in each entry's local header and in its central
    directory record (the checksums cover the contents only): the compressed data is kept as
    it is, not inflated and deflated again, which took a third of the Word file's time. A ZIP
    this does not recognise (ZIP64, a multi-part archive) is written again entry by entry."""
    stamp = _stamp(when)
    dated = struct.pack("<HH", *_dos(when))
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
