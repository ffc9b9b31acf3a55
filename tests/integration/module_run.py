"""A module's actors in a system on a fake clock that does not jump by itself, and what its
integration tests do with them: tell the actor, publish a tick, read the events heard. Shared
by the tests of onboarding, strategy, production, client review and delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from aicmo_actors.runtime import ActorSystem, FakeClock
from contracts.base import Event, Message
from contracts.runtime import Tick


@dataclass
class ModuleRun:
    system: ActorSystem
    clock: FakeClock
    events: list[Event]
    ticks: int = field(default=0, kw_only=True)
    #: The actor `tell` tells (each module's test names its own).
    actor: ClassVar[str] = ""

    def of(self, kind: type[Any]) -> list[Any]:
        """The events of `kind` heard so far, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    async def tell(self, message: Message) -> None:
        await self.system.ref(self.actor, type(message)).tell(message)
        await self.system.settle()

    async def tick(self, at: datetime | None = None, *, interval_s: float = 60.0) -> None:
        """Move the clock to `at` (if given), publish the next tick, let the system settle."""
        if at is not None:
            self.clock.advance((at - self.clock.now()).total_seconds())
        self.ticks += 1
        await self.system.events.publish(
            self.system.message(Tick, seq=self.ticks, at=self.clock.now(), interval_s=interval_s)
        )
        await self.system.settle()
