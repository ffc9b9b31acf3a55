"""The Unicode font's faces, read once per process (`gateways.pdf.FontPdf.add_face`): a
document made from the copy is the same bytes as one made by fpdf2's own `add_font`, and a
document never sees what an earlier one printed (fpdf2 subsets a face's glyph table in place
when it writes a document)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aicmo_actors.gateways import pdf
from aicmo_actors.gateways.pdf import FAMILY, FontPdf, font_files

pytestmark = pytest.mark.skipif(font_files() is None, reason="no DejaVu Sans on this machine")

CREATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _document(text: str) -> bytes:
    document = FontPdf(font_files())
    document.set_creation_date(CREATED)
    document.add_page()
    document.set_font(document.family_name, "B", 14)
    document.cell(0, 8, document.clean(text.splitlines()[0]), new_x="LMARGIN", new_y="NEXT")
    document.set_font(document.family_name, "", 10)
    document.multi_cell(0, 5, document.clean(text))
    return bytes(document.output())


def _read_by_fpdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """fpdf2's own way for the faces: `add_font` reads the file for each document."""

    def add_face(self: FontPdf, style: str, path: str) -> None:
        self.add_font(FAMILY, style, path)

    monkeypatch.setattr(FontPdf, "add_face", add_face)


TEXTS = (
    "M\u00fcller & S\u00f6hne \u2013 Zo\u00eb\nA second line, \u65e5\u672c (no glyph: ?)",
    "\u0141\u00f3d\u017a \u2013 \u00dcbersicht\n\u0391\u03b8\u03ae\u03bd\u03b1 \u2192 \u0416\u0443\u043a",
    "Plain text, in the Unicode font all the same\nwith a \u20ac sign",
)


def test_documents_from_the_faces_read_once_are_the_bytes_fpdf2_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each text twice and in turn, so a document follows others that printed other glyphs.
    ours = [_document(text) for text in TEXTS + TEXTS]
    assert ours[: len(TEXTS)] == ours[len(TEXTS) :]
    _read_by_fpdf(monkeypatch)
    theirs = [_document(text) for text in TEXTS]
    assert ours[: len(TEXTS)] == theirs
    assert b"DejaVu" in theirs[0]


def test_the_face_read_once_is_never_the_one_a_document_writes() -> None:
    regular, _ = font_files() or ("", "")
    first, second = FontPdf(font_files()), FontPdf(font_files())
    read_once = pdf._face(regular, "")
    faces = [first.fonts[FAMILY], second.fonts[FAMILY]]
    assert len({id(read_once.ttfont), *(id(f.ttfont) for f in faces)}) == 3  # type: ignore[attr-defined]
    assert len({id(read_once.subset), *(id(f.subset) for f in faces)}) == 3  # type: ignore[attr-defined]
    assert [f.i for f in faces] == [1, 1] and second.fonts[FAMILY + "B"].i == 2
