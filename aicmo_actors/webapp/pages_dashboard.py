"""Dashboard: each campaign's funnel and the rates that drive the auto-pause (next to their
thresholds), sends and replies per day, what is paused (with a resume button for operators),
and what each step did on the last ticks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.cam.decision import PausePolicy, campaign_verdict
from aicmo_actors.cam.repos import CamStore, Figures
from aicmo_actors.cam.repos.campaigns import CampaignRow, is_archived
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.roles import Principal
from aicmo_actors.webapp.charts import counts_chart, timeline
from aicmo_actors.webapp.web import Web, page

#: How many ticks the cycle reports show, and how many report rows are read to find them.
TICKS_SHOWN = 5
_REPORT_ROWS = 100
#: The series of the daily chart.
SENT, REPLIES = "emails sent", "replies by a person"


@dataclass(frozen=True)
class Rate:
    """A rate the auto-pause judges, next to the threshold above which it pauses."""

    name: str
    part: int
    whole: int
    threshold: float
    digits: int

    @property
    def value(self) -> float:
        return self.part / self.whole if self.whole else 0.0

    @property
    def shown(self) -> str:
        return f"{self.value:.{self.digits}%}" if self.whole else "-"

    @property
    def limit(self) -> str:
        return f"{self.threshold:.{self.digits}%}"

    @property
    def over(self) -> bool:
        return self.value > self.threshold


def pause_policy(settings: Any) -> PausePolicy:
    """The auto-pause's thresholds, from the settings the service runs with (as `cam.wiring`)."""
    return PausePolicy(
        hard_bounce_rate=settings.pause_hard_bounce_rate,
        complaint_rate=settings.pause_complaint_rate,
        min_sends=settings.pause_min_sends,
    )


def pause_rates(window: Mapping[str, int], policy: PausePolicy) -> dict[str, Any]:
    """What the auto-pause sees of a campaign (its figures since it was last paused or resumed):
    the rates and thresholds, whether it is judged yet, and the verdict. Pure."""
    attempted = window["attempted"]
    return {
        "attempted": attempted,
        "min_sends": policy.min_sends,
        "judged": attempted >= policy.min_sends,
        "rates": [
            Rate("hard bounces", window["hard_bounces"], attempted, policy.hard_bounce_rate, 1),
            Rate("complaints", window["complaints"], attempted, policy.complaint_rate, 2),
        ],
        "verdict": campaign_verdict(Figures(**window), policy),
    }


def daily_series(days: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """`MetricsRepo.daily` as the chart's input: {day: {SENT: n, REPLIES: n}}. Pure."""
    return {d["day"]: {SENT: int(d["sent"]), REPLIES: int(d["human_replies"])} for d in days}


def ticks(reports: Sequence[Mapping[str, Any]], limit: int, *, complete: bool) -> list[dict[str, Any]]:
    """Cycle reports (newest first) grouped by tick, newest tick first, at most `limit` ticks;
    the steps of a tick in the order they ran. `complete` False: the oldest group may miss
    steps older than what was read, so it is left out (unless it is the only one). Pure."""
    groups: list[dict[str, Any]] = []
    for report in reports:
        if groups and groups[-1]["seq"] == report["tick_seq"]:
            groups[-1]["steps"].append(report)
        else:
            groups.append({"seq": report["tick_seq"], "steps": [report]})
    if not complete and len(groups) > 1:
        groups.pop()
    shown = groups[:limit]
    for group in shown:
        group["steps"].reverse()
        group["at"] = group["steps"][0]["started_at"]
        group["errors"] = sum(len(step["errors"] or []) for step in group["steps"])
    return shown


@dataclass
class FiguresCache:
    """Each campaign's figures (funnel, days, bounces), kept `FIGURES_TTL` seconds: they
    aggregate every email and reply of the campaign (about a quarter of a second per campaign
    of 25,000 leads on SQLite), so a dashboard opened again and again reads them once. A
    campaign paused or resumed, a lead that changed state, mail that came or went
    (`MetricsRepo.data_version`) are read again at once (they are part of the key);
    `?fresh=1` (the page's "refresh" link) reads everything again."""

    ttl: float = 30.0
    clock: Callable[[], float] = time.monotonic
    kept: dict[tuple[Any, ...], tuple[float, tuple[Any, ...]]] = field(default_factory=dict)

    async def get(
        self, key: tuple[Any, ...], read: Callable[[], Awaitable[tuple[Any, ...]]], *, fresh: bool
    ) -> tuple[float, tuple[Any, ...]]:
        """(when it was read, by `clock`; what `read` gave), read again when older than `ttl`,
        asked `fresh`, or never read under this key. The key's first item is the campaign:
        a new key forgets the campaign's older ones."""
        now = self.clock()
        found = self.kept.get(key)
        if found is not None and not fresh and now - found[0] < self.ttl:
            return found
        value = (now, await read())
        self.kept = {k: v for k, v in self.kept.items() if now - v[0] < self.ttl and k[0] != key[0]}
        self.kept[key] = value
        return value


async def _campaign(
    store: CamStore, cache: FiguresCache, row: CampaignRow, policy: PausePolicy, *, fresh: bool, version: Any
) -> dict[str, Any]:
    name = row.name

    async def read() -> tuple[Any, ...]:
        return (
            await store.metrics.funnel(name),
            await store.metrics.daily(name),
            await store.metrics.bounces_by_reason(name),
        )

    key = (name, row.status, row.paused_reason, row.paused_at, version)
    read_at, (funnel, days, bounces) = await cache.get(key, read, fresh=fresh)
    # What the campaign is now, whatever the figures' age.
    funnel = {**funnel, "status": row.status, "paused_reason": row.paused_reason}
    labels, values = timeline(daily_series(days), [SENT, REPLIES])
    leads = funnel["leads"]
    per = "month" if labels and len(labels[0]) == len("2026-03") else "day"
    return {
        "name": name,
        "funnel": funnel,
        "leads_total": sum(leads.values()),
        "inbound_total": sum(funnel["replies"].values()),
        "unsubscribes": leads.get("unsubscribed", 0),
        "bounces": bounces,
        "pause": pause_rates(funnel["since_resumed"], policy),
        "days": list(zip(labels, values[SENT], values[REPLIES], strict=True)),
        "per": per,
        "timezone": days[0]["timezone"] if days else None,
        "chart": counts_chart(f"{name}: emails sent and replies per {per}", labels, values),
        "age_s": max(0, round(cache.clock() - read_at)),
        "kept_s": round(cache.ttl),
    }


@page("read")
async def dashboard(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    store = api.cam
    policy = pause_policy(api.settings)
    rows = await store.campaigns.all()
    live = [row for row in rows.values() if not is_archived(row.status, row.paused_reason)]
    fresh = request.query_params.get("fresh") == "1"
    cache = web.kept.setdefault("dashboard_figures", FiguresCache())
    version = await store.metrics.data_version()
    campaigns = [await _campaign(store, cache, row, policy, fresh=fresh, version=version) for row in live]
    reports = await store.metrics.cycle_reports(limit=_REPORT_ROWS)
    switches = await api.plane.switches.state()
    return web.render(
        request,
        "dashboard.html",
        title="Dashboard",
        campaigns=campaigns,
        archived=[row.name for row in rows.values() if is_archived(row.status, row.paused_reason)],
        paused_campaigns=[row for row in live if row.status == "paused"],
        paused_mailboxes=[box for box in await store.campaigns.mailboxes() if box["status"] == "paused"],
        ticks=ticks(reports, TICKS_SHOWN, complete=len(reports) < _REPORT_ROWS),
        worker=switches.rows.get("worker") if switches.worker_paused else None,
    )


@page("operate")
async def resume_campaign(request: Request, web: Web, who: Principal) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    row = (await web.api.cam.campaigns.all()).get(name)
    if row is None:
        return web.done("/", problem=f"No campaign named {name!r}.")
    if is_archived(row.status, row.paused_reason):
        return web.done("/", problem=f"Campaign {name} is archived: it cannot be resumed.")
    if row.status != "paused":
        return web.done("/", f"Campaign {name} is active already.")
    now = web.api.now()
    line = AuditActor(who.name, "web").line("campaign.resume", name, {"paused_because": row.paused_reason}, now)
    await web.api.cam.campaigns.set_status(name, "active", None, now, also=line)
    return web.done("/", f"Campaign {name} resumed.")


@page("operate")
async def resume_mailbox(request: Request, web: Web, who: Principal) -> Response:
    form = await request.form()
    address = str(form.get("address", "")).strip().lower()[:320]
    box = next((b for b in await web.api.cam.campaigns.mailboxes() if b["address"] == address), None)
    if box is None:
        return web.done("/", problem=f"No sending mailbox {address!r}.")
    if box["status"] != "paused":
        return web.done("/", f"Mailbox {address} is active already.")
    now = web.api.now()
    line = AuditActor(who.name, "web").line("mailbox.resume", address, {"paused_because": box["paused_reason"]}, now)
    await web.api.cam.campaigns.resume_mailbox(address, also=line)
    return web.done("/", f"Mailbox {address} resumed.")


ROUTES = [
    Route("/", dashboard, methods=["GET"]),
    Route("/dashboard/resume-campaign", resume_campaign, methods=["POST"]),
    Route("/dashboard/resume-mailbox", resume_mailbox, methods=["POST"]),
]
