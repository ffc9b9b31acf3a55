"""`cam.followup`: what each reply and each send failure means for its lead.

The rules are the pure state machine in `lead_rules`; this actor loads the lead, asks
the rules, writes the outcome (state, next action, suppression) in one transaction, asks
`cam.alerts` to tell a human where the rules say so, and publishes `LeadStateChanged`.
"""

from __future__ import annotations

from typing import Any

from aicmo_actors.cam.lead_rules import LeadDecision, LeadView, decide_reply, decide_send_failure
from aicmo_actors.cam.store import CamStore
from aicmo_actors.runtime import Actor
from contracts.cam import (
    AlertRequested,
    BounceReason,
    EmailFailed,
    LeadStateChanged,
    ReplyClassified,
)

ALERTS = "cam.alerts"
#: Free-mail domains: "stop every lead of the same company" never applies to them.
SHARED_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
        "icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "web.de", "mail.ru", "yandex.ru",
        "proton.me", "protonmail.com", "zoho.com", "qq.com", "163.com",
    }
)


class Followup(Actor[ReplyClassified | EmailFailed]):
    """The lead state machine, applied."""

    subscribes = (ReplyClassified, EmailFailed)

    def __init__(self, store: CamStore) -> None:
        self.store = store
        self._alerts: Any = None

    async def on_start(self) -> None:
        self._alerts = self.ctx.ref(ALERTS, AlertRequested)

    async def receive(self, message: ReplyClassified | EmailFailed) -> None:
        now = self.ctx.clock.now()
        if isinstance(message, EmailFailed):
            if message.permanent or not message.sending_side:
                lead = await self.store.lead(message.lead_id)
                if lead is None:
                    return
                reason = message.reason or BounceReason.UNDEFINED
                decision = decide_send_failure(
                    LeadView(lead.state, lead.soft_bounces), reason, message.hard, message.sending_side, now
                )
                await self._apply(message.lead_id, lead.campaign, lead.email, decision, None, message.outbound_id)
            return
        if message.lead_id is None:
            return  # unmatched: kept in the inbox table and listed by `inbox unmatched`
        lead = await self.store.lead(message.lead_id)
        if lead is None:
            return
        decision = decide_reply(LeadView(lead.state, lead.soft_bounces), message.classification, now)
        await self._apply(message.lead_id, lead.campaign, lead.email, decision, message, message.outbound_id)

    async def _apply(
        self,
        lead_id: int,
        campaign: str,
        email: str,
        decision: LeadDecision,
        reply: ReplyClassified | None,
        outbound_id: int | None,
    ) -> None:
        now = self.ctx.clock.now()
        change = await self.store.apply_lead_decision(lead_id, decision, now, outbound_id)
        self.ctx.log.info(
            "lead decision",
            lead_id=lead_id,
            cause=decision.cause,
            new_state=decision.new_state.value if decision.new_state else None,
        )
        if change is not None:
            old, new = change
            await self.ctx.publish(
                LeadStateChanged(lead_id=lead_id, campaign=campaign, old=old, new=new, cause=decision.cause)
            )
        if decision.human_reply and reply is not None:
            stopped = await self.store.stop_company_leads(lead_id, SHARED_DOMAINS, now)
            if stopped:
                self.ctx.log.info("stopped leads of the same company", lead_id=lead_id, count=stopped)
        if decision.alert and reply is not None:
            summary, text = await self.store.alert_texts(reply.inbound_id)
            await self._alerts.tell(
                AlertRequested(
                    idempotency_key=f"reply:{reply.inbound_id}:{decision.alert}",
                    inbound_id=reply.inbound_id,
                    kind=decision.alert,
                    lead_id=lead_id,
                    campaign=campaign,
                    category=reply.classification.category,
                    summary=summary,
                    text=text,
                )
            )
