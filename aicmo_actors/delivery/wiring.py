"""`delivery_supervisor`: the delivery module's supervision tree.

The one way to start delivery: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from aicmo_actors.delivery.courier import COURIER, Courier, Setup
from aicmo_actors.delivery.emails import Letterhead
from aicmo_actors.delivery.repos import DeliveryStore
from aicmo_actors.gateways.signed_webhook import WebhookPoster
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.runtime import ChildSpec, SupervisorSpec

#: The shortest secret the webhook keys may be derived from.
MIN_SECRET_BYTES = 16


def delivery_supervisor(
    store: DeliveryStore,
    *,
    transport: Callable[[], MailTransport],
    mail_from: str,
    agency_name: str,
    secret: bytes,
    folder: Path,
    alert_after: int = 5,
    http: Callable[[], httpx.AsyncClient] | None = None,
    webhook_timeout_s: float = 10.0,
) -> SupervisorSpec:
    """Delivery as a supervision tree: its one actor, `delivery.courier`.

    `transport` makes the connection delivery emails go through (made for a batch, closed
    after it); `mail_from` is their From, `agency_name` its display name. `secret` (at least
    16 bytes: the installation's secret, as the service loads it) is what each client's
    webhook key is derived from (`gateways.signed_webhook.client_key`; `python run.py delivery
    webhook-secret` prints it). `folder` is where the folder export writes (one folder per
    client). After `alert_after` failed attempts of one delivery a person is alerted. `http`
    makes the webhook's httpx client (default: `webhook_timeout_s` seconds, no redirects).
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the delivery webhooks' secret must be at least {MIN_SECRET_BYTES} bytes")
    if alert_after < 1:
        raise ValueError("alert_after must be at least 1")
    if webhook_timeout_s <= 0:
        raise ValueError("webhook_timeout_s must be positive")
    setup = Setup(
        letterhead=Letterhead(mail_from=mail_from, agency_name=agency_name),
        secret=secret,
        folder=folder,
        alert_after=alert_after,
    )

    def make() -> Courier:
        # A fresh HTTP client per incarnation: a crashed one's connections are not reused.
        return Courier(store, transport=transport, setup=setup, http=WebhookPoster(http, timeout_s=webhook_timeout_s))

    children: list[ChildSpec | SupervisorSpec] = [ChildSpec(COURIER, make)]
    return SupervisorSpec("delivery", children=children, strategy="one_for_one", max_restarts=10, period=60)
