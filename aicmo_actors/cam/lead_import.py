"""Reading leads from CSV: lenient about the file, strict about each row, never aborted by one.

UTF-8 with or without BOM (UTF-16 with a BOM, cp1252 as a fallback), `,` `;` or tab (the
one that splits the header row into most columns; quotes are always `"`), header names
matched without regard to case, spaces or dashes. Addresses are checked with email-validator
(syntax only: no network) and normalised; for de-duplication and suppression the whole
address is compared lower-cased. Extra columns become template variables.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from aicmo_actors.cam.campaign import is_timezone

STANDARD = ("email", "first_name", "last_name", "company", "timezone")
ALIASES = {
    "email": "email", "e_mail": "email", "email_address": "email", "mail": "email", "e_mail_address": "email",
    "first_name": "first_name", "firstname": "first_name", "first": "first_name", "given_name": "first_name",
    "last_name": "last_name", "lastname": "last_name", "last": "last_name", "surname": "last_name", "family_name": "last_name",
    "company": "company", "company_name": "company", "organization": "company", "organisation": "company",
    "timezone": "timezone", "time_zone": "timezone", "tz": "timezone",
}
#: Single-line fields (names end up in the To header): control characters become spaces.
_SINGLE_LINE = ("first_name", "last_name", "company")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LINE_END = re.compile(r"\r\n|\r|\n")


class LeadFileError(ValueError):
    """The file as a whole cannot be read (missing, no email column); one line."""


@dataclass(frozen=True)
class LeadRow:
    line: int
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    timezone: str | None
    variables: dict[str, str]

    def fields(self) -> dict[str, str]:
        """Everything a template sees for this lead."""
        out = dict(self.variables)
        out.update(
            email=self.email,
            first_name=self.first_name or "",
            last_name=self.last_name or "",
            company=self.company or "",
            timezone=self.timezone or "",
        )
        return out


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class LeadImportResult:
    leads: list[LeadRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    total_rows: int = 0


def normalise_header(name: str) -> str:
    key = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return ALIASES.get(key, key)


def normalise_address(address: str) -> str:
    """The validator's normalised form, lower-cased whole for comparison.

    The part before the @ must be ASCII: sending does not do SMTPUTF8 (an IDN domain is fine).
    """
    return validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False).normalized.lower()


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _delimiter(text: str) -> str:
    """`,` `;` or tab: whichever splits the header row into most columns (`,` on a tie).

    csv.Sniffer is not used: it guesses the quote character too, and a value starting with
    an apostrophe ('s-Hertogenbosch) made it merge rows.
    """
    header = _LINE_END.split(text, maxsplit=1)[0]
    best, columns = ",", 1
    for candidate in (",", ";", "\t"):
        count = len(next(csv.reader([header], delimiter=candidate), []))
        if count > columns:
            best, columns = candidate, count
    return best


def _one_line(value: str) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())


def parse_leads_text(text: str, progress: Callable[[int, int], None] | None = None) -> LeadImportResult:
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=_delimiter(text), skipinitialspace=True)
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("the file is empty: expected a header row with an 'email' column") from None
    except csv.Error as exc:
        raise LeadFileError(f"line 1: not a CSV header row: {exc}") from None
    names = [normalise_header(h) for h in header]
    if "email" not in names:
        found = _one_line(", ".join(h.strip() for h in header))
        if len(found) > 120:
            found = found[:117] + "..."
        raise LeadFileError(f"no 'email' column in the header (found: {found or 'nothing'})")
    total = max(1, text.count("\n"))
    result = LeadImportResult()
    seen: set[str] = set()
    ended = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise LeadFileError(
                f"line {ended + 1}: cannot read the file from here on ({exc}): an unclosed quote?"
            ) from None
        # A row may span several physical lines (a quoted cell with line breaks): report the
        # line it starts on (1-based, the header is line 1).
        line, ended = ended + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        result.total_rows += 1
        if progress is not None and result.total_rows % 500 == 0:
            progress(min(ended, total), total)
        values: dict[str, str] = {}
        for i, cell in enumerate(row[: len(names)]):
            if names[i]:
                values.setdefault(names[i], cell.strip())  # the first of two same-named columns
        for key in _SINGLE_LINE:
            if key in values:
                values[key] = _one_line(values[key])
        raw_email = values.get("email", "")
        if not raw_email:
            result.rejected.append(Rejected(line, "no email address"))
            continue
        try:
            email = normalise_address(raw_email)
        except EmailNotValidError as exc:
            result.rejected.append(Rejected(line, f"invalid address {raw_email!r}: {exc}"))
            continue
        tz = values.get("timezone") or None
        if tz is not None and not is_timezone(tz):
            result.rejected.append(Rejected(line, f"unknown timezone {tz!r} (use an IANA name like Europe/Berlin)"))
            continue
        if email in seen:
            result.duplicates += 1
            continue
        seen.add(email)
        variables = {k: v for k, v in values.items() if k not in STANDARD}
        result.leads.append(
            LeadRow(
                line=line,
                email=email,
                first_name=values.get("first_name") or None,
                last_name=values.get("last_name") or None,
                company=values.get("company") or None,
                timezone=tz,
                variables=variables,
            )
        )
    if progress is not None:
        progress(total, total)
    return result


def parse_leads_csv(path: Path | str, progress: Callable[[int, int], None] | None = None) -> LeadImportResult:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LeadFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise LeadFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return parse_leads_text(_decode(data), progress)
    except LeadFileError as exc:
        raise LeadFileError(f"{path}: {exc}") from None
