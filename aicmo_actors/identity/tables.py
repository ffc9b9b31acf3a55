"""Tables of `identity` (prefix ``identity_``): users, their API tokens, and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime

#: Who may do what: `owner` everything (users and secrets too), `operator` runs campaigns and
#: handles replies, `viewer` reads only.
ROLES = ("owner", "operator", "viewer")


class IdentityUser(Base):
    """A person (or a tool) who may use the control API."""

    __tablename__ = "identity_users"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: Lower case, unique: what they log in with and what the audit trail names.
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    #: argon2id hash (PHC string); NULL for a user who only ever uses tokens.
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: Failed password attempts since the last success: each one doubles the wait before the next.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint("role IN ('owner', 'operator', 'viewer')", name="role"),)


class IdentityToken(Base):
    """An API token: shown once when made, kept only as its SHA-256."""

    __tablename__ = "identity_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("identity_users.id", ondelete="CASCADE"), index=True)
    #: What the user called it ("ci", "laptop").
    label: Mapped[str] = mapped_column(String(100))
    #: The token's first characters, safe to show ("aicmo_3f9a…"), to tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class IdentityAudit(Base):
    """Who changed what, when, and from where (API or command line)."""

    __tablename__ = "identity_audit"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: A user's name, or ``cli:<os user>`` for the command line.
    actor: Mapped[str] = mapped_column(String(200))
    #: ``api`` or ``cli``.
    source: Mapped[str] = mapped_column(String(16))
    #: Dotted verb: ``module.disable``, ``campaign.pause``, ``reply.relabel``, ``user.add``.
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(500))
    #: What was asked, minus secrets.
    detail: Mapped[Any] = mapped_column(JSON, default=dict)

    __table_args__ = (Index(None, "at"), Index(None, "actor"))


identity_users = cast(Table, IdentityUser.__table__)
identity_tokens = cast(Table, IdentityToken.__table__)
identity_audit = cast(Table, IdentityAudit.__table__)
