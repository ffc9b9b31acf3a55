"""Reading leads from CSV: lenient about the file, strict about each row, never aborted by one.

UTF-8 with or without BOM (UTF-16 with a BOM, cp1252 as a fallback), `,` `;` or tab (the
one that splits the header row into most columns; quotes are always `"`), header names
matched without regard to case, spaces or dashes. Addresses are checked with email-validator
(syntax only: no network) and normalised; for de-duplication and suppression the whole
address is compared lower-cased. Extra columns become template variables. A binary file
(a spreadsheet, an archive) is refused as a whole; text from the file shown in a message
has its control and other unprintable characters escaped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError

from aicmo_actors.cam.campaign import check_address, is_timezone

STANDARD = ("email", "first_name", "last_name", "company", "timezone")
ALIASES = {
    "email": "email",
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "e_mail_address": "email",
    "first_name": "first_name",
    "firstname": "first_name",
    "first": "first_name",
    "given_name": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "company": "company",
    "company_name": "company",
    "organization": "company",
    "organisation": "company",
    "timezone": "timezone",
    "time_zone": "timezone",
    "tz": "timezone",
}
#: Single-line fields (names end up in the To header): control characters become spaces.
_SINGLE_LINE = ("first_name", "last_name", "company")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LINE_END = re.compile(r"\r\n|\r|\n")


#: The longest value each field may have: the columns of cam_leads (PostgreSQL refuses more).
FIELD_LIMITS = {"first_name": 200, "last_name": 200, "company": 300}


class LeadFileError(ValueError):
    """The file as a whole cannot be read (missing, binary, no email column); one line."""


class LeadFileEmpty(LeadFileError):
    """The file holds nothing at all: not even a header row."""


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
    #: How the file was decoded: "utf-8", "utf-16" or "cp1252" (not UTF-8: the fallback).
    encoding: str = "utf-8"

    def audit_detail(self, file: str, stored: tuple[int, int, int]) -> dict[str, object]:
        """The `leads.import` audit row's detail, from the file and what the import stored
        (new, existing, suppressed), as the command line and the web app write it."""
        new, existing, suppressed = stored
        return {
            "file": file,
            "rows": self.total_rows,
            "imported": new,
            "existing": existing,
            "suppressed": suppressed,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
        }


def normalise_header(name: str) -> str:
    key = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return ALIASES.get(key, key)


def normalise_address(address: str, *, allow_test_domains: bool = False) -> str:
    """The validator's normalised form, lower-cased whole for comparison.

    The part before the @ must be ASCII: sending does not do SMTPUTF8 (an IDN domain is fine).
    `allow_test_domains` accepts the special-use test domains (see `campaign.check_address`).
    """
    return check_address(address.strip(), allow_test_domains=allow_test_domains).lower()


#: File signatures of what people pick by mistake instead of the CSV export.
_BINARY_KINDS = (
    (b"PK\x03\x04", "a zip archive or an Excel/OpenDocument workbook"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
)


def _decode(data: bytes) -> tuple[str, str]:
    """(text, encoding); `LeadFileError` for a binary file."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for magic, kind in _BINARY_KINDS:
        if data.startswith(magic):
            raise LeadFileError(
                f"not a CSV file: it looks like {kind}; export the sheet as CSV (UTF-8) and import that"
            )
    if b"\x00" in data:
        raise LeadFileError(
            "not a CSV file: it holds binary data (NUL bytes); export the sheet as CSV (UTF-8) and import that"
        )
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def shown(text: str) -> str:
    """Text from the file, safe for one terminal line: unprintable characters escaped as in repr()."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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


def parse_leads_text(
    text: str, progress: Callable[[int, int], None] | None = None, *, allow_test_domains: bool = False
) -> LeadImportResult:
    """Every row of a CSV text: the leads, the rejected rows with their reasons, the duplicates."""
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=_delimiter(text), skipinitialspace=True)
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileEmpty("the file is empty: expected a header row with an 'email' column") from None
    except csv.Error as exc:
        raise LeadFileError(f"line 1: not a CSV header row: {shown(str(exc))}") from None
    names = [normalise_header(h) for h in header]
    if "email" not in names:
        found = shown(" ".join(", ".join(h.strip() for h in header).split()))
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
                f"line {ended + 1}: cannot read the file from here on ({shown(str(exc))}): an unclosed quote?"
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
            email = normalise_address(raw_email, allow_test_domains=allow_test_domains)
        except EmailNotValidError as exc:
            result.rejected.append(Rejected(line, f"invalid address {raw_email!r}: {shown(str(exc))}"))
            continue
        too_long = next((key for key, limit in FIELD_LIMITS.items() if len(values.get(key) or "") > limit), None)
        if too_long is not None:
            result.rejected.append(Rejected(line, f"{too_long} is longer than {FIELD_LIMITS[too_long]} characters"))
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


def parse_leads_csv(
    path: Path | str, progress: Callable[[int, int], None] | None = None, *, allow_test_domains: bool = False
) -> LeadImportResult:
    """Read a CSV file of leads; `LeadFileError` (one line, naming the file) when it cannot be used at all."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LeadFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise LeadFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        text, encoding = _decode(data)
        result = parse_leads_text(text, progress, allow_test_domains=allow_test_domains)
    except LeadFileError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    result.encoding = encoding
    return result
