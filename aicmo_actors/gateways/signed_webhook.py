"""Signed JSON webhooks to a client's system (delivery), over httpx.

The signature (what a receiver checks, see docs/delivery.md):

- `X-AICMO-Timestamp`: the sending time, whole seconds since the epoch;
- `X-AICMO-Signature`: ``sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>``, where `key` is
  the client's webhook key (`client_key`: 64 hex characters, used as ASCII bytes);
- `Idempotency-Key`: the same for every attempt of one delivery: the receiver keeps the keys
  it has processed and answers 2xx to a repeat without doing it again.

`WebhookPoster.post` never raises for an HTTP or network outcome: it answers a `Posted`
saying whether it was accepted (2xx), is worth retrying (network errors, timeouts, 408, 429,
5xx) or will not get better (any other status: a person fixes the URL or the receiver).
Redirects are not followed (a 3xx is permanent): the body is never sent somewhere the client
did not name.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import httpx

#: How much of the receiver's answer is kept (status line and the start of the body).
ANSWER_CHARS = 200
#: Headers of the signature and of the idempotency key.
TIMESTAMP_HEADER = "X-AICMO-Timestamp"
SIGNATURE_HEADER = "X-AICMO-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"

PostOutcome = Literal["accepted", "temporary", "permanent"]


def client_key(secret: bytes, client_ref: str) -> str:
    """The webhook key of one client: hex HMAC-SHA256(secret, "webhook:<client_ref>")."""
    return hmac.new(secret, f"webhook:{client_ref}".encode(), hashlib.sha256).hexdigest()


def signature(key: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with `key` (as ASCII) over ``"<timestamp>." + body``."""
    digest = hmac.new(key.encode("ascii"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(key: str, *, idempotency_key: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one signed POST of `body` (JSON)."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        IDEMPOTENCY_HEADER: idempotency_key,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key, timestamp, body),
    }


def verify(key: str, headers: Mapping[str, str], body: bytes, *, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent (replays refused)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered.get(TIMESTAMP_HEADER.lower(), ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(lowered.get(SIGNATURE_HEADER.lower(), ""), signature(key, timestamp, body))


def outcome_of(status: int) -> PostOutcome:
    """What an HTTP status means for a delivery: 2xx accepted; 408, 429 and 5xx temporary;
    anything else (3xx not followed, 4xx) permanent."""
    if 200 <= status < 300:
        return "accepted"
    if status in (408, 429) or 500 <= status < 600:
        return "temporary"
    return "permanent"


def retry_after_s(value: str | None) -> float | None:
    """A `Retry-After` given in seconds (an HTTP date is ignored: the backoff decides)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < 7 * 86400 else None


@dataclass(frozen=True)
class Posted:
    """One POST's outcome: `answer` is the status and the start of the body, or the error."""

    outcome: PostOutcome
    status: int | None
    answer: str
    retry_after_s: float | None = None


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


class WebhookPoster:
    """One reused httpx client (made by `make_client`, default: `timeout_s`, no redirects)."""

    def __init__(self, make_client: Callable[[], httpx.AsyncClient] | None = None, *, timeout_s: float = 10.0) -> None:
        self._make = make_client or (lambda: httpx.AsyncClient(timeout=timeout_s, follow_redirects=False))
        self._client: httpx.AsyncClient | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Posted:
        if not url.lower().startswith(("http://", "https://")):
            return Posted("permanent", None, f"not an http(s) URL: {_printable(url)[:80]!r}")
        if self._client is None:
            self._client = self._make()
        try:
            response = await self._client.post(url, content=body, headers=dict(headers))
        except httpx.InvalidURL as exc:
            return Posted("permanent", None, f"invalid URL: {exc}"[:ANSWER_CHARS])
        except httpx.HTTPError as exc:  # connection refused or dropped, timeouts, protocol errors
            return Posted("temporary", None, _printable(f"{type(exc).__name__}: {exc}")[:ANSWER_CHARS])
        start = _printable(response.text[:ANSWER_CHARS].strip())
        answer = f"HTTP {response.status_code}" + (f": {start}" if start else "")
        return Posted(
            outcome_of(response.status_code),
            response.status_code,
            answer[:ANSWER_CHARS],
            retry_after_s(response.headers.get("retry-after")),
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
