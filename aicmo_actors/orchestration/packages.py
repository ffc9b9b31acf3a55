"""Service packages as TOML files: parse, check, find and describe them (see docs/packages.md).

Every check runs and every problem is reported at once, each with the line of the offending key,
so a package is fixed in one pass. Numbers are read exactly: TOML decimals are parsed as `Decimal`,
never through a binary float, so `price = 2500.10` and `share = 0.3` mean what they say.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from contracts.packages import (
    BillingRhythm,
    Deliverable,
    DeliveryMethod,
    Kpi,
    Milestone,
    PackageSpec,
    ReportingCadence,
)

SUFFIX = ".toml"
NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?")  # use fullmatch
NAME_RULE = "lower-case letters, digits and hyphens, 1 to 60 characters, not starting or ending with a hyphen"
#: Deliverable types, channels and KPI names: words other modules match on.
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,59}")  # use fullmatch
IDENTIFIER_RULE = "lower-case letters, digits and underscores, starting with a letter, at most 60 characters"
TITLE_MAX = 200
#: The largest number a package may write (either way): far above any price, and a KPI target (a float in
#: the contract) stays exact.
NUMBER_MAX = 10**12

BILLING: tuple[str, ...] = get_args(BillingRhythm)
REPORTING: tuple[str, ...] = get_args(ReportingCadence)
DELIVERY: tuple[str, ...] = get_args(DeliveryMethod)
DIRECTIONS = ("up", "down")

#: Active ISO 4217 currency codes a client can be invoiced in (funds, precious metals, the test
#: code and "no currency" left out). Kept here rather than in a dependency: it changes a few times
#: a decade (lately: EUR for BGN in 2026, XCG for ANG in 2025, ZWG for ZWL, SLE for SLL).
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
    GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
    NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD
    XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)
#: Decimals of a currency's minor unit where it is not 2 (ISO 4217).
MINOR_UNITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}

#: The points a milestone may be reached at: the signature, or the end of a saga step.
MILESTONE_AT = ("signed", "onboarding", "strategy", "production")

#: The keys of each table of a package file, and how to write each one when it is missing.
TOP_KEYS = {
    "name": '"growth" (the file\'s name without .toml)',
    "title": '"Growth: content every week"',
    "price": '2500 or "2500.00"',
    "currency": '"EUR" (an ISO 4217 code)',
    "billing": f'"monthly" (one of {", ".join(BILLING)})',
    "milestones": "",
    "period_months": "1",
    "deliverables": "",
    "review_rounds": "2",
    "turnaround_days": "5 (business days)",
    "reporting": f'"monthly" (one of {", ".join(REPORTING)})',
    "kpis": "",
    "delivery": '["email"] (any of ' + ", ".join(f'"{m}"' for m in DELIVERY) + ")",
    "qc_signoff": "false",
    "reading_grade": "10",
    "auto_approve_days": "5 (business days)",
    "term_months": "12 (the contract's length in months)",
    "payment_days": "14 (days from an invoice to its due date)",
    "extra_round_price": '150 or "150.00" (a review round past review_rounds)',
}
DELIVERABLE_KEYS = {
    "type": '"blog_post"',
    "count": "4",
    "channel": '"blog"',
    "min_words": "",
    "max_words": "",
    "max_chars": "",
}
MILESTONE_KEYS = {
    "name": '"kick-off"',
    "share": "0.3 (a part of the price)",
    "at": '"strategy" (one of ' + ", ".join(f'"{s}"' for s in MILESTONE_AT) + "; none: invoiced by a person)",
}
KPI_KEYS = {"name": '"organic_sessions"', "target": "15", "unit": "", "direction": ""}
_TABLES = {"deliverables": DELIVERABLE_KEYS, "milestones": MILESTONE_KEYS, "kpis": KPI_KEYS}

#: How a channel is named after "on" in a summary ("12 social posts on LinkedIn"); others as written.
_CHANNEL_PLACES = {"blog": "the blog", "website": "the website", "podcast": "the podcast"}
#: Words spelt as their owners spell them, in types and channels alike.
_PROPER_NAMES = {
    "linkedin": "LinkedIn",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "tiktok": "TikTok",
    "youtube": "YouTube",
    "twitter": "Twitter",
    "x": "X",
    "xing": "XING",
    "pinterest": "Pinterest",
    "threads": "Threads",
    "bluesky": "Bluesky",
    "mastodon": "Mastodon",
}

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a package file: where (line, key path) and what, in one line."""

    line: int | None
    field: str
    message: str

    def at(self, source: str) -> str:
        """`FILE:LINE: field: message`, as a compiler prints it (no line or field: left out)."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PackageError(ValueError):
    """A package that cannot be used; `problems` lists every reason, `str()` is one line."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        first = self.problems[0].at(source) if self.problems else f"{source}: invalid"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""))

    def lines(self) -> list[str]:
        """One `FILE:LINE: field: message` line per problem."""
        return [p.at(self.source) for p in self.problems]


class PackageNotFound(PackageError):
    """No package of that name in the packages directory; `known` lists the ones there are."""

    def __init__(self, packages_dir: Path, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listed = f"the packages there: {', '.join(known)}" if known else "it holds none yet"
        source = str(packages_dir / f"{name}{SUFFIX}")
        super().__init__(source, [Problem(None, "", f"no such package in {packages_dir} ({listed})")])


# -- where each key is ------------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)([^\[\]]+)\]\]?\s*(?:#.*)?$")
_KEY_PART = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=(.*)$")
_PART = re.compile(r""""((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+)""")


def _key_parts(text: str) -> tuple[str, ...]:
    return tuple(m[1] if m[1] is not None else m[2] if m[2] is not None else m[3] for m in _PART.finditer(text))


class KeyLines:
    """The line of each key and table header of a TOML text (tomllib gives none).

    A best-effort scan: keys inside inline tables are not seen, and a path that is not found
    falls back to its nearest enclosing key or header (`line_of`)."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        #: Keys written twice, with the line of the second (tomllib does not always name one).
        self.duplicates: list[tuple[KeyPath, int]] = []
        keys: set[KeyPath] = set()
        section: KeyPath = ()
        counts: dict[tuple[str, ...], int] = {}
        closing: str | None = None  # the quotes that end a multi-line string being skipped
        for number, line in enumerate(text.splitlines(), start=1):
            if closing is not None:
                if line.count(closing) % 2 == 1:
                    closing = None
                continue
            header = _HEADER.match(line)
            if header:
                parts = _key_parts(header[2])
                if header[1] == "[[":
                    index = counts.get(parts, 0)
                    counts[parts] = index + 1
                    section = (*parts, index)
                    self._lines.setdefault(parts, number)
                else:
                    section = parts
                self._lines.setdefault(section, number)
                continue
            key = _KEY.match(line)
            if key:
                path = (*section, *_key_parts(key[1]))
                if path in keys:
                    self.duplicates.append((path, number))
                keys.add(path)
                self._lines.setdefault(path, number)
                value = key[2]
                for quotes in ('"""', "'''"):
                    if value.count(quotes) % 2 == 1:
                        closing = quotes
                        break

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, else of the closest key or header that holds it; None if none does."""
        for end in range(len(path), 0, -1):
            found = self._lines.get(path[:end])
            if found is not None:
                return found
        return None


# -- reading values ---------------------------------------------------------------------------------------------


def _field(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _show(value: object) -> str:
    """A value as it would be written in TOML, shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:39] + "…"
        return '"' + shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | Decimal):
        return "a number"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    if isinstance(value, dict):
        return "a table"
    return "a list"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {_show(close[0])}?)" if close else ""


def _places(number: Decimal) -> int:
    """Digits after the decimal point as written (2500.00: 2; 1E+3: -3)."""
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def _plural(count: int | Decimal, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class _Check:
    """Collects problems while the values of one package text are read and converted."""

    def __init__(self, lines: KeyLines) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def problem(self, path: KeyPath, message: str, *, line_path: KeyPath | None = None) -> None:
        self.problems.append(Problem(self.lines.line_of(line_path or path), _field(path), message))

    def keys(self, table: Mapping[str, Any], path: KeyPath, known: Mapping[str, str]) -> None:
        """Every key of `table` not in `known` is a problem, with a guess at what was meant."""
        for key in table:
            if key in known:
                continue
            hint = _suggest(key, known)
            if not hint and path and key in TOP_KEYS:
                hint = (
                    f" ({key} is a key of the package: it belongs above the first [[...]] table, "
                    "where it is not part of one)"
                )
            elif not hint and not path:
                owner = next((t for t, keys in _TABLES.items() if key in keys), None)
                hint = f" ({key} belongs in a [[{owner}]] table)" if owner else f" (the keys: {', '.join(known)})"
            elif not hint:
                hint = f" (the keys here: {', '.join(known)})"
            self.problem((*path, key), f"unknown key{hint}")

    def also(self, first: KeyPath, key: str) -> str:
        """`also deliverables[0], line 14`: where the first of two equal entries is."""
        line = self.lines.line_of((*first, key))
        return f"also {_field(first)}" + (f", line {line}" if line is not None else "")

    def missing(self, path: KeyPath, example: str) -> None:
        self.problem(path, f"missing: add {path[-1]} = {example}")

    def text(self, table: Mapping[str, Any], path: KeyPath, key: str, example: str, *, required: bool = True) -> Any:
        at = (*path, key)
        if key not in table:
            if required:
                self.missing(at, example)
            return None
        value = table[key]
        if not isinstance(value, str):
            quoted = f" (write it in quotes: {_show(str(value))})" if isinstance(value, int | Decimal) else ""
            self.problem(at, f"{_show(value)} is {_kind(value)}, not text{quoted}")
            return None
        if required and not value.strip():
            self.problem(at, f"is empty (write it, e.g. {key} = {example})")
            return None
        if any(c in value for c in "\r\n\v\f\x85\u2028\u2029\0"):
            self.problem(at, "must be one line (no line breaks)")
            return None
        return value

    def identifier(self, table: Mapping[str, Any], path: KeyPath, key: str, example: str) -> Any:
        value = self.text(table, path, key, example)
        if value is not None and not IDENTIFIER.fullmatch(value):
            guess = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")
            hint = f', e.g. "{guess}"' if IDENTIFIER.fullmatch(guess) else ""
            self.problem((*path, key), f"{_show(value)} is not a name ({IDENTIFIER_RULE}{hint})")
            return None
        return value

    def whole(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        example: str,
        *,
        minimum: int,
        maximum: int | None = None,
        required: bool = True,
        default: int | None = None,
    ) -> Any:
        at = (*path, key)
        if key not in table:
            if required:
                self.missing(at, example)
            return default
        value = table[key]
        if isinstance(value, str) and value.strip().isdigit():
            self.problem(at, f"{_show(value)} is text, not a whole number (write {value.strip()}, without quotes)")
            return None
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            self.problem(at, f"{value} is not a whole number (write {int(value)})")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(at, f"{_show(value)} is not a whole number (write e.g. {key} = {example.split()[0]})")
            return None
        if value < minimum:
            self.problem(at, f"{value} is too small (at least {minimum})")
            return None
        if maximum is not None and value > maximum:
            self.problem(at, f"{value} is too large (at most {maximum})")
            return None
        return value

    def number(self, table: Mapping[str, Any], path: KeyPath, key: str, example: str, *, text_too: bool) -> Any:
        """A `Decimal` from an integer, a TOML decimal (read exactly) or, with `text_too`, text."""
        at = (*path, key)
        if key not in table:
            self.missing(at, example)
            return None
        value = table[key]
        how = f"write {example}"
        number: Decimal | None = None
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            number = Decimal(value)
        elif isinstance(value, str) and text_too:
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                if re.fullmatch(r"\s*\d{1,3}(?:[,. ']\d{3})+(?:[.,]\d+)?\s*", value):
                    how += ", without thousands separators"
        elif isinstance(value, str):
            try:
                Decimal(value.strip())
                self.problem(at, f"{_show(value)} is text, not a number (write {value.strip()}, without quotes)")
                return None
            except InvalidOperation:
                pass
        if number is None or not number.is_finite():
            self.problem(at, f"{_show(value)} is not a number ({how})")
            return None
        if abs(number) > NUMBER_MAX:
            self.problem(at, f"{_show(value)} is too large (at most {NUMBER_MAX:,} either way)")
            return None
        if _places(number) < 0:  # 1e3: written out as 1000
            number = number.quantize(Decimal(1))
        return abs(number) if number == 0 else number

    def choice(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        example: str,
        options: tuple[str, ...],
        *,
        default: str | None = None,
    ) -> Any:
        at = (*path, key)
        if key not in table:
            if default is None:
                self.missing(at, example)
            return default
        value = table[key]
        if value not in options:
            hint = _suggest(value, options) if isinstance(value, str) else ""
            self.problem(at, f"{_show(value)} is not one of {', '.join(options)}{hint}")
            return None
        return value

    def tables(self, data: Mapping[str, Any], key: str) -> list[tuple[KeyPath, Mapping[str, Any]]]:
        """The items of an array of tables (`[[key]]`), each with its path; a wrong shape is a problem."""
        value = data.get(key, [])
        if isinstance(value, dict):
            self.problem((key,), f"write each one as [[{key}]] (double brackets), not [{key}]")
            return []
        if not isinstance(value, list):
            self.problem((key,), f"{_show(value)} is {_kind(value)}, not a list of [[{key}]] tables")
            return []
        items: list[tuple[KeyPath, Mapping[str, Any]]] = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                items.append(((key, index), item))
            else:
                self.problem((key, index), f"{_show(item)} is {_kind(item)}, not a table (write it as [[{key}]])")
        return items


# -- one package ------------------------------------------------------------------------------------------------


def _toml_problem(exc: tomllib.TOMLDecodeError, text: str) -> Problem:
    message = str(exc)
    lines = KeyLines(text)
    if message.startswith("Cannot overwrite a value") and lines.duplicates:
        path, line = lines.duplicates[0]
        return Problem(line, _field(path), f"written twice (first on line {lines.line_of(path)}): keep one")
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        return Problem(int(found[1]), "", f"not valid TOML: {message[: found.start()]} (column {found[2]})")
    return Problem(None, "", f"not valid TOML: {message.replace('(at end of document)', '(at the end of the file)')}")


def parse_package(text: str, *, source: str = "<text>", file_stem: str | None = None) -> PackageSpec:
    """Parse and check a package's TOML text; `PackageError` with every problem otherwise.

    `file_stem`: the name of the file it was read from, without `.toml`; the package's name must be it.
    """
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PackageError(source, [_toml_problem(exc, text)]) from None
    check = _Check(KeyLines(text))
    values = _read_package(check, data, file_stem)
    if check.problems:
        problems = sorted(check.problems, key=lambda p: (p.line is None, p.line or 0))
        raise PackageError(source, problems)
    try:
        return PackageSpec.model_validate(values)
    except ValidationError as exc:  # a rule of the contract this file's checks do not know (yet)
        raise PackageError(
            source,
            [
                Problem(check.lines.line_of(tuple(e["loc"])), _field(tuple(e["loc"])), str(e["msg"]))
                for e in exc.errors()
            ],
        ) from None


def _read_package(check: _Check, data: Mapping[str, Any], file_stem: str | None) -> dict[str, Any]:
    check.keys(data, (), TOP_KEYS)
    name = check.text(data, (), "name", TOP_KEYS["name"])
    if name is not None and not NAME.fullmatch(name):
        guess = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
        hint = f', e.g. "{guess}"' if NAME.fullmatch(guess) else ""
        check.problem(("name",), f"{_show(name)} is not a package name ({NAME_RULE}{hint})")
    elif name is not None and file_stem is not None and name != file_stem:
        check.problem(
            ("name",),
            f"{_show(name)} differs from the file's name {file_stem}{SUFFIX} "
            f"(a package is named after its file: rename the file or write name = {_show(file_stem)})",
        )
    title = check.text(data, (), "title", TOP_KEYS["title"])
    if title is not None and len(title) > TITLE_MAX:
        check.problem(("title",), f"is {len(title)} characters long (at most {TITLE_MAX})")
    currency = _currency(check, data)
    price = _amount(check, data, "price", currency)
    billing = check.choice(data, (), "billing", TOP_KEYS["billing"], BILLING)
    milestones = _milestones(check, data, billing)
    deliverables = _deliverables(check, data)
    kpis = _kpis(check, data)
    return {
        "name": name,
        "title": title,
        "price": price,
        "currency": currency,
        "billing": billing,
        "milestones": milestones,
        "period_months": check.whole(data, (), "period_months", "1", minimum=1, maximum=12, required=False, default=1),
        "deliverables": deliverables,
        "review_rounds": check.whole(data, (), "review_rounds", TOP_KEYS["review_rounds"], minimum=0),
        "turnaround_days": check.whole(data, (), "turnaround_days", TOP_KEYS["turnaround_days"], minimum=1),
        "reporting": check.choice(data, (), "reporting", TOP_KEYS["reporting"], REPORTING),
        "kpis": kpis,
        "delivery": _delivery(check, data),
        "qc_signoff": _flag(check, data, "qc_signoff"),
        "reading_grade": _grade(check, data),
        "auto_approve_days": check.whole(
            data, (), "auto_approve_days", TOP_KEYS["auto_approve_days"], minimum=1, maximum=60, required=False
        ),
        "term_months": check.whole(
            data, (), "term_months", TOP_KEYS["term_months"], minimum=1, maximum=120, required=False, default=12
        ),
        "payment_days": check.whole(
            data, (), "payment_days", TOP_KEYS["payment_days"], minimum=0, maximum=365, required=False, default=14
        ),
        "extra_round_price": _amount(check, data, "extra_round_price", currency)
        if "extra_round_price" in data
        else None,
    }


def _amount(check: _Check, data: Mapping[str, Any], key: str, currency: str | None) -> Any:
    """An amount of money (`price`, `extra_round_price`): 0 or more, at most the currency's decimals."""
    amount = check.number(data, (), key, TOP_KEYS[key], text_too=True)
    if amount is not None and amount < 0:
        check.problem((key,), f"{amount} is negative (write 0 or more)")
        return None
    if amount is not None and currency is not None:
        decimals = MINOR_UNITS.get(currency, 2)
        if _places(amount) > decimals:
            rounded = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
            check.problem((key,), f"{amount} has more decimals than {currency} has ({decimals}): write {rounded}")
    return amount


def _delivery(check: _Check, data: Mapping[str, Any]) -> Any:
    """`delivery = ["email", "webhook"]`: how approved work is handed over (default: email)."""
    if "delivery" not in data:
        return ("email",)
    value = data["delivery"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        check.problem(("delivery",), f"{_show(value)} is not a list of methods (write {TOP_KEYS['delivery']})")
        return None
    methods: list[str] = []
    for item in value:
        if item not in DELIVERY:
            hint = _suggest(item, DELIVERY) if isinstance(item, str) else ""
            check.problem(("delivery",), f"{_show(item)} is not one of {', '.join(DELIVERY)}{hint}")
            return None
        if item in methods:
            check.problem(("delivery",), f"{_show(item)} is written twice")
            return None
        methods.append(item)
    return tuple(methods)


def _flag(check: _Check, data: Mapping[str, Any], key: str) -> Any:
    if key not in data:
        return False
    value = data[key]
    if not isinstance(value, bool):
        check.problem((key,), f"{_show(value)} is not true or false (write {key} = true, without quotes)")
        return None
    return value


def _grade(check: _Check, data: Mapping[str, Any]) -> Any:
    """`reading_grade = 10`: the hardest a text may read (Flesch-Kincaid grade, 1 to 30)."""
    if "reading_grade" not in data:
        return None
    number = check.number(data, (), "reading_grade", TOP_KEYS["reading_grade"], text_too=False)
    if number is None:
        return None
    if not 1 <= number <= 30:
        check.problem(("reading_grade",), f"{number} is not a school grade between 1 and 30 (e.g. 10)")
        return None
    return float(number)


def _currency(check: _Check, data: Mapping[str, Any]) -> Any:
    currency = check.text(data, (), "currency", TOP_KEYS["currency"])
    if currency is None or currency in CURRENCIES:
        return currency
    if currency.strip().upper() in CURRENCIES:
        check.problem(
            ("currency",), f'{_show(currency)} must be three upper-case letters: write "{currency.strip().upper()}"'
        )
    else:
        hint = _suggest(currency.upper(), CURRENCIES) or ' (e.g. "EUR", "USD", "GBP", "CHF")'
        check.problem(("currency",), f"{_show(currency)} is not an ISO 4217 currency code{hint}")
    return None


def _milestones(check: _Check, data: Mapping[str, Any], billing: str | None) -> list[Milestone]:
    given = "milestones" in data
    if billing == "milestones" and not given:
        check.problem(
            ("milestones",),
            'billing = "milestones" needs [[milestones]] tables, each with a name and a share of the price '
            "(the shares adding up to 1)",
            line_path=("billing",),
        )
        return []
    if billing not in (None, "milestones") and given:
        check.problem(
            ("milestones",),
            f'only billing = "milestones" has milestones, this package bills {billing}: '
            'remove them or write billing = "milestones"',
        )
        return []
    items = check.tables(data, "milestones")
    out: list[Milestone] = []
    seen: dict[str, KeyPath] = {}
    for path, item in items:
        check.keys(item, path, MILESTONE_KEYS)
        name = check.text(item, path, "name", MILESTONE_KEYS["name"])
        share = check.number(item, path, "share", MILESTONE_KEYS["share"], text_too=False)
        at = check.choice(item, path, "at", MILESTONE_KEYS["at"], MILESTONE_AT, default="") or None
        if name is not None and name in seen:
            check.problem((*path, "name"), f"{_show(name)} is listed twice ({check.also(seen[name], 'name')})")
        elif name is not None:
            seen[name] = path
        if share is not None and not 0 < share <= 1:
            check.problem((*path, "share"), f"{share} is not a share of the price (more than 0, at most 1)")
        elif name is not None and share is not None:
            out.append(Milestone(name=name, share=share, at=at))
    if billing == "milestones" and given and not data["milestones"]:
        check.problem(("milestones",), "none given (add [[milestones]] tables, each with a name and a share)")
    elif billing == "milestones" and given and len(out) == len(data["milestones"]):
        total = sum((m.share for m in out), Decimal(0))
        if total != 1:
            check.problem(
                ("milestones",),
                f"the shares add up to {total}, not 1 (each is the part of the price invoiced at that point, "
                "e.g. 0.3, 0.3 and 0.4)",
            )
    return out


def _deliverables(check: _Check, data: Mapping[str, Any]) -> list[Deliverable]:
    if "deliverables" not in data:
        check.problem(
            ("deliverables",),
            "missing: a package delivers something, add a [[deliverables]] table with type, count and channel",
        )
        return []
    items = check.tables(data, "deliverables")
    if not items and isinstance(data["deliverables"], list) and not data["deliverables"]:
        check.problem(("deliverables",), "none given (add a [[deliverables]] table with type, count and channel)")
    out: list[Deliverable] = []
    seen: dict[tuple[str, str], KeyPath] = {}
    for path, item in items:
        check.keys(item, path, DELIVERABLE_KEYS)
        kind = check.identifier(item, path, "type", DELIVERABLE_KEYS["type"])
        channel = check.identifier(item, path, "channel", DELIVERABLE_KEYS["channel"])
        count = check.whole(item, path, "count", DELIVERABLE_KEYS["count"], minimum=1)
        limits = {
            key: check.whole(item, path, key, "1000", minimum=1, required=False)
            for key in ("min_words", "max_words", "max_chars")
        }
        if kind is not None and channel is not None:
            first = seen.setdefault((kind, channel), path)
            if first != path:
                check.problem(
                    (*path, "type"),
                    f"{_show(kind)} on {_show(channel)} is listed twice ({check.also(first, 'type')}): "
                    "add the counts up in one",
                )
        low, high = limits["min_words"], limits["max_words"]
        if low is not None and high is not None and low > high:
            check.problem((*path, "min_words"), f"{low} is more than max_words ({high})")
        if kind is not None and channel is not None and count is not None:
            out.append(Deliverable(type=kind, count=count, channel=channel, **limits))
    return out


def _kpis(check: _Check, data: Mapping[str, Any]) -> list[Kpi]:
    out: list[Kpi] = []
    seen: dict[str, KeyPath] = {}
    for path, item in check.tables(data, "kpis"):
        check.keys(item, path, KPI_KEYS)
        name = check.identifier(item, path, "name", KPI_KEYS["name"])
        target = check.number(item, path, "target", KPI_KEYS["target"], text_too=False)
        unit = check.text(item, path, "unit", '"%"', required=False)
        direction = check.choice(item, path, "direction", '"up"', DIRECTIONS, default="up")
        if name is not None and name in seen:
            check.problem(
                (*path, "name"),
                f"{_show(name)} is listed twice ({check.also(seen[name], 'name')})",
            )
        elif name is not None:
            seen[name] = path
        if name is not None and target is not None and direction is not None:
            out.append(Kpi(name=name, target=float(target), unit=unit or "", direction=direction))
    return out


# -- files ------------------------------------------------------------------------------------------------------


def load_package(path: Path) -> PackageSpec:
    """Read and check a package file; its `name` must be the file's name without `.toml`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackageError(source, [Problem(None, "", "no such file")]) from None
    except IsADirectoryError:
        raise PackageError(source, [Problem(None, "", "is a directory, not a package file")]) from None
    except UnicodeDecodeError as exc:
        problem = Problem(None, "", f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})")
        raise PackageError(source, [problem]) from None
    except OSError as exc:
        raise PackageError(source, [Problem(None, "", f"cannot read it: {exc.strerror or exc}")]) from None
    return parse_package(text, source=source, file_stem=path.stem)


def check_name(name: str) -> str:
    """`name` if it can name a package; `PackageError` otherwise (it becomes a file name)."""
    if not NAME.fullmatch(name):
        raise PackageError(_show(name), [Problem(None, "", f"not a package name ({NAME_RULE})")])
    return name


def package_path(packages_dir: Path, name: str) -> Path:
    """The file of package `name`: `packages_dir/name.toml` (`PackageError` for a name that is not one)."""
    return packages_dir / f"{check_name(name)}{SUFFIX}"


def package_files(packages_dir: Path) -> list[Path]:
    """The package files of `packages_dir` (`*.toml`, hidden ones left out), sorted by name."""
    if not packages_dir.is_dir():
        return []
    return sorted(
        (p for p in packages_dir.glob(f"*{SUFFIX}") if not p.name.startswith(".") and not p.is_dir()),
        key=lambda p: p.stem,
    )


def list_packages(packages_dir: Path) -> list[tuple[Path, PackageSpec | PackageError]]:
    """Every package file of `packages_dir`, sorted by name, each with its package or its problems."""
    out: list[tuple[Path, PackageSpec | PackageError]] = []
    for path in package_files(packages_dir):
        try:
            out.append((path, load_package(path)))
        except PackageError as exc:
            out.append((path, exc))
    return out


def find_package(packages_dir: Path, name: str) -> PackageSpec:
    """Package `name` from `packages_dir`; `PackageNotFound` (naming the known ones) or `PackageError`."""
    path = package_path(packages_dir, name)
    if not path.is_file():
        raise PackageNotFound(packages_dir, name, [p.stem for p in package_files(packages_dir)])
    return load_package(path)


def with_name(text: str, name: str) -> str:
    """The package text with its top-level `name = "..."` set to `name` (comments kept); `ValueError` when
    there is no such line to change."""
    line = KeyLines(text).line_of(("name",))
    lines = text.splitlines(keepends=True)
    if line is not None:
        changed, done = re.subn(
            r"""^(\s*name\s*=\s*)(?:"(?:[^"\\]|\\.)*"|'[^']*')""", rf'\g<1>"{check_name(name)}"', lines[line - 1]
        )
        if done:
            lines[line - 1] = changed
            return "".join(lines)
    raise ValueError('no line name = "..." at the top of the package to change')


# -- words ------------------------------------------------------------------------------------------------------


def money(amount: Decimal, currency: str) -> str:
    """`2,500.00 EUR`: grouped, with the currency's decimals."""
    decimals = MINOR_UNITS.get(currency, 2)
    return f"{amount:,.{decimals}f} {currency}"


def _things(item: Deliverable) -> str:
    """`12 social posts on LinkedIn`, `4 blog posts` (the channel is left out when the type names it)."""
    words = item.type.split("_")
    shown = [_PROPER_NAMES.get(word, word) for word in words]
    last = shown[-1]
    if item.count != 1:
        if last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
            last = last[:-1] + "ies"
        elif last.endswith(("s", "x", "ch", "sh")):
            last += "es"
        else:
            last += "s"
    phrase = " ".join([*shown[:-1], last])
    if item.channel == "email":
        phrase += " by email"
    elif item.channel not in words:
        place = _CHANNEL_PLACES.get(item.channel) or _PROPER_NAMES.get(item.channel, item.channel.replace("_", " "))
        phrase += f" on {place}"
    return f"{item.count} {phrase}"


def deliveries(spec: PackageSpec) -> str:
    """`4 blog posts, 12 social posts on LinkedIn per month`."""
    months = "month" if spec.period_months == 1 else f"{spec.period_months} months"
    when = f"per {months}" if spec.billing == "monthly" else f"within {_plural(spec.period_months, 'month')}"
    return f"{', '.join(_things(d) for d in spec.deliverables)} {when}"


def describe(spec: PackageSpec) -> str:
    """One line a person reads: `growth: 2,500.00 EUR monthly; 4 blog posts per month; 2 review rounds; ...`."""
    billed = {
        "monthly": "monthly",
        "one_off": "one-off",
        "milestones": f"in {_plural(len(spec.milestones), 'milestone')}",
    }[spec.billing]
    rounds = _plural(spec.review_rounds, "review round") if spec.review_rounds else "no review round"
    return (
        f"{spec.name}: {money(spec.price, spec.currency)} {billed}; {deliveries(spec)}; {rounds}; "
        f"{_plural(spec.turnaround_days, 'business day')}; {terms(spec)}"
    )


def terms(spec: PackageSpec) -> str:
    """The money terms: `12-month term, invoices due in 14 days, extra review round 150.00 EUR`."""
    due = "due on receipt" if spec.payment_days == 0 else f"due in {_plural(spec.payment_days, 'day')}"
    said = [f"{spec.term_months}-month term", f"invoices {due}"]
    if spec.extra_round_price is not None:
        said.append(f"extra review round {money(spec.extra_round_price, spec.currency)}")
    return ", ".join(said)
