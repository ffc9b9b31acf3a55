"""`onboarding.intake`: welcome a signed client, collect the intake questionnaire, remind,
tell the saga.

- `StartOnboarding` (told by the saga, possibly many times): the first one creates the
  intake, its link and its welcome in one transaction; every one then publishes the
  intake's current state (`OnboardingStarted`, `OnboardingCompleted` or
  `OnboardingCancelled`). No second email, no second link.
- `CancelOnboarding` (compensation, possibly many times): links revoked, queued emails
  cancelled, "we have stopped" queued if the welcome went out; `OnboardingCancelled`.
- `Tick`: due reminders queued, overdue intakes marked, queued emails sent
  (`storage.client_mail`), and what the saga was not told yet published (completions made
  through the web form or by a person, overdue intakes, emailed answers).
- `UnmatchedReply` (from cam): kept for a person if it answers one of our emails.

Everything decided is written before it is published; what is published late (after a
crash) is found again in the database on the next tick.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from aicmo_actors.gateways.transport import LazyTransport, MailTransport
from aicmo_actors.onboarding import rules, texts
from aicmo_actors.onboarding.emails import Letterhead, Recipient, cancelled_email, reminder_email, welcome_email
from aicmo_actors.onboarding.repos import (
    PURPOSE,
    CompletedNews,
    InboundReply,
    IntakeRow,
    NewIntake,
    News,
    OnboardingStore,
    OverdueNews,
)
from aicmo_actors.runtime import Actor
from aicmo_actors.storage.links import make_token
from contracts.cam import UnmatchedReply
from contracts.onboarding import (
    CancelOnboarding,
    IntakeReplyReceived,
    OnboardingCancelled,
    OnboardingCompleted,
    OnboardingFailed,
    OnboardingOverdue,
    OnboardingStarted,
    StartOnboarding,
)
from contracts.runtime import Tick

INTAKE = "onboarding.intake"
#: Link nonces fit a signed 64-bit column.
_NONCE_BITS = 63


def recipient_of(row: IntakeRow) -> Recipient:
    """The client's contact, as the intake keeps it."""
    return Recipient(row.project_id, row.company, row.contact_name, row.contact_email, row.timezone)


class Intake(Actor[StartOnboarding | CancelOnboarding | UnmatchedReply | Tick]):
    """Onboarding's one actor (see the module's docstring)."""

    subscribes = (Tick, UnmatchedReply)

    def __init__(
        self,
        store: OnboardingStore,
        *,
        transport: Callable[[], MailTransport],
        letterhead: Letterhead,
        secret: bytes,
        link_days: int = 30,
        policy: rules.ReminderPolicy | None = None,
    ) -> None:
        if link_days < 1:
            raise ValueError(f"an intake link must stay valid at least 1 day, not {link_days}")
        self.store = store
        self.transport = LazyTransport(transport)
        self.head = letterhead
        self.secret = secret
        self.link_days = link_days
        self.policy = policy or rules.ReminderPolicy()

    async def on_start(self) -> None:
        recovered = await self.store.mail.recover(self.ctx.clock.now())
        if recovered:
            self.ctx.log.warning("client emails interrupted during their send: marked unconfirmed", count=recovered)

    async def on_stop(self) -> None:
        try:
            await self.transport.close()
        except Exception:
            self.ctx.log.warning("closing onboarding's mail connection failed", exc_info=True)

    async def receive(self, message: StartOnboarding | CancelOnboarding | UnmatchedReply | Tick) -> Any:
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, StartOnboarding):
            await self._start(message)
        elif isinstance(message, CancelOnboarding):
            await self._cancel(message)
        else:
            await self._reply(message)
        return None

    # -- starting --------------------------------------------------------------------------------
    def _token(self, project_id: str, nonce: int) -> str:
        return make_token(self.secret, PURPOSE, project_id, nonce)

    def _prepare(self, message: StartOnboarding, now: datetime) -> NewIntake:
        """Everything the first start decides, built before its transaction (raises ValueError
        for a client it cannot onboard)."""
        client = message.client
        rules.check_client(client.timezone, client.country)
        project_id = str(message.project_id)
        nonce = self.ctx.random.getrandbits(_NONCE_BITS)
        token = self._token(project_id, nonce)
        expires_at = now + timedelta(days=self.link_days)
        to = Recipient(project_id, client.company, client.contact_name, client.contact_email, client.timezone)
        kickoff = rules.kickoff_at(message.start, now, country=client.country, tz=client.timezone)
        return NewIntake(
            project_id=project_id,
            idempotency_key=message.idempotency_key,
            client=client.model_dump(mode="json"),
            package=message.package.model_dump(mode="json"),
            start_date=message.start,
            token=token,
            link_nonce=nonce,
            link_expires_at=expires_at,
            welcome=welcome_email(self.head, to, token=token, expires_at=expires_at, kickoff_at=kickoff, now=now),
            policy=self.policy,
            plan=rules.plan(now, self.policy, country=client.country, tz=client.timezone),
        )

    async def _start(self, message: StartOnboarding) -> None:
        project_id = str(message.project_id)
        row = await self.store.intakes.get(project_id)
        if row is None:
            now = self.ctx.clock.now()
            try:
                new = self._prepare(message, now)
            except ValueError as exc:
                # Nothing is stored: told again (a corrected client), it is tried again.
                self.ctx.log.warning("onboarding cannot start", project_id=project_id, error=str(exc))
                await self.ctx.publish(OnboardingFailed(project_id=message.project_id, reason=str(exc)))
                return
            row, created = await self.store.intakes.start(new, now)
            if created:
                self.ctx.log.info("onboarding started", project_id=project_id, deadline=row.deadline_at)
        await self._publish_state(row)

    async def _publish_state(self, row: IntakeRow) -> None:
        """Tell the saga where the intake is (a command told again gets the same answer)."""
        project_id = _uuid(row.project_id)
        if row.completed:
            await self.ctx.publish(
                OnboardingCompleted(
                    project_id=project_id, brief=row.brief or {}, completed_at=row.completed_at or row.created_at
                )
            )
        elif row.cancelled:
            await self.ctx.publish(OnboardingCancelled(project_id=project_id))
        else:
            await self.ctx.publish(
                OnboardingStarted(
                    project_id=project_id,
                    waiting_for=texts.waiting_for(row.contact_email, needs_person=row.needs_person_at is not None),
                    deadline=row.deadline_at or row.created_at,
                )
            )
            if row.overdue_at is not None:  # still waiting, and a person was alerted: say so again
                await self.ctx.publish(OnboardingOverdue(project_id=project_id, reminders_sent=row.reminders_sent))

    # -- cancelling ------------------------------------------------------------------------------
    async def _cancel(self, message: CancelOnboarding) -> None:
        now = self.ctx.clock.now()

        def farewell(row: IntakeRow) -> EmailMessage:
            return cancelled_email(self.head, recipient_of(row), now=now)

        row, changed = await self.store.intakes.cancel(
            str(message.project_id),
            idempotency_key=message.idempotency_key,
            reason=message.reason,
            now=now,
            farewell=farewell,
        )
        if changed:
            self.ctx.log.info("onboarding cancelled", project_id=row.project_id, reason=message.reason)
        await self.ctx.publish(OnboardingCancelled(project_id=message.project_id))

    # -- the clock -------------------------------------------------------------------------------
    async def _tick(self) -> None:
        now = self.ctx.clock.now()
        for row in await self.store.intakes.due(now):
            await self._step(row, now)
        try:
            sent = await self.store.mail.send_due(self.transport, mail_from=self.head.mail_from, now=now)
        finally:
            await self.transport.close()
        if sent.sent or sent.retried or sent.failed:
            self.ctx.log.info("client emails", sent=sent.sent, retried=sent.retried, failed=sent.failed)
        await self._tell_news()

    async def _step(self, row: IntakeRow, now: datetime) -> None:
        policy = rules.ReminderPolicy(every=max(row.reminder_every, 1), count=row.reminders_planned)
        step = rules.due_step(
            row.reminders_sent,
            now,
            policy,
            country=row.country,
            tz=row.timezone,
            needs_person=row.needs_person_at is not None,
        )
        if isinstance(step, rules.Overdue):
            if await self.store.intakes.mark_overdue(row.project_id, now):
                self.ctx.log.warning("onboarding overdue", project_id=row.project_id, reminders=step.reminders_sent)
            return
        if row.link_nonce is None or row.link_expires_at is None:  # pragma: no cover - a started intake has both
            raise RuntimeError(f"intake {row.project_id} has no link")
        email = reminder_email(
            self.head,
            recipient_of(row),
            number=step.number,
            token=self._token(row.project_id, row.link_nonce),
            expires_at=row.link_expires_at,
            now=now,
        )
        await self.store.intakes.remind(row.project_id, step, email, now)

    async def _tell_news(self) -> None:
        now = self.ctx.clock.now()
        for news in await self.store.intakes.news():
            await self.ctx.publish(self._event(news))
            await self.store.intakes.told(news, now)

    @staticmethod
    def _event(news: News) -> OnboardingCompleted | OnboardingOverdue | IntakeReplyReceived:
        if isinstance(news, CompletedNews):
            return OnboardingCompleted(
                project_id=_uuid(news.project_id), brief=news.brief, completed_at=news.completed_at
            )
        if isinstance(news, OverdueNews):
            return OnboardingOverdue(project_id=_uuid(news.project_id), reminders_sent=news.reminders_sent)
        return IntakeReplyReceived(project_id=_uuid(news.project_id), inbound_ref=str(news.inbound_id))

    # -- replies ---------------------------------------------------------------------------------
    async def _reply(self, message: UnmatchedReply) -> None:
        stored = await self.store.replies.record(
            InboundReply(
                inbound_id=message.inbound_id,
                in_reply_to=message.in_reply_to,
                references=message.references,
                from_address=message.from_address,
                subject=message.subject,
                text=message.text,
                received_at=message.received_at,
            ),
            self.ctx.clock.now(),
        )
        if stored is None:
            return  # not an answer to one of our emails: not ours to read
        if stored.new:
            self.ctx.log.info("intake answered by email", project_id=stored.project_id, inbound_id=message.inbound_id)
        await self._tell_news()


def _uuid(project_id: str) -> uuid.UUID:
    return uuid.UUID(project_id)
