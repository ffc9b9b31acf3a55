"""`python run.py --help`: the command line of AICMO Actors."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import anyio
from pydantic import ValidationError

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.status_file import pid_alive, read_status
from aicmo_actors.settings import Settings

DESCRIPTION = """\
AICMO Actors: an autonomous client-acquisition and agency back office, one process.

With no command, runs the service (same as `run`). Settings come from AICMO_* environment
variables (or a .env file); with none set, everything stays local: an SQLite database
(./aicmo.db) and Maildir folders (./mail/outbox, ./mail/inbox) instead of real mail servers.
"""

#: Command modules, each with `register(subparsers)`.
COMMAND_MODULES = (
    "aicmo_actors.cli.demo",
    "aicmo_actors.cli.cam",
    "aicmo_actors.cli.storage",
)


def load_settings(**overrides: object) -> Settings:
    try:
        base = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"invalid setting AICMO_{where.upper()}: {first['msg']}") from exc
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def cmd_run(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.service import serve

    settings = load_settings(seed=args.seed, tick_interval_s=args.tick)

    async def main() -> int:
        return await serve(settings)

    return anyio.run(main)


def cmd_status(args: argparse.Namespace) -> int:
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
    print(
        f"service pid {pid}: {state}; clock {snap.clock}, seed {snap.seed}, updated {age:.0f}s ago"
    )
    if snap.failure:
        print(f"failure: {snap.failure}")
    print(f"dead letters: {snap.dead_letters}")
    header = f"{'actor':<28} {'status':<10} {'processed':>9} {'failed':>6} {'restarts':>8} {'mailbox':>11} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    for a in snap.actors:
        box = f"{a.mailbox_depth}/{a.mailbox_capacity}"
        print(
            f"{a.name:<28} {a.status:<10} {a.processed:>9} {a.failed:>6} {a.restarts:>8} {box:>11} "
            f"{a.latency_p50_ms:>8.2f} {a.latency_p99_ms:>8.2f}"
        )
    return 0 if running else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python run.py",
        description=DESCRIPTION,
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
        description="Print the running service's per-actor counters (from AICMO_STATE_DIR/status.json). Exits 1 when the service is not running.",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or sys.argv[1:])])
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
