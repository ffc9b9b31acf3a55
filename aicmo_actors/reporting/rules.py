"""Reporting's rules: a KPI's attainment, what a reply counts as in the funnel, what the
deliverables of a period add up to, and the KPI import file read line by line. Pure."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aicmo_actors.reporting.periods import PeriodError, parse_label

#: Reply categories that count as a positive reply in the funnel (contracts.cam.ReplyCategory values).
POSITIVE = frozenset({"interested", "meeting_request", "question", "referral"})
#: Categories that are not a person's reply (bounces, delivery reports, auto-replies): not counted as replies.
NOT_A_REPLY = frozenset({"bounce_hard", "bounce_soft", "delayed", "auto_reply", "complaint"})
FORMATS = ("html", "pdf")
CSV_COLUMNS = ("client", "kpi", "period", "value")
#: The most rows one import takes (a file is a month's figures, not a data warehouse).
MAX_CSV_ROWS = 20_000


def attained(value: float, target: float, direction: str) -> bool:
    """The value meets the target in the KPI's direction ("up": at least it, "down": at most it)."""
    if direction == "down":
        return value <= target
    return value >= target


def progress(value: float, target: float, direction: str) -> float:
    """How far toward the target, 0..1 (1: attained), for a bar: up = value/target, down = target/value."""
    if attained(value, target, direction):
        return 1.0
    if direction == "down":
        return max(0.0, min(1.0, target / value)) if value > 0 else 1.0
    return max(0.0, min(1.0, value / target)) if target > 0 else 0.0


def reply_counts(category: str) -> tuple[int, int]:
    """(replies, positive) a classified inbound message adds to its campaign's day."""
    if category in NOT_A_REPLY:
        return 0, 0
    return 1, int(category in POSITIVE)


def parse_formats(text: str) -> tuple[str, ...]:
    """ "html,pdf" -> ("html", "pdf"); at least one, each known."""
    found = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    bad = [f for f in found if f not in FORMATS]
    if bad or not found:
        raise ValueError(f"formats {text!r}: one or both of {', '.join(FORMATS)}")
    return found


# -- deliverables ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemFact:
    """What reporting knows of one work item (from the plan, production and delivery)."""

    type: str
    channel: str
    due: date | None
    planned: bool
    late: bool
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliverableLine:
    type: str
    channel: str
    planned: int
    delivered: int
    on_time: int


def on_time(item: ItemFact, tz: ZoneInfo) -> bool:
    """Delivered, never reported late, and on or before its due date (the client's calendar)."""
    if item.delivered_at is None or item.late:
        return False
    return item.due is None or item.delivered_at.astimezone(tz).date() <= item.due


def deliverables(items: Iterable[ItemFact], first: date, last: date, tz: ZoneInfo) -> list[DeliverableLine]:
    """Per type and channel: the items planned for the period (due within it), how many of them
    are delivered, and how many on time. Items without a plan count when delivered in the period."""
    lines: dict[tuple[str, str], list[int]] = {}
    for item in items:
        if item.planned and item.due is not None:
            if not first <= item.due <= last:
                continue
        elif item.delivered_at is None or not first <= item.delivered_at.astimezone(tz).date() <= last:
            continue
        counts = lines.setdefault((item.type, item.channel), [0, 0, 0])
        counts[0] += int(item.planned)
        counts[1] += int(item.delivered_at is not None)
        counts[2] += int(on_time(item, tz))
    return [DeliverableLine(t, c, *counts) for (t, c), counts in sorted(lines.items())]


# -- the KPI import --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiRow:
    """One line of a KPI import: `client` as written (company, client ref or contact email)."""

    line: int
    client: str
    kpi: str
    period: str
    value: float


@dataclass
class Parsed:
    rows: list[KpiRow] = field(default_factory=list)
    #: One line each: "line 4: ..." (nothing is imported when there is any).
    errors: list[str] = field(default_factory=list)


#: A number written with thousands separators: 1,234 or 1,234,567.5 (a comma decimal point).
_THOUSANDS_COMMA = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
#: The same with the continental separators: 1.234 or 1.234.567,5 (a point decimal comma).
_THOUSANDS_POINT = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d*)?")


def parse_value(text: str, *, decimal_comma: bool = False) -> float:
    """A KPI value: a decimal number ("1234.5", "1,234.5", "12 %" -> 12.0). `decimal_comma`
    (a file whose cells are separated by semicolons, as spreadsheets write CSV where the comma is
    the decimal sign): "1234,5" and "1.234,5" -> 1234.5, "1.234" -> 1234.0. A comma that is not a thousands
    separator in a comma-decimal-point file ("12,5") is refused rather than read as 125."""
    cleaned = text.strip().replace("_", "").replace("\u00a0", "").replace(" ", "").rstrip("%")
    if decimal_comma:
        if "," in cleaned and "." in cleaned and not _THOUSANDS_POINT.fullmatch(cleaned):
            raise ValueError("a point here is not a thousands separator (the file writes decimals with a comma)")
        if "," in cleaned or _THOUSANDS_POINT.fullmatch(cleaned):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        # else a point is the only sign: "12.5" can only be twelve and a half
    elif "," in cleaned:
        if not _THOUSANDS_COMMA.fullmatch(cleaned):
            raise ValueError("a comma here is not a thousands separator (write decimals with a point)")
        cleaned = cleaned.replace(",", "")
    value = float(cleaned)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _delimiter(header: str) -> str:
    """The separator of a KPI file, read from its header: a semicolon or a tab when the header
    has one and no comma (spreadsheets in many countries save CSV so), else a comma."""
    if "," not in header:
        for candidate in (";", "\t"):
            if candidate in header:
                return candidate
    return ","


def parse_kpi_csv(text: str) -> Parsed:
    """Read a KPI import (a header with the columns client, kpi, period, value, in any order;
    other columns ignored; cells separated by commas, or by semicolons with decimal commas, or by
    tabs, as the header shows). Every bad line is an error naming it; duplicates of one client, KPI
    and period are errors too (which value would count?)."""
    parsed = Parsed()
    text = text.lstrip("\ufeff")
    delimiter = _delimiter(text.partition("\n")[0])
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        parsed.errors.append("the file is empty (expected a header: client,kpi,period,value)")
        return parsed
    names = [h.strip().lower() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in names]
    if missing:
        parsed.errors.append(f"line 1: the header lacks {', '.join(missing)} (expected client,kpi,period,value)")
        return parsed
    where = {c: names.index(c) for c in CSV_COLUMNS}
    seen: dict[tuple[str, str, str], int] = {}
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(parsed.rows) + len(parsed.errors) >= MAX_CSV_ROWS:
            parsed.errors.append(f"line {number}: more than {MAX_CSV_ROWS} rows in one file")
            break
        if len(cells) < len(names):
            parsed.errors.append(f"line {number}: {len(cells)} columns, the header has {len(names)}")
            continue
        client, kpi, label, raw = (cells[where[c]].strip() for c in CSV_COLUMNS)
        if not client or not kpi:
            parsed.errors.append(f"line {number}: the client and the kpi must not be empty")
            continue
        try:
            period = parse_label(label).label
        except PeriodError as exc:
            parsed.errors.append(f"line {number}: {exc}")
            continue
        try:
            value = parse_value(raw, decimal_comma=delimiter == ";")
        except ValueError as exc:
            why = f" ({exc})" if "separator" in str(exc) else ""
            parsed.errors.append(f"line {number}: value {raw!r} is not a number{why}")
            continue
        key = (client.lower(), kpi, period)
        if key in seen:
            parsed.errors.append(f"line {number}: the same client, kpi and period as line {seen[key]}")
            continue
        seen[key] = number
        parsed.rows.append(KpiRow(number, client, kpi, period, value))
    return parsed


@dataclass(frozen=True)
class KnownClient:
    client_ref: str
    company: str
    contact_email: str
    kpis: tuple[str, ...]


def match_client(written: str, clients: Sequence[KnownClient]) -> KnownClient | str:
    """The client `written` names (its ref, contact email or company, case-insensitive), or why
    none (unknown, or a company name more than one client has)."""
    text = written.strip().lower()
    for how in ("client_ref", "contact_email", "company"):
        found = [c for c in clients if getattr(c, how).lower() == text]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            return f"{written!r} names {len(found)} clients: use the client ref"
    return f"no client {written!r} (a company, a client ref or a contact email)"
