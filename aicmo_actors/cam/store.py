"""CAM's persistence: every read and write of the `cam_*` tables goes through here.

The module owns its tables (house rule 2): other modules ask by message, the CLI calls
these functions. Effects on the outside world are gated by a fenced write: the
QUEUED -> SENDING claim of an outbound row matches only while this process holds the
worker lease with its current fencing token, so a stale holder cannot send.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import tables as cam_tables
from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.lead_rules import LeadDecision, check_transition
from aicmo_actors.gateways.inbox_source import FetchedMessage
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import run_read, run_write
from contracts.cam import (
    AlertRequested,
    Classification,
    CycleReport,
    LeadState,
    OutboundStatus,
    SendEmail,
)

#: After the last step, how long a lead waits for a reply before it is "completed".
COMPLETION_WAIT = timedelta(days=7)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _tables() -> dict[str, sa.Table]:
    found: dict[str, sa.Table] = {}
    for value in vars(cam_tables).values():
        table = getattr(value, "__table__", value)
        if isinstance(table, sa.Table):
            found[table.name] = table
    return found


T = _tables()
campaigns_t = T["cam_campaigns"]
steps_t = T["cam_sequence_steps"]
leads_t = T["cam_leads"]
outbound_t = T["cam_outbound_emails"]
inbound_t = T["cam_inbound_emails"]
suppressions_t = T["cam_suppressions"]
alerts_t = T["cam_alerts"]
reports_t = T["cam_cycle_reports"]
cursors_t = T["cam_mailbox_cursors"]
mailboxes_t = T["cam_sending_mailboxes"]


def _param(name: str, column: sa.ColumnElement[Any]) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=column.type)


# The send path's statements, built once: building a statement and its cache key costs more
# than SQLite takes to run it. Each takes its values as bind parameters.
_SENDING = OutboundStatus.SENDING.value
_CLAIM_RETURNS = (
    outbound_t.c.lead_id, outbound_t.c.step, outbound_t.c.variant, outbound_t.c.mailbox,
    outbound_t.c.recipient, outbound_t.c.message_id, outbound_t.c.attempts,
)
_CLAIM_WHERE = (
    outbound_t.c.id == sa.bindparam("_id"),
    outbound_t.c.status == OutboundStatus.QUEUED.value,
    sa.or_(outbound_t.c.next_attempt_at.is_(None), outbound_t.c.next_attempt_at <= _param("_due", outbound_t.c.next_attempt_at)),
)
_CLAIM_VALUES = {"status": _SENDING, "sending_at": _param("_at", outbound_t.c.sending_at), "attempts": outbound_t.c.attempts + 1}
_INTERRUPTED_WHERE = (outbound_t.c.id == sa.bindparam("_id"), outbound_t.c.status == _SENDING)
_INTERRUPTED_VALUES = {
    "status": OutboundStatus.UNCONFIRMED.value,
    "last_error": "interrupted mid-send (actor restarted)",
    "sent_at": sa.func.coalesce(outbound_t.c.sending_at, _param("_at", outbound_t.c.sent_at)),
}
_INTERRUPTED_RETURNS = (outbound_t.c.lead_id, outbound_t.c.step, outbound_t.c.campaign_id)
#: Everything the last check before a send and the email itself need, in one query: the
#: row, its lead, its campaign, its mailbox's pause and the recipient's suppression.
_GATE = (
    sa.select(
        outbound_t.c.status,
        leads_t.c.state.label("lead_state"),
        leads_t.c.email, leads_t.c.first_name, leads_t.c.last_name, leads_t.c.company,
        leads_t.c.timezone, leads_t.c.variables,
        campaigns_t.c.name,
        campaigns_t.c.status.label("campaign_status"),
        campaigns_t.c.spec_hash,
        mailboxes_t.c.status.label("mailbox_status"),
        suppressions_t.c.id.label("suppressed"),
    )
    .join(leads_t, leads_t.c.id == outbound_t.c.lead_id)
    .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
    .outerjoin(mailboxes_t, mailboxes_t.c.address == sa.func.lower(outbound_t.c.mailbox))
    .outerjoin(suppressions_t, suppressions_t.c.address == outbound_t.c.recipient)
    .where(outbound_t.c.id == sa.bindparam("_id"))
)
_HOLD = (
    outbound_t.update()
    .where(outbound_t.c.id == sa.bindparam("_id"), outbound_t.c.status == OutboundStatus.QUEUED.value)
    .values(next_attempt_at=_param("_until", outbound_t.c.next_attempt_at))
)
_CANCEL = (
    outbound_t.update()
    .where(outbound_t.c.id == sa.bindparam("_id"), outbound_t.c.status == OutboundStatus.QUEUED.value)
    .values(status=OutboundStatus.FAILED.value, last_error=sa.bindparam("_why"))
)
#: How long a send waits while its campaign or mailbox is paused before it is looked at again.
PAUSED_HOLD = timedelta(hours=1)
_JOB_THREAD = (
    sa.select(outbound_t.c.message_id, outbound_t.c.subject)
    .where(
        outbound_t.c.lead_id == sa.bindparam("_lead"),
        outbound_t.c.step < sa.bindparam("_step"),
        outbound_t.c.status.in_([OutboundStatus.SENT.value, OutboundStatus.UNCONFIRMED.value]),
    )
    .order_by(outbound_t.c.step)
)
_FINISH_OUTBOUND = (
    outbound_t.update()
    .where(outbound_t.c.id == sa.bindparam("_id"), outbound_t.c.status == _SENDING)
    .values(
        status=sa.bindparam("_status"),
        sent_at=_param("_at", outbound_t.c.sent_at),
        subject=sa.func.coalesce(_param("_subject", outbound_t.c.subject), outbound_t.c.subject),
        last_error=_param("_error", outbound_t.c.last_error),
    )
)
_FINISH_LEAD = (
    leads_t.update()
    .where(leads_t.c.id == sa.bindparam("_lead"), leads_t.c.state == LeadState.ACTIVE.value)
    .values(
        current_step=sa.case(
            (leads_t.c.current_step < sa.bindparam("_step"), sa.bindparam("_step_to")), else_=leads_t.c.current_step
        ),
        last_sent_at=_param("_at", leads_t.c.last_sent_at),
        next_action_at=_param("_next", leads_t.c.next_action_at),
        updated_at=_param("_updated", leads_t.c.updated_at),
    )
)


def normalise_address(address: str) -> str:
    """Suppression and de-duplication compare whole addresses, lower-cased and trimmed."""
    return address.strip().strip("<>").lower()


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: int
    name: str
    spec: CampaignSpec
    status: str
    paused_reason: str | None
    paused_at: datetime | None


@dataclass(frozen=True)
class DueLead:
    lead_id: int
    campaign: str
    email: str
    state: LeadState
    current_step: int
    timezone: str | None
    mailbox: str | None = None


@dataclass(frozen=True)
class PlannedSend:
    """A step the scheduler decided to send now (send_at None) or at its paced moment."""

    lead_id: int
    campaign_id: int
    campaign: str
    step: int
    variant: str
    mailbox: str
    recipient: str
    message_id: str
    send_at: datetime | None = None


@dataclass(frozen=True)
class LeadDeferral:
    """A due lead told to come back at `until` (None: only when something wakes it)."""

    lead_id: int
    until: datetime | None
    why: str


@dataclass
class SchedulePlan:
    """What one scheduler pass decided for a batch of due leads, written in one transaction."""

    deferrals: list[LeadDeferral] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    sends: list[PlannedSend] = field(default_factory=list)


@dataclass(frozen=True)
class LeadRow:
    lead_id: int
    campaign: str
    email: str
    state: LeadState
    soft_bounces: int
    current_step: int


@dataclass(frozen=True)
class OutboundJob:
    outbound_id: int
    lead_id: int
    campaign: str
    step: int
    variant: str
    mailbox: str
    display_name: str | None
    transport: str
    recipient: str
    recipient_name: str | None
    message_id: str
    thread_ids: tuple[str, ...]
    first_subject: str
    attempts: int
    spec: CampaignSpec
    lead_fields: dict[str, str]


@dataclass(frozen=True)
class Finished:
    """How a claimed send ended: SENT (the server's 250) or UNCONFIRMED (it may have it)."""

    job: OutboundJob
    status: OutboundStatus
    at: datetime
    subject: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Held:
    """A claim that found the send must wait (the window is closed, the campaign or the
    mailbox paused): the row stays QUEUED with `until` as its send time."""

    until: datetime
    why: str


#: The send window's rule, given by the sender: None when the lead's window is open at
#: `now`, else when it next opens. (campaign spec, lead timezone or None, now)
WindowRule = Callable[[CampaignSpec, str | None, datetime], datetime | None]


@dataclass(frozen=True)
class Match:
    lead_id: int
    campaign: str
    outbound_id: int | None


@dataclass(frozen=True)
class AlertRow:
    alert_id: int
    idempotency_key: str
    kind: str
    state: str
    attempts: int
    campaign: str | None
    lead_id: int | None
    lead: str | None
    category: str | None
    summary: str
    text: str
    channels_done: tuple[str, ...]
    created_at: datetime


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive: they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    from datetime import UTC

    return value.replace(tzinfo=UTC)


class CamStore:
    """Async access to CAM's tables over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, fence: Callable[[], sa.ColumnElement[bool]] | None = None) -> None:
        self.engine = engine
        self.fence = fence
        self._specs: dict[str, tuple[str, CampaignSpec]] = {}
        self._claim_cache: tuple[Any, sa.Update, sa.Update] | None = None

    # -- campaigns -------------------------------------------------------------------------
    def _spec(self, name: str, spec_hash: str, raw: Any) -> CampaignSpec:
        cached = self._specs.get(name)
        if cached is not None and cached[0] == spec_hash:
            return cached[1]
        spec = CampaignSpec.from_json(raw if isinstance(raw, str) else json.dumps(raw))
        self._specs[name] = (spec_hash, spec)
        return spec

    async def create_or_update_campaign(self, spec: CampaignSpec, now: datetime) -> tuple[int, bool]:
        """Store a campaign (by name); returns (id, created). Steps are replaced on update."""
        spec_json = json.loads(spec.to_json())
        spec_hash = spec.spec_hash()

        def work(conn: Connection) -> tuple[int, bool]:
            row = conn.execute(sa.select(campaigns_t.c.id, campaigns_t.c.spec_hash).where(campaigns_t.c.name == spec.name)).first()
            if row is None:
                result = conn.execute(
                    campaigns_t.insert().values(
                        name=spec.name,
                        spec=spec_json,
                        spec_hash=spec_hash,
                        status="active",
                        stop_company_on_reply=spec.stop_company_on_reply,
                        created_at=now,
                        updated_at=now,
                    )
                )
                campaign_id = int(result.inserted_primary_key[0])
                created = True
            else:
                campaign_id = int(row.id)
                created = False
                conn.execute(
                    campaigns_t.update()
                    .where(campaigns_t.c.id == campaign_id)
                    .values(spec=spec_json, spec_hash=spec_hash, stop_company_on_reply=spec.stop_company_on_reply, updated_at=now)
                )
                conn.execute(steps_t.delete().where(steps_t.c.campaign_id == campaign_id))
            for index, step in enumerate(spec.steps, start=1):
                conn.execute(
                    steps_t.insert().values(
                        campaign_id=campaign_id,
                        step=index,
                        delay_days=step.delay_days,
                        subject=step.subject,
                        body=step.body,
                        html=step.html,
                        variants=[json.loads(v.model_dump_json()) for v in step.variants],
                    )
                )
            boxes = [{"address": m.address.lower(), "status": "active", "created_at": now} for m in spec.mailboxes]
            insert_ignore_in(conn, mailboxes_t, boxes, conflict_columns=["address"])
            return campaign_id, created

        return await run_write(self.engine, work)

    async def campaigns(self) -> dict[str, CampaignRow]:
        rows = await run_read(self.engine, lambda conn: conn.execute(sa.select(campaigns_t)).mappings().all())
        return {
            r["name"]: CampaignRow(
                int(r["id"]), r["name"], self._spec(r["name"], r["spec_hash"], r["spec"]), r["status"], r["paused_reason"], _aware(r["paused_at"])
            )
            for r in rows
        }

    async def set_campaign_status(self, name: str, status: str, reason: str | None, now: datetime) -> bool:
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "paused":
            values |= {"paused_reason": reason, "paused_at": now}
        else:
            values |= {"paused_reason": None, "resumed_at": now}
        statement = campaigns_t.update().where(campaigns_t.c.name == name).values(**values)
        return await run_write(self.engine, lambda conn: bool(conn.execute(statement).rowcount))

    async def pause_campaign(self, name: str, reason: str, now: datetime) -> bool:
        """Pause an active campaign; False if it was paused already (or does not exist)."""

        def work(conn: Connection) -> bool:
            result = conn.execute(
                campaigns_t.update()
                .where(campaigns_t.c.name == name, campaigns_t.c.status == "active")
                .values(status="paused", paused_reason=reason, paused_at=now, updated_at=now)
            )
            return bool(result.rowcount)

        return await run_write(self.engine, work)

    async def pause_mailbox(self, address: str, reason: str, now: datetime) -> bool:
        address = address.lower()

        def work(conn: Connection) -> bool:
            insert_ignore_in(conn, mailboxes_t, [{"address": address, "status": "active", "created_at": now}], conflict_columns=["address"])
            result = conn.execute(
                mailboxes_t.update()
                .where(mailboxes_t.c.address == address, mailboxes_t.c.status == "active")
                .values(status="paused", paused_reason=reason, paused_at=now)
            )
            return bool(result.rowcount)

        return await run_write(self.engine, work)

    async def resume_mailbox(self, address: str) -> bool:
        statement = (
            mailboxes_t.update()
            .where(mailboxes_t.c.address == address.lower())
            .values(status="active", paused_reason=None, paused_at=None)
        )
        return await run_write(self.engine, lambda conn: bool(conn.execute(statement).rowcount))

    async def paused_mailboxes(self) -> set[str]:
        query = sa.select(mailboxes_t.c.address).where(mailboxes_t.c.status == "paused")
        return await run_read(self.engine, lambda conn: set(conn.execute(query).scalars()))

    async def mailbox_rows(self) -> list[dict[str, Any]]:
        query = sa.select(mailboxes_t).order_by(mailboxes_t.c.address)
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    # -- leads -------------------------------------------------------------------------------
    async def import_leads(self, campaign: str, rows: Sequence[dict[str, Any]], now: datetime) -> tuple[int, int, int]:
        """Insert leads (idempotent on campaign + address). Returns (new, existing, suppressed)."""
        campaigns = await self.campaigns()
        row = campaigns.get(campaign)
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
        def work(conn: Connection) -> int:
            return sum(len(insert_ignore_in(conn, leads_t, chunk, conflict_columns=["campaign_id", "email"])) for chunk in _chunks(fresh))

        new = await run_write(self.engine, work)
        return new, len(fresh) - new, len(rows) - len(fresh)

    async def due_leads(self, now: datetime, limit: int) -> list[DueLead]:
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
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return [DueLead(int(r[0]), r[1], r[2], LeadState(r[3]), int(r[4]), r[5]) for r in rows]

    async def lead(self, lead_id: int) -> LeadRow | None:
        query = (
            sa.select(leads_t.c.id, campaigns_t.c.name, leads_t.c.email, leads_t.c.state, leads_t.c.soft_bounces, leads_t.c.current_step)
            .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
            .where(leads_t.c.id == lead_id)
        )
        r = await run_read(self.engine, lambda conn: conn.execute(query).first())
        return None if r is None else LeadRow(int(r[0]), r[1], r[2], LeadState(r[3]), int(r[4]), int(r[5]))

    async def apply_schedule(self, plan: SchedulePlan, now: datetime) -> list[tuple[PlannedSend, SendEmail]]:
        """Write one scheduler pass in one transaction: deferrals, ends, resumptions and the
        QUEUED rows (each lead taken off the schedule). Returns the sends that were queued;
        a (lead, step) row that exists and did not fail is left alone (a replay after a crash).
        """
        check_transition(LeadState.ACTIVE, LeadState.COMPLETED)
        check_transition(LeadState.ACTIVE, LeadState.STOPPED)
        check_transition(LeadState.PAUSED, LeadState.ACTIVE)

        def work(conn: Connection) -> list[tuple[PlannedSend, SendEmail]]:
            if plan.deferrals:
                conn.execute(
                    leads_t.update()
                    .where(leads_t.c.id == sa.bindparam("_id"))
                    .values(
                        next_action_at=sa.bindparam("_until", type_=leads_t.c.next_action_at.type),
                        state_reason=sa.bindparam("_why"),
                    ),
                    [{"_id": d.lead_id, "_until": d.until, "_why": d.why} for d in plan.deferrals],
                )
            for ids, state, why in (
                (plan.completed, LeadState.COMPLETED, "sequence completed with no reply"),
                (plan.suppressed, LeadState.STOPPED, "address suppressed"),
            ):
                for chunk in _chunks(ids):
                    conn.execute(
                        leads_t.update()
                        .where(leads_t.c.id.in_(chunk), leads_t.c.state == LeadState.ACTIVE.value)
                        .values(state=state.value, state_reason=why, next_action_at=None, updated_at=now)
                    )
            for chunk in _chunks(plan.resumed):
                conn.execute(
                    leads_t.update()
                    .where(leads_t.c.id.in_(chunk), leads_t.c.state == LeadState.PAUSED.value)
                    .values(
                        state=LeadState.ACTIVE.value,
                        state_reason="auto-reply return date reached",
                        next_action_at=now,
                        paused_until=None,
                        updated_at=now,
                    )
                )
            return self._queue_sends(conn, plan.sends, now) if plan.sends else []

        return await run_write(self.engine, work)

    def _queue_sends(
        self, conn: Connection, sends: Sequence[PlannedSend], now: datetime
    ) -> list[tuple[PlannedSend, SendEmail]]:
        lead_ids = [p.lead_id for p in sends]
        existing: dict[tuple[int, int], Any] = {}
        for chunk in _chunks(lead_ids):
            rows = conn.execute(
                sa.select(outbound_t.c.id, outbound_t.c.lead_id, outbound_t.c.step, outbound_t.c.status, outbound_t.c.mailbox)
                .where(outbound_t.c.lead_id.in_(chunk))
            )
            existing.update({(int(r.lead_id), int(r.step)): r for r in rows})
        fresh: list[PlannedSend] = []
        queued: list[tuple[PlannedSend, SendEmail]] = []
        for p in sends:
            row = existing.get((p.lead_id, p.step))
            if row is None:
                fresh.append(p)
            elif row.status == OutboundStatus.FAILED.value:
                # The step failed (a soft bounce, a 5xx): it goes out again, same Message-ID.
                conn.execute(
                    outbound_t.update()
                    .where(outbound_t.c.id == row.id, outbound_t.c.status == OutboundStatus.FAILED.value)
                    .values(status=OutboundStatus.QUEUED.value, attempts=0, queued_at=now, next_attempt_at=p.send_at)
                )
                queued.append((p, SendEmail(outbound_id=int(row.id), lead_id=p.lead_id, campaign=p.campaign, step=p.step, mailbox=row.mailbox)))
        if fresh:
            result = conn.execute(
                outbound_t.insert().returning(outbound_t.c.id, sort_by_parameter_order=True),
                [
                    {
                        "lead_id": p.lead_id,
                        "campaign_id": p.campaign_id,
                        "step": p.step,
                        "variant": p.variant,
                        "mailbox": p.mailbox,
                        "recipient": p.recipient,
                        "subject": "",
                        "status": OutboundStatus.QUEUED.value,
                        "attempts": 0,
                        "message_id": p.message_id,
                        "idempotency_key": f"{p.lead_id}:{p.step}",
                        "queued_at": now,
                        "next_attempt_at": p.send_at,
                    }
                    for p in fresh
                ],
            )
            for p, (outbound_id,) in zip(fresh, result.all(), strict=True):
                queued.append((p, SendEmail(outbound_id=int(outbound_id), lead_id=p.lead_id, campaign=p.campaign, step=p.step, mailbox=p.mailbox)))
        for chunk in _chunks(lead_ids):
            conn.execute(leads_t.update().where(leads_t.c.id.in_(chunk)).values(next_action_at=None, updated_at=now))
        return queued

    def _set_state(
        self, conn: Connection, lead_id: int, state: LeadState, why: str, now: datetime, **values: Any
    ) -> tuple[LeadState, LeadState] | None:
        current = conn.execute(sa.select(leads_t.c.state).where(leads_t.c.id == lead_id)).scalar_one_or_none()
        if current is None:
            return None
        old = LeadState(current)
        check_transition(old, state)
        conn.execute(
            leads_t.update().where(leads_t.c.id == lead_id).values(state=state.value, state_reason=why, updated_at=now, **values)
        )
        return (old, state) if old is not state else None

    async def apply_lead_decision(
        self, lead_id: int, d: LeadDecision, now: datetime, outbound_id: int | None
    ) -> tuple[LeadState, LeadState] | None:
        """Write what the lead rules decided, in one transaction."""

        def work(conn: Connection) -> tuple[LeadState, LeadState] | None:
            lead = conn.execute(sa.select(leads_t).where(leads_t.c.id == lead_id)).mappings().first()
            if lead is None:
                return None
            change = None
            values: dict[str, Any] = {}
            if d.stop_sequence:
                values["next_action_at"] = None
            if d.resume_at is not None:
                values["next_action_at"] = d.resume_at
                values["paused_until"] = d.resume_at
            if d.count_soft_bounce:
                values["soft_bounces"] = int(lead["soft_bounces"]) + 1
            if d.retry_step_at is not None and outbound_id is not None:
                step = conn.execute(sa.select(outbound_t.c.step).where(outbound_t.c.id == outbound_id)).scalar_one_or_none()
                if step is not None:
                    # The bounced step goes out again (same Message-ID: it is the same message).
                    conn.execute(
                        outbound_t.update().where(outbound_t.c.id == outbound_id).values(status=OutboundStatus.FAILED.value, last_error="soft bounce")
                    )
                    values["current_step"] = min(int(lead["current_step"]), int(step) - 1)
                    values["next_action_at"] = d.retry_step_at
            if d.new_state is not None:
                change = self._set_state(conn, lead_id, d.new_state, d.cause, now, **values)
            elif values:
                conn.execute(leads_t.update().where(leads_t.c.id == lead_id).values(updated_at=now, **values))
            if d.suppress:
                self._suppress(conn, lead["email"], d.suppress, f"lead {lead_id}", now)
            return change

        return await run_write(self.engine, work)

    async def stop_company_leads(self, lead_id: int, shared_domains: Iterable[str], now: datetime) -> int:
        """If the lead's campaign says so, stop the other leads with the same email domain."""
        shared = set(shared_domains)

        def work(conn: Connection) -> int:
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
                .values(state=LeadState.STOPPED.value, state_reason=f"a colleague replied (lead {lead_id})", next_action_at=None, updated_at=now)
            )
            return int(result.rowcount or 0)

        return await run_write(self.engine, work)

    # -- suppressions --------------------------------------------------------------------------
    def _suppress(self, conn: Connection, address: str, reason: str, source: str, now: datetime) -> bool:
        address = normalise_address(address)
        new = insert_ignore_in(conn, suppressions_t, [{"address": address, "reason": reason, "source": source, "created_at": now}], conflict_columns=["address"])
        # Every campaign stops writing to the address at once.
        conn.execute(
            leads_t.update()
            .where(leads_t.c.email == address, leads_t.c.state.in_([LeadState.ACTIVE.value, LeadState.PAUSED.value]))
            .values(state=LeadState.STOPPED.value, state_reason=f"suppressed: {reason}", next_action_at=None, updated_at=now)
        )
        return bool(new)

    async def suppress(self, address: str, reason: str, source: str, now: datetime) -> bool:
        return await run_write(self.engine, lambda conn: self._suppress(conn, address, reason, source, now))

    async def suppressed(self, addresses: Iterable[str]) -> set[str]:
        wanted = sorted({normalise_address(a) for a in addresses})

        def work(conn: Connection) -> set[str]:
            found: set[str] = set()
            for chunk in _chunks(wanted):
                found.update(conn.execute(sa.select(suppressions_t.c.address).where(suppressions_t.c.address.in_(chunk))).scalars())
            return found

        return await run_read(self.engine, work) if wanted else set()

    async def unsubscribe_lead(self, lead_id: int, now: datetime) -> bool:
        """One-click unsubscribe: suppress the lead's address everywhere. False: no such lead."""

        def work(conn: Connection) -> bool:
            row = conn.execute(sa.select(leads_t.c.email, leads_t.c.state).where(leads_t.c.id == lead_id)).first()
            if row is None:
                return False
            if LeadState(row.state) is not LeadState.UNSUBSCRIBED:
                self._set_state(conn, lead_id, LeadState.UNSUBSCRIBED, "one-click unsubscribe", now, next_action_at=None)
            self._suppress(conn, row.email, "unsubscribe link", f"lead {lead_id}", now)
            return True

        return await run_write(self.engine, work)

    # -- outbound ------------------------------------------------------------------------------
    async def queued_ready(self, now: datetime, limit: int, *, lost: bool = False, after: int = 0) -> list[SendEmail]:
        """QUEUED rows to hand to the sender again, by id above `after` (to page through them:
        rows handed on stay QUEUED until the sender claims them).

        Each tick: rows with a send time that has come (a retry after a temporary failure, a
        paced send), whose timer a process restart lost. With `lost` (at start-up): every
        QUEUED row that is due, since no SendEmail of an earlier process survived it.
        """
        due = outbound_t.c.next_attempt_at <= now
        when = sa.or_(outbound_t.c.next_attempt_at.is_(None), due) if lost else due
        query = (
            sa.select(outbound_t.c.id, outbound_t.c.lead_id, campaigns_t.c.name, outbound_t.c.step, outbound_t.c.mailbox)
            .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
            .where(outbound_t.c.status == OutboundStatus.QUEUED.value, outbound_t.c.id > after, when)
            .order_by(outbound_t.c.id)
            .limit(limit)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return [SendEmail(outbound_id=int(r[0]), lead_id=int(r[1]), campaign=r[2], step=int(r[3]), mailbox=r[4]) for r in rows]

    async def mark_interrupted_sends(self, now: datetime) -> int:
        """SENDING rows left by a process or incarnation that died mid-send -> UNCONFIRMED.

        The server may have them, so they are not sent again; and like any UNCONFIRMED send
        they count as sent for the sequence, so each lead moves on to its next step.
        """

        def work(conn: Connection) -> int:
            cut = conn.execute(
                outbound_t.update()
                .where(outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(
                    status=OutboundStatus.UNCONFIRMED.value,
                    last_error="interrupted mid-send (process stopped)",
                    sent_at=sa.func.coalesce(outbound_t.c.sending_at, now),
                )
                .returning(*_INTERRUPTED_RETURNS)
            ).all()
            for row in cut:
                self._advance_lead(conn, row.lead_id, row.step, self._campaign_spec(conn, row.campaign_id), now)
            return len(cut)

        return await run_write(self.engine, work)

    def _claim_statements(self) -> tuple[sa.Update, sa.Update]:
        """(claim, interrupted), both fenced by the lease: built once per fencing token."""
        fence = self.fence() if self.fence is not None else None
        cached = self._claim_cache
        if cached is None or cached[0] is not fence:
            extra = (fence,) if fence is not None else ()
            claim = outbound_t.update().where(*_CLAIM_WHERE, *extra).values(**_CLAIM_VALUES).returning(*_CLAIM_RETURNS)
            interrupted = (
                outbound_t.update().where(*_INTERRUPTED_WHERE, *extra).values(**_INTERRUPTED_VALUES).returning(*_INTERRUPTED_RETURNS)
            )
            self._claim_cache = cached = (fence, claim, interrupted)
        return cached[1], cached[2]

    async def claim_outbound(
        self, outbound_id: int, now: datetime, *, finish: Finished | None = None, window: WindowRule | None = None
    ) -> OutboundJob | Held | None:
        """QUEUED -> SENDING, committed before any byte goes out. None: not ours to send.

        First the last check, in the same transaction: a row whose lead is no longer ACTIVE
        (it replied, unsubscribed, bounced, paused on an auto-reply) or whose address is now
        suppressed is not sent (FAILED, with the reason); one whose campaign or mailbox is
        paused, or whose lead's send window is closed (a retry, or a row handed on again
        after a restart, comes due whenever), waits: `Held`.

        The claim is one conditional UPDATE (status, send time and the lease's fence in its
        WHERE clause), so two claimers can never both win. A row found SENDING instead was
        being sent when this sender's previous incarnation died: it becomes UNCONFIRMED
        (the server may have it) and is not sent again. `finish`: the previous send's
        outcome, committed in the same transaction (one commit per email instead of two).
        """
        claim, interrupted = self._claim_statements()

        def gate(conn: Connection, g: Any) -> Held | bool:
            """For a QUEUED row: True, claim it; False, cancelled; Held, wait."""
            if g.lead_state != LeadState.ACTIVE.value or g.suppressed is not None:
                why = "not sent: the address is suppressed" if g.suppressed is not None else f"not sent: the lead is {g.lead_state}"
                conn.execute(_CANCEL, {"_id": outbound_id, "_why": why})
                return False
            if g.campaign_status != "active" or g.mailbox_status == "paused":
                what = "campaign" if g.campaign_status != "active" else "mailbox"
                held = Held(now + PAUSED_HOLD, f"{what} paused")
                conn.execute(_HOLD, {"_id": outbound_id, "_until": held.until})
                return held
            if window is not None:
                opens = window(self._cached_spec(conn, g.name, g.spec_hash), g.timezone, now)
                if opens is not None:
                    conn.execute(_HOLD, {"_id": outbound_id, "_until": opens})
                    return Held(opens, "outside the send window")
            return True

        def work(conn: Connection) -> tuple[Any, Any, CampaignSpec, list[Any]] | Held | None:
            if finish is not None:
                self._finish(conn, finish)
            lead = conn.execute(_GATE, {"_id": outbound_id}).first()
            if lead is None:
                return None
            row = None
            if lead.status == OutboundStatus.QUEUED.value:
                go = gate(conn, lead)
                if go is not True:
                    return go if isinstance(go, Held) else None
                row = conn.execute(claim, {"_id": outbound_id, "_due": now, "_at": now}).first()
            if row is None:  # not due, fenced out, taken, or interrupted mid-send
                cut = conn.execute(interrupted, {"_id": outbound_id, "_at": now}).first()
                if cut is not None:
                    self._advance_lead(conn, cut.lead_id, cut.step, self._campaign_spec(conn, cut.campaign_id), now)
                return None
            spec = self._cached_spec(conn, lead.name, lead.spec_hash)
            previous = conn.execute(_JOB_THREAD, {"_lead": row.lead_id, "_step": row.step}).all() if int(row.step) > 1 else []
            return row, lead, spec, previous

        found = await run_write(self.engine, work)
        if found is None or isinstance(found, Held):
            return found
        row, lead, spec, previous = found
        box = next((m for m in spec.mailboxes if m.address.lower() == row.mailbox.lower()), None)
        fields = {k: v for k, v in (lead.variables or {}).items() if isinstance(k, str)}
        fields.update(
            {
                "email": lead.email,
                "first_name": lead.first_name or "",
                "last_name": lead.last_name or "",
                "company": lead.company or "",
                "timezone": lead.timezone or spec.timezone,
            }
        )
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or None
        first_subject = previous[0].subject if previous and previous[0].subject else ""
        if first_subject and not first_subject.lower().startswith("re:"):
            first_subject = f"Re: {first_subject}"
        return OutboundJob(
            outbound_id=outbound_id,
            lead_id=int(row.lead_id),
            campaign=lead.name,
            step=int(row.step),
            variant=row.variant or "A",
            mailbox=row.mailbox,
            display_name=box.display_name if box else None,
            transport=box.transport if box else "default",
            recipient=row.recipient,
            recipient_name=name,
            message_id=row.message_id,
            thread_ids=tuple(p.message_id for p in previous),
            first_subject=first_subject,
            attempts=int(row.attempts),
            spec=spec,
            lead_fields=fields,
        )

    def _cached_spec(self, conn: Connection, name: str, spec_hash: str) -> CampaignSpec:
        """The campaign's parsed spec; read from the database only when it changed."""
        cached = self._specs.get(name)
        if cached is not None and cached[0] == spec_hash:
            return cached[1]
        raw = conn.execute(sa.select(campaigns_t.c.spec).where(campaigns_t.c.name == name)).scalar_one()
        return self._spec(name, spec_hash, raw)

    async def finish_send(self, finished: Finished) -> None:
        """Commit one send's outcome (SENT or UNCONFIRMED) on its own."""
        await run_write(self.engine, lambda conn: self._finish(conn, finished))

    def _finish(self, conn: Connection, finished: Finished) -> None:
        """SENDING -> SENT (or UNCONFIRMED) and the lead's next step due.

        The lead moves on only while it is ACTIVE: a reply or an unsubscribe that arrived
        meanwhile has already decided its fate. UNCONFIRMED counts as sent for the sequence:
        the server may well have it.
        """
        job, at = finished.job, finished.at
        conn.execute(
            _FINISH_OUTBOUND,
            {"_id": job.outbound_id, "_status": finished.status.value, "_at": at, "_subject": finished.subject, "_error": finished.error},
        )
        self._advance_lead(conn, job.lead_id, job.step, job.spec, at)

    def _advance_lead(self, conn: Connection, lead_id: int, step: int, spec: CampaignSpec, at: datetime) -> None:
        """The step went out (or may have): the lead's next step is due after its delay,
        and after the last one the lead waits `COMPLETION_WAIT` for a reply. Only while it
        is ACTIVE: a reply or an unsubscribe that came meanwhile has already decided."""
        steps = spec.steps
        delay = timedelta(days=steps[step].delay_days) if step < len(steps) else COMPLETION_WAIT
        conn.execute(
            _FINISH_LEAD,
            {"_lead": lead_id, "_step": step, "_step_to": step, "_at": at, "_next": at + delay, "_updated": at},
        )

    def _campaign_spec(self, conn: Connection, campaign_id: int) -> CampaignSpec:
        row = conn.execute(sa.select(campaigns_t.c.name, campaigns_t.c.spec_hash).where(campaigns_t.c.id == campaign_id)).one()
        return self._cached_spec(conn, row.name, row.spec_hash)

    async def mark_retry(self, outbound_id: int, retry_at: datetime, detail: str, smtp_code: int | None) -> None:
        statement = (
            outbound_t.update()
            .where(outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
            .values(status=OutboundStatus.QUEUED.value, next_attempt_at=retry_at, last_error=detail, smtp_code=smtp_code)
        )
        await run_write(self.engine, lambda conn: conn.execute(statement))

    async def mark_failed(self, outbound_id: int, now: datetime, detail: str, smtp_code: int | None) -> None:
        def work(conn: Connection) -> None:
            row = conn.execute(sa.select(outbound_t.c.lead_id).where(outbound_t.c.id == outbound_id)).first()
            conn.execute(
                outbound_t.update()
                .where(outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(status=OutboundStatus.FAILED.value, last_error=detail, smtp_code=smtp_code)
            )
            if row is not None:
                # Try the step again tomorrow unless the follow-up rules end the lead first.
                conn.execute(
                    leads_t.update()
                    .where(leads_t.c.id == row.lead_id, leads_t.c.state == LeadState.ACTIVE.value)
                    .values(next_action_at=now + timedelta(days=1), updated_at=now)
                )

        await run_write(self.engine, work)

    async def mailbox_usage(self, mailbox: str, day_start: datetime, now: datetime) -> tuple[int, datetime | None]:
        sent = [OutboundStatus.SENDING.value, OutboundStatus.SENT.value, OutboundStatus.UNCONFIRMED.value]

        def work(conn: Connection) -> tuple[int, datetime | None]:
            count = conn.execute(
                sa.select(sa.func.count()).where(outbound_t.c.mailbox == mailbox, outbound_t.c.sent_at >= day_start, outbound_t.c.status.in_(sent))
            ).scalar_one()
            last = conn.execute(sa.select(sa.func.max(outbound_t.c.queued_at)).where(outbound_t.c.mailbox == mailbox)).scalar_one()
            return int(count), _aware(last)

        return await run_read(self.engine, work)

    async def outbound_mailbox(self, outbound_id: int) -> str | None:
        query = sa.select(outbound_t.c.mailbox).where(outbound_t.c.id == outbound_id)
        return await run_read(self.engine, lambda conn: conn.execute(query).scalar_one_or_none())

    # -- inbound -------------------------------------------------------------------------------
    async def inbox_cursor(self, inbox: str) -> tuple[int, int] | None:
        query = sa.select(cursors_t.c.uidvalidity, cursors_t.c.last_uid).where(cursors_t.c.mailbox == inbox)
        row = await run_read(self.engine, lambda conn: conn.execute(query).first())
        return None if row is None else (int(row[0]), int(row[1]))

    async def store_inbound(self, inbox: str, uidvalidity: int, batch: Sequence[FetchedMessage], now: datetime) -> list[int]:
        """Store each message once and move the cursor, in one transaction. Returns new row ids, ascending.

        A message whose Message-ID this inbox already holds (the same message under a new
        UIDVALIDITY, or delivered twice, in this batch too) is not stored again. One query
        finds the known ids of the whole batch and one multi-row insert stores the rest.
        """
        from email.parser import BytesHeaderParser
        from email.policy import compat32

        parser = BytesHeaderParser(policy=compat32)
        rows: list[dict[str, Any]] = []
        for m in batch:
            headers = parser.parsebytes(m.raw[:65536])
            rows.append(
                {
                    "mailbox": inbox,
                    "uidvalidity": uidvalidity,
                    "uid": m.uid,
                    "message_id": _clean_id(headers.get("Message-ID")),
                    "in_reply_to": _clean_id(headers.get("In-Reply-To")),
                    "references_header": str(headers.get("References") or "")[:4000],
                    "from_address": _address(headers.get("From")),
                    "subject": str(headers.get("Subject") or "")[:500],
                    "raw": m.raw,
                    "received_at": m.internal_date or now,
                    "stored_at": now,
                }
            )
        message_ids = list(dict.fromkeys(r["message_id"] for r in rows if r["message_id"]))
        last_uid = max((m.uid for m in batch), default=0)

        def work(conn: Connection) -> list[int]:
            seen: set[str] = set()
            for chunk in _chunks(message_ids):
                found = conn.execute(
                    sa.select(inbound_t.c.message_id).where(inbound_t.c.mailbox == inbox, inbound_t.c.message_id.in_(chunk))
                )
                seen.update(found.scalars())
            fresh: list[dict[str, Any]] = []
            for row in rows:
                message_id = row["message_id"]
                if message_id:
                    if message_id in seen:
                        continue
                    seen.add(message_id)
                fresh.append(row)
            inserted = insert_ignore_in(conn, inbound_t, fresh, conflict_columns=["mailbox", "uidvalidity", "uid"])
            moved = conn.execute(
                cursors_t.update().where(cursors_t.c.mailbox == inbox).values(uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
            )
            if moved.rowcount == 0:
                conn.execute(cursors_t.insert().values(mailbox=inbox, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now))
            # Rows are inserted in UID order, so ascending ids are UID order too.
            return sorted(int(r[0]) for r in inserted)

        return await run_write(self.engine, work)

    async def unclassified_inbound(self) -> list[tuple[int, str]]:
        query = sa.select(inbound_t.c.id, inbound_t.c.mailbox).where(inbound_t.c.processed_at.is_(None)).order_by(inbound_t.c.id)
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return [(int(r[0]), r[1]) for r in rows]

    async def unclassified_raw(self, from_id: int, limit: int) -> list[tuple[int, str, bytes]]:
        """(id, mailbox, raw) of up to `limit` unclassified messages with id >= `from_id`, ascending."""
        query = (
            sa.select(inbound_t.c.id, inbound_t.c.mailbox, inbound_t.c.raw)
            .where(inbound_t.c.id >= from_id, inbound_t.c.processed_at.is_(None))
            .order_by(inbound_t.c.id)
            .limit(limit)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return [(int(r[0]), r[1], bytes(r[2])) for r in rows]

    async def inbound_raw(self, inbound_id: int) -> bytes | None:
        query = sa.select(inbound_t.c.raw).where(inbound_t.c.id == inbound_id)
        raw = await run_read(self.engine, lambda conn: conn.execute(query).scalar_one_or_none())
        return bytes(raw) if raw is not None else None

    async def match_by_message_ids(self, ids: Sequence[str]) -> Match | None:
        return (await self.matches_by_message_ids([ids]))[0]

    async def matches_by_message_ids(self, id_lists: Sequence[Sequence[str]]) -> list[Match | None]:
        """For each list of Message-IDs, what we sent under the first one of ours (most specific first)."""
        wanted = list(dict.fromkeys(i for ids in id_lists for i in ids))

        def work(conn: Connection) -> dict[str, Any]:
            rows: dict[str, Any] = {}
            for chunk in _chunks(wanted):
                query = (
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id, outbound_t.c.message_id, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
                    .where(outbound_t.c.message_id.in_(chunk))
                )
                rows.update((r.message_id, r) for r in conn.execute(query))
            return rows

        rows = await run_read(self.engine, work) if wanted else {}
        found: list[Match | None] = []
        for ids in id_lists:
            r = next((rows[i] for i in ids if i in rows), None)
            found.append(None if r is None else Match(int(r.lead_id), r.name, int(r.id)))
        return found

    async def match_by_recipient(self, address: str) -> Match | None:
        return (await self.matches_by_recipient([address])).get(address)

    async def matches_by_recipient(self, addresses: Sequence[str]) -> dict[str, Match]:
        """For each address we wrote to, the latest email sent there (keyed by the address as given)."""
        by_normal: dict[str, list[str]] = {}
        for address in addresses:
            by_normal.setdefault(normalise_address(address), []).append(address)
        normals = list(by_normal)

        def work(conn: Connection) -> dict[str, Match]:
            latest: dict[str, Match] = {}
            for chunk in _chunks(normals):
                query = (
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id, outbound_t.c.recipient, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
                    .where(outbound_t.c.recipient.in_(chunk), outbound_t.c.sent_at.is_not(None))
                    .order_by(outbound_t.c.sent_at.desc(), outbound_t.c.id.desc())
                )
                for r in conn.execute(query):
                    latest.setdefault(r.recipient, Match(int(r.lead_id), r.name, int(r.id)))
            return latest

        latest = await run_read(self.engine, work) if normals else {}
        return {address: latest[normal] for normal, given in by_normal.items() if normal in latest for address in given}

    async def save_classification(self, inbound_id: int, c: Classification, match: Match | None, matched_by: str | None, now: datetime) -> bool:
        """Record how a message was read; False (and nothing changed) if it already was."""
        return bool(await self.save_classifications([(inbound_id, c, match, matched_by)], now))

    async def save_classifications(
        self, results: Sequence[tuple[int, Classification, Match | None, str | None]], now: datetime
    ) -> list[int]:
        """Record several classifications in one transaction; returns the ids that were still unclassified.

        A message classified already (handed on twice, say after a restart) is left as it was,
        so whoever acts on the result acts once.
        """
        if not results:
            return []
        ids = [r[0] for r in results]

        def work(conn: Connection) -> list[int]:
            pending: set[int] = set()
            for chunk in _chunks(ids):
                query = (
                    sa.select(inbound_t.c.id)
                    .where(inbound_t.c.id.in_(chunk), inbound_t.c.processed_at.is_(None))
                    .with_for_update()
                )
                pending.update(int(i) for i in conn.execute(query).scalars())
            params: list[dict[str, Any]] = []
            for inbound_id, c, match, matched_by in results:
                if inbound_id not in pending:
                    continue
                pending.discard(inbound_id)  # the first result of a message given twice wins
                params.append(
                    {
                        "b_id": inbound_id,
                        "b_category": c.category.value,
                        "b_reason": c.reason,
                        "b_confidence": c.confidence,
                        "b_classification": json.loads(c.model_dump_json()),
                        "b_lead_id": match.lead_id if match else None,
                        "b_outbound_id": match.outbound_id if match else None,
                        "b_matched_by": matched_by,
                    }
                )
            if params:
                columns = inbound_t.c
                conn.execute(
                    inbound_t.update()
                    .where(columns.id == sa.bindparam("b_id"), columns.processed_at.is_(None))
                    .values(
                        category=sa.bindparam("b_category", type_=columns.category.type),
                        reason=sa.bindparam("b_reason", type_=columns.reason.type),
                        confidence=sa.bindparam("b_confidence", type_=columns.confidence.type),
                        classification=sa.bindparam("b_classification", type_=columns.classification.type),
                        lead_id=sa.bindparam("b_lead_id", type_=columns.lead_id.type),
                        outbound_id=sa.bindparam("b_outbound_id", type_=columns.outbound_id.type),
                        matched_by=sa.bindparam("b_matched_by", type_=columns.matched_by.type),
                        processed_at=now,
                    ),
                    params,
                )
            return [p["b_id"] for p in params]

        return await run_write(self.engine, work)

    async def unmatched_inbound(self, limit: int) -> list[dict[str, Any]]:
        query = (
            sa.select(
                inbound_t.c.id, inbound_t.c.mailbox, inbound_t.c.from_address, inbound_t.c.subject,
                inbound_t.c.category, inbound_t.c.received_at, inbound_t.c.message_id,
            )
            .where(inbound_t.c.lead_id.is_(None), inbound_t.c.processed_at.is_not(None))
            .order_by(inbound_t.c.id.desc())
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    async def alert_texts(self, inbound_id: int) -> tuple[str, str]:
        from aicmo_actors.cam.classify import strip_quoted
        from aicmo_actors.cam.classify.parse import body_text

        query = sa.select(inbound_t.c.raw, inbound_t.c.from_address, inbound_t.c.subject, inbound_t.c.category).where(
            inbound_t.c.id == inbound_id
        )
        row = await run_read(self.engine, lambda conn: conn.execute(query).first())
        text = strip_quoted(body_text(bytes(row.raw) if row and row.raw is not None else b"")).strip()
        who = row.from_address if row else "someone"
        snippet = " ".join(text.split())[:200]
        summary = f"{(row.category if row else 'reply')} reply from {who}: \"{snippet}\""
        return summary, text[:4000]

    # -- alerts ----------------------------------------------------------------------------------
    async def create_alert(self, request: AlertRequested, now: datetime) -> AlertRow | None:
        payload = {
            "campaign": request.campaign,
            "lead_id": request.lead_id,
            "category": request.category.value if request.category else None,
            "summary": request.summary,
            "text": request.text,
            "channels_done": [],
        }
        row = {
            "idempotency_key": request.idempotency_key,
            "kind": request.kind,
            "lead_id": request.lead_id,
            "campaign": request.campaign,
            "inbound_id": request.inbound_id,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "created_at": now,
        }

        def work(conn: Connection) -> AlertRow | None:
            insert_ignore_in(conn, alerts_t, [row], conflict_columns=["idempotency_key"])
            alert_id = conn.execute(sa.select(alerts_t.c.id).where(alerts_t.c.idempotency_key == request.idempotency_key)).scalar_one()
            return self._alert(conn, int(alert_id))

        return await run_write(self.engine, work)

    async def alert(self, alert_id: int) -> AlertRow | None:
        return await run_read(self.engine, lambda conn: self._alert(conn, alert_id))

    def _alert(self, conn: Connection, alert_id: int) -> AlertRow | None:
        r = conn.execute(sa.select(alerts_t).where(alerts_t.c.id == alert_id)).mappings().first()
        if r is None:
            return None
        lead = None
        if r["lead_id"] is not None:
            l_row = conn.execute(
                sa.select(leads_t.c.email, leads_t.c.first_name, leads_t.c.last_name, leads_t.c.company).where(leads_t.c.id == r["lead_id"])
            ).first()
            if l_row is not None:
                name = " ".join(p for p in (l_row.first_name, l_row.last_name) if p)
                lead = f"{name} <{l_row.email}>" if name else l_row.email
                if l_row.company:
                    lead += f" ({l_row.company})"
        payload = r["payload"] or {}
        return AlertRow(
            alert_id=int(r["id"]),
            idempotency_key=r["idempotency_key"],
            kind=r["kind"],
            state=r["state"],
            attempts=int(r["attempts"]),
            campaign=r["campaign"],
            lead_id=r["lead_id"],
            lead=lead,
            category=payload.get("category"),
            summary=payload.get("summary", ""),
            text=payload.get("text", ""),
            channels_done=tuple(payload.get("channels_done", [])),
            created_at=_aware(r["created_at"]) or r["created_at"],
        )

    async def pending_alert_ids(self) -> list[int]:
        query = sa.select(alerts_t.c.id).where(alerts_t.c.state == "pending").order_by(alerts_t.c.id)
        return await run_read(self.engine, lambda conn: [int(i) for i in conn.execute(query).scalars()])

    def _alert_channels(self, conn: Connection, alert_id: int, channels: Sequence[str] | None) -> dict[str, Any]:
        payload = conn.execute(sa.select(alerts_t.c.payload).where(alerts_t.c.id == alert_id)).scalar_one()
        payload = dict(payload or {})
        if channels is not None:
            payload["channels_done"] = list(channels)
        return payload

    async def finish_alert(self, alert_id: int, state: str, now: datetime, error: str | None, channels: Sequence[str] | None = None) -> None:
        def work(conn: Connection) -> None:
            payload = self._alert_channels(conn, alert_id, channels)
            conn.execute(
                alerts_t.update()
                .where(alerts_t.c.id == alert_id)
                .values(state=state, last_error=error, payload=payload, delivered_at=now if state == "delivered" else None)
            )

        await run_write(self.engine, work)

    async def retry_alert(self, alert_id: int, attempts: int, error: str, channels: Sequence[str]) -> None:
        def work(conn: Connection) -> None:
            payload = self._alert_channels(conn, alert_id, channels)
            conn.execute(alerts_t.update().where(alerts_t.c.id == alert_id).values(attempts=attempts, last_error=error, payload=payload))

        await run_write(self.engine, work)

    # -- metrics ----------------------------------------------------------------------------------
    async def campaign_counters(self) -> dict[str, tuple[int, int, int]]:
        """Per campaign: (sent, hard bounces, complaints) since its last pause or resume."""

        def work(conn: Connection) -> dict[str, tuple[int, int, int]]:
            out: dict[str, tuple[int, int, int]] = {}
            for row in conn.execute(sa.select(campaigns_t.c.id, campaigns_t.c.name, campaigns_t.c.paused_at, campaigns_t.c.resumed_at)):
                marks = [d for d in (_aware(row.paused_at), _aware(row.resumed_at)) if d is not None]
                since = max(marks) if marks else EPOCH
                sent = conn.execute(
                    sa.select(sa.func.count()).where(
                        outbound_t.c.campaign_id == row.id,
                        outbound_t.c.status.in_([OutboundStatus.SENT.value]),
                        outbound_t.c.sent_at >= since,
                    )
                ).scalar_one()
                by_cat = dict(
                    conn.execute(
                        sa.select(inbound_t.c.category, sa.func.count())
                        .join(outbound_t, outbound_t.c.id == inbound_t.c.outbound_id)
                        .where(outbound_t.c.campaign_id == row.id, inbound_t.c.processed_at >= since)
                        .group_by(inbound_t.c.category)
                    ).all()
                )
                hard_at_send = conn.execute(
                    sa.select(sa.func.count()).where(
                        outbound_t.c.campaign_id == row.id,
                        outbound_t.c.status == OutboundStatus.FAILED.value,
                        outbound_t.c.last_error.like("5%"),
                        outbound_t.c.queued_at >= since,
                    )
                ).scalar_one()
                out[row.name] = (int(sent), int(by_cat.get("bounce_hard", 0)) + int(hard_at_send), int(by_cat.get("complaint", 0)))
            return out

        return await run_read(self.engine, work)

    async def sending_side_rejections(self, since: datetime) -> dict[str, list[datetime]]:
        query = (
            sa.select(outbound_t.c.mailbox, inbound_t.c.processed_at, inbound_t.c.classification)
            .join(outbound_t, outbound_t.c.id == inbound_t.c.outbound_id)
            .where(inbound_t.c.processed_at >= since, inbound_t.c.category.in_(["bounce_soft", "bounce_hard"]))
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        out: dict[str, list[datetime]] = {}
        for mailbox, at, classification in rows:
            if (classification or {}).get("sending_side"):
                out.setdefault(mailbox, []).append(_aware(at) or at)
        return out

    async def funnel(self, campaign: str) -> dict[str, Any]:
        """`campaign status`: leads by state, emails by status, replies by category."""
        row = (await self.campaigns()).get(campaign)
        if row is None:
            raise KeyError(campaign)
        cid = row.campaign_id

        def counts(conn: Connection, query: sa.Select[Any]) -> dict[Any, int]:
            return {k: int(v) for k, v in conn.execute(query).all()}

        def work(conn: Connection) -> dict[str, dict[Any, int]]:
            return {
                "leads": counts(conn, sa.select(leads_t.c.state, sa.func.count()).where(leads_t.c.campaign_id == cid).group_by(leads_t.c.state)),
                "emails": counts(conn, sa.select(outbound_t.c.status, sa.func.count()).where(outbound_t.c.campaign_id == cid).group_by(outbound_t.c.status)),
                "sent_by_step": counts(
                    conn,
                    sa.select(outbound_t.c.step, sa.func.count())
                    .where(outbound_t.c.campaign_id == cid, outbound_t.c.status == OutboundStatus.SENT.value)
                    .group_by(outbound_t.c.step),
                ),
                "replies": counts(
                    conn,
                    sa.select(inbound_t.c.category, sa.func.count())
                    .join(leads_t, leads_t.c.id == inbound_t.c.lead_id)
                    .where(leads_t.c.campaign_id == cid)
                    .group_by(inbound_t.c.category),
                ),
                "alerts": counts(conn, sa.select(alerts_t.c.state, sa.func.count()).where(alerts_t.c.campaign == campaign).group_by(alerts_t.c.state)),
            }

        found = await run_read(self.engine, work)
        return {
            "campaign": campaign,
            "status": row.status,
            "paused_reason": row.paused_reason,
            "leads": {str(k): v for k, v in found["leads"].items()},
            "emails": {str(k): v for k, v in found["emails"].items()},
            "sent_by_step": {int(k): v for k, v in found["sent_by_step"].items()},
            "replies": {str(k): v for k, v in found["replies"].items()},
            "alerts": {str(k): v for k, v in found["alerts"].items()},
        }

    # -- cycle reports ------------------------------------------------------------------------------
    async def save_cycle_report(self, report: CycleReport, now: datetime) -> None:
        statement = reports_t.insert().values(
            tick_seq=report.tick_seq,
            worker=report.step,
            started_at=now,
            finished_at=now,
            duration_ms=report.duration_ms,
            counts=dict(report.counts),
            errors=list(report.errors),
        )
        await run_write(self.engine, lambda conn: conn.execute(statement))

def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """`items` in slices small enough for one IN (...) list on every backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _clean_id(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    start, end = text.find("<"), text.find(">")
    if start != -1 and end > start:
        return text[start : end + 1]
    return f"<{text.split()[0]}>"


def _address(value: object) -> str | None:
    from email.utils import parseaddr

    if value is None:
        return None
    return normalise_address(parseaddr(str(value))[1]) or None


def stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
