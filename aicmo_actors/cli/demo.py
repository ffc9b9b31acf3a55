"""`python run.py demo`: a simulated month of prospecting, on the embedded defaults, in seconds."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import anyio

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.progress import Progress

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_demo_inputs(campaign_file: Path, leads_file: Path, limit: int) -> tuple[Any, list[dict[str, Any]]]:
    from aicmo_actors.cam.campaign import CampaignFileError, load_campaign
    from aicmo_actors.cam.lead_import import LeadFileError, parse_leads_csv

    try:
        spec = load_campaign(campaign_file)
    except CampaignFileError as exc:
        raise UserError(str(exc)) from exc
    try:
        result = parse_leads_csv(leads_file)
    except LeadFileError as exc:
        raise UserError(str(exc)) from exc
    leads = [
        {
            "email": lead.email,
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "company": lead.company,
            "timezone": lead.timezone,
            "variables": dict(lead.variables),
        }
        for lead in result.leads
    ]
    if limit > len(leads):
        leads = synthesize_leads(leads, limit)
    return spec, leads[:limit]


def synthesize_leads(seed_leads: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """More leads than the example file has: copies on numbered sub-addresses of the same domains."""
    out = list(seed_leads)
    n = 0
    while len(out) < count:
        base = seed_leads[n % len(seed_leads)]
        local, _, domain = base["email"].partition("@")
        out.append({**base, "email": f"{local}.{n // len(seed_leads) + 1}@{domain}"})
        n += 1
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    from aicmo_actors.simulation.world import Behaviour

    # A cleaned list (half a percent of hard bounces), so the month plays out; the
    # simulation tests use dirtier lists to show the auto-pause.
    behaviour = Behaviour(hard_bounce=0.005, soft_bounce=0.01)
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.runtime.logging import configure_logging
    from aicmo_actors.simulation.invariants import INVARIANTS
    from aicmo_actors.simulation.run import simulate

    # The funnel is the demo's output; the actors' info logs would bury it (AICMO_LOG_LEVEL=info shows them).
    settings = load_settings()
    configure_logging(settings.log_level if "AICMO_LOG_LEVEL" in os.environ else "warning", settings.log_format)

    if args.leads < 1 or args.days <= 0:
        raise UserError("--leads must be at least 1 and --days more than 0")
    workdir = Path(args.dir)
    spec, leads = load_demo_inputs(Path(args.campaign), Path(args.leads_file), args.leads)
    print(f"Simulating {args.days:g} days of campaign {spec.name!r} ({len(spec.steps)} steps) to {len(leads)} leads, seed {args.seed}.")
    print("Prospects reply, ignore, bounce or go on holiday at random (seeded); the real actors run on a fake clock.")
    progress = Progress("simulated days")
    started = time.perf_counter()

    async def run() -> Any:
        return await simulate(
            workdir=workdir, spec=spec, leads=leads, days=args.days, seed=args.seed, behaviour=behaviour,
            progress=lambda d, t: progress.update(int(d), int(t)),
        )

    try:
        result = anyio.run(run)
    finally:
        progress.close()
    wall = time.perf_counter() - started
    f = result.funnel
    emails, replies, leads_by_state = f["emails"], f["replies"], f["leads"]
    print(f"\nDone in {wall:.1f} s of wall time ({args.days * 86400 / wall:,.0f} simulated seconds per second).\n")
    print("Funnel")
    print(f"  emails sent:        {emails.get('SENT', 0)}  (by step: {', '.join(f'{k}: {v}' for k, v in sorted(f['sent_by_step'].items()))})")
    other = {k: v for k, v in emails.items() if k != "SENT"}
    if other:
        print(f"  other emails:       {', '.join(f'{k.lower()} {v}' for k, v in sorted(other.items()))}")
    order = ["interested", "meeting_request", "question", "referral", "not_interested", "unsubscribe", "other", "auto_reply", "bounce_hard", "bounce_soft", "complaint"]
    print("  inbound by category: " + (", ".join(f"{k} {replies[k]}" for k in order if replies.get(k)) or "none"))
    print(f"  leads by state:     {', '.join(f'{k} {v}' for k, v in sorted(leads_by_state.items()))}")
    print(f"  unsubscribed:       {leads_by_state.get('unsubscribed', 0)}   bounced: {leads_by_state.get('bounced', 0)}")
    print(f"  alerts delivered:   {f['alerts'].get('delivered', 0)} (emails to the owner: {len(result.world.alert_emails)})")
    print(f"  campaign status:    {f['status']}" + (f" ({f['paused_reason']})" if f["paused_reason"] else ""))
    print("\nInvariants checked")
    broken = {v.invariant: v for v in result.violations}
    for name in INVARIANTS:
        mark = "FAIL" if name in broken else "ok  "
        print(f"  [{mark}] {name}" + (f": {broken[name].first}" if name in broken else ""))
    print(f"\nTrace hash (same seed, same hash): {result.trace_hash[:16]}  ({result.events} events)")
    print("\nOn disk")
    print(f"  database:  {result.db_path}   (sqlite3 {result.db_path} 'select state, count(*) from cam_leads group by 1')")
    print(f"  replies:   {result.inbox}/new   (the inbox Maildir the service read)")
    print(f"  sent mail: {result.outbox}/new   (what the prospects received)")
    print("\nNext: write your own campaign (examples/campaign.toml), `python run.py campaign check`, and `python run.py`.")
    return 1 if result.violations else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="simulate a month of prospecting in seconds (nothing leaves the machine)",
        description="Create the example campaign, import the example leads and run a simulated month on a fake clock: "
        "the real actors, an SQLite database and Maildir folders in --dir, simulated prospects who reply, bounce or go "
        "on holiday. Prints the funnel and the invariants it checked. Exits 1 if an invariant broke.",
    )
    p.add_argument("--leads", type=int, default=200, help="how many leads (default 200; more than the file has are synthesised)")
    p.add_argument("--days", type=float, default=30, help="simulated days (default 30)")
    p.add_argument("--seed", type=int, default=1, help="seed: the same seed gives the same run (default 1)")
    p.add_argument("--dir", default="demo", help="working folder for the database and mail (default ./demo; wiped first)")
    p.add_argument("--campaign", default=str(EXAMPLES / "campaign.toml"), help=argparse.SUPPRESS)
    p.add_argument("--leads-file", default=str(EXAMPLES / "leads.csv"), help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)
