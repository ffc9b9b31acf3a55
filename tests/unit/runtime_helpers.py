"""Small actors and messages shared by the runtime tests."""

from __future__ import annotations

import asyncio

from aicmo_actors.runtime import Actor
from contracts.base import Event, Message


class Add(Message):
    n: int


class Crash(Message):
    reason: str = "boom"


class Get(Message):
    pass


class Quit(Message):
    pass


class Nap(Message):
    seconds: float


class Noted(Event):
    who: str
    value: int


class Accumulator(Actor[Add | Crash | Get | Quit | Nap]):
    """Keeps a running total; crashes, stops or naps on request."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.total = 0
        self.log = log if log is not None else []

    async def receive(self, message: Add | Crash | Get | Quit | Nap) -> int:
        if isinstance(message, Crash):
            raise RuntimeError(message.reason)
        if isinstance(message, Quit):
            self.stop()
        elif isinstance(message, Nap):
            await self.ctx.clock.sleep(message.seconds)
        elif isinstance(message, Add):
            self.total += message.n
            self.log.append(f"{self.ctx.name}:{message.n}")
        return self.total


class Gate(Actor[Add]):
    """Processes a message only when the test opens the gate: a deterministic slow consumer."""

    def __init__(self, gate: asyncio.Event, seen: list[int]) -> None:
        self.gate = gate
        self.seen = seen

    async def receive(self, message: Add) -> None:
        await self.gate.wait()
        self.seen.append(message.n)
