"""`cam.classifier`: classify a stored inbound message and tie it to what we sent.

Ties, strongest first (`matched_by`), and only the first three act on a lead:
1. our signed unsubscribe token, in the subject of a mail to our List-Unsubscribe mailto
   (`"token"`): it names its lead whoever sends it;
2. our own Message-IDs: In-Reply-To and References (`"message_id"`), or the original
   Message-ID quoted inside a bounce or complaint report (`"report"`);
3. our signed per-message return path (VERP, `sender+TOKEN@domain`) in the addresses a
   bounce was delivered to (`"return_path"`): it names the very email that bounced;
4. guesses: a recipient named in a report (`"report_recipient"`), the sender's real
   address (`"sender"`, never one in the display name). Anyone can write these: they
   lower the confidence, act on nothing, and the message is listed with the unmatched mail.
A message that matches nothing is kept (`python run.py inbox unmatched`), never dropped.

Reading untrusted mail happens off the event loop: `read` is either inline (the
simulation) or a child process with a time limit per message (the service,
`aicmo_actors.gateways.isolated`), so one message can only ever cost its own time; a
message that takes too long is stored as read that far, marked "set aside", and skipped,
never retried forever.

Batches: a `ReplyReceived` says "row N is waiting"; rows stored by one poll usually wait
together, so the classifier reads up to `batch` unclassified rows from N on, classifies
them, matches them with one query per kind and saves them in one transaction, then
publishes one `ReplyClassified` per row in id order (the follow-up acts on it, and finds
it by itself after a crash: the classification is durable, the event is only a nudge).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aicmo_actors.cam.classify import ParseLimits, classify_message
from aicmo_actors.cam.repos import CamStore, Match
from aicmo_actors.cam.unsubscribe import return_path_tokens, verify_return_path, verify_token
from aicmo_actors.gateways.isolated import IsolatedCrash, IsolatedTimeout, IsolatedWorker
from aicmo_actors.runtime import Actor
from contracts.cam import Classification, ReplyCategory, ReplyClassified, ReplyReceived

REPORTS = frozenset(
    {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT, ReplyCategory.COMPLAINT, ReplyCategory.DELAYED}
)
#: How much a guessed match (sender address, a recipient named in a report) lowers the confidence.
FALLBACK_CONFIDENCE_FACTOR = 0.6

#: Reads one raw message: inline, or in a child process with a time limit.
Reader = Callable[[bytes], Awaitable[Classification]]


#: What the reading child may take beyond what it uses once started: one message's parse
#: (its size and decoded size are bounded before that) and more than enough room to spare.
CHILD_MEMORY_BYTES = 1024**3


def set_aside(why: str) -> Classification:
    """What a message we could not read gets: nothing to act on, the reason kept."""
    return Classification(category=ReplyCategory.OTHER, reason="set_aside", confidence=0.0, reasons=(why,), limited=why)


class InlineReader:
    """Reads in this process with the given parse limits."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits

    async def __call__(self, raw: bytes) -> Classification:
        return classify_message(raw, limits=self.limits)


class IsolatedReader:
    """Reads in a child process, one message at a time, each within `timeout_s`: a message
    that takes longer (or kills the reader) is set aside, the child replaced, the next read."""

    def __init__(self, limits: ParseLimits, timeout_s: float) -> None:
        self.limits = limits
        self.timeout_s = timeout_s
        self.worker = IsolatedWorker(
            "aicmo_actors.cam.classify:classify_to_json",
            timeout_s=timeout_s,
            memory_headroom_bytes=CHILD_MEMORY_BYTES,
            name="classifier",
        )

    async def start(self) -> None:
        await self.worker.start()

    async def __call__(self, raw: bytes) -> Classification:
        try:
            answer = await self.worker.call(raw, limits=self.limits)
        except IsolatedTimeout:
            return set_aside(
                f"took longer than {self.timeout_s:g} s to read (AICMO_CLASSIFY_TIMEOUT_S): not read further"
            )
        except IsolatedCrash as exc:
            return set_aside(f"reading it stopped the reader ({str(exc)[:120]}): not read further")
        return Classification.model_validate_json(answer)

    async def close(self) -> None:
        """Stop the child; a later call starts a new one (a restarted classifier reuses this)."""
        await self.worker.close()
        self.worker = IsolatedWorker(
            self.worker.target, timeout_s=self.timeout_s, memory_headroom_bytes=CHILD_MEMORY_BYTES, name="classifier"
        )


def make_reader(settings: Any) -> Reader:
    """The reader the settings ask for: `classify_isolation` ("process" or "inline"),
    `classify_timeout_s`, and the inbound parse limits."""
    limits = ParseLimits(
        max_parts=settings.inbound_max_parts,
        max_depth=settings.inbound_max_depth,
        max_decoded_bytes=settings.inbound_max_decoded_bytes,
    )
    if settings.classify_isolation == "inline":
        return InlineReader(limits)
    return IsolatedReader(limits, settings.classify_timeout_s)


@dataclass
class _Result:
    inbound_id: int
    mailbox: str
    classification: Classification
    match: Match | None = None
    matched_by: str | None = None


class Classifier(Actor[ReplyReceived]):
    mailbox_size = 200

    def __init__(
        self,
        store: CamStore,
        *,
        batch: int = 100,
        read: Reader | None = None,
        secret: Callable[[], bytes] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.store = store
        self.batch = batch
        #: Inline with the default limits unless told otherwise (the service: `make_reader`).
        self.read = read or InlineReader(ParseLimits())
        #: The key of our signed tokens; None: tokens are not recognised (tests without one).
        self.secret = secret
        # Rows classified ahead of their own ReplyReceived (which then needs nothing).
        self._ahead: set[int] = set()
        # An incarnation's first message is classified alone: if it is what crashed the one
        # before, it crashes alone, and becomes a dead letter without taking others along.
        self._alone = True

    async def on_start(self) -> None:
        start = getattr(self.read, "start", None)
        if start is not None:
            await start()  # the child process, once, before the first message waits for it

    async def on_stop(self) -> None:
        close = getattr(self.read, "close", None)
        if close is not None:
            await close()

    async def receive(self, message: ReplyReceived) -> None:
        head = message.inbound_id
        if head in self._ahead:
            self._ahead.discard(head)
            return
        if len(self._ahead) > 4 * self.batch:
            # Messages come in id order: one for a lower id is not coming (and if it does,
            # the database says it is done).
            self._ahead = {i for i in self._ahead if i > head}
        rows = await self.store.inbound.unclassified_raw(head, 1 if self._alone else self.batch)
        results: list[_Result] = []
        for inbound_id, mailbox, raw in rows:
            try:
                c = await self.read(raw)
            except Exception:
                if inbound_id == head:
                    raise
                break  # left for its own message, where a crash is its own
            results.append(_Result(inbound_id, mailbox, c))
        await self._match(results)
        now = self.ctx.clock.now()
        try:
            saved = set(await self._save(results, now))
        except Exception:
            alone = [r for r in results if r.inbound_id == head]
            if len(alone) == len(results):
                raise
            # Perhaps one row of the batch is what the database refuses: save the head's
            # alone (a crash is then its own) and leave the others to their own messages.
            results = alone
            saved = set(await self._save(results, now))
        self._ahead.update(r.inbound_id for r in results if r.inbound_id != head)
        self._alone = False
        for r in results:
            if r.inbound_id not in saved:
                continue  # classified already, by an earlier message or incarnation
            match = r.match
            c = r.classification
            self.ctx.log.info(
                "reply classified",
                inbound_id=r.inbound_id,
                category=c.category.value,
                reason=c.reason,
                matched_by=r.matched_by,
                lead_id=match.lead_id if match else None,
            )
            await self.ctx.publish(
                ReplyClassified(
                    inbound_id=r.inbound_id,
                    mailbox=r.mailbox,
                    lead_id=match.lead_id if match else None,
                    campaign=match.campaign if match else None,
                    outbound_id=match.outbound_id if match else None,
                    matched_by=r.matched_by,
                    classification=c,
                )
            )

    async def _save(self, results: list[_Result], now: datetime) -> list[int]:
        return await self.store.inbound.save_classifications(
            [(r.inbound_id, r.classification, r.match, r.matched_by) for r in results], now
        )

    def _lead_of_token(self, c: Classification) -> int | None:
        if self.secret is None or c.unsubscribe_token is None or c.category is not ReplyCategory.UNSUBSCRIBE:
            return None
        return verify_token(self.secret(), c.unsubscribe_token)

    def _outbound_of_return_path(self, c: Classification) -> int | None:
        if self.secret is None or c.category not in REPORTS:
            return None
        for token in return_path_tokens(c.delivered_to):
            outbound_id = verify_return_path(self.secret(), token)
            if outbound_id is not None:
                return outbound_id
        return None

    async def _match(self, results: list[_Result]) -> None:
        """Fill in each result's match, strongest tie first (one query per kind)."""
        pending = list(results)
        # 1. Our signed unsubscribe token.
        by_token = {id(r): lead for r in pending if (lead := self._lead_of_token(r.classification)) is not None}
        if by_token:
            found = await self.store.inbound.matches_by_lead(sorted(set(by_token.values())))
            for r in pending:
                lead = by_token.get(id(r))
                if lead is not None and lead in found:
                    r.match, r.matched_by = found[lead], "token"
            pending = [r for r in pending if r.match is None]
        # 2. Our Message-IDs.
        id_lists = [[i for i in (r.classification.in_reply_to, *r.classification.referenced_ids) if i] for r in pending]
        for r, match in zip(pending, await self.store.inbound.matches_by_message_ids(id_lists), strict=True):
            if match is not None:
                r.match = match
                r.matched_by = "report" if r.classification.category in REPORTS else "message_id"
        pending = [r for r in pending if r.match is None]
        # 3. Our signed return path.
        by_path = {id(r): out for r in pending if (out := self._outbound_of_return_path(r.classification)) is not None}
        if by_path:
            found_out = await self.store.inbound.matches_by_outbound_ids(sorted(set(by_path.values())))
            for r in pending:
                out = by_path.get(id(r))
                if out is not None and out in found_out:
                    r.match, r.matched_by = found_out[out], "return_path"
            pending = [r for r in pending if r.match is None]
        # 4. Guesses: they change nothing, they only say who it may concern.
        guesses: list[tuple[_Result, str, str]] = []
        for r in pending:
            c = r.classification
            if c.category in REPORTS and c.failed_recipients:
                guesses.append((r, c.failed_recipients[0], "report_recipient"))
            elif c.from_address:
                guesses.append((r, c.from_address, "sender"))
        if not guesses:
            return
        found_addr = await self.store.inbound.matches_by_recipient([address for _, address, _ in guesses])
        for r, address, how in guesses:
            match = found_addr.get(address)
            if match is None:
                continue
            c = r.classification
            r.match, r.matched_by = match, how
            r.classification = c.model_copy(
                update={
                    "confidence": round(c.confidence * FALLBACK_CONFIDENCE_FACTOR, 3),
                    "reasons": (
                        *c.reasons,
                        f"matched by {how.replace('_', ' ')} only (no Message-ID or token of ours): changes nothing",
                    ),
                }
            )
