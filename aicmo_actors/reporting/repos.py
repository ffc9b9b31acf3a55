"""Reporting's repositories: one transaction per method over the module's own tables, returning
rows and plain dataclasses (never contract messages)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.reporting.periods import Period, bounds, parse_label, zone
from aicmo_actors.reporting.render import FunnelLine, KpiLine, ReportData, Reviews
from aicmo_actors.reporting.rules import (
    FORMATS,
    ItemFact,
    KnownClient,
    KpiRow,
    attained,
    deliverables,
    match_client,
    parse_formats,
)
from aicmo_actors.reporting.tables import (
    PERIOD_KINDS,
    reporting_clients,
    reporting_emails,
    reporting_funnel,
    reporting_funnel_seen,
    reporting_items,
    reporting_kpi_values,
    reporting_projects,
    reporting_reports,
    reporting_reviews,
)
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.client_mail import SENT, UNCONFIRMED, MailBook, queue_in
from aicmo_actors.storage.work import Also, run_read, run_write, with_also

_C, _P, _I, _R = reporting_clients, reporting_projects, reporting_items, reporting_reviews
_K, _F, _S, _RP, _E = reporting_kpi_values, reporting_funnel, reporting_funnel_seen, reporting_reports, reporting_emails
#: How many periods of a KPI's history a report charts.
HISTORY = 6


class ReportingError(ValueError):
    """A user's mistake (an unknown client, a bad value): one line."""


@dataclass(frozen=True)
class NewClient:
    client_ref: str
    deal_id: int
    company: str
    contact_email: str
    client: dict[str, Any]
    package: dict[str, Any]
    campaign: str
    start: date
    signed_at: datetime
    period: str
    hour: int
    timezone: str
    formats: str


@dataclass(frozen=True)
class Schedule:
    """A client's report schedule and how far its reports got."""

    client_ref: str
    company: str
    start: date
    signed_at: datetime
    period: str
    hour: int
    timezone: str
    formats: tuple[str, ...]
    campaigns: tuple[str, ...]
    enabled: bool
    contact_email: str
    #: The last day the latest report covered (None: none yet), and the labels reported.
    covered_until: date | None
    done: frozenset[str]


@dataclass(frozen=True)
class ReportRow:
    id: int
    client_ref: str
    company: str
    period: str
    first_day: date
    last_day: date
    formats: str
    email_key: str
    created_at: datetime
    published_at: datetime | None
    email_status: str | None
    sent_at: datetime | None
    project_id: str | None


@dataclass(frozen=True)
class KpiValue:
    id: int
    client_ref: str
    company: str
    kpi: str
    period: str
    value: float
    target: float
    direction: str
    attained: bool
    source: str
    recorded_at: datetime
    published_at: datetime | None


def _schedule(row: Any, covered: date | None, done: frozenset[str]) -> Schedule:
    return Schedule(
        client_ref=row.client_ref,
        company=row.company,
        start=row.start,
        signed_at=row.signed_at,
        period=row.period,
        hour=row.hour,
        timezone=row.timezone,
        formats=tuple(row.formats.split(",")),
        campaigns=tuple(row.campaigns or ()),
        enabled=bool(row.enabled),
        contact_email=row.contact_email,
        covered_until=covered,
        done=done,
    )


def _known(conn: Connection) -> list[KnownClient]:
    return [
        KnownClient(r.client_ref, r.company, r.contact_email, tuple(k["name"] for k in r.package.get("kpis", ())))
        for r in conn.execute(sa.select(_C.c.client_ref, _C.c.company, _C.c.contact_email, _C.c.package))
    ]


def _resolve(conn: Connection, written: str) -> KnownClient:
    found = match_client(written, _known(conn))
    if isinstance(found, str):
        raise ReportingError(found)
    return found


def _kpi_spec(conn: Connection, client_ref: str, kpi: str) -> dict[str, Any] | None:
    package = conn.execute(sa.select(_C.c.package).where(_C.c.client_ref == client_ref)).scalar_one()
    for spec in package.get("kpis", ()):
        if spec["name"] == kpi:
            return dict(spec)
    return None


def _put_kpi(
    conn: Connection, client_ref: str, spec: dict[str, Any], period: str, value: float, source: str, now: datetime
) -> None:
    target, direction = float(spec["target"]), spec.get("direction", "up")
    values = {
        "value": value,
        "target": target,
        "direction": direction,
        "attained": attained(value, target, direction),
        "source": source[:200],
        "recorded_at": now,
        "published_at": None,
    }
    where = (_K.c.client_ref == client_ref, _K.c.kpi == spec["name"], _K.c.period == period)
    if conn.execute(sa.select(_K.c.id).where(*where)).first() is None:
        conn.execute(_K.insert().values(client_ref=client_ref, kpi=spec["name"], period=period, **values))
    else:
        conn.execute(_K.update().where(*where).values(**values))


class ReportingStore:
    """Reporting's repositories over one engine (`mail`: the reports' outbox)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)
        self.mail = MailBook(engine, reporting_emails)

    # -- what the actor learns ------------------------------------------------------------------------------------

    async def learn_client(self, new: NewClient, now: datetime) -> bool:
        """Record a signed client (once per deal; a repeated `ClientSigned` changes nothing): True when new."""

        def work(conn: Connection) -> bool:
            if conn.execute(sa.select(_C.c.client_ref).where(_C.c.deal_id == new.deal_id)).first() is not None:
                return False
            if conn.execute(sa.select(_C.c.deal_id).where(_C.c.client_ref == new.client_ref)).first() is not None:
                return False  # the same client signed again: its first schedule stands
            conn.execute(_C.insert().values(**new.__dict__, campaigns=[], enabled=True, created_at=now, updated_at=now))
            return True

        return await run_write(self.engine, work)

    async def learn_project(self, project_id: str, deal_id: int) -> None:
        def work(conn: Connection) -> None:
            if conn.execute(sa.select(_P.c.deal_id).where(_P.c.project_id == project_id)).first() is None:
                conn.execute(_P.insert().values(project_id=project_id, deal_id=deal_id))

        await run_write(self.engine, work)

    async def record_plan(
        self, project_id: str, items: Sequence[tuple[str, str, str, str, date]], now: datetime
    ) -> None:
        """An approved plan's items (item id, key, type, channel, due): planned, with their due dates."""

        def work(conn: Connection) -> None:
            for item_id, key, type_, channel, due in items:
                found = conn.execute(sa.select(_I.c.item_id).where(_I.c.item_id == item_id)).first()
                values = {"key": key, "type": type_, "channel": channel, "due": due, "planned": True, "updated_at": now}
                if found is None:
                    conn.execute(_I.insert().values(item_id=item_id, project_id=project_id, late=False, **values))
                else:
                    conn.execute(_I.update().where(_I.c.item_id == item_id).values(**values))

        await run_write(self.engine, work)

    async def record_item(
        self,
        project_id: str,
        item_id: str,
        now: datetime,
        *,
        due: date | None = None,
        late: bool = False,
        delivered_at: datetime | None = None,
    ) -> None:
        """Production said an item is late, or delivery that it was delivered (the first delivery counts)."""

        def work(conn: Connection) -> None:
            row = conn.execute(sa.select(_I).where(_I.c.item_id == item_id)).first()
            if row is None:
                conn.execute(
                    _I.insert().values(
                        item_id=item_id,
                        project_id=project_id,
                        key=None,
                        type="unplanned",
                        channel="-",
                        due=due,
                        planned=False,
                        late=late,
                        delivered_at=delivered_at,
                        updated_at=now,
                    )
                )
                return
            values: dict[str, Any] = {}
            if late and not row.late:
                values["late"] = True
            if due is not None and row.due is None:
                values["due"] = due
            if delivered_at is not None and (row.delivered_at is None or delivered_at < row.delivered_at):
                values["delivered_at"] = delivered_at
            if values:
                conn.execute(_I.update().where(_I.c.item_id == item_id).values(updated_at=now, **values))

        await run_write(self.engine, work)

    async def record_review(self, project_id: str, item_id: str, version: int, verdict: str, at: datetime) -> None:
        def work(conn: Connection) -> None:
            where = (_R.c.item_id == item_id, _R.c.version == version)
            if conn.execute(sa.select(_R.c.item_id).where(*where)).first() is None:
                conn.execute(
                    _R.insert().values(item_id=item_id, version=version, project_id=project_id, verdict=verdict, at=at)
                )

        await run_write(self.engine, work)

    async def count(self, kind: str, ref: str, campaign: str, day: date, **counts: int) -> bool:
        """Count one CAM event in its campaign's day, once per (kind, ref): True when counted now."""

        def work(conn: Connection) -> bool:
            if conn.execute(sa.select(_S.c.kind).where(_S.c.kind == kind, _S.c.ref == ref)).first() is not None:
                return False
            conn.execute(_S.insert().values(kind=kind, ref=ref))
            where = (_F.c.campaign == campaign, _F.c.day == day)
            if conn.execute(sa.select(_F.c.day).where(*where)).first() is None:
                zero = {"sent": 0, "replies": 0, "positive": 0, "signed": 0}
                conn.execute(_F.insert().values(campaign=campaign, day=day, **{**zero, **counts}))
            else:
                conn.execute(_F.update().where(*where).values(**{k: _F.c[k] + v for k, v in counts.items()}))
            return True

        return await run_write(self.engine, work)

    # -- schedules and reports ------------------------------------------------------------------------------------

    async def schedules(self) -> list[Schedule]:
        """Every enabled client's schedule with what its reports covered."""

        def work(conn: Connection) -> list[Schedule]:
            clients = conn.execute(
                sa.select(_C).where(_C.c.enabled.is_(True)).order_by(_C.c.created_at, _C.c.client_ref)
            ).all()
            if not clients:
                return []
            covered = dict(
                conn.execute(sa.select(_RP.c.client_ref, sa.func.max(_RP.c.last_day)).group_by(_RP.c.client_ref)).all()
            )
            return [_schedule(c, covered.get(c.client_ref), frozenset()) for c in clients]

        return list(await self.kept.read("schedules", work))

    async def schedule(self, client_ref: str) -> Schedule:
        return await run_read(self.engine, lambda conn: _schedule_of(conn, client_ref))

    async def find(self, written: str) -> KnownClient:
        """The client `written` names (company, client ref or contact email); ReportingError if none."""
        return await run_read(self.engine, lambda conn: _resolve(conn, written))

    async def report_data(
        self, client_ref: str, period: Period, *, agency: str, timezone: str | None = None
    ) -> ReportData:
        """What the report of `client_ref` for `period` says, read in one transaction."""

        def work(conn: Connection) -> ReportData:
            client = conn.execute(sa.select(_C).where(_C.c.client_ref == client_ref)).one()
            tz_name = timezone or client.timezone
            tz = zone(tz_name)
            start, end = bounds(period, tz)
            projects = list(conn.execute(sa.select(_P.c.project_id).where(_P.c.deal_id == client.deal_id)).scalars())
            facts = [
                ItemFact(r.type, r.channel, r.due, bool(r.planned), bool(r.late), r.delivered_at)
                for r in conn.execute(sa.select(_I).where(_I.c.project_id.in_(projects)))
            ]
            delivered_in = sum(1 for f in facts if f.delivered_at is not None and start <= f.delivered_at < end)
            verdicts = conn.execute(
                sa.select(_R.c.item_id, _R.c.verdict).where(
                    _R.c.project_id.in_(projects), _R.c.at >= start, _R.c.at < end
                )
            ).all()
            reviews = Reviews(
                verdicts=len(verdicts),
                approved=sum(1 for v in verdicts if v.verdict == "approved"),
                changes=sum(1 for v in verdicts if v.verdict != "approved"),
                items=len({v.item_id for v in verdicts}),
            )
            values = conn.execute(sa.select(_K).where(_K.c.client_ref == client_ref)).all()
            kpis = []
            for spec in client.package.get("kpis", ()):
                mine = [v for v in values if v.kpi == spec["name"]]
                this = next((v for v in mine if v.period == period.label), None)
                history = sorted(
                    (v.period, v.value) for v in mine if _same_kind(v.period, period) and v.period <= period.label
                )[-HISTORY:]
                kpis.append(
                    KpiLine(
                        name=spec["name"],
                        unit=spec.get("unit", ""),
                        direction=spec.get("direction", "up"),
                        target=float(spec["target"]),
                        value=None if this is None else this.value,
                        attained=None
                        if this is None
                        else attained(this.value, float(spec["target"]), spec.get("direction", "up")),
                        history=tuple(history),
                    )
                )
            funnel = []
            for campaign in client.campaigns or ():
                sums = conn.execute(
                    sa.select(
                        sa.func.coalesce(sa.func.sum(_F.c.sent), 0),
                        sa.func.coalesce(sa.func.sum(_F.c.replies), 0),
                        sa.func.coalesce(sa.func.sum(_F.c.positive), 0),
                        sa.func.coalesce(sa.func.sum(_F.c.signed), 0),
                    ).where(_F.c.campaign == campaign, _F.c.day >= period.first, _F.c.day <= period.last)
                ).one()
                funnel.append(FunnelLine(campaign, *(int(s) for s in sums)))
            info = client.client
            return ReportData(
                agency=agency,
                company=client.company,
                contact_name=info.get("contact_name"),
                client_ref=client_ref,
                period=period.label,
                first=period.first,
                last=period.last,
                timezone=tz_name,
                deliverables=tuple(deliverables(facts, period.first, period.last, tz)),
                delivered_in_period=delivered_in,
                reviews=reviews,
                kpis=tuple(kpis),
                funnel=tuple(funnel),
            )

        return await run_read(self.engine, work)

    async def record_report(
        self, client_ref: str, period: Period, formats: tuple[str, ...], key: str, message: EmailMessage, now: datetime
    ) -> bool:
        """The report of `client_ref` for `period` and its queued email, in one transaction: False
        when that period was reported already (nothing is written)."""

        def work(conn: Connection) -> bool:
            where = (_RP.c.client_ref == client_ref, _RP.c.period == period.label)
            if conn.execute(sa.select(_RP.c.id).where(*where)).first() is not None:
                return False
            deal = conn.execute(sa.select(_C.c.deal_id).where(_C.c.client_ref == client_ref)).scalar_one()
            project = conn.execute(
                sa.select(_P.c.project_id).where(_P.c.deal_id == deal).order_by(_P.c.project_id).limit(1)
            ).scalar()
            conn.execute(
                _RP.insert().values(
                    client_ref=client_ref,
                    period=period.label,
                    first_day=period.first,
                    last_day=period.last,
                    formats=",".join(formats),
                    email_key=key,
                    created_at=now,
                    published_at=None,
                )
            )
            queue_in(conn, _E, key=key, project_id=project or client_ref, kind="report", message=message, now=now)
            return True

        return await run_write(self.engine, work)

    async def reports(
        self, *, client_ref: str | None = None, unpublished: bool = False, limit: int = 200
    ) -> list[ReportRow]:
        """Reports, newest first (`unpublished`: those whose email went out and `ReportSent` is still to publish)."""

        def work(conn: Connection) -> list[ReportRow]:
            query = (
                sa.select(
                    _RP,
                    _C.c.company,
                    _E.c.status.label("email_status"),
                    _E.c.sent_at,
                    _E.c.project_id.label("email_project"),
                )
                .join(_C, _C.c.client_ref == _RP.c.client_ref)
                .outerjoin(_E, _E.c.idempotency_key == _RP.c.email_key)
            )
            if client_ref is not None:
                query = query.where(_RP.c.client_ref == client_ref)
            if unpublished:
                query = query.where(_RP.c.published_at.is_(None), _E.c.status.in_((SENT, UNCONFIRMED)))
                query = query.order_by(_RP.c.id)
            else:
                query = query.order_by(_RP.c.created_at.desc(), _RP.c.id.desc())
            return [
                ReportRow(
                    id=r.id,
                    client_ref=r.client_ref,
                    company=r.company,
                    period=r.period,
                    first_day=r.first_day,
                    last_day=r.last_day,
                    formats=r.formats,
                    email_key=r.email_key,
                    created_at=r.created_at,
                    published_at=r.published_at,
                    email_status=r.email_status,
                    sent_at=r.sent_at,
                    project_id=r.email_project if r.email_project != r.client_ref else None,
                )
                for r in conn.execute(query.limit(limit))
            ]

        return await run_read(self.engine, work)

    async def report_email(self, report_id: int) -> tuple[str, str, bytes] | None:
        """A report's email as it was queued for the client (company, period, the raw message),
        or None: no such report."""
        query = (
            sa.select(_C.c.company, _RP.c.period, _E.c.raw)
            .select_from(_RP)
            .join(_C, _C.c.client_ref == _RP.c.client_ref)
            .join(_E, _E.c.idempotency_key == _RP.c.email_key)
            .where(_RP.c.id == report_id)
        )

        def work(conn: Connection) -> tuple[str, str, bytes] | None:
            row = conn.execute(query).first()
            return None if row is None else (str(row.company), str(row.period), bytes(row.raw))

        return await run_read(self.engine, work)

    async def has_unpublished(self) -> bool:
        def work(conn: Connection) -> bool:
            reports = conn.execute(sa.select(_RP.c.id).where(_RP.c.published_at.is_(None)).limit(1)).first()
            kpis = conn.execute(sa.select(_K.c.id).where(_K.c.published_at.is_(None)).limit(1)).first()
            return reports is not None or kpis is not None

        return await self.kept.read("has_unpublished", work)

    async def mark_report_published(self, report_id: int, now: datetime) -> None:
        await run_write(
            self.engine, lambda conn: conn.execute(_RP.update().where(_RP.c.id == report_id).values(published_at=now))
        )

    # -- KPIs -----------------------------------------------------------------------------------------------------

    async def import_kpis(
        self,
        rows: Sequence[KpiRow],
        *,
        source: str,
        now: datetime,
        dry_run: bool = False,
        also: Also[list[str]] | None = None,
    ) -> list[str]:
        """Record every row, or none: the errors (one line each, naming the line) when any row
        names an unknown client or a KPI its package does not have (`dry_run`: only check).
        `also`: run in the import's transaction with the errors (none: imported); never on a dry run."""

        def work(conn: Connection) -> list[str]:
            clients = _known(conn)
            errors: list[str] = []
            resolved: list[tuple[str, dict[str, Any], KpiRow]] = []
            for row in rows:
                found = match_client(row.client, clients)
                if isinstance(found, str):
                    errors.append(f"line {row.line}: {found}")
                    continue
                spec = _kpi_spec(conn, found.client_ref, row.kpi)
                if spec is None:
                    kpis = ", ".join(found.kpis) or "none"
                    errors.append(f"line {row.line}: {found.company}'s package has no KPI {row.kpi!r} (it has: {kpis})")
                    continue
                resolved.append((found.client_ref, spec, row))
            if errors or dry_run:
                return errors
            for client_ref, spec, row in resolved:
                _put_kpi(conn, client_ref, spec, row.period, row.value, source, now)
            return []

        if dry_run:
            return await run_read(self.engine, work)
        return await run_write(self.engine, with_also(work, also))

    async def record_kpi(
        self,
        client: str,
        kpi: str,
        period: str,
        value: float,
        *,
        source: str,
        now: datetime,
        also: Also[KpiValue] | None = None,
    ) -> KpiValue:
        """One KPI value (the API's POST), and `also` (its audit row) with it in its transaction;
        ReportingError for an unknown client, KPI or period."""

        def work(conn: Connection) -> KpiValue:
            found = _resolve(conn, client)
            spec = _kpi_spec(conn, found.client_ref, kpi)
            if spec is None:
                raise ReportingError(
                    f"{found.company}'s package has no KPI {kpi!r} (it has: {', '.join(found.kpis) or 'none'})"
                )
            try:
                label = parse_label(period).label
            except ValueError as exc:
                raise ReportingError(str(exc)) from None
            _put_kpi(conn, found.client_ref, spec, label, value, source, now)
            return _kpis(conn, found.client_ref, kpi=kpi, period=label)[0]

        return await run_write(self.engine, with_also(work, also))

    async def kpis(self, *, client: str | None = None, unpublished: bool = False) -> list[KpiValue]:
        def work(conn: Connection) -> list[KpiValue]:
            ref = _resolve(conn, client).client_ref if client else None
            return _kpis(conn, ref, unpublished=unpublished)

        return await run_read(self.engine, work)

    async def mark_kpi_published(self, kpi_id: int, recorded_at: datetime, now: datetime) -> None:
        """`KpiMeasured` went out for this value (unless it was recorded again meanwhile: published again)."""
        statement = _K.update().where(_K.c.id == kpi_id, _K.c.recorded_at == recorded_at).values(published_at=now)
        await run_write(self.engine, lambda conn: conn.execute(statement))

    # -- the schedule, changed by a person ------------------------------------------------------------------------

    async def set_schedule(
        self,
        client: str,
        *,
        now: datetime,
        period: str | None = None,
        hour: int | None = None,
        timezone: str | None = None,
        formats: str | None = None,
        campaigns: Sequence[str] | None = None,
        enabled: bool | None = None,
        also: Also[Schedule] | None = None,
    ) -> Schedule:
        """Change what is given of a client's schedule (nothing given: only read it): the schedule
        after, read in the change's transaction, where `also` (its audit row) runs with it."""
        values: dict[str, Any] = {}
        if period is not None:
            if period not in PERIOD_KINDS:
                raise ReportingError(f"period {period!r}: one of {', '.join(PERIOD_KINDS)}")
            values["period"] = period
        if hour is not None:
            if not 0 <= hour <= 23:
                raise ReportingError(f"hour {hour}: 0 to 23")
            values["hour"] = hour
        if timezone is not None:
            try:
                zone(timezone)
            except ValueError as exc:
                raise ReportingError(str(exc)) from None
            values["timezone"] = timezone
        if formats is not None:
            try:
                values["formats"] = ",".join(parse_formats(formats))
            except ValueError as exc:
                raise ReportingError(f"{exc} ({', '.join(FORMATS)})") from None
        if campaigns is not None:
            values["campaigns"] = sorted({c.strip() for c in campaigns if c.strip()})
        if enabled is not None:
            values["enabled"] = enabled

        def work(conn: Connection) -> Schedule:
            found = _resolve(conn, client)
            if values:
                conn.execute(_C.update().where(_C.c.client_ref == found.client_ref).values(updated_at=now, **values))
            return _schedule_of(conn, found.client_ref)

        return await run_write(self.engine, with_also(work, also))

    async def clients(self) -> list[Schedule]:
        def work(conn: Connection) -> list[Schedule]:
            rows = conn.execute(sa.select(_C).order_by(_C.c.company, _C.c.client_ref)).all()
            covered = dict(
                conn.execute(sa.select(_RP.c.client_ref, sa.func.max(_RP.c.last_day)).group_by(_RP.c.client_ref)).all()
            )
            return [_schedule(r, covered.get(r.client_ref), frozenset()) for r in rows]

        return await run_read(self.engine, work)


def _schedule_of(conn: Connection, client_ref: str) -> Schedule:
    """A client's schedule with the periods its reports covered."""
    row = conn.execute(sa.select(_C).where(_C.c.client_ref == client_ref)).one()
    done = frozenset(conn.execute(sa.select(_RP.c.period).where(_RP.c.client_ref == client_ref)).scalars())
    covered = conn.execute(sa.select(sa.func.max(_RP.c.last_day)).where(_RP.c.client_ref == client_ref)).scalar()
    return _schedule(row, covered, done)


def _same_kind(label: str, period: Period) -> bool:
    try:
        return parse_label(label).kind == period.kind
    except ValueError:
        return False


def _kpis(
    conn: Connection,
    client_ref: str | None,
    *,
    kpi: str | None = None,
    period: str | None = None,
    unpublished: bool = False,
) -> list[KpiValue]:
    query = sa.select(_K, _C.c.company).join(_C, _C.c.client_ref == _K.c.client_ref)
    if client_ref is not None:
        query = query.where(_K.c.client_ref == client_ref)
    if kpi is not None:
        query = query.where(_K.c.kpi == kpi)
    if period is not None:
        query = query.where(_K.c.period == period)
    if unpublished:
        query = query.where(_K.c.published_at.is_(None)).order_by(_K.c.id)
    else:
        query = query.order_by(_C.c.company, _K.c.kpi, _K.c.period)
    return [
        KpiValue(
            id=r.id,
            client_ref=r.client_ref,
            company=r.company,
            kpi=r.kpi,
            period=r.period,
            value=r.value,
            target=r.target,
            direction=r.direction,
            attained=bool(r.attained),
            source=r.source,
            recorded_at=r.recorded_at,
            published_at=r.published_at,
        )
        for r in conn.execute(query)
    ]


def report_key(client_ref: str, period: str) -> str:
    """The idempotency key of a report's email."""
    return f"{client_ref}:report:{period}"


def project_uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None
