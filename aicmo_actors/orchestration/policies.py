"""Cross-module policies: supervised actors that react to one module's events by telling
another module, so no module calls another.

`orchestration.holds`: billing's `ClientOnHold` (an invoice overdue past the threshold) ->
delivery's `HoldDeliveries`; `ClientReleased` -> `ReleaseDeliveries`. It keeps nothing: the
hold is billing's decision (in its tables, published again while it lasts) and its effect is
delivery's (in its tables, each command idempotent), so a policy killed at any instant loses
nothing: the next announcement is translated again.
"""

from __future__ import annotations

from aicmo_actors.runtime import Actor
from aicmo_actors.runtime.system import ActorNotFound
from contracts.billing import ClientOnHold, ClientReleased
from contracts.delivery import HoldDeliveries, ReleaseDeliveries

HOLDS = "orchestration.holds"
COURIER = "delivery.courier"


def hold_command(event: ClientOnHold) -> HoldDeliveries:
    """The delivery command for a hold. Pure: the key names the client and the invoices behind it."""
    invoices = ",".join(sorted(event.invoices))
    return HoldDeliveries(
        client_ref=event.client_ref,
        idempotency_key=f"{event.client_ref}:hold:{invoices}"[:200],
        reason=event.reason,
    )


def release_command(event: ClientReleased) -> ReleaseDeliveries:
    return ReleaseDeliveries(
        client_ref=event.client_ref, idempotency_key=f"{event.client_ref}:release", reason=event.reason
    )


class HoldPolicy(Actor[ClientOnHold | ClientReleased]):
    """Holds a client's deliveries while billing says it owes an invoice past the threshold."""

    subscribes = (ClientOnHold, ClientReleased)

    async def receive(self, message: ClientOnHold | ClientReleased) -> None:
        command = hold_command(message) if isinstance(message, ClientOnHold) else release_command(message)
        try:
            ref = self.ctx.ref(COURIER, type(command))
        except ActorNotFound:
            # Delivery is not running in this process: billing announces the hold again.
            self.ctx.log.warning("no delivery actor to tell", message=type(command).__name__)
            return
        await ref.tell(command)
