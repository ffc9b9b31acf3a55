"""`production.studio`: owns every work item and drives it from plan to delivery.

- `ProducePeriod` (told by the saga, possibly many times, once per period of the contract):
  the first time for a period, one item per planned piece in one transaction (with the
  project's run, the first time of all); every time, where that period stands:
  `ProductionStarted`, `PeriodDelivered` or (cancelled and confirmed) `ProductionCancelled`.
  Several periods may be in progress at once; each is announced delivered when its own last
  piece is.
  No items: `ProductionFailed` (nothing stored: the same command fails the same way).
- `Tick`: the first after a start tells every command in flight again (see `on_start`);
  planned items whose start day came go to drafting; the generator writes the next
  version of each item being drafted or revised (a failed attempt is recorded and tried again
  next tick; after `MAX_GENERATOR_ATTEMPTS`, or over the client's token budget, the templates
  write it); items that reached review go to the client, one batch per project; commands
  unanswered after their silence are told again; late items are announced once; the alerts
  queued for a person are told to "cam.alerts".
- The other modules' events (`DraftChecked`, `ReviewRequested`, `ItemReviewed`,
  `ReviewsWithdrawn`, `ItemDelivered`, `DeliveryFailing`, `DeliveryKept`,
  `DeliveriesCancelled`): recorded once (a repeat, or a verdict for an old version, changes
  nothing), then what they call for is told. A delivery the courier keeps or is failing with
  is told again only after `Silence.delivery_kept` (the courier announces its outcome).
- `CancelProduction` (may repeat, may come first): every open item cancelled, the reviews
  withdrawn and the deliveries cancelled (told again until confirmed), `ProductionCancelled`
  once confirmed, every time asked.

Every decision is committed before what it calls for is told, and a command is told again
until answered (and every one in flight at start), so a kill anywhere loses nothing; the
other modules do each effect once per key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aicmo_actors.gateways.calendar import at_local
from aicmo_actors.production import rules, texts
from aicmo_actors.production.generator import (
    Draft,
    DraftRequest,
    Generator,
    GeneratorError,
    Previous,
    TemplateGenerator,
)
from aicmo_actors.production.repos import Batch, Delivery, Item, NewItem, ProductionStore, Run, Version
from aicmo_actors.production.tables import CHANGES_REQUESTED
from aicmo_actors.runtime import Actor, ActorNotFound
from contracts.cam import AlertRequested
from contracts.client_review import (
    ItemReviewed,
    RequestReview,
    ReviewItem,
    ReviewRequested,
    ReviewsWithdrawn,
    WithdrawReviews,
)
from contracts.clients import ClientInfo
from contracts.delivery import (
    CancelDeliveries,
    DeliveriesCancelled,
    DeliverItem,
    DeliveryFailing,
    DeliveryKept,
    ItemDelivered,
)
from contracts.packages import PackageSpec
from contracts.production import (
    CancelProduction,
    DraftWritten,
    ItemLate,
    PeriodDelivered,
    ProducePeriod,
    ProductionCancelled,
    ProductionFailed,
    ProductionStarted,
)
from contracts.qc import CheckDraft, DraftChecked, Finding
from contracts.runtime import Tick
from contracts.strategy import PlannedItem

STUDIO = "production.studio"
QC = "qc.checker"
REVIEWS = "client_review.reviews"
COURIER = "delivery.courier"
ALERTS = "cam.alerts"

Incoming = (
    ProducePeriod
    | CancelProduction
    | Tick
    | DraftChecked
    | ReviewRequested
    | ItemReviewed
    | ReviewsWithdrawn
    | ItemDelivered
    | DeliveryFailing
    | DeliveryKept
    | DeliveriesCancelled
)


class Studio(Actor[Incoming]):
    """Drives every work item (see the module)."""

    subscribes = (
        Tick,
        DraftChecked,
        ReviewRequested,
        ItemReviewed,
        ReviewsWithdrawn,
        ItemDelivered,
        DeliveryFailing,
        DeliveryKept,
        DeliveriesCancelled,
    )

    def __init__(
        self,
        store: ProductionStore,
        *,
        generator: Generator | None = None,
        silence: rules.Silence | None = None,
    ) -> None:
        self.store = store
        self.repo = store.items
        self.templates = TemplateGenerator()
        self.generator: Generator = generator or self.templates
        self.silence = silence or rules.Silence()
        #: Every command in flight is told again at the next tick (set at start, see `on_start`).
        self.tell_all_at_tick = False

    async def on_start(self) -> None:
        await self._resend(every=True)
        # Again at the first tick: when the whole process starts, production starts before QC,
        # client review and delivery, so what it tells here finds none of them (logged, and
        # marked told). A command they answered before the restart (a batch client review holds,
        # a delivery the courier keeps) would then wait a week for its next telling, and a
        # verdict lost with the killed process a week for its announcement again.
        self.tell_all_at_tick = True

    async def receive(self, message: Incoming) -> None:
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, ProducePeriod):
            await self._produce(message)
        elif isinstance(message, CancelProduction):
            await self._cancel(message)
        elif isinstance(message, DraftChecked):
            await self._checked(message)
        elif isinstance(message, ReviewRequested):
            await self.repo.review_requested(message.batch_key, message.deadline, self.ctx.clock.now())
        elif isinstance(message, ItemReviewed):
            await self._reviewed(message)
        elif isinstance(message, ItemDelivered):
            await self._delivered(message)
        elif isinstance(message, DeliveryFailing):
            await self.repo.delivery_failing(
                str(message.item_id),
                message.version,
                message.method,
                attempts=message.attempts,
                error=message.error,
                now=self.ctx.clock.now(),
            )
        elif isinstance(message, DeliveryKept):
            await self.repo.delivery_kept(str(message.item_id), message.version, message.method, self.ctx.clock.now())
        elif isinstance(message, ReviewsWithdrawn):
            await self._confirmed(message.project_id, "reviews")
        else:
            await self._confirmed(message.project_id, "deliveries")

    # -- ProducePeriod ----------------------------------------------------------------------------------------

    async def _produce(self, message: ProducePeriod) -> None:
        project_id = str(message.project_id)
        if not message.items:
            await self.ctx.publish(ProductionFailed(project_id=message.project_id, reason="the plan has no items"))
            return
        run = await self.repo.run(project_id)
        if run is None or (run.cancelled_at is None and not await self.repo.has_period(project_id, message.period)):
            now = self.ctx.clock.now()
            country = message.client.country
            try:
                items = [
                    NewItem(
                        id=str(rules.item_id(message.project_id, message.period, p.key)),
                        key=p.key,
                        item=p.model_dump(mode="json"),
                        type=p.type,
                        channel=p.channel,
                        topic=p.topic,
                        due_on=p.due,
                        start_on=rules.start_day(p.due, message.package.turnaround_days, country),
                    )
                    for p in message.items
                ]
                at_local(message.items[0].due, 0, message.client.timezone)  # an unknown zone fails here
            except (ValueError, KeyError) as exc:
                await self.ctx.publish(ProductionFailed(project_id=message.project_id, reason=f"no work items: {exc}"))
                return
            created = await self.repo.create(
                project_id,
                key=message.idempotency_key,
                period=message.period,
                plan_version=message.plan_version,
                client=message.client.model_dump(mode="json"),
                package=message.package.model_dump(mode="json"),
                brief=dict(message.brief),
                items=items,
                now=now,
            )
            if created:
                self.ctx.log.info("work items planned", project_id=project_id, period=message.period, items=len(items))
            run = await self.repo.run(project_id)
        assert run is not None
        await self._say_state(message.project_id, run, message.client.timezone, message.period)

    async def _say_state(self, project_id: uuid.UUID, run: Run, tz: str, period: int) -> None:
        if run.cancelled_at is not None:
            if run.cancel_confirmed:
                await self.ctx.publish(ProductionCancelled(project_id=project_id))
            return
        items = await self.repo.items_of(str(project_id), period)
        standing = rules.standing(i.state for i in items)
        if standing.all_delivered:
            delivered_at = max((i.delivered_at for i in items if i.delivered_at), default=self.ctx.clock.now())
            await self.ctx.publish(
                PeriodDelivered(project_id=project_id, period=period, items=standing.total, delivered_at=delivered_at)
            )
            return
        deadline = rules.deadline((i.due_on for i in items), tz)
        assert deadline is not None
        await self.ctx.publish(
            ProductionStarted(
                project_id=project_id,
                period=period,
                items=standing.total,
                delivered=standing.delivered,
                waiting_for=texts.waiting_for(standing.total, standing.counts),
                deadline=deadline,
            )
        )

    # -- Tick -------------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        if self.tell_all_at_tick:
            self.tell_all_at_tick = False
            await self._resend(every=True)
        if await self.repo.idle():
            return
        now = self.ctx.clock.now()
        started = await self.repo.start_due(
            now, lambda item: rules.should_start(item.start_on, now, str(item.client.get("timezone", "UTC")))
        )
        if started:
            self.ctx.log.info("drafting started", items=len(started))
        for item in await self.repo.writing():
            try:
                await self._write(item)
            except Exception:
                # One item that cannot be written must not hold up the others: next tick again.
                self.ctx.log.error("could not write a draft", item_id=item.id, exc_info=True)
        for batch in await self.repo.make_batches(now):
            self.ctx.log.info("sent for review", batch=batch.key, items=len(batch.items))
            await self._request_review(batch)
        await self._resend(every=False)
        late = await self.repo.find_late(now, self._late, self._late_from)
        if late:
            self.ctx.log.warning("late work", items=late)
        await self._alerts()

    def _late(self, item: Item) -> str | None:
        package = item.package
        return rules.late_reason(
            state=item.state,
            due=item.due_on,
            started_at=item.started_at,
            turnaround_days=int(package.get("turnaround_days", 5)),
            country=str(item.client.get("country", "US")),
            tz=str(item.client.get("timezone", "UTC")),
            now=self.ctx.clock.now(),
        )

    def _late_from(self, item: Item) -> datetime | None:
        return rules.late_from(
            state=item.state,
            due=item.due_on,
            started_at=item.started_at,
            turnaround_days=int(item.package.get("turnaround_days", 5)),
            country=str(item.client.get("country", "US")),
            tz=str(item.client.get("timezone", "UTC")),
        )

    async def _write(self, item: Item) -> None:
        now = self.ctx.clock.now()
        request = await self._request(item)
        used = 0
        if self.generator.kind != "template":
            used = await self.repo.tokens_used(str(item.client["client_ref"]), item.period)
        writer = rules.pick_writer(
            has_llm=self.generator.kind != "template",
            attempts=item.gen_attempts,
            used_tokens=used,
            budget_tokens=self.generator.budget_tokens,
        )
        alert = None
        if writer == "llm":
            try:
                draft = await self.generator.draft(request)
            except GeneratorError as exc:
                attempts = await self.repo.generator_failed(item.id, str(exc), now)
                self.ctx.log.warning("the generator failed", item_id=item.id, attempts=attempts, error=str(exc))
                if attempts < rules.MAX_GENERATOR_ATTEMPTS and not exc.permanent:
                    return
                alert = (
                    f"{item.id}:generator:v{item.version + 1}",
                    texts.generator_alert(item.label, item.id, str(exc)),
                )
                draft = await self.templates.draft(request)
        else:
            if self.generator.kind != "template" and item.gen_attempts >= rules.MAX_GENERATOR_ATTEMPTS:
                error = item.gen_error or "failed"
                alert = (f"{item.id}:generator:v{item.version + 1}", texts.generator_alert(item.label, item.id, error))
            draft = await self.templates.draft(request)
        await self._store_draft(item, draft, alert)

    async def _store_draft(self, item: Item, draft: Draft, alert: tuple[str, tuple[str, str]] | None) -> None:
        now = self.ctx.clock.now()
        made = await self.repo.add_version(
            item.id,
            after=item.version,
            title=draft.title,
            text=draft.text,
            html=draft.html,
            source=draft.source,
            tokens=draft.tokens,
            now=now,
            alert=alert,
        )
        if made is None:
            return
        await self.ctx.publish(
            DraftWritten(
                project_id=uuid.UUID(made.project_id),
                item_id=uuid.UUID(made.id),
                version=made.version,
                source=draft.source,
                tokens=draft.tokens,
                client_ref=uuid.UUID(str(made.client["client_ref"])),
            )
        )
        version = await self.repo.version(made.id, made.version)
        assert version is not None
        await self._check(made, version)

    async def _request(self, item: Item) -> DraftRequest:
        previous = await self.repo.version(item.id, item.version) if item.version else None
        comment = ""
        findings: tuple[Finding, ...] = ()
        if previous is not None:
            if item.state == CHANGES_REQUESTED:
                comment = previous.comment or ""
            elif previous.qc_findings:
                findings = tuple(Finding.model_validate(f) for f in previous.qc_findings)
        return DraftRequest(
            item=PlannedItem.model_validate(item.item),
            client=ClientInfo.model_validate(item.client),
            brief=dict(item.brief),
            version=item.version + 1,
            previous=Previous(previous.version, previous.title, previous.text) if previous else None,
            comment=comment,
            findings=findings,
        )

    async def _alerts(self) -> None:
        now = self.ctx.clock.now()
        for alert in await self.repo.pending_alerts():
            if alert.kind == "late" and alert.item_id is not None:
                item = await self.repo.item(alert.item_id)
                if item is not None:
                    await self.ctx.publish(
                        ItemLate(
                            project_id=uuid.UUID(item.project_id),
                            item_id=uuid.UUID(item.id),
                            due=item.due_on,
                            state=item.state,
                        )
                    )
            told = await self._tell(
                ALERTS,
                AlertRequested(idempotency_key=alert.key, kind="production", summary=alert.summary, text=alert.text),
            )
            if told:
                await self.repo.alert_told(alert.key, now)

    # -- commands -----------------------------------------------------------------------------------------------

    async def _tell(self, name: str, message: Any) -> bool:
        try:
            ref = self.ctx.ref(name, type(message))
        except ActorNotFound:
            # Not running in this process (a module not wired): asked again later.
            self.ctx.log.warning("no actor to tell", actor=name, message=type(message).__name__)
            return False
        await ref.tell(message)
        return True

    async def _check(self, item: Item, version: Version) -> None:
        await self._tell(
            QC,
            CheckDraft(
                project_id=uuid.UUID(item.project_id),
                item_id=uuid.UUID(item.id),
                version=version.version,
                idempotency_key=rules.qc_key(item.id, version.version),
                client=ClientInfo.model_validate(item.client),
                package=PackageSpec.model_validate(item.package),
                brief=dict(item.brief),
                item=PlannedItem.model_validate(item.item),
                title=version.title,
                text=version.text,
                # The offline templates write English, whatever the client's language.
                language="en" if version.source == "template" else None,
            ),
        )

    async def _request_review(self, batch: Batch) -> None:
        item0 = batch.items[0][0]
        await self._tell(
            REVIEWS,
            RequestReview(
                project_id=uuid.UUID(batch.project_id),
                idempotency_key=batch.key,
                client=ClientInfo.model_validate(item0.client),
                package=PackageSpec.model_validate(item0.package),
                items=tuple(
                    ReviewItem(
                        item_id=uuid.UUID(item.id),
                        version=version.version,
                        title=version.title,
                        type=item.type,
                        channel=item.channel,
                        text=version.text,
                        html=version.html,
                    )
                    for item, version in batch.items
                ),
            ),
        )

    async def _deliver(self, delivery: Delivery) -> None:
        item, version = await self.repo.item_version(delivery.item_id, delivery.version)
        if item is None or version is None:
            return
        await self._tell(
            COURIER,
            DeliverItem(
                project_id=uuid.UUID(item.project_id),
                item_id=uuid.UUID(item.id),
                version=version.version,
                idempotency_key=delivery.key,
                method=delivery.method,
                client=ClientInfo.model_validate(item.client),
                title=version.title,
                type=item.type,
                channel=item.channel,
                text=version.text,
                html=version.html,
            ),
        )

    async def _tell_cancel(self, project_id: str, run: Run) -> None:
        reason = "production cancelled"
        pid = uuid.UUID(project_id)
        if run.reviews_withdrawn_at is None:
            await self._tell(
                REVIEWS,
                WithdrawReviews(project_id=pid, idempotency_key=f"{project_id}:production:withdraw", reason=reason),
            )
        if run.deliveries_cancelled_at is None:
            await self._tell(
                COURIER,
                CancelDeliveries(project_id=pid, idempotency_key=f"{project_id}:production:cancel", reason=reason),
            )

    async def _resend(self, *, every: bool) -> None:
        flight = await self.repo.in_flight(self.ctx.clock.now(), self.silence, every=every)
        for item, version in flight.qc:
            await self._check(item, version)
        for batch in flight.batches:
            await self._request_review(batch)
        for delivery in flight.deliveries:
            await self._deliver(delivery)
        for project_id in flight.cancels:
            run = await self.repo.run(project_id)
            if run is not None:
                await self._tell_cancel(project_id, run)
        told = len(flight.qc) + len(flight.batches) + len(flight.deliveries) + len(flight.cancels)
        if told:
            self.ctx.log.info("commands told again", commands=told, at_start=every)

    # -- events -------------------------------------------------------------------------------------------------

    async def _checked(self, message: DraftChecked) -> None:
        findings = [f.model_dump() for f in message.findings]
        verdict = await self.repo.qc_verdict(
            str(message.item_id), message.version, passed=message.passed, findings=findings, now=self.ctx.clock.now()
        )
        if verdict.applied:
            self.ctx.log.info("QC verdict", item_id=str(message.item_id), passed=message.passed, state=verdict.state)
        if verdict.alert:
            await self._alerts()

    async def _reviewed(self, message: ItemReviewed) -> None:
        verdict = await self.repo.review_verdict(
            str(message.item_id),
            message.version,
            verdict=message.verdict,
            comment=message.comment,
            by=message.by,
            at=message.at,
            now=self.ctx.clock.now(),
        )
        if not verdict.applied:
            return
        self.ctx.log.info("client verdict", item_id=str(message.item_id), verdict=message.verdict)
        for delivery in verdict.deliveries:
            await self._deliver(delivery)
        if verdict.alert:
            await self._alerts()

    async def _delivered(self, message: ItemDelivered) -> None:
        now = self.ctx.clock.now()
        verdict = await self.repo.delivered(
            str(message.item_id),
            message.version,
            message.method,
            receipt=message.receipt,
            at=message.delivered_at,
            now=now,
        )
        if verdict.period_done is not None:
            items = await self.repo.items_of(str(message.project_id), verdict.period_done)
            self.ctx.log.info("period delivered", project_id=str(message.project_id), period=verdict.period_done)
            await self.ctx.publish(
                PeriodDelivered(
                    project_id=message.project_id, period=verdict.period_done, items=len(items), delivered_at=now
                )
            )

    async def _confirmed(self, project_id: uuid.UUID, what: str) -> None:
        run = await self.repo.confirm_cancel(str(project_id), what, self.ctx.clock.now())
        if run is not None and run.cancel_confirmed:
            await self.ctx.publish(ProductionCancelled(project_id=project_id))

    # -- CancelProduction ---------------------------------------------------------------------------------------

    async def _cancel(self, message: CancelProduction) -> None:
        project_id = str(message.project_id)
        first, run = await self.repo.cancel(
            project_id, key=message.idempotency_key, reason=message.reason, now=self.ctx.clock.now()
        )
        if first:
            self.ctx.log.info("production cancelled", project_id=project_id)
        if run.cancel_confirmed:
            await self.ctx.publish(ProductionCancelled(project_id=message.project_id))
        else:
            await self._tell_cancel(project_id, run)
