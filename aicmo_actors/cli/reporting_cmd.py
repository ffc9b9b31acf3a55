"""The reporting commands: results reports for clients and the KPI values behind them.

- `report CLIENT --period 2027-01 [--out DIR]`: render one report now (HTML and PDF files; never sent);
- `reports [--client X]`: the reports made, newest first, and whether their email went out;
- `kpi import FILE.csv`, `kpi list [--client X]`: KPI values (all rows or none);
- `reporting schedule CLIENT [...]`: show or change a client's report schedule; `reporting clients`.

A client is named by its company, its client ref or its contact's email address.
"""

from __future__ import annotations

import argparse
import base64
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.identity_cmd import cli_actor
from aicmo_actors.cli.records import _now, _run_with_store, _table, _when


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _store(store: Any) -> Any:
    from aicmo_actors.reporting.repos import ReportingStore

    return ReportingStore(store.engine)


def _guarded(work: Any) -> Any:
    from aicmo_actors.reporting.repos import ReportingError

    async def guarded(store: Any) -> Any:
        try:
            return await work(_store(store), store)
        except ReportingError as exc:
            raise UserError(str(exc)) from None

    return guarded


# -- report ---------------------------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.reporting import render
    from aicmo_actors.reporting.periods import PeriodError, parse_label, zone

    try:
        period = parse_label(args.period)
        if args.timezone:
            zone(args.timezone)
    except PeriodError as exc:
        raise UserError(str(exc)) from None
    out = Path(args.out) if args.out else Path.cwd()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a folder")
    agency = load_settings().agency_name

    async def work(reporting: Any, _: Any) -> Any:
        found = await reporting.find(args.client)
        return await reporting.report_data(found.client_ref, period, agency=agency, timezone=args.timezone)

    data = _run_with_store(_guarded(work))
    out.mkdir(parents=True, exist_ok=True)
    base = out / render.file_name(data.company, data.period)
    html_path, pdf_path = base.with_suffix(".html"), base.with_suffix(".pdf")
    png = render.chart_png(data)
    # The file stands alone: its chart is in the page itself (a data: URL), as the email's is in
    # a part of its own.
    chart = render.ChartImage.of(f"data:image/png;base64,{base64.b64encode(png).decode()}", png) if png else None
    try:
        html_path.write_text(render.html(data, pdf_attached=False, chart=chart), encoding="utf-8")
        pdf_path.write_bytes(render.pdf(data, created=_now()))
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    print(f"{html_path}\n{pdf_path}")
    return 0


def cmd_reports(args: argparse.Namespace) -> int:
    async def work(reporting: Any, _: Any) -> Any:
        ref = (await reporting.find(args.client)).client_ref if args.client else None
        return await reporting.reports(client_ref=ref, limit=args.limit)

    rows = _run_with_store(_guarded(work))
    if args.json:
        for row in rows:
            print(json.dumps({k: _iso(v) for k, v in row.__dict__.items()}, ensure_ascii=False))
        return 0
    if not rows:
        print("No reports yet: each client's report goes out after each period, at the hour of its schedule")
        return 0
    shown = [
        {
            "company": r.company,
            "period": r.period,
            "days": f"{r.first_day} to {r.last_day}",
            "email": (r.email_status or "-").lower(),
            "when": _when(_iso(r.sent_at or r.created_at)),
            "formats": r.formats,
        }
        for r in rows
    ]
    _table(
        shown,
        [
            ("COMPANY", "company"),
            ("PERIOD", "period"),
            ("DAYS", "days"),
            ("EMAIL", "email"),
            ("WHEN", "when"),
            ("FORMATS", "formats"),
        ],
    )
    return 0


# -- kpi ------------------------------------------------------------------------------------------------------------


def cmd_kpi_import(args: argparse.Namespace) -> int:
    from aicmo_actors.reporting.rules import parse_kpi_csv

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    parsed = parse_kpi_csv(text)
    if parsed.errors:
        # The rows that could be read are checked too, so one run names every bad line.
        later = _run_with_store(
            _guarded(lambda reporting, _: reporting.import_kpis(parsed.rows, source="", now=_now(), dry_run=True))
        )
        _errors(path, sorted(parsed.errors + later, key=_line_number))
    if not parsed.rows:
        raise UserError(f"{path.name}: no rows to import")

    now = _now()
    actor = cli_actor()

    def audited(conn: Any, errors: list[str]) -> None:
        if not errors:  # a bad row: nothing imported, nothing to audit
            actor.write(conn, "kpi.import", path.name, {"rows": len(parsed.rows)}, now)

    async def work(reporting: Any, _: Any) -> list[str]:
        errors: list[str] = await reporting.import_kpis(parsed.rows, source=f"csv:{path.name}", now=now, also=audited)
        return errors

    errors = _run_with_store(_guarded(work))
    if errors:
        _errors(path, errors)
    print(
        f"{len(parsed.rows)} KPI values imported from {path.name} (announced by the running service on its next tick)"
    )
    return 0


def _line_number(error: str) -> int:
    head = error.split(":", 1)[0]
    return int(head[5:]) if head.startswith("line ") and head[5:].isdigit() else 0


def _errors(path: Path, errors: list[str]) -> None:
    import sys

    for error in errors[:-1]:
        print(f"error: {path.name} {error}", file=sys.stderr)
    bad = f"{len(errors)} bad row{'s' if len(errors) != 1 else ''}"
    raise UserError(f"{path.name} {errors[-1]} (nothing imported: {bad})", exit_code=1)


def cmd_kpi_list(args: argparse.Namespace) -> int:
    rows = _run_with_store(_guarded(lambda reporting, _: reporting.kpis(client=args.client)))
    if args.json:
        for row in rows:
            print(json.dumps({k: _iso(v) for k, v in row.__dict__.items()}, ensure_ascii=False))
        return 0
    if not rows:
        print("No KPI values yet: `kpi import FILE.csv` or POST /api/v1/kpis")
        return 0
    shown = [
        {
            "company": r.company,
            "kpi": r.kpi,
            "period": r.period,
            "value": f"{r.value:g}",
            "target": f"{'<=' if r.direction == 'down' else '>='} {r.target:g}",
            "attained": "yes" if r.attained else "no",
            "source": r.source,
        }
        for r in rows
    ]
    _table(
        shown,
        [
            ("COMPANY", "company"),
            ("KPI", "kpi"),
            ("PERIOD", "period"),
            ("VALUE", "value"),
            ("TARGET", "target"),
            ("ATTAINED", "attained"),
            ("SOURCE", "source"),
        ],
        right=frozenset({"value"}),
    )
    return 0


# -- schedule -------------------------------------------------------------------------------------------------------


def _schedule_json(s: Any) -> dict[str, Any]:
    return {
        "client_ref": s.client_ref,
        "company": s.company,
        "period": s.period,
        "hour": s.hour,
        "timezone": s.timezone,
        "formats": list(s.formats),
        "campaigns": list(s.campaigns),
        "enabled": s.enabled,
        "start": s.start.isoformat(),
        "reported_until": _iso(s.covered_until),
    }


def cmd_schedule(args: argparse.Namespace) -> int:
    campaigns: list[str] | None = None
    if args.no_campaigns:
        campaigns = []
    elif args.campaigns is not None:
        campaigns = [c for c in args.campaigns.split(",") if c.strip()]
    enabled = True if args.on else False if args.off else None
    changes = {
        "period": args.period,
        "hour": args.hour,
        "timezone": args.timezone,
        "formats": args.formats,
        "campaigns": campaigns,
        "enabled": enabled,
    }
    changed = {k: v for k, v in changes.items() if v is not None}

    now = _now()
    actor = cli_actor()

    def audited(conn: Any, schedule: Any) -> None:
        actor.write(conn, "reporting.schedule", schedule.client_ref, changed, now)

    async def work(reporting: Any, _: Any) -> Any:
        # Nothing changed (only shown): nothing to audit.
        return await reporting.set_schedule(args.client, now=now, also=audited if changed else None, **changed)

    schedule = _run_with_store(_guarded(work))
    shown = _schedule_json(schedule)
    if args.json:
        print(json.dumps(shown, ensure_ascii=False))
        return 0
    for key, value in shown.items():
        print(f"{key:15} {', '.join(value) if isinstance(value, list) else value}")
    return 0


def cmd_clients(args: argparse.Namespace) -> int:
    rows = _run_with_store(_guarded(lambda reporting, _: reporting.clients()))
    if args.json:
        for row in rows:
            print(json.dumps(_schedule_json(row), ensure_ascii=False))
        return 0
    if not rows:
        print("No clients yet: a client's reports are scheduled when its deal is signed")
        return 0
    shown = [
        {
            "company": r.company,
            "period": r.period,
            "at": f"{r.hour:02d}:00 {r.timezone}",
            "formats": ",".join(r.formats),
            "campaigns": ",".join(r.campaigns) or "-",
            "on": "on" if r.enabled else "off",
            "until": _iso(r.covered_until) or "-",
        }
        for r in rows
    ]
    _table(
        shown,
        [
            ("COMPANY", "company"),
            ("PERIOD", "period"),
            ("SENT AT", "at"),
            ("FORMATS", "formats"),
            ("FUNNEL OF", "campaigns"),
            ("STATE", "on"),
            ("REPORTED UNTIL", "until"),
        ],
    )
    return 0


def _hour(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an hour (0 to 23)") from None
    if not 0 <= value <= 23:
        raise argparse.ArgumentTypeError(f"{value} is not an hour (0 to 23)")
    return value


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


CLIENT_HELP = "the client: its company, client ref or contact email"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser(
        "report",
        help="render a client's report for a period now (HTML and PDF files; never sent)",
        description="Render the report a client gets for a period, as the scheduled one would read it today, "
        "to ./report-<client>-<period>.html and .pdf (or --out DIR). Nothing is sent or recorded.",
    )
    report.add_argument("client", metavar="CLIENT", help=CLIENT_HELP)
    report.add_argument(
        "--period",
        required=True,
        help="2027-01 (a month), 2027-W03 (an ISO week), 2027-01-15 (a day) or 2027-01-04--2027-01-17 (days)",
    )
    report.add_argument("--out", metavar="DIR", help="the folder to write to (default: the current one)")
    report.add_argument("--timezone", metavar="TZ", help="the calendar of the period (default: the client's schedule)")
    report.set_defaults(func=cmd_report)

    reports = sub.add_parser(
        "reports",
        help="the reports made for clients, newest first",
        description="Every report made for a client: its period and days, its email's state (queued, sent, "
        "unconfirmed) and when, and its formats. The web app (/app/reports) opens each one as the client "
        "received it; `report CLIENT --period P` renders one again.",
    )
    reports.add_argument("--client", metavar="CLIENT", help=CLIENT_HELP)
    reports.add_argument("--limit", type=_limit, default=200, help="at most this many (default 200)")
    reports.add_argument("--json", action="store_true", help="one JSON object per line")
    reports.set_defaults(func=cmd_reports)

    kpi = sub.add_parser(
        "kpi",
        help="KPI values of clients: import a CSV file, list them",
        description="A KPI value is a figure of a client's package KPI for one period, compared with its target "
        "in the KPI's direction. The running service announces each value (KpiMeasured) and reports show them.",
    )
    ksub = kpi.add_subparsers(dest="kpi_action", metavar="ACTION", required=True)
    kimport = ksub.add_parser(
        "import",
        help="import KPI values from a CSV file (every row or none)",
        description="Columns (a header line, any order): client (company, client ref or contact email), kpi "
        "(a KPI name of the client's package), period (2027-01, 2027-W03, 2027-01-15), value (a number). "
        "A value imported again for the same client, KPI and period replaces the old one. If any row is bad, "
        "each bad line is named and nothing is imported (exit 1).",
    )
    kimport.add_argument("file", metavar="FILE.csv")
    kimport.set_defaults(func=cmd_kpi_import)
    klist = ksub.add_parser("list", help="the KPI values recorded")
    klist.add_argument("--client", metavar="CLIENT", help=CLIENT_HELP)
    klist.add_argument("--json", action="store_true", help="one JSON object per line")
    klist.set_defaults(func=cmd_kpi_list)

    reporting = sub.add_parser(
        "reporting",
        help="clients' report schedules: show, change",
        description="Each client gets a report after each period (day, week, two weeks from the start, or month "
        "of its own calendar) at an hour of its timezone, as an HTML email with a PDF attached.",
    )
    rsub = reporting.add_subparsers(dest="reporting_action", metavar="ACTION", required=True)
    clients = rsub.add_parser("clients", help="every client's schedule")
    clients.add_argument("--json", action="store_true", help="one JSON object per line")
    clients.set_defaults(func=cmd_clients)
    schedule = rsub.add_parser(
        "schedule",
        help="show a client's schedule, or change it",
        description="Without options, shows the schedule. A change applies to the periods not reported yet; "
        "days a report covered already are not reported again.",
    )
    schedule.add_argument("client", metavar="CLIENT", help=CLIENT_HELP)
    schedule.add_argument("--period", choices=("day", "week", "fortnight", "month"), help="the period of a report")
    schedule.add_argument("--hour", type=_hour, help="the hour it is sent, 0-23, in its timezone")
    schedule.add_argument("--timezone", metavar="TZ", help="an IANA timezone (default: the client's)")
    schedule.add_argument("--formats", metavar="LIST", help="html, pdf or html,pdf")
    schedule.add_argument("--campaigns", metavar="LIST", help="campaigns whose CAM funnel the report shows (a,b)")
    schedule.add_argument("--no-campaigns", action="store_true", help="show no funnel")
    state = schedule.add_mutually_exclusive_group()
    state.add_argument("--on", action="store_true", help="send its reports (again)")
    state.add_argument("--off", action="store_true", help="send it no more reports")
    schedule.add_argument("--json", action="store_true", help="as one JSON object")
    schedule.set_defaults(func=cmd_schedule)
