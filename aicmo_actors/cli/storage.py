"""`python run.py migrate` and `python run.py dead-letters`: the database from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicmo_actors.cli.errors import UserError

if TYPE_CHECKING:
    from aicmo_actors.storage.dead_letters import StoredDeadLetter

# The database layer (SQLAlchemy, Alembic) is imported by the commands that use it, not when
# the command line is built: every other command would pay for it before doing anything.

URL_HELP = "database URL (default: AICMO_DATABASE_URL, else sqlite+aiosqlite:///./aicmo.db)"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `migrate` and `dead-letters` commands."""
    mig = subparsers.add_parser(
        "migrate",
        help="upgrade the database schema (or move it to --to REV)",
        description=(
            "Upgrade the database schema to the newest revision, or move it up or down to "
            "--to REV ('base' drops every table). Prints the revision before and after. "
            "Needed for PostgreSQL before the service starts; an embedded SQLite database "
            "is upgraded by the service itself."
        ),
    )
    mig.add_argument("--to", default="head", metavar="REV", help="target revision (default: head)")
    mig.add_argument("--database-url", metavar="URL", help=URL_HELP)
    mig.set_defaults(func=cmd_migrate)

    dead = subparsers.add_parser(
        "dead-letters",
        help="list the newest dead letters",
        description=(
            "List the newest messages that could not be delivered or processed (refused, "
            "undeliverable, poison, shutdown), newest first, with the actor, kind, message "
            "type, error and time."
        ),
    )
    dead.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="how many (default: 20)")
    dead.add_argument("--json", action="store_true", help="print one JSON array, with payloads")
    dead.add_argument("--database-url", metavar="URL", help=URL_HELP)
    dead.set_defaults(func=cmd_dead_letters)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _database_url(args: argparse.Namespace) -> str:
    url = getattr(args, "database_url", None)
    if url:
        return str(url)
    from aicmo_actors.cli.main import load_settings

    return load_settings().database_url


def _revision(rev: str | None) -> str:
    return rev if rev is not None else "empty (no schema)"


def cmd_migrate(args: argparse.Namespace) -> int:
    """Move the schema to --to (default head) and print from -> to."""
    import anyio

    from aicmo_actors.storage.engine import DatabaseUnavailable, describe_url
    from aicmo_actors.storage.schema import SchemaError, migrate

    url = _database_url(args)

    async def run() -> int:
        try:
            result = await migrate(url, args.to)
        except (DatabaseUnavailable, SchemaError) as exc:
            raise UserError(str(exc)) from exc
        where = describe_url(url)
        if result.changed:
            print(f"{where}: {_revision(result.before)} -> {_revision(result.after)}")
        else:
            print(f"{where}: already at {_revision(result.after)}")
        return 0

    return anyio.run(run)


def _row(letter: StoredDeadLetter) -> dict[str, Any]:
    return {
        "at": letter.at.isoformat(),
        "kind": letter.kind,
        "actor": letter.actor,
        "message_type": letter.message_type,
        "error": letter.error,
        "payload": letter.payload,
        "letter_id": letter.letter_id,
        "correlation_id": letter.correlation_id,
    }


def _first_line(text: str, width: int) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """Print the newest dead letters as a table (or JSON)."""
    import anyio

    from aicmo_actors.storage.dead_letters import list_dead_letters
    from aicmo_actors.storage.engine import DatabaseUnavailable, make_engine, parse_url
    from aicmo_actors.storage.schema import MIGRATE_COMMAND, SchemaError, current_revision, head_revision

    url = _database_url(args)
    try:
        parsed = parse_url(url)
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).expanduser().exists():
            raise UserError(f"no database at {parsed.database}: start the service or run `{MIGRATE_COMMAND}`")

    async def run() -> list[StoredDeadLetter]:
        try:
            if await current_revision(url) != head_revision():
                raise UserError(f"the database schema is not up to date: run `{MIGRATE_COMMAND}` first")
            engine = make_engine(url)
            try:
                return await list_dead_letters(engine, args.limit)
            finally:
                await engine.dispose()
        except (DatabaseUnavailable, SchemaError) as exc:
            raise UserError(str(exc)) from exc

    letters = anyio.run(run)
    if args.json:
        print(json.dumps([_row(letter) for letter in letters], ensure_ascii=False))
        return 0
    if not letters:
        print("no dead letters")
        return 0
    print(f"{'time (UTC)':<19}  {'kind':<13} {'actor':<24} {'type':<22} error")
    for letter in letters:
        print(
            f"{letter.at:%Y-%m-%d %H:%M:%S}  {letter.kind:<13} {letter.actor:<24} "
            f"{letter.message_type:<22} {_first_line(letter.error, 80)}"
        )
    return 0
