"""Spelling in the client's language with pyspellchecker, its dictionaries loaded once per process.

A word the dictionary does not know is a *misspelling* when a known word is one edit away
(pyspellchecker's candidates at distance 1: "recieve" -> "receive"), and an *unknown word*
otherwise (a name, a product, jargon: "Kubernetes"). Only misspellings can fail a draft (see
`checks.spelling` and docs/qc.md for the thresholds).

What the dictionaries miss and real text is full of is accepted here rather than listed:
German compounds made of known words ("Routenplanung" = "Routen" + "Planung", with the
linking "s" of "Sendungsverfolgung"), British spellings of English words ("optimisation",
"colour"), words joined by a hyphen or an apostrophe whose parts are known ("on-time",
"l'entreprise"). A small supplement (`EXTRA_WORDS`) holds the common words of the trade that
the frequency lists predate.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache

from spellchecker import SpellChecker

#: pyspellchecker's languages (ISO 639-1).
LANGUAGES = frozenset({"en", "es", "fr", "it", "pt", "de", "ru", "ar", "eu", "lv", "nl", "fa"})

#: Words of marketing and software that the dictionaries (built from older corpora) lack.
EXTRA_WORDS: dict[str, tuple[str, ...]] = {
    "": (
        "onboarding",
        "webinar",
        "webinars",
        "signup",
        "signups",
        "podcast",
        "podcasts",
        "newsletter",
        "newsletters",
        "startup",
        "startups",
        "ebook",
        "ebooks",
        "chatbot",
        "chatbots",
        "hashtag",
        "hashtags",
        "livestream",
        "workflow",
        "workflows",
        "checkout",
        "dashboard",
        "dashboards",
        "online",
        "offline",
        "software",
        "cloud",
        "app",
        "apps",
        "blog",
        "blogs",
        "e-mail",
        "email",
        "emails",
        "website",
        "websites",
        "upload",
        "download",
    ),
    # The irregular forms of haber, ser and ir (the Spanish list has their infinitives only).
    "es": ("hay", "hemos", "habéis", "han", "somos", "sois", "son", "eres", "fue", "fueron", "vamos", "van", "voy"),
}
#: Spanish object pronouns joined to an infinitive, a gerund or an imperative ("regarlas").
_CLITICS = ("selas", "selos", "sela", "selo", "las", "los", "les", "nos", "la", "lo", "le", "se", "me", "te")

#: British spellings and their American forms (the English dictionary is American):
#: "organisational" is known as "organizational", "colour" as "color".
_BRITISH = (
    ("isation", "ization"),
    ("ise", "ize"),
    ("ising", "izing"),
    ("yse", "yze"),
    ("our", "or"),
    ("tre", "ter"),
    ("ll", "l"),
    ("ogue", "og"),
    ("ence", "ense"),
)
#: Spanish endings and the lemma endings to try (pyspellchecker's Spanish list holds lemmas:
#: "planta" but not "plantas", "estar" but not "están").
_SPANISH = (
    ("ces", ("z",)),
    ("es", ("",)),
    ("s", ("",)),
    ("a", ("o",)),
    ("as", ("o", "a")),
    ("amos", ("ar",)),
    ("emos", ("er",)),
    ("imos", ("ir",)),
    ("áis", ("ar",)),
    ("éis", ("er",)),
    ("ís", ("ir",)),
    ("an", ("ar",)),
    ("án", ("ar",)),
    ("en", ("er", "ir", "ar")),
    ("que", ("car",)),
    ("quen", ("car",)),
    ("gue", ("gar",)),
    ("guen", ("gar",)),
    ("o", ("ar", "er", "ir")),
    ("as", ("ar",)),
    ("es", ("er", "ir")),
    ("a", ("ar",)),
    ("e", ("er", "ir", "ar")),
    ("é", ("ar",)),
    ("ó", ("ar",)),
    ("ió", ("er", "ir")),
    ("aron", ("ar",)),
    ("ieron", ("er", "ir")),
    ("aba", ("ar",)),
    ("aban", ("ar",)),
    ("ía", ("er", "ir")),
    ("ían", ("er", "ir")),
    ("ado", ("ar",)),
    ("ada", ("ar",)),
    ("ados", ("ar",)),
    ("adas", ("ar",)),
    ("ido", ("er", "ir")),
    ("ida", ("er", "ir")),
    ("idos", ("er", "ir")),
    ("idas", ("er", "ir")),
    ("ando", ("ar",)),
    ("iendo", ("er", "ir")),
    ("ará", ("ar",)),
    ("arán", ("ar",)),
    ("erán", ("er",)),
    ("irán", ("ir",)),
    ("erá", ("er",)),
    ("irá", ("ir",)),
    ("ue", ("o",)),
)
_ACCENTS = str.maketrans("áéíóú", "aeiou")
_JOINERS = re.compile(r"[-'\u2019]")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Unknown:
    """The words a dictionary does not know (lower case, first seen first)."""

    misspelled: tuple[str, ...]
    unrecognised: tuple[str, ...]


def supported(language: str) -> bool:
    return language.lower() in LANGUAGES


@cache
def _dictionary(language: str) -> SpellChecker:
    checker = SpellChecker(language=language, distance=1)
    checker.word_frequency.load_words(list(EXTRA_WORDS.get("", ())) + list(EXTRA_WORDS.get(language, ())))
    return checker


def dictionary(language: str) -> SpellChecker:
    """The language's dictionary, loaded on first use and kept for the process (thread-safe)."""
    with _LOCK:
        return _dictionary(language.lower())


def _known(checker: SpellChecker, word: str) -> bool:
    return word in checker.word_frequency.dictionary


def _british(checker: SpellChecker, word: str) -> bool:
    return any(british in word and _known(checker, word.replace(british, american)) for british, american in _BRITISH)


@cache
def _unaccented(language: str) -> frozenset[str]:
    """The language's words without their accents ("jardín" -> "jardin")."""
    return frozenset(w.translate(_ACCENTS) for w in dictionary(language).word_frequency.dictionary)


def _spanish(checker: SpellChecker, word: str, *, clitic: bool = True) -> bool:
    """An inflected form of a known Spanish lemma (a plural, a feminine, a conjugated verb, a
    verb with its pronoun), accents aside ("cómo", "jardines")."""
    plain = _unaccented("es")

    def known(candidate: str) -> bool:
        return candidate.translate(_ACCENTS) in plain

    if known(word):
        return True
    for ending, lemmas in _SPANISH:
        if word.endswith(ending) and len(word) > len(ending) + 1:
            stem = word[: -len(ending)]
            if any(known(stem + lemma) for lemma in lemmas):
                return True
            # A stem whose vowel changes when stressed: "pueden" -> "poder", "quieren" -> "querer".
            for changed, vowel in (("ue", "o"), ("ie", "e"), ("i", "e")):
                if changed in stem:
                    base = stem[::-1].replace(changed[::-1], vowel[::-1], 1)[::-1]
                    if any(known(base + lemma) for lemma in lemmas):
                        return True
    if clitic:
        for pronoun in _CLITICS:
            if word.endswith(pronoun) and len(word) > len(pronoun) + 3:
                if _spanish(checker, word[: -len(pronoun)], clitic=False):
                    return True
    return False


def _compound(checker: SpellChecker, word: str, depth: int = 0) -> bool:
    """A German compound: known parts of at least 3 letters, with an optional linking "s"."""
    if len(word) < 6 or depth > 2:
        return False
    for cut in range(3, len(word) - 2):
        head, tail = word[:cut], word[cut:]
        heads = (head, head[:-1]) if head.endswith("s") and len(head) > 3 else (head,)
        if any(_known(checker, h) for h in heads) and (_known(checker, tail) or _compound(checker, tail, depth + 1)):
            return True
    return False


def _accepted(checker: SpellChecker, word: str, language: str) -> bool:
    if _known(checker, word):
        return True
    if language == "en" and _british(checker, word):
        return True
    parts = [p for p in _JOINERS.split(word) if len(p) > 1]
    if len(parts) > 1 or (parts and parts[0] != word):
        if all(_accepted(checker, part, language) for part in parts):
            return True
    if language == "es" and _spanish(checker, word):
        return True
    return language in ("de", "nl") and _compound(checker, word)


def unknown_words(candidates: list[str], language: str) -> Unknown:
    """Which of `candidates` (words to check, any case) the dictionary of `language` does not know."""
    checker = dictionary(language)
    language = language.lower()
    misspelled: dict[str, None] = {}
    unrecognised: dict[str, None] = {}
    for word in dict.fromkeys(w.lower().replace("\u2019", "'") for w in candidates):
        if word in misspelled or word in unrecognised or _accepted(checker, word, language):
            continue
        near = checker.candidates(word)
        if near and word not in near:
            misspelled[word] = None
        else:
            unrecognised[word] = None
    return Unknown(tuple(misspelled), tuple(unrecognised))
