"""Client-acquisition commands: campaigns, leads, mailboxes, the inbox, the classifier."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aicmo_actors.cli import campaign_check
from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.identity_cmd import cli_actor
from aicmo_actors.cli.progress import Progress


def _now() -> datetime:
    # The command line is outside any actor system: wall time is the time.
    return datetime.now(UTC)


@asynccontextmanager
async def open_engine() -> AsyncIterator[Any]:
    """An engine on the configured database (`--database-url` or AICMO_DATABASE_URL), its
    schema checked; disposed afterwards. What the database says is a one-line UserError."""
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.storage.engine import DatabaseUnavailable, make_engine
    from aicmo_actors.storage.schema import SchemaError, ensure_schema

    settings = load_settings()
    try:
        engine = make_engine(settings.database_url)
    except (DatabaseUnavailable, ValueError) as exc:
        raise UserError(str(exc)) from exc
    try:
        try:
            await ensure_schema(engine)
        except (SchemaError, DatabaseUnavailable) as exc:
            raise UserError(str(exc)) from exc
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_store(upgrade_sqlite: bool = True) -> AsyncIterator[Any]:
    """A CamStore on the configured database (see `open_engine`)."""
    from aicmo_actors.cam.repos import CamStore

    async with open_engine() as engine:
        yield CamStore(engine)


def _run(work: Callable[[], Awaitable[int]]) -> int:
    import anyio  # here, not at the top: `classify` (registered from this module) never needs it

    from aicmo_actors.storage.engine import DatabaseUnavailable

    try:
        return anyio.run(work)
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from exc


# -- campaign ----------------------------------------------------------------------------------
def cmd_campaign_create(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.main import load_settings

    settings = load_settings()
    spec = campaign_check.load_checked_file(Path(args.file), settings)
    campaign_check.check_before_storing(spec, settings)

    async def work() -> int:
        async with open_store() as store:
            existing = (await store.campaigns.all()).get(spec.name)
            if existing is not None and existing.spec.spec_hash() == spec.spec_hash():
                print(f"campaign {spec.name!r} is already there, unchanged")
                return 0
            now = _now()

            def audited(conn: Any, result: tuple[int, bool]) -> None:
                action = "campaign.create" if result[1] else "campaign.update"
                detail = {"steps": len(spec.steps), "file": Path(args.file).name}
                cli_actor().write(conn, action, spec.name, detail, now)

            _, created = await store.campaigns.create_or_update(spec, now, also=audited)
        steps = len(spec.steps)
        verb = "created" if created else "updated"
        print(
            f"campaign {spec.name!r} {verb}: {steps} step{'s' if steps != 1 else ''}, "
            f"{len(spec.mailboxes)} mailbox{'es' if len(spec.mailboxes) != 1 else ''}. "
            f"Next: python run.py leads import FILE.csv --campaign {spec.name}"
        )
        return 0

    return _run(work)


def cmd_campaign_list(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            campaigns = await store.campaigns.all()
            if not campaigns:
                print("no campaigns yet: python run.py campaign create FILE.toml")
                return 0
            rows = []
            for name, row in sorted(campaigns.items()):
                funnel = await store.metrics.funnel(name)
                rows.append(
                    (
                        name,
                        row.status,
                        sum(funnel["leads"].values()),
                        funnel["figures"]["sent"],
                        sum(funnel["replies"].values()),
                    )
                )
        if args.json:
            print(json.dumps([dict(zip(("name", "status", "leads", "sent", "inbound"), r, strict=True)) for r in rows]))
            return 0
        print(f"{'campaign':<30} {'status':<8} {'leads':>7} {'sent':>7} {'inbound':>8}")
        for r in rows:
            print(f"{r[0]:<30} {r[1]:<8} {r[2]:>7} {r[3]:>7} {r[4]:>8}")
        return 0

    return _run(work)


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def cmd_campaign_status(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            try:
                funnel = await store.metrics.funnel(args.name)
            except KeyError:
                raise UserError(f"no campaign named {args.name!r}: see `python run.py campaign list`") from None
            paused_boxes = await store.campaigns.mailboxes()
        if args.json:
            print(
                json.dumps(
                    {
                        **funnel,
                        "mailboxes": [
                            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in m.items()}
                            for m in paused_boxes
                        ],
                    }
                )
            )
            return 0
        from aicmo_actors.cli.main import load_settings

        settings = load_settings()
        leads, emails, replies = funnel["leads"], funnel["emails"], funnel["replies"]
        f, window = funnel["figures"], funnel["since_resumed"]
        attempted = f["attempted"]
        print(f"campaign {funnel['campaign']}: {funnel['status']}")
        if funnel["paused_reason"]:
            print(
                f"  paused because: {funnel['paused_reason']}  "
                f"(resume: python run.py campaign resume {funnel['campaign']})"
            )
        print(f"  leads: {sum(leads.values())} ({', '.join(f'{k} {v}' for k, v in sorted(leads.items())) or 'none'})")
        print(
            f"  emails attempted: {attempted} = sent {f['sent']} "
            f"(accepted by the server) + unconfirmed {f['unconfirmed']} "
            f"(the server may have it) + refused {f['refused']} (at send time)"
        )
        print(f"  rows by status: {', '.join(f'{k} {v}' for k, v in sorted(emails.items())) or 'none'}")
        print(
            f"  after sending: hard bounces {f['hard_bounces']}, soft bounces {f['soft_bounces']}, "
            f"complaints {f['complaints']}, delayed (the receiving server is still trying) {f['delayed']}"
        )
        if funnel["sent_by_step"]:
            print(f"  sent by step: {', '.join(f'step {k}: {v}' for k, v in sorted(funnel['sent_by_step'].items()))}")
        human = funnel["human_replies"]
        print(f"  inbound tied to our emails: {', '.join(f'{k} {v}' for k, v in sorted(replies.items())) or 'none'}")
        if funnel["unverified"]:
            print(
                f"  inbound matched by sender address only (changed nothing): "
                f"{', '.join(f'{k} {v}' for k, v in sorted(funnel['unverified'].items()))}"
                "  (see: python run.py inbox unmatched)"
            )
        print(
            f"  rates (of {attempted} attempted): human replies {_rate(human, attempted)}, "
            f"hard bounces {_rate(f['hard_bounces'], attempted)}, "
            f"complaints {_rate(f['complaints'], attempted)}, "
            f"unsubscribes {_rate(leads.get('unsubscribed', 0), attempted)}"
        )
        print(
            "  auto-pause (since created, last paused or resumed: "
            f"{window['attempted']} attempted, judged from {settings.pause_min_sends}): "
            f"hard bounces {_rate(window['hard_bounces'], window['attempted'])} "
            f"(pauses above {settings.pause_hard_bounce_rate:.1%}), "
            f"complaints {_rate(window['complaints'], window['attempted'])} "
            f"(pauses above {settings.pause_complaint_rate:.2%})"
        )
        if funnel["alerts"]:
            print(f"  alerts: {', '.join(f'{k} {v}' for k, v in sorted(funnel['alerts'].items()))}")
        for box in paused_boxes:
            if box["status"] == "paused":
                print(
                    f"  mailbox {box['address']} paused: {box['paused_reason']}"
                    f"  (resume: python run.py mailbox resume {box['address']})"
                )
        return 0

    return _run(work)


def _refuse_archived(campaign: Any, action: str) -> None:
    """An archived campaign is stopped for good: it is not resumed, and nothing is imported into it."""
    from aicmo_actors.cam.repos.campaigns import is_archived

    if campaign is not None and is_archived(campaign.status, campaign.paused_reason):
        raise UserError(f"campaign {campaign.name!r} is archived: it cannot be {action}")


def _set_status(status: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        async def work() -> int:
            async with open_store() as store:
                # Pausing would overwrite the "archived" reason, and then a resume would work.
                action = "resumed" if status == "active" else "paused"
                _refuse_archived((await store.campaigns.all()).get(args.name), action)
                reason = "paused by command" if status == "paused" else None
                now = _now()
                action = f"campaign.{'pause' if status == 'paused' else 'resume'}"
                line = cli_actor().line(action, args.name, {}, now, only_if=bool)
                changed = await store.campaigns.set_status(args.name, status, reason, now, also=line)
            if not changed:
                raise UserError(f"no campaign named {args.name!r}: see `python run.py campaign list`")
            print(f"campaign {args.name!r} {'paused' if status == 'paused' else 'resumed'}")
            return 0

        return _run(work)

    return handler


# -- leads -------------------------------------------------------------------------------------------
#: `leads import` exits with this when some rows were rejected and the others imported.
PARTIAL_IMPORT = 3


def cmd_leads_import(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.lead_import import LeadFileEmpty, LeadFileError, parse_leads_csv
    from aicmo_actors.cli.main import load_settings

    settings = load_settings()
    path = Path(args.file)
    progress = Progress(f"reading {path.name}")
    try:
        result = parse_leads_csv(path, progress=progress.update, allow_test_domains=settings.allow_test_domains)
    except LeadFileEmpty as exc:
        raise UserError(f"{exc}: nothing imported", exit_code=1) from exc
    except LeadFileError as exc:
        raise UserError(str(exc)) from exc
    finally:
        progress.close()

    async def work() -> int:
        async with open_store() as store:
            campaigns = await store.campaigns.all()
            if args.campaign not in campaigns:
                raise UserError(
                    f"no campaign named {args.campaign!r}: "
                    "create it first with `python run.py campaign create FILE.toml`"
                )
            _refuse_archived(campaigns[args.campaign], "imported into")
            rows = [
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
            now = _now()

            def audited(conn: Any, counts: tuple[int, int, int]) -> None:
                cli_actor().write(conn, "leads.import", args.campaign, result.audit_detail(path.name, counts), now)

            new, existing, suppressed = await store.leads.import_rows(args.campaign, rows, now, also=audited)
        rows_read = f"{result.total_rows} row{'s' if result.total_rows != 1 else ''}"
        print(
            f"{path.name}: {rows_read}: {new} imported, {existing} already in the campaign, "
            f"{suppressed} suppressed (skipped), "
            f"{result.duplicates} duplicates in the file, {len(result.rejected)} rejected"
        )
        if result.encoding == "cp1252":
            print(f"note: {path.name} is not UTF-8; it was read as Windows-1252 (check names with accents)")
        for problem in result.rejected[:50]:
            print(f"  line {problem.line}: {problem.reason}")
        if len(result.rejected) > 50:
            print(f"  ... and {len(result.rejected) - 50} more")
        if not result.leads:
            why = "every row was rejected" if result.rejected else "the file has no rows"
            raise UserError(f"{path.name}: nothing imported: {why}", exit_code=1)
        if result.rejected:
            print(
                f"warning: {path.name}: partial import: {len(result.rejected)} of {result.total_rows} rows rejected "
                f"(exit code {PARTIAL_IMPORT}); fix them and import the file again (what is in stays as it is)",
                file=sys.stderr,
            )
            return PARTIAL_IMPORT
        return 0

    return _run(work)


# -- mailboxes, inbox, suppressions ----------------------------------------------------------------------
def cmd_mailbox_list(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            rows = await store.campaigns.mailboxes()
        for r in rows:
            extra = f"  ({r['paused_reason']})" if r["status"] == "paused" else ""
            print(f"{r['address']:<40} {r['status']}{extra}")
        if not rows:
            print("no sending mailboxes yet (they come from campaign files)")
        return 0

    return _run(work)


def cmd_mailbox_resume(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            line = cli_actor().line("mailbox.resume", args.address.lower(), {}, _now(), only_if=bool)
            resumed = await store.campaigns.resume_mailbox(args.address, also=line)
            if not resumed:
                raise UserError(f"no sending mailbox {args.address!r}: see `python run.py mailbox list`")
        print(f"mailbox {args.address} resumed")
        return 0

    return _run(work)


def _printable(text: object, width: int = 0) -> str:
    """A value from a stranger's mail, safe to print on one line of a terminal."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in str(text or ""))
    return shown[:width] if width else shown


def _inbox_listing(
    rows: list[dict[str, Any]], empty: str, extra: Callable[[dict[str, Any]], str], as_json: bool
) -> int:
    if as_json:
        print(json.dumps([{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]))
        return 0
    if not rows:
        print(empty)
    for r in rows:
        when = r["received_at"].isoformat(timespec="minutes") if r["received_at"] else "?"
        print(
            f"#{r['id']:<6} {when}  {r['category'] or '?':<15} "
            f"{_printable(r['from_address'] or '?', 40):<35} {extra(r)}{_printable(r['subject'], 120)}"
        )
    return 0


def cmd_inbox_unmatched(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            rows = await store.inbound.unmatched(args.limit)

        def guess(r: dict[str, Any]) -> str:
            return f"[guess: lead {r['lead_id']} by {r['matched_by']}] " if r["lead_id"] is not None else ""

        return _inbox_listing(rows, "no unmatched inbound messages", guess, args.json)

    return _run(work)


def cmd_inbox_set_aside(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            rows = await store.inbound.set_aside(args.limit)
        return _inbox_listing(
            rows, "no inbound message was set aside", lambda r: f"[{_printable(r['set_aside'])}] ", args.json
        )

    return _run(work)


def cmd_suppress(args: argparse.Namespace) -> int:
    from email_validator import EmailNotValidError

    from aicmo_actors.cam.lead_import import normalise_address
    from aicmo_actors.cli.main import load_settings

    try:
        address = normalise_address(args.address, allow_test_domains=load_settings().allow_test_domains)
    except EmailNotValidError as exc:
        raise UserError(f"{args.address!r} is not an email address: {exc}") from None

    async def work() -> int:
        async with open_store() as store:
            now = _now()
            line = cli_actor().line("suppression.add", address.lower(), {"reason": args.reason}, now)
            new = await store.leads.suppress(address, args.reason, "command line", now, also=line)
        print(f"{address} {'suppressed' if new else 'was already suppressed'}")
        return 0

    return _run(work)


# -- classify ----------------------------------------------------------------------------------------------
def cmd_classify(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.classify import classify_message

    status = 0
    for name in args.files:
        path = Path(name)
        out: dict[str, Any] = {"file": str(path)}
        try:
            raw = path.read_bytes()
        except OSError as exc:
            out |= {
                "category": "other",
                "reason": "unreadable",
                "confidence": 0.0,
                "reasons": [f"cannot read the file: {exc.strerror or exc}"],
                "failed_recipients": [],
                "status": None,
                "return_date": None,
                "in_reply_to": None,
            }
            status = 1
        else:
            c = classify_message(raw)
            out |= {
                "category": c.category.value,
                "reason": c.reason,
                "confidence": c.confidence,
                "reasons": list(c.reasons),
                "failed_recipients": list(c.failed_recipients),
                "status": c.status,
                "return_date": c.return_date.isoformat() if c.return_date else None,
                "in_reply_to": c.in_reply_to,
            }
        print(json.dumps(out, ensure_ascii=False))
        sys.stdout.flush()
    return status


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from aicmo_actors.cli import records  # here: it uses this module's helpers

    campaign = sub.add_parser(
        "campaign",
        help="create, list, check, preview, pause, resume and archive campaigns",
        description="Campaigns are TOML files (see examples/campaign.toml).",
    )
    csub = campaign.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    p = csub.add_parser(
        "create",
        help="store (or update) a campaign from its file",
        description="Validate FILE.toml, run the checks of `campaign check` (templates render for a sample lead, every "
        "mailbox's transport is in AICMO_TRANSPORTS, a daily cap above 0, an https AICMO_PUBLIC_URL that recipients "
        "can reach when a transport is SMTP) and store it; running it again with a changed file updates the campaign. "
        "Exits 1 with the problems listed (nothing stored) when a check fails, 2 when the file cannot be read.",
    )
    p.add_argument("file", metavar="FILE.toml")
    p.set_defaults(func=cmd_campaign_create)
    p = csub.add_parser("list", help="every campaign with its counts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_campaign_list)
    p = csub.add_parser(
        "status",
        help="the funnel of one campaign so far",
        description="Leads by state; emails attempted, sent, unconfirmed and refused; what "
        "came back (bounces, complaints, delays); replies by category; rates (each over "
        "emails attempted; definitions in the README's Figures); pauses and their reasons.",
    )
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_campaign_status)
    p = csub.add_parser("pause", help="stop sending for a campaign (replies are still read)")
    p.add_argument("name")
    p.set_defaults(func=_set_status("paused"))
    p = csub.add_parser("resume", help="resume a paused campaign (also after an auto-pause)")
    p.add_argument("name")
    p.set_defaults(func=_set_status("active"))
    campaign_check.register(csub)
    records.register_campaign(csub)

    leads = sub.add_parser("leads", help="import, list, show and export leads")
    lsub = leads.add_subparsers(dest="leads_command", metavar="ACTION", required=True)
    p = lsub.add_parser(
        "import",
        help="import a CSV of leads into a campaign",
        description="Columns: email (required), first_name, last_name, company, timezone, and any others as "
        "template variables. Addresses are checked (syntax only), normalised and de-duplicated; suppressed "
        "addresses are skipped; a bad row never aborts the import. Importing the same file twice changes nothing. "
        "Exit codes: 0 every row is in the campaign (imported now, already there, suppressed or a duplicate); "
        f"{PARTIAL_IMPORT} partial import: some rows were rejected (listed), the others are in; "
        "1 nothing imported (every row rejected, or an empty file); 2 the file or the campaign cannot be used "
        "(missing, not a CSV, no email column, no such campaign).",
    )
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--campaign", required=True, help="the campaign's name")
    p.set_defaults(func=cmd_leads_import)
    p = lsub.add_parser(
        "show",
        help="one lead (by id) or address: its whole history",
        description="Everything about one lead (ID_OR_EMAIL: its id, or an address: each campaign it is in): "
        "its state and the reason, the next action, each email (status, bounces, complaints, delays, every "
        "answer of the receiving server), the inbound mail tied to it with the classifier's evidence (and any "
        "relabelling), the alerts it raised, and a timeline of all of it. State changes are not stored one by "
        "one: the timeline is made from the times on those records. An unknown lead is exit code 2.",
    )
    p.add_argument("address", metavar="ID_OR_EMAIL")
    p.add_argument("--json", action="store_true", help="print one JSON array, one history per lead")
    p.set_defaults(func=records.cmd_leads_show)
    records.register_leads(lsub)

    mailbox = sub.add_parser("mailbox", help="list sending mailboxes, resume a paused one")
    msub = mailbox.add_subparsers(dest="mailbox_command", metavar="ACTION", required=True)
    p = msub.add_parser("list", help="sending mailboxes and whether they are paused")
    p.set_defaults(func=cmd_mailbox_list)
    p = msub.add_parser("resume", help="resume a mailbox paused for sending-side rejections")
    p.add_argument("address")
    p.set_defaults(func=cmd_mailbox_resume)

    inbox = sub.add_parser("inbox", help="inbound messages")
    isub = inbox.add_subparsers(dest="inbox_command", metavar="ACTION", required=True)
    p = isub.add_parser(
        "unmatched",
        help="messages tied to nothing we sent (kept, never dropped)",
        description="Inbound mail with no Message-ID, return path or token of ours: "
        "matched to nothing, or only guessed (by the sender's address, or a recipient "
        "a report names). A guess changes nothing; act on it yourself if it is genuine.",
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inbox_unmatched)
    p = isub.add_parser(
        "set-aside",
        help="messages not read in full (too large, too complex, too slow to read, unstorable)",
        description="Inbound mail the service stored but did not read in full, with the reason: larger than "
        "AICMO_INBOUND_MAX_BYTES (only its headers are kept), more parts or deeper nesting than the limits, slower "
        "to read than AICMO_CLASSIFY_TIMEOUT_S, or a header the database would not store.",
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inbox_set_aside)

    p = sub.add_parser(
        "suppress",
        help="never email an address again",
        description="Add an address to the suppression list (all campaigns). The address is checked (syntax only; "
        "AICMO_ALLOW_TEST_DOMAINS accepts test domains); a malformed one is refused with exit code 2.",
    )
    p.add_argument("address")
    p.add_argument("--reason", default="manual")
    p.set_defaults(func=cmd_suppress)

    register_classify(sub)


def register_classify(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The `classify` command alone (`main.LIGHT_COMMANDS`: it is parsed without the others)."""
    p = sub.add_parser(
        "classify",
        help="classify .eml files and print one JSON line each",
        description="Print one JSON line per file: file, category, reason, confidence, "
        "reasons, failed_recipients, status, return_date, in_reply_to. Reads any "
        "file a mail server may produce; a file it cannot parse gets category other.",
    )
    p.add_argument("files", nargs="+", metavar="FILE.eml")
    p.set_defaults(func=cmd_classify)
