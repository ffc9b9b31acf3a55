"""`cam.alerts`: tell a human, once per idempotency key, by email and/or webhook.

The alert row (unique idempotency key) is stored before any delivery is tried (by whoever
decided it, in the transaction of that decision, or here for an `AlertRequested`); delivery
retries with a doubling delay (a 5xx too, unless it says the alert address does not
exist: a block of our sending clears up); across crashes and restarts each alert is
delivered once per channel. The email carries a Message-ID and the webhook an `Idempotency-Key` header
derived from the key, so that the one window that cannot be closed (delivered, then
killed before the commit) cannot show a person two alerts either. A delivery whose commit
failed is kept in an `Unrecorded` that outlives the incarnation (its child spec holds it), so
that a crash and restart in between does not deliver it again. With no destination
configured an alert stays pending (never failed) and goes out once one is set; the mail
connection is closed when no other alert waits, so no idle connection is left to time out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aicmo_actors.cam.classify import judge_smtp_reply
from aicmo_actors.cam.repos import AlertRow, CamStore
from aicmo_actors.gateways.mail_message import build_message
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.gateways.webhook import WebhookClient, WebhookError
from aicmo_actors.runtime import Actor
from contracts.cam import AlertDelivered, AlertRequested, ReplyCategory, RetryAlert
from contracts.runtime import Tick

_URL = re.compile(r"(?i)\b(?:https?|ftp)://\S+|\bwww\.\S+")


def defang(text: str) -> str:
    """Links in a stranger's reply must not become clickable in our alert."""
    return _URL.sub(
        lambda m: "[link removed: " + m.group(0).split("//")[-1].split("/")[0].replace(".", "[.]") + "]", text
    )


def alert_subject(row: AlertRow) -> str:
    label = row.kind.replace("_", " ")
    return f"[AICMO] {label}: {row.summary}"[:180]


def alert_body(row: AlertRow) -> str:
    lines = [
        f"Alert: {row.kind}",
        f"Campaign: {row.campaign or '-'}",
        f"Lead: {row.lead or '-'}",
        f"Category: {row.category or '-'}",
        "",
        defang(row.summary),
    ]
    if row.text and row.text != row.summary:
        lines += ["", "Their reply:", "", defang(row.text)[:4000]]
    return "\n".join(lines) + "\n"


#: Writes a channel's outcome needs but the database does not have yet (their commit failed):
#: each the repository call, its arguments and the event to publish once it is in.
Unrecorded = list[tuple[Callable[..., Awaitable[None]], tuple[Any, ...], AlertDelivered | None]]


class Alerts(Actor[AlertRequested | RetryAlert | Tick]):
    """Delivers alerts; a pending alert survives any crash and is retried."""

    subscribes = (Tick,)

    def __init__(
        self,
        store: CamStore,
        *,
        recipients: list[str],
        webhook_url: str | None,
        from_address: str,
        transport: Callable[[], MailTransport],
        unrecorded: Unrecorded,
        webhook: WebhookClient | None = None,
        max_attempts: int = 12,
        retry_base_s: float = 30.0,
    ) -> None:
        self.store = store
        self.recipients = recipients
        self.webhook_url = webhook_url
        self.from_address = from_address
        self.make_transport = transport
        self.webhook = webhook or WebhookClient()
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self._transport: MailTransport | None = None
        # Outcomes a channel already has but the database does not (its commit failed):
        # written again before anything else, and in on_stop, so a delivered alert is not
        # delivered again by the next incarnation. Shared by every incarnation (the caller
        # passes the same list to each): a crash whose on_stop cannot write them either
        # leaves them to the replacement, which writes them before it looks at any alert.
        # Only a kill in that window can repeat a delivery, and then with the same
        # Message-ID and Idempotency-Key. The event that says so is published once the
        # write is in, whichever incarnation makes it.
        self._unrecorded = unrecorded

    async def _record(
        self, write: Callable[..., Awaitable[None]], *args: Any, then: AlertDelivered | None = None
    ) -> None:
        try:
            await write(*args)
        except Exception:
            self._unrecorded.append((write, args, then))
            raise
        if then is not None:
            await self.ctx.publish(then)

    async def _write_unrecorded(self) -> None:
        while self._unrecorded:
            write, args, then = self._unrecorded[0]
            await write(*args)
            self._unrecorded.pop(0)
            if then is not None:
                await self.ctx.publish(then)

    async def on_start(self) -> None:
        pending = await self.store.alerts.pending_ids()
        if not self.recipients and not self.webhook_url:
            # Kept pending, never failed: they go out once a destination is set and the
            # service is started again.
            self.ctx.log.warning(
                "alerts have nowhere to go: set AICMO_ALERT_EMAILS or AICMO_ALERT_WEBHOOK_URL",
                waiting=len(pending),
            )
            return
        for alert_id in pending:
            self.ctx.schedule(0, RetryAlert(alert_id=alert_id))

    async def on_stop(self) -> None:
        try:
            await self._write_unrecorded()
        except Exception:
            self.ctx.log.warning(
                "could not record an alert's delivery: the next incarnation writes it first;"
                " if the service stops now, it may be delivered again",
                exc_info=True,
            )
        await self._close_transport()
        await self.webhook.close()

    async def receive(self, message: AlertRequested | RetryAlert | Tick) -> Any:
        await self._write_unrecorded()
        now = self.ctx.clock.now()
        if isinstance(message, Tick):
            if not self.recipients and not self.webhook_url:
                return None  # kept pending until a destination is set (see on_start)
            # Alerts made due from outside this process (`alerts retry` on the command line)
            # carry a due time; the actor's own retries are timers and carry none.
            for alert_id in await self.store.alerts.due_ids(now):
                self.ctx.self_ref.try_tell(RetryAlert(alert_id=alert_id))
            return None
        if isinstance(message, AlertRequested):
            row = await self.store.alerts.create(
                key=message.idempotency_key,
                kind=message.kind,
                lead_id=message.lead_id,
                campaign=message.campaign,
                category=message.category.value if message.category else None,
                summary=message.summary,
                text=message.text,
                inbound_id=message.inbound_id,
                now=now,
            )
        else:
            row = await self.store.alerts.get(message.alert_id)
        if row is None or row.state != "pending":
            return None
        try:
            await self._deliver(row)
        finally:
            if not self.ctx.waiting:
                await self._close_transport()  # alerts are rare: no connection left to time out
        return row.alert_id

    async def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                await transport.close()
            except Exception:
                self.ctx.log.warning("closing the alerts' mail connection failed", exc_info=True)

    async def _deliver(self, row: AlertRow) -> None:
        now = self.ctx.clock.now()
        done = set(row.channels_done)
        errors: list[str] = []
        permanent = False
        if not self.recipients and not self.webhook_url:
            # Not failed: it waits (pending) until a destination is configured.
            self.ctx.log.warning(
                "alert kept pending: no AICMO_ALERT_EMAILS or AICMO_ALERT_WEBHOOK_URL set",
                kind=row.kind,
                alert_id=row.alert_id,
            )
            return
        key_hash = hashlib.sha256(row.idempotency_key.encode()).hexdigest()[:32]
        if self.recipients and "email" not in done:
            try:
                if self._transport is None:
                    self._transport = self.make_transport()
                email = build_message(
                    from_address=self.from_address,
                    from_name="AICMO alerts",
                    to_address=self.recipients[0],
                    subject=alert_subject(row),
                    text=alert_body(row),
                    message_id=f"<alert.{key_hash}@{self.from_address.rpartition('@')[2] or 'localhost'}>",
                    date=now,
                    extra_headers={"Cc": ", ".join(self.recipients[1:])} if len(self.recipients) > 1 else {},
                )
                result = await self._transport.send(email, mail_from=self.from_address, rcpt_to=self.recipients)
                if result.outcome in ("accepted", "unconfirmed"):
                    done.add("email")
                else:
                    errors.append(f"email: {result.outcome} {result.smtp_code or ''} {result.smtp_text}".strip())
                    # A 5xx for our own alert is mostly about our sending (a block list, a
                    # policy) and clears up: keep trying. Only a dead alert address is final.
                    judged = judge_smtp_reply(result.smtp_code, result.smtp_text, stage=result.stage)
                    dead = result.outcome == "permanent" and judged.category is ReplyCategory.BOUNCE_HARD
                    permanent = permanent or dead
            except Exception as exc:
                errors.append(f"email: {exc!r}")
        if self.webhook_url and "webhook" not in done:
            payload = {
                "idempotency_key": row.idempotency_key,
                "kind": row.kind,
                "campaign": row.campaign,
                "lead": row.lead,
                "lead_id": row.lead_id,
                "category": row.category,
                "summary": defang(row.summary),
                "text": defang(row.text),
                "created_at": row.created_at.isoformat(),
            }
            try:
                await self.webhook.post_json(self.webhook_url, payload, {"Idempotency-Key": key_hash})
                done.add("webhook")
            except WebhookError as exc:
                errors.append(f"webhook: {exc}")
                permanent = permanent or exc.permanent
        wanted = {"email"} if self.recipients else set()
        if self.webhook_url:
            wanted.add("webhook")
        if wanted <= done:
            delivered = AlertDelivered(
                alert_id=row.alert_id, kind=row.kind, campaign=row.campaign, channels=tuple(sorted(done))
            )
            await self._record(
                self.store.alerts.finish, row.alert_id, "delivered", now, None, sorted(done), then=delivered
            )
            self.ctx.log.info("alert delivered", kind=row.kind, alert_id=row.alert_id)
            return
        attempts = row.attempts + 1
        if permanent or attempts >= self.max_attempts:
            await self._record(self.store.alerts.finish, row.alert_id, "failed", now, "; ".join(errors), sorted(done))
            self.ctx.log.error("alert delivery failed for good", kind=row.kind, errors=errors)
            return
        delay = self.retry_base_s * 2 ** (attempts - 1)
        await self._record(self.store.alerts.retry, row.alert_id, attempts, "; ".join(errors), sorted(done))
        self.ctx.log.warning("alert delivery failed: will retry", kind=row.kind, in_s=delay, errors=errors)
        self.ctx.schedule(delay, RetryAlert(alert_id=row.alert_id))
