"""`cam.classifier`: classify a stored inbound message and match it to what we sent.

Matching (never by anything a stranger could choose, except as a marked fallback):
1. In-Reply-To and References against our own Message-IDs (`matched_by="message_id"`);
2. for bounces and complaints, the original Message-ID inside the report
   (`"report"`), else the failed recipient inside the report (`"report_recipient"`);
3. the sender's address against addresses we wrote to (`"sender"`, lower confidence).
A message that matches nothing is kept (`python run.py inbox unmatched`), never dropped.

Batches: a `ReplyReceived` says "row N is waiting"; rows stored by one poll usually wait
together, so the classifier reads up to `batch` unclassified rows from N on, classifies
them, matches them with one query per kind and saves them in one transaction, then
publishes one `ReplyClassified` per row in id order. The `ReplyReceived` of a row done
ahead costs nothing when it comes. Nothing is lost on a crash: a row stays unclassified
(processed_at NULL) until its transaction commits, its message is still in the mailbox,
and a row classified already is never saved or published twice. (The events of a batch
carry the correlation id of the message that started it: usually the same poll's.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.store import CamStore, Match
from aicmo_actors.runtime import Actor
from contracts.cam import Classification, ReplyCategory, ReplyClassified, ReplyReceived

REPORTS = frozenset({ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT, ReplyCategory.COMPLAINT})
#: How much a sender-address match lowers the confidence.
FALLBACK_CONFIDENCE_FACTOR = 0.6


@dataclass
class _Result:
    inbound_id: int
    mailbox: str
    classification: Classification
    match: Match | None = None
    matched_by: str | None = None


class Classifier(Actor[ReplyReceived]):
    mailbox_size = 200

    def __init__(self, store: CamStore, *, batch: int = 100) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.store = store
        self.batch = batch
        # Rows classified ahead of their own ReplyReceived (which then needs nothing).
        self._ahead: set[int] = set()
        # An incarnation's first message is classified alone: if it is what crashed the one
        # before, it crashes alone, and becomes a dead letter without taking others along.
        self._alone = True

    async def receive(self, message: ReplyReceived) -> None:
        head = message.inbound_id
        if head in self._ahead:
            self._ahead.discard(head)
            return
        if len(self._ahead) > 4 * self.batch:
            # Messages come in id order: one for a lower id is not coming (and if it does,
            # the database says it is done).
            self._ahead = {i for i in self._ahead if i > head}
        rows = await self.store.unclassified_raw(head, 1 if self._alone else self.batch)
        results: list[_Result] = []
        for inbound_id, mailbox, raw in rows:
            try:
                c = classify_message(raw)
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
            await self.ctx.publish(
                ReplyClassified(
                    inbound_id=r.inbound_id,
                    mailbox=r.mailbox,
                    lead_id=match.lead_id if match else None,
                    campaign=match.campaign if match else None,
                    outbound_id=match.outbound_id if match else None,
                    matched_by=r.matched_by,
                    classification=r.classification,
                )
            )

    async def _save(self, results: list[_Result], now: datetime) -> list[int]:
        return await self.store.save_classifications(
            [(r.inbound_id, r.classification, r.match, r.matched_by) for r in results], now
        )

    async def _match(self, results: list[_Result]) -> None:
        """Fill in each result's match: by our Message-IDs, else by address (one query each)."""
        id_lists = [
            [i for i in (r.classification.in_reply_to, *r.classification.referenced_ids) if i]
            for r in results
        ]
        by_ids = await self.store.matches_by_message_ids(id_lists)
        by_address: list[tuple[_Result, str, str]] = []
        for r, match in zip(results, by_ids, strict=True):
            c = r.classification
            if match is not None:
                r.match = match
                r.matched_by = "report" if c.category in REPORTS else "message_id"
            elif c.category in REPORTS and c.failed_recipients:
                by_address.append((r, c.failed_recipients[0], "report_recipient"))
            elif c.from_address:
                by_address.append((r, c.from_address, "sender"))
        if not by_address:
            return
        found = await self.store.matches_by_recipient([address for _, address, _ in by_address])
        for r, address, how in by_address:
            match = found.get(address)
            if match is None:
                continue
            r.match, r.matched_by = match, how
            if how == "sender":
                c = r.classification
                r.classification = c.model_copy(
                    update={
                        "confidence": round(c.confidence * FALLBACK_CONFIDENCE_FACTOR, 3),
                        "reasons": (
                            *c.reasons,
                            "matched by sender address only (no Message-ID of ours)",
                        ),
                    }
                )
