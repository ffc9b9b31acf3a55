"""`cam_supervisor`: the acquisition cycle's supervision tree, built from settings and gateways.

The one way to start cam: the service, the simulation, the benchmarks and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from starlette.routing import BaseRoute

from aicmo_actors.cam.alerts import Alerts, Unrecorded
from aicmo_actors.cam.classifier import Classifier, Reader, make_reader
from aicmo_actors.cam.deals import Deals
from aicmo_actors.cam.decision import Decision, PausePolicy
from aicmo_actors.cam.followup import Followup
from aicmo_actors.cam.inbox import Inbox
from aicmo_actors.cam.lead_rules import LeadRules
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.scheduler import Scheduler
from aicmo_actors.cam.sender import Sender, TransportFactory
from aicmo_actors.cam.web import Web
from aicmo_actors.gateways.inbox_source import InboxSource
from aicmo_actors.gateways.profiles import make_inbox, make_transport
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.runtime import ActorSystem, ChildSpec, SupervisorSpec

#: The alerts' From when nothing better is known (no AICMO_ALERT_FROM, no campaign yet).
DEFAULT_ALERT_FROM = "aicmo-alerts@localhost"


def lead_rules(settings: Any) -> LeadRules:
    """The lead rules' timings from the service's settings: the actors, and the people who
    re-label a reply by hand (command line, API, web app), decide with the same ones."""
    return LeadRules(
        soft_bounce_retry=timedelta(seconds=settings.soft_bounce_retry_s),
        auto_reply_pause=timedelta(seconds=settings.auto_reply_pause_s),
        soft_bounces_as_hard=settings.soft_bounces_as_hard,
    )


def cam_supervisor(
    settings: Any,
    store: CamStore,
    *,
    secret: bytes,
    transports: TransportFactory | None = None,
    inboxes: dict[str, Callable[[], InboxSource]] | None = None,
    installation: str = "",
    alert_from: str | None = None,
    http: bool = True,
    pause_policy: PausePolicy | None = None,
    reader: Reader | None = None,
    routes: Callable[[ActorSystem], Sequence[BaseRoute]] | None = None,
) -> SupervisorSpec:
    """The acquisition cycle as a supervision tree, from the service's settings and gateways.

    one_for_one: each actor rebuilds its own state from the database, so one restarting
    never needs the others to. `settings` is the service's `Settings` (its cam fields).
    `transports` makes a sending mailbox's transport from (profile name, address), and
    `inboxes` names the reply inboxes; both default to what the settings' profiles say.
    `secret` signs unsubscribe links and return paths; `installation` is mixed into every
    Message-ID (unique per database); `alert_from` is the alerts' From when
    AICMO_ALERT_FROM is not set; `reader` replaces the reading of replies the settings ask
    for (`classify_isolation`); `routes` are served by its HTTP server too (the control API).
    """
    s = settings
    profiles = s.transports

    def from_profiles(name: str, mailbox: str) -> MailTransport:
        profile = profiles.get(name)
        if profile is None:
            raise ValueError(
                f"campaign mailbox {mailbox} names transport {name!r}, which AICMO_TRANSPORTS does not define"
            )
        return make_transport(profile, mailbox)

    make = transports or from_profiles
    sources = (
        inboxes if inboxes is not None else {name: make_inbox(name, profile) for name, profile in s.inboxes.items()}
    )
    policy = pause_policy or PausePolicy(
        hard_bounce_rate=s.pause_hard_bounce_rate,
        complaint_rate=s.pause_complaint_rate,
        min_sends=s.pause_min_sends,
        mailbox_rejections=s.pause_mailbox_rejections,
        mailbox_window_s=s.pause_mailbox_window_s,
    )
    rules = lead_rules(s)
    sender_address = s.alert_from or alert_from or DEFAULT_ALERT_FROM
    read = reader or make_reader(s)
    verp = frozenset(name for name, profile in profiles.items() if profile.kind == "smtp" and profile.verp)

    # Outlives each incarnation of cam.alerts: a delivery whose commit failed is not sent again.
    unrecorded_alerts: Unrecorded = []
    children: list[ChildSpec | SupervisorSpec] = [
        ChildSpec(
            "cam.alerts",
            lambda: Alerts(
                store,
                recipients=list(s.alert_emails),
                webhook_url=s.alert_webhook_url,
                from_address=sender_address,
                transport=lambda: make(s.alert_transport, sender_address),
                unrecorded=unrecorded_alerts,
            ),
        ),
        ChildSpec("cam.followup", lambda: Followup(store, rules=rules)),
        ChildSpec("cam.deals", lambda: Deals(store)),
        ChildSpec("cam.decision", lambda: Decision(store, policy)),
        ChildSpec("cam.classifier", lambda: Classifier(store, read=read, secret=lambda: secret)),
        ChildSpec(
            "cam.sender",
            lambda: Sender(
                store,
                make,
                secret=lambda: secret,
                public_url=s.public_url,
                max_attempts=s.send_max_attempts,
                retry_base_s=s.send_retry_base_s,
                rules=rules,
                pause_after_errors=s.send_error_pause_after,
                return_paths=verp.__contains__,
                transport_known=(lambda name: name in profiles) if transports is None else None,
            ),
        ),
        ChildSpec(
            "cam.scheduler", lambda: Scheduler(store, batch=s.scheduler_batch, installation=installation), intake=True
        ),
        ChildSpec(
            "cam.inbox",
            lambda: Inbox(
                store, sources, batch=s.inbox_batch, offset_s=s.inbox_poll_offset_s, max_bytes=s.inbound_max_bytes
            ),
            intake=True,
            shutdown=2.0,
        ),
    ]
    if http:
        children.append(
            ChildSpec(
                "cam.web",
                lambda: Web(
                    store,
                    secret=lambda: secret,
                    host=s.http_host,
                    port=s.http_port,
                    header_timeout_s=s.http_header_timeout_s,
                    max_connections=s.http_max_connections,
                    routes=routes,
                ),
                intake=True,
            )
        )
    return SupervisorSpec("cam", children=children, strategy="one_for_one", max_restarts=10, period=60)
