"""`python run.py --help`: the command line of AICMO Actors."""

from __future__ import annotations

import argparse
import contextvars
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aicmo_actors.cli.errors import EXIT_CODES, UserError

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from aicmo_actors.settings import Settings

# Imports are lazy (inside the functions that need them): `python run.py classify FILE` must not
# pay for pydantic-settings, the database layer and the actors before it reads one file.

DESCRIPTION = """\
AICMO Actors: autonomous client acquisition by email, in one process: it prospects,
reads and understands every reply, follows up, knows when to stop and alerts a human for
the hot ones. The service also serves a web app (/app/) and a JSON API (/api/v1) for the
agency's people: `users add` makes their accounts. When a prospect signs (`deal won`), a
project starts: onboarding, a plan the client approves, then each period's work drafted,
checked, reviewed by the client and delivered (`projects`, `work`, `review`, `delivery`);
around it invoices and payment reminders (`invoices`, `pay`), results reports (`reports`),
each client's health and renewals (`health`, `deal renew`) and A/B variants chosen by a
bandit (`learn`). `demo --quarter` plays all of it for 91 days on a fake clock.

With no command (or only options), runs the service (same as `run`). Settings come from AICMO_* environment
variables (or a .env file); with none set, everything stays local: an SQLite database
(./aicmo.db) and Maildir folders (./mail/outbox, ./mail/inbox) instead of real mail servers.
`python run.py settings` shows every setting, its value and where it came from.
"""

EPILOG = "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)

#: pydantic-settings names the field and the source of a value it cannot decode.
_SETTINGS_ERROR = re.compile(r'field "(?P<field>[^"]+)" from source "(?P<source>[^"]+)"')

#: Command modules, each with `register(subparsers)`.
COMMAND_MODULES = (
    "aicmo_actors.cli.demo",
    "aicmo_actors.cli.cam",
    "aicmo_actors.cli.storage",
    "aicmo_actors.cli.settings_cmd",
    "aicmo_actors.cli.control",
    "aicmo_actors.cli.identity_cmd",
    "aicmo_actors.cli.records",
    "aicmo_actors.cli.package_cmd",
    "aicmo_actors.cli.projects_cmd",
    "aicmo_actors.cli.work_cmd",
    "aicmo_actors.cli.qc_cmd",
    "aicmo_actors.cli.review_cmd",
    "aicmo_actors.cli.delivery_cmd",
    "aicmo_actors.cli.billing_cmd",
    "aicmo_actors.cli.reporting_cmd",
    "aicmo_actors.cli.retention_cmd",
    "aicmo_actors.cli.learning_cmd",
)


#: `--database-url URL`, accepted by every command: it overrides AICMO_DATABASE_URL for the command.
DATABASE_URL_OPTION = "--database-url"
DATABASE_URL_HELP = "the database to use for this command (default: AICMO_DATABASE_URL, else ./aicmo.db)"
_DATABASE_URL: contextvars.ContextVar[str | None] = contextvars.ContextVar("aicmo_cli_database_url", default=None)


def load_settings(**overrides: object) -> Settings:
    """The settings from the environment and .env; a bad one is a `UserError` naming its variable.

    The command's `--database-url`, when given, is the database URL (over AICMO_DATABASE_URL)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from aicmo_actors.settings import Settings

    try:
        base = Settings()
    except ValidationError as exc:
        raise UserError(_invalid_setting(exc)) from None
    except SettingsError as exc:
        raise UserError(_undecodable_setting(exc)) from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"cannot read {_env_file()}: it is not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read {_env_file()}: {exc.strerror or exc}") from None
    except ValueError as exc:  # any other value a setting's own validation refuses
        raise UserError(f"invalid setting: {' '.join(str(exc).split())}") from None
    given_url = _DATABASE_URL.get()
    if given_url is not None:
        overrides = {"database_url": given_url, **overrides}
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _env_file() -> str:
    from aicmo_actors.settings import Settings

    return str(Settings.model_config.get("env_file") or ".env")


def _invalid_setting(exc: ValidationError) -> str:
    """One line: the variable (with the key path inside a JSON value) and what is wrong."""
    errors = exc.errors()
    first = errors[0]
    head, *rest = [str(p) for p in first["loc"]] or ["?"]
    where = ".".join([f"AICMO_{head.upper()}", *rest])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    # The value itself is never echoed: it may be a password.
    return " ".join(f"invalid setting {where}: {message}{more}".split())


def _undecodable_setting(exc: SettingsError) -> str:
    match = _SETTINGS_ERROR.search(str(exc))
    name = f"AICMO_{match['field'].upper()}" if match else "an AICMO_ setting"
    where = f" (in {_env_file()})" if match and "DotEnv" in match["source"] else ""
    cause = exc.__cause__
    if isinstance(cause, json.JSONDecodeError):
        reason = f"not valid JSON: {cause.msg} at line {cause.lineno} column {cause.colno}"
    else:
        reason = " ".join(str(cause or exc).split()) or type(cause or exc).__name__
    return f"invalid setting {name}{where}: {reason}"


def cmd_run(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.startup import imports_without_gc

    with imports_without_gc():
        import anyio

        from aicmo_actors.cli.service import serve

    settings = load_settings(seed=args.seed, tick_interval_s=args.tick)

    async def main() -> int:
        return await serve(settings)

    return anyio.run(main)


def cmd_status(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.status_file import pid_alive, read_status

    settings = load_settings()
    found = read_status(settings.state_dir)
    if found is None:
        raise UserError(
            f"no status in {settings.state_dir}/: is the service running here? start it with `python run.py`",
            exit_code=1,
        )
    pid, snap = found
    running = pid_alive(pid) and not snap.stopping
    if args.json:
        print(json.dumps({"running": running, "pid": pid, **json.loads(snap.model_dump_json())}))
        return 0 if running else 1
    age = (datetime.now(UTC) - snap.now).total_seconds() if snap.clock == "real" else 0.0
    state = "running" if running else "NOT running (last status shown)"
    print(f"service pid {pid}: {state}; clock {snap.clock}, seed {snap.seed}, updated {age:.0f}s ago")
    if snap.failure:
        print(f"failure: {snap.failure}")
    print(f"dead letters: {snap.dead_letters}")
    header = (
        f"{'actor':<28} {'status':<10} {'processed':>9} {'failed':>6} "
        f"{'restarts':>8} {'mailbox':>11} {'p50 ms':>8} {'p99 ms':>8}"
    )
    print(header)
    for a in snap.actors:
        box = f"{a.mailbox_depth}/{a.mailbox_capacity}"
        print(
            f"{a.name:<28} {a.status:<10} {a.processed:>9} {a.failed:>6} {a.restarts:>8} {box:>11} "
            f"{a.latency_p50_ms:>8.2f} {a.latency_p99_ms:>8.2f}"
        )
    return 0 if running else 1


def build_parser() -> argparse.ArgumentParser:
    """The whole command line. Building it imports no heavy module: each command imports what it
    needs when it runs, so `python run.py classify FILE` pays only for the classifier."""
    parser = argparse.ArgumentParser(
        prog="python run.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run the service (the default)",
        description="Run the service until SIGINT/SIGTERM.",
    )
    run.add_argument(
        "--seed",
        type=int,
        help="seed of every random source (default: AICMO_SEED, else random and logged)",
    )
    run.add_argument(
        "--tick",
        type=float,
        metavar="SECONDS",
        help="seconds between acquisition cycles (default: AICMO_TICK_INTERVAL_S or 60)",
    )
    run.set_defaults(func=cmd_run)
    status = sub.add_parser(
        "status",
        help="show per-actor stats of the running service",
        description="Print the running service's per-actor counters (from "
        "AICMO_STATE_DIR/status.json). Exits 1 when the service is not running.",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=cmd_status)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    _offer_database_url(parser)
    return parser


def _offer_database_url(parser: argparse.ArgumentParser) -> None:
    """Every command's `--help` lists `--database-url` (`_dispatch` takes it out of the
    arguments before they are parsed, wherever it stands, so it works the same everywhere)."""
    if DATABASE_URL_OPTION not in parser._option_string_actions:
        parser.add_argument(DATABASE_URL_OPTION, metavar="URL", default=argparse.SUPPRESS, help=DATABASE_URL_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _offer_database_url(child)


def _take_database_url(parser: argparse.ArgumentParser, given: list[str]) -> tuple[list[str], str | None]:
    """`given` without `--database-url URL` (or `--database-url=URL`), and the URL (the last one given)."""
    rest: list[str] = []
    url = None
    items = iter(given)
    for item in items:
        if item == "--":
            rest += [item, *items]
            break
        if item == DATABASE_URL_OPTION:
            url = next(items, None)
            if url is None or url.startswith("-"):
                parser.error(f"argument {DATABASE_URL_OPTION}: expected a database URL")
        elif item.startswith(DATABASE_URL_OPTION + "="):
            url = item.partition("=")[2]
        else:
            rest.append(item)
    if url is not None and not url.strip():
        parser.error(f"argument {DATABASE_URL_OPTION}: expected a database URL")
    return rest, url


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv), run the command, return the exit code."""
    try:
        try:
            return _dispatch(argv)
        finally:
            # Output a reader stopped taking (`| head -1`) fails here, not at interpreter exit.
            sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe


def _dispatch(argv: Sequence[str] | None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    given, database_url = _take_database_url(parser, given)
    token = _DATABASE_URL.set(database_url)
    try:
        return _dispatch_parsed(parser, given)
    finally:
        _DATABASE_URL.reset(token)


def _dispatch_parsed(parser: argparse.ArgumentParser, given: list[str]) -> int:
    if given and given[0].startswith("-") and given[0] not in ("-h", "--help"):
        given = ["run", *given]  # `python run.py --tick 5` is `python run.py run --tick 5`
    args = parser.parse_args(given)
    if args.command is None:
        args = parser.parse_args(["run", *given])
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        # The database refused (read-only, disk full, locked too long): the place, not a bug.
        # Anything else (a syntax error, a missing table) is a bug and keeps its traceback.
        # Only a command that imported SQLAlchemy can have raised its OperationalError.
        sa_exc = sys.modules.get("sqlalchemy.exc")
        if sa_exc is None or not isinstance(exc, sa_exc.OperationalError):
            raise
        message = database_failure(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


#: What a database says when the place it lives in is the problem, and what to do about it.
_ENVIRONMENT_FAILURES = (
    (("readonly", "read-only"), "the database file or its folder is read-only: give this user write access to both"),
    (("disk is full", "disk full", "no space left"), "free some disk space"),
    (("disk i/o error",), "the disk failed to read or write"),
    (("database is locked",), "another process holds the database: try again, or stop it"),
    (("unable to open database file",), "check the path and the folder's permissions"),
)


def database_failure(exc: BaseException) -> str | None:
    """One line for a database its surroundings stopped (read-only, full, locked), or None."""
    from aicmo_actors.storage.engine import describe_url

    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    hint = next((h for needles, h in _ENVIRONMENT_FAILURES if any(n in reason.lower() for n in needles)), None)
    if hint is None:
        return None
    try:
        where = f" at {describe_url(load_settings().database_url)}"
    except UserError:
        where = ""
    return f"the database{where} refused the operation: {reason}; {hint}"


def _stdout_to_devnull() -> None:
    # Python flushes stdout again at exit; pointing it at /dev/null keeps that quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
