"""`python run.py campaign check FILE.toml [--leads FILE.csv]`: render everything before sending."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.progress import Progress

#: Problems printed in full; the rest are counted.
SHOWN = 50


def cmd_campaign_check(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.campaign import CampaignFileError, load_campaign
    from aicmo_actors.cam.lead_import import LeadFileError, parse_leads_csv
    from aicmo_actors.cam.templates import check_campaign

    try:
        spec = load_campaign(Path(args.file))
    except CampaignFileError as exc:
        raise UserError(str(exc)) from exc
    leads = None
    rejected = 0
    if args.leads:
        progress = Progress("reading leads")
        try:
            parsed = parse_leads_csv(Path(args.leads), progress.update)
        except LeadFileError as exc:
            raise UserError(str(exc)) from exc
        finally:
            progress.close()
        leads = [(f"line {row.line} ({row.email})", row.fields()) for row in parsed.leads]
        rejected = len(parsed.rejected)
    problems = check_campaign(spec, leads)
    checked = f"{len(leads)} lead{'s' if len(leads) != 1 else ''}" if leads is not None else "a sample lead"
    if args.json:
        print(json.dumps({
            "campaign": spec.name,
            "steps": len(spec.steps),
            "leads": len(leads) if leads is not None else None,
            "rejected_rows": rejected,
            "problems": [
                {"lead": p.lead, "step": p.step, "variant": p.variant, "part": p.part, "message": p.message}
                for p in problems
            ],
        }))
        return 1 if problems else 0
    for problem in problems[:SHOWN]:
        print(problem)
    if len(problems) > SHOWN:
        print(f"... and {len(problems) - SHOWN} more")
    if rejected:
        print(f"note: {rejected} row(s) of the leads file would be rejected on import (see `leads import`)")
    if problems:
        print(f"campaign {spec.name!r}: {len(problems)} problem(s) in {len(spec.steps)} step(s) for {checked}; nothing was sent")
        return 1
    print(f"campaign {spec.name!r}: every step and variant renders for {checked}")
    return 0


def register(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = csub.add_parser(
        "check",
        help="render every step for every lead and list what is missing",
        description="Render every step and A/B variant of FILE.toml for every lead of --leads FILE.csv "
        "(or a sample lead) and report each missing variable with its lead and step. Sends nothing; "
        "exits 1 when there is a problem.",
    )
    p.add_argument("file", metavar="FILE.toml")
    p.add_argument("--leads", metavar="FILE.csv", help="the leads to render for (columns become template variables)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_campaign_check)
