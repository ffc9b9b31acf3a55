"""`cam.inbox`: fetch new replies from every configured inbox, store each once, hand it on.

For each inbox (IMAP, or the embedded Maildir ./mail/inbox, through the same port) it
tracks UIDVALIDITY and the last UID seen (persisted with the messages, in the same
transaction), fetches only newer UIDs in batches, and tells `cam.classifier` about each
stored message. The classifier's bounded mailbox is the backpressure: a slow classifier
slows the fetch instead of filling memory. Connection failures reconnect with a doubling
delay; a changed UIDVALIDITY starts the folder over (messages already stored are
recognised by their Message-ID and not stored twice).

Push: when an inbox's fetch connection finds that the server offers IDLE, the actor also
starts a watcher task for it, with a second connection of its own that stays in IDLE
(an IDLE connection cannot fetch until it sends DONE, and the source is not safe for
two callers at once). When the server announces new mail, the watcher tells the actor
`PollInbox(inbox=name)`, so the mail is fetched at once instead of at the next tick; the
mailbox stays free for ticks meanwhile. Ticks still poll every inbox (a safety net for a
push lost between two IDLEs). Without IDLE (the Maildir, some servers) only ticks poll.
The watchers are spawned with `ctx.spawn`, so they belong to the actor's incarnation:
cancelled when it stops or restarts, and a bug in one crashes the actor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aicmo_actors.cam.repos import CamStore
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
    #: The IDLE watcher task of this inbox (None until the server is known to offer IDLE).
    watcher: asyncio.Task[None] | None = None
    #: A PollInbox for this inbox is queued: pushes and continuations need not add another.
    poll_pending: bool = False


class Inbox(Actor[Tick | PollInbox]):
    """Polls on every tick, when told to, and when an inbox's server pushes new mail (IDLE)."""

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
        idle: bool = True,
        idle_timeout_s: float = 300.0,
        max_bytes: int | None = 10_000_000,
    ) -> None:
        self.store = store
        self.inboxes = {name: _Inbox(name, make) for name, make in sources.items()}
        self.batch = batch
        self.max_per_poll = max_per_poll
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.offset_s = offset_s
        self.idle = idle
        # Each IDLE is ended and started again after this long (RFC 2177: under 29 minutes).
        self.idle_timeout_s = idle_timeout_s
        # A message over this size is stored as its headers only and set aside.
        self.max_bytes = max_bytes
        self._classifier: Any = None

    async def on_start(self) -> None:
        self._classifier = self.ctx.ref(CLASSIFIER, ReplyReceived)
        # Stored but never classified (a crash between the two): hand them on again.
        for inbound_id, inbox in await self.store.inbound.unclassified():
            await self._classifier.tell(ReplyReceived(inbound_id=inbound_id, mailbox=inbox))

    async def on_stop(self) -> None:
        # The IDLE watchers are spawned tasks: the runtime has ended them before on_stop.
        for inbox in self.inboxes.values():
            await self._close(inbox)

    async def receive(self, message: Tick | PollInbox) -> None:
        if isinstance(message, PollInbox) and message.inbox in self.inboxes:
            self.inboxes[message.inbox].poll_pending = False
        if isinstance(message, Tick) and self.offset_s > 0:
            wait = (message.at - self.ctx.clock.now()).total_seconds() + self.offset_s
            if wait > 0:
                # Come back to this tick `offset_s` after it (the same Tick, so the report
                # names it). Decided from the clock, not from memory: a restarted inbox
                # given the tick again after its time polls at once instead of deferring.
                self.ctx.schedule(wait, message)
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
                if inbox.source is not None:  # None: still waiting to reconnect after a failure
                    self.ctx.report_dependency(f"inbox:{name}", ok=True)
                counts["fetched"] += fetched
                counts["stored"] += stored
                counts["duplicates"] += fetched - stored
            except InboxUnavailable as exc:
                counts["unavailable"] += 1
                errors.append(f"{name}: {exc}")
                self.ctx.report_dependency(f"inbox:{name}", ok=False, detail=str(exc))
                await self._failed(inbox, exc)
        if isinstance(message, Tick):
            report = CycleReport(
                tick_seq=message.seq,
                step="inbox",
                counts=counts,
                errors=tuple(errors),
                duration_ms=(self.ctx.clock.perf() - started) * 1000,
            )
            await self.store.metrics.save_cycle_report(
                step=report.step,
                tick_seq=report.tick_seq,
                counts=counts,
                errors=errors,
                duration_ms=report.duration_ms,
                now=self.ctx.clock.now(),
            )
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
            if self.idle and inbox.source.supports_idle:
                self._start_watcher(inbox)
        assert inbox.source is not None and inbox.uidvalidity is not None
        cursor = await self.store.inbound.cursor(inbox.name)
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
            batch = await inbox.source.fetch_after(last_uid, self.batch, self.max_bytes)
            if not batch:
                break
            now = clock.now()
            new_ids = await self.store.inbound.store(inbox.name, inbox.uidvalidity, batch, now)
            fetched += len(batch)
            stored += len(new_ids)
            last_uid = max(m.uid for m in batch)
            for inbound_id in new_ids:
                await self._classifier.tell(ReplyReceived(inbound_id=inbound_id, mailbox=inbox.name))
            if len(batch) < self.batch:
                break
        else:
            # The cap ended this poll with more mail waiting: go on in a poll of its own, so
            # that ticks and other inboxes get their turn in between.
            if not inbox.poll_pending:
                inbox.poll_pending = True
                self.ctx.schedule(0, PollInbox(inbox=inbox.name))
        return fetched, stored

    # -- IDLE ---------------------------------------------------------------------------------
    def _start_watcher(self, inbox: _Inbox) -> None:
        if inbox.watcher is not None and not inbox.watcher.done():
            return
        inbox.watcher = self.ctx.spawn(self._watch(inbox), name=f"idle:{self.ctx.name}:{inbox.name}")

    async def _watch(self, inbox: _Inbox) -> None:
        """Hold a second connection in IDLE; on new mail, tell ourselves PollInbox."""
        log = self.ctx.log.bind(inbox=inbox.name)
        clock = self.ctx.clock
        source: InboxSource | None = None
        failures = 0
        try:
            while True:
                try:
                    if source is None:
                        source = inbox.make()
                        await source.open()
                        if not source.supports_idle:
                            log.info("no IDLE on the watch connection: polling on ticks only")
                            return
                        # Mail that came before this connection's IDLE began is not pushed.
                        await self._wake(inbox)
                        failures = 0
                    if await source.wait_for_new(self.idle_timeout_s):
                        await self._wake(inbox)
                except InboxUnavailable as exc:
                    await _close_quietly(source)
                    source = None
                    failures += 1
                    delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (failures - 1))
                    log.warning("IDLE connection lost: will reconnect", error=str(exc), retry_in_s=delay)
                    await clock.sleep(delay)
        finally:
            await _close_quietly(source)

    async def _wake(self, inbox: _Inbox) -> None:
        if inbox.poll_pending:
            return
        inbox.poll_pending = True
        message = self.ctx.system.message(PollInbox, inbox=inbox.name)
        await self.ctx.self_ref.tell(message)

    async def _failed(self, inbox: _Inbox, exc: Exception) -> None:
        await self._close(inbox)
        inbox.failures += 1
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (inbox.failures - 1))
        inbox.retry_at = self.ctx.clock.monotonic() + delay
        self.ctx.log.warning("inbox unavailable: will reconnect", inbox=inbox.name, error=str(exc), retry_in_s=delay)
        if inbox.watcher is not None and not inbox.watcher.done() and not inbox.poll_pending:
            # Pushed mail is not pushed twice: come back by ourselves rather than wait for a tick.
            inbox.poll_pending = True
            # (A hair after the retry time: a timer may fire a clock tick early.)
            self.ctx.schedule(delay + 0.001, PollInbox(inbox=inbox.name))

    async def _close(self, inbox: _Inbox) -> None:
        if inbox.source is not None:
            try:
                await inbox.source.close()
            except Exception:
                pass
            inbox.source = None


async def _close_quietly(source: InboxSource | None, timeout: float = 2.0) -> None:
    """Close a watcher's connection, best effort and briefly (it may run while cancelled)."""
    if source is None:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await source.close()
