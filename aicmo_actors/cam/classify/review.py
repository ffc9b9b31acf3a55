"""What a client's reply to a review request says: approved, changes asked for, or unclear.

`review_intent(text)` reads the reply's own words (quotes already removed by
`quotes.strip_quoted`), cuts its greeting, its signature and its mail client's footer ("Sent
from my iPhone", "Von meinem iPhone gesendet" ...), and weighs plain phrase lists in English,
German, French and Spanish:

- a change asked for anywhere wins: "looks good but change the title" is a change request,
  and so is a negated approval ("not approved", "nicht freigegeben", "pas validé", "no
  aprobado", "passt so nicht");
- "no changes", "keine Änderungen", "aucune modification", "sin cambios" are not change
  requests (they approve);
- a reply that holds things up ("let me check with my boss", "ich melde mich", "je reviens
  vers vous") or asks a question without approving or asking for a change is unclear, and so
  is one that says nothing we recognise: a person reads it rather than a guess deciding.

Pure and linear: no pattern backtracks over the same text (bounded gaps only), and at most
`MAX_CHARS` characters are read.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["APPROVE", "CHANGES", "UNCLEAR", "ReviewIntent", "own_words", "review_intent"]

ReviewIntent = Literal["approve", "changes", "unclear"]
APPROVE: ReviewIntent = "approve"
CHANGES: ReviewIntent = "changes"
UNCLEAR: ReviewIntent = "unclear"
#: Characters of a reply read at all (a review answer is short; what follows is pasted text).
MAX_CHARS = 20_000


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


#: A line from which everything below is a signature or a mail client's footer.
SIGNATURE_START = _any(
    r"^--\s*$",
    r"^__+\s*$",
    r"^sent from (?:my|outlook|mail|yahoo|gmail)\b",
    r"^sent with\b",
    r"^get outlook for\b",
    r"^von meinem .{0,40}gesendet",
    r"^gesendet (?:von|mit)\b",
    r"^envoy[ée] (?:de|depuis) (?:mon|ma)\b",
    r"^enviado (?:desde|con) (?:mi|el)\b",
    r"^obtener outlook\b",
    r"^(?:best|kind|warm|many thanks and)?\s*regards\b.{0,20}$",
    r"^(?:best|cheers|thanks|thank you|many thanks|thx|all the best|best wishes)[,.! ]*$",
    r"^mit (?:freundlichen|besten|herzlichen) gr[üu](?:ß|ss)en\b",
    r"^(?:viele|beste|liebe|herzliche|sch[öo]ne) gr[üu](?:ß|ss)e\b",
    r"^(?:lg|vg|mfg|gru(?:ß|ss)|danke(?: sch[öo]n)?)[,.! ]*$",
    r"^(?:cordialement|bien (?:à|a) vous|bien cordialement|salutations|merci(?: beaucoup)?|bonne journ[ée]e)[,.! ]*$",
    r"^(?:saludos(?: cordiales)?|un saludo|atentamente|gracias|muchas gracias|un abrazo)[,.! ]*$",
)
#: The start of a mail client's footer.
FOOTER = re.compile(r"^(?:--|__|sent |get outlook|von meinem|gesendet |envoy|enviado |obtener outlook)", re.I)
#: A first line that only greets.
GREETING = _any(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon)|hallo|liebe[rs]?|sehr geehrte[rs]?|guten (?:tag|morgen)|"
    r"moin|servus|bonjour|bonsoir|salut|cher|ch[èe]re|hola|buenos d[íi]as|buenas tardes|estimad[oa]s?)"
    r"\b.{0,60}[,!:]?\s*$",
)
APPROVAL = _any(
    # English
    r"\bapprov(?:e|ed|al|ing)\b",
    r"\blooks? (?:good|great|fine|perfect|amazing|excellent)\b",
    r"\blgtm\b",
    r"\bgo ahead\b",
    r"\bgood to go\b",
    r"\ball good\b",
    r"\b(?:perfect|great|excellent|fine|brilliant|lovely)\b",
    r"\bfine (?:by|with) (?:me|us)\b",
    r"\b(?:happy|pleased) with (?:it|this|that|them|these|everything|all)\b",
    r"\b(?:please |you can |you may |ok to |okay to )?(?:publish|post|ship|send) (?:it|them|this|these)\b",
    r"\bsign(?:ed)?[- ]off\b",
    r"\bgreen light\b",
    r"\b(?:yes|yep|sure),? (?:please|go|publish|all)\b",
    r"^\s*(?:yes|yep|sure|ja|oui|s[íi])\s*[.!]*\s*$",
    # German
    r"\bfreigegeben\b",
    r"\bfreigabe\b",
    r"\bgebe?n? (?:es|das|sie|alles|den text|die texte|es so) (?:so )?frei\b",
    r"\bgenehmigt\b",
    r"\bpasst\b",
    r"\bin ordnung\b",
    r"\beinverstanden\b",
    r"\bsieht (?:gut|super|prima|toll|klasse|perfekt) aus\b",
    r"\bver[öo]ffentlich(?:en|t)\b",
    r"\bkann (?:so )?raus\b",
    r"\babgenommen\b",
    r"\b(?:super|prima|perfekt|klasse|toll|alles gut)\b",
    # French
    r"\bvalid[ée]e?s?\b",
    r"\b(?:je|nous) valid(?:e|ons)\b",
    r"\bapprouv[ée]e?s?\b",
    r"\bc'est (?:bon|parfait|ok|nickel|tr[èe]s bien)\b",
    r"\bok pour (?:moi|nous)\b",
    r"\bbon pour (?:moi|nous|publication|accord)\b",
    r"\bfeu vert\b",
    r"\bvous pouvez (?:publier|y aller|envoyer)\b",
    r"\ballez[- ]y\b",
    r"\bd'accord\b",
    r"\btout est (?:bon|parfait|ok)\b",
    r"\b[çc]a (?:me|nous) va\b",
    r"\bparfait\b",
    # Spanish
    r"\baprobad[oa]s?\b",
    r"\bapruebo\b",
    r"\badelante\b",
    r"\bde acuerdo\b",
    r"\btodo (?:bien|perfecto|correcto|ok)\b",
    r"\bperfect[oa]\b",
    r"\best[áa] (?:bien|perfecto|genial)\b",
    r"\bme parece (?:bien|perfecto|genial)\b",
    r"\bpueden? publicar(?:lo|los|la|las)?\b",
    r"\bluz verde\b",
    r"\bvisto bueno\b",
)
CHANGE = _any(
    # English
    r"\bchang(?:e|es|ed|ing)\b",
    r"\bamend(?:ed|ment|ments)?\b",
    r"\b(?:please )?edit (?:the|this|it|that)\b",
    r"\brevis(?:e|ed|ion)\b",
    r"\brewrite\b|\brework\b|\brephrase\b|\breword\b",
    r"\bfix(?:ed)?\b",
    r"\bcorrect(?:ed|ion|ions)\b",
    r"\b(?:please )?update (?:the|this|it|that)\b",
    r"\breplace\b",
    r"\b(?:remove|delete|cut)\b|\bdrop the\b",
    r"\b(?:shorter|longer|shorten|lengthen|tone down|simplify)\b",
    r"\badd (?:a|an|the|some|more|our|this)\b",
    r"\binstead\b",
    r"\btypos?\b",
    r"\b(?:wrong|mistakes?|incorrect|inaccurate|misspelled|outdated)\b",
    r"\bexcept\b",
    r"\b(?:adjust|tweak)\b",
    # German
    r"\b[äa]nder(?:n|ung|ungen|t|e)\b",
    r"\babzu[äa]ndern\b",
    r"\banpass(?:en|ung|ungen)\b",
    r"\bkorrigier(?:en|t)\b|\bkorrektur(?:en)?\b",
    r"\b[üu]berarbeit(?:en|ung)\b",
    r"\bersetz(?:en|t)\b",
    r"\bstreich(?:en|t)\b",
    r"\bentfern(?:en|t)\b",
    r"\bk[üu]rz(?:en|er)\b",
    r"\bumschreiben\b|\bumformulieren\b",
    r"\bfehler\b|\bfalsch\b|\btippfehler\b",
    r"\bstatt (?:des|der|dem|den|ein|eine|einer|eines)\b|\bstattdessen\b|\banstatt\b",
    r"\bau(?:ß|ss)er\b",
    # French
    r"\bmodifi(?:er|ez|cation|cations)\b",
    r"\bchang(?:er|ez)\b|\bchangement",
    r"\bcorrig(?:er|ez)\b|\bcorrections?\b",
    r"\bremplac(?:er|ez)\b",
    r"\bsupprim(?:er|ez)\b|\bretir(?:er|ez)\b",
    r"\braccourc(?:ir|issez)\b|\breformul(?:er|ez)\b",
    r"\bajout(?:er|ez)\b",
    r"\bau lieu de\b",
    r"\berreurs?\b|\bfautes?\b",
    r"\bsauf\b",
    r"\brevoir\b",
    # Spanish
    r"\bcambi(?:ar|en|ad|o|os)\b",
    r"\bmodific(?:ar|ad|en|aci[óo]n|aciones)\b",
    r"\bcorreg(?:ir|id)\b|\bcorrecci[óo]n(?:es)?\b",
    r"\breemplaz(?:ar|ad)\b|\bsustitu(?:ir|id)\b",
    r"\bquit(?:ar|ad|en)\b|\belimin(?:ar|ad|en)\b",
    r"\bacortar\b|\breescribir\b|\bredactar de nuevo\b",
    r"\ba[ñn]adir\b|\bagreg(?:ar|ad)\b",
    r"\ben (?:lugar|vez) de\b",
    r"\berror(?:es)?\b",
    r"\b(?:excepto|salvo)\b",
)
#: A refusal: an approval denied, or a dislike that does not say what to change.
REFUSAL = _any(
    r"\b(?:don't|do not) like\b",
    r"\bnot (?:quite )?(?:right|there|ready|what we|happy|ok|okay|good|fine|correct)\b",
    r"\bnot (?:yet )?approv",
    r"\b(?:don't|do not) (?:publish|post|send|go ahead)\b",
    r"\bbut not\b|\baber nicht\b|\bmais pas\b|\bpero no\b",
    r"\bpasst (?:so |noch |leider )?nicht\b",
    r"\bgef[äa]llt (?:mir|uns) (?:so |leider |noch )?nicht\b",
    r"\bnicht (?:ganz )?(?:ok|okay|in ordnung|gut|richtig|freigegeben|frei|einverstanden|zufrieden)\b",
    r"\bnicht ver[öo]ffentlichen\b",
    r"\bne (?:me|nous) (?:pla[îi]t|convient|va) pas\b",
    r"\b[çc]a ne va pas\b",
    r"\bpas (?:encore )?(?:valid|approuv|bon|ok|d'accord)",
    r"\bne (?:pas )?publi(?:er|ez)\b",
    r"\bno (?:me|nos) (?:gusta|convence)\b",
    r"\bno (?:est[áa] )?(?:aprobad|bien|correct)",
    r"\bno (?:lo )?publiqu",
)
#: Phrases that say nothing is to change: they approve, and the change words in them do not count.
NO_CHANGE = _any(
    r"\bno (?:further |more |other )?(?:changes|edits|corrections|amendments)\b",
    r"\bnothing to (?:change|add|fix|correct)\b",
    r"\bwithout (?:any )?changes\b",
    r"\bno (?:typos|mistakes|errors)\b",
    r"\bkeine (?:weiteren )?(?:[äa]nderungen|korrekturen|anmerkungen|fehler)\b",
    r"\bnichts (?:zu )?(?:[äa]ndern|erg[äa]nzen)\b",
    r"\b(?:aucune|pas de) (?:modification|correction|changement|erreur|faute)s?\b",
    r"\brien [àa] (?:changer|modifier|corriger)\b",
    r"\bsin (?:ning[úu]n )?(?:cambios|correcciones|modificaciones|errores)\b",
    r"\bning[úu]n cambio\b",
    r"\bnada que (?:cambiar|corregir)\b",
)
#: A reply that holds the answer back: a person reads it.
HOLD = _any(
    r"\b(?:wait|hold (?:on|off))\b",
    r"\bcheck (?:with|internally)\b",
    r"\b(?:get|come) back to you\b",
    r"\b(?:need|needs) (?:more )?time\b",
    r"\bnot sure\b",
    r"\b(?:will|i'll|we'll) (?:look|review|read)\b",
    r"\bhaven't (?:had (?:a )?chance|looked)\b",
    r"\bwarten\b",
    r"\b(?:melde|melden) (?:mich|uns)\b",
    r"\br[üu]cksprache\b",
    r"\bnoch nicht (?:gelesen|angesehen|geschaut)\b",
    r"\bnicht sicher\b",
    r"\bje (?:reviens|reviendrai) vers vous\b",
    r"\battend(?:ez|re)\b",
    r"\bpas s[ûu]r\b",
    r"\bvalider en interne\b",
    r"\bespera(?:r|d|n)?\b",
    r"\b(?:le|te|les) (?:confirmo|digo)\b",
    r"\bno estoy segur[oa]\b",
    r"\bconsultar(?:lo)? con\b",
)
#: A negation a few words before an approval turns it into a refusal ("not approved").
NEGATOR = re.compile(
    r"\b(?:not|no|never|don't|dont|doesn't|isn't|aren't|can't|cannot|won't|nicht|kein\w*|pas|ne|jamais|nunca|sin)\b"
    r"|n't\b",
    re.I,
)
CLAUSE_BREAK = re.compile(r"[.!?;,\n]|\b(?:but|however|aber|jedoch|mais|pero)\b", re.I)
SENTENCE_END = re.compile(r"[.!?\n]")


def _negated(text: str, start: int) -> bool:
    """A negation in the same clause, at most four words before `start`."""
    before = text[max(0, start - 40) : start]
    breaks = list(CLAUSE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    return bool(NEGATOR.search(" ".join(before.split()[-4:])))


def own_words(text: str) -> str:
    """The reply without its greeting line, its signature and its mail client's footer."""
    lines = [line.strip() for line in (text or "")[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    if len(lines) > 1 and GREETING.match(lines[0]) and len(lines[0]) <= 60:
        lines.pop(0)
    kept: list[str] = []
    for line in lines:
        if SIGNATURE_START.match(line) and any(k for k in kept):
            break
        if FOOTER.match(line):
            break  # a mail client's footer with nothing before it: nothing of their own
        kept.append(line)
    return "\n".join(kept).strip()


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with `spans` replaced by spaces (positions kept)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _asked(text: str, match: re.Match[str]) -> bool:
    """Whether the sentence holding `match` is a question ("Approved? What do you mean?")."""
    end = SENTENCE_END.search(text, match.end())
    return end is not None and end.group(0) == "?"


def review_intent(text: str) -> tuple[ReviewIntent, str]:
    """The intent of a reply to a review request, and the client's own words (the comment a
    change request carries): ("approve" | "changes" | "unclear", words).

    In order: a change asked for (not negated: "don't change anything" asks for none) makes a
    change request; a reply holding the answer back is unclear; a refusal ("not approved")
    is a change request; an approval not asked as a question approves; anything else is
    unclear."""
    words = own_words(text)
    flat = words.replace("\u2019", "'").replace("\u2018", "'")
    if not flat.strip():
        return UNCLEAR, words
    no_change = [m.span() for m in NO_CHANGE.finditer(flat)]
    rest = _blank(flat, no_change)
    if any(not _negated(rest, m.start()) for m in CHANGE.finditer(rest)):
        return CHANGES, words
    if HOLD.search(rest):
        return UNCLEAR, words
    approvals = list(APPROVAL.finditer(rest))
    if REFUSAL.search(rest) or any(_negated(rest, m.start()) for m in approvals):
        return CHANGES, words
    if no_change or any(not _asked(rest, m) for m in approvals):
        return APPROVE, words
    return UNCLEAR, words
