"""`cam.sender`: render, build and send one outbound email, never twice.

The outbound row goes QUEUED -> SENDING (committed) -> SMTP transaction -> SENT
(committed). A crash between the two commits leaves SENDING, which becomes UNCONFIRMED
and is never retried automatically: a duplicate cold email is worse than a missing one.
Temporary failures go back to QUEUED with a doubling delay, up to `max_attempts`;
permanent ones (5xx) mark the row FAILED and are judged like a bounce.

While more emails wait in the mailbox, a send's SENT is committed in the same transaction
as the next email's claim (one commit per email); the last one flushes itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.classify import judge_smtp_reply
from aicmo_actors.cam.send_rules import in_window, next_window_start, zone
from aicmo_actors.cam.store import CamStore, Finished, Held, OutboundJob
from aicmo_actors.cam.templates import render_step
from aicmo_actors.cam.unsubscribe import sign_token, unsubscribe_mailto, unsubscribe_url
from aicmo_actors.gateways.mail_message import build_message
from aicmo_actors.gateways.transport import MailTransport, SendResult
from aicmo_actors.runtime import Actor
from contracts.cam import (
    BounceReason,
    EmailFailed,
    EmailSent,
    FlushSends,
    OutboundStatus,
    ReplyCategory,
    SendEmail,
)

#: Makes the transport of a sending mailbox from (transport profile name, mailbox address).
TransportFactory = Callable[[str, str], MailTransport]


def window_closed_until(spec: CampaignSpec, timezone: str | None, now: datetime) -> datetime | None:
    """None when the lead's send window is open now, else when it next opens."""
    tz = zone(timezone, spec.timezone)
    return None if in_window(spec.window, tz, now) else next_window_start(spec.window, tz, now)


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
    ) -> None:
        self.store = store
        self.make_transport = transports
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self._transports: dict[str, MailTransport] = {}
        self._pending: Finished | None = None  # accepted by the server, SENT not yet committed

    async def on_start(self) -> None:
        # Nothing of an earlier incarnation is in flight any more: a SENDING row it left
        # (killed mid-send, or its last SENT lost with it) may have reached the server.
        interrupted = await self.store.mark_interrupted_sends(self.ctx.clock.now())
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
            await self.store.finish_send(finished)  # if this fails, on_stop tries again
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
            )
        )

    async def receive(self, message: SendEmail | FlushSends) -> None:
        if isinstance(message, FlushSends):
            await self._flush()
            return
        now = self.ctx.clock.now()
        finished = self._pending
        job = await self.store.claim_outbound(message.outbound_id, now, finish=finished, window=window_closed_until)
        self._pending = None
        if finished is not None:
            await self._published(finished)
        if isinstance(job, Held):
            # Not now (a retry or a row handed on again came due outside the lead's window,
            # or its campaign or mailbox is paused): the row carries the time, come back then.
            self.ctx.schedule((job.until - now).total_seconds(), message)
            return
        if job is None:
            return  # already sent, failed, unconfirmed, or not due yet: nothing to do
        token = sign_token(self.secret(), job.lead_id)
        rendered = render_step(
            job.spec,
            job.step - 1,
            job.variant,
            job.lead_fields,
            {"unsubscribe_url": unsubscribe_url(self.public_url, token)},
        )
        subject = rendered.subject
        if job.step > 1 and not subject.strip():
            subject = job.first_subject
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
            list_unsubscribe_url=unsubscribe_url(self.public_url, token),
            list_unsubscribe_mailto=unsubscribe_mailto(job.mailbox, token),
            date=now,
        )
        result = await self._transport(job).send(email, mail_from=job.mailbox, rcpt_to=[job.recipient])
        await self._settle(job, result, subject)

    async def _settle(self, job: OutboundJob, result: SendResult, subject: str) -> None:
        now = self.ctx.clock.now()
        log = self.ctx.log.bind(outbound_id=job.outbound_id, lead_id=job.lead_id, step=job.step)
        if result.outcome == "accepted":
            self._pending = Finished(job, OutboundStatus.SENT, now, subject=subject)
            if not self.ctx.waiting:
                # Nothing queued behind us to carry the commit: flush right after this.
                self.ctx.self_ref.try_tell(FlushSends())
            return
        if result.outcome == "unconfirmed":
            log.warning("send unconfirmed: not retried", smtp_code=result.smtp_code, stage=result.stage)
            detail = f"{result.stage}: {result.smtp_text}"[:500]
            await self.store.finish_send(Finished(job, OutboundStatus.UNCONFIRMED, now, error=detail))
            return
        judgement = judge_smtp_reply(result.smtp_code, result.smtp_text, stage=result.stage)
        detail = f"{result.smtp_code or ''} {result.smtp_text}".strip()[:500]
        if result.outcome == "temporary" and job.attempts < self.max_attempts:
            delay = self.retry_base_s * 2 ** (job.attempts - 1)
            retry_at = now + timedelta(seconds=delay)
            log.info("temporary failure: will retry", attempt=job.attempts, retry_at=retry_at.isoformat(), smtp_code=result.smtp_code)
            await self.store.mark_retry(job.outbound_id, retry_at, detail, result.smtp_code)
            self.ctx.schedule(delay, SendEmail(
                outbound_id=job.outbound_id, lead_id=job.lead_id, campaign=job.campaign, step=job.step, mailbox=job.mailbox
            ))
            return
        permanent = result.outcome == "permanent"
        hard = permanent and judgement.category is ReplyCategory.BOUNCE_HARD
        reason = judgement.reason if judgement.reason is not None else BounceReason.UNDEFINED
        log.info("send failed", permanent=permanent, reason=reason.value, smtp_code=result.smtp_code)
        await self.store.mark_failed(job.outbound_id, now, detail, result.smtp_code)
        await self.ctx.publish(
            EmailFailed(
                outbound_id=job.outbound_id,
                lead_id=job.lead_id,
                campaign=job.campaign,
                step=job.step,
                mailbox=job.mailbox,
                permanent=permanent,
                hard=hard,
                sending_side=judgement.sending_side,
                recipient=job.recipient,
                smtp_code=result.smtp_code,
                status=judgement.status,
                reason=reason,
                detail=detail,
            )
        )
