"""PDF documents (fpdf2): the plans, the delivered pieces, the invoices and the reports share
one way of choosing their font.

fpdf2's built-in Helvetica is small and fast but prints Latin-1 only; a document with other
characters (a client's name in Polish, Greek, Japanese) embeds DejaVu Sans (Debian's
`fonts-dejavu-core`) instead, and whatever that font has no glyph for is printed as "?" rather
than failing the document. `FontPdf` is the base every module's PDF class derives from.

fpdf2 is imported by the first document drawn, not with this module: it takes about 0.2 s, and
every start of the service (which imports the modules' PDF classes) would pay it. `FontPdf`
derives from fpdf2's `FPDF` for the type checker; at run time the class of a document is made on
first use, its own class with `FPDF` as the last base (`_drawable`), so a subclass is written,
instantiated and behaves as a direct subclass of `FPDF` would.

Reading DejaVu Sans (its metrics, its character map and its glyph table, by fontTools) took
about 0.04 s per face, twice per document (0.13 s under a profiler). The faces are read once per
process (`_face`) and each document gets a copy of what does not change (widths, character map,
descriptor) with a table of glyphs of its own, untouched by reading (fpdf2 subsets that table in
place when it writes the document, so it is never shared). The bytes are the same as with
`add_font` (tested); fpdf2 attributes this relies on missing in another version fall back to
`add_font`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar, cast

if TYPE_CHECKING:
    from fpdf import FPDF as _Fpdf
    from fpdf.fonts import TTFFont
else:
    _Fpdf = object  # FPDF itself is added as a base on the first document (`_drawable`)

#: Where a Unicode font is looked for (regular, bold), first found wins.
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/local/share/fonts/DejaVuSans.ttf", "/usr/local/share/fonts/DejaVuSans-Bold.ttf"),
)
#: The family name the Unicode font is registered under in a document.
FAMILY = "docfont"


@lru_cache(maxsize=1)
def font_files() -> tuple[str, str] | None:
    """The Unicode font (regular, bold), or None: only Helvetica (Latin-1) is available."""
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file() and Path(bold).is_file():
            return regular, bold
    return None


def latin1(texts: Iterable[str]) -> bool:
    """Whether Helvetica can print every one of `texts`."""
    try:
        for text in texts:
            text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def fonts_for(texts: Iterable[str]) -> tuple[str, str] | None:
    """The fonts a document of `texts` needs: None (Helvetica) when Latin-1 holds them all,
    else the Unicode font (None too when none is installed: "?" for what Latin-1 lacks)."""
    return None if latin1(texts) else font_files()


class FontPdf(_Fpdf):
    """An A4 document in Helvetica, or in the Unicode font when `fonts` names one."""

    #: Characters `clean` keeps although no font has a glyph for them.
    KEEP = "\n\t"

    def __new__(cls, *args: object, **kwargs: object) -> Self:
        # An instance of `cls` with FPDF as its last base (see the module); __init__ then runs as usual.
        drawable: type[Self] = _drawable(cls)
        return object.__new__(drawable)  # (FPDF has no __new__ of its own)

    def __init__(self, fonts: tuple[str, str] | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        if fonts is not None:
            self.add_face("", fonts[0])
            self.add_face("B", fonts[1])
            self.family_name = FAMILY
        else:
            self.family_name = "helvetica"
        self.unicode = fonts is not None

    def add_face(self, style: str, path: str) -> None:
        """The Unicode font's `style` face from `path`, as `add_font(FAMILY, style, path)` adds it,
        from the face read once per process (see the module)."""
        try:
            from fontTools import ttLib  # type: ignore[import-untyped]
            from fpdf.fonts import SubsetMap

            face = copy.copy(_face(path, style))
            face.i = len(self.fonts) + 1
            # Its own glyph table, read when the document is written (fpdf2 subsets it in place).
            face.ttfont = ttLib.TTFont(path, recalcTimestamp=False, lazy=True)
            face.missing_glyphs = []
            face.biggest_size_pt = 0
            face.subset = SubsetMap(face)
        except (AttributeError, ImportError, TypeError):  # another fpdf2: its own way
            self.add_font(FAMILY, style, path)
            return
        self.fonts[f"{FAMILY}{style}"] = face

    def lines(self, text: str, width: float | None = None) -> list[str]:
        """`text` broken into lines no wider than `width` (default: between the margins) in the
        current font: at spaces, and at newlines; a word wider than a line is cut where it must be.

        fpdf2's own breaker (`multi_cell`, `write`) measures the line again for every character
        it adds, so its cost grows with the square of a line's length: a page of text took about
        50 ms. Here each distinct word is measured once per process in each font, size and
        spacing (`_widths`): the pieces of one client share most of their words."""
        limit = self.epw if width is None else width
        measured = _widths(self)

        def measure(piece: str) -> float:
            found = measured.get(piece)
            if found is None:
                if len(measured) >= WIDTHS_KEPT:
                    measured.clear()
                found = measured[piece] = self.get_string_width(piece)
            return found

        space = measure(" ")
        out: list[str] = []
        for source in text.split("\n"):
            line, used = "", 0.0
            for word in source.split(" "):
                size = measure(word)
                if line and used + space + size <= limit:
                    line, used = f"{line} {word}", used + space + size
                    continue
                if line:
                    out.append(line)
                while size > limit and len(word) > 1:
                    cut = _fitting(word, limit, measure)
                    out.append(word[:cut])
                    word = word[cut:]
                    size = measure(word)
                line, used = word, size
            out.append(line)
        return out

    def left_aligned(self, text: str, height: float) -> None:
        """`text` from the left margin down, left-aligned, `height` per line (`lines`), over as
        many pages as it takes."""
        for line in self.lines(text):
            self.cell(0, height, line, new_x="LMARGIN", new_y="NEXT")

    def clean(self, text: str) -> str:
        """`text` as the font can print it: a character without a glyph becomes "?"."""
        if not self.unicode:
            return text.encode("latin-1", "replace").decode("latin-1")
        # The regular face: the bold one has the same coverage.
        cmap: dict[int, str] = getattr(self.fonts[FAMILY], "cmap", {})
        return "".join(c if c in self.KEEP or ord(c) in cmap else "?" for c in text)


_Pdf = TypeVar("_Pdf", bound=FontPdf)

#: Words whose width `FontPdf.lines` keeps per font, size and spacing (emptied when full).
WIDTHS_KEPT = 20_000
_WIDTHS: dict[tuple[object, ...], dict[str, float]] = {}


def _widths(document: FontPdf) -> dict[str, float]:
    """The widths measured so far in `document`'s current font, size and spacing, shared by
    every document of the process. `get_string_width` gives the same number for the same word
    in the same face (its file), size, stretching, character spacing and unit; text shaping
    (fpdf2's HarfBuzz, which a word's neighbours could change) is never on here."""
    font = document.current_font
    key = (
        type(font).__name__,
        getattr(font, "fontkey", None),
        getattr(font, "ttffile", None),
        document.font_size_pt,
        document.font_stretching,
        document.char_spacing,
        document.k,
        bool(document.text_shaping),
    )
    found = _WIDTHS.get(key)
    if found is None:
        found = _WIDTHS[key] = {}
    return found


def _fitting(word: str, limit: float, measure: Callable[[str], float]) -> int:
    """How many of `word`'s first characters fit in `limit` (at least one)."""
    used = 0.0
    for n, character in enumerate(word):
        used += measure(character)
        if used > limit:
            return max(n, 1)
    return len(word)


@lru_cache(maxsize=8)
def _face(path: str, style: str) -> TTFFont:
    """fpdf2's reading of the font face at `path` (its `TTFFont`), once per process: the
    prototype `FontPdf.add_face` copies. Its own table of glyphs is never written."""
    from fpdf import FPDF
    from fpdf.fonts import TTFFont as Face

    reader = FPDF()
    reader.add_font(FAMILY, style, path)
    face = reader.fonts[f"{FAMILY}{style}"]
    assert isinstance(face, Face)
    return face


@cache
def _drawable(cls: type[_Pdf]) -> type[_Pdf]:
    """`cls` with fpdf2's `FPDF` as its last base (`cls` itself when it has it already): its
    methods come first, as in a class written `class X(FontPdf)` over `class FontPdf(FPDF)`."""
    from fpdf import FPDF

    if issubclass(cls, FPDF):
        return cls
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return cast("type[_Pdf]", type(cls.__name__, (cls, FPDF), namespace))


__all__ = ["FAMILY", "FONT_CANDIDATES", "FontPdf", "font_files", "fonts_for", "latin1"]
