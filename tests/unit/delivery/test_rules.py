"""Delivery's pure rules: the signature (a known vector), the backoff, what an attempt or an
email's outcome makes of a delivery, and what is said when asked."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aicmo_actors.delivery.rules import (
    BACKOFF_CAP,
    MAX_ATTEMPTS,
    alert_key,
    backoff,
    email_key,
    from_email,
    settle,
    what_to_say,
)
from aicmo_actors.gateways.signed_webhook import (
    client_key,
    outcome_of,
    retry_after_s,
    signature,
    signed_headers,
    verify,
)

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


# -- signing -------------------------------------------------------------------------------------------------------


def test_signature_known_vectors() -> None:
    # HMAC-SHA256(key="k3y", message='1700000000.{"a":1}'), computed once with hashlib and kept.
    assert signature("k3y", 1700000000, b'{"a":1}') == (
        "sha256=fd5a70e965043f7df6309c2c3b5ff5a8ffa99b1f5175e9a311459e73c4634d4a"
    )
    key = client_key(b"0123456789abcdef0123456789abcdef", "11111111-2222-4333-8444-555555555555")
    assert key == "0ddf1a330eb16a97f63500f08b89ce24ddbff5e44100bb33c03ea33b1a5cda7c"
    assert signature(key, 1796634000, b"{}") == (
        "sha256=27a6dc2739b4cdc2cddb39a950c45925d1316f5370b75877a0bd7da750a1358c"
    )


def test_signed_headers_verify_and_refuse_tampering_and_replays() -> None:
    key = client_key(b"s" * 32, "ref")
    body = b'{"title":"Hello"}'
    headers = signed_headers(key, idempotency_key="item:v1:webhook", timestamp=1000, body=body)
    assert headers["Idempotency-Key"] == "item:v1:webhook"
    assert headers["X-AICMO-Timestamp"] == "1000"
    assert verify(key, headers, body, now=1000)
    assert verify(key, {k.lower(): v for k, v in headers.items()}, body, now=1200)
    assert not verify(key, headers, b'{"title":"Hell0"}', now=1000)
    assert not verify(client_key(b"s" * 32, "other"), headers, body, now=1000)
    assert not verify(key, headers, body, now=1000 + 301)  # too old: a replay
    assert not verify(key, {**headers, "X-AICMO-Timestamp": "soon"}, body, now=1000)


def test_different_clients_get_different_keys() -> None:
    assert client_key(b"s" * 32, "a") != client_key(b"s" * 32, "b")
    assert client_key(b"s" * 32, "a") != client_key(b"t" * 32, "a")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "accepted"),
        (204, "accepted"),
        (301, "permanent"),
        (400, "permanent"),
        (401, "permanent"),
        (404, "permanent"),
        (408, "temporary"),
        (409, "permanent"),
        (429, "temporary"),
        (500, "temporary"),
        (503, "temporary"),
    ],
)
def test_http_status_outcomes(status: int, outcome: str) -> None:
    assert outcome_of(status) == outcome


def test_retry_after_in_seconds_only() -> None:
    assert retry_after_s("120") == 120.0
    assert retry_after_s(None) is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_s("-3") is None


# -- backoff -------------------------------------------------------------------------------------------------------


def test_backoff_doubles_with_equal_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for attempts in range(1, 16):
        ceiling = min(timedelta(minutes=1) * 2 ** (attempts - 1), BACKOFF_CAP)
        for _ in range(20):
            wait = backoff(attempts, rng)
            assert ceiling / 2 <= wait <= ceiling, (attempts, wait)


def test_backoff_is_seeded_and_honours_retry_after() -> None:
    assert backoff(3, random.Random(5)) == backoff(3, random.Random(5))
    assert backoff(1, random.Random(5), retry_after_s=600) == timedelta(minutes=10)
    assert backoff(1, random.Random(5), retry_after_s=10**6) == BACKOFF_CAP
    with pytest.raises(ValueError):
        backoff(0, random.Random(5))


# -- settling -------------------------------------------------------------------------------------------------------


def test_settle_an_attempt() -> None:
    wait = timedelta(minutes=2)
    ok = settle("delivered", attempts_before=2, alert_after=5, now=NOW, wait=wait)
    assert (ok.state, ok.attempts, ok.next_attempt_at, ok.alert) == ("delivered", 3, None, False)
    again = settle("temporary", attempts_before=0, alert_after=5, now=NOW, wait=wait)
    assert (again.state, again.attempts, again.next_attempt_at, again.alert) == ("retrying", 1, NOW + wait, False)
    threshold = settle("temporary", attempts_before=4, alert_after=5, now=NOW, wait=wait)
    assert (threshold.state, threshold.alert) == ("retrying", True)
    refused = settle("permanent", attempts_before=0, alert_after=5, now=NOW, wait=wait)
    assert (refused.state, refused.alert, refused.next_attempt_at) == ("failed", True, None)
    last = settle("temporary", attempts_before=MAX_ATTEMPTS - 1, alert_after=50, now=NOW, wait=wait)
    assert (last.state, last.alert) == ("failed", True)


@pytest.mark.parametrize(
    ("status", "attempts", "state", "alert"),
    [
        ("QUEUED", 0, "queued", False),
        ("QUEUED", 2, "retrying", False),
        ("QUEUED", 3, "retrying", True),
        ("SENDING", 0, "sending", False),
        ("SENT", 1, "delivered", False),
        ("UNCONFIRMED", 0, "unconfirmed", True),
        ("FAILED", 5, "failed", True),
        ("CANCELLED", 0, "cancelled", False),
    ],
)
def test_an_emails_outbox_state_as_the_deliverys(status: str, attempts: int, state: str, alert: bool) -> None:
    assert from_email(status, attempts, alert_after=3) == (state, alert)


def test_what_is_said_when_asked() -> None:
    assert what_to_say("delivered", attempts=1, alert_after=5) == "delivered"
    assert what_to_say("failed", attempts=1, alert_after=5) == "failing"
    assert what_to_say("unconfirmed", attempts=0, alert_after=5) == "failing"
    assert what_to_say("retrying", attempts=4, alert_after=5) == "nothing"
    assert what_to_say("retrying", attempts=5, alert_after=5) == "failing"
    assert what_to_say("queued", attempts=0, alert_after=5) == "nothing"
    assert what_to_say("cancelled", attempts=0, alert_after=5) == "cancelled"


def test_keys_of_alerts_and_resent_emails() -> None:
    assert alert_key("i:v1:email", 0) == "i:v1:email:failing"
    assert alert_key("i:v1:email", 2) == "i:v1:email:failing:2"
    assert email_key("i:v1:email", 0) == "i:v1:email"
    assert email_key("i:v1:email", 1) == "i:v1:email:resend1"
