"""`retention.monitor`: each client's health from the signals the other modules emit, and
the renewal reminders.

- `ClientSigned` (cam, published again until the project opens): the client and its contract
  are recorded once (by deal); `ProjectOpened` ties a project to its deal, so the signals that
  name a project (review, production, qc, delivery) reach the client; `ProjectFinished` with
  outcome "compensated" cancels the contract's renewal reminders. `ContractRenewed` (cam, published
  again until orchestration answers): the renewal's months added to the contract's term, its end
  moved, once per deal and number; the new end has its own reminders.
- The signals: billing's `InvoiceIssued` (remembered: unpaid after its due date, a signal),
  `PaymentReceived`, `ReminderSent`, `ClientOnHold`, `ClientReleased`,
  `InvoiceCredited`; client review's `ReviewRequested` then `ItemReviewed`; production's
  `ItemLate`; qc's `DraftChecked` (a failed check: a retake); delivery's `ItemDelivered` and
  `DeliveryFailing`; reporting's `KpiMeasured`; cam's `ReplyClassified` (the client's tone).
  Each is made by `signals` (pure), stored once under its key and the client rescored, in one
  transaction (`RetentionStore.record`).
- `Tick` (at most once per `sweep_every_s` of clock time): invoices unpaid past their due
  date become signals, every client rescored (decay moves
  bands over time), the renewal reminders due today recorded (`rules.renewals_due`), then what
  was decided is said.

Said after it is written: a band change is a notice in the transaction that scored it; it is
published (`ClientHealthChanged`) and, entering red, the owner alerted (`AlertRequested` to
"cam.alerts", key ``retention:<client>:red:<n>``), then marked told. A renewal reminder the
same (`RenewalDue`, key ``retention:renewal:<deal>:<end>:<days>``). A kill between the write and the
mark tells it again at the next start: cam.alerts de-duplicates by key, so the owner hears it
once; the event may be published twice (subscribers de-duplicate by client and band).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from aicmo_actors.retention import signals as make
from aicmo_actors.retention.repos import Directory, NoticeRow, RetentionStore, Signed
from aicmo_actors.retention.rules import Scoring, contract_end
from aicmo_actors.runtime import Actor, ActorNotFound
from contracts.billing import (
    ClientOnHold,
    ClientReleased,
    InvoiceCredited,
    InvoiceIssued,
    PaymentReceived,
    ReminderSent,
)
from contracts.cam import AlertRequested, ClientSigned, ContractRenewed, ReplyClassified
from contracts.client_review import ItemReviewed, ReviewRequested
from contracts.delivery import DeliveryFailing, ItemDelivered
from contracts.orchestration import ProjectFinished, ProjectOpened
from contracts.production import ItemLate
from contracts.qc import DraftChecked
from contracts.reporting import KpiMeasured
from contracts.retention import ClientHealthChanged, RenewalDue
from contracts.runtime import Tick

MONITOR = "retention.monitor"
ALERTS = "cam.alerts"

Incoming = (
    Tick
    | ClientSigned
    | ContractRenewed
    | ProjectOpened
    | ProjectFinished
    | InvoiceIssued
    | PaymentReceived
    | ReminderSent
    | ClientOnHold
    | ClientReleased
    | InvoiceCredited
    | ReviewRequested
    | ItemReviewed
    | ItemLate
    | DraftChecked
    | ItemDelivered
    | DeliveryFailing
    | KpiMeasured
    | ReplyClassified
)


@dataclass(frozen=True)
class Setup:
    """The monitor's parameters (the supervisor's)."""

    scoring: Scoring
    renewal_days: tuple[int, ...] = (60, 30, 7)
    slow_review_days: float = make.SLOW_REVIEW_DAYS
    #: Ticks closer together than this (clock seconds) after a sweep do nothing: decay over an
    #: hour moves no band, and renewals are counted in days.
    sweep_every_s: float = 3600.0


class Monitor(Actor[Incoming]):
    """Scores each client from the signals, reminds of renewals (see the module)."""

    subscribes = (
        Tick,
        ClientSigned,
        ContractRenewed,
        ProjectOpened,
        ProjectFinished,
        InvoiceIssued,
        PaymentReceived,
        ReminderSent,
        ClientOnHold,
        ClientReleased,
        InvoiceCredited,
        ReviewRequested,
        ItemReviewed,
        ItemLate,
        DraftChecked,
        ItemDelivered,
        DeliveryFailing,
        KpiMeasured,
        ReplyClassified,
    )

    def __init__(self, store: RetentionStore, setup: Setup) -> None:
        self.store = store
        self.setup = setup
        # Who the clients are, to tie replies and skip `ClientSigned` heard again: a cache of
        # the database, rebuilt at each start and updated after each write.
        self.directory = Directory()
        # When the last tick swept (in memory only: a new incarnation sweeps at its first tick).
        self.swept_at: datetime | None = None

    async def on_start(self) -> None:
        self.directory = await self.store.directory()
        await self._tell()

    async def receive(self, message: Incoming) -> None:
        now = self.ctx.clock.now()
        weights = self.setup.scoring.weights
        noticed = False
        if isinstance(message, Tick):
            await self._tick()
            return
        if isinstance(message, ClientSigned):
            noticed = await self._signed(message)
        elif isinstance(message, ContractRenewed):
            end = await self.store.renew_contract(message.deal_id, message.number, message.months)
            if end is not None:
                self.ctx.log.info("contract renewed", deal_id=message.deal_id, number=message.number, ends_on=str(end))
        elif isinstance(message, ProjectOpened):
            noticed = await self.store.open_project(str(message.project_id), message.deal_id, now, self.setup.scoring)
        elif isinstance(message, ProjectFinished):
            if await self.store.finish_project(str(message.project_id), message.outcome, now):
                self.ctx.log.info("project finished", project_id=str(message.project_id), outcome=message.outcome)
        elif isinstance(message, InvoiceIssued):
            await self.store.issued(
                str(message.invoice_id), str(message.client_ref), message.number, message.due_on, now
            )
        elif isinstance(message, PaymentReceived):
            settles = str(message.invoice_id) if message.paid_in_full else None
            noticed = await self._record(make.payment(message, weights), settles=settles)
        elif isinstance(message, ReminderSent):
            noticed = await self._record(make.reminder_sent(message, weights, now))
        elif isinstance(message, ClientOnHold):
            holds, on = await self.store.hold_count(str(message.client_ref))
            if not on:
                noticed = await self._record((make.hold(message, weights, now, holds=holds),))
        elif isinstance(message, ClientReleased):
            holds, on = await self.store.hold_count(str(message.client_ref))
            if on:
                noticed = await self._record((make.release(message, weights, now, holds=holds),))
        elif isinstance(message, InvoiceCredited):
            noticed = await self._record(make.credited(message, weights, now), settles=str(message.invoice_id))
        elif isinstance(message, ReviewRequested):
            await self.store.review_requested(message.batch_key, str(message.project_id), message.timestamp)
        elif isinstance(message, ItemReviewed):
            requested = await self.store.requested_at(message.batch_key)
            found = make.reviewed(message, weights, requested_at=requested, slow_days=self.setup.slow_review_days)
            noticed = await self._record(found)
        elif isinstance(message, ItemLate):
            noticed = await self._record(make.item_late(message, weights, now))
        elif isinstance(message, DraftChecked):
            noticed = await self._record(make.retake(message, weights))
        elif isinstance(message, ItemDelivered):
            if not await self.store.known(f"delivered:{message.item_id}:v{message.version}"):
                due = await self.store.late_due(str(message.item_id))
                noticed = await self._record(make.delivered(message, weights, due=due))
        elif isinstance(message, DeliveryFailing):
            noticed = await self._record(make.delivery_failing(message, weights, now))
        elif isinstance(message, KpiMeasured):
            noticed = await self._record(make.kpi(message, weights, now))
        else:
            noticed = await self._reply(message)
        if noticed:
            await self._tell()

    # -- clients -----------------------------------------------------------------------------------------------

    async def _signed(self, message: ClientSigned) -> bool:
        if message.deal_id in self.directory.deals:
            return False  # heard again (cam publishes it until the project opens)
        client = message.client
        signed = Signed(
            client_ref=str(client.client_ref),
            company=client.company,
            contact_email=client.contact_email,
            billing_email=client.billing_email,
            deal_id=message.deal_id,
            lead_id=message.lead_id,
            campaign=message.campaign,
            package=message.package.name,
            term_months=message.package.term_months,
            starts_on=message.start,
            ends_on=contract_end(message.start, message.package.term_months),
            signed_at=message.signed_at,
        )
        created, noticed = await self.store.sign(signed, self.ctx.clock.now(), self.setup.scoring)
        if created:
            self.ctx.log.info(
                "client recorded", client_ref=signed.client_ref, deal_id=signed.deal_id, ends_on=str(signed.ends_on)
            )
        emails = dict(self.directory.emails)
        for address in (signed.contact_email, signed.billing_email):
            if address:
                emails[address.lower()] = signed.client_ref
        self.directory = replace(
            self.directory,
            deals=self.directory.deals | {signed.deal_id},
            leads={**self.directory.leads, signed.lead_id: signed.client_ref},
            emails=emails,
        )
        return noticed

    async def _reply(self, message: ReplyClassified) -> bool:
        """A reply tied to a client: by the lead it was (its own thread: a strong tie, unless cam
        tied it by the sender only), or by its sender's address alone (a weak tie)."""
        c = message.classification
        weak = True
        client_ref: str | None = None
        if message.lead_id is not None and message.lead_id in self.directory.leads:
            client_ref = self.directory.leads[message.lead_id]
            weak = make.weak_match(message.matched_by)
        elif c.from_address:
            client_ref = self.directory.emails.get(c.from_address.lower())
        if client_ref is None:
            return False
        found = make.reply(
            message.inbound_id,
            c.category.value,
            client_ref,
            self.setup.scoring.weights,
            self.ctx.clock.now(),
            weak=weak,
        )
        return await self._record(found)

    # -- signals -----------------------------------------------------------------------------------------------

    async def _record(self, found: Sequence[make.NewSignal], *, settles: str | None = None) -> bool:
        if not found:
            return False
        stored, noticed = await self.store.record(found, self.ctx.clock.now(), self.setup.scoring, settles=settles)
        if stored:
            self.ctx.log.info("signals recorded", kinds=[s.kind for s in found], stored=stored)
        return noticed

    # -- Tick --------------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        now = self.ctx.clock.now()
        if self.swept_at is not None and (now - self.swept_at).total_seconds() < self.setup.sweep_every_s:
            return
        self.swept_at = now
        weights = self.setup.scoring.weights

        def overdue(invoice_id: str, number: str, client_ref: str, due_on: date) -> make.NewSignal:
            return make.overdue(invoice_id, number, client_ref, due_on, weights)

        invoices, _ = await self.store.overdue(now.date(), now, self.setup.scoring, overdue)
        if invoices:
            self.ctx.log.info("invoices overdue", invoices=invoices)
        written, _ = await self.store.rescore_all(now, self.setup.scoring)
        if written:
            self.ctx.log.info("clients rescored", clients=written)
        reminders = await self.store.renew(now.date(), now, self.setup.renewal_days)
        if reminders:
            self.ctx.log.info("renewal reminders due", reminders=reminders)
        await self._tell()

    # -- notices -----------------------------------------------------------------------------------------------

    async def _tell(self) -> None:
        """Say every notice not told yet: publish its event, tell its alert, mark it told."""
        for notice in await self.store.pending():
            if notice.alert is not None:
                try:
                    ref = self.ctx.ref(ALERTS, AlertRequested)
                except ActorNotFound:
                    self.ctx.log.warning("no actor to tell the alert to: told again later", actor=ALERTS)
                    return
                await self.ctx.publish(self._event(notice))
                await ref.tell(AlertRequested(**notice.alert))
            else:
                await self.ctx.publish(self._event(notice))
            await self.store.mark_told(notice.id, self.ctx.clock.now())
            self.ctx.log.info("retention notice told", key=notice.key, kind=notice.kind)

    @staticmethod
    def _event(notice: NoticeRow) -> ClientHealthChanged | RenewalDue:
        e = notice.event
        if notice.kind == "band":
            return ClientHealthChanged(
                client_ref=uuid.UUID(e["client_ref"]),
                score=float(e["score"]),
                band=e["band"],
                previous=e.get("previous"),
                reasons=tuple(e.get("reasons") or ()),
            )
        return RenewalDue(
            client_ref=uuid.UUID(e["client_ref"]),
            project_id=uuid.UUID(e["project_id"]) if e.get("project_id") else None,
            contract_end=date.fromisoformat(e["contract_end"]),
            days_left=int(e["days_left"]),
        )


__all__ = ["ALERTS", "MONITOR", "Monitor", "Setup"]
