"""`cam.deals`: hands each signed deal, and each renewal of one, to orchestration.

`python run.py deal won` (or the API) writes the deal in CAM's tables; this actor publishes
`ClientSigned` for every deal orchestration has not answered yet, on each tick (at least
once: orchestration opens one project per deal whatever it hears), and records the
`ProjectOpened` answer; a day after it the deal is not announced again. Billing, retention,
reporting and learning hear the same announcement and record the deal once: one of them
killed before it wrote it hears it again at the next tick.

`python run.py deal renew` writes a renewal the same way: `ContractRenewed` is published on
each tick, once the deal's project is open, until orchestration answers `RenewalApplied` and
for a day after: billing and retention hear the same announcement and apply it once per deal
and number, so one of them killed before it wrote the renewal hears it again.
"""

from __future__ import annotations

from aicmo_actors.cam.repos import CamStore
from aicmo_actors.runtime import Actor
from contracts.cam import ClientSigned, ContractRenewed
from contracts.clients import ClientInfo
from contracts.orchestration import ProjectOpened, RenewalApplied
from contracts.packages import PackageSpec
from contracts.runtime import Tick


class Deals(Actor[Tick | ProjectOpened | RenewalApplied]):
    subscribes = (Tick, ProjectOpened, RenewalApplied)

    def __init__(self, store: CamStore) -> None:
        self.store = store

    async def receive(self, message: Tick | ProjectOpened | RenewalApplied) -> None:
        if isinstance(message, ProjectOpened):
            if await self.store.deals.opened(message.deal_id, str(message.project_id), self.ctx.clock.now()):
                self.ctx.log.info("deal handed over", deal_id=message.deal_id, project_id=str(message.project_id))
            return
        if isinstance(message, RenewalApplied):
            outcome = "" if message.applied else (message.detail or "not applied")
            if await self.store.deals.renewal_applied(message.deal_id, message.number, outcome, self.ctx.clock.now()):
                self.ctx.log.info(
                    "renewal handed over", deal_id=message.deal_id, number=message.number, applied=message.applied
                )
            return
        for deal in await self.store.deals.to_announce(self.ctx.clock.now()):
            await self.ctx.publish(
                ClientSigned(
                    deal_id=deal.deal_id,
                    lead_id=deal.lead_id,
                    campaign=deal.campaign,
                    client=ClientInfo.model_validate(deal.client),
                    package=PackageSpec.model_validate(deal.package),
                    start=deal.start,
                    signed_at=deal.signed_at,
                )
            )
        for renewal in await self.store.deals.renewals_to_announce(self.ctx.clock.now()):
            await self.ctx.publish(
                ContractRenewed(
                    deal_id=renewal.deal_id,
                    client_ref=renewal.client_ref,
                    number=renewal.number,
                    months=renewal.months,
                    starts_on=renewal.starts_on,
                    ends_on=renewal.ends_on,
                    renewed_at=renewal.renewed_at,
                )
            )
