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

During that day after the answer the echo thins out (`echo_due`): again an hour after the last
announcement, then after as long as the answer was old at the last one (1 h, 2 h, 4 h, 8 h,
16 h): five echoes, not one per tick (24 at hourly ticks, 1,440 at one-minute ticks). When
each was last announced is this incarnation's memory only: a restart announces again at once,
which is what the echo is for.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.repos.sql import aware
from aicmo_actors.runtime import Actor
from contracts.cam import ClientSigned, ContractRenewed
from contracts.clients import ClientInfo
from contracts.orchestration import ProjectOpened, RenewalApplied
from contracts.packages import PackageSpec
from contracts.runtime import Tick

#: The first echo's wait after the answer (`echo_due`).
ECHO_STEP = timedelta(hours=1)


def echo_due(answered_at: datetime | None, last: datetime | None, now: datetime) -> bool:
    """Announce now? Before the answer (None) on every tick; after it, when this incarnation has
    not announced it yet, or after as long as the answer was old at the last announcement, at
    least `ECHO_STEP` (the repository stops returning it `ECHO` after the answer)."""
    if answered_at is None or last is None:
        return True
    return now - last >= max(ECHO_STEP, last - answered_at)


class Deals(Actor[Tick | ProjectOpened | RenewalApplied]):
    subscribes = (Tick, ProjectOpened, RenewalApplied)

    def __init__(self, store: CamStore) -> None:
        self.store = store
        #: When each deal ((deal id,)) and renewal ((deal id, number)) was last announced.
        self.announced: dict[tuple[int, ...], datetime] = {}

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
        now = self.ctx.clock.now()
        deals = await self.store.deals.to_announce(now)
        renewals = await self.store.deals.renewals_to_announce(now)
        last, self.announced = self.announced, {}
        for deal in deals:
            if not self._echo(last, (deal.deal_id,), deal.opened_at, now):
                continue
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
        for renewal in renewals:
            if not self._echo(last, (renewal.deal_id, renewal.number), renewal.applied_at, now):
                continue
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

    def _echo(
        self, last: dict[tuple[int, ...], datetime], key: tuple[int, ...], answered_at: datetime | None, now: datetime
    ) -> bool:
        """Whether to announce `key` now (`echo_due`, from `last`, the previous tick's memory); its
        last announcement is carried into this tick's memory."""
        due = echo_due(aware(answered_at), last.get(key), now)
        self.announced[key] = now if due else last[key]
        return due
