"""`cam.sender`: render, build and send one outbound email, never twice.

The email is rendered and built first, inside the claim's transaction: one that cannot be
made (a variable the lead lacks, a hostile header value, an unknown transport) is
CANCELLED with its true reason before anything is claimed, the lead waits, one alert per
distinct problem goes out, and the campaign pauses when it keeps happening. Then the row
goes QUEUED -> SENDING (committed) -> SMTP transaction -> SENT (committed). A crash
between the two commits leaves SENDING, which becomes UNCONFIRMED (the server may have
it) and is never retried automatically: a duplicate cold email is worse than a missing
one. Temporary failures go back to QUEUED with a doubling delay, up to `max_attempts`,
each answer kept on the row; permanent ones (5xx) mark the row FAILED, and what that means
for the lead (a hard bounce, a soft one, a problem of our sending) is written in the same
transaction: no decision lives only in an event.

While more emails wait in the mailbox, a send's SENT is committed in the same transaction
as the next email's claim (one commit per email); the last one flushes itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from aicmo_actors.cam.classify import judge_smtp_reply
from aicmo_actors.cam.lead_rules import DEFAULT_RULES, LeadRules
from aicmo_actors.cam.repos import (
    AttemptReply,
    CamStore,
    Finished,
    Held,
    NotSent,
    OutboundJob,
    SendFailure,
)
from aicmo_actors.cam.templates import render_step
from aicmo_actors.cam.texts import follow_up_subject
from aicmo_actors.cam.unsubscribe import (
    return_path_address,
    sign_return_path,
    sign_token,
    unsubscribe_mailto,
    unsubscribe_url,
)
from aicmo_actors.gateways.mail_message import MAX_SUBJECT_CHARS, build_message
from aicmo_actors.gateways.transport import MailTransport, SendResult
from aicmo_actors.runtime import Actor
from contracts.cam import (
    BounceReason,
    CampaignPaused,
    EmailFailed,
    EmailSent,
    FlushSends,
    LeadStateChanged,
    OutboundStatus,
    ReplyCategory,
    RetryAlert,
    SendEmail,
)

ALERTS = "cam.alerts"

#: Makes the transport of a sending mailbox from (transport profile name, mailbox address).
TransportFactory = Callable[[str, str], MailTransport]


class Sender(Actor[SendEmail | FlushSends]):
    """One message at a time per process; connections are reused per sending mailbox."""

    mailbox_size = 100

    def __init__(
        self,
        store: CamStore,
        transports: TransportFactory,
        *,
        secret: Callable[[], bytes],
        public_url: str,
        max_attempts: int = 5,
        retry_base_s: float = 300.0,
        rules: LeadRules = DEFAULT_RULES,
        pause_after_errors: int = 3,
        return_paths: Callable[[str], bool] | None = None,
        transport_known: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self.make_transport = transports
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.rules = rules
        self.pause_after_errors = pause_after_errors
        #: Do the mailboxes of this transport profile take per-message return paths (VERP)?
        self.return_paths = return_paths or (lambda transport: False)
        #: Is a transport profile of this name configured? Default: any is.
        self.transport_known = transport_known or (lambda name: True)
        self._transports: dict[str, MailTransport] = {}
        self._pending: Finished | None = None  # accepted by the server, SENT not yet committed

    async def on_start(self) -> None:
        # Nothing of an earlier incarnation is in flight any more: a SENDING row it left
        # (killed mid-send, or its last SENT lost with it) may have reached the server.
        interrupted = await self.store.outbox.mark_interrupted(self.ctx.clock.now())
        if interrupted:
            self.ctx.log.warning("interrupted sends marked UNCONFIRMED", count=interrupted)

    async def on_stop(self) -> None:
        try:
            await self._flush()
        except Exception:
            self.ctx.log.warning("could not commit the last send: it stays SENDING, then UNCONFIRMED", exc_info=True)
        for transport in self._transports.values():
            try:
                await transport.close()
            except Exception:
                self.ctx.log.warning("closing a transport failed", exc_info=True)
        self._transports.clear()

    def _transport(self, job: OutboundJob) -> MailTransport:
        transport = self._transports.get(job.mailbox)
        if transport is None:
            transport = self._transports[job.mailbox] = self.make_transport(job.transport, job.mailbox)
        return transport

    async def _flush(self) -> None:
        finished = self._pending
        if finished is not None:
            await self.store.outbox.finish(finished)  # if this fails, on_stop tries again
            self._pending = None
            await self._published(finished)

    async def _published(self, finished: Finished) -> None:
        job = finished.job
        await self.ctx.publish(
            EmailSent(
                outbound_id=job.outbound_id,
                lead_id=job.lead_id,
                campaign=job.campaign,
                step=job.step,
                mailbox=job.mailbox,
                email_message_id=job.message_id,
                recipient=job.recipient,
                variant=job.variant,
            )
        )

    def _prepare(self, job: OutboundJob, now: datetime) -> tuple[EmailMessage, str]:
        """Render and build the email (inside the claim's transaction, before the claim):
        whatever goes wrong here is this email's own problem, found before anything is sent."""
        if not self.transport_known(job.transport):
            raise ValueError(
                f"mailbox {job.mailbox} names transport {job.transport!r}, which AICMO_TRANSPORTS does not define"
            )
        token = sign_token(self.secret(), job.lead_id)
        link = unsubscribe_url(self.public_url, token)
        rendered = render_step(
            job.spec,
            job.step - 1,
            job.variant,
            job.lead_fields,
            {"unsubscribe_url": link, "sender_address": job.mailbox},
        )
        subject = rendered.subject
        if job.step > 1 and not subject.strip():
            subject = follow_up_subject(job.first_subject)
        email = build_message(
            from_address=job.mailbox,
            from_name=job.display_name,
            to_address=job.recipient,
            to_name=job.recipient_name,
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            message_id=job.message_id,
            in_reply_to=job.thread_ids[-1] if job.thread_ids else None,
            references=tuple(job.thread_ids),
            list_unsubscribe_url=link,
            list_unsubscribe_mailto=unsubscribe_mailto(job.mailbox, token),
            date=now,
        )
        return email, subject[:MAX_SUBJECT_CHARS]  # as sent (build_message cuts a very long subject)

    def _mail_from(self, job: OutboundJob) -> str:
        """The envelope sender: the mailbox, or its per-message return path (VERP)."""
        if self.return_paths(job.transport):
            address = return_path_address(job.mailbox, sign_return_path(self.secret(), job.outbound_id))
            if address is not None:
                return address
        return job.mailbox

    async def receive(self, message: SendEmail | FlushSends) -> None:
        if isinstance(message, FlushSends):
            await self._flush()
            return
        now = self.ctx.clock.now()
        finished = self._pending
        job = await self.store.outbox.claim(
            message.outbound_id,
            now,
            finish=finished,
            prepare=self._prepare,
            pause_after_errors=self.pause_after_errors,
        )
        self._pending = None
        if finished is not None:
            await self._published(finished)
        if isinstance(job, Held):
            # Not now (a retry or a row handed on again came due outside the lead's window,
            # or its campaign or mailbox is paused): the row carries the time, come back then.
            self.ctx.schedule((job.until - now).total_seconds(), message)
            return
        if isinstance(job, NotSent):
            await self._not_sent(job)
            return
        if job is None:
            return  # already sent, failed, unconfirmed, or not due yet: nothing to do
        result = await self._transport(job).send(job.email, mail_from=self._mail_from(job), rcpt_to=[job.recipient])
        # Refused at connect (which includes STARTTLS and AUTH) says the server or our login is
        # the problem; any later answer means the server took us, whatever it said of the email.
        reached = result.stage != "connect"
        self.ctx.report_dependency(
            f"smtp:{job.transport}",
            ok=reached,
            detail="" if reached else f"{result.smtp_code or ''} {result.smtp_text}".strip(),
        )
        await self._settle(job, result, job.subject or "")

    async def _not_sent(self, outcome: NotSent) -> None:
        job = outcome.job
        self.ctx.log.error(
            "email not sent: it could not be built",
            outbound_id=job.outbound_id,
            lead_id=job.lead_id,
            campaign=job.campaign,
            step=job.step,
            error=outcome.error,
        )
        if outcome.paused:
            self.ctx.log.warning("campaign paused", campaign=job.campaign, reason=outcome.paused)
            await self.ctx.publish(CampaignPaused(campaign=job.campaign, reason=outcome.paused))
        for alert_id in outcome.alert_ids:
            await self.ctx.ref(ALERTS, RetryAlert).tell(RetryAlert(alert_id=alert_id))

    async def _settle(self, job: OutboundJob, result: SendResult, subject: str) -> None:
        now = self.ctx.clock.now()
        log = self.ctx.log.bind(outbound_id=job.outbound_id, lead_id=job.lead_id, step=job.step, campaign=job.campaign)
        settled = settle(
            job, result, now, subject=subject, max_attempts=self.max_attempts, retry_base_s=self.retry_base_s
        )
        if isinstance(settled, Finished) and settled.status is OutboundStatus.SENT:
            self._pending = settled
            log.info("email sent", mailbox=job.mailbox, attempt=job.attempts)
            if not self.ctx.waiting:
                # Nothing queued behind us to carry the commit: flush right after this.
                self.ctx.self_ref.try_tell(FlushSends())
            return
        if isinstance(settled, Finished):
            log.warning("send unconfirmed: not retried", smtp_code=result.smtp_code, stage=result.stage)
            await self.store.outbox.finish(settled)
            return
        if isinstance(settled, Retry):
            log.info(
                "temporary failure: will retry",
                attempt=job.attempts,
                retry_at=settled.at.isoformat(),
                smtp_code=result.smtp_code,
                reason=settled.reply.reason,
            )
            await self.store.outbox.retry_later(job, settled.at, settled.reply)
            self.ctx.schedule(
                settled.delay_s,
                SendEmail(
                    outbound_id=job.outbound_id,
                    lead_id=job.lead_id,
                    campaign=job.campaign,
                    step=job.step,
                    mailbox=job.mailbox,
                ),
            )
            return
        failure = settled
        outcome = await self.store.outbox.fail(failure, self.rules)
        log.info(
            "send failed",
            permanent=failure.permanent,
            hard=failure.hard,
            reason=failure.reason.value,
            smtp_code=result.smtp_code,
            lead=outcome.cause,
        )
        if outcome.change is not None:
            old, new = outcome.change
            await self.ctx.publish(
                LeadStateChanged(lead_id=job.lead_id, campaign=job.campaign, old=old, new=new, cause=outcome.cause)
            )
        await self.ctx.publish(
            EmailFailed(
                outbound_id=job.outbound_id,
                lead_id=job.lead_id,
                campaign=job.campaign,
                step=job.step,
                mailbox=job.mailbox,
                permanent=failure.permanent,
                hard=failure.hard,
                sending_side=failure.sending_side,
                recipient=job.recipient,
                smtp_code=result.smtp_code,
                status=failure.reply.status,
                reason=failure.reason,
                detail=_reply_text(failure.reply),
            )
        )


@dataclass(frozen=True)
class Retry:
    """A temporary refusal with attempts left: send again `delay_s` from now (at `at`)."""

    at: datetime
    delay_s: float
    reply: AttemptReply


def settle(
    job: OutboundJob, result: SendResult, now: datetime, *, subject: str, max_attempts: int, retry_base_s: float
) -> Finished | Retry | SendFailure:
    """What one attempt's result means, pure: SENT (the server's 250), UNCONFIRMED (the
    connection was lost after the data: the server may have it, never retried), a retry
    after a temporary refusal (doubling delays, up to `max_attempts`), or a final failure
    (a 5xx, or a 4xx out of attempts: `expired` unless the reply says more), judged by the
    same reading of SMTP replies as a bounce."""
    if result.outcome == "accepted":
        return Finished(
            job,
            OutboundStatus.SENT,
            now,
            subject=subject,
            reply=AttemptReply(now, result.stage, result.smtp_code, result.smtp_text),
        )
    judgement = judge_smtp_reply(result.smtp_code, result.smtp_text, stage=result.stage)
    reason = judgement.reason if judgement.reason is not None else BounceReason.UNDEFINED
    reply = AttemptReply(now, result.stage, result.smtp_code, result.smtp_text, judgement.status, reason.value)
    if result.outcome == "unconfirmed":
        detail = f"{result.stage}: {result.smtp_text}"[:500]
        return Finished(job, OutboundStatus.UNCONFIRMED, now, error=detail, reply=reply)
    if result.outcome == "temporary" and job.attempts < max_attempts:
        delay = retry_base_s * 2 ** (job.attempts - 1)
        return Retry(now + timedelta(seconds=delay), delay, reply)
    permanent = result.outcome == "permanent"
    hard = permanent and judgement.category is ReplyCategory.BOUNCE_HARD
    if not permanent:
        reason = BounceReason.EXPIRED if reason in (BounceReason.UNDEFINED, BounceReason.NETWORK_ERROR) else reason
    return SendFailure(job, now, reply, permanent, hard, judgement.sending_side, reason)


def _reply_text(reply: AttemptReply) -> str:
    return f"{reply.code or ''} {reply.text}".strip()[:500]
