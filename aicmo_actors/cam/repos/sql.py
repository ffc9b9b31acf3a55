"""Small helpers every CAM repository uses: time zones, bind parameters (IN-list chunks are `storage.sql`'s)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive: they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def param(name: str, column: sa.ColumnElement[Any]) -> sa.BindParameter[Any]:
    """A bind parameter typed like `column` (statements built once take their values so)."""
    return sa.bindparam(name, type_=column.type)


def normalise_address(address: str) -> str:
    """Suppression and de-duplication compare whole addresses, lower-cased and trimmed."""
    return address.strip().strip("<>").lower()


def stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def quarter_hour(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[int]:
    """The quarter hour of a `UtcDateTime`, as whole quarter hours since the epoch, worked out
    by the database (so a figure per day can be grouped there: every zone's offset is a whole
    number of quarter hours, so a quarter hour lies in one local day)."""
    if dialect == "sqlite":
        # Stored as UTC text without an offset: strftime('%s') reads it as UTC.
        seconds: sa.ColumnElement[Any] = sa.cast(sa.func.strftime("%s", column), sa.Integer)
        return sa.cast(seconds / 900, sa.Integer)
    return sa.cast(sa.func.floor(sa.extract("epoch", column) / 900), sa.BigInteger)
