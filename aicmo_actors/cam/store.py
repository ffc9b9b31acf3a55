"""CAM's persistence: every read and write of the `cam_*` tables goes through here.

The module owns its tables (house rule 2): other modules ask by message, the CLI calls
these functions. Effects on the outside world are gated by a fenced write: the
QUEUED -> SENDING claim of an outbound row matches only while this process holds the
worker lease with its current fencing token, so a stale holder cannot send.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import tables as cam_tables
from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.lead_rules import (
    DEFAULT_RULES,
    HUMAN_REPLIES,
    LeadDecision,
    LeadRules,
    LeadView,
    check_transition,
    decide_reply,
    decide_send_failure,
    is_machine_notice,
)
from aicmo_actors.gateways.inbox_source import FetchedMessage
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import run_read, run_write
from contracts.cam import (
    SENDING_SIDE_REASONS,
    AlertRequested,
    BounceReason,
    Classification,
    CycleReport,
    LeadState,
    OutboundStatus,
    ReplyCategory,
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
_CLAIM_RETURNS = (outbound_t.c.id,)
_CLAIM_WHERE = (
    outbound_t.c.id == sa.bindparam("_id"),
    outbound_t.c.status == OutboundStatus.QUEUED.value,
    sa.or_(outbound_t.c.next_attempt_at.is_(None), outbound_t.c.next_attempt_at <= _param("_due", outbound_t.c.next_attempt_at)),
)
_CLAIM_VALUES = {"status": _SENDING, "sending_at": _param("_at", outbound_t.c.sending_at), "attempts": outbound_t.c.attempts + 1}
_INTERRUPTED_WHERE = (outbound_t.c.id == sa.bindparam("_id"), outbound_t.c.status == _SENDING)
_INTERRUPTED_VALUES = {
    "status": OutboundStatus.UNCONFIRMED.value,
    "last_error": "interrupted mid-send (actor restarted): the server may have it",
    "sent_at": sa.func.coalesce(outbound_t.c.sending_at, _param("_at", outbound_t.c.sent_at)),
}
_INTERRUPTED_RETURNS = (outbound_t.c.lead_id, outbound_t.c.step, outbound_t.c.campaign_id)
#: Everything the last check before a send and the email itself need, in one query: the
#: row, its lead, its campaign, its mailbox's pause and the recipient's suppression.
_GATE = (
    sa.select(
        outbound_t.c.status,
        outbound_t.c.lead_id, outbound_t.c.step, outbound_t.c.variant, outbound_t.c.mailbox,
        outbound_t.c.recipient, outbound_t.c.message_id, outbound_t.c.attempts, outbound_t.c.next_attempt_at,
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
    .values(status=OutboundStatus.CANCELLED.value, last_error=sa.bindparam("_why"))
)
#: The reason a row gets when its email could not be rendered or built at send time.
NOT_BUILT = "not sent: could not build the email: "
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
        accepted_at=sa.func.coalesce(outbound_t.c.accepted_at, _param("_accepted", outbound_t.c.accepted_at)),
        subject=sa.func.coalesce(_param("_subject", outbound_t.c.subject), outbound_t.c.subject),
        last_error=_param("_error", outbound_t.c.last_error),
        smtp_code=_param("_code", outbound_t.c.smtp_code),
        replies=_param("_replies", outbound_t.c.replies),
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
        state_reason=_param("_why", leads_t.c.state_reason),
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
    #: The email, built before the claim (None only when claimed without a `prepare`).
    email: Any = None
    subject: str | None = None


@dataclass(frozen=True)
class AttemptReply:
    """What the receiving server said to one attempt (kept on the row, every one of them)."""

    at: datetime
    stage: str
    code: int | None
    text: str
    status: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "stage": self.stage,
            "code": self.code,
            "status": self.status,
            "reason": self.reason,
            "text": self.text[:500],
        }


@dataclass(frozen=True)
class Finished:
    """How a claimed send ended: SENT (the server's 250) or UNCONFIRMED (it may have it)."""

    job: OutboundJob
    status: OutboundStatus
    at: datetime
    subject: str | None = None
    error: str | None = None
    reply: AttemptReply | None = None


@dataclass(frozen=True)
class NotSent:
    """The email could not be rendered or built: the row is CANCELLED with the true reason
    before anything was claimed, the lead waits, alert rows exist (`alert_ids`: none when the
    same problem was alerted already; one more when the campaign was paused for it)."""

    job: OutboundJob
    error: str
    alert_ids: tuple[int, ...]
    paused: str | None


#: Builds the email of a job (render + build) inside the claim's transaction, before the
#: claim; returns (email, subject) or raises: any exception means "cannot be built".
Prepare = Callable[["OutboundJob", datetime], tuple[Any, str]]


@dataclass(frozen=True)
class SendFailure:
    """A send the server refused for good (5xx) or that ran out of retries, as the sender judged it."""

    job: OutboundJob
    at: datetime
    reply: AttemptReply
    permanent: bool
    hard: bool
    sending_side: bool
    reason: BounceReason


@dataclass(frozen=True)
class FailureOutcome:
    """What `fail_send` wrote: the lead's state change, if any."""

    change: tuple[LeadState, LeadState] | None
    cause: str


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


@dataclass(frozen=True)
class Acted:
    """What acting on one classified inbound message did (see `CamStore.act_on_inbound`)."""

    inbound_id: int
    lead_id: int | None
    campaign: str | None
    outbound_id: int | None
    mailbox: str | None
    category: ReplyCategory
    outcome: str | None
    sending_side: bool
    change: tuple[LeadState, LeadState] | None
    cause: str
    alert_ids: tuple[int, ...] = ()
    stopped_colleagues: int = 0


#: Ties to an email we sent that a stranger cannot make up: our Message-ID (threading, or
#: quoted inside a report), our signed per-message return path, our signed token.
STRONG_MATCHES = frozenset({"message_id", "report", "return_path", "token"})
#: Everything else is a guess (the sender's address, a recipient named in a report): it
#: changes nothing by itself and is shown with the unmatched mail.
WEAK_MATCHES = frozenset({"sender", "report_recipient"})
#: Categories a human wants to see even when the match is only a guess.
WORTH_A_LOOK = frozenset(
    {
        ReplyCategory.INTERESTED, ReplyCategory.MEETING_REQUEST, ReplyCategory.QUESTION,
        ReplyCategory.REFERRAL, ReplyCategory.UNSUBSCRIBE, ReplyCategory.COMPLAINT,
    }
)
#: Makes an alert's (summary, text) from the stored raw message, its sender and category.
AlertText = Callable[[bytes, str | None, str], tuple[str, str]]


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
        rows = await run_read(self.engine, lambda conn: conn.execute(sa.select(campaigns_t).order_by(campaigns_t.c.id)).mappings().all())
        return {
            r["name"]: CampaignRow(
                int(r["id"]), r["name"], self._spec(r["name"], r["spec_hash"], r["spec"]), r["status"], r["paused_reason"], _aware(r["paused_at"])
            )
            for r in rows
        }

    async def set_campaign_status(self, name: str, status: str, reason: str | None, now: datetime) -> bool:
        """Pause or resume a campaign by command. A resume puts its waiting leads back on the
        schedule: while it was paused, the scheduler took every due lead off (so a paused
        campaign costs nothing per tick), and nothing else would ever bring them back."""
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "paused":
            values |= {"paused_reason": reason, "paused_at": now}
        else:
            values |= {"paused_reason": None, "resumed_at": now}

        def work(conn: Connection) -> bool:
            campaign_id = conn.execute(sa.select(campaigns_t.c.id).where(campaigns_t.c.name == name)).scalar_one_or_none()
            if campaign_id is None:
                return False
            conn.execute(campaigns_t.update().where(campaigns_t.c.id == campaign_id).values(**values))
            if status == "active":
                in_flight = sa.exists().where(
                    outbound_t.c.lead_id == leads_t.c.id,
                    outbound_t.c.status.in_([OutboundStatus.QUEUED.value, OutboundStatus.SENDING.value]),
                )
                conn.execute(
                    leads_t.update()
                    .where(
                        leads_t.c.campaign_id == campaign_id,
                        leads_t.c.state.in_([LeadState.ACTIVE.value, LeadState.PAUSED.value]),
                        leads_t.c.next_action_at.is_(None),
                        ~in_flight,
                    )
                    .values(next_action_at=now, state_reason="the campaign was resumed", updated_at=now)
                )
            return True

        return await run_write(self.engine, work)

    async def pause_campaign(self, name: str, reason: str, now: datetime) -> int | None:
        """Auto-pause an active campaign and store the alert that says so, in one transaction.
        Returns the alert's id; None if it was paused already (or does not exist)."""
        return await run_write(self.engine, lambda conn: self._pause_campaign(conn, name, reason, now))

    def _pause_campaign(self, conn: Connection, name: str, reason: str, now: datetime) -> int | None:
        """`pause_campaign` inside the caller's transaction."""
        result = conn.execute(
            campaigns_t.update()
            .where(campaigns_t.c.name == name, campaigns_t.c.status == "active")
            .values(status="paused", paused_reason=reason, paused_at=now, updated_at=now)
        )
        if not result.rowcount:
            return None
        summary = f"Campaign {name} paused: {reason}"
        return self._insert_alert(
            conn, key=f"pause:campaign:{name}:{now.isoformat()}", kind="campaign_paused", lead_id=None,
            campaign=name, category=None, summary=summary, text=summary, inbound_id=None, now=now,
        )

    async def pause_mailbox(self, address: str, reason: str, now: datetime) -> int | None:
        """Auto-pause an active sending mailbox and store the alert that says so, in one
        transaction. Returns the alert's id; None if it was paused already."""
        address = address.lower()

        def work(conn: Connection) -> int | None:
            insert_ignore_in(conn, mailboxes_t, [{"address": address, "status": "active", "created_at": now}], conflict_columns=["address"])
            result = conn.execute(
                mailboxes_t.update()
                .where(mailboxes_t.c.address == address, mailboxes_t.c.status == "active")
                .values(status="paused", paused_reason=reason, paused_at=now)
            )
            if not result.rowcount:
                return None
            summary = f"Mailbox {address} paused: {reason}"
            return self._insert_alert(
                conn, key=f"pause:mailbox:{address}:{now.isoformat()}", kind="mailbox_paused", lead_id=None,
                campaign=None, category=None, summary=summary, text=summary, inbound_id=None, now=now,
            )

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

    async def lead_details(self, address: str) -> list[dict[str, Any]]:
        """Everything about one address, per campaign: the lead (state, why, next action),
        its emails (status, outcome, every server answer) and what came back from it."""
        wanted = normalise_address(address)

        def work(conn: Connection) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            leads = conn.execute(
                sa.select(leads_t, campaigns_t.c.name.label("campaign"))
                .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                .where(leads_t.c.email == wanted)
                .order_by(leads_t.c.id)
            ).mappings().all()
            for lead in leads:
                emails = conn.execute(
                    sa.select(
                        outbound_t.c.step, outbound_t.c.status, outbound_t.c.mailbox, outbound_t.c.message_id,
                        outbound_t.c.sent_at, outbound_t.c.accepted_at, outbound_t.c.bounce, outbound_t.c.bounce_reason,
                        outbound_t.c.complained_at, outbound_t.c.delayed_at, outbound_t.c.last_error, outbound_t.c.replies,
                        outbound_t.c.next_attempt_at,
                    ).where(outbound_t.c.lead_id == lead["id"]).order_by(outbound_t.c.step)
                ).mappings().all()
                inbound = conn.execute(
                    sa.select(
                        inbound_t.c.id, inbound_t.c.received_at, inbound_t.c.category, inbound_t.c.reason,
                        inbound_t.c.matched_by, inbound_t.c.subject, inbound_t.c.acted_at,
                    ).where(inbound_t.c.lead_id == lead["id"]).order_by(inbound_t.c.id)
                ).mappings().all()
                suppressed = conn.execute(
                    sa.select(suppressions_t.c.reason, suppressions_t.c.created_at).where(suppressions_t.c.address == wanted)
                ).first()
                found.append(
                    {
                        "campaign": lead["campaign"],
                        "lead_id": lead["id"],
                        "email": lead["email"],
                        "state": lead["state"],
                        "state_reason": lead["state_reason"],
                        "current_step": lead["current_step"],
                        "next_action_at": _aware(lead["next_action_at"]),
                        "paused_until": _aware(lead["paused_until"]),
                        "soft_bounces": lead["soft_bounces"],
                        "suppressed": dict(suppressed._mapping) if suppressed is not None else None,
                        "emails": [dict(e) for e in emails],
                        "inbound": [dict(i) for i in inbound],
                    }
                )
            return found

        return await run_read(self.engine, work)

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
                sa.select(
                    outbound_t.c.id, outbound_t.c.lead_id, outbound_t.c.step, outbound_t.c.status, outbound_t.c.mailbox,
                    outbound_t.c.bounce, outbound_t.c.bounce_at, outbound_t.c.sent_at,
                )
                .where(outbound_t.c.lead_id.in_(chunk))
            )
            existing.update({(int(r.lead_id), int(r.step)): r for r in rows})
        fresh: list[PlannedSend] = []
        queued: list[tuple[PlannedSend, SendEmail]] = []
        for p in sends:
            row = existing.get((p.lead_id, p.step))
            if row is None:
                fresh.append(p)
            elif _goes_again(row):
                # The step failed (a soft bounce, a 5xx, an email that could not be built):
                # it goes out again, the same email with the same Message-ID.
                conn.execute(
                    outbound_t.update()
                    .where(outbound_t.c.id == row.id, outbound_t.c.status == row.status)
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

    def _apply_decision(
        self, conn: Connection, lead_id: int, d: LeadDecision, now: datetime, step: int | None
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
            waiting = _aware(lead["next_action_at"])
            if LeadState(lead["state"]) is LeadState.PAUSED and waiting is not None and waiting > retry:
                retry = waiting  # an auto-reply pause is not cut short by a retry
            values["next_action_at"] = retry
        change = None
        if d.new_state is not None:
            change = self._set_state(conn, lead_id, d.new_state, d.cause, now, **values)
        elif values:
            conn.execute(leads_t.update().where(leads_t.c.id == lead_id).values(state_reason=d.cause, updated_at=now, **values))
        if d.suppress:
            self._suppress(conn, lead["email"], d.suppress, f"lead {lead_id}", now)
        return change

    def _stop_colleagues(self, conn: Connection, lead_id: int, shared: frozenset[str], now: datetime) -> int:
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
            .values(state=LeadState.STOPPED.value, state_reason=f"a colleague replied (lead {lead_id})", next_action_at=None, updated_at=now)
        )
        return int(result.rowcount or 0)

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
        self,
        outbound_id: int,
        now: datetime,
        *,
        finish: Finished | None = None,
        window: WindowRule | None = None,
        prepare: Prepare | None = None,
        pause_after_errors: int = 3,
    ) -> OutboundJob | Held | NotSent | None:
        """QUEUED -> SENDING, committed before any byte goes out. None: not ours to send.

        First the last check, in the same transaction: a row whose lead is no longer ACTIVE
        (it replied, unsubscribed, bounced, paused on an auto-reply) or whose address is now
        suppressed is not sent (CANCELLED, with the reason); one whose campaign or mailbox is
        paused, or whose lead's send window is closed (a retry, or a row handed on again
        after a restart, comes due whenever), waits: `Held`. Then `prepare` renders and builds
        the email: if it cannot (a variable the lead lacks, a hostile header value), the row
        is CANCELLED with that reason before anything is claimed (`NotSent`), never SENDING.

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

        def work(conn: Connection) -> OutboundJob | Held | NotSent | None:
            if finish is not None:
                self._finish(conn, finish)
            g = conn.execute(_GATE, {"_id": outbound_id}).first()
            if g is None:
                return None
            if g.status == _SENDING:
                # Being sent when this sender's previous incarnation died: the server may have it.
                cut = conn.execute(interrupted, {"_id": outbound_id, "_at": now}).first()
                if cut is not None:
                    self._advance_lead(conn, cut.lead_id, cut.step, self._campaign_spec(conn, cut.campaign_id), now)
                return None
            due = _aware(g.next_attempt_at)
            if g.status != OutboundStatus.QUEUED.value or (due is not None and due > now):
                return None  # sent, failed, cancelled, or not due yet: nothing to do
            go = gate(conn, g)
            if go is not True:
                return go if isinstance(go, Held) else None
            spec = self._cached_spec(conn, g.name, g.spec_hash)
            previous = conn.execute(_JOB_THREAD, {"_lead": g.lead_id, "_step": g.step}).all() if int(g.step) > 1 else []
            job = _job(outbound_id, g, spec, previous)
            if prepare is not None:
                try:
                    email, subject = prepare(job, now)
                except Exception as exc:  # render and build are pure: this email cannot be made
                    return self._not_built(conn, job, f"{exc}" or type(exc).__name__, now, pause_after_errors)
                job = replace(job, email=email, subject=subject)
            if conn.execute(claim, {"_id": outbound_id, "_due": now, "_at": now}).first() is None:
                return None  # fenced out (a newer worker holds the lease) or taken meanwhile
            return job

        return await run_write(self.engine, work)

    def _not_built(self, conn: Connection, job: OutboundJob, error: str, now: datetime, pause_after: int) -> NotSent:
        """The email cannot be made: CANCELLED with the reason, the lead waits a day, one alert
        per distinct problem, and the campaign pauses once it keeps happening."""
        error = " ".join(error.split())[:400]
        conn.execute(_CANCEL, {"_id": job.outbound_id, "_why": NOT_BUILT + error})
        retry = now + NOT_BUILT_RETRY
        conn.execute(
            leads_t.update()
            .where(leads_t.c.id == job.lead_id, leads_t.c.state == LeadState.ACTIVE.value)
            .values(
                next_action_at=retry,
                state_reason=f"waiting: step {job.step} could not be built ({error[:150]}); tried again {retry:%Y-%m-%d %H:%M} UTC",
                updated_at=now,
            )
        )
        campaign = conn.execute(
            sa.select(campaigns_t.c.id, campaigns_t.c.status, campaigns_t.c.paused_at, campaigns_t.c.resumed_at, campaigns_t.c.created_at)
            .where(campaigns_t.c.name == job.campaign)
        ).one()
        since = max(d for d in (_aware(campaign.paused_at), _aware(campaign.resumed_at), _aware(campaign.created_at), EPOCH) if d is not None)
        failures = conn.execute(
            sa.select(sa.func.count()).where(
                outbound_t.c.campaign_id == campaign.id,
                outbound_t.c.status == OutboundStatus.CANCELLED.value,
                outbound_t.c.last_error.like(NOT_BUILT + "%"),
                outbound_t.c.queued_at >= since,
            )
        ).scalar_one()
        paused = None
        alert_ids: list[int] = []
        if campaign.status == "active" and failures >= pause_after:
            why = f"{failures} emails could not be built since it was last resumed (the last: {error[:150]})"
            pause_alert = self._pause_campaign(conn, job.campaign, why, now)
            if pause_alert is not None:
                paused = why
                alert_ids.append(pause_alert)
        key = f"send_error:{job.campaign}:{stable_hash(error.split(' (')[0])[:24]}"
        alert_id = self._insert_alert(
            conn,
            key=key,
            kind="send_error",
            lead_id=job.lead_id,
            campaign=job.campaign,
            category=None,
            summary=f"campaign {job.campaign}: step {job.step} could not be built for {job.recipient}: {error[:200]}",
            text=(
                f"Step {job.step} of campaign {job.campaign} could not be rendered or built for {job.recipient}:\n\n"
                f"{error}\n\nNothing was sent. The lead is tried again on {retry:%Y-%m-%d %H:%M} UTC; "
                "fix the campaign file (python run.py campaign check FILE --leads FILE) or the lead's data."
                + (f"\n\nThe campaign is paused: {paused}" if paused else "")
            ),
            inbound_id=None,
            now=now,
        )
        alert_ids += [alert_id] if alert_id is not None else []
        return NotSent(job, error, tuple(alert_ids), paused)

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
        reply = finished.reply
        conn.execute(
            _FINISH_OUTBOUND,
            {
                "_id": job.outbound_id,
                "_status": finished.status.value,
                "_at": at,
                "_accepted": at if finished.status is OutboundStatus.SENT else None,
                "_subject": finished.subject,
                "_error": finished.error,
                "_code": reply.code if reply is not None else None,
                "_replies": self._replies_with(conn, job, reply),
            },
        )
        self._advance_lead(conn, job.lead_id, job.step, job.spec, at)

    def _replies_with(self, conn: Connection, job: OutboundJob, reply: AttemptReply | None) -> list[dict[str, Any]] | None:
        """The row's attempt log with `reply` added (read only when earlier attempts exist)."""
        earlier: list[dict[str, Any]] = []
        if job.attempts > 1:
            stored = conn.execute(sa.select(outbound_t.c.replies).where(outbound_t.c.id == job.outbound_id)).scalar_one_or_none()
            earlier = list(stored or [])
        if reply is None:
            return earlier or None
        return [*earlier, reply.as_json()][-MAX_REPLIES:]

    def _advance_lead(self, conn: Connection, lead_id: int, step: int, spec: CampaignSpec, at: datetime) -> None:
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
            _FINISH_LEAD,
            {"_lead": lead_id, "_step": step, "_step_to": step, "_at": at, "_next": due, "_why": why, "_updated": at},
        )

    def _campaign_spec(self, conn: Connection, campaign_id: int) -> CampaignSpec:
        row = conn.execute(sa.select(campaigns_t.c.name, campaigns_t.c.spec_hash).where(campaigns_t.c.id == campaign_id)).one()
        return self._cached_spec(conn, row.name, row.spec_hash)

    async def mark_retry(self, job: OutboundJob, retry_at: datetime, reply: AttemptReply) -> None:
        """A temporary refusal: back to QUEUED until `retry_at`, the server's answer kept."""

        def work(conn: Connection) -> None:
            conn.execute(
                outbound_t.update()
                .where(outbound_t.c.id == job.outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(
                    status=OutboundStatus.QUEUED.value,
                    next_attempt_at=retry_at,
                    last_error=_reply_line(reply),
                    smtp_code=reply.code,
                    replies=self._replies_with(conn, job, reply),
                )
            )
            why = reply.reason.replace("_", " ") if reply.reason else "a temporary failure"
            conn.execute(
                leads_t.update()
                .where(leads_t.c.id == job.lead_id, leads_t.c.state == LeadState.ACTIVE.value)
                .values(
                    state_reason=f"waiting: step {job.step} refused for now ({why}), tried again {retry_at:%Y-%m-%d %H:%M} UTC",
                    updated_at=reply.at,
                )
            )

        await run_write(self.engine, work)

    async def fail_send(self, failure: SendFailure, rules: LeadRules = DEFAULT_RULES) -> FailureOutcome:
        """A send refused for good (5xx) or out of retries: FAILED with the server's answer,
        the bounce on the row, and what it means for the lead, all in one transaction."""
        job, now, reply = failure.job, failure.at, failure.reply

        def work(conn: Connection) -> FailureOutcome:
            moved = conn.execute(
                outbound_t.update()
                .where(outbound_t.c.id == job.outbound_id, outbound_t.c.status == OutboundStatus.SENDING.value)
                .values(
                    status=OutboundStatus.FAILED.value,
                    sent_at=now,
                    last_error=_reply_line(reply),
                    smtp_code=reply.code,
                    bounce=_stronger_bounce("hard" if failure.hard else "soft"),
                    bounce_reason=_stronger_bounce_reason("hard" if failure.hard else "soft", failure.reason.value),
                    bounce_at=now,
                    replies=self._replies_with(conn, job, reply),
                )
            ).rowcount
            if not moved:
                return FailureOutcome(None, "not ours any more (fenced or moved)")
            lead = conn.execute(sa.select(leads_t.c.state, leads_t.c.soft_bounces).where(leads_t.c.id == job.lead_id)).first()
            if lead is None:
                return FailureOutcome(None, "no such lead")
            decision = decide_send_failure(
                LeadView(LeadState(lead.state), int(lead.soft_bounces)), failure.reason, failure.hard, failure.sending_side, now, rules
            )
            change = self._apply_decision(conn, job.lead_id, decision, now, job.step)
            return FailureOutcome(change, decision.cause)

        return await run_write(self.engine, work)

    async def mailbox_usage(
        self, mailbox: str, day_start: datetime, now: datetime, day_of: Callable[[datetime], str]
    ) -> tuple[dict[str, int], datetime | None]:
        """What a sending mailbox has used from `day_start` on, per day (`day_of` names a
        moment's day in the campaign's zone), and its latest send: what the pacer is rebuilt
        from after a restart. Rows sent (or being sent) count on the day they went; rows still
        QUEUED count on the day they are planned for (now, when due), since they will go out:
        a crash must not let a fresh plan go out on top of them."""
        gone = [OutboundStatus.SENDING.value, OutboundStatus.SENT.value, OutboundStatus.UNCONFIRMED.value]

        def work(conn: Connection) -> tuple[dict[str, int], datetime | None]:
            days: dict[str, int] = {}
            last: datetime | None = None
            sent = conn.execute(
                sa.select(outbound_t.c.sent_at).where(
                    outbound_t.c.mailbox == mailbox, outbound_t.c.sent_at >= day_start, outbound_t.c.status.in_(gone)
                )
            ).scalars()
            planned = conn.execute(
                sa.select(outbound_t.c.next_attempt_at).where(
                    outbound_t.c.mailbox == mailbox, outbound_t.c.status == OutboundStatus.QUEUED.value
                )
            ).scalars()
            for at in [*(_aware(a) for a in sent), *(max(_aware(a) or now, now) for a in planned)]:
                if at is None:
                    continue
                day = day_of(at)
                days[day] = days.get(day, 0) + 1
                last = at if last is None or at > last else last
            previous = conn.execute(
                sa.select(sa.func.max(outbound_t.c.sent_at)).where(outbound_t.c.mailbox == mailbox, outbound_t.c.status.in_(gone))
            ).scalar_one()
            previous = _aware(previous)
            if previous is not None and (last is None or previous > last):
                last = previous
            return days, last

        return await run_read(self.engine, work)

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
        Every value taken from the message is made to fit its column first (an over-long
        Message-ID is stored as a hash of itself, an over-long address not at all); if the
        database still refuses the batch, each message is stored on its own, and one it
        refuses even so is kept as a stub marked "set aside", so the mail behind it is read.
        """
        rows = [_inbound_row(inbox, uidvalidity, m, now) for m in batch]
        last_uid = max((m.uid for m in batch), default=0)
        try:
            return await run_write(self.engine, lambda conn: self._store_rows(conn, inbox, uidvalidity, rows, last_uid, now))
        except (sa.exc.DBAPIError, sa.exc.StatementError):
            pass  # one of them is refused: find which, below
        ids: list[int] = []

        def one(row: dict[str, Any]) -> Callable[[Connection], list[int]]:
            return lambda conn: self._store_rows(conn, inbox, uidvalidity, [row], int(row["uid"]), now)

        for row in rows:
            try:
                ids += await run_write(self.engine, one(row))
            except (sa.exc.DBAPIError, sa.exc.StatementError) as exc:
                ids += await run_write(self.engine, one(_stub_row(row, f"could not be stored: {type(exc).__name__}")))
        await run_write(self.engine, lambda conn: self._move_cursor(conn, inbox, uidvalidity, last_uid, now))
        return sorted(ids)

    def _store_rows(
        self, conn: Connection, inbox: str, uidvalidity: int, rows: list[dict[str, Any]], last_uid: int, now: datetime
    ) -> list[int]:
        message_ids = list(dict.fromkeys(r["message_id"] for r in rows if r["message_id"]))
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
        self._move_cursor(conn, inbox, uidvalidity, last_uid, now)
        # Rows are inserted in UID order, so ascending ids are UID order too.
        return sorted(int(r[0]) for r in inserted)

    def _move_cursor(self, conn: Connection, inbox: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
        moved = conn.execute(
            cursors_t.update()
            .where(cursors_t.c.mailbox == inbox)
            .values(uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
        )
        if moved.rowcount == 0:
            conn.execute(cursors_t.insert().values(mailbox=inbox, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now))

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

    async def matches_by_outbound_ids(self, ids: Sequence[int]) -> dict[int, Match]:
        """The emails with these ids (a verified return-path token names one)."""
        wanted = sorted(set(ids))

        def work(conn: Connection) -> dict[int, Match]:
            found: dict[int, Match] = {}
            for chunk in _chunks(wanted):
                query = (
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
                    .where(outbound_t.c.id.in_(chunk))
                )
                found.update((int(r.id), Match(int(r.lead_id), r.name, int(r.id))) for r in conn.execute(query))
            return found

        return await run_read(self.engine, work) if wanted else {}

    async def matches_by_lead(self, lead_ids: Sequence[int]) -> dict[int, Match]:
        """For each lead (a verified unsubscribe token names one), the latest email sent to
        it (None as `outbound_id` when nothing was sent yet)."""
        wanted = sorted(set(lead_ids))

        def work(conn: Connection) -> dict[int, Match]:
            found: dict[int, Match] = {}
            for chunk in _chunks(wanted):
                leads = conn.execute(
                    sa.select(leads_t.c.id, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                    .where(leads_t.c.id.in_(chunk))
                ).all()
                for lead in leads:
                    found[int(lead.id)] = Match(int(lead.id), lead.name, None)
                sent = conn.execute(
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id)
                    .where(outbound_t.c.lead_id.in_(chunk), outbound_t.c.sent_at.is_not(None))
                    .order_by(outbound_t.c.sent_at, outbound_t.c.id)
                )
                for r in sent:  # the latest wins
                    match = found.get(int(r.lead_id))
                    if match is not None:
                        found[int(r.lead_id)] = Match(match.lead_id, match.campaign, int(r.id))
            return found

        return await run_read(self.engine, work) if wanted else {}

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
                        "b_reason": c.reason[:64] if c.reason else None,  # the column's size; the JSON keeps it whole
                        "b_confidence": c.confidence,
                        "b_classification": json.loads(c.model_dump_json()),
                        "b_lead_id": match.lead_id if match else None,
                        "b_outbound_id": match.outbound_id if match else None,
                        "b_matched_by": matched_by,
                        "b_set_aside": c.limited[:200] if c.limited else None,
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
                        set_aside=sa.func.coalesce(columns.set_aside, sa.bindparam("b_set_aside", type_=columns.set_aside.type)),
                        processed_at=now,
                    ),
                    params,
                )
            return [p["b_id"] for p in params]

        return await run_write(self.engine, work)

    async def unmatched_inbound(self, limit: int) -> list[dict[str, Any]]:
        """Inbound mail tied to nothing we sent, or only by a guess (the sender's address, a
        recipient named in a report): kept, never dropped, for a person to look at."""
        query = (
            sa.select(
                inbound_t.c.id, inbound_t.c.mailbox, inbound_t.c.from_address, inbound_t.c.subject,
                inbound_t.c.category, inbound_t.c.received_at, inbound_t.c.message_id,
                inbound_t.c.matched_by, inbound_t.c.lead_id, inbound_t.c.set_aside,
            )
            .where(
                inbound_t.c.processed_at.is_not(None),
                sa.or_(inbound_t.c.lead_id.is_(None), inbound_t.c.matched_by.in_(sorted(WEAK_MATCHES))),
            )
            .order_by(inbound_t.c.id.desc())
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    async def set_aside_inbound(self, limit: int) -> list[dict[str, Any]]:
        """Inbound mail that was not read in full (too large, too complex, too slow to read,
        a header that could not be stored), newest first."""
        query = (
            sa.select(
                inbound_t.c.id, inbound_t.c.mailbox, inbound_t.c.from_address, inbound_t.c.subject,
                inbound_t.c.received_at, inbound_t.c.size, inbound_t.c.set_aside, inbound_t.c.category,
            )
            .where(inbound_t.c.set_aside.is_not(None))
            .order_by(inbound_t.c.id.desc())
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    async def classified_not_acted(self, after: int, limit: int) -> list[int]:
        """Ids of classified messages not acted on yet (above `after`, ascending): the
        follow-up's work left by a crash between the classifier's commit and its own."""
        query = (
            sa.select(inbound_t.c.id)
            .where(inbound_t.c.processed_at.is_not(None), inbound_t.c.acted_at.is_(None), inbound_t.c.id > after)
            .order_by(inbound_t.c.id)
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [int(i) for i in conn.execute(query).scalars()])

    async def act_on_inbound(
        self,
        inbound_id: int,
        now: datetime,
        *,
        alert_text: AlertText,
        rules: LeadRules = DEFAULT_RULES,
        shared_domains: Iterable[str] = (),
    ) -> Acted | None:
        """Act on one classified message, once, in one transaction: the outcome on the email
        it is tied to (a delay, a bounce, a complaint: once per email), the lead's decision,
        the suppression, colleagues stopped, the alert to deliver, and `acted_at`.

        Only a strong tie (`STRONG_MATCHES`) acts on a lead; a guess only raises an alert for
        what a person should see. None: not classified yet, or acted on already.
        """
        shared = frozenset(shared_domains)

        def work(conn: Connection) -> Acted | None:
            row = conn.execute(
                sa.select(
                    inbound_t.c.id, inbound_t.c.classification, inbound_t.c.lead_id, inbound_t.c.outbound_id,
                    inbound_t.c.matched_by, inbound_t.c.raw, inbound_t.c.from_address, inbound_t.c.category,
                )
                .where(inbound_t.c.id == inbound_id, inbound_t.c.processed_at.is_not(None), inbound_t.c.acted_at.is_(None))
                .with_for_update()
            ).first()
            if row is None:
                return None
            c = Classification.model_validate(row.classification)
            acted = self._act(conn, row, c, now, alert_text, rules, shared)
            conn.execute(inbound_t.update().where(inbound_t.c.id == inbound_id).values(acted_at=now))
            return acted

        return await run_write(self.engine, work)

    def _act(
        self,
        conn: Connection,
        row: Any,
        c: Classification,
        now: datetime,
        alert_text: AlertText,
        rules: LeadRules,
        shared: frozenset[str],
    ) -> Acted:
        inbound_id = int(row.id)
        lead_id = int(row.lead_id) if row.lead_id is not None else None
        lead = None
        if lead_id is not None:
            lead = conn.execute(
                sa.select(leads_t.c.id, leads_t.c.state, leads_t.c.soft_bounces, leads_t.c.email, campaigns_t.c.name)
                .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                .where(leads_t.c.id == lead_id)
            ).first()
        out = None
        if row.outbound_id is not None:
            out = conn.execute(
                sa.select(
                    outbound_t.c.id, outbound_t.c.step, outbound_t.c.mailbox, outbound_t.c.sent_at,
                    outbound_t.c.bounce, outbound_t.c.bounce_at, outbound_t.c.complained_at,
                ).where(outbound_t.c.id == row.outbound_id)
            ).first()

        def acted(
            cause: str, outcome: str | None = None, change: tuple[LeadState, LeadState] | None = None,
            alert_ids: tuple[int, ...] = (), stopped: int = 0,
        ) -> Acted:
            return Acted(
                inbound_id=inbound_id,
                lead_id=lead_id,
                campaign=lead.name if lead is not None else None,
                outbound_id=row.outbound_id,
                mailbox=out.mailbox if out is not None else None,
                category=c.category,
                outcome=outcome,
                sending_side=c.sending_side,
                change=change,
                cause=cause,
                alert_ids=alert_ids,
                stopped_colleagues=stopped,
            )

        if lead_id is None:
            return acted("matched nothing we sent: kept with the unmatched mail")
        if lead is None:
            return acted("its lead is gone")
        campaign = lead.name

        if row.matched_by not in STRONG_MATCHES:
            # A guess: a stranger can write from any address and name anyone in a report.
            alert_ids: tuple[int, ...] = ()
            how = "its sender address" if row.matched_by == "sender" else "a recipient its report names"
            if c.category in WORTH_A_LOOK:
                summary, text = alert_text(bytes(row.raw or b""), row.from_address, c.category.value)
                new = self._insert_alert(
                    conn,
                    key=f"reply:{inbound_id}:unverified",
                    kind="unverified_reply",
                    lead_id=lead_id,
                    campaign=campaign,
                    category=c.category.value,
                    summary=f"{summary} (matched to {lead.email} only by {how}: nothing was changed)",
                    text=text + "\n\n[This message is not tied to an email we sent (no Message-ID, return path or token "
                    "of ours): nothing was changed. If it is genuine, act on it yourself, e.g. `python run.py suppress ADDRESS`.]",
                    inbound_id=inbound_id,
                    now=now,
                )
                alert_ids = (new,) if new is not None else ()
            return acted(f"matched by {row.matched_by} only: nothing changed", alert_ids=alert_ids)

        outcome: str | None = None
        view = LeadView(LeadState(lead.state), int(lead.soft_bounces))
        decision: LeadDecision | None = decide_reply(view, c, now, rules)
        if c.category is ReplyCategory.DELAYED:
            if out is not None:
                note = " ".join(c.reasons)[-500:] if c.reasons else (c.reason or "delayed")
                conn.execute(outbound_t.update().where(outbound_t.c.id == out.id).values(delayed_at=now, delay_note=note))
                outcome = "delayed"
        elif c.category in (ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT) and out is not None:
            kind = "hard" if c.category is ReplyCategory.BOUNCE_HARD else "soft"
            bounced, sent = _aware(out.bounce_at), _aware(out.sent_at)
            again = out.bounce is not None and bounced is not None and (sent is None or bounced >= sent)
            if again and not (kind == "hard" and out.bounce == "soft"):
                # A second report about the same attempt: it counted once already.
                decision = None
            else:
                reason = c.reason or BounceReason.UNDEFINED.value
                conn.execute(
                    outbound_t.update()
                    .where(outbound_t.c.id == out.id)
                    .values(bounce=_stronger_bounce(kind), bounce_reason=_stronger_bounce_reason(kind, reason[:32]), bounce_at=now)
                )
                outcome = c.category.value
        elif c.category is ReplyCategory.COMPLAINT and out is not None and out.complained_at is None:
            conn.execute(outbound_t.update().where(outbound_t.c.id == out.id).values(complained_at=now))
            outcome = "complaint"
        if decision is None:
            return acted("a second report for the same email: counted once")
        step = int(out.step) if out is not None else None
        change = self._apply_decision(conn, lead_id, decision, now, step)
        stopped = 0
        if decision.human_reply:
            stopped = self._stop_colleagues(conn, lead_id, shared, now)
        alert_ids = ()
        if decision.alert:
            summary, text = alert_text(bytes(row.raw or b""), row.from_address, c.category.value)
            new = self._insert_alert(
                conn,
                key=f"reply:{inbound_id}:{decision.alert}",
                kind=decision.alert,
                lead_id=lead_id,
                campaign=campaign,
                category=c.category.value,
                summary=summary,
                text=text,
                inbound_id=inbound_id,
                now=now,
            )
            alert_ids = (new,) if new is not None else ()
        return acted(decision.cause, outcome, change, alert_ids, stopped)

    # -- alerts ----------------------------------------------------------------------------------
    async def create_alert(self, request: AlertRequested, now: datetime) -> AlertRow | None:
        def work(conn: Connection) -> AlertRow | None:
            self._insert_alert(
                conn,
                key=request.idempotency_key,
                kind=request.kind,
                lead_id=request.lead_id,
                campaign=request.campaign,
                category=request.category.value if request.category else None,
                summary=request.summary,
                text=request.text,
                inbound_id=request.inbound_id,
                now=now,
            )
            alert_id = conn.execute(sa.select(alerts_t.c.id).where(alerts_t.c.idempotency_key == request.idempotency_key)).scalar_one()
            return self._alert(conn, int(alert_id))

        return await run_write(self.engine, work)

    def _insert_alert(
        self,
        conn: Connection,
        *,
        key: str,
        kind: str,
        lead_id: int | None,
        campaign: str | None,
        category: str | None,
        summary: str,
        text: str,
        inbound_id: int | None,
        now: datetime,
    ) -> int | None:
        """Store an alert to deliver (inside the caller's transaction). Returns its id, or
        None when an alert with this key exists already (it is delivered once per key)."""
        payload = {
            "campaign": campaign,
            "lead_id": lead_id,
            "category": category,
            "summary": summary,
            "text": text,
            "channels_done": [],
        }
        row = {
            "idempotency_key": key[:200],
            "kind": kind,
            "lead_id": lead_id,
            "campaign": campaign,
            "inbound_id": inbound_id,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "created_at": now,
        }
        inserted = insert_ignore_in(conn, alerts_t, [row], conflict_columns=["idempotency_key"])
        return int(inserted[0][0]) if inserted else None

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
        stored = conn.execute(sa.select(alerts_t.c.payload).where(alerts_t.c.id == alert_id)).scalar_one()
        payload: dict[str, Any] = dict(stored or {})
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
    # Every figure has one definition, here (`Figures`); `campaign status`, the auto-pause,
    # /metrics and the simulation's checks all read it. The README repeats the definitions.
    def _figures(self, conn: Connection, campaign_id: int, since: datetime) -> Figures:
        o = outbound_t.c
        attempted = sa.or_(o.accepted_at.is_not(None), o.status == OutboundStatus.UNCONFIRMED.value, o.bounce.is_not(None))

        def count(*where: Any) -> Any:
            return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(attempted, *where), 1), else_=0)), 0)

        row = conn.execute(
            sa.select(
                count(),
                count(o.accepted_at.is_not(None)),
                count(o.accepted_at.is_(None), o.status == OutboundStatus.UNCONFIRMED.value),
                count(o.accepted_at.is_(None), o.status != OutboundStatus.UNCONFIRMED.value),
                count(o.bounce == "hard"),
                count(o.bounce == "soft"),
                count(o.complained_at.is_not(None)),
                count(o.delayed_at.is_not(None), o.bounce.is_(None)),
            ).where(o.campaign_id == campaign_id, o.sent_at.is_not(None), o.sent_at >= since)
        ).one()
        return Figures(*(int(v) for v in row))

    async def campaign_figures(self, campaign: str | None = None, *, window: bool = True) -> dict[str, Figures]:
        """Per campaign (or the one named): its `Figures`, over the emails sent since it was
        last paused or resumed (`window`, what the auto-pause judges) or since it began."""

        def work(conn: Connection) -> dict[str, Figures]:
            query = sa.select(campaigns_t.c.id, campaigns_t.c.name, campaigns_t.c.paused_at, campaigns_t.c.resumed_at)
            if campaign is not None:
                query = query.where(campaigns_t.c.name == campaign)
            out: dict[str, Figures] = {}
            for row in conn.execute(query).all():
                marks = [d for d in (_aware(row.paused_at), _aware(row.resumed_at)) if d is not None] if window else []
                out[row.name] = self._figures(conn, int(row.id), max(marks) if marks else EPOCH)
            return out

        return await run_read(self.engine, work)

    async def sending_side_rejections(self, since: datetime) -> dict[str, list[datetime]]:
        """Per sending mailbox, when its emails were refused for a problem of our sending
        (blocked, spam, policy, auth) since `since`: at send time or by a report tied to them."""
        query = (
            sa.select(outbound_t.c.mailbox, outbound_t.c.bounce_at)
            .where(outbound_t.c.bounce_at >= since, outbound_t.c.bounce_reason.in_([r.value for r in SENDING_SIDE_REASONS]))
            .order_by(outbound_t.c.bounce_at)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        out: dict[str, list[datetime]] = {}
        for mailbox, at in rows:
            out.setdefault(mailbox.lower(), []).append(_aware(at) or at)
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
                    .where(outbound_t.c.campaign_id == cid, outbound_t.c.accepted_at.is_not(None))
                    .group_by(outbound_t.c.step),
                ),
                "replies": counts(
                    conn,
                    sa.select(inbound_t.c.category, sa.func.count())
                    .join(leads_t, leads_t.c.id == inbound_t.c.lead_id)
                    .where(leads_t.c.campaign_id == cid, inbound_t.c.matched_by.in_(sorted(STRONG_MATCHES)))
                    .group_by(inbound_t.c.category),
                ),
                "human": {
                    f"{category}|{reason or ''}": int(n)
                    for category, reason, n in conn.execute(
                        sa.select(inbound_t.c.category, inbound_t.c.reason, sa.func.count())
                        .join(leads_t, leads_t.c.id == inbound_t.c.lead_id)
                        .where(
                            leads_t.c.campaign_id == cid,
                            inbound_t.c.matched_by.in_(sorted(STRONG_MATCHES)),
                            inbound_t.c.category.in_(sorted(c.value for c in HUMAN_REPLIES)),
                        )
                        .group_by(inbound_t.c.category, inbound_t.c.reason)
                    )
                },
                "unverified": counts(
                    conn,
                    sa.select(inbound_t.c.category, sa.func.count())
                    .join(leads_t, leads_t.c.id == inbound_t.c.lead_id)
                    .where(leads_t.c.campaign_id == cid, inbound_t.c.matched_by.in_(sorted(WEAK_MATCHES)))
                    .group_by(inbound_t.c.category),
                ),
                "alerts": counts(conn, sa.select(alerts_t.c.state, sa.func.count()).where(alerts_t.c.campaign == campaign).group_by(alerts_t.c.state)),
            }

        found = await run_read(self.engine, work)
        figures = await run_read(self.engine, lambda conn: self._figures(conn, cid, EPOCH))
        window = (await self.campaign_figures(campaign))[campaign]
        return {
            "campaign": campaign,
            "status": row.status,
            "paused_reason": row.paused_reason,
            "figures": dataclasses.asdict(figures),
            "since_resumed": dataclasses.asdict(window),
            "leads": {str(k): v for k, v in found["leads"].items()},
            "emails": {str(k): v for k, v in found["emails"].items()},
            "sent_by_step": {int(k): v for k, v in found["sent_by_step"].items()},
            "replies": {str(k): v for k, v in found["replies"].items()},
            "unverified": {str(k): v for k, v in found["unverified"].items()},
            # Written by a person (machine notices such as read receipts left out): the
            # numerator of the reply rate.
            "human_replies": sum(
                v for k, v in found["human"].items() if not is_machine_notice(*str(k).split("|", 1))
            ),
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

#: How long a lead waits after its email could not be built before it is tried again.
NOT_BUILT_RETRY = timedelta(days=1)
#: Attempts kept per outbound row (a row is retried a handful of times at most).
MAX_REPLIES = 20


def _job(outbound_id: int, g: Any, spec: CampaignSpec, previous: Sequence[Any]) -> OutboundJob:
    """The job of a row about to be claimed, from the gate's row and the earlier steps."""
    box = next((m for m in spec.mailboxes if m.address.lower() == g.mailbox.lower()), None)
    fields = {k: v for k, v in (g.variables or {}).items() if isinstance(k, str)}
    fields.update(
        {
            "email": g.email,
            "first_name": g.first_name or "",
            "last_name": g.last_name or "",
            "company": g.company or "",
            "timezone": g.timezone or spec.timezone,
        }
    )
    name = " ".join(p for p in (g.first_name, g.last_name) if p) or None
    first_subject = previous[0].subject if previous and previous[0].subject else ""
    if first_subject and not first_subject.lower().startswith("re:"):
        first_subject = f"Re: {first_subject}"
    return OutboundJob(
        outbound_id=outbound_id,
        lead_id=int(g.lead_id),
        campaign=g.name,
        step=int(g.step),
        variant=g.variant or "A",
        mailbox=g.mailbox,
        display_name=box.display_name if box else None,
        transport=box.transport if box else "default",
        recipient=g.recipient,
        recipient_name=name,
        message_id=g.message_id,
        thread_ids=tuple(p.message_id for p in previous),
        first_subject=first_subject,
        attempts=int(g.attempts) + 1,
        spec=spec,
        lead_fields=fields,
    )


def _goes_again(row: Any) -> bool:
    """Does a planned step whose row exists go out again? When it failed, was never sent,
    or soft-bounced after it was last sent (the lead rules rolled the lead back to it)."""
    if row.status in (OutboundStatus.FAILED.value, OutboundStatus.CANCELLED.value):
        return True
    if row.status in (OutboundStatus.SENT.value, OutboundStatus.UNCONFIRMED.value) and row.bounce == "soft":
        bounced, sent = _aware(row.bounce_at), _aware(row.sent_at)
        return bounced is not None and (sent is None or bounced >= sent)
    return False


def _reply_line(reply: AttemptReply) -> str:
    """One line for `last_error`: the code and the server's words, as it said them."""
    return f"{reply.stage}: {reply.code or ''} {reply.text}".replace(": ", ": ", 1).strip()[:500]


def _stronger_bounce(kind: str) -> Any:
    """The bounce column after a new final failure of `kind`: a hard one is never softened."""
    return sa.case((outbound_t.c.bounce == "hard", "hard"), else_=kind)


def _stronger_bounce_reason(kind: str, reason: str) -> Any:
    """The bounce reason that goes with `_stronger_bounce`: a hard bounce keeps its reason."""
    if kind == "hard":
        return reason
    return sa.case((outbound_t.c.bounce == "hard", outbound_t.c.bounce_reason), else_=reason)


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """`items` in slices small enough for one IN (...) list on every backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _clean_id(value: object) -> str | None:
    """A Message-ID as stored: `<...>`, and one that would not fit its column (RFC 5322's
    998 characters) as a hash of itself, so it still never matches one of ours by accident."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    start, end = text.find("<"), text.find(">")
    found = text[start : end + 1] if start != -1 and end > start else f"<{text.split()[0]}>"
    if len(found) > cam_tables.MESSAGE_ID or any(ord(ch) < 32 for ch in found):
        return f"<{stable_hash(found)}@too-long.invalid>"
    return found


def _address(value: object) -> str | None:
    """The sender's real address, as the classifier reads it (never one written in the
    display name, quoted or not); None when there is none or it would not fit its column."""
    from aicmo_actors.cam.classify.parse import mailbox_addresses

    found = mailbox_addresses(str(value or ""), limit=1)
    address = normalise_address(found[0]) if found else ""
    return address if address and len(address) <= cam_tables.ADDRESS and address.isprintable() else None


def _inbound_row(inbox: str, uidvalidity: int, m: FetchedMessage, now: datetime) -> dict[str, Any]:
    """A fetched message as a row of cam_inbound_emails, every value fitted to its column."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    headers = BytesHeaderParser(policy=compat32).parsebytes(m.raw[:65536])

    def text(name: str, limit: int) -> str:
        try:
            return " ".join(str(headers.get(name) or "").split())[:limit]
        except Exception:
            return ""

    set_aside = None
    if m.truncated:
        set_aside = f"larger than the {m.size_limit or 0:,} byte limit ({m.size or 0:,} bytes): stored its headers only"
    return {
        "mailbox": inbox,
        "uidvalidity": uidvalidity,
        "uid": m.uid,
        "message_id": _clean_id(text("Message-ID", 4000)),
        "in_reply_to": _clean_id(text("In-Reply-To", 4000)),
        "references_header": text("References", 4000),
        "from_address": _address(text("From", 4000)),
        "subject": text("Subject", 500),
        "raw": m.raw,
        "received_at": m.internal_date or now,
        "stored_at": now,
        "set_aside": set_aside,
        "size": m.size if m.size is not None else len(m.raw),
    }


def _stub_row(row: dict[str, Any], why: str) -> dict[str, Any]:
    """What is kept of a message the database refused: where it was, and why."""
    return {
        **row,
        "message_id": None,
        "in_reply_to": None,
        "references_header": "",
        "from_address": None,
        "subject": "(could not be stored)",
        "raw": b"",
        "set_aside": why[:200],
    }


def stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
