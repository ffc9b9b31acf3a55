"""A draft as the checks read it: Markdown parsed once (markdown-it-py), code set aside.

- `source`: the draft's text with code (fenced, indented and inline) blanked out, same length
  and lines as given, for the checks that look at what is written (links, placeholders,
  addresses, the brand name): a code sample is not prose.
- `blocks`: what a reader reads, block by block (headings, paragraphs, list items, quotes),
  Markdown syntax gone, link texts kept, images and code left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

HEADING, PARAGRAPH = "heading", "paragraph"

_INLINE_CODE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_WORD = re.compile(r"[^\W\d_]+(?:[-'\u2019][^\W\d_]+)*", re.UNICODE)
#: URLs and e-mail addresses as they appear in prose (validated elsewhere: here only set aside).
URL_OR_EMAIL = re.compile(
    r"(?:\b[a-z][a-z0-9+.-]{1,9}:/{1,3}|\bhttps?//|\bwww\.)[^\s<>\"]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE
)


@dataclass(frozen=True)
class Block:
    kind: str  # heading or paragraph (a list item and a quote read as paragraphs)
    text: str


@dataclass(frozen=True)
class Draft:
    title: str
    source: str
    blocks: tuple[Block, ...]

    @property
    def body(self) -> str:
        """The body as a reader reads it, one block a line."""
        return "\n".join(block.text for block in self.blocks)

    @property
    def sentences(self) -> str:
        """The paragraphs (no headings) as running text, each ending a sentence: what readability is measured on."""
        return " ".join(_sentence(b.text) for b in self.blocks if b.kind == PARAGRAPH)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?:;…»«\"'\u201d)" else text + "."


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt  # on first use: ~12 ms at every start of the service

    return MarkdownIt("commonmark")


def _blank(text: str) -> str:
    """The same text with every character but line breaks replaced by a space."""
    return re.sub(r"[^\n]", " ", text)


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type == "text":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline":
            parts.append(" ")
    return " ".join("".join(parts).split())


def parse(title: str, text: str) -> Draft:
    """Read `text` (Markdown or plain text) once."""
    tokens = _parser().parse(text)
    lines = text.split("\n")
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map is not None:
            start, end = token.map
            for number in range(start, min(end, len(lines))):
                lines[number] = _blank(lines[number])
    source = _INLINE_CODE.sub(lambda m: _blank(m.group(0)), "\n".join(lines))
    blocks: list[Block] = []
    kind = PARAGRAPH
    for token in tokens:
        if token.type == "heading_open":
            kind = HEADING
        elif token.type == "heading_close":
            kind = PARAGRAPH
        elif token.type == "inline":
            content = _inline_text(token)
            if content:
                blocks.append(Block(kind, content))
    return Draft(title=" ".join(title.split()), source=source, blocks=tuple(blocks))


def words(text: str) -> list[str]:
    """The words of `text` (letters, with inner hyphens and apostrophes), URLs and addresses left out."""
    return list(_words(text))


@lru_cache(maxsize=64)
def _words(text: str) -> tuple[str, ...]:
    # The checks of one draft ask for the words of the same body, sentences and title several
    # times (length, readability, duplicates, spelling): the two regular expressions run once.
    return tuple(_WORD.findall(URL_OR_EMAIL.sub(" ", text)))


def excerpt(text: str, start: int, end: int, *, width: int = 30) -> str:
    """A short excerpt around text[start:end] (at most ~2 * width + the match, one line)."""
    left = max(0, start - width)
    right = min(len(text), end + width)
    piece = " ".join(text[left:right].split())
    if len(piece) > 2 * width + 60:
        piece = piece[: 2 * width + 60].rstrip() + "…"
    return ("…" if left > 0 else "") + piece + ("…" if right < len(text) else "")
