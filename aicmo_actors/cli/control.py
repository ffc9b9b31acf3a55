"""Control-plane commands: `modules` (list, show, enable, disable), `worker pause|resume`, `usage`.

A switch changed here is kept in the database at once; the running service (another
process) applies it at its next cycle. Through the API it applies at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aicmo_actors.cli.cam import _now, _run, open_store
from aicmo_actors.cli.errors import UserError


def _running_snapshot() -> Any:
    """The running service's last snapshot (health needs it), or None."""
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.cli.status_file import pid_alive, read_status

    found = read_status(load_settings().state_dir)
    if found is None:
        return None
    pid, snapshot = found
    return snapshot if pid_alive(pid) and not snapshot.stopping else None


def cmd_modules_list(args: argparse.Namespace) -> int:
    from aicmo_actors.api.plane import module_registry
    from aicmo_actors.orchestration.health import module_health
    from aicmo_actors.orchestration.switches import SwitchesRepo

    registry = module_registry()

    async def work() -> int:
        async with open_store() as store:
            state = await SwitchesRepo(store.engine).state()
        snapshot = _running_snapshot()
        rows: list[dict[str, Any]] = []
        for spec in registry.specs():
            health = module_health(spec, snapshot, state, registry) if snapshot is not None else None
            rows.append(
                {
                    "name": spec.name,
                    "enabled": state.enabled(spec.name),
                    "health": health["status"] if health else "unknown (service not running here)",
                    "reasons": health["reasons"] if health else [],
                    "actors": list(spec.actors),
                    "can_disable": spec.can_disable,
                    "contract_version": spec.contract_version,
                    "title": spec.title,
                }
            )
        if args.json:
            print(json.dumps({"worker_paused": state.worker_paused, "modules": rows}))
            return 0
        print(f"worker: {'PAUSED (no sending)' if state.worker_paused else 'running'}")
        print(f"{'module':<16} {'switch':<8} {'health':<10} actors")
        for r in rows:
            switch = "on" if r["enabled"] else "OFF"
            print(f"{r['name']:<16} {switch:<8} {str(r['health']).split(' ')[0]:<10} {len(r['actors'])}: {r['title']}")
            for reason in r["reasons"]:
                print(f"{'':<16} - {reason}")
        if snapshot is None:
            print("(health needs the running service: start it with `python run.py`)")
        return 0

    return _run(work)


def cmd_modules_show(args: argparse.Namespace) -> int:
    from aicmo_actors.api.plane import module_registry
    from aicmo_actors.orchestration.registry import UnknownModule

    registry = module_registry()
    try:
        spec = registry.get(args.name)
    except UnknownModule as exc:
        raise UserError(f"{exc}: see `python run.py modules list`") from None
    data = spec.model_dump(mode="json")
    data["stops_with_it"] = registry.dependents(spec.name)
    if args.json:
        print(json.dumps(data))
        return 0
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key:<17} {shown}")
    return 0


def _switch(name: str, enabled: bool, reason: str | None) -> int:
    from aicmo_actors.api.plane import set_switch
    from aicmo_actors.cli.identity_cmd import cli_actor
    from aicmo_actors.orchestration.switches import SwitchesRepo

    actor = cli_actor().name

    async def work() -> int:
        async with open_store() as store:
            changed = await set_switch(
                SwitchesRepo(store.engine), name, enabled, actor=actor, source="cli", reason=reason, now=_now()
            )
        what = "the worker's sending" if name == "worker" else f"module {name!r}"
        state = ("on" if enabled else "off") if name != "worker" else ("resumed" if enabled else "paused")
        if not changed:
            print(f"{what} was already {state}")
            return 0
        print(f"{what}: {state}. A running service applies it at its next cycle.")
        return 0

    return _run(work)


def cmd_modules_switch(enabled: bool) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from aicmo_actors.api.plane import module_registry
        from aicmo_actors.orchestration.registry import UnknownModule

        registry = module_registry()
        try:
            spec = registry.get(args.name)
        except UnknownModule as exc:
            raise UserError(f"{exc}: see `python run.py modules list`") from None
        if not enabled:
            if not spec.can_disable:
                raise UserError(f"module {spec.name!r} cannot be switched off")
            print(f"switching {spec.name} off stops: {spec.stops or 'its actors'}")
            for other in registry.dependents(spec.name):
                print(f"  and module {other!r}, which needs it")
        return _switch(spec.name, enabled, args.reason)

    return handler


def cmd_worker(enabled: bool) -> Any:
    def handler(args: argparse.Namespace) -> int:
        if not enabled:
            print("pausing the worker: no email is sent; replies are still read, stored and acted on")
        return _switch("worker", enabled, args.reason)

    return handler


def cmd_usage(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.timespec import parse_since
    from aicmo_actors.observability.usage import GROUPS, UsageRepo, totals_csv

    groups = [g.strip() for g in args.by.split(",") if g.strip()]
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise UserError(f"--by {args.by!r}: use one or more of {', '.join(GROUPS)} (comma-separated)")
    now = _now()
    try:
        since = parse_since(args.since, now) if args.since else None
        until = parse_since(args.until, now) if args.until else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if "kind" not in groups and args.kind is None:
        groups.append("kind")  # never add emails to messages read

    async def work() -> int:
        async with open_store() as store:
            totals = await UsageRepo(store.engine).totals(
                by=groups,  # type: ignore[arg-type]
                since=since,
                until=until,
                module=args.module,
                kind=args.kind,
                campaign=args.campaign,
            )
        if args.csv:
            sys.stdout.write(totals_csv(totals, groups))
            return 0
        if args.json:
            for t in totals:
                print(json.dumps({**t.group, "quantity": t.quantity}))
            return 0
        if not totals:
            print("no usage recorded in that period")
            return 0
        widths = [max(len(g), *(len(str(t.group[g] or "-")) for t in totals)) for g in groups]
        print("  ".join(g.ljust(w) for g, w in zip(groups, widths, strict=True)) + "  quantity")
        for t in totals:
            cells = [str(t.group[g] or "-").ljust(w) for g, w in zip(groups, widths, strict=True)]
            print("  ".join(cells) + f"  {t.quantity:>8}")
        return 0

    return _run(work)


def register(sub: Any) -> None:
    modules = sub.add_parser(
        "modules",
        help="the modules: list with health, show one, switch one off or on",
        description="Every module declares itself (its actors, what it consumes and emits, whether it can be "
        "switched off). A module switched off keeps its waiting work and does it when switched on again; the "
        "choice is kept across restarts. Health needs the running service (its status file).",
    )
    modules.add_argument("--json", action="store_true", help="print one JSON object (as `modules list --json`)")
    msub = modules.add_subparsers(dest="modules_command", metavar="ACTION")
    modules.set_defaults(func=cmd_modules_list)
    p = msub.add_parser("list", help="every module, its switch and its health (the default)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_modules_list)
    p = msub.add_parser("show", help="one module's declaration")
    p.add_argument("name", help="the module's name (see `modules list`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_modules_show)
    for verb, enabled, text in (
        ("disable", False, "switch a module off: its actors stop taking work, which waits for them"),
        ("enable", True, "switch a module back on: it does what waited"),
    ):
        p = msub.add_parser(verb, help=text)
        p.add_argument("name", help="the module's name (see `modules list`)")
        p.add_argument("--reason", help="why (kept with the switch and in the audit)")
        p.set_defaults(func=cmd_modules_switch(enabled))

    worker = sub.add_parser("worker", help="pause or resume all sending (replies are still read)")
    wsub = worker.add_subparsers(dest="worker_command", metavar="ACTION", required=True)
    for verb, enabled, text in (
        ("pause", False, "stop sending any email until resumed (kept across restarts)"),
        ("resume", True, "resume sending"),
    ):
        p = wsub.add_parser(verb, help=text)
        p.add_argument("--reason", help="why (kept with the switch and in the audit)")
        p.set_defaults(func=cmd_worker(enabled))

    p = sub.add_parser(
        "usage",
        help="what each module did: emails sent, messages read and classified, alerts, API calls",
        description="Totals of the usage events, grouped. Each act is counted once, even across crashes.",
    )
    p.add_argument("--since", help="from this ISO date/time, or an age: 30d, 12h (default: everything)")
    p.add_argument("--until", help="up to this ISO date/time (excluded)")
    p.add_argument(
        "--by", default="module", help="group by one or more of module, kind, campaign, day (comma-separated)"
    )
    p.add_argument("--module", help="only this module")
    p.add_argument("--kind", help="only this kind (email_sent, message_read, message_classified, ...)")
    p.add_argument("--campaign", help="only this campaign")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="print CSV (with a header row)")
    out.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.set_defaults(func=cmd_usage)
