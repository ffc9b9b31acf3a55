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

import anyio

from aicmo_actors.cli import campaign_check
from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.progress import Progress


def _now() -> datetime:
    # The command line is outside any actor system: wall time is the time.
    return datetime.now(UTC)


@asynccontextmanager
async def open_store(upgrade_sqlite: bool = True) -> AsyncIterator[Any]:
    """A CamStore on the configured database, schema checked, engine disposed afterwards."""
    from aicmo_actors.cam.store import CamStore
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
        except SchemaError as exc:
            raise UserError(str(exc)) from exc
        except DatabaseUnavailable as exc:
            raise UserError(str(exc)) from exc
        yield CamStore(engine)
    finally:
        await engine.dispose()


def _run(work: Callable[[], Awaitable[int]]) -> int:
    from aicmo_actors.storage.engine import DatabaseUnavailable

    try:
        return anyio.run(work)
    except DatabaseUnavailable as exc:
        raise UserError(str(exc)) from exc


# -- campaign ----------------------------------------------------------------------------------
def cmd_campaign_create(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.campaign import CampaignFileError, load_campaign

    try:
        spec = load_campaign(Path(args.file))
    except CampaignFileError as exc:
        raise UserError(str(exc)) from exc

    async def work() -> int:
        async with open_store() as store:
            existing = (await store.campaigns()).get(spec.name)
            if existing is not None and existing.spec.spec_hash() == spec.spec_hash():
                print(f"campaign {spec.name!r} is already there, unchanged")
                return 0
            _, created = await store.create_or_update_campaign(spec, _now())
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
            campaigns = await store.campaigns()
            if not campaigns:
                print("no campaigns yet: python run.py campaign create FILE.toml")
                return 0
            rows = []
            for name, row in sorted(campaigns.items()):
                funnel = await store.funnel(name)
                rows.append((name, row.status, sum(funnel["leads"].values()), funnel["emails"].get("SENT", 0), sum(funnel["replies"].values())))
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
                funnel = await store.funnel(args.name)
            except KeyError:
                raise UserError(f"no campaign named {args.name!r}: see `python run.py campaign list`") from None
            paused_boxes = await store.mailbox_rows()
        if args.json:
            print(json.dumps({**funnel, "mailboxes": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in m.items()} for m in paused_boxes]}))
            return 0
        leads, emails, replies = funnel["leads"], funnel["emails"], funnel["replies"]
        sent = emails.get("SENT", 0)
        print(f"campaign {funnel['campaign']}: {funnel['status']}")
        if funnel["paused_reason"]:
            print(f"  paused because: {funnel['paused_reason']}  (resume: python run.py campaign resume {funnel['campaign']})")
        print(f"  leads: {sum(leads.values())} ({', '.join(f'{k} {v}' for k, v in sorted(leads.items())) or 'none'})")
        print(f"  emails: {', '.join(f'{k} {v}' for k, v in sorted(emails.items())) or 'none'}")
        if funnel["sent_by_step"]:
            print(f"  sent by step: {', '.join(f'step {k}: {v}' for k, v in sorted(funnel['sent_by_step'].items()))}")
        human = sum(v for k, v in replies.items() if k in ("interested", "meeting_request", "question", "referral", "not_interested", "unsubscribe", "other"))
        print(f"  inbound: {', '.join(f'{k} {v}' for k, v in sorted(replies.items())) or 'none'}")
        print(
            f"  rates (of {sent} sent): human replies {_rate(human, sent)}, "
            f"hard bounces {_rate(replies.get('bounce_hard', 0), sent)}, "
            f"complaints {_rate(replies.get('complaint', 0), sent)}, "
            f"unsubscribes {_rate(leads.get('unsubscribed', 0), sent)}"
        )
        if funnel["alerts"]:
            print(f"  alerts: {', '.join(f'{k} {v}' for k, v in sorted(funnel['alerts'].items()))}")
        for box in paused_boxes:
            if box["status"] == "paused":
                print(f"  mailbox {box['address']} paused: {box['paused_reason']}  (resume: python run.py mailbox resume {box['address']})")
        return 0

    return _run(work)


def _set_status(status: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        async def work() -> int:
            async with open_store() as store:
                changed = await store.set_campaign_status(args.name, status, "paused by command" if status == "paused" else None, _now())
            if not changed:
                raise UserError(f"no campaign named {args.name!r}: see `python run.py campaign list`")
            print(f"campaign {args.name!r} {'paused' if status == 'paused' else 'resumed'}")
            return 0

        return _run(work)

    return handler


# -- leads -------------------------------------------------------------------------------------------
def cmd_leads_import(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.lead_import import LeadFileError, parse_leads_csv

    path = Path(args.file)
    progress = Progress(f"reading {path.name}")
    try:
        result = parse_leads_csv(path, progress=progress.update)
    except LeadFileError as exc:
        raise UserError(str(exc)) from exc
    finally:
        progress.close()

    async def work() -> int:
        async with open_store() as store:
            if args.campaign not in await store.campaigns():
                raise UserError(f"no campaign named {args.campaign!r}: create it first with `python run.py campaign create FILE.toml`")
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
            new, existing, suppressed = await store.import_leads(args.campaign, rows, _now())
        print(
            f"{path.name}: {result.total_rows} rows: {new} imported, {existing} already in the campaign, "
            f"{suppressed} suppressed (skipped), {result.duplicates} duplicates in the file, {len(result.rejected)} rejected"
        )
        for problem in result.rejected[:50]:
            print(f"  line {problem.line}: {problem.reason}")
        if len(result.rejected) > 50:
            print(f"  ... and {len(result.rejected) - 50} more")
        return 0

    return _run(work)


# -- mailboxes, inbox, suppressions ----------------------------------------------------------------------
def cmd_mailbox_list(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            rows = await store.mailbox_rows()
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
            if not await store.resume_mailbox(args.address):
                raise UserError(f"no sending mailbox {args.address!r}: see `python run.py mailbox list`")
        print(f"mailbox {args.address} resumed")
        return 0

    return _run(work)


def cmd_inbox_unmatched(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            rows = await store.unmatched_inbound(args.limit)
        if args.json:
            print(json.dumps([{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]))
            return 0
        if not rows:
            print("no unmatched inbound messages")
        for r in rows:
            when = r["received_at"].isoformat(timespec="minutes") if r["received_at"] else "?"
            print(f"#{r['id']:<6} {when}  {r['category'] or '?':<15} {r['from_address'] or '?':<35} {r['subject'] or ''}")
        return 0

    return _run(work)


def cmd_suppress(args: argparse.Namespace) -> int:
    async def work() -> int:
        async with open_store() as store:
            new = await store.suppress(args.address, args.reason, "command line", _now())
        print(f"{args.address} {'suppressed' if new else 'was already suppressed'}")
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
            out |= {"category": "other", "reason": "unreadable", "confidence": 0.0, "reasons": [f"cannot read the file: {exc.strerror or exc}"],
                    "failed_recipients": [], "status": None, "return_date": None, "in_reply_to": None}
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
    campaign = sub.add_parser("campaign", help="create, list, check, pause and resume campaigns", description="Campaigns are TOML files (see examples/campaign.toml).")
    csub = campaign.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    p = csub.add_parser("create", help="store (or update) a campaign from its file", description="Validate FILE.toml and store it; running it again with a changed file updates the campaign.")
    p.add_argument("file", metavar="FILE.toml")
    p.set_defaults(func=cmd_campaign_create)
    p = csub.add_parser("list", help="every campaign with its counts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_campaign_list)
    p = csub.add_parser("status", help="the funnel of one campaign so far", description="Leads by state, emails by status, replies by category, rates (each over emails sent), pauses and their reasons.")
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

    leads = sub.add_parser("leads", help="import leads from a CSV file")
    lsub = leads.add_subparsers(dest="leads_command", metavar="ACTION", required=True)
    p = lsub.add_parser(
        "import",
        help="import a CSV of leads into a campaign",
        description="Columns: email (required), first_name, last_name, company, timezone, and any others as template variables. "
        "Addresses are checked (syntax only), normalised and de-duplicated; suppressed addresses are skipped; a bad row never "
        "aborts the import. Importing the same file twice changes nothing.",
    )
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--campaign", required=True, help="the campaign's name")
    p.set_defaults(func=cmd_leads_import)

    mailbox = sub.add_parser("mailbox", help="list sending mailboxes, resume a paused one")
    msub = mailbox.add_subparsers(dest="mailbox_command", metavar="ACTION", required=True)
    p = msub.add_parser("list", help="sending mailboxes and whether they are paused")
    p.set_defaults(func=cmd_mailbox_list)
    p = msub.add_parser("resume", help="resume a mailbox paused for sending-side rejections")
    p.add_argument("address")
    p.set_defaults(func=cmd_mailbox_resume)

    inbox = sub.add_parser("inbox", help="inbound messages")
    isub = inbox.add_subparsers(dest="inbox_command", metavar="ACTION", required=True)
    p = isub.add_parser("unmatched", help="messages that matched nothing we sent (kept, never dropped)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inbox_unmatched)

    p = sub.add_parser("suppress", help="never email an address again", description="Add an address to the suppression list (all campaigns).")
    p.add_argument("address")
    p.add_argument("--reason", default="manual")
    p.set_defaults(func=cmd_suppress)

    p = sub.add_parser(
        "classify",
        help="classify .eml files and print one JSON line each",
        description="Print one JSON line per file: file, category, reason, confidence, reasons, failed_recipients, status, "
        "return_date, in_reply_to. Reads any file a mail server may produce; a file it cannot parse gets category other.",
    )
    p.add_argument("files", nargs="+", metavar="FILE.eml")
    p.set_defaults(func=cmd_classify)
