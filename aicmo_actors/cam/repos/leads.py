"""Leads and suppressions (`cam_leads`, `cam_suppressions`): who is written to, where each
lead is in its sequence, and the addresses nobody writes to again.

The functions taking a `Connection` are the lead writes other repositories make inside
their own transaction (a reply's decision, a failed send's, a step that went out)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.lead_rules import LeadDecision, check_transition
from aicmo_actors.cam.repos.campaigns import CampaignsRepo
from aicmo_actors.cam.repos.records import RecordError, iso, jsonable, one_of, page_size, read_relabel_note
from aicmo_actors.cam.repos.sql import aware, normalise_address, param
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.sql import chunks
from aicmo_actors.storage.work import Also, run_read, run_write, with_also
from contracts.cam import LeadState, OutboundStatus

#: After the last step, how long a lead waits for a reply before it is "completed".
COMPLETION_WAIT = timedelta(days=7)


@dataclass(frozen=True)
class DueLead:
    lead_id: int
    campaign: str
    email: str
    state: LeadState
    current_step: int
    timezone: str | None
    mailbox: str | None = None


_ADVANCE = (
    leads_t.update()
    .where(leads_t.c.id == sa.bindparam("_lead"), leads_t.c.state == LeadState.ACTIVE.value)
    .values(
        current_step=sa.case(
            (leads_t.c.current_step < sa.bindparam("_step"), sa.bindparam("_step_to")), else_=leads_t.c.current_step
        ),
        last_sent_at=param("_at", leads_t.c.last_sent_at),
        next_action_at=param("_next", leads_t.c.next_action_at),
        state_reason=param("_why", leads_t.c.state_reason),
        updated_at=param("_updated", leads_t.c.updated_at),
    )
)


def advance_in(conn: Connection, lead_id: int, step: int, spec: CampaignSpec, at: datetime) -> None:
    """The step went out (or may have): the lead's next step is due after its delay,
    and after the last one the lead waits `COMPLETION_WAIT` for a reply. Only while it
    is ACTIVE: a reply or an unsubscribe that came meanwhile has already decided."""
    steps = spec.steps
    delay = timedelta(days=steps[step].delay_days) if step < len(steps) else COMPLETION_WAIT
    due = at + delay
    why = (
        f"waiting: step {step + 1} due {due:%Y-%m-%d %H:%M} UTC"
        if step < len(steps)
        else f"waiting for a reply after the last step, until {due:%Y-%m-%d} UTC"
    )
    conn.execute(
        _ADVANCE,
        {"_lead": lead_id, "_step": step, "_step_to": step, "_at": at, "_next": due, "_why": why, "_updated": at},
    )


def set_state_in(
    conn: Connection, lead_id: int, state: LeadState, why: str, now: datetime, **values: Any
) -> tuple[LeadState, LeadState] | None:
    """Move a lead to `state` (a transition the lead rules allow). Returns (old, new) when it changed."""
    current = conn.execute(sa.select(leads_t.c.state).where(leads_t.c.id == lead_id)).scalar_one_or_none()
    if current is None:
        return None
    old = LeadState(current)
    check_transition(old, state)
    conn.execute(
        leads_t.update()
        .where(leads_t.c.id == lead_id)
        .values(state=state.value, state_reason=why, updated_at=now, **values)
    )
    return (old, state) if old is not state else None


def apply_decision_in(
    conn: Connection, lead_id: int, d: LeadDecision, now: datetime, step: int | None
) -> tuple[LeadState, LeadState] | None:
    """Write what the lead rules decided (inside the caller's transaction)."""
    lead = conn.execute(sa.select(leads_t).where(leads_t.c.id == lead_id)).mappings().first()
    if lead is None:
        return None
    values: dict[str, Any] = {}
    if d.stop_sequence:
        values["next_action_at"] = None
    if d.resume_at is not None:
        values["next_action_at"] = d.resume_at
        values["paused_until"] = d.resume_at
    if d.count_soft_bounce:
        values["soft_bounces"] = int(lead["soft_bounces"]) + 1
    if d.retry_step_at is not None and step is not None:
        # The failed step goes out again (the same email: its row is queued once more).
        values["current_step"] = min(int(lead["current_step"]), step - 1)
        retry = d.retry_step_at
        waiting = aware(lead["next_action_at"])
        if LeadState(lead["state"]) is LeadState.PAUSED and waiting is not None and waiting > retry:
            retry = waiting  # an auto-reply pause is not cut short by a retry
        values["next_action_at"] = retry
    change = None
    if d.new_state is not None:
        change = set_state_in(conn, lead_id, d.new_state, d.cause, now, **values)
    elif values:
        conn.execute(
            leads_t.update().where(leads_t.c.id == lead_id).values(state_reason=d.cause, updated_at=now, **values)
        )
    if d.suppress:
        suppress_in(conn, lead["email"], d.suppress, f"lead {lead_id}", now)
    return change


def stop_colleagues_in(conn: Connection, lead_id: int, shared: frozenset[str], now: datetime) -> int:
    """If the lead's campaign says so, stop the other leads with the same email domain."""
    row = conn.execute(
        sa.select(leads_t.c.campaign_id, leads_t.c.email_domain, campaigns_t.c.stop_company_on_reply)
        .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
        .where(leads_t.c.id == lead_id)
    ).first()
    if row is None or not row.stop_company_on_reply or row.email_domain in shared:
        return 0
    result = conn.execute(
        leads_t.update()
        .where(
            leads_t.c.campaign_id == row.campaign_id,
            leads_t.c.email_domain == row.email_domain,
            leads_t.c.id != lead_id,
            leads_t.c.state.in_([LeadState.ACTIVE.value, LeadState.PAUSED.value]),
        )
        .values(
            state=LeadState.STOPPED.value,
            state_reason=f"a colleague replied (lead {lead_id})",
            next_action_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)


def suppress_in(conn: Connection, address: str, reason: str, source: str, now: datetime) -> bool:
    """Suppress an address and stop every lead written to it, in every campaign. True: new."""
    address = normalise_address(address)
    new = insert_ignore_in(
        conn,
        suppressions_t,
        [{"address": address, "reason": reason, "source": source, "created_at": now}],
        conflict_columns=["address"],
    )
    # Every campaign stops writing to the address at once.
    conn.execute(
        leads_t.update()
        .where(leads_t.c.email == address, leads_t.c.state.in_([LeadState.ACTIVE.value, LeadState.PAUSED.value]))
        .values(
            state=LeadState.STOPPED.value, state_reason=f"suppressed: {reason}", next_action_at=None, updated_at=now
        )
    )
    return bool(new)


#: The read of the first next action of any lead (`earliest`), built once.
_FIRST_ACTION = earliest(leads_t.c.next_action_at)


class LeadsRepo:
    def __init__(self, engine: AsyncEngine, campaigns: CampaignsRepo) -> None:
        self.engine = engine
        self.campaigns = campaigns
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def import_rows(
        self,
        campaign: str,
        rows: Sequence[dict[str, Any]],
        now: datetime,
        *,
        also: Also[tuple[int, int, int]] | None = None,
    ) -> tuple[int, int, int]:
        """Insert leads (idempotent on campaign + address). Returns (new, existing, suppressed);
        `also(conn, result)` runs in the transaction that inserts them."""
        row = (await self.campaigns.all()).get(campaign)
        if row is None:
            raise KeyError(campaign)
        addresses = [normalise_address(r["email"]) for r in rows]
        suppressed = await self.suppressed(addresses)
        fresh = []
        for r, address in zip(rows, addresses, strict=True):
            if address in suppressed:
                continue
            fresh.append(
                {
                    "campaign_id": row.campaign_id,
                    "email": address,
                    "email_domain": address.rpartition("@")[2],
                    "first_name": r.get("first_name"),
                    "last_name": r.get("last_name"),
                    "company": r.get("company"),
                    "timezone": r.get("timezone"),
                    "variables": r.get("variables") or {},
                    "state": LeadState.ACTIVE.value,
                    "current_step": 0,
                    "soft_bounces": 0,
                    "next_action_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )

        def work(conn: Connection) -> tuple[int, int, int]:
            new = sum(
                len(insert_ignore_in(conn, leads_t, chunk, conflict_columns=["campaign_id", "email"]))
                for chunk in chunks(fresh)
            )
            return new, len(fresh) - new, len(rows) - len(fresh)

        return await run_write(self.engine, with_also(work, also))

    async def details(self, address: str) -> list[dict[str, Any]]:
        """Everything about one address, per campaign: the lead (state, why, next action),
        its emails (status, outcome, every server answer) and what came back from it."""
        wanted = normalise_address(address)

        def work(conn: Connection) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            leads = (
                conn.execute(
                    sa.select(leads_t, campaigns_t.c.name.label("campaign"))
                    .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                    .where(leads_t.c.email == wanted)
                    .order_by(leads_t.c.id)
                )
                .mappings()
                .all()
            )
            for lead in leads:
                emails = (
                    conn.execute(
                        sa.select(
                            outbound_t.c.step,
                            outbound_t.c.status,
                            outbound_t.c.mailbox,
                            outbound_t.c.message_id,
                            outbound_t.c.sent_at,
                            outbound_t.c.accepted_at,
                            outbound_t.c.bounce,
                            outbound_t.c.bounce_reason,
                            outbound_t.c.complained_at,
                            outbound_t.c.delayed_at,
                            outbound_t.c.last_error,
                            outbound_t.c.replies,
                            outbound_t.c.next_attempt_at,
                        )
                        .where(outbound_t.c.lead_id == lead["id"])
                        .order_by(outbound_t.c.step)
                    )
                    .mappings()
                    .all()
                )
                inbound = (
                    conn.execute(
                        sa.select(
                            inbound_t.c.id,
                            inbound_t.c.received_at,
                            inbound_t.c.category,
                            inbound_t.c.reason,
                            inbound_t.c.matched_by,
                            inbound_t.c.subject,
                            inbound_t.c.acted_at,
                        )
                        .where(inbound_t.c.lead_id == lead["id"])
                        .order_by(inbound_t.c.id)
                    )
                    .mappings()
                    .all()
                )
                suppressed = conn.execute(
                    sa.select(suppressions_t.c.reason, suppressions_t.c.created_at).where(
                        suppressions_t.c.address == wanted
                    )
                ).first()
                found.append(
                    {
                        "campaign": lead["campaign"],
                        "lead_id": lead["id"],
                        "email": lead["email"],
                        "state": lead["state"],
                        "state_reason": lead["state_reason"],
                        "current_step": lead["current_step"],
                        "next_action_at": aware(lead["next_action_at"]),
                        "paused_until": aware(lead["paused_until"]),
                        "soft_bounces": lead["soft_bounces"],
                        "suppressed": dict(suppressed._mapping) if suppressed is not None else None,
                        "emails": [dict(e) for e in emails],
                        "inbound": [dict(i) for i in inbound],
                    }
                )
            return found

        return await run_read(self.engine, work)

    async def due(self, now: datetime, limit: int) -> list[DueLead]:
        """Leads whose next action has come, earliest first (an index on `next_action_at`)."""

        def work(conn: Connection) -> Sequence[Any]:
            query = (
                sa.select(
                    leads_t.c.id,
                    campaigns_t.c.name,
                    leads_t.c.email,
                    leads_t.c.state,
                    leads_t.c.current_step,
                    leads_t.c.timezone,
                )
                .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                .where(leads_t.c.next_action_at <= now)
                .order_by(leads_t.c.next_action_at, leads_t.c.id)
                .limit(limit)
            )
            return conn.execute(query).all()

        # The first next action is kept until the leads change; the query of what is due is
        # built only when something is.
        rows: Sequence[Any] = await self.kept.read_if("due", _FIRST_ACTION, come(now), work, ())
        return [DueLead(int(r[0]), r[1], r[2], LeadState(r[3]), int(r[4]), r[5]) for r in rows]

    async def suppress(
        self, address: str, reason: str, source: str, now: datetime, *, also: Also[bool] | None = None
    ) -> bool:
        """Suppress an address (`suppress_in`); True: it was not suppressed before.
        `also(conn, result)` runs in the same transaction."""
        return await run_write(
            self.engine, with_also(lambda conn: suppress_in(conn, address, reason, source, now), also)
        )

    async def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of these addresses are suppressed (as normalised addresses), counting every
        address at a client's company (a deal was signed with its domain): never prospected."""
        from aicmo_actors.cam.repos.deals import client_domains_in

        wanted = sorted({normalise_address(a) for a in addresses})

        def work(conn: Connection) -> set[str]:
            found: set[str] = set()
            for chunk in chunks(wanted):
                found.update(
                    conn.execute(
                        sa.select(suppressions_t.c.address).where(suppressions_t.c.address.in_(chunk))
                    ).scalars()
                )
            clients = client_domains_in(conn, {a.rpartition("@")[2] for a in wanted})
            found.update(a for a in wanted if a.rpartition("@")[2] in clients)
            return found

        return await run_read(self.engine, work) if wanted else set()

    async def unsubscribe(self, lead_id: int, now: datetime) -> bool:
        """One-click unsubscribe: suppress the lead's address everywhere. False: no such lead."""

        def work(conn: Connection) -> bool:
            row = conn.execute(sa.select(leads_t.c.email, leads_t.c.state).where(leads_t.c.id == lead_id)).first()
            if row is None:
                return False
            if LeadState(row.state) is not LeadState.UNSUBSCRIBED:
                set_state_in(conn, lead_id, LeadState.UNSUBSCRIBED, "one-click unsubscribe", now, next_action_at=None)
            suppress_in(conn, row.email, "unsubscribe link", f"lead {lead_id}", now)
            return True

        return await run_write(self.engine, work)

    # -- reading and operator actions (the command line and the HTTP API) ------------------------

    async def page(
        self,
        *,
        campaign: str | None = None,
        state: str | None = None,
        email_contains: str | None = None,
        company_contains: str | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """One page of leads, by id ascending (keyset: the next page starts `after_id` the last
        one's id). Filters: the campaign's name, the state, a part of the address, a part of
        the company's name (either case). Each lead is
        `LEAD_FIELDS`. An unknown campaign or state is a `RecordError`."""
        size = page_size(limit)
        if state is not None:
            one_of("state", state, [s.value for s in LeadState])

        def work(conn: Connection) -> list[dict[str, Any]]:
            query = _lead_query()
            if campaign is not None:
                query = query.where(leads_t.c.campaign_id == campaign_id_in(conn, campaign))
            if state is not None:
                query = query.where(leads_t.c.state == state)
            if email_contains:
                query = query.where(leads_t.c.email.contains(email_contains.strip().lower(), autoescape=True))
            if company_contains and company_contains.strip():
                wanted = company_contains.strip().lower()
                query = query.where(sa.func.lower(leads_t.c.company).contains(wanted, autoescape=True))
            if after_id is not None:
                query = query.where(leads_t.c.id > after_id)
            return [jsonable(r) for r in conn.execute(query.order_by(leads_t.c.id).limit(size)).mappings()]

        return await run_read(self.engine, work)

    async def lead_ids(self, address: str) -> list[int]:
        """The ids of the leads written to this address (one per campaign it is in), ascending."""
        query = sa.select(leads_t.c.id).where(leads_t.c.email == normalise_address(address)).order_by(leads_t.c.id)
        return await run_read(self.engine, lambda conn: [int(i) for i in conn.execute(query).scalars()])

    async def history(self, lead_id: int) -> dict[str, Any] | None:
        """Everything about one lead, in one read: the lead (`LEAD_FIELDS` plus its soft bounces,
        template variables and suppression), every email to it, every inbound message tied to it,
        the alerts it raised, and a `timeline` of all of them ordered by time. None: no such lead.

        State changes are not stored one by one (only the lead's current state, its reason and
        when the row last changed): the timeline is made from the times on the rows (queued,
        each server answer, sent, bounced, complained, delayed; received, acted on, relabelled;
        alerts raised and delivered; suppressed), ending with the current state.
        """

        def work(conn: Connection) -> dict[str, Any] | None:
            lead = (
                conn.execute(_lead_query(leads_t.c.soft_bounces, leads_t.c.variables).where(leads_t.c.id == lead_id))
                .mappings()
                .first()
            )
            if lead is None:
                return None
            emails = conn.execute(
                sa.select(*_EMAIL_COLUMNS)
                .where(outbound_t.c.lead_id == lead_id)
                .order_by(outbound_t.c.queued_at, outbound_t.c.id)
            ).mappings()
            inbound = conn.execute(
                sa.select(*_INBOUND_COLUMNS)
                .where(inbound_t.c.lead_id == lead_id)
                .order_by(sa.func.coalesce(inbound_t.c.received_at, inbound_t.c.stored_at), inbound_t.c.id)
            ).mappings()
            alerts = conn.execute(
                sa.select(*_ALERT_COLUMNS).where(alerts_t.c.lead_id == lead_id).order_by(alerts_t.c.id)
            ).mappings()
            suppression = (
                conn.execute(
                    sa.select(suppressions_t.c.reason, suppressions_t.c.source, suppressions_t.c.created_at).where(
                        suppressions_t.c.address == lead["email"]
                    )
                )
                .mappings()
                .first()
            )
            return _history(
                dict(lead),
                [dict(e) for e in emails],
                [dict(i) for i in inbound],
                [dict(a) for a in alerts],
                dict(suppression) if suppression is not None else None,
            )

        return await run_read(self.engine, work)

    async def suppressions(self, *, after_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """One page of the suppression list by id ascending: {"id", "address", "reason", "source",
        "created_at"}."""
        size = page_size(limit)
        query = sa.select(
            suppressions_t.c.id,
            suppressions_t.c.address,
            suppressions_t.c.reason,
            suppressions_t.c.source,
            suppressions_t.c.created_at,
        )
        if after_id is not None:
            query = query.where(suppressions_t.c.id > after_id)
        query = query.order_by(suppressions_t.c.id).limit(size)
        return await run_read(self.engine, lambda conn: [jsonable(r) for r in conn.execute(query).mappings()])

    async def unsuppress(self, address: str, *, also: Also[bool] | None = None) -> bool:
        """Take an address off the suppression list. False: it was not on it. `also(conn,
        result)` runs in the same transaction.

        Only the list changes: leads the suppression stopped stay stopped (no state leads back
        to active), but the address may be imported and written to again."""
        statement = suppressions_t.delete().where(suppressions_t.c.address == normalise_address(address))
        return await run_write(self.engine, with_also(lambda conn: bool(conn.execute(statement).rowcount), also))


#: What `LeadsRepo.page` returns for each lead (`history` too, with a few more).
LEAD_FIELDS = (
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
    "paused_until",
    "last_sent_at",
    "created_at",
    "updated_at",
)


def _lead_query(*more: sa.ColumnElement[Any]) -> sa.Select[Any]:
    return sa.select(
        leads_t.c.id,
        leads_t.c.email,
        leads_t.c.first_name,
        leads_t.c.last_name,
        leads_t.c.company,
        leads_t.c.timezone,
        campaigns_t.c.name.label("campaign"),
        leads_t.c.state,
        leads_t.c.state_reason,
        leads_t.c.current_step.label("step"),
        leads_t.c.next_action_at,
        leads_t.c.paused_until,
        leads_t.c.last_sent_at,
        leads_t.c.created_at,
        leads_t.c.updated_at,
        *more,
    ).join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)


def campaign_id_in(conn: Connection, name: str) -> int:
    """The id of the campaign named `name`; a `RecordError` when there is none."""
    found = conn.execute(sa.select(campaigns_t.c.id).where(campaigns_t.c.name == name)).scalar_one_or_none()
    if found is None:
        raise RecordError(f"no campaign named {name!r}")
    return int(found)


_EMAIL_COLUMNS = (
    outbound_t.c.id,
    outbound_t.c.step,
    outbound_t.c.variant,
    outbound_t.c.status,
    outbound_t.c.mailbox,
    outbound_t.c.recipient,
    outbound_t.c.subject,
    outbound_t.c.message_id,
    outbound_t.c.attempts,
    outbound_t.c.queued_at,
    outbound_t.c.sending_at,
    outbound_t.c.sent_at,
    outbound_t.c.accepted_at,
    outbound_t.c.next_attempt_at,
    outbound_t.c.last_error,
    outbound_t.c.smtp_code,
    outbound_t.c.bounce,
    outbound_t.c.bounce_reason,
    outbound_t.c.bounce_at,
    outbound_t.c.complained_at,
    outbound_t.c.delayed_at,
    outbound_t.c.delay_note,
    outbound_t.c.replies,
)
_INBOUND_COLUMNS = (
    inbound_t.c.id,
    inbound_t.c.mailbox,
    inbound_t.c.from_address,
    inbound_t.c.subject,
    inbound_t.c.message_id,
    inbound_t.c.in_reply_to,
    inbound_t.c.category,
    inbound_t.c.reason,
    inbound_t.c.confidence,
    inbound_t.c.classification,
    inbound_t.c.matched_by,
    inbound_t.c.outbound_id,
    inbound_t.c.received_at,
    inbound_t.c.stored_at,
    inbound_t.c.processed_at,
    inbound_t.c.acted_at,
    inbound_t.c.set_aside,
)
_ALERT_COLUMNS = (
    alerts_t.c.id,
    alerts_t.c.kind,
    alerts_t.c.state,
    alerts_t.c.attempts,
    alerts_t.c.inbound_id,
    alerts_t.c.last_error,
    alerts_t.c.created_at,
    alerts_t.c.delivered_at,
)


def evidence(classification: Any) -> list[str]:
    """The reasons a stored classification gives (the classifier's evidence, and relabellings)."""
    if not isinstance(classification, dict):
        return []
    return [str(r) for r in classification.get("reasons") or []]


def _history(
    lead: dict[str, Any],
    emails: list[dict[str, Any]],
    inbound: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    suppression: dict[str, Any] | None,
) -> dict[str, Any]:
    events: list[tuple[datetime, int, dict[str, Any]]] = []

    def event(at: datetime | str | None, kind: str, detail: str, ref: str | None = None) -> None:
        try:
            when = aware(datetime.fromisoformat(at) if isinstance(at, str) else at)
        except ValueError:
            return  # a time in the attempt log that does not parse: the email's own times remain
        if when is not None:
            events.append((when, len(events), {"event": kind, "detail": detail, "ref": ref}))

    event(lead["created_at"], "imported", f"into campaign {lead['campaign']}")
    for e in emails:
        ref, step = f"email {e['id']}", f"step {e['step']}"
        event(e["queued_at"], "queued", f"{step} from {e['mailbox']}: {e['subject']}", ref)
        for reply in e["replies"] or []:
            answer = " ".join(str(p) for p in (reply.get("code"), reply.get("text")) if p)
            event(reply.get("at"), "server answer", f"{step} at {reply.get('stage')}: {answer}", ref)
        if e["accepted_at"] is not None:
            event(e["accepted_at"], "sent", f"{step} accepted by the receiving server", ref)
        elif e["status"] == OutboundStatus.UNCONFIRMED.value:
            event(e["sent_at"], "unconfirmed", f"{step}: the connection was lost after the message went out", ref)
        if e["bounce_at"] is not None:
            event(e["bounce_at"], "bounce", f"{step}: {e['bounce']} bounce ({e['bounce_reason']})", ref)
        if e["complained_at"] is not None:
            event(e["complained_at"], "complaint", f"{step}: spam complaint", ref)
        if e["delayed_at"] is not None:
            event(e["delayed_at"], "delayed", f"{step}: {e['delay_note'] or 'delay notice'}", ref)
    for i in inbound:
        ref = f"inbound {i['id']}"
        reasons = evidence(i.pop("classification"))
        i["reasons"] = reasons
        i["relabelled"] = [note for note in map(read_relabel_note, reasons) if note is not None]
        label = i["relabelled"][0]["from"] if i["relabelled"] else i["category"]
        event(
            i["received_at"] or i["stored_at"],
            "received",
            f"{label or 'not classified yet'} ({i['reason'] or '-'}) from {i['from_address'] or '?'}: {i['subject']}",
            ref,
        )
        if i["acted_at"] is not None:
            event(i["acted_at"], "acted on", f"as {label} (tied by {i['matched_by'] or 'nothing'})", ref)
        for note in i["relabelled"]:
            event(note["at"], "relabelled", f"from {note['from']} to {note['to']} by {note['by']}", ref)
    for a in alerts:
        ref = f"alert {a['id']}"
        event(a["created_at"], "alert", f"{a['kind']} ({a['state']})", ref)
        if a["delivered_at"] is not None:
            event(a["delivered_at"], "alert delivered", a["kind"], ref)
    if suppression is not None:
        event(suppression["created_at"], "suppressed", f"{suppression['reason']} ({suppression['source']})")
    event(lead["updated_at"], "state", f"{lead['state']}: {lead['state_reason'] or '-'}")
    events.sort(key=lambda item: (item[0], item[1]))
    return {
        "lead": {**jsonable(lead), "suppressed": jsonable(suppression) if suppression is not None else None},
        "emails": [jsonable(e) for e in emails],
        "inbound": [jsonable(i) for i in inbound],
        "alerts": [jsonable(a) for a in alerts],
        "timeline": [{"at": iso(at), **what} for at, _, what in events],
        "state_changes_recorded": False,
    }
