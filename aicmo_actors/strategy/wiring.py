"""`strategy_supervisor`: the strategy module's supervision tree.

The one way to start strategy: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Callable

from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.runtime import ChildSpec, SupervisorSpec
from aicmo_actors.strategy.emails import Letterhead
from aicmo_actors.strategy.planner import PLANNER, Planner, Timing
from aicmo_actors.strategy.repos import StrategyStore

#: The shortest secret the links' tokens may be made with.
MIN_SECRET_BYTES = 16


def strategy_supervisor(
    store: StrategyStore,
    *,
    transport: Callable[[], MailTransport],
    mail_from: str,
    agency_name: str,
    public_url: str,
    secret: bytes,
    link_days: int = 30,
    approval_business_days: int = 5,
) -> SupervisorSpec:
    """Strategy as a supervision tree: its one actor, `strategy.planner`.

    `transport` makes the connection client emails go through (made on the first email of a
    tick, closed after it); `mail_from` is their From (with `agency_name` as its display
    name, and its domain in every Message-ID); `public_url` is where the service's HTTP
    server is reached from outside (the plan links point there, to `strategy_routes`);
    `secret` (at least 16 bytes) makes the links' tokens. A link stays valid `link_days`
    days; the client is asked to answer within `approval_business_days` of their business
    days (9:00 their time), after which `PlanOverdue` is published.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the strategy links' secret must be at least {MIN_SECRET_BYTES} bytes")
    if link_days < 1 or approval_business_days < 1:
        raise ValueError("link_days and approval_business_days must be at least 1")
    head = Letterhead(mail_from=mail_from, agency_name=agency_name, public_url=public_url)
    timing = Timing(link_days=link_days, approval_business_days=approval_business_days)
    children: list[ChildSpec | SupervisorSpec] = [
        ChildSpec(PLANNER, lambda: Planner(store, transport=transport, letterhead=head, secret=secret, timing=timing))
    ]
    return SupervisorSpec("strategy", children=children, strategy="one_for_one", max_restarts=10, period=60)
