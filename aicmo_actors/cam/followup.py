"""`cam.followup`: what each classified reply means for its lead, acted on once, durably.

The rules are the pure state machine in `lead_rules`; `store.inbound.act` writes,
in the one transaction that marks the message acted on: the outcome on the email it is
tied to (a delay, a bounce, a complaint, once per email), the lead's decision (state, next
action, suppression, colleagues stopped) and the alert to deliver. Only a tie a stranger
cannot make up (our Message-ID, return path or token) acts on a lead; a guess raises at
most an alert for a person.

Nothing depends on the `ReplyClassified` event arriving: on start, and on every tick,
whatever is classified but not acted on is acted on (a crash between the classifier's
commit and ours loses nothing), and acting twice does nothing the second time. After the
commit it publishes `LeadStateChanged` and `ReplyActedOn`, and asks `cam.alerts` to
deliver the stored alert (which `cam.alerts` also finds by itself on start).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aicmo_actors.cam.classify import body_text, strip_quoted
from aicmo_actors.cam.classify.review import review_intent
from aicmo_actors.cam.lead_rules import DEFAULT_RULES, HUMAN_REPLIES, LeadRules
from aicmo_actors.cam.repos import Acted, CamStore
from aicmo_actors.runtime import Actor
from contracts.cam import (
    UNMATCHED_TEXT_CHARS,
    Classification,
    LeadStateChanged,
    ReplyActedOn,
    ReplyClassified,
    RetryAlert,
    UnmatchedReply,
)
from contracts.runtime import Tick

ALERTS = "cam.alerts"
#: Free-mail domains: "stop every lead of the same company" never applies to them.
SHARED_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "proton.me",
        "protonmail.com",
        "zoho.com",
        "qq.com",
        "163.com",
    }
)
#: Messages looked for per sweep (start-up pages through all of them).
SWEEP_BATCH = 500


def alert_text(raw: bytes, sender: str | None, category: str) -> tuple[str, str]:
    """An alert's summary (one line) and text (their own words, quotes removed) from a reply."""
    text = strip_quoted(body_text(raw)).strip()
    snippet = " ".join(text.split())[:200]
    return f'{category} reply from {sender or "someone"}: "{snippet}"', text[:4000]


def unmatched_reply(inbound_id: int, raw: bytes, c: Classification, received_at: datetime) -> UnmatchedReply:
    """What a message tied to nothing we prospected with offers the modules after the deal:
    its threading headers, its own text (quotes removed) and that text read as an answer to a
    review request."""
    text = strip_quoted(body_text(raw)).strip()[:UNMATCHED_TEXT_CHARS]
    referenced = tuple(dict.fromkeys(r for r in (c.in_reply_to, *c.referenced_ids) if r))
    intent, comment = review_intent(text)
    return UnmatchedReply(
        inbound_id=inbound_id,
        email_message_id=c.message_id,
        in_reply_to=c.in_reply_to,
        references=referenced,
        from_address=c.from_address,
        subject=(c.subject or "")[:500],
        text=text,
        received_at=received_at,
        review_intent=intent,
        review_comment=comment[:UNMATCHED_TEXT_CHARS],
    )


class Followup(Actor[ReplyClassified | Tick]):
    """The lead state machine, applied."""

    subscribes = (ReplyClassified, Tick)

    def __init__(self, store: CamStore, *, rules: LeadRules = DEFAULT_RULES) -> None:
        self.store = store
        self.rules = rules
        self._alerts: Any = None

    async def on_start(self) -> None:
        self._alerts = self.ctx.ref(ALERTS, RetryAlert)
        await self._sweep()

    async def receive(self, message: ReplyClassified | Tick) -> None:
        if isinstance(message, Tick):
            await self._sweep()
            return
        await self._act(message.inbound_id)

    async def _sweep(self) -> None:
        """Act on everything classified but not acted on (left by a crash, or an event lost)."""
        after = 0
        while waiting := await self.store.inbound.classified_not_acted(after, SWEEP_BATCH):
            for inbound_id in waiting:
                await self._act(inbound_id)
            after = waiting[-1]

    async def _act(self, inbound_id: int) -> None:
        acted = await self.store.inbound.act(
            inbound_id, self.ctx.clock.now(), alert_text=alert_text, rules=self.rules, shared_domains=SHARED_DOMAINS
        )
        if acted is None:
            return  # acted on already (or not classified yet: the classifier's event comes)
        self._log(acted)
        if acted.change is not None and acted.campaign is not None and acted.lead_id is not None:
            old, new = acted.change
            await self.ctx.publish(
                LeadStateChanged(lead_id=acted.lead_id, campaign=acted.campaign, old=old, new=new, cause=acted.cause)
            )
        await self.ctx.publish(
            ReplyActedOn(
                inbound_id=acted.inbound_id,
                lead_id=acted.lead_id,
                campaign=acted.campaign,
                outbound_id=acted.outbound_id,
                mailbox=acted.mailbox,
                category=acted.category,
                outcome=acted.outcome,
                sending_side=acted.sending_side,
            )
        )
        for alert_id in acted.alert_ids:
            await self._alerts.tell(RetryAlert(alert_id=alert_id))
        # Tied to nothing, or to a lead only by a guess (which acts on nothing): offered to the
        # modules after the deal (a signed client was a lead, and writes from that address).
        if acted.category in HUMAN_REPLIES and (acted.lead_id is None or acted.weak):
            await self._offer(acted.inbound_id)

    async def _offer(self, inbound_id: int) -> None:
        """A person's message tied to nothing we prospected with: it may answer a module after
        the deal (a client replying to its welcome email); each acts on it only through its
        own Message-ID in In-Reply-To or References."""
        row = await self.store.inbound.offered(inbound_id)
        if row is None:
            return
        c = Classification.model_validate(row.classification)
        await self.ctx.publish(unmatched_reply(inbound_id, bytes(row.raw or b""), c, row.received_at or row.stored_at))

    def _log(self, acted: Acted) -> None:
        self.ctx.log.info(
            "reply acted on",
            inbound_id=acted.inbound_id,
            lead_id=acted.lead_id,
            category=acted.category.value,
            outcome=acted.outcome,
            cause=acted.cause,
            new_state=acted.change[1].value if acted.change else None,
            colleagues_stopped=acted.stopped_colleagues or None,
        )
