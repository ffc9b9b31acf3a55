"""`delivery.courier`: hands approved work over, once per item, version and method.

- `DeliverItem` (told by production, possibly many times): the first time, the delivery is
  recorded under the command's idempotency key (with its email, for the email method: built
  whole, the files attached, in the same transaction); then it is attempted at once. Every
  time: where it stands is published: `ItemDelivered` once delivered (with the receipt),
  `DeliveryFailing` while failing past the alert threshold or failed for good,
  `DeliveriesCancelled` when its project was cancelled, and otherwise `DeliveryKept` (it
  waits: a client on hold, a retry, an attempt under way; production then asks again only
  rarely, since what becomes of it is announced).
- `Tick`: due attempts are made. Email: the outbox sends what is due (`MailBook.send_due`)
  and each delivery follows its email. Webhook and folder: claimed (-> sending), attempted,
  settled (`rules.settle`: delivered, retrying after `rules.backoff`, failed). A delivery that
  becomes delivered publishes `ItemDelivered`; one whose alert is decided (`alert_after`
  failed attempts, or failed for good) publishes `DeliveryFailing`, and the alert is told to
  "cam.alerts" (key ``<delivery key>:failing``), then marked told.
- `HoldDeliveries` / `ReleaseDeliveries` (orchestration's hold policy, may repeat): a client
  on hold gets nothing delivered: its deliveries are recorded and wait (neither claimed nor
  their emails sent) until the hold is released, then go out at once. `DeliveriesHeld` /
  `DeliveriesReleased` every time.
- `CancelDeliveries` (may repeat): every delivery not made yet is cancelled, and its queued
  email; `DeliveriesCancelled` every time.

What survives a kill (`on_start`): an email found SENDING may have gone out: it becomes
UNCONFIRMED, is never sent again, and a person is alerted to check with the client (exactly
once is not possible over SMTP: this is at most once, said honestly). A webhook found sending
is posted again with the same `Idempotency-Key` (the receiver de-duplicates); a folder export
found sending is written again (the same files, atomically: idempotent). An alert decided and
not told is told again (cam.alerts de-duplicates by key). Events are published after the
write that decides them; a crash in between is made good by production's next `DeliverItem`
(at its start, or after `Silence.delivery_kept` for a delivery said to be kept), which says the
state again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import nh3

from aicmo_actors.delivery import documents, texts
from aicmo_actors.delivery.emails import Letterhead, delivery_email
from aicmo_actors.delivery.folder import ExportError, export
from aicmo_actors.delivery.repos import DeliveryRow, DeliveryStore, NewDelivery
from aicmo_actors.delivery.rules import AttemptOutcome, alert_key, backoff, settle, what_to_say
from aicmo_actors.delivery.tables import CANCELLED, DELIVERED, FAILED, QUEUED, RETRYING, UNCONFIRMED
from aicmo_actors.gateways.signed_webhook import WebhookPoster, client_key, signed_headers
from aicmo_actors.gateways.transport import LazyTransport, MailTransport
from aicmo_actors.runtime import Actor, ActorNotFound
from contracts.cam import AlertRequested
from contracts.clients import ClientInfo
from contracts.delivery import (
    CancelDeliveries,
    DeliveriesCancelled,
    DeliveriesHeld,
    DeliveriesReleased,
    DeliverItem,
    DeliveryFailing,
    DeliveryKept,
    HoldDeliveries,
    ItemDelivered,
    ReleaseDeliveries,
)
from contracts.runtime import Tick

COURIER = "delivery.courier"
ALERTS = "cam.alerts"


@dataclass(frozen=True)
class Setup:
    """What the courier is handed: who it writes as, its keys, where it exports, when it alerts."""

    letterhead: Letterhead
    secret: bytes
    folder: Path
    alert_after: int = 5


def payload(row: DeliveryRow) -> bytes:
    """The webhook's JSON body (compact, keys sorted: the bytes that are signed)."""
    body = {
        "delivery_key": row.key,
        "project_id": row.project_id,
        "item_id": row.item_id,
        "version": row.version,
        "title": row.title,
        "type": row.type,
        "channel": row.channel,
        "text": row.text,
        "html": nh3.clean(row.html) if row.html.strip() else "",
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


CourierMessage = DeliverItem | CancelDeliveries | HoldDeliveries | ReleaseDeliveries | Tick


class Courier(Actor[CourierMessage]):
    """Delivers each approved piece by each method, once (see the module)."""

    subscribes = (Tick,)

    def __init__(
        self,
        store: DeliveryStore,
        *,
        transport: Callable[[], MailTransport],
        setup: Setup,
        http: WebhookPoster,
    ) -> None:
        self.store = store
        self.transport = LazyTransport(transport)
        self.setup = setup
        self.http = http

    async def on_start(self) -> None:
        now = self.ctx.clock.now()
        interrupted = await self.store.mail.recover(now)
        if interrupted:
            self.ctx.log.warning("delivery emails interrupted during their send: not sent again", emails=interrupted)
        again = await self.store.deliveries.recover(now)
        if again:
            self.ctx.log.info("webhook and folder deliveries interrupted: tried again", deliveries=again)
        await self._follow_emails(now)
        await self._tell_alerts()

    async def on_stop(self) -> None:
        await self._close()

    async def receive(self, message: CourierMessage) -> None:
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, DeliverItem):
            await self._deliver(message)
        elif isinstance(message, HoldDeliveries):
            await self._hold(message)
        elif isinstance(message, ReleaseDeliveries):
            await self._release(message)
        else:
            await self._cancel(message)

    # -- DeliverItem -------------------------------------------------------------------------------------------

    async def _deliver(self, message: DeliverItem) -> None:
        row = await self.store.deliveries.get(message.idempotency_key)
        created = False
        if row is None:
            now = self.ctx.clock.now()
            created, row = await self.store.deliveries.record(self._new(message, now), now)
            if created:
                self.ctx.log.info(
                    "delivery recorded", key=row.key, method=row.method, project_id=row.project_id, state=row.state
                )
        # The first attempt at once; one told again (production's re-tell, a restart) waits for
        # the tick, which makes every due attempt: a delivery kept for a client on hold is not
        # claimed for nothing each time it is asked about.
        if created and row.state in (QUEUED, RETRYING) and row.next_attempt_at is not None:
            if row.next_attempt_at <= self.ctx.clock.now():
                row = await self._attempt_now(row)
        await self._tell_alerts()
        await self._say(row)

    def _new(self, message: DeliverItem, now: datetime) -> NewDelivery:
        new = NewDelivery(
            key=message.idempotency_key,
            project_id=str(message.project_id),
            item_id=str(message.item_id),
            version=message.version,
            method=message.method,
            client=message.client.model_dump(mode="json"),
            title=message.title,
            type=message.type,
            channel=message.channel,
            text=message.text,
            html=message.html,
        )
        if message.method != "email":
            return new
        piece = self._piece(message.client, new, now)
        try:
            email = delivery_email(
                self.setup.letterhead,
                message.client,
                piece,
                key=new.key,
                item_id=new.item_id,
                files=documents.all_files(piece),
                now=now,
            )
        except ValueError as exc:  # an address or a name no header can carry
            self.ctx.log.warning("a delivery email cannot be written", key=new.key, error=str(exc))
            return replace(new, refused=f"the email cannot be written: {exc}")
        return replace(new, email=email)

    def _piece(self, client: ClientInfo, item: NewDelivery | DeliveryRow, created: datetime) -> documents.Piece:
        return documents.Piece(
            title=item.title,
            type=item.type,
            channel=item.channel,
            version=item.version,
            text=item.text,
            html=item.html,
            company=client.company,
            agency=self.setup.letterhead.agency_name,
            language=client.language,
            created=created,
        )

    async def _attempt_now(self, row: DeliveryRow) -> DeliveryRow:
        """The first attempt, made as soon as the delivery is recorded."""
        if row.method == "email":
            await self._send_emails(self.ctx.clock.now(), quiet=row.key)
            return await self.store.deliveries.get(row.key) or row
        return await self._attempt(row, announce=False) or row

    async def _say(self, row: DeliveryRow) -> None:
        """Publish where a delivery stands (production may have missed it)."""
        said = what_to_say(row.state, attempts=row.attempts, alert_after=self.setup.alert_after)
        if said == "delivered":
            await self.ctx.publish(self._delivered(row))
        elif said == "failing":
            await self.ctx.publish(self._failing(row))
        elif said == "cancelled":
            await self.ctx.publish(DeliveriesCancelled(project_id=uuid.UUID(row.project_id)))
        else:  # kept: its outcome is announced when it comes, production need not ask again soon
            await self.ctx.publish(
                DeliveryKept(
                    project_id=uuid.UUID(row.project_id),
                    item_id=uuid.UUID(row.item_id),
                    version=row.version,
                    method=row.method,
                    state=row.state,
                )
            )

    @staticmethod
    def _delivered(row: DeliveryRow) -> ItemDelivered:
        assert row.delivered_at is not None
        return ItemDelivered(
            project_id=uuid.UUID(row.project_id),
            item_id=uuid.UUID(row.item_id),
            version=row.version,
            method=row.method,
            delivered_at=row.delivered_at,
            receipt=row.receipt or "",
        )

    @staticmethod
    def _failing(row: DeliveryRow) -> DeliveryFailing:
        error = row.error or ""
        if row.state == UNCONFIRMED:
            error = f"unconfirmed: the email may have reached the client ({error})"
        return DeliveryFailing(
            project_id=uuid.UUID(row.project_id),
            item_id=uuid.UUID(row.item_id),
            version=row.version,
            method=row.method,
            attempts=row.attempts,
            error=error,
            permanent=row.permanent,
        )

    # -- Tick --------------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        if await self.store.deliveries.idle():
            return
        now = self.ctx.clock.now()
        await self._send_emails(now)
        for row in await self.store.deliveries.due(now):
            try:
                await self._attempt(row)
            except Exception:
                # One delivery that cannot be attempted must not hold up the others: it is
                # left as it is (sending: tried again at the next start), and the log says why.
                self.ctx.log.error("a delivery attempt failed unexpectedly", key=row.key, exc_info=True)
        await self._tell_alerts()

    async def _send_emails(self, now: datetime, *, quiet: str | None = None) -> None:
        try:
            sent = await self.store.mail.send_due(self.transport, mail_from=self.setup.letterhead.mail_from, now=now)
        finally:
            await self._close_transport()  # client emails are few: no connection left to time out
        if sent.sent or sent.retried or sent.failed:
            self.ctx.log.info("delivery emails", sent=sent.sent, retried=sent.retried, failed=sent.failed)
        await self._follow_emails(now, quiet=quiet)

    async def _follow_emails(self, now: datetime, *, quiet: str | None = None) -> None:
        """Each email delivery follows its email; what changed is announced (but for `quiet`:
        the one a `DeliverItem` is about, which says where it stands itself)."""
        for change in await self.store.deliveries.sync_emails(alert_after=self.setup.alert_after, now=now):
            if change.row.key == quiet:
                continue
            await self._announce(change.before, change.row, alert_was_due=change.alert_was_due)

    async def _announce(self, before: str, row: DeliveryRow, *, alert_was_due: bool) -> None:
        """Publish what an attempt changed: delivered; or failing, when its alert was decided
        now or it failed for good now (said again on every `DeliverItem` afterwards)."""
        if row.state == DELIVERED:
            if before != DELIVERED:
                self.ctx.log.info("delivered", key=row.key, method=row.method, attempts=row.attempts)
                await self.ctx.publish(self._delivered(row))
            return
        newly_alerted = row.alert_due_at is not None and not alert_was_due
        newly_final = row.state in (FAILED, UNCONFIRMED) and before not in (FAILED, UNCONFIRMED)
        if newly_alerted or newly_final:
            self.ctx.log.warning("delivery failing", key=row.key, method=row.method, state=row.state)
            await self.ctx.publish(self._failing(row))

    async def _attempt(self, row: DeliveryRow, *, announce: bool = True) -> DeliveryRow | None:
        """Claim, attempt and settle one webhook or folder delivery (None: not due any more);
        `announce`: publish what changed (a `DeliverItem` says where it stands itself)."""
        claimed = await self.store.deliveries.claim(row.id)
        if claimed is None:
            return None
        now = self.ctx.clock.now()
        if claimed.method == "webhook":
            outcome, answer, retry_after = await self._post(claimed, now)
        else:
            outcome, answer, retry_after = self._export(claimed, now)
        attempts = claimed.attempts + 1
        wait = backoff(attempts, self.ctx.random, retry_after_s=retry_after)
        settled = settle(
            outcome, attempts_before=claimed.attempts, alert_after=self.setup.alert_after, now=now, wait=wait
        )
        after = await self.store.deliveries.settle(
            claimed.id,
            settled,
            receipt=answer if outcome == "delivered" else None,
            error=None if outcome == "delivered" else answer,
            permanent=outcome == "permanent",
            now=now,
        )
        if after is None:
            return None
        if outcome != "delivered":
            self.ctx.log.info(
                "delivery attempt failed",
                key=after.key,
                method=after.method,
                attempts=after.attempts,
                state=after.state,
            )
        if announce:
            await self._announce(claimed.state, after, alert_was_due=claimed.alert_due_at is not None)
        return after

    async def _post(self, row: DeliveryRow, now: datetime) -> tuple[AttemptOutcome, str, float | None]:
        client = ClientInfo.model_validate(row.client)
        if not client.webhook_url:
            return "permanent", "the client has no webhook_url", None
        body = payload(row)
        key = client_key(self.setup.secret, str(client.client_ref))
        headers = signed_headers(key, idempotency_key=row.key, timestamp=int(now.timestamp()), body=body)
        posted = await self.http.post(client.webhook_url, body, headers)
        outcome: AttemptOutcome = "delivered" if posted.outcome == "accepted" else posted.outcome
        return outcome, posted.answer, posted.retry_after_s

    def _export(self, row: DeliveryRow, now: datetime) -> tuple[AttemptOutcome, str, float | None]:
        client = ClientInfo.model_validate(row.client)
        try:
            receipt = export(
                self.setup.folder,
                company=client.company,
                client_ref=str(client.client_ref),
                key=row.key,
                project_id=row.project_id,
                item_id=row.item_id,
                version=row.version,
                title=row.title,
                type_=row.type,
                channel=row.channel,
                files=documents.all_files(self._piece(client, row, row.created_at)),
                now=now,
            )
        except ExportError as exc:
            return "permanent", str(exc), None
        except OSError as exc:  # a full disk, a folder not writable: a person may fix it meanwhile
            return "temporary", f"{type(exc).__name__}: {exc}", None
        return "delivered", receipt, None

    # -- alerts ------------------------------------------------------------------------------------------------

    async def _tell_alerts(self) -> None:
        now = self.ctx.clock.now()
        for row in await self.store.deliveries.alerts_pending():
            client = ClientInfo.model_validate(row.client)
            unconfirmed = row.state == UNCONFIRMED
            alert = AlertRequested(
                idempotency_key=alert_key(row.key, row.rounds),
                kind="delivery",
                summary=texts.alert_summary(
                    row.method, client.company, row.title, unconfirmed=unconfirmed, permanent=row.permanent
                ),
                text=texts.alert_text(
                    key=row.key,
                    method=row.method,
                    attempts=row.attempts,
                    error=row.error or "",
                    unconfirmed=unconfirmed,
                    permanent=row.permanent,
                ),
            )
            try:
                ref = self.ctx.ref(ALERTS, AlertRequested)
            except ActorNotFound:
                self.ctx.log.warning("no actor to tell the alert to: told again later", actor=ALERTS, key=row.key)
                return
            await ref.tell(alert)
            await self.store.deliveries.mark_alerted(row.id, now)

    # -- HoldDeliveries / ReleaseDeliveries -------------------------------------------------------------------

    async def _hold(self, message: HoldDeliveries) -> None:
        ref = str(message.client_ref)
        done = await self.store.holds.hold(
            ref, key=message.idempotency_key, reason=message.reason, now=self.ctx.clock.now()
        )
        if done.changed:
            self.ctx.log.info("deliveries on hold", client_ref=ref, waiting=done.waiting)
        await self.ctx.publish(DeliveriesHeld(client_ref=message.client_ref, waiting=done.waiting))

    async def _release(self, message: ReleaseDeliveries) -> None:
        ref = str(message.client_ref)
        done = await self.store.holds.release(ref, self.ctx.clock.now())
        if done.changed:
            self.ctx.log.info("deliveries released", client_ref=ref, waiting=done.waiting)
            await self._tick()  # what waited goes out now, not at the next tick
        await self.ctx.publish(DeliveriesReleased(client_ref=message.client_ref, waiting=done.waiting))

    # -- CancelDeliveries --------------------------------------------------------------------------------------

    async def _cancel(self, message: CancelDeliveries) -> None:
        done = await self.store.deliveries.cancel(
            str(message.project_id), key=message.idempotency_key, reason=message.reason, now=self.ctx.clock.now()
        )
        if done.deliveries or done.emails or done.first:
            self.ctx.log.info(
                "deliveries cancelled",
                project_id=str(message.project_id),
                deliveries=done.deliveries,
                emails=done.emails,
            )
        await self.ctx.publish(DeliveriesCancelled(project_id=message.project_id))

    async def _close_transport(self) -> None:
        try:
            await self.transport.close()
        except Exception:
            self.ctx.log.warning("closing the delivery emails' connection failed", exc_info=True)

    async def _close(self) -> None:
        await self._close_transport()
        try:
            await self.http.close()
        except Exception:
            self.ctx.log.warning("closing the webhook client failed", exc_info=True)


__all__ = ["ALERTS", "CANCELLED", "COURIER", "Courier", "Setup", "payload"]
