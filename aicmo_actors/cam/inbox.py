"""`cam.inbox`: fetch new replies from every configured inbox, store each once, hand it on.

For each inbox (IMAP, or the embedded Maildir ./mail/inbox, through the same port) it
tracks UIDVALIDITY and the last UID seen (persisted with the messages, in the same
transaction), fetches only newer UIDs in batches, and tells `cam.classifier` about each
stored message. The classifier's bounded mailbox is the backpressure: a slow classifier
slows the fetch instead of filling memory. Connection failures reconnect with a doubling
delay; a changed UIDVALIDITY starts the folder over (messages already stored are
recognised by their Message-ID and not stored twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aicmo_actors.cam.store import CamStore
from aicmo_actors.gateways.inbox_source import InboxSource, InboxUnavailable
from aicmo_actors.runtime import Actor
from contracts.cam import CycleReport, PollInbox, ReplyReceived
from contracts.runtime import Tick

CLASSIFIER = "cam.classifier"


@dataclass
class _Inbox:
    name: str
    make: Callable[[], InboxSource]
    source: InboxSource | None = None
    uidvalidity: int | None = None
    failures: int = 0
    retry_at: float = 0.0


class Inbox(Actor[Tick | PollInbox]):
    """Polls on every tick (and whenever told to), one inbox at a time."""

    subscribes = (Tick,)

    def __init__(
        self,
        store: CamStore,
        sources: dict[str, Callable[[], InboxSource]],
        *,
        batch: int = 100,
        max_per_poll: int = 2000,
        backoff_base_s: float = 5.0,
        backoff_max_s: float = 600.0,
        offset_s: float = 0.0,
    ) -> None:
        self.store = store
        self.inboxes = {name: _Inbox(name, make) for name, make in sources.items()}
        self.batch = batch
        self.max_per_poll = max_per_poll
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.offset_s = offset_s
        self._deferred: set[int] = set()
        self._classifier: Any = None

    async def on_start(self) -> None:
        self._classifier = self.ctx.ref(CLASSIFIER, ReplyReceived)
        # Stored but never classified (a crash between the two): hand them on again.
        for inbound_id, inbox in await self.store.unclassified_inbound():
            await self._classifier.tell(ReplyReceived(inbound_id=inbound_id, mailbox=inbox))

    async def on_stop(self) -> None:
        for inbox in self.inboxes.values():
            await self._close(inbox)

    async def receive(self, message: Tick | PollInbox) -> None:
        if isinstance(message, Tick) and self.offset_s > 0 and message.seq not in self._deferred:
            # Come back to this tick `offset_s` later (the same Tick, so the report names it).
            self._deferred = {message.seq}
            self.ctx.schedule(self.offset_s, message)
            return
        names = list(self.inboxes) if isinstance(message, Tick) else [message.inbox]
        counts = {"fetched": 0, "stored": 0, "duplicates": 0, "unavailable": 0}
        errors: list[str] = []
        started = self.ctx.clock.perf()
        for name in names:
            inbox = self.inboxes.get(name)
            if inbox is None:
                continue
            try:
                fetched, stored = await self._poll(inbox)
                counts["fetched"] += fetched
                counts["stored"] += stored
                counts["duplicates"] += fetched - stored
            except InboxUnavailable as exc:
                counts["unavailable"] += 1
                errors.append(f"{name}: {exc}")
                await self._failed(inbox, exc)
        if isinstance(message, Tick):
            report = CycleReport(
                tick_seq=message.seq,
                step="inbox",
                counts=counts,
                errors=tuple(errors),
                duration_ms=(self.ctx.clock.perf() - started) * 1000,
            )
            await self.store.save_cycle_report(report, self.ctx.clock.now())
            await self.ctx.publish(report)

    async def _poll(self, inbox: _Inbox) -> tuple[int, int]:
        clock = self.ctx.clock
        if inbox.source is None:
            if clock.monotonic() < inbox.retry_at:
                return 0, 0
            inbox.source = inbox.make()
            validity = await inbox.source.open()
            inbox.uidvalidity = validity
            inbox.failures = 0
        assert inbox.source is not None and inbox.uidvalidity is not None
        cursor = await self.store.inbox_cursor(inbox.name)
        last_uid = 0
        if cursor is not None:
            known_validity, last_uid = cursor
            if known_validity != inbox.uidvalidity:
                self.ctx.log.warning(
                    "UIDVALIDITY changed: reading the folder again",
                    inbox=inbox.name,
                    old=known_validity,
                    new=inbox.uidvalidity,
                )
                last_uid = 0
        fetched = stored = 0
        while fetched < self.max_per_poll:
            batch = await inbox.source.fetch_after(last_uid, self.batch)
            if not batch:
                break
            now = clock.now()
            new_ids = await self.store.store_inbound(inbox.name, inbox.uidvalidity, batch, now)
            fetched += len(batch)
            stored += len(new_ids)
            last_uid = max(m.uid for m in batch)
            for inbound_id in new_ids:
                await self._classifier.tell(ReplyReceived(inbound_id=inbound_id, mailbox=inbox.name))
            if len(batch) < self.batch:
                break
        return fetched, stored

    async def _failed(self, inbox: _Inbox, exc: Exception) -> None:
        await self._close(inbox)
        inbox.failures += 1
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (inbox.failures - 1))
        inbox.retry_at = self.ctx.clock.monotonic() + delay
        self.ctx.log.warning("inbox unavailable: will reconnect", inbox=inbox.name, error=str(exc), retry_in_s=delay)

    async def _close(self, inbox: _Inbox) -> None:
        if inbox.source is not None:
            try:
                await inbox.source.close()
            except Exception:
                pass
            inbox.source = None
