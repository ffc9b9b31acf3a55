"""What the delivery tests share: a real webhook receiver on a loopback socket (scripted
failures: an HTTP status, a dropped connection, a timeout), an in-memory mail transport, a
stand-in for cam.alerts, and the courier running in an actor system on a fake clock."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx

from aicmo_actors.delivery import COURIER, DeliveryStore, delivery_supervisor
from aicmo_actors.gateways.signed_webhook import client_key, verify
from aicmo_actors.gateways.transport import MailTransport, SendResult
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings, SupervisorSpec, killpoints
from contracts.base import Event
from contracts.cam import AlertRequested
from contracts.clients import ClientInfo
from contracts.delivery import CancelDeliveries, DeliverItem
from tests.integration.module_run import ModuleRun

SETTINGS = RuntimeSettings(tick_interval_s=0, seed=11)
SECRET = b"delivery-test-secret-32-bytes!!!"
MAIL_FROM = "work@agency.example"
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
ITEM = uuid.UUID("5a1f0c3e-7b2d-4c8e-9f10-aabbccddeeff")
CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Logistics",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    timezone="Europe/Berlin",
    country="DE",
)
TEXT = "Route optimisation cuts empty miles.\n\nÜber 30 % weniger Leerfahrten."


# -- the webhook receiver ------------------------------------------------------------------------------------------


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    action: str


@dataclass
class Receiver:
    """A real HTTP server in a thread. `script` is consumed one action per request ("500",
    "drop", "timeout", "200", "400", ...); when empty, "200". It de-duplicates by
    Idempotency-Key, as docs/delivery.md asks receivers to."""

    script: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    #: Idempotency-Key -> the body of the one time it was done.
    processed: dict[str, Any] = field(default_factory=dict)
    duplicates: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_action(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "200"

    @property
    def keys(self) -> list[str]:
        return [h.headers.get("idempotency-key", "") for h in self.hits]

    def valid_signatures(self, secret: bytes = SECRET, client: ClientInfo = CLIENT) -> bool:
        key = client_key(secret, str(client.client_ref))
        return all(
            verify(key, h.headers, h.body, now=int(h.headers["x-aicmo-timestamp"]), tolerance_s=0) for h in self.hits
        )


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            action = receiver.next_action()
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.hits.append(Hit(headers, body, action))
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if action == "timeout":
                receiver.release.wait(5)
                self.close_connection = True
                return
            status = int(action)
            answer = b'{"ok":true}'
            if 200 <= status < 300:
                key = headers.get("idempotency-key", "")
                with receiver.lock:
                    if key in receiver.processed:  # done already: answered, not done again
                        receiver.duplicates += 1
                        answer = b'{"ok":true,"duplicate":true}'
                    else:
                        receiver.processed[key] = json.loads(body)
            else:
                answer = json.dumps({"error": f"scripted {status}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


@asynccontextmanager
async def receiving(script: Sequence[str] = ()) -> AsyncIterator[Receiver]:
    receiver = Receiver(script=list(script))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/aicmo"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


# -- mail, alerts ---------------------------------------------------------------------------------------------------


@dataclass
class MemoryTransport:
    """An in-memory MailTransport: keeps what it was given (`answer` says how it answers).
    The hand-over is a kill point, as the simulated world's is."""

    sent: list[EmailMessage] = field(default_factory=list)
    answer: str = "accepted"

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        if killpoints.hook is not None:
            await killpoints.checkpoint(killpoints.SEND)
        if self.answer != "accepted":
            return SendResult(self.answer, 451, "try later")  # type: ignore[arg-type]
        self.sent.append(message)
        return SendResult("accepted", 250, "2.0.0 queued as X")

    async def close(self) -> None:
        pass


class AlertsSink(Actor[AlertRequested]):
    """Stands in for cam.alerts: keeps every AlertRequested, de-duplicates by key."""

    def __init__(self, seen: list[AlertRequested]) -> None:
        self.seen = seen

    async def receive(self, message: AlertRequested) -> None:
        self.seen.append(message)


# -- the courier in a system ---------------------------------------------------------------------------------------


@dataclass
class Run(ModuleRun):
    alerts: list[AlertRequested]
    actor: ClassVar[str] = COURIER

    async def tick(self, after: timedelta = timedelta(hours=1)) -> None:  # type: ignore[override]
        """A tick `after` the last one (an hour)."""
        await super().tick(self.clock.now() + after)


def deliver(
    system: ActorSystem,
    method: str,
    *,
    item: uuid.UUID = ITEM,
    version: int = 1,
    project: uuid.UUID = PROJECT,
    client: ClientInfo = CLIENT,
    title: str = "Five ways to cut empty miles",
) -> DeliverItem:
    return system.message(
        DeliverItem,
        project_id=project,
        item_id=item,
        version=version,
        idempotency_key=f"{item}:v{version}:{method}",
        method=method,
        client=client,
        title=title,
        type="blog_post",
        channel="blog",
        text=TEXT,
        html="<p>Route optimisation cuts <b>empty miles</b>.</p>",
    )


def cancel(system: ActorSystem, project: uuid.UUID = PROJECT) -> CancelDeliveries:
    return system.message(
        CancelDeliveries, project_id=project, idempotency_key=f"{project}:cancel", reason="client cancelled"
    )


def build_system(
    store: DeliveryStore,
    clock: FakeClock,
    *,
    transport: Callable[[], MailTransport],
    folder: Path,
    alerts: list[AlertRequested],
    alert_after: int = 5,
    timeout_s: float = 2.0,
) -> ActorSystem:
    spec = delivery_supervisor(
        store,
        transport=transport,
        mail_from=MAIL_FROM,
        agency_name="Bright Agency",
        secret=SECRET,
        folder=folder,
        alert_after=alert_after,
        http=lambda: httpx.AsyncClient(timeout=timeout_s, follow_redirects=False),
    )
    cam = SupervisorSpec("cam", children=[ChildSpec("cam.alerts", lambda: AlertsSink(alerts))])
    return ActorSystem(SETTINGS, clock=clock, children=[cam, spec])


@asynccontextmanager
async def running(
    store: DeliveryStore,
    *,
    transport: Callable[[], MailTransport],
    folder: Path,
    at: datetime = START,
    alert_after: int = 5,
    timeout_s: float = 2.0,
) -> AsyncIterator[Run]:
    clock = FakeClock(at, autojump=False)
    alerts: list[AlertRequested] = []
    system = build_system(
        store, clock, transport=transport, folder=folder, alerts=alerts, alert_after=alert_after, timeout_s=timeout_s
    )
    async with system:
        events: list[Event] = []
        system.events.tap(events.append)
        await system.settle()
        yield Run(system, clock, events, alerts)
