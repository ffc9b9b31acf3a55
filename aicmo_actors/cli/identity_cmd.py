"""`python run.py users ...` and `python run.py audit`: who may use the control API, and what they changed."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aicmo_actors.cli.errors import UserError

if TYPE_CHECKING:
    from aicmo_actors.identity.repos import AuditActor, AuditRow, IdentityStore, TokenRow

# The database layer and argon2 are imported by the commands that use them, not when the
# command line is built.

ROLES_HELP = "owner (everything, users and secrets too), operator (runs campaigns, handles replies) or viewer (reads)"
_AGE = re.compile(r"(\d+)\s*([smhdw])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _now() -> datetime:
    # The command line is outside any actor system: wall time is the time.
    return datetime.now(UTC)


def cli_actor() -> AuditActor:
    """``cli:<os user>``, as the audit trail names a change made from the command line."""
    from aicmo_actors.identity.repos import AuditActor

    try:
        who = getpass.getuser()
    except Exception:  # no login name and no passwd entry (a bare container)
        who = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return AuditActor(name=f"cli:{who}"[:200], source="cli")


@asynccontextmanager
async def open_identity() -> AsyncIterator[IdentityStore]:
    """An IdentityStore on the configured database (`cli.cam.open_engine`)."""
    from aicmo_actors.cli.cam import open_engine
    from aicmo_actors.identity.repos import IdentityStore

    async with open_engine() as engine:
        yield IdentityStore(engine)


def _run(work: Callable[[], Awaitable[int]]) -> int:
    """Run `work`; what identity refuses (a bad name, the last owner) is a one-line UserError."""
    import anyio

    from aicmo_actors.identity.repos import IdentityError
    from aicmo_actors.storage.engine import DatabaseUnavailable

    try:
        return anyio.run(work)
    except (IdentityError, DatabaseUnavailable) as exc:
        raise UserError(str(exc)) from exc


def _clean(text: str | None, width: int = 0) -> str:
    shown = _CONTROL.sub("?", text or "")
    return shown if not width or len(shown) <= width else shown[: width - 1] + "…"


def _when(at: datetime | None, never: str = "never") -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at is not None else never


def _whole(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not a whole number") from None
    if value < 1:
        raise UserError(f"{option} must be at least 1, not {value}")
    return value


def _checked(check: Callable[[str], str], value: str) -> str:
    from aicmo_actors.identity.repos import IdentityError

    try:
        return check(value)
    except (IdentityError, ValueError) as exc:
        raise UserError(str(exc)) from None


# -- users --------------------------------------------------------------------------------------


def _check_password(password: str) -> None:
    from aicmo_actors.identity.passwords import check_password

    try:
        check_password(password)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _read_password(args: argparse.Namespace) -> str | None:
    """The new user's password: from stdin, from two prompts on a terminal, or none (tokens only)."""
    if args.password_stdin:
        password = (sys.stdin.readline() if sys.stdin is not None else "").rstrip("\r\n")
        if not password:
            raise UserError("--password-stdin: standard input gave no password")
        _check_password(password)
        return password
    if sys.stdin is None or not sys.stdin.isatty():
        return None
    try:
        first = getpass.getpass("password (empty: none, this user will log in with tokens only): ")
        if not first:
            return None
        _check_password(first)
        again = getpass.getpass("the same password again: ")
    except EOFError:
        raise UserError("no password given (end of input): no user was added") from None
    if again != first:
        raise UserError("the two passwords differ: no user was added")
    return first


def _print_token(raw: str, row: TokenRow) -> None:
    expires = f", expires {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else ""
    print(f"token {row.token_id} ({row.prefix}, label {row.label!r}{expires}) for {row.user_name}:")
    print(raw)
    print("it will not be shown again: keep it somewhere safe now (only its hash is stored)")


def cmd_users_add(args: argparse.Namespace) -> int:
    from aicmo_actors.identity.repos import check_label, normalise_name
    from aicmo_actors.identity.roles import check_role

    name = _checked(normalise_name, args.name)
    role = _checked(check_role, args.role)
    label = _checked(check_label, args.token) if args.token is not None else None
    password = _read_password(args)
    by = cli_actor()

    async def work() -> int:
        async with open_identity() as store:
            now = _now()
            user = await store.users.add(name, role, password, now, by=by)
            made = await store.tokens.create(name, label, now, by=by) if label is not None else None
        how = "with a password" if user.has_password else "without a password"
        print(f"user {user.name!r} added: {user.role}, {how}")
        if made is not None:
            _print_token(*made)
        elif not user.has_password:
            print(f"it has no token yet: python run.py users token {user.name}")
        return 0

    return _run(work)


def cmd_users_list(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_identity() as store:
            users = await store.users.list()
            tokens = await store.tokens.list()
        now = _now()
        if not users:
            print("no users yet: python run.py users add NAME --role owner")
            return 0
        live: dict[int, int] = {}
        for token in tokens:
            if token.live(now):
                live[token.user_id] = live.get(token.user_id, 0) + 1
        print(f"{'name':<30} {'role':<9} {'password':<9} {'created (UTC)':<17} {'last login (UTC)':<17} {'tokens':>6}")
        for u in users:
            locked = " (locked)" if u.locked_until is not None and now < u.locked_until else ""
            print(
                f"{u.name:<30} {u.role:<9} {('yes' if u.has_password else 'no') + locked:<9} "
                f"{_when(u.created_at):<17} {_when(u.last_login_at):<17} {live.get(u.user_id, 0):>6}"
            )
        return 0

    return _run(work)


def cmd_users_remove(args: argparse.Namespace) -> int:
    name = args.name.lower()
    unknown = f"no user named {name!r}: see `python run.py users list`"
    by = cli_actor()

    async def look() -> int:
        async with open_identity() as store:
            user = await store.users.get(name)
            if user is None:
                raise UserError(unknown)
            return len(await store.tokens.list(name))

    async def remove() -> int:
        async with open_identity() as store:
            if not await store.users.remove(name, _now(), by=by):
                raise UserError(unknown)
        print(f"user {name!r} removed, with its tokens")
        return 0

    tokens = _run(look)
    if not args.yes and sys.stdin is not None and sys.stdin.isatty():
        try:
            answer = input(f"remove user {name!r} and its {tokens} token(s)? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    return _run(remove)


def cmd_users_token(args: argparse.Namespace) -> int:
    from aicmo_actors.identity.repos import check_label

    label = _checked(check_label, args.label)
    days = _whole(args.expires_days, "--expires-days") if args.expires_days is not None else None
    by = cli_actor()

    async def work() -> int:
        async with open_identity() as store:
            now = _now()
            expires_at = now + timedelta(days=days) if days is not None else None
            raw, row = await store.tokens.create(args.name, label, now, expires_at, by=by)
        _print_token(raw, row)
        return 0

    return _run(work)


def cmd_users_tokens(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_identity() as store:
            tokens = await store.tokens.list(args.name)
        if not tokens:
            who = f" for {args.name.lower()!r}" if args.name else ""
            print(f"no tokens{who}: python run.py users token NAME")
            return 0
        now = _now()
        print(
            f"{'id':>5} {'prefix':<12} {'user':<20} {'label':<20} {'created (UTC)':<17} "
            f"{'expires (UTC)':<17} {'last used (UTC)':<17} revoked (UTC)"
        )
        for t in tokens:
            expires = _when(t.expires_at, "-") + (" (past)" if t.expires_at and t.expires_at <= now else "")
            print(
                f"{t.token_id:>5} {t.prefix:<12} {_clean(t.user_name, 20):<20} {_clean(t.label, 20):<20} "
                f"{_when(t.created_at):<17} {expires:<17} {_when(t.last_used_at):<17} {_when(t.revoked_at, '-')}"
            )
        return 0

    return _run(work)


def cmd_users_revoke(args: argparse.Namespace) -> int:
    by = cli_actor()

    async def work() -> int:
        async with open_identity() as store:
            revoked = await store.tokens.revoke(args.token, _now(), by=by)
        if not revoked:
            raise UserError(f"no live token {args.token!r}: see `python run.py users tokens`")
        print(f"token {args.token} revoked")
        return 0

    return _run(work)


# -- audit --------------------------------------------------------------------------------------


def _since(text: str, now: datetime) -> datetime:
    """An ISO time (UTC unless it says otherwise) or an age: 30m, 12h, 2d, 1w."""
    age = _AGE.fullmatch(text.strip().lower())
    if age:
        return now - timedelta(**{_AGE_UNITS[age[2]]: int(age[1])})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"--since {text!r}: give a time (2026-01-31, 2026-01-31T08:00Z) or an age (30m, 12h, 2d, 1w)"
        ) from None
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)


def _audit_json(row: AuditRow) -> dict[str, Any]:
    return {
        "id": row.audit_id,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "source": row.source,
        "action": row.action,
        "target": row.target,
        "detail": row.detail,
    }


def cmd_audit(args: argparse.Namespace) -> int:
    since = _since(args.since, _now()) if args.since is not None else None
    limit = _whole(args.limit, "--limit")
    if limit > 1000:
        raise UserError(f"--limit must be at most 1000, not {limit}")
    before = _whole(args.before_id, "--before-id") if args.before_id is not None else None

    async def work() -> int:
        async with open_identity() as store:
            rows = await store.audit.list(
                since=since, actor=args.actor, action=args.action, limit=limit, before_id=before
            )
        if args.json:
            print(json.dumps([_audit_json(r) for r in rows], ensure_ascii=False))
            return 0
        if not rows:
            print("no audit rows" + (" match" if since or args.actor or args.action or before else " yet"))
            return 0
        print(f"{'id':>6} {'time (UTC)':<19} {'actor':<24} {'source':<6} {'action':<20} {'target':<24} detail")
        for r in rows:
            detail = json.dumps(r.detail, ensure_ascii=False, separators=(",", ":"))
            print(
                f"{r.audit_id:>6} {r.at:%Y-%m-%d %H:%M:%S} {_clean(r.actor, 24):<24} {_clean(r.source, 6):<6} "
                f"{_clean(r.action, 20):<20} {_clean(r.target, 24):<24} {_clean(detail, 100)}"
            )
        if len(rows) == limit:
            print(f"(more: --before-id {rows[-1].audit_id})")
        return 0

    return _run(work)


# -- registration -------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `users` and `audit` commands."""
    users = subparsers.add_parser(
        "users",
        help="add, list and remove users of the control API; make and revoke their tokens",
        description="Users of the control API and their API tokens (see docs/identity.md). Every change is "
        "written to the audit trail as cli:<your login name>.",
    )
    usub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    p = usub.add_parser(
        "add",
        help="add a user (the first one should be an owner)",
        description="Add a user. Without --password-stdin it asks for a password twice on a terminal "
        "(empty: none); anywhere else the user has no password and logs in with tokens only. "
        "Passwords have at least 12 characters.",
    )
    p.add_argument("name", metavar="NAME", help="login name: 1 to 100 of a-z 0-9 . _ @ - (lower-cased)")
    p.add_argument("--role", required=True, metavar="ROLE", help=ROLES_HELP)
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--token", metavar="LABEL", help="also make an API token with this label, printed once")
    p.set_defaults(func=cmd_users_add)

    p = usub.add_parser("list", help="every user: role, password or not, created, last login, live tokens")
    p.set_defaults(func=cmd_users_list)

    p = usub.add_parser(
        "remove",
        help="remove a user and their tokens (never the last owner)",
        description="Remove a user and every token of theirs. Asks first on a terminal. The last owner cannot be "
        "removed: make another owner first.",
    )
    p.add_argument("name", metavar="NAME", help="the user's name")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_users_remove)

    p = usub.add_parser(
        "token",
        help="make an API token for a user (printed once)",
        description="Make an API token for NAME and print it once: only its SHA-256 is stored, so it cannot be "
        "shown again.",
    )
    p.add_argument("name", metavar="NAME", help="the user's name")
    p.add_argument("--label", default="cli", help="what the token is for, to tell tokens apart (default: cli)")
    p.add_argument("--expires-days", metavar="N", help="the token stops working after N days (default: never)")
    p.set_defaults(func=cmd_users_token)

    p = usub.add_parser("tokens", help="list tokens: id, prefix, label, created, expires, last used, revoked")
    p.add_argument("name", metavar="NAME", nargs="?", help="only this user's tokens (default: everyone's)")
    p.set_defaults(func=cmd_users_tokens)

    p = usub.add_parser(
        "revoke",
        help="revoke a token by its id or prefix",
        description="Revoke a token at once: give its id or its prefix as `users tokens` lists them (or the whole "
        "token). A running service stops accepting it within 5 seconds.",
    )
    p.add_argument("token", metavar="TOKEN_ID_OR_PREFIX", help="the token's id, or its prefix (aicmo_…)")
    p.set_defaults(func=cmd_users_revoke)

    audit = subparsers.add_parser(
        "audit",
        help="who changed what, newest first",
        description="The audit trail: every change made through the control API or these commands, newest first, "
        "with who made it, from where (api or cli), what and to what. Secrets are never recorded.",
    )
    audit.add_argument("--since", metavar="WHEN", help="from this time (ISO, UTC unless it says) or age (30m, 12h, 2d)")
    audit.add_argument("--actor", metavar="NAME", help="only changes by this actor (a user, or cli:<login>)")
    audit.add_argument("--action", metavar="PREFIX", help="only actions starting so (user, token.revoke, campaign.)")
    audit.add_argument("--limit", default="100", metavar="N", help="at most N rows, 1 to 1000 (default: 100)")
    audit.add_argument("--before-id", metavar="ID", help="only rows older than this id (the next page)")
    audit.add_argument("--json", action="store_true", help="print one JSON array")
    audit.set_defaults(func=cmd_audit)
