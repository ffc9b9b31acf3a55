"""`review list|show|decide|revoke|protect`: the client reviews of work, seen and settled by a person.

Client review (`aicmo_actors.client_review`) asks the client about each batch of work by email,
with a link to a page where each piece is approved or sent back with a comment; the client may
also simply reply. A reply that is neither clearly an approval nor a change request is kept and
a person is alerted: `review decide` answers for the client. The running service announces a
decision made here on its next tick.
"""

from __future__ import annotations

import argparse
import getpass
import json
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.records import _audit_line, _now, _printable, _run_with_store, _table, _when

#: The shortest page password accepted (it is sent to the client separately).
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1_000
MAX_COMMENT_CHARS = 5_000


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def _store(store: Any) -> Any:
    from aicmo_actors.client_review.repos import ReviewStore

    return ReviewStore(store.engine)


def _project(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a project id (a UUID, see python run.py projects): {text!r}") from None


def cmd_list(args: argparse.Namespace) -> int:
    found = _run_with_store(lambda store: _store(store).batches.summaries(args.project))
    if args.json:
        for s in found:
            print(json.dumps({**s.__dict__}, default=_iso, ensure_ascii=False))
        return 0
    if not found:
        print("No reviews yet: production asks for them once work passes quality control")
        return 0
    rows = [
        {
            "batch": s.batch_key,
            "company": s.company,
            "state": s.state,
            "items": ", ".join(f"{n} {status}" for status, n in sorted(s.counts.items())),
            "deadline": _when(_iso(s.deadline_at)),
            "auto": _when(_iso(s.auto_approve_at)) if s.auto_approve_at else "never",
            "reminders": s.reminders_sent,
        }
        for s in found
    ]
    _table(
        rows,
        [
            ("BATCH", "batch"),
            ("COMPANY", "company"),
            ("STATE", "state"),
            ("ITEMS", "items"),
            ("DEADLINE (UTC)", "deadline"),
            ("AUTO-APPROVAL", "auto"),
            ("REMINDERS", "reminders"),
        ],
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    async def work(store: Any) -> dict[str, Any]:
        from aicmo_actors.client_review.repos import BatchState

        reviews = _store(store)
        state = await reviews.batches.state(args.batch, "")
        if not isinstance(state, BatchState):
            raise UserError(f"no review batch {args.batch!r} (python run.py review list)")
        batch = state.batch
        return {
            "batch": batch.batch_key,
            "project": batch.project_id,
            "company": batch.company,
            "state": batch.state,
            "created_at": batch.created_at,
            "deadline_at": batch.deadline_at,
            "auto_approve_at": batch.auto_approve_at,
            "reminders_sent": batch.reminders_sent,
            "reminders_planned": batch.reminders_planned,
            "next_action_at": batch.next_action_at,
            "needs_person_at": batch.needs_person_at,
            "withdrawn_at": batch.withdrawn_at,
            "items": [
                {
                    "item": i.item_id,
                    "version": i.version,
                    "title": i.title,
                    "type": i.type,
                    "channel": i.channel,
                    "status": i.status,
                    "by": i.reviewed_by,
                    "at": i.reviewed_at,
                    "comment": i.comment,
                    "announced_at": i.announced_at,
                }
                for i in state.items
            ],
            "replies": await reviews.batches.replies(args.batch),
        }

    found = _run_with_store(work)
    if args.json:
        print(json.dumps(found, default=_iso, ensure_ascii=False))
        return 0
    print(f"{_printable(found['batch'])}: {_printable(found['company'])}, {found['state']}")
    print(f"  deadline {_when(_iso(found['deadline_at']))} UTC", end="")
    auto = found["auto_approve_at"]
    print(f", auto-approval {_when(_iso(auto))} UTC" if auto else ", no auto-approval")
    print(f"  reminders {found['reminders_sent']} of {found['reminders_planned']}", end="")
    print(" - a person is needed" if found["needs_person_at"] else "")
    print("\nItems:")
    for item in found["items"]:
        by = f" by {item['by']} {_when(_iso(item['at']))}" if item["by"] else ""
        print(f"  {item['item']} v{item['version']} {_printable(item['title'], 60)}: {item['status']}{by}")
        if item["comment"]:
            print(f"      {_printable(item['comment'], 200)}")
    if found["replies"]:
        print("\nEmailed answers:")
        for r in found["replies"]:
            print(
                f"  #{r['inbound_id']} {_when(_iso(r['received_at']))} from {_printable(r['from_address'])}: "
                f"{r['intent']} ({r['decided']} decided)"
            )
            print(f"      {_printable(' '.join(str(r['text']).split()), 200)}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.identity_cmd import cli_actor

    comment = None
    if args.changes is not None:
        comment = args.changes.replace("\0", "").strip()
        if not comment:
            raise UserError("--changes needs the text of what should change")
        if len(comment) > MAX_COMMENT_CHARS:
            raise UserError(f"--changes: at most {MAX_COMMENT_CHARS} characters")
    item = None
    if args.item is not None:
        try:
            item = str(uuid.UUID(args.item))
        except ValueError:
            raise UserError(
                f"--item: not an item id (a UUID, see python run.py review show BATCH): {args.item!r}"
            ) from None
    verdict = "approved" if args.approve else "changes"

    async def work(store: Any) -> Any:
        now = _now()

        def audited(conn: Any, decided: Any) -> None:
            detail = {"verdict": verdict, "item": item, "decided": decided.decided}
            cli_actor().write(conn, "review.decide", args.batch, detail, now)

        decided = await _store(store).batches.decide(
            args.batch, approve=args.approve, comment=comment, item_id=item, now=now, also=audited
        )
        if decided is None:
            raise UserError(f"no review batch {args.batch!r} (python run.py review list)")
        if decided.unknown_item:
            raise UserError(f"batch {args.batch!r} has no item {item} (python run.py review show {args.batch})")
        return decided

    decided = _run_with_store(work)
    if not decided.decided:
        print(f"{args.batch}: nothing was open to decide (python run.py review show {args.batch})")
        return 0
    verdict = "approved" if args.approve else "sent back with changes"
    print(f"{args.batch}: {decided.decided} item(s) {verdict}; the running service announces it within a tick")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.identity_cmd import cli_actor

    async def work(store: Any) -> Any:
        now = _now()

        def audited(conn: Any, was_live: bool) -> None:
            cli_actor().write(conn, "review.revoke", args.batch, {"was_live": was_live}, now)

        done = await _store(store).batches.revoke(args.batch, now, also=audited)
        if done is None:
            raise UserError(f"no review batch {args.batch!r} (python run.py review list)")
        return done

    live = _run_with_store(work)
    print(f"{args.batch}: link revoked" if live else f"{args.batch}: the link was not live already")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        try:
            lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--password-file: {exc}") from None
        password = lines[0] if lines else ""
    else:
        password = getpass.getpass("Page password for the client: ")
        if getpass.getpass("Once more: ") != password:
            raise UserError("the two passwords differ: nothing changed")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"a page password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"a page password has at most {MAX_PASSWORD_CHARS} characters")
    return password


def cmd_protect(args: argparse.Namespace) -> int:
    from aicmo_actors.client_review.web import hash_password

    hashed = None if args.remove else hash_password(_read_password(args))

    async def work(store: Any) -> None:
        also = _audit_line("review.protect", args.project, {"removed": args.remove})
        await _store(store).batches.protect(args.project, hashed, _now(), also=also)

    _run_with_store(work)
    if args.remove:
        print(f"project {args.project}: the review pages need no password any more")
    else:
        print(f"project {args.project}: the review pages ask for the password (send it to the client separately)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    review = sub.add_parser(
        "review",
        help="client reviews of work: list, show, decide for the client, revoke a link, password-protect",
        description="Each batch of work is sent to the client for review, with a link to a page where each piece "
        "is approved or sent back with a comment; a reply by email counts too. An unclear reply is left to a "
        "person: decide it here.",
    )
    rsub = review.add_subparsers(dest="review_action", metavar="ACTION", required=True)
    listing = rsub.add_parser("list", help="every review batch, with its items' state")
    listing.add_argument("--project", type=_project, metavar="ID", help="only this project's batches")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)
    show = rsub.add_parser("show", help="one batch: its items, verdicts, reminders and emailed answers")
    show.add_argument("batch", metavar="BATCH", help="the batch's key (PROJECT:review:N, see review list)")
    show.add_argument("--json", action="store_true", help="print it as JSON")
    show.set_defaults(func=cmd_show)
    decide = rsub.add_parser(
        "decide",
        help="answer for the client: approve, or ask for changes",
        description="Give the verdict for the client (after an unclear reply, or a call): every item still open, "
        "or only --item. Recorded as given by a person; the running service announces it within a tick.",
    )
    decide.add_argument("batch", metavar="BATCH", help="the batch's key (PROJECT:review:N)")
    verdict = decide.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", action="store_true", help="approve")
    verdict.add_argument("--changes", metavar="TEXT", help="ask for changes: what should change")
    decide.add_argument("--item", metavar="ITEM", help="only this item (its id, see review show)")
    decide.set_defaults(func=cmd_decide)
    revoke = rsub.add_parser("revoke", help="revoke a batch's link: its page answers 410 from now on")
    revoke.add_argument("batch", metavar="BATCH", help="the batch's key (PROJECT:review:N)")
    revoke.set_defaults(func=cmd_revoke)
    protect = rsub.add_parser(
        "protect",
        help="ask for a password on a project's review pages",
        description="The password is asked here (twice, not shown) or read from the first line of "
        "--password-file, and stored as an argon2 hash. Send it to the client separately from the link.",
    )
    protect.add_argument("project", type=_project, metavar="PROJECT", help="the project's id")
    how = protect.add_mutually_exclusive_group()
    how.add_argument("--password-file", metavar="FILE", help="read the password from the first line of FILE")
    how.add_argument("--remove", action="store_true", help="remove the password instead")
    protect.set_defaults(func=cmd_protect)
