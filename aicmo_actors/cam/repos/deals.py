"""Deals (`cam_deals`): a lead that signed, the client it became and the package it bought.

Signing is one transaction: the deal, the lead's new state (`client`), every other lead of
the same company (its email domain, unless a free-mail one) stopped in every campaign, and
their queued emails cancelled: no prospecting email reaches a client's company after the
deal. Orchestration is told by `ClientSigned`, published by `cam.deals` on every tick until
orchestration answers `ProjectOpened` (`opened`).

Renewals (`cam_renewals`): a monthly retainer's contract renewed for more months, from the end
of the term before (`renew`); announced by `ContractRenewed` on every tick until orchestration
answers `RenewalApplied` (`renewal_applied`), and for a day after (`renewals_to_announce`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.cam.repos.sql import normalise_address
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_deals as deals_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_renewals as renewals_t
from aicmo_actors.gateways.calendar import add_months
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.sql import chunks
from aicmo_actors.storage.work import Also, run_read, run_write, with_also
from contracts.cam import LeadState, OutboundStatus

#: Lead states a signed company's other leads are stopped from (they were still being written to).
_LIVE = (LeadState.ACTIVE.value, LeadState.PAUSED.value)


@dataclass(frozen=True)
class Deal:
    deal_id: int
    lead_id: int
    campaign: str
    client: dict[str, Any]
    package: dict[str, Any]
    start: date
    signed_at: datetime
    signed_by: str
    project_id: str | None
    #: Other leads of the company stopped when it signed.
    stopped: int = 0
    #: When orchestration answered that it has the project.
    opened_at: datetime | None = None


class RenewalConflict(RecordError):
    """A renewal that conflicts with those recorded (a retry's number or months, or another at once)."""


@dataclass(frozen=True)
class Renewal:
    deal_id: int
    number: int
    months: int
    #: The end of the term before (the renewed months' first day) and the new end.
    starts_on: date
    ends_on: date
    renewed_at: datetime
    renewed_by: str
    client_ref: str
    applied_at: datetime | None = None
    outcome: str | None = None
    #: False when `renew` returned a renewal recorded before (a retry naming its number); not
    #: part of what the renewal is (equality).
    new: bool = field(default=True, compare=False)


#: How long a deal or a renewal is still announced after orchestration answered (`to_announce`,
#: `renewals_to_announce`).
ECHO = timedelta(days=1)
#: How long after a contract's end it may still be renewed (later: a new deal).
RENEW_AFTER_END_DAYS = 30
#: The longest renewal at once.
MOST_MONTHS = 120


def _renewal(row: Any, client_ref: str) -> Renewal:
    return Renewal(
        deal_id=int(row.deal_id),
        number=int(row.number),
        months=int(row.months),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        renewed_at=row.renewed_at,
        renewed_by=row.renewed_by,
        client_ref=client_ref,
        applied_at=row.applied_at,
        outcome=row.outcome,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _day_before(now: datetime) -> datetime:
    """Midnight (UTC) of the day `ECHO` before `now`: a bound no later than `now - ECHO` that
    moves once a day, so a kept read keyed by it is read again once a day, not on every tick."""
    return (_aware(now) - ECHO).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def contract_end(start: date, package: dict[str, Any], renewed_months: int = 0) -> date:
    """The day after a deal's last day: its start plus its term and the months renewed."""
    return add_months(start, int(package.get("term_months") or 12) + renewed_months)


def renew_problem(package: dict[str, Any], months: int, end: date, today: date) -> str | None:
    """Why a deal's contract cannot be renewed for `months` more from `end`, or None. Pure."""
    if package.get("billing") != "monthly":
        return (
            f"its package {package.get('name')!r} is billed {package.get('billing')}: only a monthly retainer "
            "is renewed (sign a new deal for new work)"
        )
    if not 1 <= months <= MOST_MONTHS:
        return f"the months must be 1 to {MOST_MONTHS}, not {months}"
    each = int(package.get("period_months") or 1)
    term = int(package.get("term_months") or 12)
    if months % each or term % each:
        return (
            f"its periods are {each} months and its term {term}: a renewal adds whole periods "
            f"(a multiple of {each} months) to a term of whole periods"
        )
    if (today - end).days > RENEW_AFTER_END_DAYS:
        return f"its contract ended on {end.isoformat()}, more than {RENEW_AFTER_END_DAYS} days ago: sign a new deal"
    return None


def shared_domains() -> frozenset[str]:
    from aicmo_actors.cam import followup

    return followup.SHARED_DOMAINS


def _deal(row: Any, campaign: str, stopped: int = 0) -> Deal:
    return Deal(
        deal_id=int(row.id),
        lead_id=int(row.lead_id),
        campaign=campaign,
        client=dict(row.client),
        package=dict(row.package),
        start=row.start_date,
        signed_at=row.signed_at,
        signed_by=row.signed_by,
        project_id=row.project_id,
        stopped=stopped,
        opened_at=row.opened_at,
    )


def client_domains_in(conn: Connection, domains: Iterable[str]) -> set[str]:
    """Which of these email domains belong to a client (a deal was signed there)."""
    wanted = sorted(set(domains) - shared_domains())
    if not wanted or conn.execute(sa.select(deals_t.c.id).limit(1)).first() is None:
        return set()
    found: set[str] = set()
    for chunk in chunks(wanted):
        query = sa.select(deals_t.c.company_domain).where(deals_t.c.company_domain.in_(chunk))
        found.update(str(d) for d in conn.execute(query).scalars())
    return found


class DealsRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def win(
        self,
        address: str,
        *,
        campaign: str | None,
        client: dict[str, Any],
        package: dict[str, Any],
        start: date,
        by: str,
        now: datetime,
        also: Also[Deal] | None = None,
    ) -> Deal:
        """Sign the lead at `address` (in `campaign`, needed when the address is in several):
        the deal, the lead a client, its company's other leads stopped. `client` is a
        `ClientInfo` as JSON without `client_ref`, made here. A `RecordError` (one line) when
        there is no such lead or it signed already. `also(conn, deal)`: in the signing's
        transaction (its audit row)."""
        wanted = normalise_address(address)

        def work(conn: Connection) -> Deal:
            query = (
                sa.select(
                    leads_t.c.id, leads_t.c.state, leads_t.c.email_domain, leads_t.c.campaign_id, campaigns_t.c.name
                )
                .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                .where(leads_t.c.email == wanted)
                .order_by(leads_t.c.id)
            )
            if campaign is not None:
                query = query.where(campaigns_t.c.name == campaign)
            leads = conn.execute(query).all()
            if not leads:
                where = f" in campaign {campaign!r}" if campaign is not None else ""
                raise RecordError(f"no lead {wanted}{where} (python run.py leads lists them)")
            if len(leads) > 1:
                names = ", ".join(lead.name for lead in leads)
                raise RecordError(f"{wanted} is a lead of several campaigns ({names}): say which with --campaign")
            lead = leads[0]
            existing = conn.execute(sa.select(deals_t).where(deals_t.c.lead_id == lead.id)).first()
            if existing is not None:
                raise RecordError(f"{wanted} signed already (deal {existing.id}, {existing.signed_at:%Y-%m-%d})")
            ref = str(uuid.uuid5(uuid.NAMESPACE_URL, f"aicmo:client:lead:{lead.id}"))
            info = {**client, "client_ref": ref, "contact_email": client.get("contact_email") or wanted}
            deal_id = conn.execute(
                deals_t.insert()
                .values(
                    lead_id=lead.id,
                    campaign_id=lead.campaign_id,
                    company_domain=lead.email_domain,
                    client_ref=ref,
                    client=info,
                    package_name=str(package.get("name", "")),
                    package=package,
                    start_date=start,
                    signed_at=now,
                    signed_by=by,
                )
                .returning(deals_t.c.id)
            ).scalar_one()
            conn.execute(
                leads_t.update()
                .where(leads_t.c.id == lead.id)
                .values(
                    state=LeadState.CLIENT.value,
                    state_reason=f"signed: deal {deal_id}",
                    next_action_at=None,
                    updated_at=now,
                )
            )
            stopped = 0
            if lead.email_domain not in shared_domains():
                colleagues = sa.select(leads_t.c.id).where(
                    leads_t.c.email_domain == lead.email_domain, leads_t.c.id != lead.id, leads_t.c.state.in_(_LIVE)
                )
                ids = [int(i) for i in conn.execute(colleagues).scalars()]
                if ids:
                    stopped = int(
                        conn.execute(
                            leads_t.update()
                            .where(leads_t.c.id.in_(ids))
                            .values(
                                state=LeadState.STOPPED.value,
                                state_reason=f"company signed: deal {deal_id}",
                                next_action_at=None,
                                updated_at=now,
                            )
                        ).rowcount
                    )
            # Nothing queued for the company goes out any more (the client's own lead included).
            company = (
                leads_t.c.email_domain == lead.email_domain
                if lead.email_domain not in shared_domains()
                else leads_t.c.id == lead.id
            )
            conn.execute(
                outbound_t.update()
                .where(
                    outbound_t.c.status == OutboundStatus.QUEUED.value,
                    outbound_t.c.lead_id.in_(sa.select(leads_t.c.id).where(company)),
                )
                .values(status=OutboundStatus.CANCELLED.value, last_error=f"company signed: deal {deal_id}")
            )
            row = conn.execute(sa.select(deals_t).where(deals_t.c.id == deal_id)).one()
            return _deal(row, lead.name, stopped)

        return await run_write(self.engine, with_also(work, also))

    async def to_announce(self, now: datetime, limit: int = 100) -> list[Deal]:
        """Deals to announce now, oldest first: those orchestration has not answered for yet, and
        for `ECHO` after its answer (billing, retention, reporting and learning hear the same
        `ClientSigned`: one killed before it wrote the deal hears it again at the next tick)."""
        since = _day_before(now)
        query = (
            sa.select(deals_t, campaigns_t.c.name.label("campaign"))
            .join(campaigns_t, campaigns_t.c.id == deals_t.c.campaign_id)
            .where(sa.or_(deals_t.c.project_id.is_(None), deals_t.c.opened_at >= since))
            .order_by(deals_t.c.id)
            .limit(limit)
        )
        # Kept per day (the read depends on the tables and on `since` only); the echo's end is the clock's.
        found = await self.kept.read(
            ("to_announce", since, limit), lambda conn: tuple(_deal(r, r.campaign) for r in conn.execute(query).all())
        )
        return [d for d in found if d.opened_at is None or _aware(d.opened_at) > now - ECHO]

    async def opened(self, deal_id: int, project_id: str, now: datetime) -> bool:
        """Orchestration has the deal's project: True the first time it says so."""
        statement = (
            deals_t.update()
            .where(deals_t.c.id == deal_id, deals_t.c.project_id.is_(None))
            .values(project_id=project_id, opened_at=now)
        )
        return await run_write(self.engine, lambda conn: bool(conn.execute(statement).rowcount))

    async def all(self) -> list[Deal]:
        query = (
            sa.select(deals_t, campaigns_t.c.name.label("campaign"))
            .join(campaigns_t, campaigns_t.c.id == deals_t.c.campaign_id)
            .order_by(deals_t.c.id)
        )
        return await run_read(self.engine, lambda conn: [_deal(r, r.campaign) for r in conn.execute(query).all()])

    # -- renewals ----------------------------------------------------------------------------------
    async def renew(
        self,
        deal_id: int,
        *,
        months: int,
        by: str,
        now: datetime,
        today: date,
        number: int | None = None,
        also: Also[Renewal] | None = None,
    ) -> Renewal:
        """Renew deal `deal_id`'s contract for `months` more from the end of its term so far (its
        start plus its term and every renewal before). With `number` (a retry's): the renewal of
        that number when it is recorded already with these months, else it must be the next. A
        `RecordError` (one line) when there is no such deal, it cannot be renewed
        (`renew_problem`), or `number` does not fit. `also(conn, renewal)`: in the renewal's
        transaction (its audit row), a retry's too (`new` False: nothing was renewed)."""

        def work(conn: Connection) -> Renewal:
            deal = conn.execute(sa.select(deals_t).where(deals_t.c.id == deal_id)).first()
            if deal is None:
                raise RecordError(f"no deal {deal_id} (python run.py deal list shows them)")
            before = conn.execute(sa.select(renewals_t).where(renewals_t.c.deal_id == deal_id)).all()
            if number is not None:
                same = next((r for r in before if int(r.number) == number), None)
                if same is not None:
                    if int(same.months) != months:
                        raise RenewalConflict(f"renewal {number} of deal {deal_id} was for {same.months} months")
                    return replace(_renewal(same, str(deal.client_ref)), new=False)
                if number != len(before) + 1:
                    raise RenewalConflict(
                        f"deal {deal_id} has {len(before)} renewal(s): the next is number {len(before) + 1}"
                    )
            package = dict(deal.package)
            renewed = sum(int(r.months) for r in before)
            end = contract_end(deal.start_date, package, renewed)
            problem = renew_problem(package, months, end, today)
            if problem is not None:
                raise RecordError(f"deal {deal_id} cannot be renewed: {problem}")
            conn.execute(
                renewals_t.insert().values(
                    deal_id=deal_id,
                    number=len(before) + 1,
                    months=months,
                    starts_on=end,
                    # Counted from the start, as every module counts contract months (31 January
                    # + 13 months is 28 February, + 15 is 30 April, not 28 April).
                    ends_on=contract_end(deal.start_date, package, renewed + months),
                    renewed_at=now,
                    renewed_by=by,
                )
            )
            row = conn.execute(
                sa.select(renewals_t).where(renewals_t.c.deal_id == deal_id, renewals_t.c.number == len(before) + 1)
            ).one()
            return _renewal(row, str(deal.client_ref))

        try:
            return await run_write(self.engine, with_also(work, also))
        except sa.exc.IntegrityError:
            # Two renewals of one deal at once: the other one has this number.
            raise RenewalConflict(
                f"deal {deal_id} was renewed by someone else meanwhile: look again (deal list)"
            ) from None

    async def renewals_to_announce(self, now: datetime) -> list[Renewal]:
        """Renewals to announce now, of deals whose project is open, each deal's in order of
        number: those orchestration has not answered yet, and for `ECHO` after its answer (billing
        and retention hear the same announcement: a process killed before one of them wrote it
        hears it again at the next tick)."""
        since = _day_before(now)
        query = (
            sa.select(renewals_t, deals_t.c.client_ref)
            .join(deals_t, deals_t.c.id == renewals_t.c.deal_id)
            .where(
                deals_t.c.project_id.is_not(None),
                sa.or_(renewals_t.c.applied_at.is_(None), renewals_t.c.applied_at >= since),
            )
            .order_by(renewals_t.c.deal_id, renewals_t.c.number)
        )
        found = await self.kept.read(
            ("renewals", since), lambda conn: tuple(_renewal(r, str(r.client_ref)) for r in conn.execute(query).all())
        )
        return [r for r in found if r.applied_at is None or _aware(r.applied_at) > now - ECHO]

    async def renewal_applied(self, deal_id: int, number: int, outcome: str, now: datetime) -> bool:
        """Orchestration has the deal's renewal `number`: True the first time it says so."""
        statement = (
            renewals_t.update()
            .where(renewals_t.c.deal_id == deal_id, renewals_t.c.number == number, renewals_t.c.applied_at.is_(None))
            .values(applied_at=now, outcome=outcome)
        )
        return await run_write(self.engine, lambda conn: bool(conn.execute(statement).rowcount))

    async def renewals(self, deal_id: int | None = None) -> list[Renewal]:
        """Every renewal (of one deal), by deal and number."""
        query = (
            sa.select(renewals_t, deals_t.c.client_ref)
            .join(deals_t, deals_t.c.id == renewals_t.c.deal_id)
            .order_by(renewals_t.c.deal_id, renewals_t.c.number)
        )
        if deal_id is not None:
            query = query.where(renewals_t.c.deal_id == deal_id)
        return await run_read(self.engine, lambda conn: [_renewal(r, str(r.client_ref)) for r in conn.execute(query)])
