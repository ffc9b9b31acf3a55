"""The one SQLAlchemy MetaData every module declares its tables on, and the column types they share.

Constraint and index names come from the naming convention, so the migrations, SQLite and
PostgreSQL all agree on them and Alembic can drop or alter them by name later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    """Declarative base of every module's tables (all on the one shared `metadata`)."""

    metadata = metadata


#: Primary and foreign keys: 64-bit on PostgreSQL; plain INTEGER on SQLite, because only
#: ``INTEGER PRIMARY KEY`` is SQLite's autoincrementing rowid (BIGINT there would stay NULL).
Id: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends.

    SQLite keeps no offset, so a plain ``DateTime(timezone=True)`` reads back naive there and
    aware on PostgreSQL; this type stores UTC and always returns an aware UTC datetime. A naive
    datetime is refused: it is a bug (time comes from the clock, which is aware).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: one fixed form (no offset) keeps ordering right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
