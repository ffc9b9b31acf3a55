"""`python run.py health [CLIENT] [--json]`: each client's health, or one client whole.

Without CLIENT: every client's band, score and top reasons, the reddest first (as the running
service last wrote them). With CLIENT (its company or a part of its name, its client ref or the start
of it, or its contact or billing email): the whole breakdown scored now (every signal with its weight when
new and its weight today), its contracts and the next renewal reminder.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.records import _now, _printable, _run_with_store, _table, _when


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _setup() -> Any:
    """The scoring the service uses: the settings' `retention_*` when they exist, else the
    module's defaults."""
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.retention.report import setup_of

    try:
        return setup_of(load_settings())
    except ValueError as exc:
        raise UserError(f"retention settings: {exc}") from None


def _guarded(work: Any) -> Any:
    async def guarded(store: Any) -> Any:
        from aicmo_actors.retention.repos import RetentionError

        try:
            return await work(store)
        except RetentionError as exc:
            raise UserError(str(exc)) from None

    return guarded


def _store(store: Any) -> Any:
    from aicmo_actors.retention.repos import RetentionStore

    return RetentionStore(store.engine)


def cmd_health(args: argparse.Namespace) -> int:
    if args.client is None:
        return _overview(args)
    setup = _setup()
    now = _now()

    async def work(store: Any) -> Any:
        repo = _store(store)
        client = await repo.find(args.client)
        return await repo.breakdown(client.client_ref, now, setup.scoring, setup.renewal_days)

    found = _run_with_store(_guarded(work))
    if args.json:
        from aicmo_actors.retention.report import breakdown_json

        print(json.dumps(breakdown_json(found), ensure_ascii=False))
        return 0
    _print_breakdown(found)
    return 0


def _overview(args: argparse.Namespace) -> int:
    today = _now().date()
    rows = _run_with_store(_guarded(lambda store: _store(store).clients(today)))
    if args.json:
        from aicmo_actors.retention.report import client_json

        for row in rows:
            print(json.dumps(client_json(row), ensure_ascii=False))
        return 0
    if not rows:
        print("No clients yet: a client is scored from the day its deal is signed (python run.py deal won)")
        return 0
    shown = [
        {
            "client": r.client_ref[:8],
            "company": _printable(r.company, 30),
            "band": r.band or "-",
            "score": f"{r.score:.0f}" if r.score is not None else "-",
            "when": _when(_iso(r.scored_at)),
            "end": r.contract_end.isoformat() if r.contract_end else "-",
            "reasons": _printable("; ".join(r.reasons) or "no signal against it", 140),
        }
        for r in rows
    ]
    _table(
        shown,
        [
            ("CLIENT", "client"),
            ("COMPANY", "company"),
            ("BAND", "band"),
            ("SCORE", "score"),
            ("SCORED (UTC)", "when"),
            ("CONTRACT END", "end"),
            ("TOP REASONS", "reasons"),
        ],
        right=frozenset({"score"}),
    )
    return 0


def _print_breakdown(found: Any) -> None:
    client, h = found.client, found.health
    print(f"{_printable(client.company)} ({client.client_ref})")
    contacts = ", ".join(_printable(a) for a in (client.contact_email, client.billing_email) if a)
    print(f"  contacts:      {contacts}")
    print(f"  health now:    {h.band}, {h.score:.1f}/100")
    for contract in found.contracts:
        state = " (cancelled: no renewal reminders)" if contract.cancelled_at is not None else ""
        print(
            f"  contract:      deal {contract.deal_id}, {_printable(contract.package)}, "
            f"{contract.starts_on} to {contract.ends_on}{state}"
        )
    print(f"  contract end:  {found.contract_end or '- (no contract runs today)'}")
    print(f"  next renewal reminder: {found.next_renewal or '-'}")
    for deal, days, due, state in found.renewals:
        print(f"  renewal:       deal {deal}, {days} days before the end ({due}): {state}")
    if not h.contributions:
        print("\nNo signal counts today: the score is the base.")
        return
    print()
    _table(
        [
            {
                "when": _when(_iso(w.at)),
                "kind": w.kind,
                "weight": f"{w.weight:+.1f}",
                "now": f"{w.now:+.1f}",
                "reason": _printable(w.reason, 120),
            }
            for w in h.contributions
        ],
        [("WHEN (UTC)", "when"), ("SIGNAL", "kind"), ("WEIGHT", "weight"), ("NOW", "now"), ("REASON", "reason")],
        right=frozenset({"weight", "now"}),
    )


def describe_weights(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:+g}" for k, v in sorted(weights.items()))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from aicmo_actors.retention.rules import DEFAULT_WEIGHTS, PER_DAY

    per_day = ", ".join(f"{k} (per day late, at most {v} days)" for k, v in PER_DAY.items())
    health = sub.add_parser(
        "health",
        help="each client's health: band, score and reasons; or one client's whole breakdown",
        description="A client's health is a score from 0 to 100: the base (100) plus the weight of each signal "
        "the other modules sent about it (invoices paid late or in part, reminders, holds, revision rounds, slow "
        "or missing review answers, late or failing deliveries, KPIs missed or met, the tone of its replies), "
        "each halving with age (a half-life, 30 days by default). Banded green (70 and up), amber (40 and up) "
        "and red; entering red alerts the owner. Renewal reminders go 60, 30 and 7 days before a contract ends. "
        f"Default weights: {describe_weights(DEFAULT_WEIGHTS)}; {per_day}. See docs/retention.md.",
    )
    health.add_argument(
        "client",
        nargs="?",
        metavar="CLIENT",
        help="one client: its company (or a part of its name), its client ref (or its first characters) "
        "or its contact or billing email",
    )
    health.add_argument("--json", action="store_true", help="JSON (one object per client without CLIENT)")
    health.set_defaults(func=cmd_health)
