"""`python run.py delivery list|show|retry|webhook-secret`: the hand-over of approved work.

`list` shows deliveries (newest first; by project, by state), `show KEY` one whole (the
receiver's answer, the last error, the alert), `retry KEY` asks a failed or unconfirmed one
again (the running service makes it within a tick), `webhook-secret` prints the key a client's
receiver verifies the signed webhooks with (see docs/delivery.md).
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import date, datetime
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.records import _now, _page_size, _printable, _run_with_store, _table, _when

STATES = ("queued", "sending", "retrying", "delivered", "unconfirmed", "failed", "cancelled")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _guarded(work: Any) -> Any:
    from aicmo_actors.delivery.repos import DeliveryError

    async def guarded(store: Any) -> Any:
        try:
            return await work(store)
        except DeliveryError as exc:
            raise UserError(str(exc)) from None

    return guarded


def _repo(store: Any) -> Any:
    from aicmo_actors.delivery.repos import DeliveriesRepo

    return DeliveriesRepo(store.engine)


def _json(row: Any, *, full: bool = False) -> dict[str, Any]:
    values = {k: _iso(v) for k, v in row.__dict__.items()}
    if not full:
        for heavy in ("text", "html", "client"):
            values.pop(heavy, None)
        values["company"] = row.client.get("company")
    return values


def cmd_list(args: argparse.Namespace) -> int:
    rows = _run_with_store(
        _guarded(lambda store: _repo(store).page(project_prefix=args.project, state=args.state, limit=args.limit))
    )
    if args.json:
        for row in rows:
            print(json.dumps(_json(row), ensure_ascii=False))
        return 0
    if not rows:
        print("No deliveries yet: approved work is delivered as the package says (email, webhook, folder)")
        return 0
    shown = [
        {
            "key": r.key,
            "project": r.project_id[:8],
            "company": r.client.get("company"),
            "method": r.method,
            "state": r.state,
            "tries": r.attempts,
            "when": _when(_iso(r.delivered_at or r.next_attempt_at or r.created_at)),
            "title": r.title,
        }
        for r in rows
    ]
    _table(
        shown,
        [
            ("KEY", "key"),
            ("PROJECT", "project"),
            ("COMPANY", "company"),
            ("METHOD", "method"),
            ("STATE", "state"),
            ("TRIES", "tries"),
            ("WHEN (UTC)", "when"),
            ("TITLE", "title"),
        ],
        right=frozenset({"tries"}),
    )
    return 0


async def _get(store: Any, key: str) -> Any:
    from aicmo_actors.delivery.repos import DeliveryError

    row = await _repo(store).get(key)
    if row is None:
        raise DeliveryError(f"no delivery {key!r} (python run.py delivery list shows them)")
    return row


def cmd_show(args: argparse.Namespace) -> int:
    row = _run_with_store(_guarded(lambda store: _get(store, args.key)))
    if args.json:
        print(json.dumps(_json(row, full=True), ensure_ascii=False))
        return 0
    client = row.client
    print(f"Delivery {_printable(row.key)}")
    print(f"  project:   {row.project_id}")
    print(f"  item:      {row.item_id}, version {row.version}: {_printable(row.title, 80)}")
    print(f"  client:    {_printable(client.get('company'))} <{_printable(client.get('contact_email'))}>")
    if row.method == "webhook":
        print(f"  webhook:   {_printable(client.get('webhook_url') or '(none)')}")
    print(f"  method:    {row.method}")
    print(f"  state:     {row.state} after {row.attempts} attempt(s)" + (" (permanent)" if row.permanent else ""))
    print(f"  recorded:  {_when(_iso(row.created_at))} UTC")
    if row.next_attempt_at is not None:
        print(f"  next try:  {_when(_iso(row.next_attempt_at))} UTC")
    if row.delivered_at is not None:
        print(f"  delivered: {_when(_iso(row.delivered_at))} UTC")
    if row.receipt:
        print(f"  receipt:   {_printable(row.receipt, 200)}")
    if row.error:
        print(f"  error:     {_printable(row.error, 200)}")
    if row.alert_due_at is not None:
        told = _when(_iso(row.alerted_at)) + " UTC" if row.alerted_at else "not yet"
        print(f"  alert:     decided {_when(_iso(row.alert_due_at))} UTC, told {told}")
    if row.rounds:
        print(f"  retried:   {row.rounds} time(s) by a person")
    if row.state in ("failed", "unconfirmed"):
        print(f"\nOnce the cause is fixed: python run.py delivery retry {row.key}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.identity_cmd import cli_actor

    async def work(store: Any) -> Any:
        now = _now()

        def audited(conn: Any, row: Any) -> None:
            cli_actor().write(conn, "delivery.retry", args.key, {"round": row.rounds}, now)

        return await _repo(store).retry(args.key, now, also=audited)

    row = _run_with_store(_guarded(work))
    print(f"delivery {row.key}: queued again (round {row.rounds}); the running service makes it within a tick")
    return 0


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.cli.service import load_or_create_secret
    from aicmo_actors.gateways.signed_webhook import client_key

    settings = load_settings()

    async def work(store: Any) -> tuple[str, str]:
        from aicmo_actors.orchestration.projects import ProjectError, ProjectsRepo

        client_ref: str | None = None
        try:
            found = await ProjectsRepo(store.engine).get(args.target)
            client_ref = str(found["project"]["client"]["client_ref"])
        except ProjectError:
            refs = await _repo(store).client_refs(args.target) if len(args.target) >= 4 else []
            if len(refs) == 1:
                client_ref = refs[0]
            else:
                try:
                    client_ref = str(uuid.UUID(args.target))
                except ValueError:
                    raise UserError(
                        f"{args.target!r} is neither a project (python run.py projects) nor a client reference (a UUID)"
                    ) from None
        secret = await load_or_create_secret(store.engine, settings, _now())
        return client_ref, client_key(secret, client_ref)

    client_ref, key = _run_with_store(work)
    if args.json:
        print(json.dumps({"client_ref": client_ref, "webhook_key": key}))
        return 0
    print(key)
    print(
        f"(the webhook key of client {client_ref}: give it to the client's developers privately; their receiver "
        "checks X-AICMO-Signature with it, see docs/delivery.md)",
        flush=True,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    delivery = sub.add_parser(
        "delivery",
        help="approved work handed over: list, show, retry deliveries; a client's webhook key",
        description="Each approved piece is delivered once per method of the client's package: an email with "
        "the files attached (HTML, PDF, Word), a signed webhook to the client's system, or a folder export. "
        "A delivery that keeps failing alerts a person; once the cause is fixed, `delivery retry KEY`.",
    )
    dsub = delivery.add_subparsers(dest="delivery_action", metavar="ACTION", required=True)

    listing = dsub.add_parser("list", help="deliveries, newest first")
    listing.add_argument("--project", metavar="ID", help="only this project's (the first characters are enough)")
    listing.add_argument("--state", choices=STATES, help="only deliveries in this state")
    listing.add_argument("--limit", type=_page_size, default=100, metavar="N", help="at most N (default 100, max 500)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)

    show = dsub.add_parser("show", help="one delivery whole: its receipt, last error and alert")
    show.add_argument("key", metavar="KEY", help="the delivery's key (<item>:v<version>:<method>, see `list`)")
    show.add_argument("--json", action="store_true", help="print one JSON object (with the text and HTML)")
    show.set_defaults(func=cmd_show)

    retry = dsub.add_parser(
        "retry",
        help="deliver a failed or unconfirmed one once more",
        description="Queue a failed delivery (or an unconfirmed email, once you know it did not arrive) for a "
        "new round of attempts; the running service makes it within a tick. Audited.",
    )
    retry.add_argument("key", metavar="KEY", help="the delivery's key")
    retry.set_defaults(func=cmd_retry)

    secret = dsub.add_parser(
        "webhook-secret",
        help="print the key a client's receiver verifies signed webhooks with",
        description="The key is derived from this installation's secret and the client's reference: the same "
        "every time. Give it to the client privately; their receiver checks X-AICMO-Signature with it.",
    )
    secret.add_argument("target", metavar="PROJECT|CLIENT_REF", help="a project id (or its start), or a client ref")
    secret.add_argument("--json", action="store_true", help="print {client_ref, webhook_key}")
    secret.set_defaults(func=cmd_webhook_secret)
