"""`deal won|renew|list`, `projects`, `project ID` and `project cancel ID`: signing a client and
seeing where each client project stands.

A deal is written in CAM's tables (the lead becomes a client, its company is never
prospected again); the running service hands it to orchestration within a tick, which opens
the project and runs its saga (onboarding, then strategy). `project ID` shows the saga's
steps, what each waits for and until when, the emails sent to the client, and the history.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.records import _audit_line, _cli_user, _now, _printable, _run_with_store, _table, _when


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# -- deal ------------------------------------------------------------------------------------------
def cmd_deal_won(args: argparse.Namespace) -> int:
    from aicmo_actors.after_deal import DealError, sign_deal
    from aicmo_actors.cli.identity_cmd import cli_actor
    from aicmo_actors.cli.main import load_settings

    settings = load_settings()

    async def work(store: Any) -> Any:
        try:
            deal = await sign_deal(
                store,
                settings,
                address=args.lead,
                package_name=args.package,
                country=args.country,
                by=_cli_user(),
                now=_now(),
                start=args.start,
                timezone=args.timezone,
                campaign=args.campaign,
                company=args.company,
                contact_name=args.contact_name,
                contact_email=args.contact_email,
                billing_address=args.billing_address,
                language=args.language,
                webhook_url=args.webhook,
                tax_id=args.tax_id,
                billing_email=args.billing_email,
                audited_as=cli_actor(),
            )
        except DealError as exc:
            raise UserError(str(exc)) from None
        return deal

    deal = _run_with_store(work)
    if args.json:
        print(json.dumps(_deal_json(deal), ensure_ascii=False))
        return 0
    print(f"deal {deal.deal_id}: {deal.client['company']} signed {deal.package['name']}, starting {deal.start}")
    if deal.stopped:
        print(f"{deal.stopped} other lead(s) of the company stopped: it is a client now")
    print("The running service opens the project within a tick; then: python run.py projects")
    return 0


def cmd_deal_renew(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.identity_cmd import cli_actor

    now = _now()
    actor = cli_actor()

    def audited(conn: Any, renewal: Any) -> None:
        detail = {"deal": args.deal, "number": renewal.number, "months": args.months}
        actor.write(conn, "deal.renew", str(args.deal), detail, now)

    async def work(store: Any) -> Any:
        return await store.deals.renew(
            args.deal, months=args.months, by=_cli_user(), now=now, today=now.date(), also=audited
        )

    renewal = _run_with_store(work)
    if args.json:
        print(json.dumps(_renewal_json(renewal), ensure_ascii=False))
        return 0
    print(
        f"deal {renewal.deal_id}: renewal {renewal.number}, {renewal.months} more month(s) from "
        f"{renewal.starts_on} to {renewal.ends_on}"
    )
    print("The running service extends the project, the retainers and the renewal reminders within a tick")
    return 0


def _renewal_json(renewal: Any) -> dict[str, Any]:
    return {
        "deal": renewal.deal_id,
        "number": renewal.number,
        "months": renewal.months,
        "starts_on": renewal.starts_on.isoformat(),
        "ends_on": renewal.ends_on.isoformat(),
        "renewed_at": _iso(renewal.renewed_at),
        "renewed_by": renewal.renewed_by,
        "applied_at": _iso(renewal.applied_at),
        "outcome": renewal.outcome,
    }


def _deal_json(deal: Any) -> dict[str, Any]:
    return {
        "deal": deal.deal_id,
        "lead_id": deal.lead_id,
        "campaign": deal.campaign,
        "client": deal.client,
        "package": deal.package.get("name"),
        "start": deal.start.isoformat(),
        "signed_at": _iso(deal.signed_at),
        "signed_by": deal.signed_by,
        "project_id": deal.project_id,
    }


def cmd_deal_list(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.repos.deals import contract_end

    async def work(store: Any) -> Any:
        return await store.deals.all(), await store.deals.renewals()

    deals, renewals = _run_with_store(work)
    renewed: dict[int, list[Any]] = {}
    for renewal in renewals:
        renewed.setdefault(renewal.deal_id, []).append(renewal)

    def ends(deal: Any) -> str:
        return contract_end(deal.start, deal.package, sum(r.months for r in renewed.get(deal.deal_id, []))).isoformat()

    if args.json:
        for deal in deals:
            found = renewed.get(deal.deal_id, [])
            extra = {"ends": ends(deal), "renewals": [_renewal_json(r) for r in found]}
            print(json.dumps(_deal_json(deal) | extra, ensure_ascii=False))
        return 0
    if not deals:
        print("No deals yet (python run.py deal won ADDRESS --package NAME --country CC)")
        return 0
    rows = [
        {
            "id": d.deal_id,
            "company": d.client.get("company"),
            "contact": d.client.get("contact_email"),
            "package": d.package.get("name"),
            "start": d.start.isoformat(),
            "ends": ends(d),
            "renewed": len(renewed.get(d.deal_id, [])) or "",
            "project": d.project_id[:8] if d.project_id else "(not opened yet)",
        }
        for d in deals
    ]
    _table(
        rows,
        [
            ("ID", "id"),
            ("COMPANY", "company"),
            ("CONTACT", "contact"),
            ("PACKAGE", "package"),
            ("START", "start"),
            ("ENDS", "ends"),
            ("RENEWED", "renewed"),
            ("PROJECT", "project"),
        ],
    )
    return 0


# -- projects --------------------------------------------------------------------------------------
def _projects_repo(store: Any) -> Any:
    from aicmo_actors.orchestration.projects import ProjectsRepo

    return ProjectsRepo(store.engine)


def _project_errors(work: Any) -> Any:
    from aicmo_actors.orchestration.projects import ProjectError

    async def guarded(store: Any) -> Any:
        try:
            return await work(store)
        except ProjectError as exc:
            raise UserError(str(exc)) from None

    return guarded


def cmd_projects(args: argparse.Namespace) -> int:
    rows = _run_with_store(lambda store: _projects_repo(store).page(state=args.state))
    if args.json:
        for row in rows:
            print(json.dumps({k: _iso(v) if isinstance(v, (date, datetime)) else v for k, v in row.items()}))
        return 0
    if not rows:
        print("No client projects yet: a project opens when a deal is signed (python run.py deal won --help)")
        return 0
    shown = [
        {
            "id": row["id"][:8],
            "company": row["company"],
            "package": row["package"],
            "state": row["state"],
            "step": f"{row['step']} ({row['step_state']})" if row["step_state"] else row["step"],
            "waits": _waits(row),
        }
        for row in rows
    ]
    _table(
        shown,
        [
            ("ID", "id"),
            ("COMPANY", "company"),
            ("PACKAGE", "package"),
            ("STATE", "state"),
            ("STEP", "step"),
            ("WAITING FOR", "waits"),
        ],
    )
    print("\nOne project whole: python run.py project ID (the first characters of the id are enough)")
    return 0


def _waits(row: dict[str, Any]) -> str:
    if not row.get("waiting_for"):
        return "-"
    deadline = _when(_iso(row.get("deadline_at")))
    late = " OVERDUE" if row.get("overdue") else ""
    return f"{row['waiting_for']} (until {deadline} UTC){late}"


def cmd_project(args: argparse.Namespace) -> int:
    if args.project_action == "cancel":
        return _cancel(args)

    async def work(store: Any) -> dict[str, Any]:
        found: dict[str, Any] = await _projects_repo(store).get(args.id)
        found["emails"] = await _emails(store, found["project"]["id"])
        return found

    found = _run_with_store(_project_errors(work))
    if args.json:
        print(json.dumps(found, default=_iso, ensure_ascii=False))
        return 0
    _show(found)
    return 0


async def _emails(store: Any, project_id: str) -> list[dict[str, Any]]:
    """The emails the modules after the deal sent (or will send) this client, oldest first."""
    import sqlalchemy as sa

    from aicmo_actors.storage.schema import load_metadata
    from aicmo_actors.storage.work import run_read

    metadata = load_metadata()
    tables = [t for name, t in metadata.tables.items() if name.endswith("_emails") and not name.startswith("cam_")]

    def work(conn: Any) -> list[dict[str, Any]]:
        out = []
        for table in tables:
            query = sa.select(
                table.c.kind, table.c.to_address, table.c.subject, table.c.status, table.c.created_at, table.c.sent_at
            ).where(table.c.project_id == project_id)
            for row in conn.execute(query).mappings():
                out.append({"module": table.name.removesuffix("_emails"), **dict(row)})
        return sorted(out, key=lambda r: (r["created_at"], r["module"]))

    result: list[dict[str, Any]] = await run_read(store.engine, work)
    return result


def _show(found: dict[str, Any]) -> None:
    p = found["project"]
    client = p["client"]
    print(f"Project {p['id']}")
    print(
        f"  client:   {_printable(client.get('company'))} <{_printable(client.get('contact_email'))}>, "
        f"{client.get('country')}, {client.get('timezone')}"
    )
    term = int(p["package"].get("term_months") or 12)
    renewed = f", renewed {p['renewals']} time(s)" if p.get("renewals") else ""
    print(f"  package:  {p['package_name']}, starting {p['start_date']}, {term} months{renewed}")
    print(f"  state:    {p['state']}, at {p['step']}")
    if p.get("cancel_requested_at"):
        print(
            f"  cancel:   asked {_when(_iso(p['cancel_requested_at']))} by {p.get('cancelled_by') or '-'}: "
            f"{_printable(p.get('cancel_reason'))}"
        )
    if p.get("next_period_on"):
        print(f"  next:     the next period's steps begin on {p['next_period_on']} (a week before it starts)")
    print("\nSteps:")
    width = max([11, *(len(str(s["step"])) for s in found["steps"])])
    for s in found["steps"]:
        line = f"  {s['position'] + 1:>2}. {s['step']:<{width}} {s['state']}"
        if s.get("waiting_for") and s["state"] == "waiting":
            line += f": {_printable(s['waiting_for'])}, until {_when(_iso(s.get('deadline_at')))} UTC"
        if s.get("overdue_at"):
            line += f" (overdue since {_when(_iso(s['overdue_at']))})"
        if s.get("done_at"):
            line += f", done {_when(_iso(s['done_at']))}"
        if s.get("compensated_at"):
            line += f", undone {_when(_iso(s['compensated_at']))}"
        if s.get("commands_sent"):
            line += f" [asked {s['commands_sent']}x]"
        print(line)
    if found.get("emails"):
        print("\nEmails to the client:")
        for e in found["emails"]:
            sent = _when(_iso(e.get("sent_at"))) if e.get("sent_at") else "-"
            print(f"  {e['module']}/{e['kind']:<12} {e['status']:<11} sent {sent}  {_printable(e['subject'], 60)}")
    print("\nHistory:")
    for h in found["history"]:
        detail = f": {_printable(h['detail'], 100)}" if h.get("detail") else ""
        print(f"  {_when(_iso(h['at']))}  {h['step']} {h['state']}{detail}")


def _cancel(args: argparse.Namespace) -> int:
    reason = (args.reason or "").strip()
    if not reason:
        raise UserError("--reason must say why the project is cancelled (the client is told it stopped; it is audited)")
    if not args.yes:
        raise UserError(
            "cancelling undoes the project's steps (links revoked, reminders stopped, the client told): "
            "add --yes to go ahead"
        )

    async def work(store: Any) -> str:
        repo = _projects_repo(store)
        found = await repo.get(args.id)
        project_id = str(found["project"]["id"])
        line = _audit_line("project.cancel", project_id, {"reason": reason})
        await repo.request_cancel(project_id, reason=reason, by=_cli_user(), now=_now(), also=line)
        return project_id

    project_id = _run_with_store(_project_errors(work))
    print(f"project {project_id}: cancel asked; the running service undoes its steps within a tick")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deal = sub.add_parser(
        "deal",
        help="sign a lead as a client (deal won), renew a contract (deal renew), list the deals",
        description="A deal turns a lead into a client with a service package; the running service then opens "
        "its project (onboarding, the plan, each period's work, invoices, reports and health). "
        "Packages: python run.py package list.",
    )
    dsub = deal.add_subparsers(dest="deal_action", metavar="ACTION", required=True)
    won = dsub.add_parser(
        "won",
        help="the lead signed: make it a client and start its project",
        description="Make the lead at ADDRESS a client of package NAME. Its company (email domain, unless a "
        "free-mail one) is never prospected again: its other leads stop, its queued emails are cancelled.",
    )
    won.add_argument("lead", metavar="LEAD_ADDRESS", help="the lead's email address")
    won.add_argument("--package", required=True, metavar="NAME", help="the service package (packages/NAME.toml)")
    won.add_argument("--country", required=True, metavar="CC", help="the client's country, ISO 3166-1 (holidays)")
    won.add_argument("--start", type=_date, metavar="YYYY-MM-DD", help="first day of the work (default: today)")
    won.add_argument("--timezone", metavar="ZONE", help="the client's IANA zone (default: the lead's, else UTC)")
    won.add_argument("--campaign", metavar="NAME", help="the lead's campaign, when the address is in several")
    won.add_argument("--company", metavar="TEXT", help="the client's name (default: the lead's company)")
    won.add_argument("--contact-name", metavar="TEXT", help="who to write to (default: the lead's name)")
    won.add_argument("--contact-email", metavar="ADDRESS", help="where to write (default: the lead's address)")
    won.add_argument("--billing-address", metavar="TEXT", help="for invoices (one line; default: none yet)")
    won.add_argument(
        "--language", metavar="LL", help="the client's language, ISO 639-1 (drafts' spelling; default: en)"
    )
    won.add_argument(
        "--webhook",
        metavar="URL",
        help="where approved work is POSTed, signed, when the package delivers by webhook (https://...)",
    )
    won.add_argument(
        "--tax-id", metavar="ID", help="the client's VAT or tax number (an EU business abroad: reverse charge)"
    )
    won.add_argument("--billing-email", metavar="ADDRESS", help="where invoices go (default: the contact's address)")
    won.add_argument("--json", action="store_true", help="print the deal as JSON")
    won.set_defaults(func=cmd_deal_won)
    renew = dsub.add_parser(
        "renew",
        help="the client renewed: MONTHS more of its monthly retainer",
        description="Renew deal DEAL's contract for --months more, from the end of its term so far (its start, "
        "its term and the renewals before). The running service then begins the renewed periods on their days "
        "(a delivered project runs again), invoices their retainers and reminds before the new end. Only a monthly "
        "retainer renews, by whole periods, until 30 days after its end (later: sign a new deal).",
    )
    renew.add_argument("deal", type=int, metavar="DEAL", help="the deal's id (python run.py deal list)")
    renew.add_argument("--months", type=int, required=True, metavar="N", help="how many months more")
    renew.add_argument("--json", action="store_true", help="print the renewal as JSON")
    renew.set_defaults(func=cmd_deal_renew)
    listing = dsub.add_parser("list", help="every deal, its contract's end and its project")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_deal_list)

    projects = sub.add_parser(
        "projects",
        help="every client project: its step and what it waits for",
        description="Client projects, newest first: the saga's state, the step it is on, what that step waits "
        "for and until when.",
    )
    projects.add_argument("--state", choices=("running", "cancelling", "delivered", "compensated"))
    projects.add_argument("--json", action="store_true", help="one JSON object per line")
    projects.set_defaults(func=cmd_projects)

    project = sub.add_parser(
        "project",
        help="one client project whole (steps, waits, deadlines, emails, history); cancel one",
        description="Show one project: `python run.py project ID` (the first characters of the id are enough). "
        "Cancel one: `python run.py project cancel ID --reason TEXT --yes`.",
    )
    project.add_argument("project_action", nargs="?", choices=("show", "cancel"), default="show", metavar="[cancel]")
    project.add_argument("id", metavar="ID", help="the project's id (or its first characters)")
    project.add_argument("--reason", metavar="TEXT", help="cancel: why (audited; the client is told it stopped)")
    project.add_argument("--yes", action="store_true", help="cancel: go ahead (the steps are undone)")
    project.add_argument("--json", action="store_true", help="show: print one JSON object")
    project.set_defaults(func=cmd_project)
