"""Figures and reports over CAM's tables: each campaign's sending figures (one
definition each, `Figures`), sending-side rejections per mailbox, the funnel that
`campaign status` shows, and the cycle reports of each tick.

Every figure has one definition, here; `campaign status`, the auto-pause, /metrics and the
simulation's checks all read it. The README repeats the definitions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.lead_rules import HUMAN_REPLIES, is_machine_notice
from aicmo_actors.cam.repos.campaigns import CampaignsRepo
from aicmo_actors.cam.repos.inbound import STRONG_MATCHES, WEAK_MATCHES
from aicmo_actors.cam.repos.leads import campaign_id_in
from aicmo_actors.cam.repos.records import jsonable, page_size
from aicmo_actors.cam.repos.sql import EPOCH, aware, quarter_hour
from aicmo_actors.cam.send_rules import zone
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_cycle_reports as reports_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.storage.work import run_read, run_write
from contracts.cam import SENDING_SIDE_REASONS, OutboundStatus


@dataclass(frozen=True)
class Figures:
    """A campaign's sending figures, one definition each (see the README's "Figures").

    Over the emails *attempted*, which splits into: a receiving server accepted it (`sent`,
    its 250, ever), may have it (`unconfirmed`: the connection was lost after the data), or
    refused it at send time and never accepted it (`refused`: a 5xx, or 4xx retries given
    up). Each email counts once, whatever happens to it later (a soft bounce and a second
    send of the same email do not make two).
    """

    attempted: int = 0
    sent: int = 0
    unconfirmed: int = 0
    refused: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    #: Emails with a delay notice and no final failure (yet): the server is still trying.
    delayed: int = 0

    def rate(self, part: int) -> float:
        return part / self.attempted if self.attempted else 0.0


def _figure_dimensions() -> list[Any]:
    """What an email's contribution to the `Figures` depends on; `figures_of` counts them."""
    o = outbound_t.c
    return [
        o.accepted_at.is_not(None),
        o.status == OutboundStatus.UNCONFIRMED.value,
        o.bounce,
        o.complained_at.is_not(None),
        o.delayed_at.is_not(None),
    ]


def figures_of(groups: Iterable[Sequence[Any]]) -> Figures:
    """The one definition of each figure, over emails grouped by `_figure_dimensions` (then a
    count): (accepted, unconfirmed, bounce, complained, delayed, n). Pure."""
    counts = dict.fromkeys((f.name for f in dataclasses.fields(Figures)), 0)
    for accepted, unconfirmed, bounce, complained, delayed, n in groups:
        if not (accepted or unconfirmed or bounce is not None):
            continue  # never attempted: still queued, or failed before any server saw it
        counts["attempted"] += n
        counts["sent" if accepted else "unconfirmed" if unconfirmed else "refused"] += n
        if bounce in ("hard", "soft"):
            counts[f"{bounce}_bounces"] += n
        if complained:
            counts["complaints"] += n
        if delayed and bounce is None:
            counts["delayed"] += n
    return Figures(**counts)


def figures_in(conn: Connection, campaign_id: int, since: datetime) -> Figures:
    """A campaign's `Figures` over the emails sent since `since`."""
    o = outbound_t.c
    dims = _figure_dimensions()
    query = (
        sa.select(*dims, sa.func.count())
        .where(o.campaign_id == campaign_id, o.sent_at.is_not(None), o.sent_at >= since)
        .group_by(*dims)
    )
    return figures_of((*row[:-1], int(row[-1])) for row in conn.execute(query))


def window_start(paused_at: datetime | None, resumed_at: datetime | None) -> datetime:
    """Where the auto-pause's window begins: when the campaign was last paused or resumed."""
    marks = [d for d in (aware(paused_at), aware(resumed_at)) if d is not None]
    return max(marks) if marks else EPOCH


#: What `MetricsRepo.daily` returns for each day ("replies": {category: count}).
DAY_FIELDS = ("day", "timezone", "sent", "hard_bounces", "soft_bounces", "complaints", "replies", "human_replies")


class MetricsRepo:
    def __init__(self, engine: AsyncEngine, campaigns: CampaignsRepo) -> None:
        self.engine = engine
        self.campaigns = campaigns

    async def figures(self, campaign: str | None = None, *, window: bool = True) -> dict[str, Figures]:
        """Per campaign (or the one named): its `Figures`, over the emails sent since it was
        last paused or resumed (`window`, what the auto-pause judges) or since it began."""

        def work(conn: Connection) -> dict[str, Figures]:
            query = sa.select(campaigns_t.c.id, campaigns_t.c.name, campaigns_t.c.paused_at, campaigns_t.c.resumed_at)
            if campaign is not None:
                query = query.where(campaigns_t.c.name == campaign)
            out: dict[str, Figures] = {}
            for row in conn.execute(query).all():
                since = window_start(row.paused_at, row.resumed_at) if window else EPOCH
                out[row.name] = figures_in(conn, int(row.id), since)
            return out

        return await run_read(self.engine, work)

    async def data_version(self) -> tuple[Any, ...]:
        """A cheap mark that changes when a lead changes state or mail comes or goes (the newest
        lead update, inbound and outbound ids): what the dashboard keeps its figures under.
        Not every change (an email's later outcome, a reply's new label without a lead
        change): those show when the kept figures expire."""
        query = sa.select(
            sa.select(sa.func.max(leads_t.c.updated_at)).scalar_subquery(),
            sa.select(sa.func.max(inbound_t.c.id)).scalar_subquery(),
            sa.select(sa.func.max(outbound_t.c.id)).scalar_subquery(),
        )
        return await run_read(self.engine, lambda conn: tuple(conn.execute(query).one()))

    async def sending_side_rejections(self, since: datetime) -> dict[str, list[datetime]]:
        """Per sending mailbox, when its emails were refused for a problem of our sending
        (blocked, spam, policy, auth) since `since`: at send time or by a report tied to them."""
        query = (
            sa.select(outbound_t.c.mailbox, outbound_t.c.bounce_at)
            .where(
                outbound_t.c.bounce_at >= since, outbound_t.c.bounce_reason.in_([r.value for r in SENDING_SIDE_REASONS])
            )
            .order_by(outbound_t.c.bounce_at)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        out: dict[str, list[datetime]] = {}
        for mailbox, at in rows:
            out.setdefault(mailbox.lower(), []).append(aware(at) or at)
        return out

    async def funnel(self, campaign: str) -> dict[str, Any]:
        """`campaign status`: leads by state, emails by status, replies by category. Three
        scans: the leads, the emails (once for the counts by status and step, once for the
        figures since the start and since the last pause or resume), the inbound mail."""
        row = (await self.campaigns.all()).get(campaign)
        if row is None:
            raise KeyError(campaign)
        cid = row.campaign_id
        o, i = outbound_t.c, inbound_t.c
        human = {c.value for c in HUMAN_REPLIES}

        def work(conn: Connection) -> dict[str, Any]:
            state = leads_t.c.state
            leads = conn.execute(
                sa.select(state, sa.func.count()).where(leads_t.c.campaign_id == cid).group_by(state)
            ).all()
            marks = conn.execute(
                sa.select(campaigns_t.c.paused_at, campaigns_t.c.resumed_at).where(campaigns_t.c.id == cid)
            ).one()
            since = window_start(marks.paused_at, marks.resumed_at)
            # One scan of the emails, grouped by what each figure depends on.
            dims = [o.status, o.step, *_figure_dimensions(), o.sent_at.is_not(None), o.sent_at >= since]
            emails: dict[str, int] = {}
            sent_by_step: dict[int, int] = {}
            ever: list[tuple[Any, ...]] = []
            lately: list[tuple[Any, ...]] = []
            for status, step, accepted, *figure_dims, was_sent, in_window, n in conn.execute(
                sa.select(*dims, sa.func.count()).where(o.campaign_id == cid).group_by(*dims)
            ):
                emails[str(status)] = emails.get(str(status), 0) + int(n)
                if accepted:
                    sent_by_step[int(step)] = sent_by_step.get(int(step), 0) + int(n)
                if was_sent:
                    ever.append((accepted, *figure_dims, int(n)))
                    if in_window:
                        lately.append((accepted, *figure_dims, int(n)))
            figures, window = figures_of(ever), figures_of(lately)
            replies: dict[str, int] = {}
            unverified: dict[str, int] = {}
            human_replies = 0
            for matched_by, category, reason, n in conn.execute(
                sa.select(i.matched_by, i.category, i.reason, sa.func.count())
                .join(leads_t, leads_t.c.id == i.lead_id)
                .where(leads_t.c.campaign_id == cid, i.matched_by.in_(sorted(STRONG_MATCHES | WEAK_MATCHES)))
                .group_by(i.matched_by, i.category, i.reason)
            ):
                into = replies if matched_by in STRONG_MATCHES else unverified
                into[str(category)] = into.get(str(category), 0) + int(n)
                # Written by a person (machine notices such as read receipts left out): the
                # numerator of the reply rate.
                if matched_by in STRONG_MATCHES and category in human and not is_machine_notice(category, reason):
                    human_replies += int(n)
            alerts = conn.execute(
                sa.select(alerts_t.c.state, sa.func.count())
                .where(alerts_t.c.campaign == campaign)
                .group_by(alerts_t.c.state)
            ).all()
            return {
                "figures": dataclasses.asdict(figures),
                "since_resumed": dataclasses.asdict(window),
                "leads": {str(k): int(v) for k, v in leads},
                "emails": emails,
                "sent_by_step": sent_by_step,
                "replies": replies,
                "unverified": unverified,
                "human_replies": human_replies,
                "alerts": {str(k): int(v) for k, v in alerts},
            }

        found = await run_read(self.engine, work)
        return {"campaign": campaign, "status": row.status, "paused_reason": row.paused_reason, **found}

    async def bounces_by_reason(self, campaign: str) -> list[dict[str, Any]]:
        """A campaign's bounces by kind and reason, over the emails attempted (as `Figures`
        counts its hard and soft bounces: the hard ones sum to its `hard_bounces`):
        [{"kind", "reason", "count"}], the commonest first within each kind."""
        o = outbound_t.c

        def work(conn: Connection) -> list[dict[str, Any]]:
            query = (
                sa.select(o.bounce, o.bounce_reason, sa.func.count())
                .where(o.campaign_id == campaign_id_in(conn, campaign), o.sent_at.is_not(None), o.bounce.is_not(None))
                .group_by(o.bounce, o.bounce_reason)
                .order_by(o.bounce, sa.func.count().desc(), o.bounce_reason)
            )
            return [{"kind": kind, "reason": reason or "-", "count": int(n)} for kind, reason, n in conn.execute(query)]

        return await run_read(self.engine, work)

    async def daily(self, campaign: str) -> list[dict[str, Any]]:
        """A campaign's figures per day, in its own timezone (the one its daily caps count in),
        oldest first; a day with nothing is left out. Each day is `DAY_FIELDS`: emails sent (a
        server's 250, by when it came), hard and soft bounces and complaints (by when they were
        known), and the inbound mail tied to its emails (`STRONG_MATCHES`) by category, with the
        human replies among them (machine notices left out), by when it was received. An unknown
        campaign is a `RecordError`."""

        def work(conn: Connection) -> list[dict[str, Any]]:
            cid = campaign_id_in(conn, campaign)
            spec_hash = conn.execute(sa.select(campaigns_t.c.spec_hash).where(campaigns_t.c.id == cid)).scalar_one()
            tz_name = self.campaigns.specs.by_name(conn, campaign, spec_hash).timezone
            tz = zone(tz_name, "UTC")
            days: dict[str, dict[str, Any]] = {}
            # The database counts per quarter hour (a campaign's tens of thousands of rows fall
            # in a few thousand of them); each quarter hour lies in one local day.
            dialect = conn.dialect.name
            day_of: dict[int, str] = {}

            def add(quarter: int | None, figure: str, n: int, category: str | None = None) -> None:
                if quarter is None:
                    return
                day = day_of.get(quarter)
                if day is None:
                    day = day_of[quarter] = datetime.fromtimestamp(quarter * 900, UTC).astimezone(tz).date().isoformat()
                row = days.setdefault(
                    day,
                    {
                        "day": day,
                        "timezone": tz_name,
                        "sent": 0,
                        "hard_bounces": 0,
                        "soft_bounces": 0,
                        "complaints": 0,
                        "replies": {},
                        "human_replies": 0,
                    },
                )
                if category is None:
                    row[figure] += n
                else:
                    row["replies"][category] = row["replies"].get(category, 0) + n
                    if figure == "human_replies":
                        row["human_replies"] += n

            o = outbound_t.c

            # One scan of the emails: each row counts when it was accepted, when it bounced
            # and when it drew a complaint (grouped, the rows are a few thousand).
            sent_q, bounce_q, complaint_q = (
                quarter_hour(at, dialect) for at in (o.accepted_at, o.bounce_at, o.complained_at)
            )
            bounced = sa.case((o.bounce.in_(("hard", "soft")), o.bounce), else_=None)
            emails = conn.execute(
                sa.select(sent_q, bounce_q, bounced, complaint_q, sa.func.count())
                .where(
                    o.campaign_id == cid,
                    sa.or_(o.accepted_at.is_not(None), o.bounce_at.is_not(None), o.complained_at.is_not(None)),
                )
                .group_by(sent_q, bounce_q, bounced, complaint_q)
            )
            for sent_at, bounce_at, bounce, complained_at, n in emails:
                add(sent_at, "sent", int(n))
                if bounce is not None:
                    add(bounce_at, f"{bounce}_bounces", int(n))
                add(complained_at, "complaints", int(n))
            human = {c.value for c in HUMAN_REPLIES}
            received = quarter_hour(sa.func.coalesce(inbound_t.c.received_at, inbound_t.c.stored_at), dialect)
            inbound = conn.execute(
                sa.select(received, inbound_t.c.category, inbound_t.c.reason, sa.func.count())
                .join(leads_t, leads_t.c.id == inbound_t.c.lead_id)
                .where(
                    leads_t.c.campaign_id == cid,
                    inbound_t.c.matched_by.in_(sorted(STRONG_MATCHES)),
                    inbound_t.c.category.is_not(None),
                )
                .group_by(received, inbound_t.c.category, inbound_t.c.reason)
            )
            for quarter, category, reason, n in inbound:
                is_human = category in human and not is_machine_notice(category, reason)
                add(quarter, "human_replies" if is_human else "replies", int(n), category)
            return [days[day] for day in sorted(days)]

        return await run_read(self.engine, work)

    async def cycle_reports(
        self, *, step: str | None = None, before_id: int | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """One page of cycle reports, newest first (keyset: the next page is `before_id` the
        last one's id), of one step (the actor that wrote it, e.g. "cam.scheduler") or all:
        {"id", "tick_seq", "step", "started_at", "finished_at", "duration_ms", "counts", "errors"}."""
        size = page_size(limit)
        query = sa.select(
            reports_t.c.id,
            reports_t.c.tick_seq,
            reports_t.c.worker.label("step"),
            reports_t.c.started_at,
            reports_t.c.finished_at,
            reports_t.c.duration_ms,
            reports_t.c.counts,
            reports_t.c.errors,
        )
        if step is not None:
            query = query.where(reports_t.c.worker == step)
        if before_id is not None:
            query = query.where(reports_t.c.id < before_id)
        query = query.order_by(reports_t.c.id.desc()).limit(size)
        return await run_read(self.engine, lambda conn: [jsonable(r) for r in conn.execute(query).mappings()])

    async def save_cycle_report(
        self,
        *,
        step: str,
        tick_seq: int,
        counts: dict[str, int],
        errors: Sequence[str],
        duration_ms: float,
        now: datetime,
    ) -> None:
        """Keep what one actor did on one tick (`python run.py status` and the cycle report event)."""
        statement = reports_t.insert().values(
            tick_seq=tick_seq,
            worker=step,
            started_at=now,
            finished_at=now,
            duration_ms=duration_ms,
            counts=dict(counts),
            errors=list(errors),
        )
        await run_write(self.engine, lambda conn: conn.execute(statement))
