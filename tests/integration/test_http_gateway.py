"""The unsubscribe app behind a real uvicorn on loopback, driven by a real HTTP client."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from aicmo_actors.cam.unsubscribe import (
    build_app,
    render_prometheus,
    sign_token,
    unsubscribe_url,
)
from aicmo_actors.gateways.http import HttpServer, HttpServerError, mask_path
from aicmo_actors.runtime.logging import configure_logging

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

SECRET = bytes(range(32))
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Backend:
    """Callbacks the app is built with, recording what it was asked."""

    def __init__(self) -> None:
        self.unsubscribed: list[int] = []
        self.suppressed: set[int] = set()
        self.health_report: dict[str, Any] = {"ok": True, "actors": 12}
        self.fail_unsubscribe = False

    async def on_unsubscribe(self, lead_id: int) -> bool:
        if self.fail_unsubscribe:
            raise RuntimeError("database down")
        self.unsubscribed.append(lead_id)
        changed = lead_id not in self.suppressed
        self.suppressed.add(lead_id)
        return changed

    async def health(self) -> dict[str, Any]:
        return self.health_report

    async def metrics(self) -> str:
        return render_prometheus(
            {
                "aicmo_unsubscribes_total": (
                    "counter",
                    "One-click unsubscribes.",
                    [({}, len(self.unsubscribed))],
                ),
                "aicmo_mailbox_depth": ("gauge", "Mailbox depth.", [({"actor": "sender"}, 3)]),
            }
        )


@asynccontextmanager
async def serving(backend: Backend) -> AsyncIterator[tuple[HttpServer, httpx.AsyncClient]]:
    app = build_app(
        secret=SECRET,
        on_unsubscribe=backend.on_unsubscribe,
        health=backend.health,
        metrics=backend.metrics,
    )
    async with HttpServer(app, host="127.0.0.1", port=0) as server:
        # trust_env=False: a proxy from the environment must not sit between us and loopback.
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            yield server, client


def tampered(token: str) -> str:
    position = 20
    replacement = "A" if token[position] != "A" else "B"
    return token[:position] + replacement + token[position + 1 :]


async def test_get_shows_a_confirm_form_and_changes_nothing() -> None:
    backend = Backend()
    token = sign_token(SECRET, 42)
    async with serving(backend) as (server, client):
        assert server.port != 0
        response = await client.get(f"/u/{token}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<form method="post">' in html
    assert '<button type="submit">Confirm</button>' in html
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in html
    for external in ("<script", "src=", "href=", "http://", "https://"):
        assert external not in html
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert backend.unsubscribed == []  # link scanners GET; only a POST unsubscribes


async def test_one_click_post_unsubscribes_and_is_idempotent() -> None:
    backend = Backend()
    token = sign_token(SECRET, 42)
    async with serving(backend) as (_, client):
        first = await client.post(f"/u/{token}", headers=FORM, **ONE_CLICK)
        assert first.status_code == 200
        assert "unsubscribed" in first.text
        assert backend.unsubscribed == [42]
        second = await client.post(f"/u/{token}", headers=FORM, **ONE_CLICK)
    assert second.status_code == 200
    assert backend.unsubscribed == [42, 42]
    assert backend.suppressed == {42}


async def test_post_accepts_multipart_and_the_empty_confirm_form() -> None:
    backend = Backend()
    async with serving(backend) as (_, client):
        multipart = await client.post(
            f"/u/{sign_token(SECRET, 7)}",
            files={"List-Unsubscribe": (None, "One-Click")},
        )
        empty = await client.post(f"/u/{sign_token(SECRET, 8)}")
        # The browser form from the GET page posts its hidden field, urlencoded.
        form = await client.post(f"/u/{sign_token(SECRET, 9)}", data={"List-Unsubscribe": "One-Click"})
    assert [multipart.status_code, empty.status_code, form.status_code] == [200, 200, 200]
    assert backend.unsubscribed == [7, 8, 9]


async def test_tampered_or_foreign_token_gets_404_and_changes_nothing() -> None:
    backend = Backend()
    good = sign_token(SECRET, 42)
    foreign = sign_token(bytes(range(1, 33)), 42)
    async with serving(backend) as (_, client):
        for token in (tampered(good), foreign, good[:-1], "garbage"):
            posted = await client.post(f"/u/{token}", headers=FORM, **ONE_CLICK)
            assert posted.status_code == 404, token
            assert "not valid" in posted.text
            shown = await client.get(f"/u/{token}")
            assert shown.status_code == 404, token
        # The same keep-alive client still works after 404s with unread bodies.
        ok = await client.post(f"/u/{good}", headers=FORM, **ONE_CLICK)
    assert backend.unsubscribed == [42]
    assert ok.status_code == 200


async def test_failing_callback_answers_503_so_the_sender_retries() -> None:
    backend = Backend()
    backend.fail_unsubscribe = True
    async with serving(backend) as (_, client):
        response = await client.post(f"/u/{sign_token(SECRET, 5)}", headers=FORM, **ONE_CLICK)
    assert response.status_code == 503


async def test_healthz() -> None:
    backend = Backend()
    async with serving(backend) as (_, client):
        healthy = await client.get("/healthz")
        backend.health_report = {"ok": False, "failing": ["sender"]}
        unhealthy = await client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json() == {"ok": True, "actors": 12}
    assert unhealthy.status_code == 503
    assert unhealthy.json() == {"ok": False, "failing": ["sender"]}


async def test_metrics_content_type_and_body() -> None:
    backend = Backend()
    async with serving(backend) as (_, client):
        await client.post(f"/u/{sign_token(SECRET, 1)}", headers=FORM, **ONE_CLICK)
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.text == (
        "# HELP aicmo_unsubscribes_total One-click unsubscribes.\n"
        "# TYPE aicmo_unsubscribes_total counter\n"
        "aicmo_unsubscribes_total 1\n"
        "# HELP aicmo_mailbox_depth Mailbox depth.\n"
        "# TYPE aicmo_mailbox_depth gauge\n"
        'aicmo_mailbox_depth{actor="sender"} 3\n'
    )


async def test_token_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    backend = Backend()
    token = sign_token(SECRET, 42)
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        async with serving(backend) as (_, client):
            await client.get(f"/u/{token}")
            await client.post(f"/u/{token}", headers=FORM, **ONE_CLICK)
            await client.post(f"/u/{tampered(token)}", headers=FORM, **ONE_CLICK)
    access = [event for event in events if event["event"] == "http_request"]
    assert [(e["method"], e["path"], e["status"]) for e in access] == [
        ("GET", "/u/***", 200),
        ("POST", "/u/***", 200),
        ("POST", "/u/***", 404),
    ]
    assert any(event["event"] == "unsubscribed" for event in events)
    assert token not in repr(events)
    assert tampered(token) not in repr(events)
    # httpx/httpcore are the test's own client logging its requests: not the server.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name.startswith("uvicorn") for r in server_side), "uvicorn uses stdlib logging"
    server_text = "\n".join(r.getMessage() for r in server_side)
    assert token not in server_text
    assert tampered(token) not in server_text


async def serve_with_json_logs() -> None:
    """Run in a child process by the test below: JSON logs, then every kind of server line."""
    configure_logging("debug", "json")
    token = sign_token(SECRET, 42)

    async def explode(request: Request) -> PlainTextResponse:
        raise RuntimeError("boom\nover two lines")

    unsubscribe = build_app(secret=SECRET, **_callbacks(Backend()))
    broken = Starlette(routes=[Route("/explode", explode)])
    async with (
        HttpServer(unsubscribe, header_timeout_s=0.5, max_connections=1) as server,
        HttpServer(broken) as broken_server,
    ):
        async with httpx.AsyncClient(trust_env=False) as client:
            await client.get(f"{server.url}/u/{token}")
            await client.post(f"{server.url}/u/{token}", headers=FORM, **ONE_CLICK)
            await client.get(f"{server.url}/healthz")
            # uvicorn logs "Exception in ASGI application" with a multi-line traceback.
            await client.get(f"{broken_server.url}/explode")
        # uvicorn: "Invalid HTTP request received."
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await asyncio.wait_for(reader.read(), 10)
        writer.close()
        await writer.wait_closed()
        # An unfinished head (408 after the header timeout) holds the only slot, so a
        # second connection is refused meanwhile.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"GET /u/{token} HTTP/1.1\r\nHost: x\r\n".encode())
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", server.port)
        await asyncio.wait_for(extra_reader.read(), 10)
        await asyncio.wait_for(reader.read(), 10)
        for stream in (writer, extra_writer):
            stream.close()
            await stream.wait_closed()


def test_json_logging_renders_every_server_line_as_json() -> None:
    root = Path(__file__).resolve().parents[2]
    script = (
        "import asyncio\n"
        "from tests.integration.test_http_gateway import serve_with_json_logs\n"
        "asyncio.run(serve_with_json_logs())\n"
    )
    child = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line on stderr: {line!r}")
    assert all(isinstance(event, dict) for event in events)
    by_event = {event["event"]: event for event in events}
    assert by_event["Invalid HTTP request received."]["logger"] == "uvicorn.error"
    assert by_event["Invalid HTTP request received."]["level"] == "warning"
    crash = by_event["Exception in ASGI application\n"]
    assert crash["level"] == "error"
    assert "RuntimeError: boom\nover two lines" in crash["exception"]
    assert by_event["http_connection_refused"]["level"] == "warning"
    assert by_event["http_header_timeout"]["partial"] is True
    paths = {event["path"] for event in events if event["event"] == "http_request"}
    assert paths == {"/u/***", "/healthz", "/explode"}
    # The server's own structlog lines follow configure_logging, not the import-time default.
    assert "component=http" not in child.stdout
    token = sign_token(SECRET, 42)
    assert token not in child.stderr
    assert token not in child.stdout


def test_mask_path() -> None:
    assert mask_path("/u/SECRET") == "/u/***"
    assert mask_path("/u/SECRET/more") == "/u/***"
    assert mask_path("/healthz") == "/healthz"
    assert mask_path("/metrics/") == "/metrics/"
    assert mask_path("/") == "/"


async def test_start_stop_leaves_no_task_and_no_signal_handler() -> None:
    before_tasks = asyncio.all_tasks()
    before_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    backend = Backend()
    server = HttpServer(build_app(secret=SECRET, **_callbacks(backend)), port=0)
    await server.start()
    assert server.running
    during = {sig: signal.getsignal(sig) for sig in before_signals}
    assert during == before_signals  # uvicorn must not take SIGINT/SIGTERM
    client = httpx.AsyncClient(base_url=server.url, trust_env=False)
    try:
        # A keep-alive connection is still open while we stop: it must not hold us up.
        assert (await client.get("/healthz")).status_code == 200
        await server.stop()
        assert not server.running
        await server.stop()  # a second stop is harmless
        with pytest.raises(httpx.TransportError):
            await client.get("/healthz")
    finally:
        await client.aclose()
    assert asyncio.all_tasks() == before_tasks
    assert {sig: signal.getsignal(sig) for sig in before_signals} == before_signals
    assert server.failure is None


async def test_port_zero_picks_distinct_free_ports() -> None:
    backend = Backend()
    app = build_app(secret=SECRET, **_callbacks(backend))
    async with HttpServer(app, port=0) as one, HttpServer(app, port=0) as two:
        assert one.port != two.port
        assert 0 not in (one.port, two.port)
        async with httpx.AsyncClient(trust_env=False) as client:
            for server in (one, two):
                response = await client.get(f"{server.url}/healthz")
                assert response.status_code == 200


async def test_bind_to_a_port_in_use_raises_one_clear_line() -> None:
    before_tasks = asyncio.all_tasks()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HttpServer(_plain_app(), host="127.0.0.1", port=port)
        with pytest.raises(HttpServerError) as caught:
            await server.start()
    message = str(caught.value)
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert "in use" in message
    assert "\n" not in message
    await server.stop()
    assert asyncio.all_tasks() == before_tasks


async def test_bind_to_an_address_not_on_this_host_raises() -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a local interface.
    server = HttpServer(_plain_app(), host="192.0.2.1", port=0)
    with pytest.raises(HttpServerError, match=r"cannot listen on 192\.0\.2\.1:0"):
        await server.start()


async def test_failed_app_startup_is_an_error_not_a_process_exit() -> None:
    before_tasks = asyncio.all_tasks()

    @asynccontextmanager
    async def broken_lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("cannot open the database")
        yield

    app = Starlette(lifespan=broken_lifespan)
    server = HttpServer(app, port=0, lifespan="on")
    with pytest.raises(HttpServerError, match="failed to start"):
        await server.start()
    assert not server.running
    assert asyncio.all_tasks() == before_tasks


async def test_stop_lets_an_in_flight_request_finish() -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        entered.set()
        await release.wait()
        return PlainTextResponse("done")

    shutting_down = asyncio.Event()

    class ShutdownSeen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "Shutting down":
                shutting_down.set()

    watcher = ShutdownSeen()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(watcher)
    level = uvicorn_log.level
    uvicorn_log.setLevel(logging.INFO)
    server = HttpServer(Starlette(routes=[Route("/slow", slow)]), port=0)
    try:
        await server.start()
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            request = asyncio.create_task(client.get("/slow"))
            await entered.wait()
            stopping = asyncio.create_task(server.stop())
            # Release the handler only once uvicorn has begun its graceful shutdown.
            await shutting_down.wait()
            assert not stopping.done()
            release.set()
            response = await request
            await stopping
    finally:
        uvicorn_log.removeHandler(watcher)
        uvicorn_log.setLevel(level)
    assert response.status_code == 200
    assert response.text == "done"
    assert not server.running


async def test_stop_forces_a_hung_request_after_the_deadline() -> None:
    before_tasks = asyncio.all_tasks()
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def hung(request: Request) -> PlainTextResponse:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return PlainTextResponse("never")

    server = HttpServer(Starlette(routes=[Route("/hung", hung)]), port=0, shutdown_timeout=1)
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
        request = asyncio.create_task(client.get("/hung"))
        await entered.wait()
        await server.stop()
        assert cancelled.is_set()
        response = await asyncio.gather(request, return_exceptions=True)
    assert isinstance(response[0], httpx.TransportError | httpx.Response)
    assert asyncio.all_tasks() == before_tasks


def _callbacks(backend: Backend) -> dict[str, Any]:
    return {
        "on_unsubscribe": backend.on_unsubscribe,
        "health": backend.health,
        "metrics": backend.metrics,
    }


def _plain_app() -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)])


def test_unsubscribe_url_matches_the_served_route() -> None:
    token = sign_token(SECRET, 42)
    assert unsubscribe_url("http://127.0.0.1:8080", token).endswith(f"/u/{token}")
