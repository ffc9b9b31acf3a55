"""The modules after the deal, composed: onboarding, strategy and the project sagas, their
client pages, and their declarations. A composition root like `cli/` (it may import every
module): the service and the simulation both start them through `after_deal_supervisors`,
so the simulation proves its invariants on the tree the service runs.

Order matters: the modules first, the sagas last (a saga starting asks the modules again
what was in flight, so they must be there to hear it).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from aicmo_actors.gateways.profiles import make_transport
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.onboarding import OnboardingStore, onboarding_routes, onboarding_supervisor
from aicmo_actors.orchestration.projects import ProjectsRepo
from aicmo_actors.orchestration.wiring import projects_supervisor
from aicmo_actors.runtime import SupervisorSpec
from aicmo_actors.strategy import StrategyStore, strategy_routes, strategy_supervisor
from contracts.orchestration import ModuleSpec


def modules() -> list[ModuleSpec]:
    """What the modules after the deal declare (for the module registry)."""
    from aicmo_actors.onboarding import module as onboarding_module
    from aicmo_actors.strategy import module as strategy_module

    return [onboarding_module.describe(), strategy_module.describe()]


@dataclass
class AfterDeal:
    """The stores of the modules after the deal over one engine."""

    engine: AsyncEngine

    def __post_init__(self) -> None:
        self.onboarding = OnboardingStore(self.engine)
        self.strategy = StrategyStore(self.engine)
        self.projects = ProjectsRepo(self.engine)

    def supervisors(
        self,
        settings: Any,
        *,
        secret: bytes,
        mail_from: str,
        transport: Callable[[], MailTransport] | None = None,
    ) -> list[SupervisorSpec]:
        """Onboarding, strategy, then the sagas. `transport` makes the connection emails to
        clients go through (default: the settings' `client_transport` profile)."""
        s = settings
        make = transport or (lambda: _client_transport(s, mail_from))
        # The client links' own key, derived from the installation's secret (as the web app's).
        links_key = hmac.new(secret, b"aicmo client links", hashlib.sha256).digest()
        common: dict[str, Any] = {
            "transport": make,
            "mail_from": mail_from,
            "agency_name": s.agency_name,
            "public_url": s.public_url,
            "secret": links_key,
            "link_days": s.client_link_days,
        }
        return [
            onboarding_supervisor(
                self.onboarding,
                **common,
                reminder_business_days=s.onboarding_reminder_days,
                reminders=s.onboarding_reminders,
            ),
            strategy_supervisor(self.strategy, **common, approval_business_days=s.plan_approval_days),
            projects_supervisor(self.projects),
        ]

    def routes(self, now: Callable[[], datetime], agency_name: str = "") -> list[BaseRoute]:
        """The client pages (capability links): the intake form and the plan to approve."""
        return [
            *onboarding_routes(self.onboarding, now=now, agency_name=agency_name),
            *strategy_routes(self.strategy, now=now),
        ]


def _client_transport(settings: Any, mail_from: str) -> MailTransport:
    profile = settings.transports.get(settings.client_transport)
    if profile is None:
        raise ValueError(
            f"AICMO_CLIENT_TRANSPORT names transport {settings.client_transport!r}, which AICMO_TRANSPORTS "
            "does not define"
        )
    return make_transport(profile, mail_from)


def client_mail_from(settings: Any, alert_from: str) -> str:
    """Where emails to clients come from: AICMO_CLIENT_MAIL_FROM, else the alerts' From."""
    return str(settings.client_mail_from or settings.alert_from or alert_from)
