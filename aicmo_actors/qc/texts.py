"""What quality control says about a draft: one sentence per finding, pure.

The findings go back to production with the item (a retake) and are shown to a person signing
off; they are written for the writer, in English (the agency's working language).
"""

from __future__ import annotations

from collections.abc import Sequence


def _listed(values: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(f'"{v}"' for v in values[:limit])
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return shown + more


def spelling_unsupported(language: str) -> str:
    return f"spelling not checked for {language}: no dictionary for that language"


def misspellings(words: Sequence[str]) -> str:
    return f"{len(words)} misspelled words: {_listed(words)}"


def misspelling(word: str, suggestion: str | None) -> str:
    better = f' (did you mean "{suggestion}"?)' if suggestion else ""
    return f'possible misspelling: "{word}"{better}'


def unrecognised(words: Sequence[str]) -> str:
    return (
        f"words the dictionary does not know (names or jargon? add them to the brief's words to use): {_listed(words)}"
    )


def readability_unsupported(language: str) -> str:
    return f"readability not checked for {language}: no syllable rules for that language"


def too_hard(grade: float, target: float) -> str:
    return (
        f"reads at grade {grade:.1f}; the package asks for grade {target:g} or easier "
        "(shorter sentences, simpler words)"
    )


def too_few_words(count: int, minimum: int) -> str:
    return f"{count} words; at least {minimum} expected"


def too_many_words(count: int, maximum: int) -> str:
    return f"{count} words; at most {maximum} expected"


def too_many_chars(count: int, maximum: int, channel: str, default: bool) -> str:
    why = f" ({channel}'s limit)" if default else ""
    return f"{count} characters; at most {maximum}{why}"


def empty_text() -> str:
    return "the draft has no text"


def subject_missing() -> str:
    return "an email needs a subject line: the title is empty"


def subject_too_long(count: int, maximum: int, hard: bool) -> str:
    if hard:
        return f"subject line of {count} characters; at most {maximum}"
    return f"subject line of {count} characters: inboxes cut it off after about {maximum}"


def forbidden_word(phrase: str, found: str) -> str:
    return f'"{found}": the brief asks never to write "{phrase}"'


def required_missing(phrases: Sequence[str]) -> str:
    return f"none of the brief's words to use appear: {_listed(phrases)}"


def required_some_missing(phrases: Sequence[str]) -> str:
    return f"words the brief asks for that do not appear: {_listed(phrases)}"


def brand_misspelled(found: str, brand: str) -> str:
    return f'"{found}": the client\'s name is written "{brand}"'


def placeholder(found: str) -> str:
    return f'unfilled placeholder "{found}"'


def bad_link(url: str, why: str) -> str:
    return f'malformed link "{url}": {why}'


def bad_address(address: str) -> str:
    return f'malformed e-mail address "{address}"'


def foreign_address(address: str, contact: bool) -> str:
    if contact:
        return f'e-mail address "{address}" is our contact\'s own, not one the brief publishes'
    return f'e-mail address "{address}" is not one the brief publishes'


def foreign_phone(number: str) -> str:
    return f'phone number "{number}" is not one the brief publishes'


def near_duplicate(item: str, score: float) -> str:
    return f"{score:.0f}% the same as an earlier deliverable ({item})"
