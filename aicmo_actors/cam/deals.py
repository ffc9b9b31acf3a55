"""`cam.deals`: hands each signed deal to orchestration.

`python run.py deal won` (or the API) writes the deal in CAM's tables; this actor publishes
`ClientSigned` for every deal orchestration has not answered yet, on each tick (at least
once: orchestration opens one project per deal whatever it hears), and records the
`ProjectOpened` answer, after which the deal is not announced again.
"""

from __future__ import annotations

from aicmo_actors.cam.repos import CamStore
from aicmo_actors.runtime import Actor
from contracts.cam import ClientSigned
from contracts.clients import ClientInfo
from contracts.orchestration import ProjectOpened
from contracts.packages import PackageSpec
from contracts.runtime import Tick


class Deals(Actor[Tick | ProjectOpened]):
    subscribes = (Tick, ProjectOpened)

    def __init__(self, store: CamStore) -> None:
        self.store = store

    async def receive(self, message: Tick | ProjectOpened) -> None:
        if isinstance(message, ProjectOpened):
            if await self.store.deals.opened(message.deal_id, str(message.project_id), self.ctx.clock.now()):
                self.ctx.log.info("deal handed over", deal_id=message.deal_id, project_id=str(message.project_id))
            return
        for deal in await self.store.deals.unannounced():
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
