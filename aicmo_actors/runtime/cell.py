"""The cell: one named actor's lasting parts (mailbox, counters, random source) and its run loop.

An incarnation (one actor instance) comes and goes with crashes and restarts; the cell
stays, so messages waiting when an actor crashes are processed by its replacement.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from aicmo_actors.runtime.activity import Holder, current_holder
from aicmo_actors.runtime.actor import Actor, ActorContext
from aicmo_actors.runtime.errors import MessageUndeliverable
from aicmo_actors.runtime.mailbox import Mailbox
from aicmo_actors.runtime.ref import ActorRef
from aicmo_actors.runtime.stats import ActorCounters
from contracts.base import Message, message_context
from contracts.runtime import ActorStats

if TYPE_CHECKING:
    from aicmo_actors.runtime.system import ActorSystem


def seeded_random(seed: int, *parts: str) -> random.Random:
    """A random source derived from the system seed and a name (stable across runs)."""
    return random.Random(":".join([str(seed), *parts]))


class Cell(Holder):
    """Everything about a named actor that outlives one incarnation."""

    __slots__ = (
        "_ids",
        "_rng",
        "accepts",
        "counters",
        "current",
        "head_crashes",
        "mailbox",
        "name",
        "ref",
        "status",
        "stop_requested",
        "suspended",
        "system",
    )

    def __init__(self, system: ActorSystem, name: str, accepts: tuple[type[Message], ...], capacity: int) -> None:
        super().__init__(system.activity)
        if not accepts:
            raise TypeError(f"actor {name!r} declares no message types: use Actor[MsgType]")
        self.system = system
        self.name = name
        self.accepts = accepts
        self.mailbox = Mailbox(capacity)
        self.mailbox.on_wake = self._on_mail
        self.counters = ActorCounters()
        # Random sources are created on first use: a Mersenne Twister is 2.5 KB, and most
        # idle actors never draw a number.
        self._rng: random.Random | None = None
        self._ids: random.Random | None = None
        self.status = "starting"
        self.stop_requested = False
        #: Suspended (its module switched off): mail is kept, nothing is processed.
        self.suspended = False
        self.head_crashes = 0
        self.current: Message | None = None
        self.ref: ActorRef[Any] = ActorRef(self)

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = seeded_random(self.system.seed, self.name)
        return self._rng

    # -- MessageContext for contracts.base ---------------------------------------------
    def new_id(self) -> uuid.UUID:
        if self._ids is None:
            self._ids = seeded_random(self.system.seed, self.name, "ids")
        return uuid.UUID(int=self._ids.getrandbits(128), version=4)

    def now(self) -> datetime:
        return self.system.clock.now()

    @property
    def correlation_id(self) -> uuid.UUID | None:
        current = self.current
        return current.correlation if current is not None else None

    # -- typing ---------------------------------------------------------------------------
    def refuse_type(self, message: object) -> NoReturn:
        accepted = ", ".join(t.__name__ for t in self.accepts)
        error = f"actor {self.name!r} does not accept {type(message).__name__}; it accepts: {accepted}"
        self.system.dead_letters.record("refused", self.name, message, error)
        raise TypeError(error)

    def _on_mail(self) -> None:
        self.activity.acquire()
        self.holding = True

    def snapshot(self) -> ActorStats:
        clock = self.system.clock
        return self.counters.snapshot(
            self.name,
            "suspended" if self.suspended and self.status == "running" else self.status,
            len(self.mailbox),
            self.mailbox.high_water,
            self.mailbox.capacity,
            now=clock.now(),
            monotonic=clock.monotonic(),
        )

    def suspend(self) -> None:
        """Stop taking messages (the one being processed finishes); keep what arrives."""
        self.suspended = True

    def resume(self) -> None:
        self.suspended = False
        self.mailbox.wake_consumer()

    def holds_tick(self, tick_type: type) -> bool:
        """Whether a message of `tick_type` already waits here (ticks coalesce while suspended)."""
        return any(type(message) is tick_type for message, _ in self.mailbox.items)

    # -- one incarnation --------------------------------------------------------------
    async def run(self, actor: Actor[Any], started: asyncio.Future[None]) -> None:
        """Run one actor instance until it stops, is stopped, or crashes (raises).

        The caller has already taken a unit of activity on our behalf. The tasks the
        instance spawned end before its `on_stop`; one of them failing crashes it.
        """
        current_holder.set(self)
        message_context.set(self)
        ctx = actor.ctx = ActorContext(self, asyncio.current_task())
        try:
            try:
                await actor.on_start()
            except BaseException as exc:
                if not started.done():
                    started.set_exception(ctx._crash_cause(exc) or exc)
                raise
            started.set_result(None)
            del started
            self.status = "running"
            await self._loop(actor)
            self.status = "stopped"
        except BaseException as exc:
            crash = ctx._crash_cause(exc)
            if crash is None and isinstance(exc, asyncio.CancelledError):
                self.status = "stopped"
                await ctx._stop_tasks()
                raise
            self.status = "restarting"
            if not self.holding:  # a spawned task's failure can find the actor idle
                self.activity.acquire()
                self.holding = True
            await ctx._stop_tasks()
            await self._stop_actor(actor)
            if crash is None:
                raise
            raise crash from crash.__cause__
        else:
            await ctx._stop_tasks()
            await self._stop_actor(actor)
        finally:
            self.current = None
            if self.holding:
                self.holding = False
                self.activity.release()

    async def _stop_actor(self, actor: Actor[Any]) -> None:
        try:
            await actor.on_stop()
        except Exception:
            self.system.log.exception("on_stop failed", actor=self.name)

    async def _loop(self, actor: Actor[Any]) -> None:
        mailbox = self.mailbox
        counters = self.counters
        clock = self.system.clock
        perf = clock.perf
        monotonic = clock.monotonic
        threshold = self.system.settings.poison_threshold
        receive = actor.receive
        while True:
            if actor._stop_requested or self.stop_requested:
                return  # whatever is still queued waits for the next incarnation
            items = mailbox.items
            if not items or self.suspended:
                # Idle, or suspended with mail kept for later: either way, not working.
                self.holding = False
                self.activity.release()
                await mailbox.waiter()
                if not self.holding:  # woken to stop, not by mail
                    self.activity.acquire()
                    self.holding = True
                continue
            message, reply = items[0]
            self.current = message
            started = perf()
            try:
                result = await receive(message)
            except Exception as exc:
                counters.record_error(clock.now(), exc)
                self.head_crashes += 1
                if self.head_crashes >= threshold:
                    mailbox.pop_head()
                    self.head_crashes = 0
                    self.system.dead_letters.record(
                        "poison",
                        self.name,
                        message,
                        f"crashed the actor {threshold} times in a row; last: {exc!r}",
                    )
                    if reply is not None and not reply.done():
                        reply.set_exception(
                            MessageUndeliverable(
                                f"{type(message).__name__} crashed actor {self.name!r} {threshold} times: {exc!r}"
                            )
                        )
                raise
            mailbox.pop_head()
            self.head_crashes = 0
            counters.record(perf() - started)
            counters.last_ok = monotonic()
            self.current = None
            if reply is not None and not reply.done():
                reply.set_result(result)
