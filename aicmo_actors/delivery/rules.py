"""Delivery's decisions, pure: when to try again, what an attempt's result makes of a delivery,
what an email's outbox state means for it, and what to say about a delivery when asked.

No database, no clock, no randomness of its own: the courier hands in the time and its seeded
random source.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from aicmo_actors.delivery.tables import CANCELLED, DELIVERED, FAILED, QUEUED, RETRYING, SENDING, UNCONFIRMED
from aicmo_actors.storage import client_mail

#: The first wait after a failed attempt; each later one doubles, up to `BACKOFF_CAP`.
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
#: Attempts (webhook, folder) before a delivery that keeps failing fails for good. The email
#: method has the outbox's own limit (`storage.client_mail.MAX_ATTEMPTS`).
MAX_ATTEMPTS = 12


def backoff(attempts: int, rng: random.Random, *, retry_after_s: float | None = None) -> timedelta:
    """The wait after the `attempts`-th failed attempt: exponential (1, 2, 4 ... minutes, at most
    6 hours), half of it fixed and half random ("equal jitter", so retries of many deliveries
    spread out but never come sooner than half the rule), and never sooner than a receiver's
    `Retry-After` (itself capped)."""
    if attempts < 1:
        raise ValueError("backoff is for after a failed attempt (attempts >= 1)")
    exponential: timedelta = BACKOFF_BASE * int(2 ** min(attempts - 1, 20))
    ceiling = min(exponential, BACKOFF_CAP)
    wait: timedelta = ceiling / 2 + ceiling / 2 * rng.random()
    if retry_after_s is not None:
        wait = max(wait, min(timedelta(seconds=retry_after_s), BACKOFF_CAP))
    return wait


AttemptOutcome = Literal["delivered", "temporary", "permanent"]


@dataclass(frozen=True)
class Settled:
    """What one attempt made of a delivery."""

    state: str
    attempts: int
    next_attempt_at: datetime | None
    #: Alert a person now (the threshold reached, or failed for good), unless alerted already.
    alert: bool


def settle(
    outcome: AttemptOutcome,
    *,
    attempts_before: int,
    alert_after: int,
    now: datetime,
    wait: timedelta,
    max_attempts: int = MAX_ATTEMPTS,
) -> Settled:
    """An attempt's outcome as the delivery's next state (webhook and folder)."""
    attempts = attempts_before + 1
    if outcome == "delivered":
        return Settled(DELIVERED, attempts, None, alert=False)
    if outcome == "permanent" or attempts >= max_attempts:
        return Settled(FAILED, attempts, None, alert=True)
    return Settled(RETRYING, attempts, now + wait, alert=attempts >= alert_after)


def from_email(status: str, attempts: int, *, alert_after: int) -> tuple[str, bool]:
    """An email's outbox status (`storage.client_mail`) as the delivery's state, and whether a
    person is to be alerted (failed, unconfirmed, or retried `alert_after` times)."""
    if status == client_mail.SENT:
        return DELIVERED, False
    if status == client_mail.UNCONFIRMED:
        return UNCONFIRMED, True
    if status == client_mail.FAILED:
        return FAILED, True
    if status == client_mail.CANCELLED:
        return CANCELLED, False
    if status == client_mail.SENDING:
        return SENDING, False
    if attempts == 0:
        return QUEUED, False
    return RETRYING, attempts >= alert_after


Said = Literal["delivered", "failing", "cancelled", "nothing"]


def what_to_say(state: str, *, attempts: int, alert_after: int) -> Said:
    """What is published about a delivery when it is asked for again (see the courier)."""
    if state == DELIVERED:
        return "delivered"
    if state in (FAILED, UNCONFIRMED):
        return "failing"
    if state == RETRYING and attempts >= alert_after:
        return "failing"
    if state == CANCELLED:
        return "cancelled"
    return "nothing"


def alert_key(delivery_key: str, rounds: int) -> str:
    """The alert's idempotency key: ``<delivery key>:failing`` (and ``:<n>`` after the n-th
    `delivery retry`, so a person hears about a retried delivery failing again)."""
    return f"{delivery_key}:failing" + (f":{rounds}" if rounds else "")


def email_key(delivery_key: str, rounds: int) -> str:
    """The outbox key of a delivery's email: its own key, and ``:resend<n>`` after the n-th
    `delivery retry` of a failed or unconfirmed one (a person decided to send it again)."""
    return delivery_key + (f":resend{rounds}" if rounds else "")
