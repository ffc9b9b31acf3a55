"""The outbox (`cam_outbound_emails`): every email we send, from QUEUED to its end.

QUEUED -> SENDING is the claim, committed before any byte goes out; only the sender makes
it, and only the sender settles a SENDING row (SENT, UNCONFIRMED, back to QUEUED for a
retry, or FAILED). The claim is the one fenced write: it matches only while this process
holds the worker lease with its current fencing token, so a stale holder cannot send.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import texts
from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.lead_rules import (
    DEFAULT_RULES,
    LeadRules,
    LeadView,
    check_transition,
    decide_send_failure,
)
from aicmo_actors.cam.planning import PlannedSend, SchedulePlan
from aicmo_actors.cam.repos.alerts import insert_alert
from aicmo_actors.cam.repos.campaigns import Specs, pause_in
from aicmo_actors.cam.repos.leads import advance_in, apply_decision_in
from aicmo_actors.cam.repos.sql import EPOCH, aware, param, stable_hash
from aicmo_actors.cam.send_rules import may_send, window_closed_until
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_sending_mailboxes as mailboxes_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.cam.tables import cam_variant_assignments as assignments_t
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.sql import chunks
from aicmo_actors.storage.work import run_read, run_write
from contracts.cam import BounceReason, LeadState, OutboundStatus

#: The reason a row gets when its email could not be rendered or built at send time.
NOT_BUILT = "not sent: could not build the email: "
#: How long a send waits while its campaign or mailbox is paused before it is looked at again.
PAUSED_HOLD = timedelta(hours=1)
#: How long a lead waits after its email could not be built before it is tried again.
NOT_BUILT_RETRY = timedelta(days=1)
#: Attempts kept per outbound row (a row is retried a handful of times at most).
MAX_REPLIES = 20


@dataclass(frozen=True)
class QueuedSend:
    """A QUEUED row to hand to the sender (the scheduler makes its `SendEmail`)."""

    outbound_id: int
    lead_id: int
    campaign: str
    step: int
    mailbox: str


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
    #: The subject of step 1 as it was sent ("" before any was).
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
Prepare = Callable[[OutboundJob, datetime], tuple[Any, str]]


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
    """What `fail` wrote: the lead's state change, if any."""

    change: tuple[LeadState, LeadState] | None
    cause: str


@dataclass(frozen=True)
class Held:
    """A claim that found the send must wait (the window is closed, the campaign or the
    mailbox paused): the row stays QUEUED with `until` as its send time."""

    until: datetime
    why: str


# The send path's statements, built once: building a statement and its cache key costs more
# than SQLite takes to run it. Each takes its values as bind parameters.
_SENDING = OutboundStatus.SENDING.value
_CLAIM_RETURNS = (outbound_t.c.id,)
_CLAIM_WHERE = (
    outbound_t.c.id == sa.bindparam("_id"),
    outbound_t.c.status == OutboundStatus.QUEUED.value,
    sa.or_(
        outbound_t.c.next_attempt_at.is_(None),
        outbound_t.c.next_attempt_at <= param("_due", outbound_t.c.next_attempt_at),
    ),
)
_CLAIM_VALUES = {
    "status": _SENDING,
    "sending_at": param("_at", outbound_t.c.sending_at),
    "attempts": outbound_t.c.attempts + 1,
}
_INTERRUPTED_WHERE = (outbound_t.c.id == sa.bindparam("_id"), outbound_t.c.status == _SENDING)
_INTERRUPTED_VALUES = {
    "status": OutboundStatus.UNCONFIRMED.value,
    "last_error": "interrupted mid-send (actor restarted): the server may have it",
    "sent_at": sa.func.coalesce(outbound_t.c.sending_at, param("_at", outbound_t.c.sent_at)),
}
_INTERRUPTED_RETURNS = (outbound_t.c.lead_id, outbound_t.c.step, outbound_t.c.campaign_id)
#: Everything the last check before a send and the email itself need, in one query: the
#: row, its lead, its campaign, its mailbox's pause and the recipient's suppression.
_GATE = (
    sa.select(
        outbound_t.c.status,
        outbound_t.c.lead_id,
        outbound_t.c.step,
        outbound_t.c.variant,
        outbound_t.c.mailbox,
        outbound_t.c.recipient,
        outbound_t.c.message_id,
        outbound_t.c.attempts,
        outbound_t.c.next_attempt_at,
        leads_t.c.state.label("lead_state"),
        leads_t.c.email,
        leads_t.c.first_name,
        leads_t.c.last_name,
        leads_t.c.company,
        leads_t.c.timezone,
        leads_t.c.variables,
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
    .values(next_attempt_at=param("_until", outbound_t.c.next_attempt_at))
)
_CANCEL = (
    outbound_t.update()
    .where(outbound_t.c.id == sa.bindparam("_id"), outbound_t.c.status == OutboundStatus.QUEUED.value)
    .values(status=OutboundStatus.CANCELLED.value, last_error=sa.bindparam("_why"))
)
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
        sent_at=param("_at", outbound_t.c.sent_at),
        accepted_at=sa.func.coalesce(outbound_t.c.accepted_at, param("_accepted", outbound_t.c.accepted_at)),
        subject=sa.func.coalesce(param("_subject", outbound_t.c.subject), outbound_t.c.subject),
        last_error=param("_error", outbound_t.c.last_error),
        smtp_code=param("_code", outbound_t.c.smtp_code),
        replies=param("_replies", outbound_t.c.replies),
    )
)


class OutboxRepo:
    def __init__(
        self, engine: AsyncEngine, specs: Specs, fence: Callable[[], sa.ColumnElement[bool]] | None = None
    ) -> None:
        self.engine = engine
        self.specs = specs
        self.fence = fence
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)
        self._claim_cache: tuple[Any, sa.Update, sa.Update] | None = None

    # -- the scheduler's side ---------------------------------------------------------------
    async def apply_plan(self, plan: SchedulePlan, now: datetime) -> list[tuple[PlannedSend, QueuedSend]]:
        """Write one scheduler pass in one transaction: deferrals, ends, resumptions and the
        QUEUED rows (each lead taken off the schedule). Returns the sends that were queued;
        a (lead, step) row that exists and did not fail is left alone (a replay after a crash).
        """
        check_transition(LeadState.ACTIVE, LeadState.COMPLETED)
        check_transition(LeadState.ACTIVE, LeadState.STOPPED)
        check_transition(LeadState.PAUSED, LeadState.ACTIVE)

        def work(conn: Connection) -> list[tuple[PlannedSend, QueuedSend]]:
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
                for chunk in chunks(ids):
                    conn.execute(
                        leads_t.update()
                        .where(leads_t.c.id.in_(chunk), leads_t.c.state == LeadState.ACTIVE.value)
                        .values(state=state.value, state_reason=why, next_action_at=None, updated_at=now)
                    )
            for chunk in chunks(plan.resumed):
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
            return _queue_sends(conn, plan.sends, now) if plan.sends else []

        return await run_write(self.engine, work)

    async def assigned_variants(self, lead_ids: Collection[int]) -> dict[int, str]:
        """The variant each of these leads (of bandit campaigns) first got, for those that have one."""
        if not lead_ids:
            return {}

        def work(conn: Connection) -> dict[int, str]:
            out: dict[int, str] = {}
            for chunk in chunks(sorted(lead_ids)):
                rows = conn.execute(
                    sa.select(assignments_t.c.lead_id, assignments_t.c.variant).where(
                        assignments_t.c.lead_id.in_(chunk)
                    )
                )
                out.update({int(r.lead_id): r.variant for r in rows})
            return out

        return await run_read(self.engine, work)

    async def queued_ready(self, now: datetime, limit: int, *, lost: bool = False, after: int = 0) -> list[QueuedSend]:
        """QUEUED rows to hand to the sender again, by id above `after` (to page through them:
        rows handed on stay QUEUED until the sender claims them).

        Each tick: rows with a send time that has come (a retry after a temporary failure, a
        paced send), whose timer a process restart lost. With `lost` (at start-up): every
        QUEUED row that is due, since no SendEmail of an earlier process survived it.
        """
        due = outbound_t.c.next_attempt_at <= now
        when = sa.or_(outbound_t.c.next_attempt_at.is_(None), due) if lost else due
        query = (
            sa.select(
                outbound_t.c.id, outbound_t.c.lead_id, campaigns_t.c.name, outbound_t.c.step, outbound_t.c.mailbox
            )
            .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
            .where(outbound_t.c.status == OutboundStatus.QUEUED.value, outbound_t.c.id > after, when)
            .order_by(outbound_t.c.id)
            .limit(limit)
        )
        if lost:
            rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        else:  # a tick: the first send time of the queue is kept until the queue changes
            first = earliest(
                outbound_t.c.next_attempt_at,
                outbound_t.c.status == OutboundStatus.QUEUED.value,
                outbound_t.c.id > after,
            )
            rows = await self.kept.read_if(
                ("queued", after), first, come(now), lambda conn: conn.execute(query).all(), []
            )
        return [QueuedSend(int(r[0]), int(r[1]), r[2], int(r[3]), r[4]) for r in rows]

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
            for at in [*(aware(a) for a in sent), *(max(aware(a) or now, now) for a in planned)]:
                if at is None:
                    continue
                day = day_of(at)
                days[day] = days.get(day, 0) + 1
                last = at if last is None or at > last else last
            previous = conn.execute(
                sa.select(sa.func.max(outbound_t.c.sent_at)).where(
                    outbound_t.c.mailbox == mailbox, outbound_t.c.status.in_(gone)
                )
            ).scalar_one()
            previous = aware(previous)
            if previous is not None and (last is None or previous > last):
                last = previous
            return days, last

        return await run_read(self.engine, work)

    # -- the sender's side ------------------------------------------------------------------
    async def mark_interrupted(self, now: datetime) -> int:
        """SENDING rows left by a process or incarnation that died mid-send -> UNCONFIRMED.

        Only the sender calls this, when it starts: no send of this process is in flight
        then. The server may have them, so they are not sent again; and like any UNCONFIRMED
        send they count as sent for the sequence, so each lead moves on to its next step.
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
                advance_in(conn, row.lead_id, row.step, self.specs.by_id(conn, row.campaign_id), now)
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
                outbound_t.update()
                .where(*_INTERRUPTED_WHERE, *extra)
                .values(**_INTERRUPTED_VALUES)
                .returning(*_INTERRUPTED_RETURNS)
            )
            self._claim_cache = cached = (fence, claim, interrupted)
        return cached[1], cached[2]

    async def claim(
        self,
        outbound_id: int,
        now: datetime,
        *,
        finish: Finished | None = None,
        prepare: Prepare | None = None,
        pause_after_errors: int = 3,
    ) -> OutboundJob | Held | NotSent | None:
        """QUEUED -> SENDING, committed before any byte goes out. None: not ours to send.

        First the last check, in the same transaction, by the rule the scheduler planned by
        (`send_rules.may_send`): a row whose lead is no longer ACTIVE (it replied,
        unsubscribed, bounced, paused on an auto-reply) or whose address is now suppressed is
        not sent (CANCELLED, with the reason); one whose campaign or mailbox is paused, or
        whose lead's send window is closed (a retry, or a row handed on again after a
        restart, comes due whenever), waits: `Held`. Then `prepare` renders and builds the
        email: if it cannot (a variable the lead lacks, a hostile header value), the row is
        CANCELLED with that reason before anything is claimed (`NotSent`), never SENDING.

        The claim is one conditional UPDATE (status, send time and the lease's fence in its
        WHERE clause), so two claimers can never both win. A row found SENDING instead was
        being sent when this sender's previous incarnation died: it becomes UNCONFIRMED
        (the server may have it) and is not sent again. `finish`: the previous send's
        outcome, committed in the same transaction (one commit per email instead of two).
        """
        claim, interrupted = self._claim_statements()

        def gate(conn: Connection, g: Any) -> Held | bool:
            """For a QUEUED row: True, claim it; False, cancelled; Held, wait."""
            verdict = may_send(
                campaign_active=g.campaign_status == "active",
                suppressed=g.suppressed is not None,
                lead_state=LeadState(g.lead_state),
                window_opens=lambda: window_closed_until(
                    self.specs.by_name(conn, g.name, g.spec_hash), g.timezone, now
                ),
                mailbox_paused=g.mailbox_status == "paused",
            )
            if verdict is None:
                return True
            if verdict.kind in ("suppressed", "lead"):
                conn.execute(_CANCEL, {"_id": outbound_id, "_why": f"not sent: {verdict.why}"})
                return False
            if verdict.kind == "window":
                assert verdict.opens is not None
                held = Held(verdict.opens, "outside the send window")
            else:
                held = Held(now + PAUSED_HOLD, f"{verdict.kind} paused")
            conn.execute(_HOLD, {"_id": outbound_id, "_until": held.until})
            return held

        def work(conn: Connection) -> OutboundJob | Held | NotSent | None:
            if finish is not None:
                _finish(conn, finish)
            g = conn.execute(_GATE, {"_id": outbound_id}).first()
            if g is None:
                return None
            if g.status == _SENDING:
                # Being sent when this sender's previous incarnation died: the server may have it.
                cut = conn.execute(interrupted, {"_id": outbound_id, "_at": now}).first()
                if cut is not None:
                    advance_in(conn, cut.lead_id, cut.step, self.specs.by_id(conn, cut.campaign_id), now)
                return None
            due = aware(g.next_attempt_at)
            if g.status != OutboundStatus.QUEUED.value or (due is not None and due > now):
                return None  # sent, failed, cancelled, or not due yet: nothing to do
            go = gate(conn, g)
            if go is not True:
                return go if isinstance(go, Held) else None
            spec = self.specs.by_name(conn, g.name, g.spec_hash)
            previous = conn.execute(_JOB_THREAD, {"_lead": g.lead_id, "_step": g.step}).all() if int(g.step) > 1 else []
            job = _job(outbound_id, g, spec, previous)
            if prepare is not None:
                try:
                    email, subject = prepare(job, now)
                except Exception as exc:  # render and build are pure: this email cannot be made
                    return _not_built(conn, job, f"{exc}" or type(exc).__name__, now, pause_after_errors)
                job = replace(job, email=email, subject=subject)
            if conn.execute(claim, {"_id": outbound_id, "_due": now, "_at": now}).first() is None:
                return None  # fenced out (a newer worker holds the lease) or taken meanwhile
            return job

        return await run_write(self.engine, work)

    async def finish(self, finished: Finished) -> None:
        """Commit one send's outcome (SENT or UNCONFIRMED) on its own."""
        await run_write(self.engine, lambda conn: _finish(conn, finished))

    async def retry_later(self, job: OutboundJob, retry_at: datetime, reply: AttemptReply) -> None:
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
                    replies=_replies_with(conn, job, reply),
                )
            )
            why = reply.reason.replace("_", " ") if reply.reason else "a temporary failure"
            conn.execute(
                leads_t.update()
                .where(leads_t.c.id == job.lead_id, leads_t.c.state == LeadState.ACTIVE.value)
                .values(
                    state_reason=(
                        f"waiting: step {job.step} refused for now ({why}), tried again {retry_at:%Y-%m-%d %H:%M} UTC"
                    ),
                    updated_at=reply.at,
                )
            )

        await run_write(self.engine, work)

    async def fail(self, failure: SendFailure, rules: LeadRules = DEFAULT_RULES) -> FailureOutcome:
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
                    bounce=stronger_bounce("hard" if failure.hard else "soft"),
                    bounce_reason=stronger_bounce_reason("hard" if failure.hard else "soft", failure.reason.value),
                    bounce_at=now,
                    replies=_replies_with(conn, job, reply),
                )
            ).rowcount
            if not moved:
                return FailureOutcome(None, "not ours any more (fenced or moved)")
            lead = conn.execute(
                sa.select(leads_t.c.state, leads_t.c.soft_bounces).where(leads_t.c.id == job.lead_id)
            ).first()
            if lead is None:
                return FailureOutcome(None, "no such lead")
            decision = decide_send_failure(
                LeadView(LeadState(lead.state), int(lead.soft_bounces)),
                failure.reason,
                failure.hard,
                failure.sending_side,
                now,
                rules,
            )
            change = apply_decision_in(conn, job.lead_id, decision, now, job.step)
            return FailureOutcome(change, decision.cause)

        return await run_write(self.engine, work)


def _queue_sends(conn: Connection, sends: Sequence[PlannedSend], now: datetime) -> list[tuple[PlannedSend, QueuedSend]]:
    lead_ids = [p.lead_id for p in sends]
    existing: dict[tuple[int, int], Any] = {}
    for chunk in chunks(lead_ids):
        rows = conn.execute(
            sa.select(
                outbound_t.c.id,
                outbound_t.c.lead_id,
                outbound_t.c.step,
                outbound_t.c.status,
                outbound_t.c.mailbox,
                outbound_t.c.bounce,
                outbound_t.c.bounce_at,
                outbound_t.c.sent_at,
            ).where(outbound_t.c.lead_id.in_(chunk))
        )
        existing.update({(int(r.lead_id), int(r.step)): r for r in rows})
    fresh: list[PlannedSend] = []
    queued: list[tuple[PlannedSend, QueuedSend]] = []
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
            queued.append((p, QueuedSend(int(row.id), p.lead_id, p.campaign, p.step, row.mailbox)))
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
            queued.append((p, QueuedSend(int(outbound_id), p.lead_id, p.campaign, p.step, p.mailbox)))
        # A bandit campaign's lead keeps the variant it first got (the first row wins).
        sticky = [
            {"lead_id": p.lead_id, "variant": p.variant, "step": p.step, "assigned_at": now} for p in fresh if p.assign
        ]
        if sticky:
            insert_ignore_in(conn, assignments_t, sticky, conflict_columns=["lead_id"])
    for chunk in chunks(lead_ids):
        conn.execute(leads_t.update().where(leads_t.c.id.in_(chunk)).values(next_action_at=None, updated_at=now))
    return queued


def _goes_again(row: Any) -> bool:
    """Does a planned step whose row exists go out again? When it failed, was never sent,
    or soft-bounced after it was last sent (the lead rules rolled the lead back to it)."""
    if row.status in (OutboundStatus.FAILED.value, OutboundStatus.CANCELLED.value):
        return True
    if row.status in (OutboundStatus.SENT.value, OutboundStatus.UNCONFIRMED.value) and row.bounce == "soft":
        bounced, sent = aware(row.bounce_at), aware(row.sent_at)
        return bounced is not None and (sent is None or bounced >= sent)
    return False


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
        first_subject=(previous[0].subject or "") if previous else "",
        attempts=int(g.attempts) + 1,
        spec=spec,
        lead_fields=fields,
    )


def _not_built(conn: Connection, job: OutboundJob, error: str, now: datetime, pause_after: int) -> NotSent:
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
            state_reason=(
                f"waiting: step {job.step} could not be built ({error[:150]}); tried again {retry:%Y-%m-%d %H:%M} UTC"
            ),
            updated_at=now,
        )
    )
    campaign = conn.execute(
        sa.select(
            campaigns_t.c.id,
            campaigns_t.c.status,
            campaigns_t.c.paused_at,
            campaigns_t.c.resumed_at,
            campaigns_t.c.created_at,
        ).where(campaigns_t.c.name == job.campaign)
    ).one()
    since = max(
        d
        for d in (aware(campaign.paused_at), aware(campaign.resumed_at), aware(campaign.created_at), EPOCH)
        if d is not None
    )
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
        why = texts.not_built_pause_reason(failures, error)
        pause_alert = pause_in(conn, job.campaign, why, now)
        if pause_alert is not None:
            paused = why
            alert_ids.append(pause_alert)
    summary, text = texts.not_built_alert(job.campaign, job.step, job.recipient, error, retry, paused)
    alert_id = insert_alert(
        conn,
        key=f"send_error:{job.campaign}:{stable_hash(error.split(' (')[0])[:24]}",
        kind="send_error",
        lead_id=job.lead_id,
        campaign=job.campaign,
        category=None,
        summary=summary,
        text=text,
        inbound_id=None,
        now=now,
    )
    alert_ids += [alert_id] if alert_id is not None else []
    return NotSent(job, error, tuple(alert_ids), paused)


def _finish(conn: Connection, finished: Finished) -> None:
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
            "_replies": _replies_with(conn, job, reply),
        },
    )
    advance_in(conn, job.lead_id, job.step, job.spec, at)


def _replies_with(conn: Connection, job: OutboundJob, reply: AttemptReply | None) -> list[dict[str, Any]] | None:
    """The row's attempt log with `reply` added (read only when earlier attempts exist)."""
    earlier: list[dict[str, Any]] = []
    if job.attempts > 1:
        stored = conn.execute(
            sa.select(outbound_t.c.replies).where(outbound_t.c.id == job.outbound_id)
        ).scalar_one_or_none()
        earlier = list(stored or [])
    if reply is None:
        return earlier or None
    return [*earlier, reply.as_json()][-MAX_REPLIES:]


def _reply_line(reply: AttemptReply) -> str:
    """One line for `last_error`: the code and the server's words, as it said them."""
    return f"{reply.stage}: {reply.code or ''} {reply.text}".replace(": ", ": ", 1).strip()[:500]


def stronger_bounce(kind: str) -> Any:
    """The bounce column after a new final failure of `kind`: a hard one is never softened."""
    return sa.case((outbound_t.c.bounce == "hard", "hard"), else_=kind)


def stronger_bounce_reason(kind: str, reason: str) -> Any:
    """The bounce reason that goes with `stronger_bounce`: a hard bounce keeps its reason."""
    if kind == "hard":
        return reason
    return sa.case((outbound_t.c.bounce == "hard", outbound_t.c.bounce_reason), else_=reason)
