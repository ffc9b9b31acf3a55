"""`billing.ledger`: invoices, dunning and the hold, from the events of the other modules.

- `ClientSigned` (published again until the project opens): the account, once per deal; what it
  owes at once (a one-off, a first retainer whose start has come, a milestone `at = "signed"`) is
  issued straight away.
- `ContractRenewed` (published again until orchestration answers): the renewal's months added to
  the account's term, once per deal and number; the renewed periods' retainers follow on their days.
- `ProjectOpened`: the account's project. `ProjectStepChanged` (state "done"): the milestones
  `at` that step are reached and invoiced. `ProjectFinished` "compensated": no retainer for a
  period that starts afterwards.
- `ItemReviewed` "changes": a review round on the piece; a round past the package's is invoiced
  at `extra_round_price` (key project:item:round).
- `Tick`: the accounts due (a period begins, a milestone reached by a person) are invoiced; the
  outbox sends the emails (invoices, reminders, credit notes) and sent invoices are marked; due
  reminders go out (with their late fee's invoice); the holds are brought up to date (alert to
  "cam.alerts" once per hold; every active hold, and each release of the last week, said again
  once a day); the events recorded by every write (also the command line's and
  the API's: payments, credit notes) are published.

Every decision is written (with its email and its event, in one transaction) before anything is
published; events are published from `billing_events` afterwards and marked, so a kill anywhere
loses none (one may be published twice: subscribers de-duplicate). At start: emails a dead
incarnation left SENDING become UNCONFIRMED (never sent twice), pending events are published,
active holds are announced again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from aicmo_actors.billing import planning, rules, texts
from aicmo_actors.billing.emails import Letterhead
from aicmo_actors.billing.repos import BillingStore, InvoiceRow
from aicmo_actors.billing.rules import NewInvoice
from aicmo_actors.billing.tax import Tax, tax_for
from aicmo_actors.gateways.transport import LazyTransport, MailTransport
from aicmo_actors.runtime import Actor, ActorNotFound
from contracts.billing import (
    ClientOnHold,
    ClientReleased,
    InvoiceCredited,
    InvoiceIssued,
    InvoiceSent,
    PaymentReceived,
    ReminderSent,
)
from contracts.cam import AlertRequested, ClientSigned, ContractRenewed
from contracts.client_review import ItemReviewed
from contracts.orchestration import ProjectFinished, ProjectOpened, ProjectStepChanged
from contracts.runtime import Tick

LEDGER = "billing.ledger"
ALERTS = "cam.alerts"
EVENTS: dict[str, Any] = {
    e.__name__: e
    for e in (ClientOnHold, ClientReleased, InvoiceCredited, InvoiceIssued, InvoiceSent, PaymentReceived, ReminderSent)
}

#: How long a release is announced again after it was decided (once a day, as holds are).
RELEASES_SAID_AGAIN = timedelta(days=7)

Heard = Tick | ClientSigned | ContractRenewed | ProjectOpened | ProjectStepChanged | ProjectFinished | ItemReviewed


class Ledger(Actor[Heard]):
    """Billing's one actor (see the module)."""

    subscribes = (Tick, ClientSigned, ContractRenewed, ProjectOpened, ProjectStepChanged, ProjectFinished, ItemReviewed)

    def __init__(self, store: BillingStore, *, transport: Callable[[], MailTransport], head: Letterhead) -> None:
        self.store = store
        self.repo = store.billing
        self.transport = LazyTransport(transport)
        self.head = head
        self._holds_said_on: date | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        now = self.ctx.clock.now()
        interrupted = await self.store.mail.recover(now)
        if interrupted:
            self.ctx.log.warning("billing emails interrupted during their send: not sent again", emails=interrupted)
        await self._publish_pending()
        await self._say_holds(self._today(now))
        # Said again at the first tick, every release with them: at a start of the service the
        # hold policy (orchestration starts after billing) is not listening yet, and a release
        # marked published but lost with the last process may be older than a week.
        self._holds_said_on = None

    async def on_stop(self) -> None:
        await self._close_transport()

    async def receive(self, message: Heard) -> None:
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, ClientSigned):
            await self._signed(message)
        elif isinstance(message, ContractRenewed):
            if await self.repo.renew(message.deal_id, message.number, message.months):
                self.ctx.log.info("billing: contract renewed", deal_id=message.deal_id, number=message.number)
                await self._bill(message.deal_id)
        elif isinstance(message, ProjectOpened):
            if await self.repo.link_project(str(message.project_id), message.deal_id):
                self.ctx.log.info(
                    "billing: project linked", deal_id=message.deal_id, project_id=str(message.project_id)
                )
        elif isinstance(message, ProjectStepChanged):
            if message.state == "done":
                names = await self.repo.step_done(str(message.project_id), message.step, self.ctx.clock.now())
                if names:
                    account = await self.repo.account_of_project(str(message.project_id))
                    if account is not None:
                        await self._bill(account.deal_id)
        elif isinstance(message, ProjectFinished):
            if message.outcome == "compensated":
                if await self.repo.stop(str(message.project_id), self._today(self.ctx.clock.now())):
                    self.ctx.log.info("billing: retainers stopped", project_id=str(message.project_id))
        else:
            await self._reviewed(message)
        await self._publish_pending()

    # -- accounts ----------------------------------------------------------------------------------------------

    def _today(self, now: datetime) -> date:
        return rules.local_date(now, self.head.agency_timezone)

    def _tax(self, client: dict[str, Any]) -> Tax:
        return tax_for(
            agency_country=self.head.agency_country,
            client_country=str(client.get("country") or ""),
            client_tax_id=client.get("tax_id"),
            overrides=self.head.tax_rates,
        )

    async def _signed(self, message: ClientSigned) -> None:
        created = await self.repo.open_account(
            deal_id=message.deal_id,
            client=message.client.model_dump(mode="json"),
            package=message.package.model_dump(mode="json"),
            start_on=message.start,
            signed_at=message.signed_at,
            now=self.ctx.clock.now(),
        )
        if created:
            self.ctx.log.info("billing: account opened", deal_id=message.deal_id, billing=message.package.billing)
            await self._bill(message.deal_id)

    async def _bill(self, deal_id: int) -> None:
        """Issue what an account owes now, and note when it next owes something by itself."""
        now = self.ctx.clock.now()
        account, reached, issued = await self.repo.account_state(deal_id)
        client_today = rules.local_date(now, str(account.client.get("timezone") or "UTC"))
        plan = planning.plan_account(
            deal_id=account.deal_id,
            client=account.client,
            package=account.package,
            start_on=account.start_on,
            stopped_on=account.stopped_on,
            project_id=account.project_id,
            reached=reached,
            issued=issued,
            today=client_today,
            tax=self._tax(account.client),
        )
        for new in plan.invoices:
            await self._issue(new, now)
        next_due = (
            rules.start_of_day(plan.next_due_on, str(account.client.get("timezone") or "UTC"))
            if plan.next_due_on is not None
            else None
        )
        await self.repo.reschedule(deal_id, next_due)

    async def _issue(self, new: NewInvoice, now: datetime) -> InvoiceRow | None:
        row = await self.repo.issue(self.head, new, today=self._today(now), now=now)
        if row is not None:
            self.ctx.log.info("invoice issued", number=row.number, kind=row.kind, total=str(row.total))
        return row

    async def _reviewed(self, message: ItemReviewed) -> None:
        if message.verdict != "changes":
            return
        now = self.ctx.clock.now()
        project_id = str(message.project_id)
        round_number = await self.repo.record_round(project_id, str(message.item_id), message.version, now)
        account = await self.repo.account_of_project(project_id)
        if account is None:
            return
        new = planning.extra_round_invoice(
            deal_id=account.deal_id,
            client=account.client,
            package=account.package,
            project_id=project_id,
            item_id=str(message.item_id),
            round_number=round_number,
            tax=self._tax(account.client),
        )
        if new is not None:
            await self._issue(new, now)

    # -- tick --------------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        now = self.ctx.clock.now()
        today = self._today(now)
        if self._holds_said_on == today and await self.repo.idle(now, today, self.head.hold_after_days):
            return
        for deal_id in await self.repo.accounts_due(now):
            await self._bill(deal_id)
        for invoice in await self.repo.reminders_due(today):
            done = await self.repo.remind(self.head, invoice.id, today=today, now=now)
            if done is not None:
                reminder, fee_invoice = done
                self.ctx.log.info(
                    "reminder",
                    number=invoice.number,
                    level=reminder.level,
                    fee_invoice=fee_invoice and fee_invoice.number,
                )
        await self._holds(today, now)
        await self._publish_pending()  # the credit notes' emails are queued as their events are published
        await self._send(now)
        await self._publish_pending()
        await self._tell_alerts(now)
        if self._holds_said_on != today:
            await self._say_holds(today, every_release=self._holds_said_on is None)

    async def _send(self, now: datetime) -> None:
        try:
            sent = await self.store.mail.send_due(self.transport, mail_from=self.head.mail_from, now=now)
        finally:
            await self._close_transport()
        if sent.sent or sent.retried or sent.failed:
            self.ctx.log.info("billing emails", sent=sent.sent, retried=sent.retried, failed=sent.failed)
        await self.repo.follow_sent(now)

    # -- holds -------------------------------------------------------------------------------------------------

    async def _holds(self, today: date, now: datetime) -> None:
        days = self.head.hold_after_days
        owed = await self.repo.owed_since(date.fromordinal(today.toordinal() - days))
        wanted = rules.on_hold(owed, today, days)
        held, released = await self.repo.apply_holds(wanted, days=days, now=now)
        for hold in held:
            self.ctx.log.info("client on hold", client_ref=hold.client_ref, invoices=list(hold.invoices))
        for hold in released:
            self.ctx.log.info("client released", client_ref=hold.client_ref)

    async def _say_holds(self, today: date, *, every_release: bool = False) -> None:
        """Announce every active hold again (at start, at the first tick, then once a day), and
        each release of the last `RELEASES_SAID_AGAIN` (with `every_release`, at the first tick,
        every release): a command lost on its way (delivery's courier restarted by a failed
        commit while it held it, the process killed) is given again; delivery applies each once."""
        self._holds_said_on = today
        recent = self.ctx.clock.now() - RELEASES_SAID_AGAIN
        for hold in await self.repo.holds(active_only=False):
            if hold.active:
                reason = texts.hold_reason(hold.invoices, self.head.hold_after_days)
                await self.ctx.publish(
                    ClientOnHold(client_ref=uuid.UUID(hold.client_ref), reason=reason, invoices=hold.invoices)
                )
            elif hold.released_at is not None and (every_release or hold.released_at >= recent):
                await self.ctx.publish(ClientReleased(client_ref=uuid.UUID(hold.client_ref), reason=texts.RELEASED))

    async def _tell_alerts(self, now: datetime) -> None:
        for hold in await self.repo.holds():
            if hold.alerted_at is not None:
                continue
            days = self.head.hold_after_days
            alert = AlertRequested(
                idempotency_key=rules.hold_alert_key(hold.client_ref, hold.round),
                kind="billing",
                summary=texts.hold_summary(hold.company, hold.invoices, days),
                text=texts.hold_text(hold.company, hold.invoices, days),
            )
            try:
                ref = self.ctx.ref(ALERTS, AlertRequested)
            except ActorNotFound:
                self.ctx.log.warning("no actor to tell the alert to: told again later", actor=ALERTS)
                return
            await ref.tell(alert)
            await self.repo.mark_hold_alerted(hold.client_ref, hold.round, now)

    # -- events ------------------------------------------------------------------------------------------------

    async def _publish_pending(self) -> None:
        while True:
            pending = await self.repo.pending_events()
            if not pending:
                return
            now = self.ctx.clock.now()
            for event in pending:
                if event.kind == "InvoiceCredited":
                    await self.repo.queue_credit_email(self.head, str(event.body["invoice_id"]), now)
                await self.ctx.publish(EVENTS[event.kind](**event.body))
            await self.repo.mark_published([e.id for e in pending], now)

    async def _close_transport(self) -> None:
        try:
            await self.transport.close()
        except Exception:
            self.ctx.log.warning("closing the billing emails' connection failed", exc_info=True)
