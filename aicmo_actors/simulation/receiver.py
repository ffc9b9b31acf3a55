"""The clients' publishing systems, simulated: the receiver of delivery's signed webhooks.

An `httpx.MockTransport` stands where a client's HTTP endpoint would be (no socket: the
simulation runs on a fake clock). It behaves as the receiver docs/delivery.md asks for: it
checks the signature against the key of the client whose host it is and the simulated time, keeps the
Idempotency-Keys it has processed and answers 2xx to a repeat without publishing twice. It
fails with a seeded probability (a 500, a 503 with Retry-After, a timeout, a dropped
connection), decided from the seed, the delivery's key and the attempt's number alone, so a
replay fails the same attempts.

What it records is what the invariants read: every attempt, and what was published once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from aicmo_actors.gateways.signed_webhook import IDEMPOTENCY_HEADER, client_key, verify
from aicmo_actors.simulation.faults import roll

#: What the receivers answer, by share of attempts: the rest are accepted.
FAULTS: tuple[tuple[str, float], ...] = (("500", 0.08), ("503", 0.05), ("timeout", 0.04), ("dropped", 0.03))


@dataclass
class Receiver:
    """Every client's webhook endpoint at once (keyed by the URL's host)."""

    seed: int
    secret: bytes
    now: Callable[[], datetime]
    #: Off: every attempt is accepted.
    faults: bool = True
    #: Whose endpoint each host is: host -> the client's `client_ref` (its key is derived from it).
    clients: dict[str, str] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)
    #: Idempotency-Key -> what was published (once).
    published: dict[str, dict[str, object]] = field(default_factory=dict)
    #: Keys a second time, answered 2xx and not published again.
    repeats: Counter[str] = field(default_factory=Counter)
    #: Requests whose signature did not verify (a bug: the invariants fail on any).
    forged: list[str] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        """What delivery's webhook poster is handed instead of a real client."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle), follow_redirects=False)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        self.attempts[key] += 1
        if self.faults:
            fault = self._fault(key, self.attempts[key])
            if fault == "timeout":
                raise httpx.ReadTimeout("simulated: the receiver did not answer in time", request=request)
            if fault == "dropped":
                raise httpx.RemoteProtocolError("simulated: connection closed without a response", request=request)
            if fault == "500":
                return httpx.Response(500, text="internal error")
            if fault == "503":
                return httpx.Response(503, text="busy", headers={"Retry-After": "120"})
        body = request.content
        client_ref = self.clients.get(request.url.host)
        if client_ref is None or not verify(
            client_key(self.secret, client_ref), request.headers, body, now=int(self.now().timestamp())
        ):
            self.forged.append(key)
            return httpx.Response(401, text="bad signature")
        payload = json.loads(body)
        if key in self.published:
            self.repeats[key] += 1
            return httpx.Response(200, json={"status": "duplicate", "key": key})
        self.published[key] = payload
        return httpx.Response(201, json={"status": "published", "key": key})

    def _fault(self, key: str, attempt: int) -> str | None:
        chance = roll(self.seed, "webhook", key, attempt)
        for fault, share in FAULTS:
            chance -= share
            if chance < 0:
                return fault
        return None
