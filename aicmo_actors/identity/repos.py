"""Identity's repositories: users and password logins, API tokens, the audit trail.

Each public method is one unit of work of `storage.work` over the tables of
`identity.tables`, and returns plain dataclasses. Two things happen outside a transaction
on purpose: hashing and checking a password (argon2, about 0.1 s, in a thread, so no
transaction and no event loop waits for it), and the token cache.

`IdentityStore` is the module's store: `store.users`, `store.tokens`, `store.audit`, and
`store.login`. Tokens and passwords are never logged, never stored raw and never audited.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from argon2 import PasswordHasher
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.identity import passwords
from aicmo_actors.identity.roles import Principal, check_role
from aicmo_actors.identity.tables import identity_audit as audit_t
from aicmo_actors.identity.tables import identity_tokens as tokens_t
from aicmo_actors.identity.tables import identity_users as users_t
from aicmo_actors.storage.work import run_read, run_write

__all__ = [
    "CACHE_SECONDS",
    "TOKEN_PREFIX",
    "AuditActor",
    "AuditRepo",
    "AuditRow",
    "IdentityError",
    "IdentityStore",
    "LoginRefused",
    "TokenRow",
    "TokensRepo",
    "UserRow",
    "UsersRepo",
    "check_label",
    "hash_token",
    "new_token",
    "normalise_name",
    "record_in",
    "scrub_detail",
]

log = structlog.get_logger("aicmo")

#: Every raw token starts so: a secret scanner (or a person) can tell what leaked.
TOKEN_PREFIX = "aicmo_"
#: How much of a raw token is kept to tell tokens apart ("aicmo_" and six more characters).
PREFIX_LENGTH = 12
#: How long `TokensRepo.authenticate` trusts what it read: a revoke made by another process
#: (or a user removed there) takes effect within this long; one made through the same store at once.
CACHE_SECONDS = 5
_CACHE_FOR = timedelta(seconds=CACHE_SECONDS)
#: `last_used_at` is written at most this often per token.
_LAST_USED_EVERY = timedelta(minutes=1)
#: Bounds of the in-memory tables (token cache, failed logins of unknown names).
_MAX_REMEMBERED = 10_000
#: A presented token longer than this is not one of ours (ours are 49 characters).
_MAX_TOKEN_LENGTH = 200

_NAME = re.compile(r"[a-z0-9._@-]{1,100}")
_SECRET_KEY = re.compile(r"password|passwd|passphrase|token|secret|api[-_]?key|authorization|credential", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class IdentityError(ValueError):
    """A request identity refuses (a bad name or role, a duplicate, the last owner), said in one line."""


# -- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    """A user as stored, minus the password hash."""

    user_id: int
    name: str
    role: str
    has_password: bool
    created_at: datetime
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None


@dataclass(frozen=True)
class TokenRow:
    """An API token as stored: never the token itself, only its first characters (`prefix`)."""

    token_id: int
    user_id: int
    user_name: str
    label: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        """Whether the token still authenticates at `now` (not revoked, not expired)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class AuditRow:
    audit_id: int
    at: datetime
    actor: str
    source: str
    action: str
    target: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class LoginRefused:
    """A refused login. The same shape whether the user exists or not.

    `reason` is ``"invalid"`` (wrong name or password) or ``"locked"`` (too many failures:
    the password was not even checked); `retry_after_s` is how long until the next attempt
    counts (0: at once).
    """

    reason: str
    retry_after_s: int


@dataclass(frozen=True)
class AuditActor:
    """Who makes a change, for the audit row written with it: a user's name or ``cli:<os user>``,
    and ``api`` or ``cli``."""

    name: str
    source: str

    def write(
        self, conn: Connection, action: str, target: str | None, detail: Mapping[str, Any] | None, now: datetime
    ) -> int:
        """Write this actor's audit row in `conn`'s transaction (`record_in`); its id."""
        return record_in(conn, self.name, self.source, action, target, detail, now)

    def line(
        self,
        action: str,
        target: str | None,
        detail: Mapping[str, Any] | None,
        now: datetime,
        *,
        only_if: Callable[[Any], object] | None = None,
    ) -> Callable[[Connection, Any], object]:
        """The audit row as a repository's `also` (`storage.work.Also`): written in the change's
        own transaction, so the two are never apart; with `only_if`, only when it says the
        result changed something (`bool`: a repository's True). A row that needs the change's
        result (a number it gave, a balance) is written by the caller's own `also` with `write`."""

        def written(conn: Connection, result: Any) -> None:
            if only_if is None or only_if(result):
                self.write(conn, action, target, detail, now)

        return written


# -- pure helpers -------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """`name` lower-cased, or IdentityError when it is not 1 to 100 of ``a-z 0-9 . _ @ -``."""
    lowered = name.lower()
    if not _NAME.fullmatch(lowered):
        raise IdentityError(
            f"invalid user name {name!r}: use 1 to 100 characters among a-z, 0-9, '.', '_', '@' and '-'"
        )
    return lowered


def new_token() -> str:
    """A fresh raw API token: ``aicmo_`` and 43 random URL-safe characters (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(raw: str) -> str:
    """What is stored of a token: its SHA-256, hex (the token is random, so no salt nor slow hash is needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def scrub_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """`detail` fit for the audit trail: every key named like a password, token or secret
    dropped (at any depth), and values made JSON (dates as ISO strings)."""
    return {str(k): _scrub_value(v) for k, v in (detail or {}).items() if not _SECRET_KEY.search(str(k))}


def _scrub_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return scrub_detail(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def check_label(label: str) -> str:
    """`label` trimmed, or IdentityError when it is not 1 to 100 printable characters."""
    cleaned = label.strip()
    if not 1 <= len(cleaned) <= 100 or _CONTROL.search(cleaned):
        raise IdentityError(f"invalid token label {label!r}: use 1 to 100 printable characters")
    return cleaned


def _role(role: str) -> str:
    try:
        return check_role(role)
    except ValueError as exc:
        raise IdentityError(str(exc)) from None


def _checked_password(password: str) -> str:
    try:
        passwords.check_password(password)
    except ValueError as exc:
        raise IdentityError(str(exc)) from None
    return password


def _login_kind(password: str | None) -> str:
    # A value, under a key without the word "password": `scrub_detail` drops every key named so.
    return "tokens only" if password is None else "password and tokens"


def _seconds_until(later: datetime, now: datetime) -> int:
    return max(1, math.ceil((later - now).total_seconds()))


def _token_condition(token: int | str) -> sa.ColumnElement[bool]:
    """Which token `token` names: an id, a prefix as listed (``aicmo_xxxxxx``), or the raw token."""
    if isinstance(token, int):
        return tokens_t.c.id == token
    text = token.strip()
    if text.isdigit():
        return tokens_t.c.id == int(text)
    if text.startswith(TOKEN_PREFIX) and len(text) > PREFIX_LENGTH:
        return tokens_t.c.token_hash == hash_token(text)
    if text.startswith(TOKEN_PREFIX) and len(text) == PREFIX_LENGTH:
        return tokens_t.c.prefix == text
    raise IdentityError(f"{token!r} names no token: give its id or its prefix ({TOKEN_PREFIX}… as listed)")


# -- rows from the database ---------------------------------------------------------------------


def _user(r: RowMapping) -> UserRow:
    return UserRow(
        user_id=int(r["id"]),
        name=r["name"],
        role=r["role"],
        has_password=r["password_hash"] is not None,
        created_at=r["created_at"],
        failed_logins=int(r["failed_logins"]),
        locked_until=r["locked_until"],
        last_login_at=r["last_login_at"],
    )


def _user_by_name(conn: Connection, name: str) -> UserRow | None:
    r = conn.execute(sa.select(users_t).where(users_t.c.name == name)).mappings().first()
    return _user(r) if r is not None else None


def _existing_user(conn: Connection, name: str) -> UserRow:
    user = _user_by_name(conn, name)
    if user is None:
        raise IdentityError(f"no user named {name!r}")
    return user


_TOKEN_COLUMNS = (
    tokens_t.c.id,
    tokens_t.c.user_id,
    users_t.c.name.label("user_name"),
    tokens_t.c.label,
    tokens_t.c.prefix,
    tokens_t.c.created_at,
    tokens_t.c.expires_at,
    tokens_t.c.last_used_at,
    tokens_t.c.revoked_at,
)


def _token(r: RowMapping) -> TokenRow:
    return TokenRow(
        token_id=int(r["id"]),
        user_id=int(r["user_id"]),
        user_name=r["user_name"],
        label=r["label"],
        prefix=r["prefix"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        last_used_at=r["last_used_at"],
        revoked_at=r["revoked_at"],
    )


def _tokens_where(conn: Connection, condition: sa.ColumnElement[bool]) -> list[TokenRow]:
    query = sa.select(*_TOKEN_COLUMNS).join(users_t, users_t.c.id == tokens_t.c.user_id).where(condition)
    return [_token(r) for r in conn.execute(query.order_by(tokens_t.c.id)).mappings()]


def _refuse_last_owner(conn: Connection, user: UserRow) -> None:
    """IdentityError when `user` is the only owner left (locks the owners' rows on PostgreSQL)."""
    if user.role != "owner":
        return
    owners = conn.execute(sa.select(users_t.c.id).where(users_t.c.role == "owner").with_for_update()).scalars()
    if list(owners) == [user.user_id]:
        raise IdentityError(f"{user.name!r} is the last owner: make another user owner first")


# -- audit --------------------------------------------------------------------------------------


def record_in(
    conn: Connection,
    actor: str,
    source: str,
    action: str,
    target: str | None,
    detail: Mapping[str, Any] | None,
    now: datetime,
) -> int:
    """Write one audit row inside the caller's transaction; return its id.

    `detail` loses every key named like a password, token or secret (`scrub_detail`).
    """
    if not actor or len(actor) > 200:
        raise IdentityError(f"an audit actor must be 1 to 200 characters, not {len(actor)}")
    if not source or len(source) > 16:
        raise IdentityError(f"an audit source must be 1 to 16 characters (api, cli), not {source!r}")
    if not action or len(action) > 100:
        raise IdentityError(f"an audit action must be 1 to 100 characters, not {len(action)}")
    if target is not None and len(target) > 500:
        target = target[:499] + "…"
    row = {"at": now, "actor": actor, "source": source, "action": action, "target": target}
    inserted = conn.execute(
        sa.insert(audit_t).values(**row, detail=scrub_detail(detail)).returning(audit_t.c.id)
    ).scalar_one()
    return int(inserted)


def _audit_by(
    conn: Connection, by: AuditActor | None, action: str, target: str, detail: dict[str, Any], now: datetime
) -> None:
    if by is not None:
        record_in(conn, by.name, by.source, action, target, detail, now)


class AuditRepo:
    """The audit trail: who changed what, when, from where."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(
        self,
        actor: str,
        source: str,
        action: str,
        target: str | None,
        detail: Mapping[str, Any] | None,
        now: datetime,
    ) -> int:
        """Write one audit row (secrets stripped from `detail`); return its id."""
        return await run_write(self.engine, lambda conn: record_in(conn, actor, source, action, target, detail, now))

    async def list(
        self,
        since: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> builtins.list[AuditRow]:
        """Audit rows newest first: at or after `since`, by `actor`, whose action starts with
        `action`; at most `limit` (1 to 1000). The next page: `before_id` = the last row's id."""
        if not 1 <= limit <= 1000:
            raise IdentityError(f"limit must be 1 to 1000, not {limit}")
        query = sa.select(audit_t).order_by(audit_t.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(audit_t.c.at >= since)
        if actor is not None:
            query = query.where(audit_t.c.actor == actor)
        if action is not None:
            query = query.where(audit_t.c.action.startswith(action, autoescape=True))
        if before_id is not None:
            query = query.where(audit_t.c.id < before_id)

        def work(conn: Connection) -> builtins.list[AuditRow]:
            return [
                AuditRow(
                    audit_id=int(r["id"]),
                    at=r["at"],
                    actor=r["actor"],
                    source=r["source"],
                    action=r["action"],
                    target=r["target"],
                    detail=dict(r["detail"] or {}),
                )
                for r in conn.execute(query).mappings()
            ]

        return await run_read(self.engine, work)


# -- the token cache ----------------------------------------------------------------------------


@dataclass
class _Cached:
    principal: Principal
    fetched_at: datetime
    good_until: datetime


@dataclass
class _TokenCache:
    """What `authenticate` read lately, by token hash, for at most `CACHE_SECONDS`; and when
    each token's `last_used_at` was last known to be written."""

    entries: dict[str, _Cached] = field(default_factory=dict)
    last_used: dict[int, datetime] = field(default_factory=dict)
    #: One more at every `clear`: what was read before a revoke is not cached after it.
    generation: int = 0

    def get(self, digest: str, now: datetime) -> Principal | None:
        entry = self.entries.get(digest)
        if entry is None:
            return None
        if entry.fetched_at <= now < entry.good_until:
            return entry.principal
        del self.entries[digest]
        return None

    def put(
        self, digest: str, principal: Principal, now: datetime, expires_at: datetime | None, generation: int
    ) -> None:
        if generation != self.generation:
            return
        if len(self.entries) >= _MAX_REMEMBERED:
            self.entries = {d: e for d, e in self.entries.items() if e.fetched_at <= now < e.good_until}
            if len(self.entries) >= _MAX_REMEMBERED:
                self.entries.clear()
        good_until = now + _CACHE_FOR
        if expires_at is not None:
            good_until = min(good_until, expires_at)
        self.entries[digest] = _Cached(principal, now, good_until)

    def used_due(self, token_id: int, now: datetime) -> bool:
        last = self.last_used.get(token_id)
        return last is None or not last <= now < last + _LAST_USED_EVERY

    def used_at(self, token_id: int | None, at: datetime | None) -> None:
        if token_id is None or at is None:
            return
        if len(self.last_used) >= _MAX_REMEMBERED:
            self.last_used.clear()
        self.last_used[token_id] = at

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()


# -- tokens -------------------------------------------------------------------------------------


class TokensRepo:
    """API tokens: made (shown once), checked on every request, listed, revoked."""

    def __init__(self, engine: AsyncEngine, cache: _TokenCache) -> None:
        self.engine = engine
        self._cache = cache

    async def create(
        self,
        user_name: str,
        label: str,
        now: datetime,
        expires_at: datetime | None = None,
        *,
        by: AuditActor | None = None,
    ) -> tuple[str, TokenRow]:
        """Make a token for `user_name`; return the raw token (shown once, kept nowhere) and its row."""
        name = user_name.lower()
        cleaned = check_label(label)
        if expires_at is not None and expires_at <= now:
            raise IdentityError(f"the token would expire at {expires_at.isoformat()}, before it is made")
        raw = new_token()
        prefix = raw[:PREFIX_LENGTH]

        def work(conn: Connection) -> TokenRow:
            user = _existing_user(conn, name)
            values = {
                "user_id": user.user_id,
                "label": cleaned,
                "prefix": prefix,
                "token_hash": hash_token(raw),
                "created_at": now,
                "expires_at": expires_at,
            }
            token_id = int(conn.execute(sa.insert(tokens_t).values(**values).returning(tokens_t.c.id)).scalar_one())
            detail = {"id": token_id, "label": cleaned, "prefix": prefix, "expires_at": expires_at}
            _audit_by(conn, by, "token.create", name, detail, now)
            return _tokens_where(conn, tokens_t.c.id == token_id)[0]

        row = await run_write(self.engine, work)
        return raw, row

    async def authenticate(self, raw: str, now: datetime) -> Principal | None:
        """Who `raw` belongs to, or None (unknown, revoked, expired, or its user removed).

        Cheap per request: what it read is trusted for up to `CACHE_SECONDS` (never past the
        token's expiry), and `last_used_at` is written at most once a minute per token.
        """
        if not raw.startswith(TOKEN_PREFIX) or len(raw) > _MAX_TOKEN_LENGTH:
            return None
        digest = hash_token(raw)
        principal = self._cache.get(digest, now)
        if principal is None:
            generation = self._cache.generation
            found = await run_read(self.engine, lambda conn: _live_token(conn, digest, now))
            if found is None:
                return None
            principal, expires_at, last_used_at = found
            self._cache.put(digest, principal, now, expires_at, generation)
            self._cache.used_at(principal.token_id, last_used_at)
        token_id = principal.token_id
        if token_id is not None and self._cache.used_due(token_id, now):
            await run_write(self.engine, lambda conn: _touch(conn, token_id, now))
            self._cache.used_at(token_id, now)
        return principal

    async def get(self, token: int | str) -> TokenRow | None:
        """The token named by its id, its prefix or the raw token itself; None if there is none."""
        condition = _token_condition(token)

        def work(conn: Connection) -> TokenRow | None:
            found = _tokens_where(conn, condition)
            if len(found) > 1:
                raise IdentityError(f"{len(found)} tokens start with {token!r}: name it by its id")
            return found[0] if found else None

        return await run_read(self.engine, work)

    async def list(self, user_name: str | None = None) -> builtins.list[TokenRow]:
        """Every token (revoked and expired ones too), oldest first; only `user_name`'s if given."""

        def work(conn: Connection) -> builtins.list[TokenRow]:
            if user_name is None:
                return _tokens_where(conn, sa.true())
            user = _existing_user(conn, user_name.lower())
            return _tokens_where(conn, tokens_t.c.user_id == user.user_id)

        return await run_read(self.engine, work)

    async def revoke(self, token: int | str, now: datetime, *, by: AuditActor | None = None) -> bool:
        """Revoke the live token named by its id, its prefix or the raw token: True if one was
        revoked, False if there is no such live token. Takes effect at once in this store."""
        condition = _token_condition(token)

        def work(conn: Connection) -> TokenRow | None:
            found = _tokens_where(conn, sa.and_(condition, tokens_t.c.revoked_at.is_(None)))
            if len(found) > 1:
                raise IdentityError(f"{len(found)} live tokens start with {token!r}: name it by its id")
            if not found:
                return None
            row = found[0]
            conn.execute(sa.update(tokens_t).where(tokens_t.c.id == row.token_id).values(revoked_at=now))
            detail = {"id": row.token_id, "label": row.label, "prefix": row.prefix}
            _audit_by(conn, by, "token.revoke", row.user_name, detail, now)
            return row

        try:
            revoked = await run_write(self.engine, work)
        finally:
            self._cache.clear()
        return revoked is not None


def _live_token(
    conn: Connection, digest: str, now: datetime
) -> tuple[Principal, datetime | None, datetime | None] | None:
    query = (
        sa.select(
            tokens_t.c.id,
            tokens_t.c.expires_at,
            tokens_t.c.last_used_at,
            tokens_t.c.revoked_at,
            users_t.c.id.label("user_id"),
            users_t.c.name,
            users_t.c.role,
        )
        .join(users_t, users_t.c.id == tokens_t.c.user_id)
        .where(tokens_t.c.token_hash == digest)
    )
    r = conn.execute(query).mappings().first()
    if r is None or r["revoked_at"] is not None or (r["expires_at"] is not None and r["expires_at"] <= now):
        return None
    principal = Principal(user_id=int(r["user_id"]), name=r["name"], role=r["role"], token_id=int(r["id"]))
    return principal, r["expires_at"], r["last_used_at"]


def _touch(conn: Connection, token_id: int, now: datetime) -> None:
    # The condition keeps "at most once a minute" true across processes too.
    conn.execute(
        sa.update(tokens_t)
        .where(
            tokens_t.c.id == token_id,
            sa.or_(tokens_t.c.last_used_at.is_(None), tokens_t.c.last_used_at <= now - _LAST_USED_EVERY),
        )
        .values(last_used_at=now)
    )


# -- users and logins ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _LoginState:
    user_id: int
    name: str
    role: str
    password_hash: str | None
    locked_until: datetime | None


@dataclass
class _Failures:
    """Failed logins of a name that is no user, kept in memory so its answers look like a user's."""

    count: int
    locked_until: datetime | None


@dataclass
class _Attempt:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class UsersRepo:
    """Users: who they are, their role, their password; and logging in with it."""

    def __init__(self, engine: AsyncEngine, cache: _TokenCache, hasher: PasswordHasher) -> None:
        self.engine = engine
        self.hasher = hasher
        self._cache = cache
        self._dummy_hash: str | None = None
        self._unknown: dict[str, _Failures] = {}
        self._attempts: dict[str, _Attempt] = {}

    async def add(
        self,
        name: str,
        role: str,
        password: str | None,
        now: datetime,
        *,
        by: AuditActor | None = None,
    ) -> UserRow:
        """Add a user (`password` None: one who only uses tokens). IdentityError for a bad
        name, role or password, or a name already taken."""
        name = normalise_name(name)
        role = _role(role)
        password_hash = None if password is None else await self._hash(_checked_password(password))
        duplicate = IdentityError(f"a user named {name!r} exists already")

        def work(conn: Connection) -> UserRow:
            if _user_by_name(conn, name) is not None:
                raise duplicate
            values = {
                "name": name,
                "role": role,
                "password_hash": password_hash,
                "created_at": now,
                "failed_logins": 0,
            }
            conn.execute(sa.insert(users_t).values(**values))
            _audit_by(conn, by, "user.add", name, {"role": role, "login": _login_kind(password)}, now)
            return _existing_user(conn, name)

        try:
            user = await run_write(self.engine, work)
        except IntegrityError:  # added by someone else since the check
            raise duplicate from None
        return user

    async def list(self) -> builtins.list[UserRow]:
        """Every user, by name."""

        def work(conn: Connection) -> builtins.list[UserRow]:
            return [_user(r) for r in conn.execute(sa.select(users_t).order_by(users_t.c.name)).mappings()]

        return await run_read(self.engine, work)

    async def get(self, name: str) -> UserRow | None:
        """The user called `name` (any case), or None."""
        return await run_read(self.engine, lambda conn: _user_by_name(conn, name.lower()))

    async def remove(self, name: str, now: datetime, *, by: AuditActor | None = None) -> bool:
        """Remove a user and their tokens: True if there was one. Refuses the last owner."""
        key = name.lower()

        def work(conn: Connection) -> bool:
            user = _user_by_name(conn, key)
            if user is None:
                return False
            _refuse_last_owner(conn, user)
            revoked = conn.execute(sa.delete(tokens_t).where(tokens_t.c.user_id == user.user_id)).rowcount
            conn.execute(sa.delete(users_t).where(users_t.c.id == user.user_id))
            _audit_by(conn, by, "user.remove", key, {"role": user.role, "revoked": revoked}, now)
            return True

        try:
            removed = await run_write(self.engine, work)
        finally:
            self._cache.clear()
        return removed

    async def set_role(self, name: str, role: str, now: datetime, *, by: AuditActor | None = None) -> UserRow:
        """Give a user another role (at once for their tokens in this store). Refuses to demote the last owner."""
        key, role = name.lower(), _role(role)

        def work(conn: Connection) -> UserRow:
            user = _existing_user(conn, key)
            if user.role == role:
                return user
            if role != "owner":
                _refuse_last_owner(conn, user)
            conn.execute(sa.update(users_t).where(users_t.c.id == user.user_id).values(role=role))
            _audit_by(conn, by, "user.role", key, {"from": user.role, "to": role}, now)
            return _existing_user(conn, key)

        try:
            return await run_write(self.engine, work)
        finally:
            self._cache.clear()

    async def set_password(
        self, name: str, password: str | None, now: datetime, *, by: AuditActor | None = None
    ) -> UserRow:
        """Set (or, with None, remove) a user's password; this also lifts any lock."""
        key = name.lower()
        password_hash = None if password is None else await self._hash(_checked_password(password))

        def work(conn: Connection) -> UserRow:
            user = _existing_user(conn, key)
            conn.execute(
                sa.update(users_t)
                .where(users_t.c.id == user.user_id)
                .values(password_hash=password_hash, failed_logins=0, locked_until=None)
            )
            _audit_by(conn, by, "user.password", key, {"login": _login_kind(password)}, now)
            return _existing_user(conn, key)

        return await run_write(self.engine, work)

    async def login(self, name: str, password: str, now: datetime) -> Principal | LoginRefused:
        """Check a name and password: the user, or why not and when to try again.

        After 3 failures in a row each further one locks the user for 1 s, 2 s, 4 s, ... up to
        900 s; while locked, attempts are refused without checking the password; a success
        resets the count. A name that is no user gets answers of the same shape and timing
        (a password check against a dummy hash, and the same lock schedule, kept in memory).
        Attempts for one name are taken one at a time in this process.
        """
        key = name.lower()
        # In memory by digest: a name of any length costs 64 characters.
        digest = hashlib.sha256(key.encode()).hexdigest()
        attempt = self._attempts.setdefault(digest, _Attempt())
        attempt.waiting += 1
        try:
            async with attempt.lock:
                return await self._login(key, digest, password, now)
        finally:
            attempt.waiting -= 1
            if attempt.waiting == 0:
                del self._attempts[digest]

    async def _login(self, key: str, digest: str, password: str, now: datetime) -> Principal | LoginRefused:
        state = await run_read(self.engine, lambda conn: _login_state(conn, key)) if _NAME.fullmatch(key) else None
        if state is None:
            return await self._refuse_unknown(digest, password, now)
        if state.locked_until is not None and now < state.locked_until:
            return LoginRefused("locked", _seconds_until(state.locked_until, now))
        stored = state.password_hash
        if stored is None:
            await self._verify(await self._dummy(), password)  # as long as a real check
            return await self._refuse(state, now)
        if not await self._verify(stored, password):
            return await self._refuse(state, now)
        rehashed = None
        if passwords.needs_rehash(stored, self.hasher):
            rehashed = await asyncio.to_thread(self.hasher.hash, password)
        await run_write(self.engine, lambda conn: _record_success(conn, state.user_id, rehashed, now))
        log.info("login", user=state.name)
        return Principal(user_id=state.user_id, name=state.name, role=state.role)

    async def _refuse(self, state: _LoginState, now: datetime) -> LoginRefused:
        failed, wait = await run_write(self.engine, lambda conn: _record_failure(conn, state.user_id, now))
        log.info("login refused", user=state.name, failed_logins=failed, locked_for_s=wait)
        return LoginRefused("invalid", wait)

    async def _refuse_unknown(self, digest: str, password: str, now: datetime) -> LoginRefused:
        failures = self._unknown.pop(digest, None) or _Failures(0, None)
        self._unknown[digest] = failures  # the most recent last: the oldest go first
        if len(self._unknown) > _MAX_REMEMBERED:
            del self._unknown[next(iter(self._unknown))]
        if failures.locked_until is not None and now < failures.locked_until:
            return LoginRefused("locked", _seconds_until(failures.locked_until, now))
        await self._verify(await self._dummy(), password)
        failures.count += 1
        wait = passwords.lockout_seconds(failures.count)
        failures.locked_until = now + timedelta(seconds=wait) if wait else None
        log.info("login refused", known=False)
        return LoginRefused("invalid", wait)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(passwords.hash_password, password, self.hasher)

    async def _verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(passwords.verify_password, password_hash, password, self.hasher)

    async def _dummy(self) -> str:
        """A hash of a random password made with this store's hasher, so checking it costs the same."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(24))
        return self._dummy_hash


def _login_state(conn: Connection, name: str) -> _LoginState | None:
    r = conn.execute(
        sa.select(users_t.c.id, users_t.c.name, users_t.c.role, users_t.c.password_hash, users_t.c.locked_until).where(
            users_t.c.name == name
        )
    ).first()
    if r is None:
        return None
    return _LoginState(int(r.id), r.name, r.role, r.password_hash, r.locked_until)


def _record_failure(conn: Connection, user_id: int, now: datetime) -> tuple[int, int]:
    current = conn.execute(sa.select(users_t.c.failed_logins).where(users_t.c.id == user_id)).scalar_one_or_none()
    failed = int(current or 0) + 1
    wait = passwords.lockout_seconds(failed)
    locked_until = now + timedelta(seconds=wait) if wait else None
    conn.execute(
        sa.update(users_t).where(users_t.c.id == user_id).values(failed_logins=failed, locked_until=locked_until)
    )
    return failed, wait


def _record_success(conn: Connection, user_id: int, rehashed: str | None, now: datetime) -> None:
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if rehashed is not None:
        values["password_hash"] = rehashed
    conn.execute(sa.update(users_t).where(users_t.c.id == user_id).values(**values))


# -- the store ----------------------------------------------------------------------------------


class IdentityStore:
    """Identity's repositories over one engine: `users`, `tokens`, `audit`, and `login`.

    `hasher` is argon2id with the library's defaults unless given (tests pass a cheap one).
    The token cache is the store's: make one store per process and share it.
    """

    def __init__(self, engine: AsyncEngine, *, hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        cache = _TokenCache()
        self.users = UsersRepo(engine, cache, hasher or passwords.DEFAULT_HASHER)
        self.tokens = TokensRepo(engine, cache)
        self.audit = AuditRepo(engine)

    async def login(self, name: str, password: str, now: datetime) -> Principal | LoginRefused:
        """A password login (`UsersRepo.login`)."""
        return await self.users.login(name, password, now)
