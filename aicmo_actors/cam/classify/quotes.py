"""A reply without what it quotes and without its signature.

Top-posted replies (Gmail, Outlook, Apple Mail) keep everything above the quote header;
inline and bottom-posted replies keep their own lines between the `>` quotes. Quote
headers in English, German, French, Spanish, Dutch, Italian and Portuguese are known.
"""

from __future__ import annotations

import re

__all__ = ["strip_quoted"]

_VERBS = r"wrote|writes|schrieb|geschrieben|a\s+[ée]crit|escribi[óo]|schreef|ha\s+scritto|escreveu|skrev|napisa[łl]"
#: "On Mon, 9 Mar 2026 at 10:00, Alex <a@b> wrote:" and its translations, on up to three lines.
ATTRIBUTION = re.compile(
    rf"^\s*(?:>\s*)*(?:"
    rf"(?:on|le|el|op|il|em|den|w\s+dniu)\b.{{0,300}}?\b(?:{_VERBS})\s*:"  # the verb ends it
    rf"|am\b.{{0,300}}?\bschrieb\b.{{0,200}}?:"  # Am 09.03.2026 um 10:00 schrieb Alex <a@b>:
    rf"|.{{1,150}}?\bschrieb am\b.{{0,100}}?:"  # Alex <a@b> schrieb am 09.03.2026:
    rf"|.{{1,150}}?\b(?:{_VERBS})\s*:"  # Alex Berger wrote:
    rf")\s*$",
    re.I | re.S,
)
_ATTRIBUTION_START = re.compile(r"^(?:>\s*)*(?:on|am|le|el|op|il|em|den|w\s+dniu)\b", re.I)
#: Everything after one of these is the quoted original (Outlook and friends quote without '>').
SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:original message|urspr[üu]ngliche nachricht|"
    r"message d'origine|mensaje original|messaggio originale|"
    r"oorspronkelijk bericht|mensagem original|forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|"
    r"mensaje reenviado|messaggio inoltrato|doorgestuurd bericht)\s*-{2,}|_{10,}|begin forwarded message\s*:)\s*$",
    re.I,
)
# The runs of spaces are possessive: two runs around an optional `*` used to split a long run
# of spaces between them in every possible way.
_FROM = re.compile(r"^\s*+\*?(?:from|von|de|da|van|fra|od)\s*+\*?\s*+:\s*+\*?\s*+\S", re.I)
_SENT = re.compile(
    r"^\s*+\*?(?:sent|date|gesendet|datum|envoy[ée]|date d'envoi|enviado(?: el)?|"
    r"fecha|inviato|data|verzonden|verstuurd|sendt|wys[łl]ano)\s*+\*?\s*+:",
    re.I,
)
#: Where a signature starts: the "-- " delimiter and the mobile mail apps' lines.
SIGNATURE = re.compile(
    r"^\s*(?:--\s*|__\s*|"
    r"sent from my .{0,40}|"
    r"sent from (?:outlook|yahoo mail|mail for windows|my mobile|proton ?mail|gmail mobile).{0,40}|"
    r"sent (?:with|via) (?:proton ?mail|superhuman|blackberry|spark).{0,40}|get outlook for (?:ios|android).{0,20}|"
    r"von meinem .{0,30}gesendet.{0,10}|gesendet von meinem .{0,30}|"
    r"envoy[ée] (?:de|depuis) mon .{0,30}|enviado (?:desde|de|do) (?:mi|meu) .{0,30}|"
    r"inviato da .{0,30}|verstuurd vanaf mijn .{0,30})$",
    re.I,
)


def _attribution_end(lines: list[str], index: int) -> int | None:
    """If an attribution ("On ... wrote:") starts at `lines[index]`, the index of its last line."""
    first = lines[index].strip()
    if not first or (first.startswith(">") and not re.match(r">\s*(?:on|am|le|el)\b", first, re.I)):
        return None
    starts_like_one = bool(_ATTRIBUTION_START.match(first))
    for span in range(3):
        if index + span >= len(lines) or not lines[index + span].strip():
            break
        if span and not starts_like_one:
            break  # only "On ... / Am ... / Le ..." attributions are wrapped over lines
        joined = " ".join(line.strip() for line in lines[index : index + span + 1])
        if len(joined) > 400:
            break
        if ATTRIBUTION.match(joined):
            return index + span
    return None


def _is_outlook_header(lines: list[str], index: int) -> bool:
    """A "From: ... / Sent: ..." block (Outlook, and its translations) starts here."""
    if not _FROM.match(lines[index]):
        return False
    return any(_SENT.match(line) for line in lines[index + 1 : index + 5])


def _next_text(lines: list[str], index: int) -> str:
    for line in lines[index:]:
        if line.strip():
            return line.strip()
    return ""


def strip_quoted(text: str) -> str:
    """The reply without the quoted original and without the signature."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if SEPARATOR.match(line) or _is_outlook_header(lines, index):
            break
        end = _attribution_end(lines, index)
        if end is not None:
            if _next_text(lines, end + 1).startswith(">"):
                index = end + 1  # inline or bottom posting: the reply goes on between quotes
                continue
            break
        if SIGNATURE.match(line):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line.rstrip())
        index += 1
    own = "\n".join(kept)
    return re.sub(r"\n{3,}", "\n\n", own).strip()
