"""Campaigns: the list, one campaign (funnel, steps, mailboxes, pause and resume), a campaign
file uploaded and checked as `campaign check` checks it (each problem shown at its line of
the file), one lead's emails previewed, and leads imported from CSV with the import's report.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.api.control_routes import audit_line
from aicmo_actors.cam.campaign import CampaignFileError, CampaignSpec, parse_campaign
from aicmo_actors.cam.lead_import import LeadFileEmpty, LeadFileError, LeadImportResult, parse_leads_text, shown
from aicmo_actors.cam.repos.campaigns import CampaignRow, is_archived
from aicmo_actors.cam.templates import TemplateProblem
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal
from aicmo_actors.webapp.web import Web, page

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: The largest campaign file taken (the API's limit for a TOML body too).
MAX_CAMPAIGN_BYTES = 1_000_000
#: The largest leads file taken.
MAX_LEADS_BYTES = 20_000_000
#: Room around a file in a form (the other fields, the multipart boundaries): a file just
#: over its limit still gets the message naming it; a far larger body is refused unread.
FORM_SLACK = 2_000_000
#: Rejected rows listed in an import's report; the rest are counted.
SHOWN_REJECTED = 500
#: Leads offered in the preview's picker.
PICKER_LEADS = 20


# -- where a problem of a campaign file is ------------------------------------------------------------


@dataclass(frozen=True)
class KeyAt:
    """Where a key (or a table) of a TOML file is: its line, and the lines its value spans."""

    line: int
    first: int
    last: int
    multiline: bool = False


_BARE_OR_QUOTED = r"""(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')"""
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_TABLE = re.compile(rf"^\s*\[(\[)?\s*({_DOTTED})\s*\](\])?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=\s*(.*)$")
_PART = re.compile(r"\[\d+\]|[^.\[\]]+")
_TOML_LINE = re.compile(r"at line (\d+)")
_TEMPLATE_LINE = re.compile(r"(?:syntax error )?on line (\d+)")
_MISSING = re.compile(r"missing variable '([^']+)'")
_TRANSPORT = re.compile(r"^mailboxes: (\S+) uses transport")


def _segments(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(_BARE_OR_QUOTED, dotted)]


def key_lines(text: str) -> dict[str, KeyAt]:
    """Each key and table of a TOML text by its path as the campaign's errors name it
    (`name`, `limits.daily_cap`, `steps[1]`, `steps[0].variants[0].subject`), with its line.

    A reading good enough to point at a line, not a TOML parser: the text is valid TOML or
    the parser's own error gave the line already; keys inside multi-line arrays and inline
    tables point at their array's key."""
    where: dict[str, KeyAt] = {}
    arrays: dict[str, int] = {}  # array of tables -> how many so far
    table = ""
    closing: str | None = None  # the delimiter of the multi-line string being read
    opened: tuple[str, int, int] | None = None  # (its key's path, the key's line, its first line)
    for number, line in enumerate(text.split("\n"), 1):
        if closing is not None:
            if closing in line:
                closing = None
                if opened is not None:
                    path, at, first = opened
                    where.setdefault(path, KeyAt(at, first, number, multiline=True))
                    opened = None
            continue
        found = _TABLE.match(line)
        if found and bool(found[1]) == bool(found[3]):
            parts = _segments(found[2])
            parent = ""
            for part in parts[:-1]:
                parent = f"{parent}.{part}" if parent else part
                if parent in arrays:
                    parent = f"{parent}[{arrays[parent] - 1}]"
            path = f"{parent}.{parts[-1]}" if parent else parts[-1]
            if found[1]:
                arrays[path] = arrays.get(path, 0) + 1
                path = f"{path}[{arrays[path] - 1}]"
            table = path
            where.setdefault(path, KeyAt(number, number, number))
            continue
        found = _KEY.match(line)
        if not found:
            continue
        path = ".".join([table, *_segments(found[1])] if table else _segments(found[1]))
        value = found[2].lstrip()
        quote = value[:3] if value[:3] in ('"""', "'''") else None
        if quote is not None and quote not in value[3:]:
            closing = quote
            rest = value[3:].strip()
            # A newline right after the opening quotes is not part of the string.
            opened = (path, number, number + 1 if rest in ("", "\\") else number)
            continue
        where.setdefault(path, KeyAt(number, number, number))
    if opened is not None:  # never closed: the parser said so already
        path, at, first = opened
        where.setdefault(path, KeyAt(at, first, number, multiline=True))
    return where


def locate(where: dict[str, KeyAt], path: str) -> KeyAt | None:
    """The key at `path`, or the nearest one above it that is in the file (a missing key: its table)."""
    parts = _PART.findall(path)
    while parts:
        key = "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(parts))
        if key in where:
            return where[key]
        parts.pop()
    return None


@dataclass
class Located:
    """A problem of a campaign file and the line of the file it concerns (None: the whole file)."""

    line: int | None
    message: str


def file_error_at(message: str, source: str, text: str, where: dict[str, KeyAt]) -> Located:
    """A `CampaignFileError` ("SOURCE: steps[1].body: is required", "SOURCE: not valid TOML:
    ... (at line 12, column 17)") with its line."""
    said = message.removeprefix(f"{source}: ")
    if said.startswith("not valid TOML:"):
        found = _TOML_LINE.search(said)
        line = int(found[1]) if found else max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        return Located(line, said)
    path = said.split(": ", 1)[0]
    key = locate(where, path) if " " not in path else None
    return Located(key.line if key else None, said)


def _template_source(spec: CampaignSpec, problem: TemplateProblem) -> tuple[str, str | None]:
    """The path of the key that holds the template a problem is in, and the template."""
    index = problem.step - 1
    step = spec.steps[index]
    own = {"subject": step.subject, "body": step.body, "html": step.html}
    if problem.variant != "A":
        for number, variant in enumerate(step.variants):
            mine = {"subject": variant.subject, "body": variant.body, "html": variant.html}.get(problem.part)
            if variant.name == problem.variant and mine is not None:
                return f"steps[{index}].variants[{number}].{problem.part}", mine
    return f"steps[{index}].{problem.part}", own.get(problem.part)


def problem_at(problem: str | TemplateProblem, spec: CampaignSpec, where: dict[str, KeyAt]) -> Located:
    """A problem of `campaign_problems` with its line: a template's at the line of the template
    it concerns (a syntax error at its own line inside a multi-line string, a missing variable
    where it is used first); a setting's at the key it is about, when it names one."""
    if isinstance(problem, str):
        path = None
        transport = _TRANSPORT.match(problem)
        if transport:
            address = transport[1].lower()
            number = next((i for i, m in enumerate(spec.mailboxes) if m.address.lower() == address), None)
            path = f"mailboxes[{number}].transport" if number is not None else "mailboxes"
        elif problem.startswith("limits.daily_cap"):
            path = "limits.daily_cap"
        key = locate(where, path) if path else None
        return Located(key.line if key else None, problem)
    path, source = _template_source(spec, problem)
    key = locate(where, path)
    if key is None:
        return Located(None, str(problem))
    line = key.line
    inside: int | None = None
    found = _TEMPLATE_LINE.search(problem.message)
    if found:
        inside = int(found[1])
    else:
        missing = _MISSING.search(problem.message)
        if missing and source is not None:
            name = re.compile(rf"\b{re.escape(missing[1])}\b")
            inside = next((i for i, text in enumerate(source.split("\n"), 1) if name.search(text)), None)
    if inside is not None and key.multiline and key.first + inside - 1 <= key.last:
        line = key.first + inside - 1
    return Located(line, str(problem))


@dataclass
class Listing:
    """A campaign file as shown: each line with the problems found at it, and those of no line."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    general: list[str] = field(default_factory=list)


def listing(text: str, problems: list[Located]) -> Listing:
    at: dict[int, list[str]] = {}
    out = Listing()
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    for problem in problems:
        if problem.line is None or not 1 <= problem.line <= max(1, len(rows)):
            out.general.append(problem.message)
        else:
            at.setdefault(problem.line, []).append(problem.message)
    out.lines = [
        {"number": n, "text": row.rstrip("\r"), "problems": at.get(n, [])} for n, row in enumerate(rows or [""], 1)
    ]
    return out


def check_campaign_text(text: str, source: str, settings: Any) -> tuple[CampaignSpec | None, list[Located]]:
    """`campaign check` on a campaign file's text: the campaign, or its problems with their lines.
    Blocking (the templates render in a child process): call it in a thread."""
    from aicmo_actors.cli.campaign_check import campaign_problems

    where = key_lines(text)
    try:
        spec = parse_campaign(text, source, allow_test_domains=settings.allow_test_domains)
    except CampaignFileError as exc:
        return None, [file_error_at(str(exc), source, text, where)]
    problems = [problem_at(p, spec, where) for p in campaign_problems(spec, settings)]
    return (None if problems else spec), problems


# -- helpers ------------------------------------------------------------------------------------------


async def _upload(form: FormData, name: str, limit: int) -> tuple[str, bytes] | str | None:
    """The file posted as `name`: (its name, its bytes); a sentence when it is too large; None
    when no file was chosen."""
    value = form.get(name)
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = await value.read(limit + 1)
    filename = shown(value.filename.replace("\\", "/").rsplit("/", 1)[-1])[:200]
    if len(data) > limit or (value.size is not None and value.size > limit):
        return f"{filename} is larger than {limit / 1_000_000:g} MB: split it into smaller files"
    return filename, data


def _not_found(request: Request, web: Web, name: str) -> Response:
    text = f"No campaign named {name!r}."
    return web.render(request, "error.html", 404, title="Not found", text=text)


async def _row(web: Web, name: str) -> CampaignRow | None:
    return (await web.api.cam.campaigns.all()).get(name)


# -- the list and one campaign ------------------------------------------------------------------------


@page("read")
async def campaigns(request: Request, web: Web, who: Principal) -> Response:
    cam = web.api.cam
    items = []
    for name, row in sorted((await cam.campaigns.all()).items()):
        funnel = await cam.metrics.funnel(name)
        items.append(
            {
                "name": name,
                "status": row.status,
                "paused_reason": row.paused_reason,
                "archived": is_archived(row.status, row.paused_reason),
                "leads": sum(funnel["leads"].values()),
                "sent": funnel["figures"]["sent"],
                "replies": sum(funnel["replies"].values()),
            }
        )
    return web.render(request, "campaigns.html", title="Campaigns", items=items)


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


@page("read")
async def campaign(request: Request, web: Web, who: Principal) -> Response:
    name = request.path_params["name"]
    row = await _row(web, name)
    if row is None:
        return _not_found(request, web, name)
    cam = web.api.cam
    funnel = await cam.metrics.funnel(name)
    boxes = {m["address"]: m for m in await cam.campaigns.mailboxes()}
    mailboxes = [{"spec": m, "row": boxes.get(m.address.lower(), {})} for m in row.spec.mailboxes]
    figures, leads = funnel["figures"], funnel["leads"]
    attempted = figures["attempted"]
    rates = {
        "human replies": _rate(funnel["human_replies"], attempted),
        "hard bounces": _rate(figures["hard_bounces"], attempted),
        "complaints": _rate(figures["complaints"], attempted),
        "unsubscribes": _rate(leads.get("unsubscribed", 0), attempted),
    }
    return web.render(
        request,
        "campaign.html",
        title=f"Campaign {name}",
        row=row,
        spec=row.spec,
        archived=is_archived(row.status, row.paused_reason),
        funnel=funnel,
        lead_total=sum(leads.values()),
        reply_total=sum(funnel["replies"].values()),
        rates=rates,
        mailboxes=mailboxes,
        max_leads_mb=f"{MAX_LEADS_BYTES / 1_000_000:g}",
    )


async def _set_status(request: Request, web: Web, who: Principal, status: str) -> Response:
    name = request.path_params["name"]
    row = await _row(web, name)
    if row is None:
        return _not_found(request, web, name)
    here = f"/campaigns/{name}"
    if is_archived(row.status, row.paused_reason):
        return web.done(here, problem=f"Campaign {name} is archived: it cannot be paused or resumed.")
    if row.status == status:
        return web.done(here, f"Campaign {name} is {'paused' if status == 'paused' else 'active'} already.")
    form = await request.form()
    reason = str(form.get("reason", "")).strip()[:500] or None
    why = (reason or "paused in the web app") if status == "paused" else None
    action = "campaign.pause" if status == "paused" else "campaign.resume"
    line = audit_line(web.api, who, action, name, {"reason": reason}, source="web")
    await web.api.cam.campaigns.set_status(name, status, why, web.api.now(), also=line)
    said = "paused: nothing more is sent, replies are still read" if status == "paused" else "resumed"
    return web.done(here, f"Campaign {name} {said}.")


@page("operate")
async def pause(request: Request, web: Web, who: Principal) -> Response:
    return await _set_status(request, web, who, "paused")


@page("operate")
async def resume(request: Request, web: Web, who: Principal) -> Response:
    return await _set_status(request, web, who, "active")


# -- a campaign file ----------------------------------------------------------------------------------


def _new_form(request: Request, web: Web, status: int = 200, **context: Any) -> Response:
    context.setdefault("text", "")
    context.setdefault("listing", None)
    context.setdefault("error", "")
    return web.render(
        request,
        "campaign_new.html",
        status,
        title="Upload a campaign",
        max_mb=f"{MAX_CAMPAIGN_BYTES / 1_000_000:g}",
        **context,
    )


@page("operate")
async def campaign_new(request: Request, web: Web, who: Principal) -> Response:
    return _new_form(request, web)


@page("operate", max_body=2 * MAX_CAMPAIGN_BYTES + FORM_SLACK)
async def campaign_upload(request: Request, web: Web, who: Principal) -> Response:
    form = await request.form()
    upload = await _upload(form, "file", MAX_CAMPAIGN_BYTES)
    if isinstance(upload, str):
        return _new_form(request, web, 413, error=upload)
    if upload is not None:
        source, data = upload
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _new_form(request, web, 422, error=f"{source} is not UTF-8 text: save the campaign file as UTF-8")
    else:
        source, text = "campaign.toml", str(form.get("toml", ""))
        if len(text) > MAX_CAMPAIGN_BYTES:
            return _new_form(request, web, 413, error="The text is larger than 1 MB.")
    if not text.strip():
        return _new_form(request, web, 422, error="Choose a campaign file (TOML) or paste its text.")
    settings = web.api.settings
    spec, problems = await asyncio.to_thread(check_campaign_text, text, source, settings)
    if spec is None:
        count = (
            "1 problem, shown at its line" if len(problems) == 1 else f"{len(problems)} problems, shown at their lines"
        )
        return _new_form(
            request,
            web,
            422,
            text=text,
            listing=listing(text, problems),
            error=f"{source}: {count} below; nothing was stored.",
        )
    cam, now = web.api.cam, web.api.now()
    here = f"/campaigns/{spec.name}"
    existing = await _row(web, spec.name)
    if existing is not None and existing.spec.spec_hash() == spec.spec_hash():
        return web.done(here, f"Campaign {spec.name} is already there, unchanged.")

    def audited(conn: Connection, stored: tuple[int, bool]) -> None:
        action = "campaign.create" if stored[1] else "campaign.update"
        AuditActor(who.name, "web").write(conn, action, spec.name, {"steps": len(spec.steps), "file": source}, now)

    _, created = await cam.campaigns.create_or_update(spec, now, also=audited)
    steps, boxes = len(spec.steps), len(spec.mailboxes)
    said = (
        f"Campaign {spec.name} {'created' if created else 'updated'}: {steps} step{'s' if steps != 1 else ''}, "
        f"{boxes} mailbox{'es' if boxes != 1 else ''}."
    )
    return web.done(here, said + (" Next: import its leads." if created else ""))


# -- preview ------------------------------------------------------------------------------------------


@page("read")
async def preview(request: Request, web: Web, who: Principal) -> Response:
    from aicmo_actors.cli.records import preview_emails

    name = request.path_params["name"]
    row = await _row(web, name)
    if row is None:
        return _not_found(request, web, name)
    cam = web.api.cam
    address = request.query_params.get("lead", "").strip()[:320]
    suggestions = [lead["email"] for lead in await cam.leads.page(campaign=name, limit=PICKER_LEADS)]
    previews: list[dict[str, Any]] = []
    problem = ""
    lead: dict[str, Any] | None = None
    status = 200
    if address:
        for lead_id in await cam.leads.lead_ids(address):
            history = await cam.leads.history(lead_id)
            if history is not None and history["lead"]["campaign"] == name:
                lead = history["lead"]
                previews = await asyncio.to_thread(
                    preview_emails, row.spec, history, web.api.settings.public_url, web.api.now()
                )
                break
        if lead is None:
            problem, status = f"No lead {address!r} in campaign {name}.", 404
    return web.render(
        request,
        "campaign_preview.html",
        status,
        title=f"Preview: {name}",
        name=name,
        address=address,
        lead=lead,
        previews=previews,
        suggestions=suggestions,
        not_found=problem,
    )


# -- importing leads ----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What `leads import` prints, for a page: counts per outcome and the rejected rows."""

    filename: str
    result: LeadImportResult | None = None
    new: int = 0
    existing: int = 0
    suppressed: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)


def parse_leads_upload(filename: str, data: bytes, allow_test_domains: bool) -> LeadImportResult:
    """`parse_leads_csv` on the bytes of an upload; `LeadFileError` naming the file."""
    from aicmo_actors.cam.lead_import import _decode

    try:
        text, encoding = _decode(data)
        result = parse_leads_text(text, allow_test_domains=allow_test_domains)
    except LeadFileError as exc:
        raise type(exc)(f"{filename}: {exc}") from None
    result.encoding = encoding
    return result


def _import_form(request: Request, web: Web, name: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("report", None)
    context.setdefault("error", "")
    return web.render(
        request,
        "campaign_import.html",
        status,
        title=f"Import leads: {name}",
        name=name,
        max_mb=f"{MAX_LEADS_BYTES / 1_000_000:g}",
        shown_rejected=SHOWN_REJECTED,
        **context,
    )


@page("operate")
async def leads_form(request: Request, web: Web, who: Principal) -> Response:
    name = request.path_params["name"]
    if await _row(web, name) is None:
        return _not_found(request, web, name)
    return _import_form(request, web, name)


@page("operate", max_body=MAX_LEADS_BYTES + FORM_SLACK)
async def leads_import(request: Request, web: Web, who: Principal) -> Response:
    name = request.path_params["name"]
    row = await _row(web, name)
    if row is None:
        return _not_found(request, web, name)
    if is_archived(row.status, row.paused_reason):
        return _import_form(request, web, name, 409, error=f"Campaign {name} is archived: nothing is imported into it.")
    upload = await _upload(await request.form(), "file", MAX_LEADS_BYTES)
    if upload is None:
        return _import_form(request, web, name, 422, error="Choose a CSV file of leads.")
    if isinstance(upload, str):
        return _import_form(request, web, name, 413, error=upload + "; nothing was imported.")
    filename, data = upload
    settings = web.api.settings
    try:
        result = await asyncio.to_thread(parse_leads_upload, filename, data, settings.allow_test_domains)
    except LeadFileEmpty as exc:
        return _import_form(request, web, name, 422, error=f"{exc}: nothing imported.")
    except LeadFileError as exc:
        return _import_form(request, web, name, 422, error=f"{exc}; nothing imported.")
    report = ImportReport(filename, result)
    if result.encoding == "cp1252":
        report.notes.append(f"{filename} is not UTF-8; it was read as Windows-1252 (check names with accents).")
    if result.leads:
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
        now = web.api.now()

        def audited(conn: Connection, counts: tuple[int, int, int]) -> None:
            AuditActor(who.name, "web").write(conn, "leads.import", name, result.audit_detail(filename, counts), now)

        report.new, report.existing, report.suppressed = await web.api.cam.leads.import_rows(
            name, rows, now, also=audited
        )
    else:
        why = "every row was rejected" if result.rejected else "the file has no rows"
        report.error = f"{filename}: nothing imported: {why}."
    if result.leads and result.rejected:
        report.notes.append(
            f"Partial import: {len(result.rejected)} of {result.total_rows} rows rejected; fix them and import "
            "the file again (what is in stays as it is)."
        )
    return _import_form(request, web, name, 200 if result.leads else 422, report=report)


ROUTES = [
    Route("/campaigns", campaigns, methods=["GET"]),
    Route("/campaigns/new", campaign_new, methods=["GET"]),
    Route("/campaigns/new", campaign_upload, methods=["POST"]),
    Route("/campaigns/{name}", campaign, methods=["GET"]),
    Route("/campaigns/{name}/pause", pause, methods=["POST"]),
    Route("/campaigns/{name}/resume", resume, methods=["POST"]),
    Route("/campaigns/{name}/preview", preview, methods=["GET"]),
    Route("/campaigns/{name}/leads", leads_form, methods=["GET"]),
    Route("/campaigns/{name}/leads", leads_import, methods=["POST"]),
]
