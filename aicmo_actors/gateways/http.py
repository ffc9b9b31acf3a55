"""`HttpServer`: one ASGI app served by uvicorn inside the running event loop.

The service owns the process: uvicorn installs no signal handlers, configures no
logging (it logs through the stdlib loggers ``uvicorn.error`` like everything else) and
writes no access log of its own, because request paths can carry credentials (signed
unsubscribe tokens). Access lines are logged at debug with the path masked.

uvicorn bounds idle keep-alive connections but neither how long a client may take to
send a request head nor how many connections it holds; `_GuardedH11Protocol` adds both,
so a slow or crowding client cannot exhaust the process's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any, Literal

import h11
import structlog
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HttpServer", "HttpServerError", "mask_path"]

# Initial values, not .bind(): binding at import would freeze structlog's default
# configuration into this logger, before the service calls configure_logging().
_log = structlog.get_logger("aicmo", component="http")

# h11 refuses (400) a request head still unfinished past this many buffered bytes; a
# whole head arriving in one read is parsed as is, so this bounds memory per connection.
MAX_REQUEST_HEAD_BYTES = 16 * 1024
# Idle time allowed between requests on a keep-alive connection (uvicorn's own timer).
KEEP_ALIVE_TIMEOUT_S = 5

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\n"
    b"connection: close\r\n\r\n"
    b"Request Timeout"
)
_SERVICE_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 19\r\n"
    b"connection: close\r\n\r\n"
    b"Service Unavailable"
)


class HttpServerError(Exception):
    """The HTTP server could not start (bind failure, startup failure) or died."""


def mask_path(path: str) -> str:
    """Keep the first path segment and hide the rest: ``/u/<token>`` becomes ``/u/***``.

    Credentials ride in later segments (``/u/{token}``); the first segment is enough to
    tell requests apart in a log.
    """
    parts = path.split("/", 2)
    if len(parts) < 3 or parts[2] == "":
        return path
    return f"/{parts[1]}/***"


class _AccessLog:
    """ASGI middleware: one debug line per HTTP request, path masked, no query string."""

    def __init__(self, app: ASGIApp, mask: Callable[[str], str]) -> None:
        self.app = app
        self.mask = mask

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            _log.debug(
                "http_request",
                method=scope.get("method"),
                path=self.mask(scope.get("path", "")),
                status=status[0] if status else None,
            )


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head and a connection cap.

    The head deadline runs from the connection's start, or from the end of the previous
    response on keep-alive, until h11 has parsed a complete request line and headers;
    bytes arriving meanwhile do not extend it (a trickling client is cut off). A
    connection beyond `max_connections` (or made while `max_connections` requests are
    still being handled) is answered 503 and closed at once: uvicorn's own
    `limit_concurrency` only looks at requests, so idle connections would pile up
    unchecked, and it counts the asking connection too (``limit_concurrency=1`` refuses
    everything).
    """

    header_timeout_s: float = 10.0
    max_connections: int = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # `connections` includes this one; `tasks` are handlers still running, including
        # those whose client has gone.
        if len(self.connections) > self.max_connections or len(self.tasks) >= self.max_connections:
            _log.warning(
                "http_connection_refused",
                limit=self.max_connections,
                connections=len(self.connections) - 1,
                requests_in_flight=len(self.tasks),
            )
            transport.write(_SERVICE_UNAVAILABLE)
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # h11 delivered a complete request head
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            # Armed before uvicorn handles a pipelined request, which then cancels it.
            self._arm_header_timer()
        super().on_response_complete()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._on_header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        started, _ = self.conn.trailing_data
        # A client that began a request is told why; an idle one (a browser's
        # preconnect, a spent keep-alive) is closed silently, as uvicorn does.
        if started and self.conn.our_state is h11.IDLE:
            self.transport.write(_REQUEST_TIMEOUT)
        _log.debug("http_header_timeout", timeout_s=self.header_timeout_s, partial=bool(started))
        self.transport.close()


def _guarded_protocol(header_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """A `_GuardedH11Protocol` with these limits (uvicorn instantiates it per connection)."""
    return type(
        "GuardedH11Protocol",
        (_GuardedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "max_connections": max_connections},
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handling, reporting startup through a future."""

    def __init__(self, config: uvicorn.Config, started: asyncio.Future[None]) -> None:
        super().__init__(config)
        self._started_future = started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn 0.29+ swaps SIGINT/SIGTERM handlers here and re-raises the signal on
        # exit; the actor system owns those signals, so this must be a no-op.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:
            # uvicorn calls sys.exit() when the app's lifespan startup fails; SystemExit
            # escaping a task would stop the whole event loop, so turn it into an error.
            raise HttpServerError("the ASGI application failed to start (lifespan startup)") from None
        if not self._started_future.done():
            self._started_future.set_result(None)


class HttpServer:
    """Serve one ASGI app on (host, port) from inside the current asyncio loop.

    ``await start()`` binds the socket (port 0 picks a free one, then `port` tells which)
    and returns once uvicorn accepts connections; ``await stop()`` shuts down gracefully
    within `shutdown_timeout` seconds, then forcibly, and leaves no task behind. Both
    are safe to call twice. Also usable as ``async with HttpServer(...) as server:``.

    A connection must deliver each request head within `header_timeout_s` (408, or a
    plain close if it sent nothing) and at most `max_connections` are served at once
    (503 beyond); an unfinished request head may buffer at most 16 KB (400 beyond).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 5.0,
        startup_timeout: float = 10.0,
        lifespan: Literal["auto", "on", "off"] = "off",
        mask: Callable[[str], str] = mask_path,
        header_timeout_s: float = 10.0,
        max_connections: int = 100,
        uvicorn_options: dict[str, Any] | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {port}")
        if not header_timeout_s > 0:
            raise ValueError(f"header_timeout_s must be positive, not {header_timeout_s}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.app = app
        self.host = host
        self.requested_port = port
        self.shutdown_timeout = shutdown_timeout
        self.startup_timeout = startup_timeout
        self.lifespan = lifespan
        self.mask = mask
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.uvicorn_options = dict(uvicorn_options or {})
        self._port: int | None = None
        self._socket: socket.socket | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0); only valid after `start()`."""
        if self._port is None:
            raise RuntimeError("HttpServer.port is known only after start()")
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between a successful `start()` and `stop()` (or a crash)."""
        return self._task is not None and not self._task.done()

    @property
    def failure(self) -> BaseException | None:
        """The exception that ended the server unexpectedly, if any."""
        return self._failure

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind, start uvicorn, return once it serves; raise `HttpServerError` on failure."""
        if self._task is not None:
            raise RuntimeError("HttpServer.start() called twice; create a new HttpServer")
        sock = await self._bind()
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        options: dict[str, Any] = {
            "host": self.host,
            "port": self._port,
            "http": _guarded_protocol(self.header_timeout_s, self.max_connections),
            "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
            "timeout_keep_alive": KEEP_ALIVE_TIMEOUT_S,
            "ws": "none",
            "lifespan": self.lifespan,
            "log_config": None,
            "access_log": False,
            "server_header": False,
            "timeout_graceful_shutdown": max(1, round(self.shutdown_timeout)),
        }
        options.update(self.uvicorn_options)
        config = uvicorn.Config(_AccessLog(self.app, self.mask), **options)
        server = _EmbeddedServer(config, started)
        self._server = server
        task = loop.create_task(server.serve(sockets=[sock]), name=f"http-server:{self._port}")
        self._task = task
        task.add_done_callback(self._on_task_done)
        try:
            done, _ = await asyncio.wait(
                {task, started}, timeout=self.startup_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            await self._abort()
            raise
        if started in done:
            _log.info("http_server_started", host=self.host, port=self._port)
            return
        if task in done:
            error = task.exception() if not task.cancelled() else None
            await self._abort()
            if isinstance(error, HttpServerError):
                raise error
            raise HttpServerError(
                f"HTTP server on {self.host}:{self._port} stopped during startup: {error!r}"
            ) from error
        await self._abort()
        raise HttpServerError(f"HTTP server on {self.host}:{self._port} did not start within {self.startup_timeout} s")

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests within the deadline, then force."""
        task, server = self._task, self._server
        if task is None or server is None or task.done():
            self._close_socket()
            return
        server.should_exit = True
        try:
            done, _ = await asyncio.wait({task}, timeout=self.shutdown_timeout + 1.0)
            if not done:
                _log.warning("http_server_forced_stop", port=self._port)
                server.force_exit = True
                task.cancel()
                await asyncio.wait({task})
        except BaseException:
            # Our caller was cancelled: still leave nothing running behind us.
            task.cancel()
            raise
        finally:
            self._close_socket()
        if not task.cancelled() and task.exception() is None:
            _log.info("http_server_stopped", port=self._port)

    async def _bind(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        where = f"{self.host}:{self.requested_port}"
        try:
            infos = await loop.getaddrinfo(
                self.host,
                self.requested_port,
                type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE,
            )
        except OSError as exc:
            raise HttpServerError(f"cannot listen on {where}: unknown host ({exc.strerror or exc})") from None
        if not infos:
            raise HttpServerError(f"cannot listen on {where}: host resolves to no address")
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            # Same as asyncio's create_server: a restart must not wait out TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise HttpServerError(
                f"cannot listen on {where}: {exc.strerror or exc}"
                " (is another process using this port, or is the address not on this host?)"
            ) from None
        return sock

    async def _abort(self) -> None:
        task = self._task
        if task is not None and not task.done():
            if self._server is not None:
                self._server.should_exit = True
                self._server.force_exit = True
            task.cancel()
            await asyncio.wait({task})
        self._close_socket()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._failure = error
            _log.error("http_server_failed", port=self._port, error=repr(error))
        elif self._server is not None and not self._server.should_exit:
            self._failure = HttpServerError("uvicorn returned without being asked to stop")
            _log.error("http_server_exited", port=self._port)


#: What a page reached by a client's capability link answers with: never cached, never framed,
#: no referrer (the token is in the URL), not indexed, no script, forms only to itself.
CLIENT_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
