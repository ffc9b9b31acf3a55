"""Capability links for clients: a URL that lets its holder do one thing for one project
(answer the intake questionnaire, approve a plan) without an account.

The token in the URL is an HMAC, under the installation's secret, of the purpose, the
project and a nonce from the runtime's seeded random source: unpredictable without the
secret (so a known seed gives nothing away), reproducible in a simulation. Only its
SHA-256 is stored; a link expires (`expires_at`) and can be revoked (`revoked_at`, the
compensation of a cancelled project). A module declares its table with
`link_table("<module>")` in its `tables.py`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aicmo_actors.storage.metadata import Id, UtcDateTime, metadata

#: What `find_in` says of a token that does not open anything, in words a client can read.
UNKNOWN, EXPIRED, REVOKED = "unknown", "expired", "revoked"


def link_table(module: str) -> sa.Table:
    return sa.Table(
        f"{module}_links",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(36), nullable=False, index=True),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime),
        sa.Column("last_used_at", UtcDateTime),
    )


def make_token(secret: bytes, purpose: str, project_id: str, nonce: int) -> str:
    """The capability token (URL-safe hex, 256 bits)."""
    return hmac.new(secret, f"link:{purpose}:{project_id}:{nonce}".encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_in(
    conn: Connection, table: sa.Table, *, token: str, project_id: str, purpose: str, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        table.insert().values(
            token_hash=token_hash(token), project_id=project_id, purpose=purpose, created_at=now, expires_at=expires_at
        )
    )


@dataclass(frozen=True)
class Opened:
    """A token that opens a link: its project and purpose."""

    project_id: str
    purpose: str
    expires_at: datetime


def find_in(conn: Connection, table: sa.Table, token: str, purpose: str, now: datetime) -> Opened | str:
    """The link `token` opens for `purpose`, or why it opens nothing (`UNKNOWN`, `EXPIRED`,
    `REVOKED`). Compared by hash: a wrong token costs one indexed lookup and says nothing."""
    if not (16 <= len(token) <= 128) or not all(c in "0123456789abcdef" for c in token):
        return UNKNOWN
    row: Any = conn.execute(
        sa.select(table).where(table.c.token_hash == token_hash(token), table.c.purpose == purpose)
    ).first()
    if row is None:
        return UNKNOWN
    if row.revoked_at is not None:
        return REVOKED
    expires = row.expires_at
    if expires <= now:
        return EXPIRED
    conn.execute(table.update().where(table.c.id == row.id).values(last_used_at=now))
    return Opened(row.project_id, row.purpose, expires)


def revoke_in(conn: Connection, table: sa.Table, project_id: str, now: datetime) -> int:
    """Revoke every live link of a project: how many."""
    return int(
        conn.execute(
            table.update().where(table.c.project_id == project_id, table.c.revoked_at.is_(None)).values(revoked_at=now)
        ).rowcount
    )
