"""What the read and operator methods of CAM's repositories share: their error, page sizes, and
values made JSON-able.

These methods serve the command line and the HTTP API (`leads.page`, `leads.history`,
`inbound.replies`, `inbound.relabel`, `alerts.page`, ...): they return plain dicts whose values
are strings, numbers, booleans, None, lists and dicts (times as ISO 8601 strings in UTC), so a
caller prints or serialises them as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aicmo_actors.cam.repos.sql import aware

#: The most rows one page may hold; callers cap there, and the methods do too.
MAX_PAGE = 500


class RecordError(Exception):
    """A request for a record that does not exist, or with a value no record can have
    (an unknown lead, reply, alert or campaign; a category or state that does not exist).
    Its message is one line, meant for the person who asked."""


def page_size(limit: int) -> int:
    """The page size a method uses: at least one row, at most `MAX_PAGE`."""
    if limit < 1:
        raise RecordError(f"a page holds at least one row, not {limit}")
    return min(int(limit), MAX_PAGE)


def one_of(kind: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    """`value` if it is one of `allowed`; a `RecordError` that lists them otherwise."""
    if value not in allowed:
        raise RecordError(f"unknown {kind} {value!r}: one of {', '.join(allowed)}")
    return value


def iso(value: datetime | None) -> str | None:
    """A stored time as ISO 8601 in UTC (SQLite hands them back naive), or None."""
    found = aware(value)
    return found.isoformat() if found is not None else None


def jsonable(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row's values, times as ISO strings (everything else is JSON-able as stored)."""
    return {str(k): iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


_RELABEL_NOTE = re.compile(r"^relabelled by (?P<by>.+) from (?P<old>[a-z_]+) to (?P<new>[a-z_]+) at (?P<at>\S+)$")


def relabel_note(by: str, old: str, new: str, at: datetime) -> str:
    """The line a hand-made relabelling adds to a reply's evidence (its `reasons`), so the
    history shows the classifier's label and the person's."""
    return f"relabelled by {' '.join(by.split()) or '?'} from {old} to {new} at {iso(at)}"


def read_relabel_note(text: str) -> dict[str, str] | None:
    """{"by", "from", "to", "at"} of a line `relabel_note` wrote; None for any other line."""
    found = _RELABEL_NOTE.match(text)
    if found is None:
        return None
    return {"by": found["by"], "from": found["old"], "to": found["new"], "at": found["at"]}
