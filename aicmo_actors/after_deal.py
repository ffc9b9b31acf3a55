"""The modules after the deal, composed: onboarding, strategy, production, quality control,
client review, delivery, billing, reporting, retention and learning, the project sagas and
the cross-module policies, their client pages, and their declarations.
A composition root like `cli/` (it may import every module): the service and the simulation
both start them through `AfterDeal.supervisors`, so the simulation proves its invariants on
the tree the service runs.

Order matters: the modules first, the sagas last (a saga starting asks the modules again
what was in flight, so they must be there to hear it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from aicmo_actors.billing import BillingStore, ReminderRule, billing_supervisor
from aicmo_actors.client_review import ReviewStore, client_review_routes, client_review_supervisor
from aicmo_actors.delivery import DeliveryStore, delivery_supervisor
from aicmo_actors.gateways.profiles import make_transport
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.learning import LearningStore, learning_supervisor
from aicmo_actors.onboarding import OnboardingStore, onboarding_routes, onboarding_supervisor
from aicmo_actors.orchestration.projects import ProjectsRepo
from aicmo_actors.orchestration.wiring import projects_supervisor
from aicmo_actors.production import ProductionStore, production_supervisor
from aicmo_actors.production.generator import Generator, make_generator
from aicmo_actors.qc import QcStore, qc_supervisor
from aicmo_actors.reporting import ReportingStore, reporting_supervisor
from aicmo_actors.retention import RetentionStore, retention_supervisor
from aicmo_actors.runtime import SupervisorSpec
from aicmo_actors.strategy import StrategyStore, strategy_routes, strategy_supervisor
from contracts.orchestration import ModuleSpec


def modules() -> list[ModuleSpec]:
    """What the modules after the deal declare (for the module registry)."""
    from aicmo_actors.billing import module as billing_module
    from aicmo_actors.client_review import module as client_review_module
    from aicmo_actors.delivery import module as delivery_module
    from aicmo_actors.learning import module as learning_module
    from aicmo_actors.onboarding import module as onboarding_module
    from aicmo_actors.production import module as production_module
    from aicmo_actors.qc import module as qc_module
    from aicmo_actors.reporting import module as reporting_module
    from aicmo_actors.retention import module as retention_module
    from aicmo_actors.strategy import module as strategy_module

    return [
        onboarding_module.describe(),
        strategy_module.describe(),
        production_module.describe(),
        qc_module.describe(),
        client_review_module.describe(),
        delivery_module.describe(),
        billing_module.describe(),
        reporting_module.describe(),
        retention_module.describe(),
        learning_module.describe(),
    ]


@dataclass
class AfterDeal:
    """The stores of the modules after the deal over one engine."""

    engine: AsyncEngine

    def __post_init__(self) -> None:
        self.onboarding = OnboardingStore(self.engine)
        self.strategy = StrategyStore(self.engine)
        self.production = ProductionStore(self.engine)
        self.qc = QcStore(self.engine)
        self.reviews = ReviewStore(self.engine)
        self.delivery = DeliveryStore(self.engine)
        self.billing = BillingStore(self.engine)
        self.reporting = ReportingStore(self.engine)
        self.retention = RetentionStore(self.engine)
        self.learning = LearningStore(self.engine)
        self.projects = ProjectsRepo(self.engine)
        self._made: Generator | None = None

    def supervisors(
        self,
        settings: Any,
        *,
        secret: bytes,
        mail_from: str,
        transport: Callable[[], MailTransport] | None = None,
        http: Callable[[], httpx.AsyncClient] | None = None,
        generator: Generator | None = None,
        threads: bool = True,
    ) -> list[SupervisorSpec]:
        """The modules, then the sagas. `secret` is the installation's secret (the client
        links' key and each client's webhook key are derived from it); `transport` makes the
        connection emails to clients go through (default: the settings' `client_transport`
        profile); `http` makes delivery's webhook client (default: a real one); `generator`
        writes the drafts (default: the settings' `generator_url` model, else the offline
        templates; `close()` closes it); `threads` off runs QC's checks and the drawing of reports in
        the event loop (the simulation: a replay must not depend on a thread's timing)."""
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
            production_supervisor(self.production, generator=generator or self._generator(s)),
            qc_supervisor(self.qc, in_thread=threads),
            client_review_supervisor(self.reviews, **common, review_days=s.review_days, reminders=s.review_reminders),
            delivery_supervisor(
                self.delivery,
                transport=make,
                mail_from=mail_from,
                agency_name=s.agency_name,
                secret=secret,
                folder=s.delivery_dir,
                alert_after=s.delivery_alert_after,
                http=http,
            ),
            billing_supervisor(
                self.billing,
                transport=make,
                mail_from=mail_from,
                agency_name=s.agency_name,
                agency_country=s.agency_country,
                agency_tax_id=s.agency_tax_id,
                agency_address=s.agency_address,
                agency_timezone=s.agency_timezone,
                tax_rates={code: Decimal(str(rate)) for code, rate in s.tax_rates.items()},
                reminders=tuple(ReminderRule(days, Decimal(str(fee))) for days, fee in s.dunning),
                repeat_every_days=s.dunning_repeat_days,
                hold_after_days=s.hold_after_days,
            ),
            reporting_supervisor(
                self.reporting,
                transport=make,
                mail_from=mail_from,
                agency_name=s.agency_name,
                hour=s.report_hour,
                formats=tuple(f.strip() for f in s.report_formats.split(",")),
                catch_up=s.report_catch_up,
                in_thread=threads,
            ),
            retention_supervisor(
                self.retention,
                half_life_days=s.retention_half_life_days,
                weights=s.retention_weights or None,
                bands=(s.retention_bands[0], s.retention_bands[1]),
                renewal_days=tuple(s.retention_renewal_days),
                slow_review_days=s.retention_slow_review_days,
            ),
            learning_supervisor(self.learning, interval_s=s.learning_interval_s, draws=s.learning_draws),
            projects_supervisor(self.projects),
        ]

    def _generator(self, settings: Any) -> Generator:
        key = settings.generator_key.get_secret_value() if settings.generator_key is not None else None
        self._made = make_generator(
            settings.generator_url,
            model=settings.generator_model,
            key=key,
            timeout_s=settings.generator_timeout_s,
            budget_tokens=settings.generator_budget_tokens,
        )
        return self._made

    async def close(self) -> None:
        """Close what `supervisors` made (the generator's HTTP client), after the system stopped."""
        made, self._made = self._made, None
        close = getattr(made, "aclose", None)
        if close is not None:
            await close()

    def routes(self, now: Callable[[], datetime], agency_name: str = "") -> list[BaseRoute]:
        """The client pages (capability links): the intake form, the plan and the work to approve."""
        return [
            *onboarding_routes(self.onboarding, now=now, agency_name=agency_name),
            *strategy_routes(self.strategy, now=now),
            *client_review_routes(self.reviews, now=now),
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


def _webhook_problem(url: str) -> str | None:
    """Why `url` cannot receive deliveries, or None."""
    from urllib.parse import urlsplit

    if any(c.isspace() or ord(c) < 32 for c in url):
        return "has spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("https", "http"):
        return "is not an http(s) URL"
    if not parts.hostname:
        return "has no host"
    if parts.username or parts.password:
        return "must not carry a user name or password (the requests are signed instead)"
    return None


def _billing_email(address: str | None) -> str | None:
    """The billing contact's address, normalised; a `DealError` when it is not one."""
    if address is None or not address.strip():
        return None
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise DealError(f"billing email {address!r}: {exc}") from None


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
    language: str | None = None,
    webhook_url: str | None = None,
    tax_id: str | None = None,
    billing_email: str | None = None,
    audited_as: Any = None,
) -> Any:
    """`deal won`, for the command line, the API and the web app alike: the package from the
    packages folder, the client from the lead and what is given, then `DealsRepo.win`, with the
    `deal.won` audit row of `audited_as` (an `identity.AuditActor`) in the same transaction.
    Raises `DealError`, or the store's `RecordError` (no such lead, signed already)."""
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
    lang = (language or "en").strip().lower()
    if not re.fullmatch(r"[a-z]{2}", lang):
        raise DealError(f"language {language!r}: write a two-letter ISO 639-1 code such as en, de, fr, es")
    hook = (webhook_url or "").strip() or None
    if hook is not None:
        problem = _webhook_problem(hook)
        if problem:
            raise DealError(f"webhook {hook!r}: {problem}")
    tax = re.sub(r"[\s.\-]", "", tax_id or "").upper() or None
    if tax is not None and not re.fullmatch(r"[A-Z0-9]{4,20}", tax):
        raise DealError(f"tax id {tax_id!r}: write the VAT or tax number as letters and digits (e.g. DE123456789)")
    bill_to = _billing_email(billing_email)
    if "webhook" in package.delivery and hook is None:
        raise DealError(f"package {package.name!r} delivers by webhook: give the client's webhook URL (--webhook)")
    client = {
        "company": (company or lead.get("company") or wanted.rpartition("@")[2])[:300],
        "contact_name": contact_name or name,
        "contact_email": (contact_email or wanted).strip().lower(),
        "timezone": zone_name,
        "country": code,
        "billing_address": billing_address or "",
        "language": lang,
        "webhook_url": hook,
        "tax_id": tax,
        "billing_email": bill_to,
    }

    def audited(conn: Any, deal: Any) -> None:
        detail = {"deal": deal.deal_id, "package": package_name}
        audited_as.write(conn, "deal.won", deal.client["contact_email"], detail, now)

    return await store.deals.win(
        wanted,
        campaign=lead["campaign"],
        client=client,
        package=package.model_dump(mode="json"),
        start=start or local_date(now, zone_name),
        by=by,
        now=now,
        also=audited if audited_as is not None else None,
    )
