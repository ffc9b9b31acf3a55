"""Usage: each module's health, what it counted (per module and kind, and per day) as tables
and a chart, over the last 7, 30 or 90 days or everything; the same numbers as CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.api.control_routes import modules_health
from aicmo_actors.cli.timespec import parse_since
from aicmo_actors.identity.roles import Principal
from aicmo_actors.observability.usage import GroupBy, UsageTotal, totals_csv
from aicmo_actors.webapp.charts import counts_chart, timeline
from aicmo_actors.webapp.web import Web, page

#: The periods the page offers, as `since` values (`parse_since`), and how it names them.
PERIODS = {"7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days", "all": "everything"}
DEFAULT_PERIOD = "all"
#: The CSV's lines: one per module, kind and day (as `python run.py usage --by module,kind,day --csv`).
PER_DAY: tuple[GroupBy, ...] = ("module", "kind", "day")


def since_of(period: str, now: datetime) -> datetime | None:
    return None if period == "all" else parse_since(period, now)


def series_name(total: UsageTotal) -> str:
    return f"{total.group['module']} {total.group['kind']}"


def per_day_table(totals: Sequence[UsageTotal]) -> tuple[list[str], list[dict[str, Any]]]:
    """Totals by module, kind and day as a table: its columns (one per module and kind) and
    its rows, newest day first, {"day", "values": {column: quantity}}. Pure."""
    columns = sorted({series_name(t) for t in totals})
    days: dict[str, dict[str, int]] = {}
    for t in totals:
        day = days.setdefault(str(t.group["day"]), {})
        day[series_name(t)] = day.get(series_name(t), 0) + t.quantity
    return columns, [{"day": day, "values": days[day]} for day in sorted(days, reverse=True)]


def _period(request: Request) -> str | None:
    period = request.query_params.get("since", DEFAULT_PERIOD)
    return period if period in PERIODS else None


def _unknown_period(web: Web) -> Response:
    return web.done("/usage", problem=f"Show usage over one of: {', '.join(PERIODS)}.")


@page("read")
async def usage(request: Request, web: Web, who: Principal) -> Response:
    period = _period(request)
    if period is None:
        return _unknown_period(web)
    api = web.api
    since = since_of(period, api.now())
    kinds = await api.plane.usage.totals(by=["module", "kind"], since=since)
    per_day = await api.plane.usage.totals(by=list(PER_DAY), since=since)
    columns, rows = per_day_table(per_day)
    labels, values = timeline({row["day"]: row["values"] for row in rows}, columns)
    per = "month" if labels and len(labels[0]) == len("2026-03") else "day"
    chart = counts_chart(f"Usage per {per}", labels, values, line=True)
    return web.render(
        request,
        "usage.html",
        title="Usage",
        health=await modules_health(api),
        periods=PERIODS,
        period=period,
        kinds=kinds,
        columns=columns,
        rows=rows,
        chart=chart,
    )


@page("read")
async def usage_csv(request: Request, web: Web, who: Principal) -> Response:
    period = _period(request)
    if period is None:
        return _unknown_period(web)
    totals = await web.api.plane.usage.totals(by=list(PER_DAY), since=since_of(period, web.api.now()))
    return Response(
        totals_csv(totals, PER_DAY),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="aicmo-usage-{period}.csv"',
            "Cache-Control": "no-store",
        },
    )


ROUTES = [
    Route("/usage", usage, methods=["GET"]),
    Route("/usage.csv", usage_csv, methods=["GET"]),
]
