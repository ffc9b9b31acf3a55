"""`learning.bandit`: records what each sent variant led to, and reweights bandit campaigns' variants.

- `EmailSent`, `ReplyClassified` (surely tied to one of our emails: not a guess by the sender's
  address), `ClientSigned`, `PaymentReceived`:
  recorded once each (`learning_*` tables, natural keys), tied by the outbound email's id, the
  lead and the client.
- `BanditCampaign` (cam.scheduler's announcement of a campaign with `[bandit]`): kept, latest wins.
- `Tick`: when `interval` has passed since the last decision, every bandit campaign's steps with
  variants are decided (`bandit_rules.allocate`: top-two Thompson sampling, floor, burn-in;
  randomness from `ctx.random` only), written in one transaction, then told to cam.scheduler
  (`SetVariantWeights`, once per key there) and published (`VariantWeightsComputed`), then marked
  told. A decision written but not told (a crash, CAM not running) is told at the next start or
  the next decision run.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from aicmo_actors.learning.bandit_rules import DEFAULT_DRAWS, allocate, count_arms, due, is_positive, tied_to_a_send
from aicmo_actors.learning.repos import Decision, LearningStore
from aicmo_actors.runtime import Actor, ActorNotFound
from contracts.billing import PaymentReceived
from contracts.cam import ClientSigned, EmailSent, ReplyClassified
from contracts.learning import ArmStats, BanditCampaign, SetVariantWeights, VariantWeightsComputed
from contracts.runtime import Tick

BANDIT = "learning.bandit"
SCHEDULER = "cam.scheduler"

BanditMessage = Tick | EmailSent | ReplyClassified | ClientSigned | PaymentReceived | BanditCampaign


def decision_key(campaign: str, step: int, as_of: datetime) -> str:
    return f"{campaign}:{step}:{as_of.isoformat()}"


class Bandit(Actor[BanditMessage]):
    """Outcome records and the bandit's decisions (see the module)."""

    subscribes = (Tick, EmailSent, ReplyClassified, ClientSigned, PaymentReceived, BanditCampaign)

    def __init__(self, store: LearningStore, *, interval_s: float = 86400.0, draws: int = DEFAULT_DRAWS) -> None:
        self.store = store
        self.interval = timedelta(seconds=interval_s)
        self.draws = draws

    async def on_start(self) -> None:
        await self._tell_untold()

    async def receive(self, message: BanditMessage) -> None:
        outcomes = self.store.outcomes
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, EmailSent):
            await outcomes.record_send(
                outbound_id=message.outbound_id,
                campaign=message.campaign,
                step=message.step,
                variant=message.variant,
                lead_id=message.lead_id,
                sent_at=message.timestamp,
                correlation_id=message.correlation_id,
            )
        elif isinstance(message, ReplyClassified):
            if message.outbound_id is None or not tied_to_a_send(message.outbound_id, message.matched_by):
                return  # not surely an answer to an email of ours: nothing to learn from
            category = message.classification.category
            await outcomes.record_reply(
                inbound_id=message.inbound_id,
                outbound_id=message.outbound_id,
                lead_id=message.lead_id,
                campaign=message.campaign,
                category=category.value,
                positive=is_positive(category),
                received_at=message.timestamp,
                correlation_id=message.correlation_id,
            )
        elif isinstance(message, ClientSigned):
            await outcomes.record_deal(
                deal_id=message.deal_id,
                lead_id=message.lead_id,
                campaign=message.campaign,
                client_ref=message.client.client_ref,
                signed_at=message.signed_at,
                correlation_id=message.correlation_id,
            )
        elif isinstance(message, PaymentReceived):
            await outcomes.record_payment(
                invoice_id=message.invoice_id,
                client_ref=message.client_ref,
                amount=message.amount,
                balance=message.balance,
                currency=message.currency,
                received_on=message.received_on,
                now=self.ctx.clock.now(),
                correlation_id=message.correlation_id,
            )
        else:
            await outcomes.record_campaign(
                message.campaign,
                message.window_days,
                message.burn_in,
                message.floor,
                {s.step: dict(s.weights) for s in message.steps},
                self.ctx.clock.now(),
            )

    async def _tick(self) -> None:
        now = self.ctx.clock.now()
        if not due(await self.store.decisions.last_at(), now, self.interval):
            return
        campaigns = await self.store.outcomes.campaigns()
        if not campaigns:
            return
        # One seed per run, from the system's seeded source: the same seed replays the same weights.
        rng = random.Random(self.ctx.random.getrandbits(64))
        decisions: list[Decision] = []
        for config in campaigns:
            window = timedelta(days=config.window_days)
            for step, static in sorted(config.steps.items()):
                sends = await self.store.outcomes.step_sends(config.campaign, step)
                arms = count_arms(static, sends, window, now)
                chosen = allocate(arms, static, burn_in=config.burn_in, floor=config.floor, rng=rng, draws=self.draws)
                decisions.append(
                    Decision(
                        campaign=config.campaign,
                        step=step,
                        weights=chosen.weights,
                        arms={
                            name: {
                                "sends": arm.sends,
                                "successes": arm.successes,
                                "failures": arm.failures,
                                "p_best": chosen.p_best.get(name, 0.0),
                            }
                            for name, arm in arms.items()
                        },
                        burn_in=chosen.burn_in,
                        floor=config.floor,
                        as_of=now,
                        idempotency_key=decision_key(config.campaign, step, now),
                    )
                )
        await self.store.decisions.save(decisions)  # decided first: then told
        await self._tell_untold()

    async def _tell_untold(self) -> None:
        untold = await self.store.decisions.untold()
        if not untold:
            return
        try:
            scheduler = self.ctx.ref(SCHEDULER, SetVariantWeights)
        except ActorNotFound:
            # CAM is not running here: its campaigns keep their file's weights; told later.
            self.ctx.log.warning("no scheduler to tell the variant weights to: told later", count=len(untold))
            return
        for decision in untold:
            await scheduler.tell(
                SetVariantWeights(
                    campaign=decision.campaign,
                    step=decision.step,
                    weights=decision.weights,
                    as_of=decision.as_of,
                    idempotency_key=decision.idempotency_key,
                )
            )
            await self.ctx.publish(
                VariantWeightsComputed(
                    campaign=decision.campaign,
                    step=decision.step,
                    weights=decision.weights,
                    as_of=decision.as_of,
                    idempotency_key=decision.idempotency_key,
                    burn_in=decision.burn_in,
                    floor=decision.floor,
                    arms=tuple(
                        ArmStats(
                            variant=name,
                            sends=int(arm["sends"]),
                            successes=int(arm["successes"]),
                            failures=int(arm["failures"]),
                            p_best=float(arm["p_best"]),
                        )
                        for name, arm in sorted(decision.arms.items())
                    ),
                )
            )
        await self.store.decisions.mark_told([d.idempotency_key for d in untold], self.ctx.clock.now())
