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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aicmo_actors.cam import tables as cam_tables
from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.lead_rules import LeadDecision, check_transition
from aicmo_actors.gateways.inbox_source import FetchedMessage
from aicmo_actors.storage.insert import insert_ignore, insert_ignore_returning
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
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(campaigns_t.c.id, campaigns_t.c.spec_hash).where(campaigns_t.c.name == spec.name))).first()
            if row is None:
                result = await conn.execute(
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
                await conn.execute(
                    campaigns_t.update()
                    .where(campaigns_t.c.id == campaign_id)
                    .values(spec=spec_json, spec_hash=spec_hash, stop_company_on_reply=spec.stop_company_on_reply, updated_at=now)
                )
                await conn.execute(steps_t.delete().where(steps_t.c.campaign_id == campaign_id))
            for index, step in enumerate(spec.steps, start=1):
                await conn.execute(
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
            for mailbox in spec.mailboxes:
                await insert_ignore(conn, mailboxes_t, [{"address": mailbox.address.lower(), "status": "active", "created_at": now}], conflict_columns=["address"])
        return campaign_id, created

    async def campaigns(self) -> dict[str, CampaignRow]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(campaigns_t))).mappings().all()
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
        async with self.engine.begin() as conn:
            result = await conn.execute(campaigns_t.update().where(campaigns_t.c.name == name).values(**values))
        return bool(result.rowcount)

    async def pause_campaign(self, name: str, reason: str, now: datetime) -> bool:
        """Pause an active campaign; False if it was paused already (or does not exist)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                campaigns_t.update()
                .where(campaigns_t.c.name == name, campaigns_t.c.status == "active")
                .values(status="paused", paused_reason=reason, paused_at=now, updated_at=now)
            )
        return bool(result.rowcount)

    async def pause_mailbox(self, address: str, reason: str, now: datetime) -> bool:
        address = address.lower()
        async with self.engine.begin() as conn:
            await insert_ignore(conn, mailboxes_t, [{"address": address, "status": "active", "created_at": now}], conflict_columns=["address"])
            result = await conn.execute(
                mailboxes_t.update()
                .where(mailboxes_t.c.address == address, mailboxes_t.c.status == "active")
                .values(status="paused", paused_reason=reason, paused_at=now)
            )
        return bool(result.rowcount)

    async def resume_mailbox(self, address: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                mailboxes_t.update()
                .where(mailboxes_t.c.address == address.lower())
                .values(status="active", paused_reason=None, paused_at=None)
            )
        return bool(result.rowcount)

    async def paused_mailboxes(self) -> set[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(mailboxes_t.c.address).where(mailboxes_t.c.status == "paused"))
            return {r.address for r in rows}

    async def mailbox_rows(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(sa.select(mailboxes_t).order_by(mailboxes_t.c.address))).mappings()]

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
        new = 0
        async with self.engine.begin() as conn:
            for start in range(0, len(fresh), 500):
                new += await insert_ignore(conn, leads_t, fresh[start : start + 500], conflict_columns=["campaign_id", "email"])
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
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [DueLead(int(r[0]), r[1], r[2], LeadState(r[3]), int(r[4]), r[5]) for r in rows]

    async def lead(self, lead_id: int) -> LeadRow | None:
        query = (
            sa.select(leads_t.c.id, campaigns_t.c.name, leads_t.c.email, leads_t.c.state, leads_t.c.soft_bounces, leads_t.c.current_step)
            .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
            .where(leads_t.c.id == lead_id)
        )
        async with self.engine.connect() as conn:
            r = (await conn.execute(query)).first()
        return None if r is None else LeadRow(int(r[0]), r[1], r[2], LeadState(r[3]), int(r[4]), int(r[5]))

    async def defer_lead(self, lead_id: int, until: datetime | None, why: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(leads_t.update().where(leads_t.c.id == lead_id).values(next_action_at=until, state_reason=why))

    async def stop_lead(self, lead_id: int, state: LeadState, why: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await self._set_state(conn, lead_id, state, why, now, next_action_at=None)

    async def resume_lead(self, lead_id: int, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await self._set_state(conn, lead_id, LeadState.ACTIVE, "auto-reply return date reached", now, next_action_at=now, paused_until=None)

    async def _set_state(
        self, conn: AsyncConnection, lead_id: int, state: LeadState, why: str, now: datetime, **values: Any
    ) -> tuple[LeadState, LeadState] | None:
        current = (await conn.execute(sa.select(leads_t.c.state).where(leads_t.c.id == lead_id))).scalar_one_or_none()
        if current is None:
            return None
        old = LeadState(current)
        check_transition(old, state)
        await conn.execute(
            leads_t.update().where(leads_t.c.id == lead_id).values(state=state.value, state_reason=why, updated_at=now, **values)
        )
        return (old, state) if old is not state else None

    async def apply_lead_decision(
        self, lead_id: int, d: LeadDecision, now: datetime, outbound_id: int | None
    ) -> tuple[LeadState, LeadState] | None:
        """Write what the lead rules decided, in one transaction."""
        change = None
        async with self.engine.begin() as conn:
            lead = (await conn.execute(sa.select(leads_t).where(leads_t.c.id == lead_id))).mappings().first()
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
            if d.retry_step_at is not None and outbound_id is not None:
                step = (await conn.execute(sa.select(outbound_t.c.step).where(outbound_t.c.id == outbound_id))).scalar_one_or_none()
                if step is not None:
                    # The bounced step goes out again (same Message-ID: it is the same message).
                    await conn.execute(
                        outbound_t.update().where(outbound_t.c.id == outbound_id).values(status=OutboundStatus.FAILED.value, last_error="soft bounce")
                    )
                    values["current_step"] = min(int(lead["current_step"]), int(step) - 1)
                    values["next_action_at"] = d.retry_step_at
            if d.new_state is not None:
                change = await self._set_state(conn, lead_id, d.new_state, d.cause, now, **values)
            elif values:
                await conn.execute(leads_t.update().where(leads_t.c.id == lead_id).values(updated_at=now, **values))
            if d.suppress:
                await self._suppress(conn, lead["email"], d.suppress, f"lead {lead_id}", now)
        return change

    async def stop_company_leads(self, lead_id: int, shared_domains: Iterable[str], now: datetime) -> int:
        """If the lead's campaign says so, stop the other leads with the same email domain."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(leads_t.c.campaign_id, leads_t.c.email_domain, campaigns_t.c.stop_company_on_reply)
                    .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                    .where(leads_t.c.id == lead_id)
                )
            ).first()
            if row is None or not row.stop_company_on_reply or row.email_domain in set(shared_domains):
                return 0
            result = await conn.execute(
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

    # -- suppressions --------------------------------------------------------------------------
    async def _suppress(self, conn: AsyncConnection, address: str, reason: str, source: str, now: datetime) -> bool:
        address = normalise_address(address)
        new = await insert_ignore(conn, suppressions_t, [{"address": address, "reason": reason, "source": source, "created_at": now}], conflict_columns=["address"])
        # Every campaign stops writing to the address at once.
        await conn.execute(
            leads_t.update()
            .where(leads_t.c.email == address, leads_t.c.state.in_([LeadState.ACTIVE.value, LeadState.PAUSED.value]))
            .values(state=LeadState.STOPPED.value, state_reason=f"suppressed: {reason}", next_action_at=None, updated_at=now)
        )
        return bool(new)

    async def suppress(self, address: str, reason: str, source: str, now: datetime) -> bool:
        async with self.engine.begin() as conn:
            return await self._suppress(conn, address, reason, source, now)

    async def suppressed(self, addresses: Iterable[str]) -> set[str]:
        wanted = sorted({normalise_address(a) for a in addresses})
        found: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = await conn.execute(sa.select(suppressions_t.c.address).where(suppressions_t.c.address.in_(chunk)))
                found.update(r.address for r in rows)
        return found

    async def unsubscribe_lead(self, lead_id: int, now: datetime) -> bool:
        """One-click unsubscribe: suppress the lead's address everywhere. False: no such lead."""
        async with self.engine.begin() as conn:
            email = (await conn.execute(sa.select(leads_t.c.email).where(leads_t.c.id == lead_id))).scalar_one_or_none()
            if email is None:
                return False
            state = (await conn.execute(sa.select(leads_t.c.state).where(leads_t.c.id == lead_id))).scalar_one()
            if LeadState(state) is not LeadState.UNSUBSCRIBED:
                await self._set_state(conn, lead_id, LeadState.UNSUBSCRIBED, "one-click unsubscribe", now, next_action_at=None)
            await self._suppress(conn, email, "unsubscribe link", f"lead {lead_id}", now)
        return True

    # -- outbound ------------------------------------------------------------------------------
    async def queue_step(
        self,
        *,
        lead_id: int,
        campaign_id: int,
        campaign: str,
        step: int,
        variant: str,
        mailbox: str,
        recipient: str,
        message_id: str,
        now: datetime,
        send_at: datetime | None = None,
    ) -> SendEmail | None:
        """QUEUED row for (lead, step) and the lead taken off the schedule, in one transaction.

        `send_at`: not before then (the mailbox's paced slot). Returns None when the row
        exists and is not a failed one to send again.
        """
        async with self.engine.begin() as conn:
            existing = (
                await conn.execute(
                    sa.select(outbound_t.c.id, outbound_t.c.status, outbound_t.c.mailbox).where(
                        outbound_t.c.lead_id == lead_id, outbound_t.c.step == step
                    )
                )
            ).first()
            if existing is None:
                result = await conn.execute(
                    outbound_t.insert().values(
                        lead_id=lead_id,
                        campaign_id=campaign_id,
                        step=step,
                        variant=variant,
                        mailbox=mailbox,
                        recipient=recipient,
                        subject="",
                        status=OutboundStatus.QUEUED.value,
                        attempts=0,
                        message_id=message_id,
                        idempotency_key=f"{lead_id}:{step}",
                        queued_at=now,
                        next_attempt_at=send_at,
                    )
                )
                outbound_id = int(result.inserted_primary_key[0])
            elif existing.status == OutboundStatus.FAILED.value:
                outbound_id = int(existing.id)
                mailbox = existing.mailbox
                await conn.execute(
                    outbound_t.update()
                    .where(outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.FAILED.value)
                    .values(status=OutboundStatus.QUEUED.value, attempts=0, queued_at=now, next_attempt_at=send_at)
                )
            else:
                await conn.execute(leads_t.update().where(leads_t.c.id == lead_id).values(next_action_at=None))
                return None
            await conn.execute(leads_t.update().where(leads_t.c.id == lead_id).values(next_action_at=None, updated_at=now))
        return SendEmail(outbound_id=outbound_id, lead_id=lead_id, campaign=campaign, step=step, mailbox=mailbox)

    async def queued_ready(self, now: datetime, limit: int) -> list[SendEmail]:
        """QUEUED rows whose retry time has come (or that lost their SendEmail in a crash)."""
        query = (
            sa.select(outbound_t.c.id, outbound_t.c.lead_id, campaigns_t.c.name, outbound_t.c.step, outbound_t.c.mailbox)
            .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
            .where(
                outbound_t.c.status == OutboundStatus.QUEUED.value,
                sa.or_(outbound_t.c.next_attempt_at.is_(None), outbound_t.c.next_attempt_at <= now),
                outbound_t.c.queued_at < now,
            )
            .order_by(outbound_t.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [SendEmail(outbound_id=int(r[0]), lead_id=int(r[1]), campaign=r[2], step=int(r[3]), mailbox=r[4]) for r in rows]

    async def mark_interrupted_sends(self, now: datetime) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                outbound_t.update()
                .where(outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(status=OutboundStatus.UNCONFIRMED.value, last_error="interrupted mid-send (process stopped)")
            )
        return int(result.rowcount or 0)

    async def claim_outbound(self, outbound_id: int, now: datetime) -> OutboundJob | None:
        """QUEUED -> SENDING, committed before any byte goes out. None: not ours to send."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(outbound_t).where(outbound_t.c.id == outbound_id))).mappings().first()
            if row is None:
                return None
            if row["status"] == OutboundStatus.SENDING.value:
                # We send one message at a time: a SENDING row we see here was interrupted.
                await conn.execute(
                    outbound_t.update().where(outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
                    .values(status=OutboundStatus.UNCONFIRMED.value, last_error="interrupted mid-send (actor restarted)")
                )
                return None
            next_attempt = _aware(row["next_attempt_at"])
            if row["status"] != OutboundStatus.QUEUED.value or (next_attempt is not None and next_attempt > now):
                return None
            condition = [outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.QUEUED.value]
            if self.fence is not None:
                condition.append(self.fence())
            claimed = await conn.execute(
                outbound_t.update()
                .where(*condition)
                .values(status=OutboundStatus.SENDING.value, sending_at=now, attempts=outbound_t.c.attempts + 1)
            )
            if not claimed.rowcount:
                return None
            lead = (
                await conn.execute(
                    sa.select(leads_t, campaigns_t.c.name.label("campaign_name"), campaigns_t.c.spec, campaigns_t.c.spec_hash)
                    .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                    .where(leads_t.c.id == row["lead_id"])
                )
            ).mappings().one()
            previous = (
                await conn.execute(
                    sa.select(outbound_t.c.message_id, outbound_t.c.subject)
                    .where(
                        outbound_t.c.lead_id == row["lead_id"],
                        outbound_t.c.step < row["step"],
                        outbound_t.c.status.in_([OutboundStatus.SENT.value, OutboundStatus.UNCONFIRMED.value]),
                    )
                    .order_by(outbound_t.c.step)
                )
            ).all()
        spec = self._spec(lead["campaign_name"], lead["spec_hash"], lead["spec"])
        box = next((m for m in spec.mailboxes if m.address.lower() == row["mailbox"].lower()), None)
        fields = {k: v for k, v in (lead["variables"] or {}).items() if isinstance(k, str)}
        fields.update(
            {
                "email": lead["email"],
                "first_name": lead["first_name"] or "",
                "last_name": lead["last_name"] or "",
                "company": lead["company"] or "",
                "timezone": lead["timezone"] or spec.timezone,
            }
        )
        name = " ".join(p for p in (lead["first_name"], lead["last_name"]) if p) or None
        first_subject = previous[0].subject if previous and previous[0].subject else ""
        if first_subject and not first_subject.lower().startswith("re:"):
            first_subject = f"Re: {first_subject}"
        return OutboundJob(
            outbound_id=outbound_id,
            lead_id=int(row["lead_id"]),
            campaign=lead["campaign_name"],
            step=int(row["step"]),
            variant=row["variant"] or "A",
            mailbox=row["mailbox"],
            display_name=box.display_name if box else None,
            transport=box.transport if box else "default",
            recipient=row["recipient"],
            recipient_name=name,
            message_id=row["message_id"],
            thread_ids=tuple(p.message_id for p in previous),
            first_subject=first_subject,
            attempts=int(row["attempts"]) + 1,
            spec=spec,
            lead_fields=fields,
        )

    async def mark_sent(self, outbound_id: int, now: datetime, subject: str) -> None:
        await self._finish_send(outbound_id, OutboundStatus.SENT, now, subject=subject, last_error=None)

    async def mark_unconfirmed(self, outbound_id: int, now: datetime, detail: str) -> None:
        # The server may well have it: the sequence goes on as if it was sent.
        await self._finish_send(outbound_id, OutboundStatus.UNCONFIRMED, now, last_error=detail)

    async def _finish_send(self, outbound_id: int, status: OutboundStatus, now: datetime, **values: Any) -> None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(outbound_t.c.lead_id, outbound_t.c.step).where(outbound_t.c.id == outbound_id))).first()
            await conn.execute(
                outbound_t.update()
                .where(outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(status=status.value, sent_at=now, **values)
            )
            if row is None:
                return
            lead = (await conn.execute(sa.select(leads_t.c.state, leads_t.c.campaign_id, leads_t.c.current_step).where(leads_t.c.id == row.lead_id))).first()
            if lead is None or LeadState(lead.state) is not LeadState.ACTIVE:
                return  # a reply or an unsubscribe arrived meanwhile: it already decided
            next_step = int(row.step) + 1
            delay = (
                await conn.execute(
                    sa.select(steps_t.c.delay_days).where(steps_t.c.campaign_id == lead.campaign_id, steps_t.c.step == next_step)
                )
            ).scalar_one_or_none()
            next_at = now + (timedelta(days=float(delay)) if delay is not None else COMPLETION_WAIT)
            await conn.execute(
                leads_t.update()
                .where(leads_t.c.id == row.lead_id)
                .values(current_step=max(int(lead.current_step), int(row.step)), last_sent_at=now, next_action_at=next_at, updated_at=now)
            )

    async def mark_retry(self, outbound_id: int, retry_at: datetime, detail: str, smtp_code: int | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                outbound_t.update()
                .where(outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(status=OutboundStatus.QUEUED.value, next_attempt_at=retry_at, last_error=detail, smtp_code=smtp_code)
            )

    async def mark_failed(self, outbound_id: int, now: datetime, detail: str, smtp_code: int | None) -> None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(outbound_t.c.lead_id).where(outbound_t.c.id == outbound_id))).first()
            await conn.execute(
                outbound_t.update()
                .where(outbound_t.c.id == outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(status=OutboundStatus.FAILED.value, last_error=detail, smtp_code=smtp_code)
            )
            if row is not None:
                # Try the step again tomorrow unless the follow-up rules end the lead first.
                await conn.execute(
                    leads_t.update()
                    .where(leads_t.c.id == row.lead_id, leads_t.c.state == LeadState.ACTIVE.value)
                    .values(next_action_at=now + timedelta(days=1), updated_at=now)
                )

    async def mailbox_usage(self, mailbox: str, day_start: datetime, now: datetime) -> tuple[int, datetime | None]:
        sent = [OutboundStatus.SENDING.value, OutboundStatus.SENT.value, OutboundStatus.UNCONFIRMED.value]
        async with self.engine.connect() as conn:
            count = (
                await conn.execute(
                    sa.select(sa.func.count()).where(outbound_t.c.mailbox == mailbox, outbound_t.c.sent_at >= day_start, outbound_t.c.status.in_(sent))
                )
            ).scalar_one()
            last = (await conn.execute(sa.select(sa.func.max(outbound_t.c.queued_at)).where(outbound_t.c.mailbox == mailbox))).scalar_one()
        return int(count), _aware(last)

    async def outbound_mailbox(self, outbound_id: int) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(outbound_t.c.mailbox).where(outbound_t.c.id == outbound_id))).scalar_one_or_none()

    # -- inbound -------------------------------------------------------------------------------
    async def inbox_cursor(self, inbox: str) -> tuple[int, int] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(cursors_t.c.uidvalidity, cursors_t.c.last_uid).where(cursors_t.c.mailbox == inbox))).first()
        return None if row is None else (int(row[0]), int(row[1]))

    async def store_inbound(self, inbox: str, uidvalidity: int, batch: Sequence[FetchedMessage], now: datetime) -> list[int]:
        """Store each message once and move the cursor, in one transaction. Returns new row ids."""
        from email.parser import BytesHeaderParser
        from email.policy import compat32

        new_ids: list[int] = []
        async with self.engine.begin() as conn:
            for m in batch:
                headers = BytesHeaderParser(policy=compat32).parsebytes(m.raw[:65536])
                message_id = _clean_id(headers.get("Message-ID"))
                if message_id:
                    seen = (
                        await conn.execute(
                            sa.select(inbound_t.c.id).where(inbound_t.c.mailbox == inbox, inbound_t.c.message_id == message_id).limit(1)
                        )
                    ).first()
                    if seen is not None:
                        continue  # the same message under a new UIDVALIDITY, or delivered twice
                row = {
                    "mailbox": inbox,
                    "uidvalidity": uidvalidity,
                    "uid": m.uid,
                    "message_id": message_id,
                    "in_reply_to": _clean_id(headers.get("In-Reply-To")),
                    "references_header": str(headers.get("References") or "")[:4000],
                    "from_address": _address(headers.get("From")),
                    "subject": str(headers.get("Subject") or "")[:500],
                    "raw": m.raw,
                    "received_at": m.internal_date or now,
                    "stored_at": now,
                }
                inserted = await insert_ignore_returning(
                    conn, inbound_t, [row], conflict_columns=["mailbox", "uidvalidity", "uid"]
                )
                new_ids.extend(int(r[0]) for r in inserted)
            last_uid = max((m.uid for m in batch), default=0)
            existing = (await conn.execute(sa.select(cursors_t.c.mailbox).where(cursors_t.c.mailbox == inbox))).first()
            if existing is None:
                await conn.execute(cursors_t.insert().values(mailbox=inbox, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now))
            else:
                await conn.execute(
                    cursors_t.update().where(cursors_t.c.mailbox == inbox).values(uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
                )
        return new_ids

    async def unclassified_inbound(self) -> list[tuple[int, str]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(inbound_t.c.id, inbound_t.c.mailbox).where(inbound_t.c.processed_at.is_(None)).order_by(inbound_t.c.id))
            return [(int(r[0]), r[1]) for r in rows]

    async def inbound_raw(self, inbound_id: int) -> bytes | None:
        async with self.engine.connect() as conn:
            raw = (await conn.execute(sa.select(inbound_t.c.raw).where(inbound_t.c.id == inbound_id))).scalar_one_or_none()
        return bytes(raw) if raw is not None else None

    async def match_by_message_ids(self, ids: Sequence[str]) -> Match | None:
        if not ids:
            return None
        query = (
            sa.select(outbound_t.c.id, outbound_t.c.lead_id, outbound_t.c.message_id, campaigns_t.c.name)
            .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
            .where(outbound_t.c.message_id.in_(list(ids)))
        )
        async with self.engine.connect() as conn:
            rows = {r.message_id: r for r in await conn.execute(query)}
        for message_id in ids:  # the most specific id wins
            r = rows.get(message_id)
            if r is not None:
                return Match(int(r.lead_id), r.name, int(r.id))
        return None

    async def match_by_recipient(self, address: str) -> Match | None:
        query = (
            sa.select(outbound_t.c.id, outbound_t.c.lead_id, campaigns_t.c.name)
            .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
            .where(outbound_t.c.recipient == normalise_address(address), outbound_t.c.sent_at.is_not(None))
            .order_by(outbound_t.c.sent_at.desc(), outbound_t.c.id.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            r = (await conn.execute(query)).first()
        return None if r is None else Match(int(r.lead_id), r.name, int(r.id))

    async def save_classification(self, inbound_id: int, c: Classification, match: Match | None, matched_by: str | None, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                inbound_t.update()
                .where(inbound_t.c.id == inbound_id)
                .values(
                    category=c.category.value,
                    reason=c.reason,
                    confidence=c.confidence,
                    classification=json.loads(c.model_dump_json()),
                    lead_id=match.lead_id if match else None,
                    outbound_id=match.outbound_id if match else None,
                    matched_by=matched_by,
                    processed_at=now,
                )
            )

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
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def alert_texts(self, inbound_id: int) -> tuple[str, str]:
        from aicmo_actors.cam.classify import strip_quoted
        from aicmo_actors.cam.classify.parse import body_text

        raw = await self.inbound_raw(inbound_id)
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(inbound_t.c.from_address, inbound_t.c.subject, inbound_t.c.category).where(inbound_t.c.id == inbound_id)
                )
            ).first()
        text = strip_quoted(body_text(raw or b"")).strip()
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
        async with self.engine.begin() as conn:
            await insert_ignore(conn, alerts_t, [
                    {
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
                ],
                conflict_columns=["idempotency_key"],
            )
            alert_id = (await conn.execute(sa.select(alerts_t.c.id).where(alerts_t.c.idempotency_key == request.idempotency_key))).scalar_one()
        return await self.alert(int(alert_id))

    async def alert(self, alert_id: int) -> AlertRow | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(sa.select(alerts_t).where(alerts_t.c.id == alert_id))).mappings().first()
            if r is None:
                return None
            lead = None
            if r["lead_id"] is not None:
                l_row = (await conn.execute(sa.select(leads_t.c.email, leads_t.c.first_name, leads_t.c.last_name, leads_t.c.company).where(leads_t.c.id == r["lead_id"]))).first()
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
        async with self.engine.connect() as conn:
            return [int(r[0]) for r in await conn.execute(sa.select(alerts_t.c.id).where(alerts_t.c.state == "pending").order_by(alerts_t.c.id))]

    async def _alert_channels(self, conn: AsyncConnection, alert_id: int, channels: Sequence[str] | None) -> dict[str, Any]:
        payload = (await conn.execute(sa.select(alerts_t.c.payload).where(alerts_t.c.id == alert_id))).scalar_one()
        payload = dict(payload or {})
        if channels is not None:
            payload["channels_done"] = list(channels)
        return payload

    async def finish_alert(self, alert_id: int, state: str, now: datetime, error: str | None, channels: Sequence[str] | None = None) -> None:
        async with self.engine.begin() as conn:
            payload = await self._alert_channels(conn, alert_id, channels)
            await conn.execute(
                alerts_t.update()
                .where(alerts_t.c.id == alert_id)
                .values(state=state, last_error=error, payload=payload, delivered_at=now if state == "delivered" else None)
            )

    async def retry_alert(self, alert_id: int, attempts: int, error: str, channels: Sequence[str]) -> None:
        async with self.engine.begin() as conn:
            payload = await self._alert_channels(conn, alert_id, channels)
            await conn.execute(alerts_t.update().where(alerts_t.c.id == alert_id).values(attempts=attempts, last_error=error, payload=payload))

    # -- metrics ----------------------------------------------------------------------------------
    async def campaign_counters(self) -> dict[str, tuple[int, int, int]]:
        """Per campaign: (sent, hard bounces, complaints) since its last pause or resume."""
        out: dict[str, tuple[int, int, int]] = {}
        for name, row in (await self.campaigns()).items():
            since = await self._window_start(row.campaign_id)
            async with self.engine.connect() as conn:
                sent = (
                    await conn.execute(
                        sa.select(sa.func.count()).where(
                            outbound_t.c.campaign_id == row.campaign_id,
                            outbound_t.c.status.in_([OutboundStatus.SENT.value]),
                            outbound_t.c.sent_at >= since,
                        )
                    )
                ).scalar_one()
                by_cat = dict(
                    (
                        await conn.execute(
                            sa.select(inbound_t.c.category, sa.func.count())
                            .join(outbound_t, outbound_t.c.id == inbound_t.c.outbound_id)
                            .where(outbound_t.c.campaign_id == row.campaign_id, inbound_t.c.processed_at >= since)
                            .group_by(inbound_t.c.category)
                        )
                    ).all()
                )
                hard_at_send = (
                    await conn.execute(
                        sa.select(sa.func.count()).where(
                            outbound_t.c.campaign_id == row.campaign_id,
                            outbound_t.c.status == OutboundStatus.FAILED.value,
                            outbound_t.c.last_error.like("5%"),
                            outbound_t.c.queued_at >= since,
                        )
                    )
                ).scalar_one()
            out[name] = (int(sent), int(by_cat.get("bounce_hard", 0)) + int(hard_at_send), int(by_cat.get("complaint", 0)))
        return out

    async def _window_start(self, campaign_id: int) -> datetime:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(campaigns_t.c.paused_at, campaigns_t.c.resumed_at).where(campaigns_t.c.id == campaign_id))).first()
        from datetime import UTC

        candidates = [d for d in (_aware(row.paused_at), _aware(row.resumed_at)) if d is not None] if row else []
        return max(candidates) if candidates else datetime(1970, 1, 1, tzinfo=UTC)

    async def sending_side_rejections(self, since: datetime) -> dict[str, list[datetime]]:
        out: dict[str, list[datetime]] = {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(outbound_t.c.mailbox, inbound_t.c.processed_at, inbound_t.c.classification)
                .join(outbound_t, outbound_t.c.id == inbound_t.c.outbound_id)
                .where(inbound_t.c.processed_at >= since, inbound_t.c.category.in_(["bounce_soft", "bounce_hard"]))
            )
            for mailbox, at, classification in rows:
                if (classification or {}).get("sending_side"):
                    out.setdefault(mailbox, []).append(_aware(at) or at)
        return out

    async def funnel(self, campaign: str) -> dict[str, Any]:
        """`campaign status`: leads by state, emails by status, replies by category."""
        row = (await self.campaigns()).get(campaign)
        if row is None:
            raise KeyError(campaign)
        async with self.engine.connect() as conn:
            leads = dict((await conn.execute(sa.select(leads_t.c.state, sa.func.count()).where(leads_t.c.campaign_id == row.campaign_id).group_by(leads_t.c.state))).all())
            emails = dict((await conn.execute(sa.select(outbound_t.c.status, sa.func.count()).where(outbound_t.c.campaign_id == row.campaign_id).group_by(outbound_t.c.status))).all())
            by_step = dict((await conn.execute(sa.select(outbound_t.c.step, sa.func.count()).where(outbound_t.c.campaign_id == row.campaign_id, outbound_t.c.status == OutboundStatus.SENT.value).group_by(outbound_t.c.step))).all())
            replies = dict(
                (
                    await conn.execute(
                        sa.select(inbound_t.c.category, sa.func.count())
                        .join(leads_t, leads_t.c.id == inbound_t.c.lead_id)
                        .where(leads_t.c.campaign_id == row.campaign_id)
                        .group_by(inbound_t.c.category)
                    )
                ).all()
            )
            alerts = dict((await conn.execute(sa.select(alerts_t.c.state, sa.func.count()).where(alerts_t.c.campaign == campaign).group_by(alerts_t.c.state))).all())
        return {
            "campaign": campaign,
            "status": row.status,
            "paused_reason": row.paused_reason,
            "leads": {str(k): int(v) for k, v in leads.items()},
            "emails": {str(k): int(v) for k, v in emails.items()},
            "sent_by_step": {int(k): int(v) for k, v in by_step.items()},
            "replies": {str(k): int(v) for k, v in replies.items()},
            "alerts": {str(k): int(v) for k, v in alerts.items()},
        }

    # -- cycle reports ------------------------------------------------------------------------------
    async def save_cycle_report(self, report: CycleReport, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                reports_t.insert().values(
                    tick_seq=report.tick_seq,
                    worker=report.step,
                    started_at=now,
                    finished_at=now,
                    duration_ms=report.duration_ms,
                    counts=dict(report.counts),
                    errors=list(report.errors),
                )
            )


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
