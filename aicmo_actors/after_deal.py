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
from datetime import date, datetime
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


class DealError(ValueError):
    """A deal that cannot be signed, in one line for a person (an unknown lead, package,
    country or zone)."""


async def sign_deal(
    store: Any,
    settings: Any,
    *,
    address: str,
    package_name: str,
    country: str,
    by: str,
    now: datetime,
    start: date | None = None,
    timezone: str | None = None,
    campaign: str | None = None,
    company: str | None = None,
    contact_name: str | None = None,
    contact_email: str | None = None,
    billing_address: str | None = None,
) -> Any:
    """`deal won`, for the command line and the API alike: the package from the packages
    folder, the client from the lead and what is given, then `DealsRepo.win`. Raises
    `DealError`, or the store's `RecordError` (no such lead, signed already)."""
    from aicmo_actors.cam.repos.records import RecordError
    from aicmo_actors.gateways.calendar import known_country, local_date, zone
    from aicmo_actors.orchestration.packages import find_package

    try:
        package = find_package(settings.packages_dir, package_name)
    except (LookupError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else f"package {package_name!r} cannot be used"
        raise DealError(first) from None
    code = country.strip().upper()
    if not known_country(code):
        raise DealError(f"country {country!r}: no public holidays known (an ISO 3166-1 code such as US, GB, DE)")
    wanted = address.strip().lower()
    found = [row for row in await store.leads.page(email_contains=wanted, limit=500) if row["email"] == wanted]
    if campaign is not None:
        found = [row for row in found if row.get("campaign") == campaign]
    if not found:
        where = f" in campaign {campaign!r}" if campaign else ""
        raise RecordError(f"no lead {address!r}{where}")
    if len(found) > 1:
        names = ", ".join(sorted({str(row.get("campaign")) for row in found}))
        raise DealError(f"{address} is a lead of several campaigns ({names}): say which campaign")
    lead = found[0]
    zone_name = timezone or lead.get("timezone") or "UTC"
    try:
        zone(zone_name)
    except ValueError as exc:
        raise DealError(f"timezone: {exc}") from None
    name = " ".join(p for p in (lead.get("first_name"), lead.get("last_name")) if p) or None
    client = {
        "company": (company or lead.get("company") or wanted.rpartition("@")[2])[:300],
        "contact_name": contact_name or name,
        "contact_email": (contact_email or wanted).strip().lower(),
        "timezone": zone_name,
        "country": code,
        "billing_address": billing_address or "",
    }
    return await store.deals.win(
        wanted,
        campaign=lead["campaign"],
        client=client,
        package=package.model_dump(mode="json"),
        start=start or local_date(now, zone_name),
        by=by,
        now=now,
    )
