"""`ActorSystem`: the one entry point. `async with ActorSystem(settings) as system:`."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import structlog

from aicmo_actors.runtime.activity import Activity
from aicmo_actors.runtime.cell import seeded_random
from aicmo_actors.runtime.clock import Clock, FakeClock, RealClock, TimerHandle
from aicmo_actors.runtime.clock_actor import CLOCK_ACTOR, ClockActor
from aicmo_actors.runtime.dead_letters import DeadLetters
from aicmo_actors.runtime.errors import ActorNotFound, SystemFailed
from aicmo_actors.runtime.events import EventStream
from aicmo_actors.runtime.ref import ActorRef
from aicmo_actors.runtime.registry import Registry
from aicmo_actors.runtime.settings import RuntimeSettings
from aicmo_actors.runtime.supervisor import ChildSpec, Strategy, Supervisor, SupervisorSpec
from contracts.base import Message
from contracts.runtime import DependencyStatus, SystemSnapshot

T = TypeVar("T", bound=Message)


class ActorSystem:
    """Owns the clock, the root supervisor, the registry, the event stream and dead letters.

    Use it as an async context manager inside any asyncio (or anyio-on-asyncio) program;
    leaving the block drains mailboxes (up to `drain_timeout_s`), stops actors in reverse
    start order and leaves no task behind.
    """

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        *,
        clock: Clock | None = None,
        children: Sequence[ChildSpec | SupervisorSpec] = (),
        strategy: Strategy = "one_for_one",
        seed: int | None = None,
    ) -> None:
        self.settings = settings if settings is not None else RuntimeSettings()
        self.clock: Clock = clock if clock is not None else RealClock()
        chosen = seed if seed is not None else self.settings.seed
        # The only place randomness enters unseeded; the seed is logged so a run can be replayed.
        self.seed: int = chosen if chosen is not None else secrets.randbits(63)
        self.activity = Activity()
        self.clock.attach(self.activity)
        self.log = structlog.get_logger("aicmo").bind(system_seed=self.seed)
        self.events = EventStream()
        self.dead_letters = DeadLetters(self, self.settings.dead_letters_kept)
        self.registry = Registry(self)
        self._timers: set[TimerHandle] = set()
        self._root_spec = SupervisorSpec(
            id="root",
            children=tuple(children),
            strategy=strategy,
            max_restarts=self.settings.max_restarts,
            period=self.settings.restart_period_s,
        )
        self.root: Supervisor | None = None
        self._root_task: asyncio.Task[None] | None = None
        self._autojump: asyncio.Task[None] | None = None
        self._stop_requested: asyncio.Event | None = None
        self.stopping = False
        self.stopped = False
        self.failure: str | None = None
        self.started_at: datetime | None = None
        self._ids = seeded_random(self.seed, "system", "ids")
        self._dependencies: dict[str, DependencyStatus] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> ActorSystem:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self.failure is not None and exc is None:
            raise SystemFailed(self.failure)

    async def start(self) -> None:
        if self.root is not None:
            raise RuntimeError("this ActorSystem was already started")
        self._stop_requested = asyncio.Event()
        self.started_at = self.clock.now()
        self.log.info("actor system starting", clock=self.clock.name, seed=self.seed)
        if isinstance(self.clock, FakeClock) and self.clock.autojump:
            self._autojump = self.registry.create_task(self.clock.run_autojump(), "fake-clock-autojump")
        self.root = Supervisor(self._root_spec, self, self.registry, "root")
        try:
            if self.settings.tick_interval_s > 0:
                interval = self.settings.tick_interval_s
                await self.root.add_child(ChildSpec(CLOCK_ACTOR, lambda: ClockActor(interval), intake=True))
            await self.root.start()
        except BaseException:
            await self.registry.cancel_tasks()
            raise
        self._root_task = self.registry.create_task(self.root.run(), "supervisor:root")
        self._root_task.add_done_callback(self._root_exited)

    def _root_exited(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.failure = str(error)
            self.log.error("root supervisor gave up: stopping the system", reason=self.failure)
            self.request_stop()

    def request_stop(self) -> None:
        """Ask the system to stop (from a signal handler, say); `wait()` then returns."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def wait(self) -> None:
        """Wait until something asked the system to stop (a signal, or the root giving up)."""
        assert self._stop_requested is not None, "start the system first"
        await self._stop_requested.wait()

    async def stop(self) -> None:
        """Stop intake, drain mailboxes up to the deadline, stop actors in reverse order."""
        if self.stopped or self.root is None:
            return
        self.stopping = True
        self.request_stop()
        root = self.root
        await root.stop_intake()
        try:
            await asyncio.wait_for(self.activity.wait_idle(), self.settings.drain_timeout_s)
        except TimeoutError:
            cells = self.registry.cells.values()
            busy = {c.name: len(c.mailbox) for c in cells if len(c.mailbox)}
            self.log.warning("drain deadline passed; stopping anyway", queued=busy)
        if self._root_task is not None and not self._root_task.done():
            self._root_task.cancel()
        await root.stop()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for cell in self.registry.cells.values():
            for message, reply in cell.mailbox.close():
                self.registry.undeliverable(cell.name, message, reply, "system stopped", kind="shutdown")
        await self.registry.cancel_tasks()
        self.stopped = True
        self.log.info("actor system stopped", failure=self.failure)

    async def kill(self) -> None:
        """Stop at once, the way SIGKILL stops a process: no drain and no `on_stop`; what is
        queued in mailboxes, scheduled on timers or half done in an actor is lost.

        For simulations and tests of a crash: whatever the actors need after one must come
        back from the database when a new system starts on it.
        """
        if self.stopped or self.root is None:
            return
        self.stopping = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for cell in self.registry.cells.values():
            cell.mailbox.close()
        await self.registry.cancel_tasks()
        self.stopped = True
        self.log.info("actor system killed")

    def background(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` as a task the system owns: cancelled and awaited when it stops."""
        return self.registry.create_task(coro, name)

    # -- actors ---------------------------------------------------------------------------------
    async def spawn(self, spec: ChildSpec | SupervisorSpec, *, under: str | None = None) -> ActorRef[Any] | None:
        """Start a new child under the root (or the named supervisor path, e.g. "root/cam")."""
        supervisor = self._find_supervisor(under or "root")
        await supervisor.add_child(spec)
        return self.registry.cells[spec.id].ref if isinstance(spec, ChildSpec) else None

    def _find_supervisor(self, path: str) -> Supervisor:
        if self.root is None:
            raise RuntimeError("start the system first")
        node = self.root
        for part in path.split("/")[1:]:
            for child in node.children:
                if child.spec.id == part and child.supervisor is not None:
                    node = child.supervisor
                    break
            else:
                raise ActorNotFound(f"no supervisor at {path!r}")
        return node

    def ref(self, name: str, message_type: type[T]) -> ActorRef[T]:
        """The reference of actor `name`, checked to accept `message_type`."""
        cell = self.registry.cells.get(name)
        if cell is None:
            known = ", ".join(sorted(self.registry.cells)) or "none"
            raise ActorNotFound(f"no actor named {name!r} (known: {known})")
        if not issubclass(message_type, cell.accepts):
            accepted = ", ".join(t.__name__ for t in cell.accepts)
            raise TypeError(f"actor {name!r} does not accept {message_type.__name__}; it accepts: {accepted}")
        return cell.ref

    def names(self) -> list[str]:
        return list(self.registry.cells)

    def schedule(self, delay: float, to: ActorRef[Any], message: Message) -> TimerHandle:
        """Tell `message` to `to` after `delay` seconds of clock time (type-checked now)."""
        to.check(message)
        handle: TimerHandle

        def deliver() -> None:
            self._timers.discard(handle)
            if self.stopping:
                self.dead_letters.record("undeliverable", to.name, message, "system stopping")
                return
            to.tell_soon(message)

        handle = self.clock.call_later(delay, deliver)
        self._timers.add(handle)
        return handle

    # -- switching actors off and on --------------------------------------------------------------
    def suspend(self, names: Iterable[str]) -> None:
        """Suspend actors by name: each finishes the message in hand, then takes no more until
        resumed. Mail sent to them meanwhile is kept (ticks coalesce to one), never dropped or
        dead-lettered; senders wait when a mailbox is full. A name not started yet starts
        suspended. Suspended actors count as idle, so a drain does not wait for them."""
        registry = self.registry
        for name in names:
            registry.suspended.add(name)
            cell = registry.cells.get(name)
            if cell is not None:
                cell.suspend()

    def resume(self, names: Iterable[str]) -> None:
        """Resume suspended actors: they process what waited for them, in order."""
        registry = self.registry
        for name in names:
            registry.suspended.discard(name)
            cell = registry.cells.get(name)
            if cell is not None:
                cell.resume()

    @property
    def suspended(self) -> frozenset[str]:
        return frozenset(self.registry.suspended)

    # -- what actors found outside ------------------------------------------------------------------
    def report_dependency(self, name: str, *, ok: bool, detail: str = "", actor: str = "") -> None:
        """Keep what an actor last found of an outside dependency (``smtp:<profile>``,
        ``imap:<inbox>``, ``database``): health reads it. Cheap enough to call on every use."""
        now = self.clock.now()
        before = self._dependencies.get(name)
        if ok and before is not None and before.ok and before.detail == detail:
            # Unchanged and healthy: refresh only the time it was last seen working.
            self._dependencies[name] = before.model_copy(update={"at": now, "last_ok_at": now})
            return
        last_ok = now if ok else (before.last_ok_at if before is not None else None)
        self._dependencies[name] = DependencyStatus(
            name=name, ok=ok, detail=detail[:300], actor=actor, at=now, last_ok_at=last_ok
        )
        if before is None or before.ok != ok:
            log = self.log.info if ok else self.log.warning
            log("dependency " + ("ok" if ok else "failing"), dependency=name, detail=detail[:300], actor=actor)

    def dependencies(self) -> tuple[DependencyStatus, ...]:
        return tuple(self._dependencies[k] for k in sorted(self._dependencies))

    # -- messages built outside actors ----------------------------------------------------------
    def new_id(self) -> Any:
        import uuid

        return uuid.UUID(int=self._ids.getrandbits(128), version=4)

    def now(self) -> datetime:
        return self.clock.now()

    correlation_id = None

    def message(self, message_type: type[T], **fields: Any) -> T:
        """Build a message from outside any actor with ids and time from this system (replayable)."""
        from contracts.base import message_context

        token = message_context.set(self)
        try:
            return message_type(**fields)
        finally:
            message_context.reset(token)

    # -- observing ----------------------------------------------------------------------------
    async def settle(self) -> None:
        """Wait until no actor has anything to do (useful in tests)."""
        while True:
            await self.activity.wait_idle()
            for _ in range(3):
                await asyncio.sleep(0)
            if self.activity.active == 0:
                return

    def snapshot(self) -> SystemSnapshot:
        return self.message(
            SystemSnapshot,
            started_at=self.started_at or self.clock.now(),
            now=self.clock.now(),
            clock=self.clock.name,
            seed=self.seed,
            actors=tuple(cell.snapshot() for cell in self.registry.cells.values()),
            dead_letters=self.dead_letters.total,
            stopping=self.stopping,
            failure=self.failure,
            dependencies=self.dependencies(),
        )
