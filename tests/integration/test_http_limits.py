"""HttpServer's request-head deadline and connection cap, driven over raw TCP on loopback.

Every wait is bounded by `BOUND` (a generous ceiling, not a timing assertion): a server
that never closes a connection fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from aicmo_actors.gateways.http import HttpServer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

BOUND = 10.0
SHORT = 0.5  # header timeout used where the test waits for it to fire
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
GET_AND_CLOSE = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def hello_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


@asynccontextmanager
async def connection(
    server: HttpServer,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a content-length: (status line, body)."""
    async with asyncio.timeout(BOUND):
        head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    async with asyncio.timeout(BOUND):
        body = await reader.readexactly(length)
    return status.encode("latin-1"), body


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    received = b""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


async def test_an_idle_connection_is_closed_silently_after_the_header_timeout() -> None:
    async with HttpServer(hello_app(), header_timeout_s=SHORT) as server:
        async with connection(server) as (reader, _):
            assert await read_until_closed(reader) == b""


async def test_an_incomplete_request_head_gets_408_and_is_closed() -> None:
    async with HttpServer(hello_app(), header_timeout_s=SHORT) as server:
        async with connection(server) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n")  # no blank line: head unfinished
            await writer.drain()
            received = await read_until_closed(reader)
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in received.lower()


async def test_a_trickled_head_is_cut_off_not_kept_alive_by_each_byte() -> None:
    # One byte every 0.2 s (well under the 0.5 s timeout) for 2000 bytes would take 400 s;
    # a timer restarted by each byte would never fire.
    async with HttpServer(hello_app(), header_timeout_s=SHORT) as server:
        async with connection(server) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")

            async def trickle() -> None:
                with contextlib.suppress(ConnectionError):
                    for _ in range(2000):
                        writer.write(b"a")
                        await writer.drain()
                        await asyncio.sleep(0.2)

            trickling = asyncio.create_task(trickle())
            try:
                received = await read_until_closed(reader)
            finally:
                trickling.cancel()
                await asyncio.gather(trickling, return_exceptions=True)
    assert received == b"" or received.startswith(b"HTTP/1.1 408 ")


async def test_a_complete_request_is_answered_and_keep_alive_rearms_the_timeout() -> None:
    async with HttpServer(hello_app(), header_timeout_s=SHORT) as server:
        async with connection(server) as (reader, writer):
            for _ in range(3):
                writer.write(GET)
                await writer.drain()
                assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"hello")
            # Two pipelined requests in one write: both answered on the same connection.
            writer.write(GET + GET)
            await writer.drain()
            assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"hello")
            assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"hello")
            # Then idle: the timeout, re-armed at the end of the last response, closes it.
            assert await read_until_closed(reader) == b""


async def test_a_slow_handler_is_not_cut_off_by_the_header_timeout() -> None:
    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(SHORT * 3)  # the head arrived long ago; only the app is slow
        return PlainTextResponse("slow")

    app = Starlette(routes=[Route("/", slow)])
    async with HttpServer(app, header_timeout_s=SHORT) as server:
        async with connection(server) as (reader, writer):
            writer.write(GET)
            await writer.drain()
            assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"slow")


async def test_a_request_head_past_16_kb_unfinished_is_refused_with_400() -> None:
    # h11 bounds what it buffers of an *unfinished* head; a whole head that arrives in
    # one read is parsed as is, so the bound is on memory held per connection.
    async with HttpServer(hello_app()) as server:
        async with connection(server) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 20_000)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            received = await read_until_closed(reader)
        assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        # A normal head with many headers is fine.
        async with connection(server) as (reader, writer):
            headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(50))
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n" + headers + b"\r\n")
            await writer.drain()
            assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"hello")


async def test_connections_beyond_the_limit_get_503_and_a_freed_slot_is_reused() -> None:
    async with HttpServer(hello_app(), max_connections=2) as server:
        async with (
            connection(server) as (reader1, writer1),
            connection(server) as (reader2, writer2),
        ):
            # Under the limit: both connections are served and stay open (keep-alive).
            for reader, writer in ((reader1, writer1), (reader2, writer2)):
                writer.write(GET)
                await writer.drain()
                assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"hello")
            # A third is answered 503 and closed without waiting for its request.
            async with connection(server) as (reader3, _):
                refused = await read_until_closed(reader3)
            assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            # Ending one connection frees its slot: the server forgets it before its
            # socket closes, so a connection opened after EOF is counted without it.
            writer1.write(GET_AND_CLOSE)
            await writer1.drain()
            assert (await read_until_closed(reader1)).startswith(b"HTTP/1.1 200 OK\r\n")
            async with connection(server) as (reader4, writer4):
                writer4.write(GET)
                await writer4.drain()
                assert await read_response(reader4) == (b"HTTP/1.1 200 OK", b"hello")
            # The second connection was never disturbed.
            writer2.write(GET)
            await writer2.drain()
            assert await read_response(reader2) == (b"HTTP/1.1 200 OK", b"hello")


async def test_requests_still_running_after_their_client_left_count_against_the_limit() -> None:
    abandoned = asyncio.Semaphore(0)
    release = asyncio.Event()

    async def hang(request: Request) -> PlainTextResponse:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        abandoned.release()  # the server has already forgotten this connection
        await release.wait()
        return PlainTextResponse("late")

    app = Starlette(routes=[Route("/", hello), Route("/hang", hang)])
    async with HttpServer(app, max_connections=2) as server:
        for _ in range(2):
            async with connection(server) as (_, writer):
                writer.write(b"GET /hang HTTP/1.1\r\nHost: test\r\n\r\n")
                await writer.drain()
        async with asyncio.timeout(BOUND):
            for _ in range(2):
                await abandoned.acquire()
        # No connection is open, but two handlers still run: a new connection is refused.
        async with connection(server) as (reader, _):
            assert (await read_until_closed(reader)).startswith(b"HTTP/1.1 503 ")
        release.set()
        # Once those handlers finish (their task ends a loop turn later), service resumes.
        async with asyncio.timeout(BOUND):
            while True:
                async with connection(server) as (reader, writer):
                    writer.write(GET_AND_CLOSE)
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    if (await read_until_closed(reader)).startswith(b"HTTP/1.1 200 OK\r\n"):
                        break
                await asyncio.sleep(0.01)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="header_timeout_s"):
        HttpServer(hello_app(), header_timeout_s=0)
    with pytest.raises(ValueError, match="max_connections"):
        HttpServer(hello_app(), max_connections=0)
