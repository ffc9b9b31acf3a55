"""`python run.py demo`: a simulated month of prospecting, on the embedded defaults, in seconds;
`python run.py demo --quarter`: the whole business for a quarter (prospecting, the work, the
invoices and payments, the reports, the clients' health, the renewals, the bandit)."""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.progress import Progress
from aicmo_actors.simulation import DATABASE_FILE, MAIL_FOLDER

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Written into the demo's folder: its database and mail folders are the demo's own to replace.
MARKER = ".aicmo-demo"
#: What a run replaces in its folder: names of its own (`simulation.run`), never the
#: service's aicmo.db and mail/, which a demo started in the service's folder leaves alone.
DEMO_DATABASE = DATABASE_FILE
DEMO_MAIL = MAIL_FOLDER
#: The run's log (warnings and up, or what AICMO_LOG_LEVEL says), replaced by the next run too.
DEMO_LOG = "simulation.log"
#: `--quarter`: thirteen weeks.
QUARTER_DAYS = 91
#: `--quarter`'s bandit: decided sends per arm before it reweights.
QUARTER_BURN_IN = 40


def load_demo_inputs(
    campaign_file: Path, leads_file: Path, limit: int, *, allow_test_domains: bool = False
) -> tuple[Any, list[dict[str, Any]]]:
    from aicmo_actors.cam.campaign import CampaignFileError, load_campaign
    from aicmo_actors.cam.lead_import import LeadFileError, parse_leads_csv

    try:
        spec = load_campaign(campaign_file, allow_test_domains=allow_test_domains)
    except CampaignFileError as exc:
        raise UserError(str(exc)) from exc
    try:
        result = parse_leads_csv(leads_file, allow_test_domains=allow_test_domains)
    except LeadFileError as exc:
        raise UserError(str(exc)) from exc
    if not result.leads:
        raise UserError(f"{leads_file}: no lead could be read")
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


def _service_database(database_url: str) -> Path | None:
    """The SQLite file of the configured service database, if it is one."""
    from aicmo_actors.storage.engine import DatabaseUnavailable, parse_url

    try:
        url = parse_url(database_url)
    except DatabaseUnavailable:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().resolve()


def check_workdir(workdir: Path, database_url: str, force: bool) -> None:
    """Refuse (`UserError`) a folder whose database or mail the demo would replace but did not create.

    A run deletes `aicmo.db` and `mail/` in its folder; it may do so where its marker file
    says an earlier demo made them, never where the service keeps its own.
    """
    if force or not workdir.exists():
        return
    if not workdir.is_dir():
        raise UserError(f"--dir {workdir} is a file, not a folder")
    service_db = _service_database(database_url)
    demo_db = (workdir / DEMO_DATABASE).resolve()
    if service_db is not None and service_db == demo_db and service_db.exists():
        raise UserError(
            f"{demo_db} is the service's database (AICMO_DATABASE_URL) and the demo would replace it: "
            "use another --dir (or --force to replace it)"
        )
    if (workdir / MARKER).exists():
        return
    found = [name for name in (DEMO_DATABASE, f"{DEMO_DATABASE}-wal", DEMO_MAIL, DEMO_LOG) if (workdir / name).exists()]
    if found:
        shown = ", ".join(f"{name}/" if (workdir / name).is_dir() else name for name in found)
        raise UserError(
            f"{workdir} holds {shown}, which the demo did not create and would replace: "
            "use another --dir (or --force to replace them)"
        )


def write_sent_mail(outbox: Path, deliveries: list[Any]) -> None:
    """What the simulated prospects received, as a Maildir (the simulation keeps it in memory)."""
    for sub in ("tmp", "new", "cur"):
        (outbox / sub).mkdir(parents=True, exist_ok=True)
    for n, delivery in enumerate(deliveries, 1):
        name = f"{int(delivery.at.timestamp())}.demo{n:06d}.aicmo"
        (outbox / "tmp" / name).write_bytes(delivery.raw)
        (outbox / "tmp" / name).rename(outbox / "new" / name)


def cmd_demo(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.startup import imports_without_gc

    with imports_without_gc():
        from aicmo_actors.cli.main import load_settings
        from aicmo_actors.runtime.logging import configure_logging
        from aicmo_actors.simulation.invariants import INVARIANTS
        from aicmo_actors.simulation.run import simulate
        from aicmo_actors.simulation.world import Behaviour

    # A cleaned list (half a percent of hard bounces), so the month plays out; the
    # simulation tests use dirtier lists to show the auto-pause.
    behaviour = Behaviour(hard_bounce=0.005, soft_bounce=0.01)

    # The funnel is the demo's output; until the run starts, a problem goes to stderr.
    settings = load_settings()
    log_level = settings.log_level if "AICMO_LOG_LEVEL" in os.environ else "warning"
    configure_logging(log_level, settings.log_format)

    if args.quarter and args.days_given:
        raise UserError("--quarter plays 91 days: leave out --days (or drop --quarter)")
    days = QUARTER_DAYS if args.quarter else args.days
    if args.leads < 1 or days <= 0:
        raise UserError("--leads must be at least 1 and --days more than 0")
    workdir = Path(args.dir)
    check_workdir(workdir, settings.database_url, args.force)
    spec, leads = load_demo_inputs(
        Path(args.campaign), Path(args.leads_file), args.leads, allow_test_domains=settings.allow_test_domains
    )
    if args.quarter and spec.bandit is None:
        from aicmo_actors.cam.campaign import BanditSpec

        # The quarter lets the bandit choose the first email's variant; a burn-in a demo's few
        # hundred leads can reach (the file's default, GrowthBook's, is 100 decided sends per arm).
        spec = spec.model_copy(update={"bandit": BanditSpec(burn_in=QUARTER_BURN_IN)})
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / MARKER).write_text(
            f"Made by `python run.py demo`: its {DEMO_DATABASE}, {DEMO_MAIL}/ and {DEMO_LOG} are replaced by the "
            "next demo run.\n"
        )
        # The run's log goes to a file of its own, not between the lines of the funnel: the
        # simulated world makes late work and failing receivers, and the actors warn about them.
        log_path = workdir / DEMO_LOG
        log_file = log_path.open("w", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot use --dir {workdir}: {exc.strerror or exc}") from None
    configure_logging(log_level, "json", stream=log_file)
    print(
        f"Simulating {days:g} days of campaign {spec.name!r} "
        f"({len(spec.steps)} steps) to {len(leads)} leads, seed {args.seed}."
    )
    print("Prospects reply, ignore, bounce or go on holiday at random (seeded); the real actors run on a fake clock.")
    print(
        "Some interested prospects sign: they answer the intake, approve their plan, then review the drafts "
        "on their page or by reply, or not (seeded too); they pay their invoices on time, late, in part or not."
    )
    progress = Progress("simulated days")
    started = time.perf_counter()

    async def run() -> Any:
        return await simulate(
            workdir=workdir,
            spec=spec,
            leads=leads,
            days=days,
            seed=args.seed,
            behaviour=behaviour,
            progress=lambda d, t: progress.update(int(d), int(t)),
        )

    try:
        result = anyio.run(run)
    finally:
        progress.close()
        configure_logging(log_level, settings.log_format)
        log_file.close()
    wall = time.perf_counter() - started
    write_sent_mail(result.outbox, result.world.deliveries)
    client_mail = result.outbox.parent / "clients"
    write_sent_mail(client_mail, result.world.client_emails)
    f = result.funnel
    emails, replies, leads_by_state = f["emails"], f["replies"], f["leads"]
    print(f"\nDone in {wall:.1f} s of wall time ({days * 86400 / wall:,.0f} simulated seconds per second).\n")
    print("Funnel")
    fig = f["figures"]
    print(
        f"  emails sent:        {fig['sent']}  (by step: "
        f"{', '.join(f'{k}: {v}' for k, v in sorted(f['sent_by_step'].items()))})"
    )
    print(f"  also attempted:     unconfirmed {fig['unconfirmed']}, refused at send time {fig['refused']}")
    print(
        f"  after sending:      hard bounces {fig['hard_bounces']}, soft bounces {fig['soft_bounces']}, "
        f"complaints {fig['complaints']}, delayed {fig['delayed']}"
    )
    other = {k: v for k, v in emails.items() if k != "SENT"}
    if other:
        print(f"  rows by status:     {', '.join(f'{k.lower()} {v}' for k, v in sorted(other.items()))} (besides sent)")
    order = [
        "interested",
        "meeting_request",
        "question",
        "referral",
        "not_interested",
        "unsubscribe",
        "other",
        "auto_reply",
        "bounce_hard",
        "bounce_soft",
        "complaint",
    ]
    print("  inbound by category: " + (", ".join(f"{k} {replies[k]}" for k in order if replies.get(k)) or "none"))
    print(f"  leads by state:     {', '.join(f'{k} {v}' for k, v in sorted(leads_by_state.items()))}")
    print(
        f"  unsubscribed:       {leads_by_state.get('unsubscribed', 0)}   bounced: {leads_by_state.get('bounced', 0)}"
    )
    print(
        f"  alerts delivered:   {f['alerts'].get('delivered', 0)} "
        f"(emails to the owner: {len(result.world.alert_emails)})"
    )
    print(f"  campaign status:    {f['status']}" + (f" ({f['paused_reason']})" if f["paused_reason"] else ""))
    print_after_deal(result.extra)
    print("\nInvariants checked")
    broken = {v.invariant: v for v in result.violations}
    for name in INVARIANTS:
        mark = "FAIL" if name in broken else "ok  "
        print(f"  [{mark}] {name}" + (f": {broken[name].first}" if name in broken else ""))
    print(f"\nTrace hash (same seed, same hash): {result.trace_hash[:16]}  ({result.events} events)")
    print("\nOn disk")
    print(
        f"  database:  {result.db_path}   (sqlite3 {result.db_path} 'select state, count(*) from cam_leads group by 1')"
    )
    print(f"  replies:   {result.inbox}/new   (the inbox Maildir the service read)")
    print(f"  sent mail: {result.outbox}/new   (what the prospects received)")
    print(f"  clients:   {client_mail}/new   (what the clients received: welcome, plans, reviews, work)")
    print(f"  log:       {log_path}   ({_log_summary(log_path)}; AICMO_LOG_LEVEL=info logs every step)")
    url = f"--database-url sqlite+aiosqlite:///{result.db_path}"
    print(f"  projects:  .venv/bin/python run.py projects {url}")
    print(f"  money:     .venv/bin/python run.py invoices {url}   (and: invoice NUMBER, health, reports, learn NAME)")
    print(
        "\nNext: write your own campaign (examples/campaign.toml), then "
        "`.venv/bin/python run.py campaign check FILE`, `... campaign create FILE`, "
        "`... leads import FILE.csv --campaign NAME` and `.venv/bin/python run.py` (see the README)."
    )
    if args.serve:
        return serve_demo(settings, workdir, result.db_path, args.port)
    return 1 if result.violations else 0


def _log_summary(path: Path) -> str:
    """How many warnings and errors the run's log holds, and the commonest events: "3 warnings: late work 3"."""
    counts: dict[str, int] = {}
    levels: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return "not readable"
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        level = str(entry.get("level", ""))
        if level in ("warning", "error", "critical"):
            levels[level] = levels.get(level, 0) + 1
            event = str(entry.get("event", ""))[:40]
            counts[event] = counts.get(event, 0) + 1
    if not levels:
        return "no warning"
    said = ", ".join(f"{n} {level}{'s' if n != 1 else ''}" for level, n in sorted(levels.items()))
    top = ", ".join(f"{event} {n}" for event, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    return f"{said}: {top}"


def print_after_deal(extra: dict[str, Any]) -> None:
    """What followed the deals: prospects who signed, their projects, intakes, plans and work."""
    if "deals" not in extra:
        return
    projects = extra["projects"]
    shown = ", ".join(f"{state} {n}" for state, n in sorted(projects.items())) or "none"
    print("\nAfter the deal")
    print(f"  prospects signed:   {extra['deals']}   (deals: each lead a client, its company no longer prospected)")
    print(f"  projects:           {sum(projects.values())}   ({shown}; delivered: every period of the term delivered)")
    if "periods_begun" in extra:
        print(
            f"  periods:            {extra['periods_begun']} begun, {extra['periods_delivered']} delivered   "
            "(a monthly retainer's next period begins a week before its first day)"
        )
    print(f"  intakes answered:   {extra['intakes_completed']}")
    print(
        f"  plans approved:     {extra['plans_approved']}   (changes asked first: {extra['plans_changes_requested']})"
    )
    items = extra.get("work_items") or {}
    if items:
        by_state = ", ".join(f"{state} {n}" for state, n in items.items())
        print(f"  pieces of work:     {sum(items.values())}   ({by_state})")
        print(
            f"  drafts written:     {extra['drafts_written']}   (QC sent {extra['qc_failed']} back; "
            f"problems planted by the simulated writer: {extra['planted']}, see the last invariant)"
        )
        verdicts = ", ".join(f"{k.replace(' ', ' by ')} {n}" for k, n in (extra.get("verdicts") or {}).items())
        print(f"  client verdicts:    {verdicts or 'none yet'}")
        delivered = ", ".join(f"{method} {n}" for method, n in (extra.get("delivered") or {}).items())
        print(
            f"  delivered:          {delivered or 'nothing yet'}   "
            f"(webhook attempts {extra['webhook_attempts']}: the receivers fail some, seeded)"
        )
    print(
        f"  emails to clients:  {extra['client_emails']}   "
        "(welcome, reminders, plans, reviews, delivered work, invoices, reports)"
    )
    print_business(extra)


def print_business(extra: dict[str, Any]) -> None:
    """The business around the work: invoices and payments, holds, reports, health, the bandit."""
    if "invoices" not in extra:
        return
    print("\nThe business")
    kinds = ", ".join(f"{kind} {n}" for kind, n in extra["invoices_by_kind"].items()) or "none"
    states = ", ".join(f"{state} {n}" for state, n in extra["invoices_by_state"].items()) or "none"
    print(f"  invoices:           {extra['invoices']}   ({kinds}; {states})")
    money = "; ".join(
        f"{cur} {total} invoiced, {extra['received'].get(cur, '0')} received"
        for cur, total in extra["invoiced"].items()
    )
    print(f"  money:              {money or 'nothing invoiced yet'}")
    print(
        f"  payments:           {extra['payments']}   (invoices paid after a reminder: {extra['invoices_paid_late']}, "
        f"paid in part: {extra['invoices_partly_paid']})"
    )
    print(
        f"  payment reminders:  {extra['reminders']}   holds: {extra['holds']} on {extra['clients_held']} client(s) "
        f"(released on payment: {extra['holds_released']}; deliveries that waited for one: "
        f"{extra['deliveries_waited']})"
    )
    print(f"  reports sent:       {extra['reports']}   (one per client and period, HTML with the PDF attached)")
    bands = ", ".join(f"{band} {n}" for band, n in extra["health"].items() if band) or "none scored yet"
    print(f"  client health:      {bands}   renewal reminders: {extra['renewal_reminders']}")
    print(f"  renewals:           {extra['renewals']} recorded, {extra['renewals_applied']} applied (deal renew)")
    latest = extra.get("bandit_latest")
    shares = ""
    if latest:
        split = ", ".join(f"{name} {share:.0%}" for name, share in latest["weights"].items())
        state = "still in its burn-in" if latest["burn_in"] else "reweighted by the replies"
        shares = f"; step {latest['step']} now {split} ({state})"
    print(
        f"  bandit decisions:   {extra['bandit_allocations']}{shares}   (python run.py learn CAMPAIGN shows the arms)"
    )


def serve_demo(settings: Any, workdir: Path, db_path: Path, port: int | None) -> int:
    """The service on the demo's database, for its results in the web app: sending paused
    (the world it wrote to is gone), a user `demo` made with a password shown once."""
    import secrets

    from aicmo_actors.cli.service import open_database, serve
    from aicmo_actors.identity.repos import AuditActor, IdentityStore
    from aicmo_actors.orchestration.switches import SwitchesRepo
    from aicmo_actors.settings import InboxProfile, TransportProfile

    mail = workdir / DEMO_MAIL
    served = settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{db_path.resolve()}",
            "state_dir": workdir / ".aicmo",
            "transports": {"default": TransportProfile(path=mail / "outbox")},
            "inboxes": {"default": InboxProfile(path=mail / "inbox")},
            "http_port": port if port is not None else settings.http_port,
            # The page is the output: the service's info lines would bury the password.
            "log_level": settings.log_level if "AICMO_LOG_LEVEL" in os.environ else "warning",
        }
    )
    password = secrets.token_urlsafe(12)

    async def prepare() -> None:
        engine = await open_database(served)
        try:
            now = datetime.now(UTC)
            identity = IdentityStore(engine)
            if await identity.users.get("demo") is None:
                await identity.users.add("demo", "owner", password, now, by=AuditActor("cli:demo", "cli"))
            else:
                await identity.users.set_password("demo", password, now, by=AuditActor("cli:demo", "cli"))
            await SwitchesRepo(engine).set(
                "worker", False, by="cli:demo", reason="the demo's results: nothing is sent", now=now
            )
        finally:
            await engine.dispose()

    anyio.run(prepare)
    url = f"http://{served.http_host}:{served.http_port}/app/"
    print(f"\nServing the demo's results at {url} until Ctrl-C.")
    print(f"  sign in as demo, password {password}   (shown once; `users` commands change it)")
    print("  sending is paused: the Modules page resumes it (emails then go to the demo's Maildir)")

    async def main() -> int:
        return await serve(served)

    return int(anyio.run(main))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="simulate a month of prospecting, or with --quarter the whole business (nothing leaves the machine)",
        description="Create the example campaign, import the example leads and run a simulated month on a fake clock: "
        "the real actors, an SQLite database and Maildir folders in --dir, simulated prospects who reply, bounce or go "
        "on holiday, and some who sign: the clients they become answer the intake, approve their plan, review the "
        "work and pay their invoices (or not). --quarter plays 91 days of the whole business. Prints the funnel, what "
        "followed the deals, the money, reports, health and bandit, and the invariants it checked. Exits 1 if an "
        "invariant broke.",
    )
    p.add_argument(
        "--leads", type=int, default=200, help="how many leads (default 200; more than the file has are synthesised)"
    )
    p.add_argument("--days", type=float, help="simulated days (default 30)")
    p.add_argument(
        "--quarter",
        action="store_true",
        help=f"the whole business for a quarter ({QUARTER_DAYS} days): prospecting, deals, the work, invoices "
        "(some paid late or in part, reminders, a client on hold), reports, client health, renewal reminders, "
        "and a bandit choosing the first email's variant",
    )
    p.add_argument("--seed", type=int, default=1, help="seed: the same seed gives the same run (default 1)")
    p.add_argument(
        "--dir",
        default="demo",
        help="working folder for the database, mail and log (default ./demo): "
        f"its {DEMO_DATABASE}, {DEMO_MAIL}/ and {DEMO_LOG} are replaced; "
        "a folder with any of them the demo did not create is refused",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help=f"replace {DEMO_DATABASE}, {DEMO_MAIL}/ and {DEMO_LOG} in --dir even if the demo did not create them",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="afterwards, serve the results in the web app (http://127.0.0.1:PORT/app/) until Ctrl-C, with "
        "sending paused; prints the password of a user 'demo'",
    )
    p.add_argument("--port", type=int, help="with --serve: the port (default: AICMO_HTTP_PORT or 8080)")
    p.add_argument("--campaign", default=str(EXAMPLES / "campaign.toml"), help=argparse.SUPPRESS)
    p.add_argument("--leads-file", default=str(EXAMPLES / "leads.csv"), help=argparse.SUPPRESS)
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    args.days_given = args.days is not None
    if args.days is None:
        args.days = 30.0
    return cmd_demo(args)
