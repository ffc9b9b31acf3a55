"""`python run.py work list|show|upload|assign|signoff`: the work items of production, one
piece each, followed from plan to delivery, and what a person does with them.

A person's draft (`work upload ITEM FILE`) becomes the item's next version (source "person")
and goes to quality control on the service's next tick; `work signoff ITEM` lets a piece that
passed QC go to the client (packages with `qc_signoff`); `work assign ITEM USER` names who
works on it (a user of `python run.py user list`, or "unassigned"). Item ids are accepted by
their first characters.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.records import _audit_line, _cli_user, _now, _printable, _run_with_store, _table, _when

#: The largest draft file accepted.
MAX_DRAFT_BYTES = 1_000_000


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _repo(store: Any) -> Any:
    from aicmo_actors.production.repos import ItemsRepo

    return ItemsRepo(store.engine)


def _guarded(work: Any) -> Any:
    from aicmo_actors.production.repos import ProductionError

    async def guarded(store: Any) -> Any:
        try:
            return await work(store)
        except ProductionError as exc:
            raise UserError(str(exc)) from None

    return guarded


def cmd_list(args: argparse.Namespace) -> int:
    rows = _run_with_store(lambda store: _repo(store).page(project=args.project, state=args.state))
    if args.json:
        for row in rows:
            print(json.dumps({k: _iso(v) for k, v in row.items()}, ensure_ascii=False))
        return 0
    if not rows:
        print("No work items (they are made when a plan is approved and production starts)")
        return 0
    shown = [
        {
            "id": r["id"][:8],
            "project": r["project_id"][:8],
            "type": f"{r['type']} / {r['channel']}",
            "due": r["due_on"].isoformat(),
            "state": r["state"]
            + (" (needs a person)" if r["needs_person_at"] else "")
            + (" LATE" if r["late_at"] else ""),
            "v": r["version"],
            "assignee": r["assignee"],
            "topic": r["topic"],
        }
        for r in rows
    ]
    _table(
        shown,
        [
            ("ID", "id"),
            ("PROJECT", "project"),
            ("TYPE", "type"),
            ("DUE", "due"),
            ("STATE", "state"),
            ("V", "v"),
            ("ASSIGNEE", "assignee"),
            ("TOPIC", "topic"),
        ],
    )
    print("\nOne item whole: python run.py work show ID")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    async def work(store: Any) -> dict[str, Any]:
        repo = _repo(store)
        found: dict[str, Any] = await repo.show(await repo.resolve(args.item))
        return found

    found = _run_with_store(_guarded(work))
    if args.json:
        print(json.dumps(found, default=_iso, ensure_ascii=False))
        return 0
    i = found["item"]
    print(f"Work item {i['id']}")
    print(f"  project:  {i['project_id']} ({_printable(i['company'])})")
    print(f"  piece:    {i['type']} on {i['channel']} ({i['key']}): {_printable(i['topic'])}")
    print(f"  due:      {i['due_on']} (drafting from {i['start_on']})")
    print(f"  state:    {i['state']}, version {i['version']}, assignee {i['assignee']}")
    print(f"  counts:   {i['retakes']} retake(s), {i['rounds']} review round(s)")
    if i.get("needs_person_at"):
        print(f"  waiting:  for a person's draft: python run.py work upload {i['id'][:8]} FILE")
    if i.get("late_at"):
        print(f"  late:     since {_when(_iso(i['late_at']))} UTC")
    for v in found["versions"]:
        author = f" by {v['author']}" if v.get("author") else ""
        tokens = f", {v['tokens']} tokens" if v.get("tokens") else ""
        print(
            f"\nVersion {v['version']} ({v['source']}{author}{tokens}, {_when(_iso(v['created_at']))}): "
            f"{_printable(v['title'], 80)}"
        )
        if v.get("qc_at"):
            verdict = "passed" if v["qc_passed"] else "failed"
            print(f"  QC {verdict} {_when(_iso(v['qc_at']))}")
            for f in v.get("qc_findings") or []:
                print(
                    f"    - {f.get('severity')} {f.get('check')}: {_printable(f.get('message'), 90)}"
                    + (f" ({_printable(f.get('excerpt'), 40)})" if f.get("excerpt") else "")
                )
        if v.get("verdict"):
            comment = f": {_printable(v['comment'], 200)}" if v.get("comment") else ""
            print(f"  client: {v['verdict']} ({v['reviewed_by']}, {_when(_iso(v['reviewed_at']))}){comment}")
        if args.text:
            print("  ---")
            for line in v["text"].splitlines():
                print(f"  {_printable(line)}")
    if found["deliveries"]:
        print("\nDeliveries:")
        for d in found["deliveries"]:
            state = f"delivered {_when(_iso(d['delivered_at']))}" if d.get("delivered_at") else "waiting"
            if d.get("error") and not d.get("delivered_at"):
                state += f", failing ({d['attempts']} attempts): {_printable(d['error'], 80)}"
            receipt = f", receipt: {_printable(d['receipt'], 80)}" if d.get("receipt") else ""
            print(f"  v{d['version']} {d['method']:<8} {state}{receipt}")
    print("\nHistory:")
    for h in found["history"]:
        print(f"  {_when(_iso(h['at']))}  {h['state']:<17} {_printable(h['detail'], 120)}")
    return 0


def _read_draft(path: str) -> str:
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DRAFT_BYTES:
        raise UserError(f"{path} is larger than {MAX_DRAFT_BYTES} bytes: a draft is text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text (Markdown or plain text)") from None


def cmd_upload(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.identity_cmd import cli_actor
    from aicmo_actors.production.drafting import to_html

    text = _read_draft(args.file)

    async def work(store: Any) -> tuple[str, int]:
        repo = _repo(store)
        item_id = await repo.resolve(args.item)
        now = _now()

        def audited(conn: Any, version: int) -> None:
            detail = {"version": version, "bytes": len(text.encode())}
            cli_actor().write(conn, "work.upload", item_id, detail, now)

        version = await repo.upload(
            item_id, title=args.title, text=text, html=to_html(text), by=_cli_user(), now=now, also=audited
        )
        return item_id, version

    item_id, version = _run_with_store(_guarded(work))
    print(f"item {item_id[:8]}: version {version} uploaded; the running service sends it to QC on its next tick")
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    from aicmo_actors.identity.repos import IdentityStore
    from aicmo_actors.production.repos import UNASSIGNED

    async def work(store: Any) -> str:
        user = args.user.strip()
        if user.lower() != UNASSIGNED:
            found = await IdentityStore(store.engine).users.get(user)
            if found is None:
                raise UserError(f"no user {user!r} (python run.py user list), or say {UNASSIGNED}")
            user = found.name
        repo = _repo(store)
        item_id: str = await repo.resolve(args.item)
        await repo.assign(
            item_id,
            user.lower() if user.lower() == UNASSIGNED else user,
            _now(),
            also=_audit_line("work.assign", item_id, {"user": user}),
        )
        return item_id

    item_id = _run_with_store(_guarded(work))
    print(f"item {item_id[:8]}: assigned to {args.user.strip()}")
    return 0


def cmd_signoff(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.identity_cmd import cli_actor

    async def work(store: Any) -> tuple[str, int]:
        repo = _repo(store)
        item_id = await repo.resolve(args.item)
        now = _now()

        def audited(conn: Any, version: int) -> None:
            cli_actor().write(conn, "work.signoff", item_id, {"version": version}, now)

        version = await repo.signoff(item_id, _cli_user(), now, also=audited)
        return item_id, version

    item_id, version = _run_with_store(_guarded(work))
    print(f"item {item_id[:8]}: version {version} signed off; it goes to the client with the next review batch")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from contracts.production import ITEM_STATES

    work = sub.add_parser(
        "work",
        help="production's work items: list, show, upload a draft, assign, sign off",
        description="Every planned piece becomes a work item, drafted, checked (QC), reviewed by the client and "
        "delivered. Item ids are accepted by their first characters (at least 4).",
    )
    wsub = work.add_subparsers(dest="work_action", metavar="ACTION", required=True)
    listing = wsub.add_parser("list", help="the work items, by due date")
    listing.add_argument("--project", metavar="ID", help="one project's (its id or first characters)")
    listing.add_argument("--state", choices=ITEM_STATES)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)
    show = wsub.add_parser(
        "show", help="one item whole: versions, QC findings, the client's verdicts, deliveries, history"
    )
    show.add_argument("item", metavar="ITEM")
    show.add_argument("--text", action="store_true", help="print each version's text too")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(func=cmd_show)
    upload = wsub.add_parser(
        "upload",
        help="a person's draft (a Markdown or text file) becomes the item's next version",
        description='The file (UTF-8 Markdown or plain text) becomes the next version, source "person"; the '
        "running service sends it to quality control on its next tick.",
    )
    upload.add_argument("item", metavar="ITEM")
    upload.add_argument("file", metavar="FILE")
    upload.add_argument("--title", metavar="TEXT", help="the piece's title (default: the last version's)")
    upload.set_defaults(func=cmd_upload)
    assign = wsub.add_parser("assign", help="name who works on an item (a user, or 'unassigned')")
    assign.add_argument("item", metavar="ITEM")
    assign.add_argument("user", metavar="USER")
    assign.set_defaults(func=cmd_assign)
    signoff = wsub.add_parser("signoff", help="let an item that passed QC go to the client (packages with qc_signoff)")
    signoff.add_argument("item", metavar="ITEM")
    signoff.set_defaults(func=cmd_signoff)
