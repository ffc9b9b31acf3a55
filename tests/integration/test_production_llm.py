"""The LLM generator against a fake OpenAI-compatible server on a real local socket
(http.server in a thread): it fails, then answers; the studio retries across ticks, records
the tokens, falls back to the templates after too many failures (a person told) and keeps
the client's budget. Never a real service."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.gateways.llm import ChatClient, LlmError
from aicmo_actors.production import ProductionStore, make_generator
from aicmo_actors.production.generator import DraftRequest, GeneratorError, TemplateGenerator
from aicmo_actors.production.llm_generator import LlmGenerator
from aicmo_actors.production.tables import production_items as items_t
from aicmo_actors.production.tables import production_versions as versions_t
from aicmo_actors.production.wiring import production_supervisor
from aicmo_actors.runtime import ActorSystem, FakeClock
from contracts.production import DraftWritten
from tests.integration import test_production as tp

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ANSWER = "# Route optimisation, plainly\n\nRoute optimisation saves time. It is never cheap talk.\n\nAsk us how."


class Server:
    def __init__(self) -> None:
        self.fail: list[int] = []  # statuses to answer before succeeding
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": "not found"})
                elif server.fail:
                    self._send(server.fail.pop(0), {"error": {"message": "overloaded"}})
                else:
                    self._send(
                        200,
                        {
                            "model": body["model"],
                            "choices": [{"message": {"role": "assistant", "content": ANSWER}}],
                            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
                        },
                    )

            def _send(self, status: int, data: Any) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


def request() -> DraftRequest:
    return DraftRequest(item=tp.ITEMS[1], client=tp.CLIENT, brief=tp.BRIEF, version=1)


async def test_the_client_reports_failures_then_returns_the_text_and_tokens(server: Server) -> None:
    client = ChatClient(server.url, model="m1", api_key="sk-test", timeout_s=5)
    try:
        server.fail = [503, 400]
        with pytest.raises(LlmError) as temporary:
            await client.complete([{"role": "user", "content": "hi"}])
        assert not temporary.value.permanent and temporary.value.status == 503
        with pytest.raises(LlmError) as permanent:
            await client.complete([{"role": "user", "content": "hi"}])
        assert permanent.value.permanent
        answer = await client.complete([{"role": "user", "content": "hi"}], max_tokens=50)
        assert answer.text == ANSWER and answer.total_tokens == 150 and answer.model == "m1"
        assert server.headers[-1]["Authorization"] == "Bearer sk-test"
        assert server.requests[-1]["max_tokens"] == 50
    finally:
        await client.aclose()
    dead = ChatClient("http://127.0.0.1:9/v1", model="m", timeout_s=1)
    with pytest.raises(LlmError) as unreachable:
        await dead.complete([{"role": "user", "content": "hi"}])
    assert not unreachable.value.permanent and "sk-" not in str(unreachable.value)
    await dead.aclose()


async def test_the_llm_generator_keeps_the_brief_rules(server: Server) -> None:
    generator = make_generator(server.url, model="m1", timeout_s=5, budget_tokens=1000)
    assert isinstance(generator, LlmGenerator) and generator.budget_tokens == 1000
    assert isinstance(make_generator(None), TemplateGenerator)
    try:
        draft = await generator.draft(request())
        assert draft.title == "Route optimisation, plainly" and draft.source == "llm" and draft.tokens == 150
        assert "cheap" not in draft.text and "Route optimisation saves time." in draft.text
        assert "<p>" in draft.html
        prompt = server.requests[-1]["messages"][1]["content"]
        assert "Acme Logistics" in prompt and "at most 600 characters" in prompt
        server.fail = [500]
        with pytest.raises(GeneratorError):
            await generator.draft(request())
    finally:
        await generator.aclose()  # type: ignore[attr-defined]


async def _run_studio(engine: AsyncEngine, server: Server, budget: int, ticks: int) -> list[Any]:
    generator = make_generator(server.url, model="m1", timeout_s=5, budget_tokens=budget)
    world = tp.World()
    clock = FakeClock(tp.START, autojump=False)
    spec = production_supervisor(ProductionStore(engine), generator=generator)
    try:
        async with ActorSystem(tp.SETTINGS, clock=clock, children=[tp.stand_ins(world), spec]) as system:
            run = tp.Run(system, clock, [])
            system.events.tap(run.events.append)
            await run.tell(tp.produce(system, tp.ITEMS[:2]))
            for _ in range(ticks):
                await run.tick()
            return [e for e in run.events if isinstance(e, DraftWritten)], world  # type: ignore[return-value]
    finally:
        await generator.aclose()  # type: ignore[attr-defined]


async def test_the_studio_retries_across_ticks_then_records_the_tokens(engine: AsyncEngine, server: Server) -> None:
    server.fail = [503, 503]  # the first item's first two attempts (one per tick)
    written, world = await _run_studio(engine, server, budget=10_000, ticks=4)
    versions = await tp.rows(engine, sa.select(versions_t))
    assert {v["source"] for v in versions} == {"llm"} and {v["tokens"] for v in versions} == {150}
    assert sorted(e.tokens for e in written) == [150, 150]
    items = await tp.rows(engine, sa.select(items_t))
    assert {i["state"] for i in items} == {"delivered"} and {i["gen_attempts"] for i in items} == {0}
    assert not world.alerts


async def test_after_too_many_failures_the_templates_write_and_a_person_is_told(
    engine: AsyncEngine, server: Server
) -> None:
    server.fail = [503] * 6
    _written, world = await _run_studio(engine, server, budget=10_000, ticks=5)
    versions = await tp.rows(engine, sa.select(versions_t))
    assert {v["source"] for v in versions} == {"template"}
    assert len(world.alerts) == 2 and all(":generator:v1" in k for k in world.alerts)


async def test_over_the_budget_the_templates_write(engine: AsyncEngine, server: Server) -> None:
    _written, _ = await _run_studio(engine, server, budget=100, ticks=3)
    versions = await tp.rows(engine, sa.select(versions_t).order_by(versions_t.c.id))
    assert [v["source"] for v in versions] == ["llm", "template"]
