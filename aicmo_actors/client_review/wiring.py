"""`client_review_supervisor`: the client-review module's supervision tree.

The one way to start client review: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Callable

from aicmo_actors.client_review.emails import Letterhead
from aicmo_actors.client_review.repos import ReviewStore
from aicmo_actors.client_review.reviews import REVIEWS, Reviews
from aicmo_actors.client_review.rules import Policy
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.runtime import ChildSpec, SupervisorSpec

#: The shortest secret the links' tokens may be made with.
MIN_SECRET_BYTES = 16


def client_review_supervisor(
    store: ReviewStore,
    *,
    transport: Callable[[], MailTransport],
    mail_from: str,
    agency_name: str,
    public_url: str,
    secret: bytes,
    link_days: int = 30,
    review_days: int = 3,
    reminders: int = 2,
) -> SupervisorSpec:
    """Client review as a supervision tree: its one actor, `client_review.reviews`.

    `transport` makes the connection client emails go through (made on the first email of a
    tick, closed after it); `mail_from` is their From (with `agency_name` as its display
    name, and its domain in every Message-ID); `public_url` is where the service's HTTP
    server is reached from outside (the review links point there, to
    `client_review_routes`); `secret` (at least 16 bytes) makes the links' tokens. A link
    stays valid `link_days` days; the client is asked to answer within `review_days` of their
    business days (9:00 their time), then `reminders` reminders go `review_days` apart, and
    after the last one a person is alerted (unless the package approves after silence).
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the review links' secret must be at least {MIN_SECRET_BYTES} bytes")
    head = Letterhead(mail_from=mail_from, agency_name=agency_name, public_url=public_url)
    policy = Policy(every=review_days, reminders=reminders, link_days=link_days)
    children: list[ChildSpec | SupervisorSpec] = [
        ChildSpec(REVIEWS, lambda: Reviews(store, transport=transport, letterhead=head, secret=secret, policy=policy))
    ]
    return SupervisorSpec("client_review", children=children, strategy="one_for_one", max_restarts=10, period=60)
