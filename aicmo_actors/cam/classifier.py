"""`cam.classifier`: classify a stored inbound message and match it to what we sent.

Matching (never by anything a stranger could choose, except as a marked fallback):
1. In-Reply-To and References against our own Message-IDs (`matched_by="message_id"`);
2. for bounces and complaints, the original Message-ID inside the report
   (`"report"`), else the failed recipient inside the report (`"report_recipient"`);
3. the sender's address against addresses we wrote to (`"sender"`, lower confidence).
A message that matches nothing is kept (`python run.py inbox unmatched`), never dropped.
"""

from __future__ import annotations

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.store import CamStore
from aicmo_actors.runtime import Actor
from contracts.cam import ReplyCategory, ReplyClassified, ReplyReceived

REPORTS = frozenset({ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT, ReplyCategory.COMPLAINT})
#: How much a sender-address match lowers the confidence.
FALLBACK_CONFIDENCE_FACTOR = 0.6


class Classifier(Actor[ReplyReceived]):
    mailbox_size = 200

    def __init__(self, store: CamStore) -> None:
        self.store = store

    async def receive(self, message: ReplyReceived) -> None:
        raw = await self.store.inbound_raw(message.inbound_id)
        if raw is None:
            return
        c = classify_message(raw)
        ids = [i for i in (c.in_reply_to, *c.referenced_ids) if i]
        match = await self.store.match_by_message_ids(ids)
        matched_by = None
        if match is not None:
            matched_by = "report" if c.category in REPORTS else "message_id"
        elif c.category in REPORTS and c.failed_recipients:
            match = await self.store.match_by_recipient(c.failed_recipients[0])
            matched_by = "report_recipient" if match else None
        elif c.from_address:
            match = await self.store.match_by_recipient(c.from_address)
            if match is not None:
                matched_by = "sender"
                c = c.model_copy(
                    update={
                        "confidence": round(c.confidence * FALLBACK_CONFIDENCE_FACTOR, 3),
                        "reasons": (*c.reasons, "matched by sender address only (no Message-ID of ours)"),
                    }
                )
        now = self.ctx.clock.now()
        await self.store.save_classification(message.inbound_id, c, match, matched_by, now)
        await self.ctx.publish(
            ReplyClassified(
                inbound_id=message.inbound_id,
                mailbox=message.mailbox,
                lead_id=match.lead_id if match else None,
                campaign=match.campaign if match else None,
                outbound_id=match.outbound_id if match else None,
                matched_by=matched_by,
                classification=c,
            )
        )
