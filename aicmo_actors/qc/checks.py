"""The quality checks: a draft, the item, the brief, the package's target and the client's
earlier deliverables in; findings and a verdict out. Pure (no I/O, no clock): the dictionaries
are loaded once per process and kept (`spelling.dictionary`).

`check_draft` runs every check; each check is a function of its own, tested on realistic
drafts (tests/unit/qc). A draft passes when no finding is an error. Why each threshold is what
it is: docs/qc.md.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import idna
from email_validator import EmailNotValidError, validate_email

from aicmo_actors.qc import spelling, texts
from aicmo_actors.qc.prose import URL_OR_EMAIL, Draft, excerpt, parse, words
from contracts.clients import ClientInfo
from contracts.qc import Finding
from contracts.strategy import PlannedItem

# phonenumbers, pyphen and rapidfuzz are imported by the checks that use them, on first use
# (together about 20 ms that every start of the service would pay, QC or not).
if TYPE_CHECKING:
    import phonenumbers
    import pyphen  # type: ignore[import-untyped]

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

#: Distinct misspellings (a known word one edit away) from which a draft fails: one or two
#: are typos a reviewer lets through with a warning, three show nobody proofread it.
MISSPELLINGS_ERROR = 3
#: Readability formulas mean nothing on a few sentences: shorter texts are not measured.
READABILITY_MIN_WORDS = 100
#: Grades above the target that are a warning; beyond, an error.
GRADE_TOLERANCE = 2.0
#: A word count this far outside the item's limits is a warning; further, an error.
WORD_TOLERANCE = 0.10
#: rapidfuzz's `ratio` (0-100) of two deliverables' words from which they are near-duplicates.
#: Different posts on one subject for one client score 40-65 (shared vocabulary, the brand,
#: the words to use); a draft reworked from an earlier one by changing a few sentences 85+.
DUPLICATE_RATIO = 80.0

#: Characters a post may have where the package gives no limit (the platforms' own limits).
CHANNEL_MAX_CHARS = {
    "twitter": 280,
    "x": 280,
    "linkedin": 3000,
    "instagram": 2200,
    "threads": 500,
    "mastodon": 500,
    "bluesky": 300,
    "facebook": 63206,
}
#: An email's subject line: inboxes cut it off after ~60 characters (a warning), and one past
#: 100 is an error.
SUBJECT_SOFT, SUBJECT_HARD = 60, 100
EMAIL_CHANNELS = frozenset({"email", "newsletter"})

#: Legal forms left out of a company's name to get the brand ("Acme Analytics GmbH" -> "Acme Analytics").
_LEGAL_FORMS = re.compile(
    r"[,\s]+(?:gmbh(?:\s*&\s*co\.?\s*kg)?|ag|kg|ug|e\.?\s?k\.?|inc\.?|llc|ltd\.?|limited|plc|corp\.?|co\.?|"
    r"s\.?\s?a\.?\s?s?\.?|sarl|s\.?\s?l\.?|s\.?\s?r\.?\s?l\.?|b\.?\s?v\.?|n\.?\s?v\.?|oy|ab|as|aps|pty\.?)$",
    re.IGNORECASE,
)
#: Inflections a forbidden or required word may carry (English, German, French, Spanish plurals,
#: comparatives, adverbs, participles).
_INFLECTION = r"(?:s|es|ed|d|ing|er|ers|est|ly|e|en|em|n|x|mente)?"
_SPLIT_LIST = re.compile(r"[,;\n]+|\s+/\s+")

_PLACEHOLDERS = (
    re.compile(r"\{\{[^{}\n]{0,80}\}\}"),
    re.compile(r"\$?\{\s*[A-Za-z_][\w.\- ]{0,40}\}"),
    re.compile(r"%\(\w+\)s|%s\b"),
    re.compile(r"<\s*(?:insert|add|your|enter|put|todo|tbd)\b[^<>\n]{0,80}>", re.IGNORECASE),
    re.compile(r"<[A-Z][^<>=/\"\n:@]{0,40}>"),
    re.compile(r"\b(?:TODO|TBD|TBC|FIXME|XXX+)\b"),
    re.compile(r"\blorem\s+ipsum\b", re.IGNORECASE),
)
#: [Client Name], [COMPANY], [insert link]: square brackets that are not a Markdown link, a
#: reference, a footnote or a task box.
_BRACKETED = re.compile(r"(?<![\]\\!])\[(?!\^)([^\[\]\n]{1,60})\](?![(\[:])")
_MD_LINK = re.compile(r"\[([^\[\]\n]*)\]\(([^()\n]*(?:\([^()\n]*\)[^()\n]*)*)(\)?)")
_MD_LINK_SPACED = re.compile(r"\[[^\[\]\n]+\][ \t]+\((?:https?:|www\.|mailto:)[^()\n]*\)", re.IGNORECASE)
_SCHEME_LIKE = re.compile(r"\b(?:[a-z][a-z0-9+.-]{1,9}:/{1,3}|https?//|www\.)[^\s<>\"]*", re.IGNORECASE)
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: #hashtags and @mentions: written as the platform wants them, not as prose.
_TAGS = re.compile(r"(?<![\w&])[#@][^\W_][\w-]*")
_TRAILING = ".,;:!?'\"\u2019\u201d»"


@dataclass(frozen=True)
class Earlier:
    """An earlier deliverable of the same client: what a finding calls it, and its text."""

    item: str
    title: str
    text: str


@dataclass(frozen=True)
class Verdict:
    passed: bool
    findings: tuple[Finding, ...]

    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)


def check_draft(
    title: str,
    text: str,
    *,
    item: PlannedItem,
    brief: Mapping[str, str],
    client: ClientInfo,
    reading_grade: float | None = None,
    earlier: Sequence[Earlier] = (),
) -> Verdict:
    """Every check on one draft: the findings (errors first, in the order of the checks) and the verdict."""
    draft = parse(title, text)
    if not text.strip():
        return Verdict(passed=False, findings=(_finding("length", ERROR, texts.empty_text()),))
    findings = [
        *check_length(draft, text, item),
        *check_placeholders(draft),
        *check_links(draft),
        *check_addresses(draft, brief, client),
        *check_phones(draft, brief, client),
        *check_brand(draft, brief, client),
        *check_forbidden(draft, brief),
        *check_required(draft, brief, item),
        *check_spelling(draft, brief, client),
        *check_readability(draft, client.language, reading_grade),
        *check_duplicates(draft, earlier),
    ]
    ordered = tuple(sorted(findings, key=lambda f: f.severity != ERROR))
    return Verdict(passed=not any(f.severity == ERROR for f in ordered), findings=ordered)


def _finding(check: str, severity: Severity, message: str, excerpt_text: str = "") -> Finding:
    return Finding(check=check, severity=severity, message=message, excerpt=excerpt_text)


def _everything(draft: Draft) -> str:
    """The title and the source, as the checks on what is written read them."""
    return f"{draft.title}\n{draft.source}"


def _brief_text(brief: Mapping[str, str]) -> str:
    return "\n".join(str(v) for v in brief.values() if v)


def phrases(value: str | None) -> list[str]:
    """A brief answer listing words or phrases ("cheap, guaranteed\\nbest-in-class") as a list."""
    found = [" ".join(p.strip(" \t\"'“\u201d„«»").split()) for p in _SPLIT_LIST.split(value or "")]
    return list(dict.fromkeys(p for p in found if p))


# -- length ------------------------------------------------------------------------------------------------------------


def check_length(draft: Draft, text: str, item: PlannedItem) -> Iterator[Finding]:
    """Words against the item's limits (10% either way a warning), characters against the item's
    limit or the channel's own, an email's subject line."""
    count = len(words(draft.body))
    if not text.strip():
        yield _finding("length", ERROR, texts.empty_text())
        return
    if item.min_words and count < item.min_words:
        severity = WARNING if count >= item.min_words * (1 - WORD_TOLERANCE) else ERROR
        yield _finding("length", severity, texts.too_few_words(count, item.min_words))
    if item.max_words and count > item.max_words:
        severity = WARNING if count <= item.max_words * (1 + WORD_TOLERANCE) else ERROR
        yield _finding("length", severity, texts.too_many_words(count, item.max_words), excerpt_tail(text))
    channel = item.channel.lower()
    limit = item.max_chars or CHANNEL_MAX_CHARS.get(channel)
    chars = len(text.strip())
    if limit and chars > limit:
        yield _finding(
            "length",
            ERROR,
            texts.too_many_chars(chars, limit, item.channel, item.max_chars is None),
            excerpt_tail(text),
        )
    if channel in EMAIL_CHANNELS or item.type.lower() in EMAIL_CHANNELS:
        subject = draft.title
        if not subject:
            yield _finding("length", ERROR, texts.subject_missing())
        elif len(subject) > SUBJECT_HARD:
            yield _finding("length", ERROR, texts.subject_too_long(len(subject), SUBJECT_HARD, True), subject[:80])
        elif len(subject) > SUBJECT_SOFT:
            yield _finding("length", WARNING, texts.subject_too_long(len(subject), SUBJECT_SOFT, False), subject)


def excerpt_tail(text: str) -> str:
    tail = " ".join(text.strip()[-60:].split())
    return "…" + tail


# -- placeholders ------------------------------------------------------------------------------------------------------


def check_placeholders(draft: Draft) -> Iterator[Finding]:
    """{{ name }}, {first_name}, [Client Name], <insert link>, TODO, TBD, XXX, lorem ipsum."""
    source = URL_OR_EMAIL.sub(lambda m: " " * len(m.group(0)), _everything(draft))
    seen: set[tuple[int, int]] = set()
    for pattern in _PLACEHOLDERS:
        for match in pattern.finditer(source):
            if any(a <= match.start() < b for a, b in seen):
                continue
            seen.add(match.span())
            yield _finding("placeholder", ERROR, texts.placeholder(match.group(0)), excerpt(source, *match.span()))
    for match in _BRACKETED.finditer(source):
        inside = match.group(1).strip()
        if (
            not inside
            or inside.lower() in ("x", " ")
            or inside.isdigit()
            or any(a <= match.start() < b for a, b in seen)
        ):
            continue
        seen.add(match.span())
        yield _finding("placeholder", ERROR, texts.placeholder(match.group(0)), excerpt(source, *match.span()))


# -- links -------------------------------------------------------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why `url` is not a working link (None: it is one). Relative links ("/pricing", "#faq") are fine."""
    if not url:
        return "no address"
    if any(c.isspace() for c in url):
        return "it contains a space"
    if url.startswith(("/", "#")) and not url.startswith("//"):
        return None
    if url.lower().startswith("mailto:"):
        return None if _valid_email(url[7:].split("?")[0]) else "not a valid e-mail address"
    if url.lower().startswith("tel:"):
        return None if re.fullmatch(r"tel:\+?[\d\-. ()]{5,}", url, re.IGNORECASE) else "not a phone number"
    bare_www = url.lower().startswith("www.")
    if bare_www:
        url = "https://" + url
    if re.match(r"https?//", url, re.IGNORECASE):
        return 'the scheme lacks its ":"'
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return f'"{parts.scheme}:" is not a web address (http or https)'
    if not url.lower().startswith(f"{parts.scheme.lower()}://"):
        return 'the scheme needs "://"'
    if url.count("(") != url.count(")") or url.count("[") != url.count("]"):
        return "unbalanced brackets"
    host = parts.hostname or ""
    if not host:
        return "no host"
    try:
        port = parts.port
    except ValueError:
        return "not a valid port"
    del port
    if ".." in host or host.startswith(".") or host.endswith("-"):
        return f'"{host}" is not a host name'
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return f'"{host}" is not a host name'
    labels = ascii_host.rstrip(".").split(".")
    if len(labels) < (3 if bare_www else 2) or not _TLD.match(labels[-1].lower()):
        return f'"{host}" has no top-level domain'
    return None


def _markdown_links(source: str) -> Iterator[tuple[re.Match[str], str, bool]]:
    for match in _MD_LINK.finditer(source):
        yield match, match.group(2).strip(), bool(match.group(3))


def check_links(draft: Draft) -> Iterator[Finding]:
    """Markdown links and bare URLs: scheme, host (IDNA), spaces, unbalanced brackets."""
    source = _everything(draft)
    covered: list[tuple[int, int]] = []
    for match, url, closed in _markdown_links(source):
        covered.append(match.span())
        target = url.split(' "')[0].strip("<>") if not closed or " " not in url.strip() else url
        if target.startswith("<") or (closed and re.fullmatch(r'\S+\s+"[^"]*"', url)):
            target = url.split()[0].strip("<>")
        why = "the link is not closed with )" if not closed else url_problem(target)
        if why:
            yield _finding("link", ERROR, texts.bad_link(url or match.group(0), why), excerpt(source, *match.span()))
    for match in _MD_LINK_SPACED.finditer(source):
        covered.append(match.span())
        yield _finding(
            "link", ERROR, texts.bad_link(match.group(0), "a space between ] and ("), excerpt(source, *match.span())
        )
    for match in _SCHEME_LIKE.finditer(source):
        if any(a <= match.start() < b for a, b in covered):
            continue
        url = match.group(0).rstrip(_TRAILING)
        while url.endswith(")") and url.count(")") > url.count("("):
            url = url[:-1]  # "(see https://acme.example)": the parenthesis is the sentence's
        why = url_problem(url)
        if why:
            yield _finding("link", ERROR, texts.bad_link(url, why), excerpt(source, match.start(), match.end()))


# -- e-mail addresses and phone numbers --------------------------------------------------------------------------------


def _valid_email(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _published_emails(brief: Mapping[str, str]) -> set[str]:
    return {m.group(0).lower() for m in _EMAIL.finditer(_brief_text(brief))}


def check_addresses(draft: Draft, brief: Mapping[str, str], client: ClientInfo) -> Iterator[Finding]:
    """Every e-mail address must be valid (email-validator) and one the brief publishes."""
    source = _everything(draft)
    published = _published_emails(brief)
    reported: set[str] = set()
    for match in _EMAIL.finditer(source):
        address = match.group(0).rstrip(".")
        if address.lower() in reported:
            continue
        reported.add(address.lower())
        where = excerpt(source, match.start(), match.end())
        if not _valid_email(address):
            yield _finding("email_address", ERROR, texts.bad_address(address), where)
        elif address.lower() not in published:
            contact = address.lower() == client.contact_email.strip().lower()
            yield _finding("email_address", ERROR, texts.foreign_address(address, contact), where)


def _region(country: str) -> str | None:
    import phonenumbers

    region = country.upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _numbers(text: str, region: str | None) -> Iterator[phonenumbers.PhoneNumberMatch]:
    import phonenumbers

    yield from phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)


def check_phones(draft: Draft, brief: Mapping[str, str], client: ClientInfo) -> Iterator[Finding]:
    """A phone number (phonenumbers, in the client's country's format) must be one the brief publishes."""
    import phonenumbers

    region = _region(client.country)
    e164 = phonenumbers.PhoneNumberFormat.E164
    published = {phonenumbers.format_number(m.number, e164) for m in _numbers(_brief_text(brief), region)}
    source = URL_OR_EMAIL.sub(lambda m: " " * len(m.group(0)), _everything(draft))
    reported: set[str] = set()
    for match in _numbers(source, region):
        number = phonenumbers.format_number(match.number, e164)
        if number in published or number in reported:
            continue
        reported.add(number)
        yield _finding(
            "phone_number", ERROR, texts.foreign_phone(match.raw_string), excerpt(source, match.start, match.end)
        )


# -- the brand name ----------------------------------------------------------------------------------------------------


def brand_of(company: str) -> str:
    """The name the client goes by: the company without its legal form."""
    name = " ".join(company.split())
    while True:
        shorter = _LEGAL_FORMS.sub("", name).strip(" ,")
        if shorter == name or not shorter:
            return name
        name = shorter


def check_brand(draft: Draft, brief: Mapping[str, str], client: ClientInfo) -> Iterator[Finding]:
    """The client's name written as in the brief or the company: "ACME analytics", "AcmeAnalytics",
    "Acme-Analytics" are errors. A one-word name is only checked for odd capitals ("ACME", "aCme"):
    in lower case it may be the ordinary word."""
    brand = brand_of(client.company)
    parts = re.findall(r"[^\W_]+", brand)
    if not parts:
        return
    accepted = {brand, " ".join(client.company.split())}
    brief_text = _brief_text(brief)
    pattern = re.compile(
        r"(?<![\w@./-])" + r"[\s\-_.·]*".join(re.escape(p) for p in parts) + r"(?![\w@-]|\.\w)", re.IGNORECASE
    )
    accepted |= {m.group(0) for m in pattern.finditer(brief_text) if m.group(0) != m.group(0).lower() or len(parts) > 1}
    source = _TAGS.sub(
        lambda m: " " * len(m.group(0)), URL_OR_EMAIL.sub(lambda m: " " * len(m.group(0)), _everything(draft))
    )
    reported: set[str] = set()
    for match in pattern.finditer(source):
        found = " ".join(match.group(0).split()) if "\n" not in match.group(0) else match.group(0)
        if found in accepted or found in reported:
            continue
        if len(parts) == 1 and found == found.lower():
            continue
        reported.add(found)
        yield _finding("brand_name", ERROR, texts.brand_misspelled(found, brand), excerpt(source, *match.span()))


# -- words the brief forbids or asks for -------------------------------------------------------------------------------


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A phrase as a whole-word, case-insensitive pattern; its last word may be inflected."""
    body = r"[\s\-]+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<![\w-]){body}{_INFLECTION}(?![\w-])", re.IGNORECASE)


def _readable(draft: Draft) -> str:
    return URL_OR_EMAIL.sub(" ", f"{draft.title}\n{draft.body}")


def check_forbidden(draft: Draft, brief: Mapping[str, str]) -> Iterator[Finding]:
    """A word or phrase of `words_to_avoid` (whole words, any case, simple inflections) is an error."""
    text = _readable(draft)
    for phrase in phrases(brief.get("words_to_avoid")):
        for match in phrase_pattern(phrase).finditer(text):
            yield _finding(
                "forbidden_word", ERROR, texts.forbidden_word(phrase, match.group(0)), excerpt(text, *match.span())
            )


def check_required(draft: Draft, brief: Mapping[str, str], item: PlannedItem) -> Iterator[Finding]:
    """The words of `words_to_use` that do not appear: a warning. A short post (under 300 words)
    cannot hold them all: it is warned only when it uses none."""
    wanted = phrases(brief.get("words_to_use"))
    if not wanted:
        return
    text = _readable(draft)
    missing = [p for p in wanted if not phrase_pattern(p).search(text)]
    if not missing:
        return
    if len(words(draft.body)) >= 300:
        yield _finding("required_word", WARNING, texts.required_some_missing(missing))
    elif len(missing) == len(wanted):
        yield _finding("required_word", WARNING, texts.required_missing(missing))


# -- spelling ----------------------------------------------------------------------------------------------------------


#: What ends a sentence: a capitalised word after one of these (or first on its line) may be an
#: ordinary word.
_SENTENCE_ENDS = ".!?:…"
_PROSE_WORD = re.compile(r"[^\W\d_]+(?:[-'\u2019][^\W\d_]+)*")


def _checkable_words(draft: Draft, language: str, allowed: set[str]) -> list[str]:
    """The words spelling looks at: not a name (ALL CAPS, CamelCase; in languages other than
    German, a capitalised word inside a sentence), not a word of the brief or the client's name."""
    out: list[str] = []
    lines = [draft.title, *(b.text for b in draft.blocks)]
    for line in lines:
        line = _TAGS.sub(" ", URL_OR_EMAIL.sub(" ", line))
        for pattern in _PLACEHOLDERS:  # reported as placeholders, not as misspellings
            line = pattern.sub(lambda m: " " * len(m.group(0)), line)
        for match in _PROSE_WORD.finditer(line):
            word = match.group(0)
            if len(word) < 2 or _stem(word.lower()) in allowed:
                continue
            letters = [c for c in word if c.isalpha()]
            if sum(c.isupper() for c in letters) > 1:  # ALL CAPS, CamelCase, iPhone-like: a name
                continue
            if any(c.isupper() for c in letters[1:]):
                continue
            if word[0].isupper() and language != "de" and not _starts_sentence(line, match.start()):
                continue
            out.append(word)
    return out


def _starts_sentence(line: str, at: int) -> bool:
    """Whether only whitespace stands between `line[at]` and a sentence end or the line's start.
    Looks back over the whitespace only: searching the whole of the line before each word made
    a long paragraph's check grow with the square of its length."""
    at -= 1
    while at >= 0 and line[at].isspace():
        at -= 1
    return at < 0 or line[at] in _SENTENCE_ENDS


def _stem(word: str) -> str:
    """A word without a plural or case ending, so the brief's "Rückladungen" covers "Rückladung"."""
    for ending in ("en", "es", "er", "e", "n", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def _allowed_words(brief: Mapping[str, str], client: ClientInfo) -> set[str]:
    """The stems of the brief's words and the client's names: never misspellings."""
    found = words(_brief_text(brief)) + words(client.company) + words(client.contact_name or "")
    allowed = {w.lower() for w in found}
    for word in list(allowed):
        allowed.update(p for p in re.split(r"[-'\u2019]", word) if p)
    return {_stem(w) for w in allowed}


def check_spelling(draft: Draft, brief: Mapping[str, str], client: ClientInfo) -> Iterator[Finding]:
    """Misspellings (pyspellchecker, the client's language): three or more distinct ones are an
    error, one or two a warning each; words no dictionary knows and no known word is near (names,
    jargon) one warning."""
    language = client.language.lower()
    if not spelling.supported(language):
        yield _finding("spelling", WARNING, texts.spelling_unsupported(language))
        return
    found = spelling.unknown_words(_checkable_words(draft, language, _allowed_words(brief, client)), language)
    text = f"{draft.title}\n{draft.body}"
    if len(found.misspelled) >= MISSPELLINGS_ERROR:
        first = _locate(text, found.misspelled[0])
        yield _finding("spelling", ERROR, texts.misspellings(found.misspelled), first)
    else:
        checker = spelling.dictionary(language)
        for word in found.misspelled:
            yield _finding("spelling", WARNING, texts.misspelling(word, checker.correction(word)), _locate(text, word))
    if found.unrecognised:
        yield _finding(
            "spelling", WARNING, texts.unrecognised(found.unrecognised), _locate(text, found.unrecognised[0])
        )


def _locate(text: str, word: str) -> str:
    match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE)
    return excerpt(text, *match.span()) if match else word


# -- readability -------------------------------------------------------------------------------------------------------

#: pyphen's syllable rules for the client's language (English: American).
_PYPHEN_LANG = {"en": "en_US"}


@cache
def _hyphenator(language: str) -> pyphen.Pyphen | None:
    import pyphen  # type: ignore[import-untyped]

    lang = _PYPHEN_LANG.get(language, language)
    return pyphen.Pyphen(lang=lang) if lang in pyphen.LANGUAGES else None


@cache
def _stats() -> Any:
    """textstat's counter, loaded on first use (its import pulls in NLTK: a tenth of a second
    every `python run.py` would pay at start, QC or not)."""
    from textstat.textstat import textstatistics  # type: ignore[import-untyped]

    return textstatistics()


def reading_grade_of(draft: Draft, language: str) -> float | None:
    """The Flesch-Kincaid grade of the draft's paragraphs; None when the language has no
    syllable rules.

    textstat counts the words per sentence; the syllables come from pyphen's hyphenation rules
    for the language, as textstat itself counts them for every language but English (for
    English textstat prefers NLTK's CMU dictionary, which it downloads on first use: a service
    must not fetch data at run time, so pyphen's English rules are used instead).
    """
    hyphenator = _hyphenator(language.lower())
    if hyphenator is None:
        return None
    text = draft.sentences
    found = [w.lower() for w in words(text)]
    if not found:
        return 0.0
    per_sentence = float(_stats().words_per_sentence(text))
    syllables = sum(len(hyphenator.positions(w)) + 1 for w in found) / len(found)
    return round(0.39 * per_sentence + 11.8 * syllables - 15.59, 1)


def check_readability(draft: Draft, language: str, target: float | None) -> Iterator[Finding]:
    """The grade against the package's `reading_grade`: up to 2 grades above a warning, beyond an
    error. Not measured under 100 words, nor without a target."""
    if target is None or len(words(draft.sentences)) < READABILITY_MIN_WORDS:
        return
    grade = reading_grade_of(draft, language)
    if grade is None:
        yield _finding("readability", WARNING, texts.readability_unsupported(language))
        return
    if grade > target:
        severity = WARNING if grade <= target + GRADE_TOLERANCE else ERROR
        yield _finding("readability", severity, texts.too_hard(grade, target), _hardest_sentence(draft))


def _hardest_sentence(draft: Draft) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", draft.sentences)
    longest = max(sentences, key=lambda s: len(s.split()), default="")
    return longest if len(longest) <= 120 else longest[:117].rstrip() + "…"


# -- near-duplicates ---------------------------------------------------------------------------------------------------


def normalised(title: str, text: str) -> str:
    """A deliverable reduced to its words, lower case: what near-duplicates are compared on."""
    draft = parse(title, text)
    return " ".join(w.lower() for w in words(f"{draft.title}\n{draft.body}"))


#: Earlier deliverables' normalised words, by their title and text, the most recently used
#: kept: every check of a client compares with all its earlier pieces, a number that grows
#: with every period, and normalising is the costly part (hashing the two strings is not).
_NORMALISED: OrderedDict[tuple[str, str], str] = OrderedDict()
NORMALISED_KEPT = 2048


def _normalised_earlier(other: Earlier) -> str:
    key = (other.title, other.text)
    found = _NORMALISED.get(key)
    if found is None:
        found = _NORMALISED[key] = normalised(other.title, other.text)
        if len(_NORMALISED) > NORMALISED_KEPT:
            _NORMALISED.popitem(last=False)
    else:
        _NORMALISED.move_to_end(key)
    return found


def check_duplicates(draft: Draft, earlier: Iterable[Earlier]) -> Iterator[Finding]:
    """A draft whose words are `DUPLICATE_RATIO`% or more the same as an earlier deliverable's
    (rapidfuzz `ratio`) is an error naming the closest one."""
    from rapidfuzz import fuzz

    mine = " ".join(w.lower() for w in words(f"{draft.title}\n{draft.body}"))
    if not mine:
        return
    best: tuple[float, Earlier] | None = None
    for other in earlier:
        score = fuzz.ratio(mine, _normalised_earlier(other), score_cutoff=DUPLICATE_RATIO)
        if score and (best is None or score > best[0]):
            best = (score, other)
    if best is not None:
        score, other = best
        yield _finding("near_duplicate", ERROR, texts.near_duplicate(other.item, score), other.title[:80] or other.item)
