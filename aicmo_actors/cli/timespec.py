"""`--since` values: an ISO date or time, or an age (``30m``, ``12h``, ``7d``, ``2w``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime) -> datetime:
    """The moment `value` names; a naive date or time is UTC. ValueError (one line) otherwise."""
    match = _AGE.match(value)
    if match:
        return now - timedelta(**{_UNITS[match[2].lower()]: float(match[1])})
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read {value!r} as a time: use an ISO date or time (2026-12-01, 2026-12-01T09:00) "
            "or an age (30m, 12h, 7d, 2w)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
