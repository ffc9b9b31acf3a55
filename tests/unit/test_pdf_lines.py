"""`FontPdf.lines`: the line breaking the delivered pieces' PDFs use instead of fpdf2's own
(which measures a line again for every character it adds). Every line fits, no word is lost or
reordered, a word wider than a line is cut, newlines are kept; and a page of text comes out."""

from __future__ import annotations

import io
import itertools
import random

from pypdf import PdfReader

from aicmo_actors.gateways.pdf import FontPdf, font_files

WIDTH = 60.0  # mm


def _document(unicode: bool = False) -> FontPdf:
    document = FontPdf(font_files() if unicode else None)
    document.add_page()
    document.set_font(document.family_name, "", 11)
    return document


def _fits(document: FontPdf, lines: list[str]) -> bool:
    return all(document.get_string_width(line) <= WIDTH + 1e-6 for line in lines)


def test_words_fill_each_line_in_order() -> None:
    document = _document()
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    lines = document.lines(text, WIDTH)
    assert len(lines) > 1 and _fits(document, lines)
    assert " ".join(lines) == text
    # Each line is full: the next line's first word would not have fitted on it.
    for line, following in itertools.pairwise(lines):
        assert document.get_string_width(f"{line} {following.split(' ')[0]}") > WIDTH


def test_a_word_wider_than_a_line_is_cut_and_newlines_are_kept() -> None:
    document = _document()
    url = "https://example.org/" + "x" * 120
    lines = document.lines(f"see {url}\nnext line", WIDTH)
    assert _fits(document, lines) and lines[0] == "see" and lines[-1] == "next line"
    assert "".join(lines[1:-1]) == url


def test_an_empty_text_is_one_empty_line() -> None:
    assert _document().lines("", WIDTH) == [""]


def test_any_text_fits_and_keeps_its_words() -> None:
    rng = random.Random(20261206)
    document = _document()
    for _ in range(300):
        text = "".join(rng.choice("ab cdefWM\n-\u00e9") for _ in range(rng.randrange(300)))
        lines = document.lines(text, WIDTH)
        assert _fits(document, lines), text
        # Only spaces are dropped at a break: every other character is there, in order.
        assert "".join(lines).replace(" ", "") == text.replace(" ", "").replace("\n", ""), text


def test_a_long_text_runs_over_pages_and_reads_back() -> None:
    for unicode in (False, True) if font_files() is not None else (False,):
        document = _document(unicode)
        paragraph = "Zażółć gęślą jaźń, the quick brown fox jumps over the lazy dog. " * 40
        for _ in range(6):
            document.left_aligned(document.clean(paragraph), 6)
        reader = PdfReader(io.BytesIO(bytes(document.output())))
        assert len(reader.pages) >= 2
        words = " ".join(page.extract_text() for page in reader.pages).split()
        expected = document.clean(paragraph).split() * 6
        assert words == expected


def test_the_widths_kept_between_documents_are_each_fonts_own() -> None:
    """A word measured in one document, font, face or size is never taken for another's: the
    kept width of every word is the width fpdf2 gives in the document breaking the lines."""
    words = "Wide wide WWW iii lorem Zażółć mmm".split()
    setups = [(False, "", 11), (False, "B", 11), (False, "", 7)]
    if font_files() is not None:
        setups += [(True, "", 11), (True, "B", 11), (True, "", 7)]
    for unicode, style, size in setups * 2:
        document = FontPdf(font_files() if unicode else None)
        document.add_page()
        document.set_font(document.family_name, style, size)
        text = " ".join(document.clean(word) for word in words)
        for word in text.split():
            # A line exactly as wide as the word holds it alone; a hair narrower cuts it. A width
            # kept from another font, face or size gets one of the two wrong.
            width = document.get_string_width(word)
            assert document.lines(f"{word} {word}", width) == [word, word]
            assert len(document.lines(word, width * 0.999)) == 2
