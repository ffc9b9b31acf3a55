"""`client_review.reviews`: asks the client about each batch of work, follows the answers.

- `RequestReview` (told by production, possibly many times): the first time, the batch, its
  items, its capability link and its review email are stored in one transaction; then, and on
  every later ask, where it stands is published: `ReviewRequested`, and `ItemReviewed` for
  every item answered so far (`ReviewsWithdrawn` when the project's reviews were withdrawn).
- `UnmatchedReply` (from cam): kept only if it answers one of our review emails (its
  In-Reply-To or References holds their Message-ID). The intent CAM read in it
  (`review_intent`) decides: an approval approves every open item of the batch, a change
  request asks for changes on each (the reply's words as the comment), an unclear reply
  decides nothing and a person is alerted (`cam.alerts`, one key per reply).
- `Tick`: verdicts given on the page (or by a person, or by email) not announced yet are
  announced (`ItemReviewed`) and marked; reminders go (`review_reminders` of them, every
  `review_days` business days, 09:00 the client's time); at `auto_approve_at` every open item
  is approved, only where the package allows it; past the last reminder without
  auto-approval a person is alerted, once; then the queued emails are sent.
- `WithdrawReviews` (a cancelled project; may repeat, may come first): links revoked, queued
  emails cancelled, batches withdrawn, and if a review email may have reached the client a
  short notice queued once; `ReviewsWithdrawn` every time.

An announcement is published before the write that marks it (at least once: a crash between
the two repeats it, never loses it). `on_start` marks the emails a dead incarnation left in
flight as unconfirmed (never sent twice). Alerts are stored as "needed" with the decision
behind them and told until `cam.alerts` has them (it delivers once per key).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from aicmo_actors.client_review import rules, texts
from aicmo_actors.client_review.emails import Letterhead, reminder_email, review_email, withdrawn_email
from aicmo_actors.client_review.repos import (
    PURPOSE,
    Batch,
    BatchState,
    InboundReply,
    NewBatch,
    NewItem,
    PendingAlert,
    ReviewStore,
    Withdrawn,
    reminder_email_key,
    review_email_key,
    withdrawn_email_key,
)
from aicmo_actors.client_review.tables import AWAITING
from aicmo_actors.gateways.transport import LazyTransport, MailTransport
from aicmo_actors.runtime import Actor, ActorNotFound
from aicmo_actors.storage.links import make_token
from contracts.cam import AlertRequested, UnmatchedReply
from contracts.client_review import (
    ItemReviewed,
    RequestReview,
    ReviewRequested,
    ReviewsWithdrawn,
    WithdrawReviews,
)
from contracts.clients import ClientInfo
from contracts.runtime import Tick

REVIEWS = "client_review.reviews"
ALERTS = "cam.alerts"
#: Link nonces fit a signed 64-bit column.
_NONCE_BITS = 63
#: What an `UnmatchedReply` read by an older publisher (no `review_intent`) counts as.
_UNREAD = "unclear"
_INTENTS = ("approve", "changes", "unclear")

Incoming = RequestReview | WithdrawReviews | UnmatchedReply | Tick


class Reviews(Actor[Incoming]):
    """Client review's one actor (see the module's docstring)."""

    subscribes = (Tick, UnmatchedReply)

    def __init__(
        self,
        store: ReviewStore,
        *,
        transport: Callable[[], MailTransport],
        letterhead: Letterhead,
        secret: bytes,
        policy: rules.Policy | None = None,
    ) -> None:
        self.store = store
        self.transport = LazyTransport(transport)
        self.head = letterhead
        self.secret = secret
        self.policy = policy or rules.Policy()

    async def on_start(self) -> None:
        interrupted = await self.store.mail.recover(self.ctx.clock.now())
        if interrupted:
            self.ctx.log.warning("review emails interrupted during their send: not sent again", emails=interrupted)

    async def on_stop(self) -> None:
        await self._close_transport()

    async def receive(self, message: Incoming) -> Any:
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, RequestReview):
            await self._request(message)
        elif isinstance(message, WithdrawReviews):
            await self._withdraw(message)
        else:
            await self._reply(message)
        return None

    # -- RequestReview -----------------------------------------------------------------------------------------------

    def _token(self, batch_key: str, nonce: int) -> str:
        return make_token(self.secret, PURPOSE, batch_key, nonce)

    def _prepare(self, message: RequestReview, now: datetime) -> NewBatch:
        """Everything the first ask decides, built before its transaction (ValueError: a
        client the calendar does not know, or no items)."""
        client = message.client
        rules.check_client(client.timezone, client.country)
        if not message.items:
            raise ValueError("a review request without items")
        plan = rules.schedule(
            now, self.policy, message.package.auto_approve_days, country=client.country, tz=client.timezone
        )
        nonce = self.ctx.random.getrandbits(_NONCE_BITS)
        token = self._token(message.idempotency_key, nonce)
        expires = now + timedelta(days=self.policy.link_days)
        email = review_email(
            self.head,
            client,
            key=review_email_key(message.idempotency_key),
            titles=[(i.title, i.type) for i in message.items],
            token=token,
            link_expires_at=expires,
            deadline=plan.deadline_at,
            auto_approve_at=plan.auto_approve_at,
            now=now,
        )
        return NewBatch(
            batch_key=message.idempotency_key,
            project_id=str(message.project_id),
            client=client.model_dump(mode="json"),
            package=message.package.model_dump(mode="json"),
            deadline_at=plan.deadline_at,
            auto_approve_at=plan.auto_approve_at,
            first_action_at=plan.first_action_at,
            link_nonce=nonce,
            token=token,
            link_expires_at=expires,
            reminders_planned=self.policy.reminders,
            reminder_every=self.policy.every,
            items=tuple(
                NewItem(str(i.item_id), i.version, i.title, i.type, i.channel, i.text, i.html) for i in message.items
            ),
            email=email,
        )

    async def _request(self, message: RequestReview) -> None:
        key = message.idempotency_key
        state = await self.store.batches.state(key, str(message.project_id))
        if state is None:
            now = self.ctx.clock.now()
            try:
                new = self._prepare(message, now)
            except ValueError as exc:
                # Nothing is stored: told again (a corrected client), it is tried again.
                self.ctx.log.warning("no review request could be made", batch=key, error=str(exc))
                await self._alert(
                    f"client_review:{key}:refused",
                    "review_refused",
                    f"{message.client.company}: the review request {key} could not be sent: {exc}",
                    str(exc),
                )
                return
            created, state = await self.store.batches.create(new, now)
            if created:
                self.ctx.log.info("review requested", batch=key, items=len(new.items))
        if isinstance(state, Withdrawn):
            await self.ctx.publish(ReviewsWithdrawn(project_id=message.project_id))
            return
        if state.batch.project_id != str(message.project_id):
            self.ctx.log.error("RequestReview key names another project's batch: nothing said", batch=key)
            return
        await self._say_state(state)

    async def _say_state(self, state: BatchState) -> None:
        """Publish where the batch stands (production may have missed it)."""
        batch = state.batch
        project_id = uuid.UUID(batch.project_id)
        if batch.withdrawn_at is not None:
            await self.ctx.publish(ReviewsWithdrawn(project_id=project_id))
            return
        await self.ctx.publish(
            ReviewRequested(
                project_id=project_id,
                batch_key=batch.batch_key,
                deadline=batch.deadline_at,
                auto_approve_at=batch.auto_approve_at,
            )
        )
        answered = [i for i in state.items if i.status != AWAITING]
        for item in answered:
            await self.ctx.publish(self._reviewed(batch.project_id, batch.batch_key, item))
        unannounced = [i.id for i in answered if i.announced_at is None]
        if unannounced:
            await self.store.batches.mark_announced(unannounced, self.ctx.clock.now())

    @staticmethod
    def _reviewed(project_id: str, batch_key: str, item: Any) -> ItemReviewed:
        assert item.reviewed_at is not None and item.reviewed_by is not None
        return ItemReviewed(
            project_id=uuid.UUID(project_id),
            batch_key=batch_key,
            item_id=uuid.UUID(item.item_id),
            version=item.version,
            verdict=item.status,
            comment=item.comment or "",
            by=item.reviewed_by,
            at=item.reviewed_at,
        )

    # -- Tick --------------------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        if await self.store.batches.idle():
            return
        now = self.ctx.clock.now()
        await self._announce()
        for state in await self.store.batches.due(now):
            try:
                await self._step(state, now)
            except Exception:
                # One batch that cannot go on must not hold up the others, nor the emails: it
                # is tried again next tick, and the log says why.
                self.ctx.log.error("could not follow up a review", batch=state.batch.batch_key, exc_info=True)
        await self._announce()
        await self._tell_alerts()
        try:
            sent = await self.store.mail.send_due(self.transport, mail_from=self.head.mail_from, now=now)
        finally:
            await self._close_transport()  # client emails are rare: no connection left to time out
        if sent.sent or sent.retried or sent.failed:
            self.ctx.log.info("client emails", sent=sent.sent, retried=sent.retried, failed=sent.failed)

    async def _announce(self) -> None:
        """Publish the verdicts not announced yet, then mark them."""
        found = await self.store.batches.unannounced()
        for reviewed in found:
            await self.ctx.publish(self._reviewed(reviewed.project_id, reviewed.batch_key, reviewed.item))
        if found:
            await self.store.batches.mark_announced([r.item.id for r in found], self.ctx.clock.now())

    async def _step(self, state: BatchState, now: datetime) -> None:
        batch = state.batch
        client = ClientInfo.model_validate(batch.client)
        step = rules.due_step(
            now,
            reminders_sent=batch.reminders_sent,
            reminders_planned=batch.reminders_planned,
            every=batch.reminder_every,
            next_action_at=batch.next_action_at,
            auto_approve_at=batch.auto_approve_at,
            needs_person=batch.needs_person_at is not None,
            country=client.country,
            tz=client.timezone,
        )
        if isinstance(step, rules.AutoApprove):
            approved = await self.store.batches.auto_approve(batch.id, now)
            if approved:
                self.ctx.log.info("review auto-approved after silence", batch=batch.batch_key, items=approved)
        elif isinstance(step, rules.Remind):
            email = self._reminder(batch, client, state, step, now)
            if await self.store.batches.remind(batch.id, step.number, step.next_action_at, email, now):
                self.ctx.log.info("review reminder queued", batch=batch.batch_key, number=step.number)
        elif isinstance(step, rules.AlertPerson):
            if await self.store.batches.needs_person(batch.id, now):
                self.ctx.log.warning("review unanswered after the last reminder", batch=batch.batch_key)

    def _reminder(
        self, batch: Batch, client: ClientInfo, state: BatchState, step: rules.Remind, now: datetime
    ) -> EmailMessage:
        expected = (
            step.next_action_at
            or batch.auto_approve_at
            or rules.later(now, batch.reminder_every, country=client.country, tz=client.timezone)
        )
        return reminder_email(
            self.head,
            client,
            key=reminder_email_key(batch.batch_key, step.number),
            request_key=review_email_key(batch.batch_key),
            number=step.number,
            titles=[(i.title, i.type) for i in state.open_items],
            token=self._token(batch.batch_key, batch.link_nonce),
            link_expires_at=batch.link_expires_at,
            deadline=expected,
            auto_approve_at=batch.auto_approve_at,
            now=now,
        )

    # -- alerts to a person ---------------------------------------------------------------------------------------

    async def _tell_alerts(self) -> None:
        for pending in await self.store.batches.pending_alerts():
            if await self._alert(*self._alert_of(pending)):
                await self.store.batches.alerted(pending, self.ctx.clock.now())

    @staticmethod
    def _alert_of(pending: PendingAlert) -> tuple[str, str, str, str, int | None]:
        if pending.kind == "unanswered":
            summary, text = texts.unanswered_alert(
                pending.company, pending.batch_key, pending.reminders, pending.open_items
            )
            return f"client_review:{pending.batch_key}:unanswered", "review_unanswered", summary, text, None
        if pending.intent == "unclear":
            summary, text = texts.unclear_reply_alert(pending.company, pending.batch_key, pending.sender, pending.text)
            kind = "review_reply_unclear"
        else:
            summary, text = texts.late_reply_alert(pending.company, pending.batch_key, pending.sender, pending.text)
            kind = "review_reply_late"
        return f"client_review:reply:{pending.inbound_id}", kind, summary, text, pending.inbound_id

    async def _alert(self, key: str, kind: str, summary: str, text: str, inbound_id: int | None = None) -> bool:
        """Tell `cam.alerts` (it delivers once per key): whether it could be told."""
        try:
            ref = self.ctx.ref(ALERTS, AlertRequested)
        except ActorNotFound:
            self.ctx.log.warning("no alerts actor to tell: told again on the next tick", key=key)
            return False
        await ref.tell(
            AlertRequested(idempotency_key=key, kind=kind, summary=summary[:500], text=text, inbound_id=inbound_id)
        )
        return True

    # -- UnmatchedReply ---------------------------------------------------------------------------------------------

    async def _reply(self, message: UnmatchedReply) -> None:
        intent = message.review_intent if message.review_intent in _INTENTS else _UNREAD
        outcome = await self.store.batches.record_reply(
            InboundReply(
                inbound_id=message.inbound_id,
                in_reply_to=message.in_reply_to,
                references=message.references,
                from_address=message.from_address,
                subject=message.subject,
                text=message.text,
                received_at=message.received_at,
                intent=intent or _UNREAD,
                comment=message.review_comment,
            ),
            self.ctx.clock.now(),
        )
        if outcome is None:
            return  # not an answer to one of our review emails: not ours to read
        if outcome.new:
            self.ctx.log.info(
                "review answered by email",
                batch=outcome.batch_key,
                inbound_id=message.inbound_id,
                intent=outcome.intent,
                decided=outcome.decided,
                needs_person=outcome.needs_person,
            )
        await self._announce()
        await self._tell_alerts()

    # -- WithdrawReviews --------------------------------------------------------------------------------------------

    async def _withdraw(self, message: WithdrawReviews) -> None:
        project_id = str(message.project_id)
        now = self.ctx.clock.now()

        def notice(client: dict[str, Any]) -> EmailMessage:
            return withdrawn_email(
                self.head, ClientInfo.model_validate(client), key=withdrawn_email_key(project_id), now=now
            )

        done = await self.store.batches.withdraw(
            project_id, key=message.idempotency_key, reason=message.reason, notice=notice, now=now
        )
        if done.first:
            self.ctx.log.info(
                "reviews withdrawn",
                project_id=project_id,
                links_revoked=done.links_revoked,
                emails_cancelled=done.emails_cancelled,
                notice=done.notice_queued,
            )
        await self.ctx.publish(ReviewsWithdrawn(project_id=message.project_id))

    async def _close_transport(self) -> None:
        try:
            await self.transport.close()
        except Exception:
            self.ctx.log.warning("closing the client emails' connection failed", exc_info=True)
