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
from aicmo_actors.cam.repos.sql import aware, chunks, normalise_address, param
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import run_read, run_write
from contracts.cam import LeadState

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


class LeadsRepo:
    def __init__(self, engine: AsyncEngine, campaigns: CampaignsRepo) -> None:
        self.engine = engine
        self.campaigns = campaigns

    async def import_rows(self, campaign: str, rows: Sequence[dict[str, Any]], now: datetime) -> tuple[int, int, int]:
        """Insert leads (idempotent on campaign + address). Returns (new, existing, suppressed)."""
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

        def work(conn: Connection) -> int:
            return sum(
                len(insert_ignore_in(conn, leads_t, chunk, conflict_columns=["campaign_id", "email"]))
                for chunk in chunks(fresh)
            )

        new = await run_write(self.engine, work)
        return new, len(fresh) - new, len(rows) - len(fresh)

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

    async def suppress(self, address: str, reason: str, source: str, now: datetime) -> bool:
        return await run_write(self.engine, lambda conn: suppress_in(conn, address, reason, source, now))

    async def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of these addresses are suppressed (as normalised addresses)."""
        wanted = sorted({normalise_address(a) for a in addresses})

        def work(conn: Connection) -> set[str]:
            found: set[str] = set()
            for chunk in chunks(wanted):
                found.update(
                    conn.execute(
                        sa.select(suppressions_t.c.address).where(suppressions_t.c.address.in_(chunk))
                    ).scalars()
                )
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
