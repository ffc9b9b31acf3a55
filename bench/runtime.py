"""Runtime benchmark: tell/ask throughput against raw asyncio baselines, idle actor memory,
restart latency; Pykka's ask rate for information. Last line of stdout: one JSON object.

Targets (issue "Actor runtime"): tell_ratio >= 0.5, ask_ratio >= 0.5, 100,000 idle actors
at <= 4 KiB each, restart p50 <= 200 us.

`pykka_ask_per_s` and `ask_vs_pykka` (ask / Pykka's ask) are figures, not targets (issue 22
retired `ask_vs_pykka >= 5`). Pykka's ask is a round trip between two threads, ours one
within the event loop, so the ratio mostly says how dear a thread hand-off is next to an
event-loop one on the machine at hand. On the shared machines here even a bare asyncio
request/reply (`raw_future_per_s`) is only about 3x Pykka, and our ask cannot beat that:
the target measured the machine, not the runtime. `ask_ratio`, ask against that bare
request/reply in the same run, measures what the runtime itself adds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
import tracemalloc
from typing import Any

from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, RuntimeSettings
from contracts.base import Message


class Ping(Message):
    n: int


class Boom(Message):
    pass


class Sink(Actor[Ping]):
    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: Ping) -> int:
        self.count += 1
        return self.count


class Idle(Actor[Ping]):
    async def receive(self, message: Ping) -> None:
        pass


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def best(samples: list[float]) -> float:
    """The best of several rounds: the least disturbed by the other tenants of the machine."""
    return max(samples)


async def raw_queue_rate(messages: list[Ping]) -> float:
    queue: asyncio.Queue[Ping] = asyncio.Queue(maxsize=1000)
    done = asyncio.get_running_loop().create_future()
    total = len(messages)

    async def consumer() -> None:
        count = 0
        while True:
            await queue.get()
            count += 1
            if count == total:
                done.set_result(None)
                return

    task = asyncio.create_task(consumer())
    start = time.perf_counter()
    for message in messages:
        await queue.put(message)
    await done
    elapsed = time.perf_counter() - start
    await task
    return total / elapsed


async def tell_rate(messages: list[Ping]) -> float:
    settings = RuntimeSettings(tick_interval_s=0, seed=1, mailbox_size=1000)
    sink = Sink()
    async with ActorSystem(settings, children=[ChildSpec("sink", lambda: sink)]) as system:
        ref = system.ref("sink", Ping)
        start = time.perf_counter()
        for message in messages:
            await ref.tell(message)
        await system.settle()
        elapsed = time.perf_counter() - start
        assert sink.count == len(messages)
    return len(messages) / elapsed


async def raw_future_rate(messages: list[Ping]) -> float:
    queue: asyncio.Queue[tuple[Ping, asyncio.Future[int]]] = asyncio.Queue(maxsize=1000)
    loop = asyncio.get_running_loop()

    async def server() -> None:
        count = 0
        while True:
            _, reply = await queue.get()
            count += 1
            reply.set_result(count)

    task = asyncio.create_task(server())
    start = time.perf_counter()
    for message in messages:
        reply: asyncio.Future[int] = loop.create_future()
        await queue.put((message, reply))
        await reply
    elapsed = time.perf_counter() - start
    task.cancel()
    return len(messages) / elapsed


async def ask_rate(messages: list[Ping]) -> float:
    settings = RuntimeSettings(tick_interval_s=0, seed=1)
    async with ActorSystem(settings, children=[ChildSpec("sink", Sink)]) as system:
        ref = system.ref("sink", Ping)
        start = time.perf_counter()
        for message in messages:
            await ref.ask(message)
        elapsed = time.perf_counter() - start
    return len(messages) / elapsed


def pykka_ask_rate(messages: list[Ping]) -> float | None:
    try:
        import pykka
    except ImportError:
        return None

    class PykkaSink(pykka.ThreadingActor):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def on_receive(self, message: Any) -> int:
            self.count += 1
            return self.count

    ref = PykkaSink.start()
    try:
        start = time.perf_counter()
        for message in messages:
            ref.ask(message)
        elapsed = time.perf_counter() - start
    finally:
        ref.stop()
    return len(messages) / elapsed


async def idle_actor_bytes(count: int) -> tuple[int, float, float]:
    settings = RuntimeSettings(tick_interval_s=0, seed=1, mailbox_size=16)
    async with ActorSystem(settings) as system:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        for i in range(count):
            await system.spawn(ChildSpec(f"idle.{i}", Idle))
        spawn_s = time.perf_counter() - start
        await system.settle()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        # every one of them is alive and answers
        await system.ref(f"idle.{count - 1}", Ping).ask(Ping(n=1))
        per_actor = (after - before) / count
        stop_start = time.perf_counter()
    stop_s = time.perf_counter() - stop_start
    return count, per_actor, spawn_s + stop_s


class Fragile(Actor[Ping | Boom]):
    def __init__(self, marks: dict[str, float], samples: list[float]) -> None:
        self.marks = marks
        self.samples = samples

    async def receive(self, message: Ping | Boom) -> None:
        if isinstance(message, Boom):
            self.marks["crash"] = time.perf_counter()
            raise RuntimeError("bench crash")
        crashed = self.marks.pop("crash", None)
        if crashed is not None:
            self.samples.append(time.perf_counter() - crashed)


async def restart_latencies(rounds: int) -> list[float]:
    import logging

    import structlog

    # Crash logs (with tracebacks) would dominate the measurement: silence them here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    settings = RuntimeSettings(
        tick_interval_s=0,
        seed=1,
        poison_threshold=1,
        max_restarts=rounds + 10,
        restart_period_s=3600,
        backoff_base_s=0,  # measure the restart itself, not the configured backoff delay
    )
    marks: dict[str, float] = {}
    samples: list[float] = []
    spec = ChildSpec("fragile", lambda: Fragile(marks, samples))
    async with ActorSystem(settings, children=[spec]) as system:
        ref = system.ref("fragile", Ping)
        for n in range(rounds):
            await ref.tell(Boom())
            await ref.tell(Ping(n=n))
            await system.settle()
    return samples


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench runtime", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--asks", type=int, default=30_000)
    parser.add_argument("--idle", type=int, default=100_000)
    parser.add_argument("--restarts", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    messages = [Ping(n=i) for i in range(args.messages)]
    asks = messages[: args.asks]
    tell, raw_q, ask, raw_f, pyk = [], [], [], [], []
    for r in range(args.rounds):
        progress(f"round {r + 1}/{args.rounds}: tell / raw queue / ask / raw future / pykka")
        raw_q.append(asyncio.run(raw_queue_rate(messages)))
        tell.append(asyncio.run(tell_rate(messages)))
        raw_f.append(asyncio.run(raw_future_rate(asks)))
        ask.append(asyncio.run(ask_rate(asks)))
        rate = pykka_ask_rate(asks[: max(1, args.asks // 5)])
        if rate is not None:
            pyk.append(rate)
    progress(f"spawning {args.idle} idle actors")
    idle, per_actor, _ = asyncio.run(idle_actor_bytes(args.idle))
    progress(f"{args.restarts} crash/restart cycles")
    restarts = asyncio.run(restart_latencies(args.restarts))
    result = {
        "tell_per_s": round(best(tell)),
        "raw_queue_per_s": round(best(raw_q)),
        "tell_ratio": round(best(tell) / best(raw_q), 3),
        "ask_per_s": round(best(ask)),
        "raw_future_per_s": round(best(raw_f)),
        "ask_ratio": round(best(ask) / best(raw_f), 3),
        "pykka_ask_per_s": round(best(pyk)) if pyk else None,
        "ask_vs_pykka": round(best(ask) / best(pyk), 2) if pyk else None,
        "idle_actors": idle,
        "bytes_per_idle_actor": round(per_actor),
        "restart_p50_us": round(statistics.median(restarts) * 1e6, 1),
        "restart_p99_us": round(sorted(restarts)[int(len(restarts) * 0.99)] * 1e6, 1),
        "targets": {
            "tell_ratio": 0.5,
            "ask_ratio": 0.5,
            "bytes_per_idle_actor": 4096,
            "restart_p50_us": 200,
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
