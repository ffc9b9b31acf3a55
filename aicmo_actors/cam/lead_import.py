"""Reading leads from CSV: lenient about the file, strict about each row, never aborted by one.

UTF-8 with or without BOM (cp1252 as a fallback), `,` `;` or tab, header names matched
without regard to case, spaces or dashes. Addresses are checked with email-validator
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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

STANDARD = ("email", "first_name", "last_name", "company", "timezone")
ALIASES = {
    "email": "email", "e_mail": "email", "email_address": "email", "mail": "email", "e_mail_address": "email",
    "first_name": "first_name", "firstname": "first_name", "first": "first_name", "given_name": "first_name",
    "last_name": "last_name", "lastname": "last_name", "last": "last_name", "surname": "last_name", "family_name": "last_name",
    "company": "company", "company_name": "company", "organization": "company", "organisation": "company",
    "timezone": "timezone", "time_zone": "timezone", "tz": "timezone",
}


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
    """The validator's normalised form, lower-cased whole for comparison."""
    return validate_email(address.strip(), check_deliverability=False).normalized.lower()


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_leads_text(text: str, progress: Callable[[int, int], None] | None = None) -> LeadImportResult:
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("the file is empty: expected a header row with an 'email' column") from None
    names = [normalise_header(h) for h in header]
    if "email" not in names:
        raise LeadFileError(f"no 'email' column in the header (found: {', '.join(h.strip() for h in header) or 'nothing'})")
    total = max(1, text.count("\n"))
    result = LeadImportResult()
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num  # the physical line the row ends on (1-based, header is 1)
        if not any(cell.strip() for cell in row):
            continue
        result.total_rows += 1
        if progress is not None and result.total_rows % 500 == 0:
            progress(min(line, total), total)
        values = {names[i]: cell.strip() for i, cell in enumerate(row) if i < len(names) and names[i]}
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
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
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
    return parse_leads_text(_decode(data), progress)
