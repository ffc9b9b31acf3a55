"""`python run.py campaign check FILE.toml [--leads FILE.csv]`: render everything before sending.

`campaign create` runs the same checks (`check_before_storing`) and stores nothing they refuse.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.progress import Progress

if TYPE_CHECKING:
    from aicmo_actors.cam.campaign import CampaignSpec
    from aicmo_actors.cam.templates import TemplateProblem
    from aicmo_actors.settings import Settings

#: Problems printed in full; the rest are counted.
SHOWN = 50


def problem_json(problem: str | TemplateProblem) -> dict[str, Any]:
    if isinstance(problem, str):
        return {"kind": "settings", "lead": None, "step": None, "variant": None, "part": None, "message": problem}
    return {
        "kind": "template",
        "lead": problem.lead,
        "step": problem.step,
        "variant": problem.variant,
        "part": problem.part,
        "message": problem.message,
    }


def settings_problems(spec: CampaignSpec, settings: Settings) -> list[str]:
    """What keeps the campaign from sending under these settings: unknown transports, a zero
    daily cap, unsubscribe links recipients cannot use while real mail goes out."""
    from aicmo_actors.settings import public_url_problem

    problems: list[str] = []
    known = ", ".join(sorted(settings.transports)) or "none"
    for mailbox in spec.mailboxes:
        if mailbox.transport not in settings.transports:
            problems.append(
                f"mailboxes: {mailbox.address} uses transport {mailbox.transport!r}, which AICMO_TRANSPORTS "
                f"does not define (defined: {known})"
            )
    if spec.limits.daily_cap < 1:
        problems.append("limits.daily_cap is 0: the campaign would never send (set it to 1 or more)")
    smtp = sorted(
        {
            m.transport
            for m in spec.mailboxes
            if m.transport in settings.transports and settings.transports[m.transport].kind == "smtp"
        }
    )
    url_problem = public_url_problem(settings.public_url) if smtp else None
    if url_problem:
        names = ", ".join(repr(name) for name in smtp)
        problems.append(
            f"{url_problem}; transport {names} sends real mail, whose one-click unsubscribe link must work: "
            "set AICMO_PUBLIC_URL to the https address where this service is reachable"
        )
    return problems


def campaign_problems(
    spec: CampaignSpec, settings: Settings, leads: list[tuple[str, dict[str, str]]] | None = None
) -> list[str | TemplateProblem]:
    """Everything `campaign check` reports: settings first, then every template for every lead,
    rendered in a child process with a time and memory limit (a runaway template is a problem
    reported here, not a service brought down later)."""
    from aicmo_actors.cam.templates import check_campaign

    return [*settings_problems(spec, settings), *check_campaign(spec, leads, isolated=True)]


def load_checked_file(path: Path, settings: Settings) -> CampaignSpec:
    """The campaign file, validated under the settings' address rules; `UserError` otherwise."""
    from aicmo_actors.cam.campaign import CampaignFileError, load_campaign

    try:
        return load_campaign(path, allow_test_domains=settings.allow_test_domains)
    except CampaignFileError as exc:
        raise UserError(str(exc)) from exc


def check_before_storing(spec: CampaignSpec, settings: Settings) -> None:
    """`campaign create`: the checks of `campaign check` for a sample lead; on a problem, list
    them on stderr and raise `UserError` (exit 1): nothing is stored."""
    problems = campaign_problems(spec, settings)
    if not problems:
        return
    for problem in problems[:SHOWN]:
        print(f"  {problem}", file=sys.stderr)
    if len(problems) > SHOWN:
        print(f"  ... and {len(problems) - SHOWN} more", file=sys.stderr)
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    raise UserError(
        f"campaign {spec.name!r} was not stored: {count} (listed above; "
        "`python run.py campaign check FILE.toml` shows the same)",
        exit_code=1,
    )


def cmd_campaign_check(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.lead_import import LeadFileEmpty, LeadFileError, parse_leads_csv
    from aicmo_actors.cli.main import load_settings

    settings = load_settings()
    spec = load_checked_file(Path(args.file), settings)
    leads = None
    rejected = 0
    if args.leads:
        progress = Progress("reading leads")
        try:
            parsed = parse_leads_csv(Path(args.leads), progress.update, allow_test_domains=settings.allow_test_domains)
        except LeadFileEmpty:
            raise UserError(f"no lead of {args.leads} could be read: the file is empty", exit_code=1) from None
        except LeadFileError as exc:
            raise UserError(str(exc)) from exc
        finally:
            progress.close()
        leads = [(f"line {row.line} ({row.email})", row.fields()) for row in parsed.leads]
        rejected = len(parsed.rejected)
        if not leads:
            why = f"every row ({rejected}) was rejected, see `leads import`" if rejected else "it has no rows"
            raise UserError(f"no lead of {args.leads} could be read: {why}", exit_code=1)
    problems = campaign_problems(spec, settings, leads)
    checked = f"{len(leads)} lead{'s' if len(leads) != 1 else ''}" if leads is not None else "a sample lead"
    if args.json:
        print(
            json.dumps(
                {
                    "campaign": spec.name,
                    "steps": len(spec.steps),
                    "leads": len(leads) if leads is not None else None,
                    "rejected_rows": rejected,
                    "problems": [problem_json(p) for p in problems],
                }
            )
        )
        return 1 if problems else 0
    for problem in problems[:SHOWN]:
        print(problem)
    if len(problems) > SHOWN:
        print(f"... and {len(problems) - SHOWN} more")
    if rejected:
        print(f"note: {rejected} row(s) of the leads file would be rejected on import (see `leads import`)")
    if problems:
        print(f"campaign {spec.name!r}: {len(problems)} problem(s), checked for {checked}; nothing was sent")
        return 1
    print(f"campaign {spec.name!r}: every step and variant renders for {checked}, and the settings it needs are there")
    return 0


def register(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = csub.add_parser(
        "check",
        help="render every step for every lead and list what is missing",
        description="Render every step and A/B variant of FILE.toml for every lead of --leads FILE.csv "
        "(or a sample lead) and report each missing variable with its lead and step; check that every "
        "mailbox's transport is in AICMO_TRANSPORTS, that the daily cap is above 0, and that a campaign "
        "sending over SMTP has an https AICMO_PUBLIC_URL recipients can reach. Sends nothing; exits 1 when "
        "there is a problem or when no lead of --leads could be read.",
    )
    p.add_argument("file", metavar="FILE.toml")
    p.add_argument("--leads", metavar="FILE.csv", help="the leads to render for (columns become template variables)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_campaign_check)
