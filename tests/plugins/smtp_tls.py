"""aiosmtpd with TLS and AUTH on a loopback port, for the SMTP transport's secure paths.

Fixtures:
- `tls_certificate` (session): a self-signed certificate for localhost / 127.0.0.1
  (`tests.plugins.certs`); a client trusts it through its PEM file (`cert_path`).
- `misnamed_certificate` (session): the same, made for mail.elsewhere.example only.
- `smtp_tls_server` (function): a factory, `smtp_tls_server(tls="starttls" | "implicit",
  require_starttls=..., users={"alex": "secret"}, auth_required=..., certificate=...)`,
  returning a running `TlsSmtpServer`; every server it started is stopped afterwards.

The server is the `smtp_sink` handler (`tests.plugins.mail`) plus what a TLS test asks of a
server: which connections it greeted and whether each was encrypted (`connections`,
`tls_connections`), the TLS version and login each message arrived under (`deliveries`),
the logins it checked (`logins`), `drop_connections()` to hang up on every client, as a
server does when it times an idle connection out, and `hold_next_rcpt()` to keep a client
waiting for a reply at a known point of the conversation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.plugins.certs import SelfSignedCertificate, make_self_signed, openssl_binary
from tests.plugins.mail import SinkHandler, _free_port
from tests.plugins.servers import server_missing


def _tls_version(server: SMTP) -> str | None:
    """The TLS version of the server's side of this connection, None when in the clear."""
    transport = server.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return None if ssl_object is None else str(ssl_object.version())


@dataclass(frozen=True)
class Greeting:
    """One EHLO the server answered: on which connection, encrypted or not."""

    server: SMTP
    tls_version: str | None


@dataclass(frozen=True)
class Delivery:
    """How one accepted message arrived."""

    subject: str
    tls_version: str | None
    #: session.ssl: aiosmtpd's record of a STARTTLS handshake (None for implicit TLS).
    starttls_info: dict[str, Any] | None
    login: str | None


class RcptHold:
    """Keeps the server from answering the next RCPT until `release()`; `arrived()` waits for it.

    Made in the test's event loop; the server (its own thread and loop) reaches it thread-safely.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self._released: concurrent.futures.Future[None] = concurrent.futures.Future()

    async def arrived(self) -> None:
        await self._arrived.wait()

    def release(self) -> None:
        if not self._released.done():
            self._released.set_result(None)

    async def _hold(self) -> None:  # runs in the server's loop
        self._loop.call_soon_threadsafe(self._arrived.set)
        await asyncio.wrap_future(self._released)


@dataclass
class TlsSinkHandler(SinkHandler):
    greetings: list[Greeting] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    #: (username, accepted) for every AUTH the server checked.
    logins: list[tuple[str, bool]] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    #: Set by `TlsSmtpServer.hold_next_rcpt()`; taken by the next RCPT.
    rcpt_hold: RcptHold | None = None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        hold, self.rcpt_hold = self.rcpt_hold, None
        if hold is not None:
            await hold._hold()
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # the "new" EHLO hook must do what aiosmtpd would have
        self.greetings.append(Greeting(server, _tls_version(server)))
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        tls_version, starttls_info = _tls_version(server), session.ssl
        login = session.login_data.decode() if isinstance(session.login_data, bytes) else None
        before = len(self.messages)
        reply = await super().handle_DATA(server, session, envelope)
        for received in self.messages[before:]:
            self.deliveries.append(Delivery(str(received.message["Subject"]), tls_version, starttls_info, login))
        return reply

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """aiosmtpd's `authenticator`: PLAIN and LOGIN against `users`."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.users.get(username) == password
        self.logins.append((username, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class TlsSmtpServer:
    host: str
    port: int
    handler: TlsSinkHandler
    certificate: SelfSignedCertificate
    controller: Controller

    @property
    def messages(self) -> list[Any]:
        return self.handler.messages

    @property
    def deliveries(self) -> list[Delivery]:
        return self.handler.deliveries

    @property
    def logins(self) -> list[tuple[str, bool]]:
        return self.handler.logins

    def _servers(self, *, tls_only: bool) -> list[SMTP]:
        seen: list[SMTP] = []
        for greeting in self.handler.greetings:
            if tls_only and greeting.tls_version is None:
                continue
            if not any(server is greeting.server for server in seen):
                seen.append(greeting.server)
        return seen

    @property
    def connections(self) -> int:
        """Client connections that said EHLO (the controller's own start-up probe never does)."""
        return len(self._servers(tls_only=False))

    @property
    def tls_connections(self) -> int:
        """Client connections that said EHLO over TLS."""
        return len(self._servers(tls_only=True))

    def hold_next_rcpt(self) -> RcptHold:
        """Make the next RCPT wait (call from the test's event loop); release it at the end."""
        hold = RcptHold()
        self.handler.rcpt_hold = hold
        return hold

    def drop_connections(self) -> None:
        """Hang up on every client now (in the server's loop; returns once it is done)."""

        async def close_all() -> None:
            for server in self._servers(tls_only=False):
                if server.transport is not None and not server.transport.is_closing():
                    server.transport.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.controller.loop).result(timeout=30)


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    """A self-signed certificate for localhost and 127.0.0.1 (skips, or fails under CI, without openssl)."""
    if openssl_binary() is None:
        server_missing("openssl", "the `openssl` tool makes the test certificate")
    folder: Path = tmp_path_factory.mktemp("smtp-tls")
    return make_self_signed(folder)


@pytest.fixture(scope="session")
def misnamed_certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    """A self-signed certificate for another host (mail.elsewhere.example), not 127.0.0.1."""
    if openssl_binary() is None:
        server_missing("openssl", "the `openssl` tool makes the test certificate")
    return make_self_signed(tmp_path_factory.mktemp("smtp-tls-misnamed"), hosts=("mail.elsewhere.example",))


StartServer = Callable[..., TlsSmtpServer]


@pytest.fixture
def smtp_tls_server(tls_certificate: SelfSignedCertificate) -> Iterator[StartServer]:
    """Start aiosmtpd servers with TLS (and optionally AUTH); all are stopped at teardown."""
    started: list[Controller] = []

    def start(
        tls: Literal["starttls", "implicit"] = "starttls",
        *,
        require_starttls: bool = True,
        users: dict[str, str] | None = None,
        auth_required: bool = False,
        certificate: SelfSignedCertificate | None = None,
    ) -> TlsSmtpServer:
        cert = certificate or tls_certificate
        handler = TlsSinkHandler(users=dict(users or {}))
        port = _free_port()
        auth: dict[str, Any] = {}
        if users is not None:
            # aiosmtpd's auth_require_tls only recognises STARTTLS: with implicit TLS it would
            # never offer AUTH, though the whole connection is encrypted.
            auth = {
                "authenticator": handler.authenticate,
                "auth_required": auth_required,
                "auth_require_tls": tls == "starttls",
            }
        if tls == "implicit":
            controller = Controller(
                handler,
                hostname="127.0.0.1",
                port=port,
                ready_timeout=10,
                ssl_context=cert.server_context(),
                **auth,
            )
        else:
            controller = Controller(
                handler,
                hostname="127.0.0.1",
                port=port,
                ready_timeout=10,
                tls_context=cert.server_context(),
                require_starttls=require_starttls,
                **auth,
            )
        controller.start()
        started.append(controller)
        return TlsSmtpServer("127.0.0.1", port, handler, cert, controller)

    try:
        yield start
    finally:
        for controller in reversed(started):
            controller.stop()
