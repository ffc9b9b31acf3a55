"""`onboarding_supervisor`: the onboarding module's supervision tree.

The one way to start onboarding: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Callable

from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.onboarding.emails import Letterhead
from aicmo_actors.onboarding.intake import INTAKE, Intake
from aicmo_actors.onboarding.repos import OnboardingStore
from aicmo_actors.onboarding.rules import ReminderPolicy
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def onboarding_supervisor(
    store: OnboardingStore,
    *,
    transport: Callable[[], MailTransport],
    mail_from: str,
    agency_name: str,
    public_url: str,
    secret: bytes,
    link_days: int = 30,
    reminder_business_days: int = 3,
    reminders: int = 2,
) -> SupervisorSpec:
    """Onboarding as a supervision tree: its one actor, `onboarding.intake`.

    `transport` makes the connection client emails go through (made on the first email of
    a tick, closed after it); `mail_from` is their From (with `agency_name` as its display
    name, and its domain in every Message-ID and the kickoff's UID); `public_url` is where
    the service's HTTP server is reached from outside (the intake links point there);
    `secret` (at least 16 bytes) makes the links' tokens. A link stays valid `link_days`
    days; `reminders` reminders go `reminder_business_days` business days apart (the
    client's), and as long again after the last one a person is alerted.
    """
    if len(secret) < 16:
        raise ValueError("the onboarding links' secret must be at least 16 bytes")
    head = Letterhead(mail_from=mail_from, agency_name=agency_name, public_url=public_url)
    policy = ReminderPolicy(every=reminder_business_days, count=reminders)
    children: list[ChildSpec | SupervisorSpec] = [
        ChildSpec(
            INTAKE,
            lambda: Intake(
                store, transport=transport, letterhead=head, secret=secret, link_days=link_days, policy=policy
            ),
        )
    ]
    return SupervisorSpec("onboarding", children=children, strategy="one_for_one", max_restarts=10, period=60)
