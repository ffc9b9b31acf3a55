"""What the HTTP API can do, from the command line: lists of leads, replies, alerts and
suppressions (aligned text, or `--json`: one JSON object a line; `--limit`/`--after` page by
id), a lead's whole history, relabelling a reply by hand, retrying an alert, a campaign's
emails previewed for one lead, archiving a campaign, testing a transport, and daily figures.

Registered here: `replies`, `alerts`, `suppressions`, `transport`, `stats`; `cli.cam` adds
`leads list|export` (`register_leads`) and `campaign preview|archive` (`register_campaign`)
to its own commands, and its `leads show` prints `show_history`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicmo_actors.cli.errors import UserError

if TYPE_CHECKING:
    from aicmo_actors.cam.lead_rules import LeadRules
    from aicmo_actors.settings import Settings, TransportProfile

#: The most rows one page may hold (the repositories cap there too).
MAX_PAGE = 500


def _now() -> datetime:
    # The command line is outside any actor system: wall time is the time.
    return datetime.now(UTC)


def _printable(text: object, width: int = 0) -> str:
    """A value that may come from a stranger's mail, safe to print on one line of a terminal."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in str("" if text is None else text))
    return shown if not width or len(shown) <= width else shown[: width - 1] + "…"


def _when(value: str | None) -> str:
    """An ISO time from a record, to the minute, in UTC."""
    return value[:16].replace("T", " ") if value else "-"


def _cli_user() -> str:
    """Who acts, as the records and the audit name someone at the command line."""
    from aicmo_actors.cli.identity_cmd import cli_actor

    return cli_actor().name


def _page_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_PAGE}, not {value}")
    return value


def _record_id(text: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id (a whole number): {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"not an id (ids start at 1): {value}")
    return value


def _run_with_store(work: Callable[[Any], Any]) -> Any:
    """Run `work(store)` (a coroutine function) on the configured database; a `RecordError`
    (an unknown record, a value no record can have) is a `UserError`: one line, exit 2."""
    from aicmo_actors.cam.repos.records import RecordError
    from aicmo_actors.cli.cam import _run, open_store

    result: list[Any] = []

    async def main() -> int:
        async with open_store() as store:
            try:
                result.append(await work(store))
            except RecordError as exc:
                raise UserError(str(exc)) from None
        return 0

    _run(main)
    return result[0]


def _audit_line(
    action: str, target: str, detail: dict[str, Any], *, only_if: Callable[[Any], object] | None = None
) -> Callable[[Any, Any], object]:
    """The audit row of a change made here (`identity`'s trail, as the API writes one): who
    (``cli:<login name>``), what, on what, as the repository's `also` (`storage.work.Also`):
    written in the change's own transaction, never apart from it (`only_if`: as
    `AuditActor.line`)."""
    from aicmo_actors.cli.identity_cmd import cli_actor

    return cli_actor().line(action, target, detail, _now(), only_if=only_if)


def _table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, right: frozenset[str] = frozenset()
) -> None:
    """Print `rows` as aligned columns: (header, key) each; the last column is not padded."""
    cells = [[_printable(r.get(key), 80) for _, key in columns] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, (h, _) in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, (value, (_, key)) in enumerate(zip(values, columns, strict=True)):
            last = i == len(columns) - 1
            parts.append(value.rjust(widths[i]) if key in right else value if last else value.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    print(line([h for h, _ in columns]))
    for row in cells:
        print(line(row))


def _listing(
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    columns: Sequence[tuple[str, str]],
    *,
    empty: str,
    right: frozenset[str] = frozenset(),
    shown: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> int:
    """A page of records: JSON lines, or a table and how to get the next page."""
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print(empty)
        return 0
    _table([shown(r) for r in rows], columns, right=right)
    if len(rows) == args.limit:
        print(f"(more may follow: add --after {rows[-1]['id']})")
    return 0


def _add_paging(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--limit", type=_page_size, default=50, metavar="N", help=f"rows per page (default 50, at most {MAX_PAGE})"
    )
    p.add_argument("--after", type=_record_id, metavar="ID", help="the page after this id (the last one shown)")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")


def _confirm(question: str, args: argparse.Namespace) -> None:
    """Ask on a terminal unless --yes; without a terminal, go on (the command was typed on purpose)."""
    if args.yes or not sys.stdin.isatty():
        return
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("nothing changed: not confirmed", exit_code=1)


def _lead_rules(settings: Settings) -> LeadRules:
    """The lead rules' timings from the settings, as the service uses them."""
    from aicmo_actors.cam.wiring import lead_rules

    return lead_rules(settings)


# -- leads -------------------------------------------------------------------------------------------------


def _lead_name(r: dict[str, Any]) -> str:
    name = " ".join(p for p in (r.get("first_name"), r.get("last_name")) if p)
    return f"{name} ({r['company']})" if r.get("company") else name


def cmd_leads_list(args: argparse.Namespace) -> int:
    rows = _run_with_store(
        lambda store: store.leads.page(
            campaign=args.campaign, state=args.state, email_contains=args.email, after_id=args.after, limit=args.limit
        )
    )
    columns = [
        ("id", "id"),
        ("email", "email"),
        ("campaign", "campaign"),
        ("state", "state"),
        ("step", "step"),
        ("next action (UTC)", "next"),
        ("name", "name"),
    ]
    return _listing(
        rows,
        args,
        columns,
        empty="no leads" + (" match" if args.campaign or args.state or args.email else " yet"),
        right=frozenset({"id", "step"}),
        shown=lambda r: r | {"next": _when(r["next_action_at"]), "name": _lead_name(r)},
    )


#: The columns of `leads export`, in order.
EXPORT_COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "company",
    "timezone",
    "campaign",
    "state",
    "state_reason",
    "step",
    "next_action_at",
    "last_sent_at",
    "created_at",
    "updated_at",
)


def cmd_leads_export(args: argparse.Namespace) -> int:
    to_stdout = args.out in (None, "-")

    async def work(store: Any) -> int:
        # An unknown campaign or state: one line, and nothing written.
        await store.leads.page(campaign=args.campaign, state=args.state, limit=1)
        out = sys.stdout if to_stdout else _open_out(Path(args.out))
        count = 0
        try:
            writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            after = None
            while page := await store.leads.page(campaign=args.campaign, state=args.state, after_id=after, limit=500):
                writer.writerows(page)
                count += len(page)
                after = page[-1]["id"]
        finally:
            if not to_stdout:
                out.close()
        return count

    count = _run_with_store(work)
    if not to_stdout:
        print(f"{count} lead{'s' if count != 1 else ''} written to {args.out}")
    return 0


def _open_out(path: Path) -> Any:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_leads_show(args: argparse.Namespace) -> int:
    """`leads show ID_OR_EMAIL`: the lead's (or every lead of the address's) whole history."""
    wanted = args.address.strip().lstrip("#")

    async def work(store: Any) -> list[dict[str, Any]]:
        ids = [int(wanted)] if wanted.isdigit() else await store.leads.lead_ids(wanted)
        found = [h for h in [await store.leads.history(i) for i in ids] if h is not None]
        return found

    found = _run_with_store(work)
    if not found:
        what = f"no lead with id {wanted}" if wanted.isdigit() else f"no lead {args.address!r} in any campaign"
        raise UserError(f"{what}: see `python run.py leads list`")
    if args.json:
        print(json.dumps(found, ensure_ascii=False))
        return 0
    for history in found:
        show_history(history)
    return 0


def show_history(history: dict[str, Any]) -> None:
    """A lead's history as text: the lead, each email with every server answer, what came back,
    the alerts, and the timeline."""
    lead = history["lead"]
    print(f"{lead['email']} in campaign {lead['campaign']} (lead {lead['id']}): {lead['state']}")
    name = _lead_name(lead)
    if name:
        print(f"  name: {_printable(name)}")
    print(f"  why: {_printable(lead['state_reason']) or '-'}")
    print(
        f"  last step sent: {lead['step']}, next action: {_when(lead['next_action_at'])}, "
        f"soft bounces: {lead['soft_bounces']}"
    )
    if lead["suppressed"]:
        print(f"  suppressed: {lead['suppressed']['reason']} since {_when(lead['suppressed']['created_at'])}")
    for e in history["emails"]:
        outcome = ", ".join(
            part
            for part in (
                f"{e['bounce']} bounce ({e['bounce_reason']})" if e["bounce"] else "",
                "complaint" if e["complained_at"] else "",
                f"delayed {_when(e['delayed_at'])}" if e["delayed_at"] else "",
            )
            if part
        )
        print(
            f"  email {e['id']}, step {e['step']}{'' if e['variant'] in (None, 'A') else ' variant ' + e['variant']}: "
            f"{e['status']} from {e['mailbox']} at {_when(e['sent_at'])}" + (f"; {outcome}" if outcome else "")
        )
        print(f"      subject: {_printable(e['subject'], 100)}  message-id: {_printable(e['message_id'])}")
        for answer in e["replies"] or []:
            print(
                f"      {_when(answer.get('at'))} {answer.get('stage')}: "
                f"{answer.get('code') or ''} {_printable(answer.get('text'), 160)}"
            )
        if e["status"] in ("CANCELLED", "QUEUED") and e["last_error"]:
            print(f"      {_printable(e['last_error'], 200)}")
    for i in history["inbound"]:
        print(
            f"  inbound #{i['id']} {_when(i['received_at'])}: {i['category'] or 'not classified yet'} "
            f"({i['reason'] or '-'}, tied by {i['matched_by'] or 'nothing'}) "
            f"from {_printable(i['from_address'] or '?')}: {_printable(i['subject'], 80)}"
        )
        for reason in i["reasons"][:8]:
            print(f"      {_printable(reason, 160)}")
    for a in history["alerts"]:
        print(f"  alert #{a['id']} {a['kind']}: {a['state']} (raised {_when(a['created_at'])})")
    print("  timeline (UTC; state changes are not stored one by one, these are the times on the records):")
    for t in history["timeline"]:
        ref = f" [{t['ref']}]" if t["ref"] else ""
        print(f"    {_when(t['at'])}  {t['event']:<15} {_printable(t['detail'], 140)}{ref}")


def register_leads(lsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`leads list` and `leads export` (added by `cli.cam` to its `leads` command)."""
    p = lsub.add_parser(
        "list",
        help="leads, a page at a time, with their state and next action",
        description="Leads by id, a page at a time (--limit, --after the last id shown), filtered by campaign, "
        "state (active, paused, replied, not_interested, unsubscribed, bounced, completed, stopped) or a part of "
        "the address.",
    )
    p.add_argument("--campaign", metavar="NAME", help="only this campaign's leads")
    p.add_argument("--state", metavar="STATE", help="only leads in this state")
    p.add_argument("--email", metavar="TEXT", help="only addresses containing TEXT")
    _add_paging(p)
    p.set_defaults(func=cmd_leads_list)
    p = lsub.add_parser(
        "export",
        help="write leads as CSV (one campaign, or all)",
        description="Write every lead (of --campaign, in --state) as CSV with the columns "
        f"{', '.join(EXPORT_COLUMNS)}.",
    )
    p.add_argument("--campaign", metavar="NAME", help="only this campaign's leads")
    p.add_argument("--state", metavar="STATE", help="only leads in this state")
    p.add_argument("--out", metavar="FILE.csv", default="-", help="where to write (default -, the standard output)")
    p.set_defaults(func=cmd_leads_export)


# -- replies -----------------------------------------------------------------------------------------------


def cmd_replies_list(args: argparse.Namespace) -> int:
    rows = _run_with_store(
        lambda store: store.inbound.replies(
            category=args.category,
            campaign=args.campaign,
            handled=args.handled,
            after_id=args.after,
            limit=args.limit,
        )
    )
    columns = [
        ("id", "id"),
        ("received (UTC)", "when"),
        ("category", "shown_category"),
        ("conf", "conf"),
        ("lead", "lead"),
        ("campaign", "campaign"),
        ("from", "from_address"),
        ("subject", "subject"),
    ]

    def shown(r: dict[str, Any]) -> dict[str, Any]:
        category = r["category"] or "(unread)"
        if r["acted_at"] is None and r["category"]:
            category += " *"
        return r | {
            "when": _when(r["received_at"]),
            "shown_category": category,
            "conf": f"{r['confidence']:.2f}" if r["confidence"] is not None else "-",
            "lead": (f"{r['lead_id']}" + ("?" if r["matched_by"] in ("sender", "report_recipient") else ""))
            if r["lead_id"] is not None
            else "-",
            "campaign": r["campaign"] or "-",
        }

    done = _listing(
        rows, args, columns, empty="no inbound messages match", right=frozenset({"id", "conf"}), shown=shown
    )
    if rows and not args.json:
        print("(* not acted on yet; lead N? tied only by a guess: changes nothing)")
    return done


def cmd_replies_relabel(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.main import load_settings

    rules = _lead_rules(load_settings())
    by = _cli_user()

    line = _audit_line(
        "reply.relabel", str(args.inbound_id), {"category": args.category}, only_if=itemgetter("relabelled")
    )

    async def work(store: Any) -> dict[str, Any]:
        done: dict[str, Any] = await store.inbound.relabel(
            args.inbound_id,
            args.category,
            by=by,
            now=_now(),
            rules=rules,
            also=line,
        )
        return done

    done = _run_with_store(work)
    if args.json:
        print(json.dumps(done, ensure_ascii=False))
        return 0
    if not done["relabelled"]:
        print(f"inbound #{done['inbound_id']} is labelled {done['category']} already: nothing changed")
        return 0
    print(f"inbound #{done['inbound_id']}: {done['previous_category']} -> {done['category']} (by {done['by']})")
    before, after = done["lead_before"], done["lead_after"]
    if after is None:
        print(f"  no lead changed: {done['cause']}")
        return 0
    lead = f"lead {done['lead_id']} ({after['email']}) in campaign {done['campaign'] or '?'}"
    if before["state"] != after["state"]:
        print(f"  {lead}: {before['state']} -> {after['state']} ({_printable(after['state_reason'])})")
    else:
        print(f"  {lead}: still {after['state']} ({_printable(done['cause'])})")
    if before["next_action_at"] != after["next_action_at"]:
        print(f"  next action: {_when(before['next_action_at'])} -> {_when(after['next_action_at'])}")
    if after["suppressed"] and not before["suppressed"]:
        print(f"  {after['email']} is suppressed now: never written to again, in any campaign")
    if done["outcome"]:
        print(f"  recorded on the email: {done['outcome']}")
    if done["stopped_colleagues"]:
        print(f"  stopped {done['stopped_colleagues']} other lead(s) at the same company")
    for alert_id in done["alert_ids"]:
        print(f"  alert #{alert_id} raised (the service delivers pending alerts when it starts)")
    return 0


def _category(text: str) -> str:
    return text.strip().lower().replace("-", "_")


# -- alerts ------------------------------------------------------------------------------------------------


def cmd_alerts_list(args: argparse.Namespace) -> int:
    rows = _run_with_store(lambda store: store.alerts.page(state=args.state, after_id=args.after, limit=args.limit))
    columns = [
        ("id", "id"),
        ("raised (UTC)", "when"),
        ("kind", "kind"),
        ("state", "state"),
        ("tries", "attempts"),
        ("campaign", "campaign"),
        ("summary / last error", "about"),
    ]
    return _listing(
        rows,
        args,
        columns,
        empty="no alerts" + (f" {args.state}" if args.state else " yet"),
        right=frozenset({"id", "attempts"}),
        shown=lambda r: (
            r
            | {
                "when": _when(r["created_at"]),
                "campaign": r["campaign"] or "-",
                "about": r["last_error"] if r["state"] == "failed" and r["last_error"] else r["summary"],
            }
        ),
    )


def cmd_alerts_retry(args: argparse.Namespace) -> int:
    line = _audit_line("alert.retry", str(args.alert_id), {}, only_if=bool)

    async def work(store: Any) -> bool:
        if await store.alerts.get(args.alert_id) is None:
            raise UserError(f"no alert #{args.alert_id}: see `python run.py alerts list`")
        due: bool = await store.alerts.retry_now(args.alert_id, _now(), also=line)
        return due

    if not _run_with_store(work):
        raise UserError(f"alert #{args.alert_id} was delivered already: nothing to retry")
    print(
        f"alert #{args.alert_id} is pending again: the service delivers it when it next starts "
        "(restart it to send it now)"
    )
    return 0


# -- suppressions ------------------------------------------------------------------------------------------


def cmd_suppressions_list(args: argparse.Namespace) -> int:
    rows = _run_with_store(lambda store: store.leads.suppressions(after_id=args.after, limit=args.limit))
    columns = [("id", "id"), ("address", "address"), ("since (UTC)", "when"), ("reason", "reason"), ("by", "source")]
    return _listing(
        rows,
        args,
        columns,
        empty="no suppressed addresses",
        right=frozenset({"id"}),
        shown=lambda r: r | {"when": _when(r["created_at"])},
    )


def cmd_suppressions_remove(args: argparse.Namespace) -> int:
    from aicmo_actors.cam.repos.sql import normalise_address

    address = normalise_address(args.address)
    if not args.reason.strip():
        raise UserError("--reason must say why the address may be written to again (it goes in the audit)")
    _confirm(f"{address} may then be imported and written to again. Remove it from the suppression list?", args)

    line = _audit_line("suppression.remove", address, {"reason": args.reason}, only_if=bool)

    async def work(store: Any) -> bool:
        removed: bool = await store.leads.unsuppress(address, also=line)
        return removed

    if not _run_with_store(work):
        raise UserError(f"{address} is not suppressed: see `python run.py suppressions list`")
    print(
        f"{address} removed from the suppression list (reason: {_printable(args.reason)}); "
        "leads it stopped stay stopped"
    )
    return 0


# -- campaigns ---------------------------------------------------------------------------------------------


def cmd_campaign_archive(args: argparse.Namespace) -> int:
    _confirm(f"Archive campaign {args.name!r}? Its leads stop for good and its queued emails are cancelled.", args)

    line = _audit_line("campaign.archive", args.name, {}, only_if=itemgetter("archived"))

    async def work(store: Any) -> dict[str, Any]:
        done: dict[str, Any] = await store.campaigns.archive(args.name, _now(), also=line)
        return done

    done = _run_with_store(work)
    if not done["archived"]:
        print(f"campaign {args.name!r} was archived already: nothing changed")
        return 0
    print(
        f"campaign {args.name!r} archived: {done['leads_stopped']} lead(s) stopped, "
        f"{done['emails_cancelled']} queued email(s) cancelled; its history is kept"
    )
    return 0


def cmd_campaign_preview(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.main import load_settings

    settings = load_settings()

    async def work(store: Any) -> tuple[Any, dict[str, Any]]:
        campaign = (await store.campaigns.all()).get(args.name)
        if campaign is None:
            raise UserError(f"no campaign named {args.name!r}: see `python run.py campaign list`")
        for lead_id in await store.leads.lead_ids(args.lead):
            history = await store.leads.history(lead_id)
            if history is not None and history["lead"]["campaign"] == args.name:
                return campaign.spec, history
        raise UserError(f"no lead {args.lead!r} in campaign {args.name!r}: see `python run.py leads list`")

    spec, history = _run_with_store(work)
    previews = preview_emails(spec, history, settings.public_url, _now())
    if args.json:
        for preview in previews:
            print(json.dumps(preview, ensure_ascii=False))
    else:
        for preview in previews:
            print(f"=== step {preview['step']}, variant {preview['variant']} ({preview['when']}) ===")
            if preview["problem"]:
                print(f"cannot be rendered: {preview['problem']}")
                continue
            for name, value in preview["headers"].items():
                print(f"{name}: {value}")
            print()
            print(preview["text"], end="" if preview["text"].endswith("\n") else "\n")
            if preview["html"] is not None:
                print(f"(and an HTML part of {len(preview['html'])} characters)")
            print()
        print("nothing was sent")
    return 1 if any(p["problem"] for p in previews) else 0


def preview_emails(spec: Any, history: dict[str, Any], public_url: str, now: datetime) -> list[dict[str, Any]]:
    """Every step of the campaign as the lead would get it: the variant its email was (or, before
    it was planned, every variant), rendered as the sender renders it; the unsubscribe token is a
    placeholder. Each is {"step", "variant", "when", "headers", "text", "html", "problem"}."""
    from aicmo_actors.cam.planning import mailbox_for
    from aicmo_actors.cam.templates import TemplateProblemError, render_step
    from aicmo_actors.cam.texts import follow_up_subject
    from aicmo_actors.gateways.mail_message import build_message

    lead = history["lead"]
    emails = {int(e["step"]): e for e in history["emails"]}
    fields = {k: v for k, v in (lead.get("variables") or {}).items() if isinstance(k, str)}
    fields |= {
        "email": lead["email"],
        "first_name": lead["first_name"] or "",
        "last_name": lead["last_name"] or "",
        "company": lead["company"] or "",
        "timezone": lead["timezone"] or spec.timezone,
    }
    mailbox = (
        next(iter(emails.values()))["mailbox"]
        if emails
        else mailbox_for(lead["id"], [m.address for m in spec.mailboxes])
    )
    box = next((m for m in spec.mailboxes if m.address.lower() == mailbox.lower()), spec.mailboxes[0])
    link = f"{public_url.rstrip('/')}/u/PREVIEW-TOKEN"
    domain = mailbox.rpartition("@")[2] or "localhost"
    thread: list[str] = []
    first_subject = emails[1]["subject"] if 1 in emails else ""
    previews: list[dict[str, Any]] = []
    for index, step in enumerate(spec.steps):
        number = index + 1
        sent = emails.get(number)
        variants = [sent["variant"] or "A"] if sent else ["A", *(v.name for v in step.variants)]
        message_id = (sent or {}).get("message_id") or f"<preview.{lead['id']}.{number}@{domain}>"
        when = (
            f"{sent['status'].lower()} {_when(sent['sent_at'] or sent['queued_at'])}"
            if sent
            else f"{step.delay_days:g} day(s) after the step before"
            if index
            else "first email"
        )
        for variant in variants:
            preview: dict[str, Any] = {"step": number, "variant": variant, "when": when, "headers": {}}
            preview |= {"text": "", "html": None, "problem": None}
            try:
                rendered = render_step(
                    spec, index, variant, fields, {"unsubscribe_url": link, "sender_address": mailbox}
                )
                subject = rendered.subject
                if number == 1 and not first_subject:
                    first_subject = subject
                if number > 1 and not subject.strip():
                    subject = follow_up_subject(first_subject)
                email = build_message(
                    from_address=mailbox,
                    from_name=box.display_name,
                    to_address=lead["email"],
                    to_name=" ".join(p for p in (lead["first_name"], lead["last_name"]) if p) or None,
                    subject=subject,
                    text=rendered.text,
                    html=rendered.html,
                    message_id=message_id,
                    in_reply_to=thread[-1] if thread else None,
                    references=tuple(thread),
                    list_unsubscribe_url=link,
                    list_unsubscribe_mailto=f"mailto:{mailbox}?subject=unsubscribe%20PREVIEW-TOKEN",
                    date=now,
                )
            except (TemplateProblemError, ValueError) as exc:
                preview["problem"] = " ".join(str(exc).split())
            else:
                preview["headers"] = {
                    name: " ".join(str(email[name]).split())
                    for name in ("From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "List-Unsubscribe")
                    if email[name] is not None
                }
                preview["text"], preview["html"] = rendered.text, rendered.html
            previews.append(preview)
        thread.append(message_id)
    return previews


def register_campaign(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`campaign preview` and `campaign archive` (added by `cli.cam` to its `campaign` command)."""
    p = csub.add_parser(
        "preview",
        help="show every step's email as one lead would get it (nothing is sent)",
        description="Render every step of a stored campaign for one of its leads, as the sender renders it: "
        "headers and text. A step already planned or sent shows its own variant and Message-ID; a step to come "
        "shows each of its variants. The unsubscribe token is a placeholder. Sends nothing; exits 1 when a step "
        "cannot be rendered for the lead.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--lead", required=True, metavar="ADDRESS", help="the lead's address")
    p.add_argument("--json", action="store_true", help="print one JSON object per email")
    p.set_defaults(func=cmd_campaign_preview)
    p = csub.add_parser(
        "archive",
        help="stop a campaign for good (its history is kept)",
        description="Archive a campaign: it is paused with the reason 'archived' (and cannot be resumed), its "
        "active and paused leads are stopped, its queued emails cancelled. Everything stays in the database for "
        "its history. Asks first on a terminal, unless --yes.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_campaign_archive)


# -- transport ---------------------------------------------------------------------------------------------


def _transport_profile(settings: Settings, name: str) -> TransportProfile:
    profile = settings.transports.get(name)
    if profile is None:
        known = ", ".join(sorted(settings.transports)) or "none"
        raise UserError(f"no transport {name!r} in AICMO_TRANSPORTS (defined: {known})")
    return profile


def cmd_transport_test(args: argparse.Namespace) -> int:
    import anyio

    from aicmo_actors.cli.main import load_settings

    profile = _transport_profile(load_settings(), args.name)
    if profile.kind != "smtp":
        print(f"transport {args.name!r} writes each email to the Maildir folder {profile.path}: nothing to connect to")
        return 0
    for line in anyio.run(probe_smtp, profile):
        print(line)
    return 0


async def probe_smtp(profile: TransportProfile) -> list[str]:
    """Connect, read the banner, EHLO, STARTTLS and AUTH as the profile says; what the server
    offered and said, one line each (never the password). A refusal or an unreachable server
    is a `UserError` that says where it stopped."""
    import aiosmtplib

    where = f"{profile.host}:{profile.port}"
    lines: list[str] = []
    client = aiosmtplib.SMTP(
        hostname=profile.host,
        port=profile.port,
        timeout=profile.timeout_s,
        use_tls=profile.tls == "implicit",
        start_tls=False,
        validate_certs=profile.validate_certs,
        cert_bundle=str(profile.ca_file) if profile.ca_file else None,
        local_hostname=profile.helo_name,
    )
    stage = "connect"
    try:
        greeting = await client.connect()
        lines.append(f"connected to {where} ({'TLS from the start' if profile.tls == 'implicit' else 'in the clear'})")
        lines.append(f"banner: {greeting.code} {_one_line(greeting.message)}")
        stage = "EHLO"
        await client.ehlo()
        lines.append(f"EHLO {client.local_hostname}: {_extensions(client)}")
        if profile.tls == "starttls":
            stage = "STARTTLS"
            if not client.supports_extension("starttls"):
                raise UserError(f"{where} does not offer STARTTLS, and transport tls is starttls")
            await client.starttls()
            ssl_object = client.transport.get_extra_info("ssl_object") if client.transport else None
            version = ssl_object.version() if ssl_object is not None else "?"
            cipher = ssl_object.cipher()[0] if ssl_object is not None and ssl_object.cipher() else "?"
            lines.append(f"STARTTLS: {version}, {cipher}")
            stage = "EHLO"
            await client.ehlo()
            lines.append(f"EHLO again: {_extensions(client)}")
        if profile.username is None:
            lines.append("AUTH: not configured (no username): none tried")
        else:
            stage = "AUTH"
            if not client.supports_extension("auth"):
                raise UserError(f"{where} offers no AUTH (transport user {profile.username!r} needs it)")
            password = profile.password.get_secret_value() if profile.password else ""
            reply = await client.login(profile.username, password)
            lines.append(f"AUTH as {profile.username}: accepted ({reply.code} {_one_line(reply.message)})")
        stage = "QUIT"
        await client.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise UserError(f"{where} refused AUTH as {profile.username!r}: {exc.code} {_one_line(exc.message)}") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise UserError(f"{where} refused at {stage}: {exc.code} {_one_line(exc.message)}") from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise UserError(f"cannot talk to {where} (at {stage}): {_one_line(exc) or type(exc).__name__}") from None
    finally:
        if client.is_connected:
            client.close()
    return lines


def _one_line(text: object) -> str:
    return _printable(" ".join(str(text).split()), 300)


def _extensions(client: Any) -> str:
    offered = [f"{name.upper()} {value}".strip() for name, value in client.esmtp_extensions.items()]
    return ", ".join(offered) or "no extensions"


def cmd_transport_send_test(args: argparse.Namespace) -> int:
    import anyio

    from aicmo_actors.cam.lead_import import normalise_address
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.gateways.mail_message import build_message
    from aicmo_actors.gateways.profiles import make_transport

    settings = load_settings()
    profile = _transport_profile(settings, args.name)
    sender = args.sender or (profile.username if profile.username and "@" in profile.username else None)
    sender = sender or settings.alert_from
    if not sender:
        raise UserError("give --from ADDRESS: the transport has no user name that is an address")
    try:
        to = normalise_address(args.to, allow_test_domains=settings.allow_test_domains)
        sender = normalise_address(sender, allow_test_domains=settings.allow_test_domains)
    except ValueError as exc:
        raise UserError(f"not an email address: {exc}") from None
    now = _now()
    message = build_message(
        from_address=sender,
        from_name="AICMO transport test",
        to_address=to,
        subject=f"AICMO transport test ({args.name})",
        text=f"A test email sent by `python run.py transport send-test {args.name}` at {now:%Y-%m-%d %H:%M:%S} UTC.\n",
        message_id=f"<transport-test.{now:%Y%m%d%H%M%S%f}@{sender.rpartition('@')[2]}>",
        date=now,
    )

    async def send() -> Any:
        transport = make_transport(profile, sender)
        try:
            return await transport.send(message, mail_from=sender, rcpt_to=[to])
        finally:
            await transport.close()

    with _logs_on_stderr(settings):
        result = anyio.run(send)
    answer = f"{result.smtp_code or ''} {_one_line(result.smtp_text)}".strip() or "no answer"
    if result.outcome != "accepted":
        raise UserError(f"not sent ({result.outcome} at {result.stage}): {answer}")
    if profile.kind == "smtp":
        print(f"sent to {to} from {sender} through {profile.host}:{profile.port}: the server said {answer}")
    else:
        print(f"written to the Maildir folder {profile.path} (transport {args.name!r} is not SMTP)")
    return 0


@contextmanager
def _logs_on_stderr(settings: Settings) -> Iterator[None]:
    """While a transport sends: its own log lines (info: "smtp connected") go to stderr, from a
    warning on unless AICMO_LOG_LEVEL asks for more (as in `demo`), since stdout is the answer.
    The logging set-up before is put back afterwards."""
    import logging
    import os

    import structlog

    level = settings.log_level if "AICMO_LOG_LEVEL" in os.environ else "warning"
    before = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    try:
        yield
    finally:
        structlog.configure(**before)


# -- stats -------------------------------------------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    days = _run_with_store(lambda store: store.metrics.daily(args.campaign))
    if args.json:
        for day in days:
            print(json.dumps(day, ensure_ascii=False))
        return 0
    if not days:
        print(f"campaign {args.campaign!r} has no figures yet")
        return 0
    print(f"campaign {args.campaign}, per day in {days[0]['timezone']}:")
    rows = [
        d
        | {
            "bounces": f"{d['hard_bounces']}/{d['soft_bounces']}",
            "inbound": ", ".join(f"{k} {v}" for k, v in sorted(d["replies"].items())) or "-",
        }
        for d in days
    ]
    columns = [
        ("day", "day"),
        ("sent", "sent"),
        ("human replies", "human_replies"),
        ("bounces hard/soft", "bounces"),
        ("complaints", "complaints"),
        ("inbound by category", "inbound"),
    ]
    _table(rows, columns, right=frozenset({"sent", "human_replies", "bounces", "complaints"}))
    return 0


# -- the commands ------------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `replies`, `alerts`, `suppressions`, `transport` and `stats`."""
    from contracts.cam import ReplyCategory

    categories = ", ".join(c.value for c in ReplyCategory)
    replies = sub.add_parser("replies", help="list inbound mail, relabel a reply by hand")
    rsub = replies.add_subparsers(dest="replies_command", metavar="ACTION", required=True)
    p = rsub.add_parser(
        "list",
        help="inbound messages with their category, lead and campaign",
        description="Every inbound message by id (bounces and reports too), a page at a time, with how it was "
        f"read. --category is one of: {categories}.",
    )
    p.add_argument("--category", metavar="CATEGORY", type=_category, help="only this category")
    p.add_argument("--campaign", metavar="NAME", help="only messages tied to this campaign's leads")
    handled = p.add_mutually_exclusive_group()
    handled.add_argument(
        "--handled", dest="handled", action="store_const", const=True, help="only messages acted on already"
    )
    handled.add_argument(
        "--unhandled", dest="handled", action="store_const", const=False, help="only messages not acted on yet"
    )
    _add_paging(p)
    p.set_defaults(func=cmd_replies_list, handled=None)
    p = rsub.add_parser(
        "relabel",
        help="label a reply by hand: its lead moves as if the classifier had read it so",
        description="Give an inbound message another category, as a person read it. Its lead moves as the "
        "classifier's label would have moved it (interested: replied and an alert; unsubscribe: suppressed; ...), "
        "on top of what the first label did (nothing is undone: a suppression stays, a replied lead does not go "
        "back to active). A message tied to its lead only by a guess changes no lead. The classifier's evidence "
        f"is kept, with a line saying who changed it. CATEGORY is one of: {categories}.",
    )
    p.add_argument("inbound_id", type=_record_id, metavar="INBOUND_ID")
    p.add_argument("category", type=_category, metavar="CATEGORY")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_replies_relabel)

    alerts = sub.add_parser("alerts", help="list alerts, retry a failed one")
    asub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    p = asub.add_parser(
        "list",
        help="alerts with their delivery state",
        description="Alerts by id, a page at a time; --state is pending, delivered or failed.",
    )
    p.add_argument("--state", metavar="STATE", help="only alerts in this state")
    _add_paging(p)
    p.set_defaults(func=cmd_alerts_list)
    p = asub.add_parser(
        "retry",
        help="make a failed alert pending again",
        description="A failed alert (given up, or refused for good) becomes pending again, its attempts counted "
        "from zero. The service delivers pending alerts when it starts.",
    )
    p.add_argument("alert_id", type=_record_id, metavar="ALERT_ID")
    p.set_defaults(func=cmd_alerts_retry)

    suppressions = sub.add_parser("suppressions", help="list suppressed addresses, remove one")
    ssub = suppressions.add_subparsers(dest="suppressions_command", metavar="ACTION", required=True)
    p = ssub.add_parser("list", help="suppressed addresses with why and since when")
    _add_paging(p)
    p.set_defaults(func=cmd_suppressions_list)
    p = ssub.add_parser(
        "remove",
        help="take an address off the suppression list",
        description="The address may be imported and written to again; leads the suppression stopped stay "
        "stopped. Asks first on a terminal, unless --yes. (`python run.py suppress ADDRESS` adds one.)",
    )
    p.add_argument("address", metavar="ADDRESS")
    p.add_argument(
        "--reason", required=True, metavar="TEXT", help="why the address may be written to again (kept in the audit)"
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_suppressions_remove)

    transport = sub.add_parser("transport", help="test a sending transport of AICMO_TRANSPORTS")
    tsub = transport.add_subparsers(dest="transport_command", metavar="ACTION", required=True)
    p = tsub.add_parser(
        "test",
        help="connect, EHLO, STARTTLS and AUTH as configured; print what the server offered",
        description="Connect to the SMTP server of transport NAME, print its banner and EHLO extensions, "
        "STARTTLS and AUTH as the profile says (the password is never printed), and quit. Sends nothing. "
        "A refusal or an unreachable server is one line and exit code 2.",
    )
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_transport_test)
    p = tsub.add_parser(
        "send-test",
        help="send one plain test email through a transport and print the server's answer",
        description="Send one short plain-text email through transport NAME to --to and print what the server "
        "answered. A refusal is one line and exit code 2.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--to", required=True, metavar="ADDRESS", help="the recipient")
    p.add_argument(
        "--from",
        dest="sender",
        metavar="ADDRESS",
        help="the sender (default: the transport's user name when it is an address, else AICMO_ALERT_FROM)",
    )
    p.set_defaults(func=cmd_transport_send_test)

    p = sub.add_parser(
        "stats",
        help="a campaign's figures per day",
        description="Per day, in the campaign's timezone: emails sent (accepted by the receiving server), human "
        "replies, hard and soft bounces, complaints, and the inbound mail tied to the campaign's emails by category.",
    )
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("--by", choices=["day"], default="day", help="the period (day, the only one so far)")
    p.add_argument("--json", action="store_true", help="print one JSON object per day")
    p.set_defaults(func=cmd_stats)
