"""Pure text work on drafts: sentences, words to avoid, length limits, a client's comment,
QC findings, and the HTML of a draft.

A draft is Markdown: paragraphs separated by blank lines, "## " headings, "- " bullets.
Words are counted as QC counts them (runs of letters and digits, with ' and -); a draft is
fitted a little inside its limits so a count that differs by a word or two still passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

_WORD = re.compile(r"[^\W_](?:[\w'\u2019-]*[^\W_])?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"\u201c(])")
_SPLIT_LIST = re.compile(r"[\n,;]+")
_INFLECTIONS = r"(?:s|es|ed|d|ing|er|ers|est|ly|e|en|em|n|x|mente)?"  # as QC reads them
_QUOTES = "\"\u201c\u201d'\u2018\u2019"
_QUOTED = re.compile(f"[{_QUOTES}]([^{_QUOTES}]{{2,60}})[{_QUOTES}]")
_NEGATIVE = re.compile(r"\b(?:not|don'?t|never|avoid|remove|drop|without|no|stop|delete|cut)\b", re.IGNORECASE)
_AVOID_UNQUOTED = re.compile(
    r"\b(?:avoid|remove|drop|delete|cut|stop using|do not use|don'?t use|never use|no more)\s+"
    r"(?:the\s+)?(?:word|words|phrase|term)?\s*([A-Za-z][\w' -]{1,40}?)(?=[.,;!?]|\s+and\s|$)",
    re.IGNORECASE,
)
_MORE_ABOUT = re.compile(
    r"\b(?:more about|more on|write about|mention|add(?: something)? about|talk about|focus on)\s+"
    r"([A-Za-z][\w'\u2019 -]{2,80}?)(?=[.,;!?]|\s+and\s|$)",
    re.IGNORECASE,
)


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def phrases(text: str | None) -> tuple[str, ...]:
    """The comma-, semicolon- or line-separated phrases of a brief's answer, tidied."""
    if not text:
        return ()
    out: list[str] = []
    for part in _SPLIT_LIST.split(text):
        phrase = part.strip(" \t-*•.")
        if phrase and phrase.lower() not in {p.lower() for p in out}:
            out.append(phrase)
    return tuple(out)


def avoid_pattern(avoid: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({a.strip().lower() for a in avoid if a.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(re.escape(w) for w in word.split()) for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives}){_INFLECTIONS}(?!\w)", re.IGNORECASE)


def contains_any(text: str, avoid: Iterable[str]) -> bool:
    pattern = avoid_pattern(avoid)
    return bool(pattern and pattern.search(text))


# -- blocks and sentences -----------------------------------------------------------------------------------------


def blocks(text: str) -> list[str]:
    return [b.strip() for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]


def join(parts: Iterable[str]) -> str:
    return "\n\n".join(p for p in parts if p.strip()) + "\n"


def _is_prose(block: str) -> bool:
    return not block.startswith(("#", "- ", "* ", "|", ">"))


def sentences(block: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(block) if s.strip()]


def drop_matching(text: str, pattern: re.Pattern[str] | None) -> str:
    """`text` without the sentences, bullets and headings `pattern` finds (blocks left empty go)."""
    if pattern is None:
        return text
    out: list[str] = []
    for block in blocks(text):
        if not _is_prose(block):
            lines = [line for line in block.splitlines() if not pattern.search(line)]
            # A heading whose section text goes too is dropped by the empty check below.
            if lines:
                out.append("\n".join(lines))
            continue
        kept = [s for s in sentences(block) if not pattern.search(s)]
        if kept:
            out.append(" ".join(kept))
    # No heading may end the text or stand directly before another heading.
    tidy: list[str] = []
    for block in out:
        if tidy and tidy[-1].startswith("#") and block.startswith("#"):
            tidy.pop()
        tidy.append(block)
    while tidy and tidy[-1].startswith("#"):
        tidy.pop()
    return join(tidy)


# -- limits -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    min_words: int | None = None
    max_words: int | None = None
    max_chars: int | None = None

    @property
    def low(self) -> int:
        """Words to aim at least for (a little above the minimum)."""
        return 0 if self.min_words is None else self.min_words + max(3, self.min_words // 25)

    @property
    def high_words(self) -> int | None:
        return None if self.max_words is None else max(1, self.max_words - max(3, self.max_words // 25))

    @property
    def high_chars(self) -> int | None:
        return None if self.max_chars is None else max(20, self.max_chars - max(5, self.max_chars // 50))

    def too_long(self, text: str) -> bool:
        hw, hc = self.high_words, self.high_chars
        return (hw is not None and count_words(text) > hw) or (hc is not None and len(text.strip()) > hc)


def fit(text: str, limits: Limits, filler: Sequence[str] = ()) -> str:
    """`text` within `limits`: filler sentences added (as paragraphs before the last one) while
    it is short; sentences taken from the end of the longest inner paragraph while it is long;
    as a last resort, words cut from the end (ending in a full stop)."""
    parts = blocks(text)
    pending = [f for f in filler if f not in text]
    while count_words(join(parts)) < limits.low and pending:
        paragraph: list[str] = []
        while pending and len(paragraph) < 4:
            paragraph.append(pending.pop(0))
        candidate = [*parts[:-1], " ".join(paragraph), *parts[-1:]] if len(parts) > 1 else [*parts, " ".join(paragraph)]
        if limits.too_long(join(candidate)):
            break
        parts = candidate
    while limits.too_long(join(parts)):
        if not _trim_one(parts):
            break
    out = join(parts)
    if limits.too_long(out):
        out = _cut_words(out, limits)
    return out


def _trim_one(parts: list[str]) -> bool:
    """Take one sentence (or a whole section) off; False when nothing more can go."""
    inner = range(1, len(parts) - 1) if len(parts) > 2 else range(len(parts))
    candidates = [i for i in inner if _is_prose(parts[i])]
    if not candidates:
        return False
    i = max(candidates, key=lambda j: (len(sentences(parts[j])), len(parts[j]), j))
    said = sentences(parts[i])
    if len(said) > 1:
        parts[i] = " ".join(said[:-1])
        return True
    if len(parts) > 1:
        del parts[i]
        if i > 0 and parts[i - 1].startswith("#") and (i == len(parts) or parts[i].startswith("#")):
            del parts[i - 1]
        return True
    return False


def _cut_words(text: str, limits: Limits) -> str:
    words = text.split()
    while words and limits.too_long(" ".join(words) + "."):
        words.pop()
    cut = " ".join(words).rstrip(",;:-")
    return (cut if cut.endswith((".", "!", "?")) else cut + ".") + "\n"


# -- a client's comment, QC findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """What a client's comment asks for: words to drop, subjects to add."""

    drop: tuple[str, ...]
    add: tuple[str, ...]


def read_comment(comment: str) -> Asked:
    drop: list[str] = []
    if _NEGATIVE.search(comment):
        drop.extend(m.strip() for m in _QUOTED.findall(comment))
    drop.extend(m.strip() for m in _AVOID_UNQUOTED.findall(comment) if not _QUOTED.search(m))
    add = [m.strip().rstrip("'\u2019") for m in _MORE_ABOUT.findall(comment)]
    add = [a for a in add if not any(a.lower() in d.lower() or d.lower() in a.lower() for d in drop)]
    unique_drop = tuple(dict.fromkeys(d for d in drop if d and len(d) <= 60))
    return Asked(unique_drop, tuple(dict.fromkeys(add)))


#: Findings whose excerpt marks a sentence that is better dropped than kept.
_DROP_CHECKS = {
    "forbidden_word",
    "words_to_avoid",
    "avoid",
    "placeholder",
    "spelling",
    "link",
    "links",
    "email",
    "phone",
    "contact",
    "duplicate",
    "near_duplicate",
}


def fix_findings(text: str, findings: Iterable[dict[str, str]], company: str) -> str:
    """A retake: the brand spelled as in the brief, sentences with a finding's excerpt dropped."""
    drop: list[str] = []
    for f in findings:
        excerpt = (f.get("excerpt") or "").strip()
        check = f.get("check", "")
        if check in ("brand", "brand_name", "company_name") and excerpt and company:
            text = re.sub(re.escape(excerpt), company, text, flags=re.IGNORECASE)
        elif excerpt and (check in _DROP_CHECKS or check.startswith("forbidden")) and len(excerpt) <= 200:
            drop.append(excerpt)
    if drop:
        pattern = re.compile("|".join(re.escape(d) for d in sorted(set(drop), key=len, reverse=True)), re.IGNORECASE)
        text = drop_matching(text, pattern)
    return text


# -- HTML ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt  # on first use: ~12 ms at every start of the service

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def to_html(text: str) -> str:
    """The draft as HTML: Markdown without raw HTML, then sanitised (nh3)."""
    return nh3.clean(_markdown().render(text))
