"""OTP-style supervision: child specs as data, restart types, strategies, restart intensity.

Words and semantics follow Erlang/OTP's `supervisor`: a child is `permanent` (always
restarted), `transient` (restarted only after an abnormal exit) or `temporary` (never);
`one_for_one` restarts the failed child, `one_for_all` all children, `rest_for_one` the
failed child and those started after it. More than `max_restarts` restarts within `period`
seconds and the supervisor stops its children and fails; its parent decides what follows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aicmo_actors.runtime.activity import Holder, current_holder
from aicmo_actors.runtime.actor import Actor
from aicmo_actors.runtime.cell import Cell, seeded_random
from aicmo_actors.runtime.errors import SupervisorGaveUp

if TYPE_CHECKING:
    from aicmo_actors.runtime.registry import Registry
    from aicmo_actors.runtime.system import ActorSystem

Restart = Literal["permanent", "transient", "temporary"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]


@dataclass(frozen=True)
class ChildSpec:
    """An actor child: its name, how to build it, and how to treat its exits."""

    id: str
    start: Callable[[], Actor[Any]]
    restart: Restart = "permanent"
    #: Seconds to let the actor finish its current message when stopped, then cancel.
    shutdown: float = 5.0
    mailbox_size: int | None = None
    #: Intake actors (clock, pollers, servers) are stopped first on shutdown.
    intake: bool = False


@dataclass(frozen=True)
class SupervisorSpec:
    """A supervisor child: its own children, strategy and restart intensity."""

    id: str
    children: Sequence[ChildSpec | SupervisorSpec] = field(default_factory=tuple)
    strategy: Strategy = "one_for_one"
    max_restarts: int = 3
    period: float = 5.0
    restart: Restart = "permanent"
    shutdown: float = 10.0
    intake: bool = False


class _Child:
    __slots__ = ("cell", "generation", "spec", "stopping", "supervisor", "task")

    def __init__(self, spec: ChildSpec | SupervisorSpec) -> None:
        self.spec = spec
        self.cell: Cell | None = None
        self.supervisor: Supervisor | None = None
        self.task: asyncio.Task[Any] | None = None
        self.generation = 0
        self.stopping = False


class StartFailed(Exception):
    """A child could not start (its `on_start` raised)."""


def backoff_delay(restart_number: int, base: float, cap: float, jitter: float) -> float:
    """Delay before the n-th restart in the current period: none for the first, then doubling.

    `jitter` is a number in [0, 1) from the seeded random source; it scales the delay by
    0.5..1.5 so that many actors failing together do not restart in lockstep.
    """
    if restart_number <= 1 or base <= 0:
        return 0.0
    delay: float = min(cap, base * 2.0 ** (restart_number - 2)) * (0.5 + jitter)
    return delay


class Supervisor:
    """Owns its children: starts them in order, watches them, restarts them, stops them.

    It reads the system's settings, clock and log; it registers children, runs their tasks
    and dead-letters their mail through the `registry` the system hands it.
    """

    def __init__(self, spec: SupervisorSpec, system: ActorSystem, registry: Registry, path: str) -> None:
        self.spec = spec
        self.system = system
        self.registry = registry
        self.name = path
        self.children: list[_Child] = []
        self._ids: set[str] = set()
        self._exits: asyncio.Queue[tuple[_Child, int, BaseException | None]] = asyncio.Queue()
        self._restarts: deque[float] = deque()
        self._rng = seeded_random(system.seed, "supervisor", path)
        self.restart_count = 0
        # An exit waiting to be handled is work: settle() and the fake clock wait for it.
        self._holder = Holder(system.activity)
        self._closed = False
        # Units of activity held for exits waiting in `_exits` (each one keeps the fake clock
        # from jumping before it is handled), except while a restart backs off: then time must
        # move, and the exits waiting behind it take their units again when it wakes.
        self._held_exits = 0
        self._backing_off = False

    # -- starting ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every child in order; if one fails, stop those already started and raise."""
        for spec in self.spec.children:
            await self.add_child(spec)

    async def add_child(self, spec: ChildSpec | SupervisorSpec) -> _Child:
        if spec.id in self._ids:
            raise ValueError(f"supervisor {self.name!r} already has a child {spec.id!r}")
        child = _Child(spec)
        self.children.append(child)
        self._ids.add(spec.id)
        try:
            await self._start(child, initial=True)
        except BaseException:
            self.children.remove(child)
            self._ids.discard(spec.id)
            await self.stop()
            raise
        return child

    async def _start(self, child: _Child, *, initial: bool = False) -> None:
        system = self.system
        registry = self.registry
        spec = child.spec
        child.stopping = False
        child.generation += 1
        generation = child.generation
        if isinstance(spec, ChildSpec):
            actor = spec.start()
            if child.cell is None:
                child.cell = registry.register(spec, actor)
            cell = child.cell
            cell.stop_requested = False
            cell.status = "starting"
            started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cell.activity.acquire()
            cell.holding = True
            task = registry.create_task(cell.run(actor, started), f"actor:{spec.id}")
            child.task = task
            task.add_done_callback(lambda t: self._on_exit(child, generation, t))
            try:
                await started
            except Exception as exc:
                if initial:
                    raise StartFailed(f"actor {spec.id!r} failed to start: {exc!r}") from exc
                # On a restart the failure arrives as an exit and counts toward intensity.
        else:
            sub = Supervisor(spec, system, registry, f"{self.name}/{spec.id}")
            child.supervisor = sub
            try:
                await sub.start()
            except Exception as exc:
                if initial:
                    raise StartFailed(f"supervisor {spec.id!r} failed to start: {exc!r}") from exc
                sub_task = registry.create_task(_raise(exc), f"supervisor:{spec.id}")
            else:
                sub_task = registry.create_task(sub.run(), f"supervisor:{spec.id}")
            child.task = sub_task
            sub_task.add_done_callback(lambda t: self._on_exit(child, generation, t))

    def _on_exit(self, child: _Child, generation: int, task: asyncio.Task[Any]) -> None:
        error: BaseException | None
        if task.cancelled():
            error = asyncio.CancelledError()
        else:
            error = task.exception()
        if self._closed or child.stopping or generation != child.generation:
            return  # an exit we caused ourselves, or nobody left to handle it
        if not self._backing_off:
            self.system.activity.acquire()
            self._held_exits += 1
        self._exits.put_nowait((child, generation, error))

    # -- watching ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Watch children until stopped; raises `SupervisorGaveUp` when intensity is exceeded."""
        holder = self._holder
        current_holder.set(holder)
        try:
            while True:
                child, generation, error = await self._exits.get()
                if self._held_exits > 0:
                    self._held_exits -= 1  # the unit taken in _on_exit is now ours
                else:
                    holder.activity.acquire()  # it came while a restart backed off
                holder.holding = True
                try:
                    stale = generation != child.generation or child.stopping
                    if not stale and not self.system.stopping:
                        await self._handle_exit(child, error)
                finally:
                    if holder.holding:
                        holder.holding = False
                        holder.activity.release()
        finally:
            self._closed = True
            while not self._exits.empty():
                self._exits.get_nowait()
            for _ in range(self._held_exits):
                holder.activity.release()
            self._held_exits = 0

    async def _handle_exit(self, child: _Child, error: BaseException | None) -> None:
        spec = child.spec
        log = self.system.log
        abnormal = error is not None
        if abnormal:
            log.error(
                "child crashed",
                supervisor=self.name,
                child=spec.id,
                error=repr(error),
                exc_info=error,
            )
        else:
            log.info("child exited", supervisor=self.name, child=spec.id)
        if spec.restart == "temporary" or (spec.restart == "transient" and not abnormal):
            self._retire(child)
            return
        now = self.system.clock.monotonic()
        self._restarts.append(now)
        while self._restarts and self._restarts[0] < now - self.spec.period:
            self._restarts.popleft()
        if len(self._restarts) > self.spec.max_restarts:
            reason = f"more than {self.spec.max_restarts} restarts in {self.spec.period:g}s; last: {spec.id} {error!r}"
            log.error("supervisor gave up", supervisor=self.name, reason=reason)
            self._closed = True
            await self.stop()
            raise SupervisorGaveUp(self.name, reason)
        settings = self.system.settings
        delay = backoff_delay(len(self._restarts), settings.backoff_base_s, settings.backoff_max_s, self._rng.random())
        if delay > 0:
            await self._back_off(delay)
            if self.system.stopping:
                return
        self.restart_count += 1
        if self.spec.strategy == "one_for_one":
            group = [child]
        elif self.spec.strategy == "one_for_all":
            group = list(self.children)
        else:
            group = self.children[self.children.index(child) :]
        for other in reversed(group):
            if other is not child:
                await self._stop_child(other)
        for member in group:
            if member.cell is not None:
                member.cell.counters.record_restart(self.system.clock.now())
            await self._start(member)

    async def _back_off(self, delay: float) -> None:
        """Sleep before a restart, with the exits waiting behind it letting time move too:
        on a fake clock their units would otherwise keep it from ever reaching the end."""
        activity = self.system.activity
        for _ in range(self._held_exits):
            activity.release()
        self._held_exits = 0
        self._backing_off = True
        try:
            await self.system.clock.sleep(delay)
        finally:
            self._backing_off = False
            for _ in range(self._exits.qsize()):
                activity.acquire()
            self._held_exits = self._exits.qsize()

    def _retire(self, child: _Child) -> None:
        """A child that is not restarted: leave the tree; mail sent to it becomes dead letters."""
        if child in self.children:
            self.children.remove(child)
            self._ids.discard(child.spec.id)
        if child.cell is not None:
            child.cell.status = "stopped"
            for message, reply in child.cell.mailbox.close():
                self.registry.undeliverable(child.cell.name, message, reply, "actor exited")

    # -- stopping ---------------------------------------------------------------------------
    async def _stop_child(self, child: _Child) -> None:
        child.stopping = True
        task = child.task
        if child.supervisor is not None:
            await child.supervisor.stop()
        if child.cell is not None:
            child.cell.stop_requested = True
            child.cell.mailbox.wake_consumer()
        if task is not None and not task.done():
            if child.cell is None:
                task.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(task), child.spec.shutdown)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            except Exception:  # a crash while stopping is still a stop
                pass
        if child.cell is not None:
            child.cell.status = "stopped"

    async def stop_intake(self) -> None:
        for child in reversed(self.children):
            if child.spec.intake:
                await self._stop_child(child)
            elif child.supervisor is not None:
                await child.supervisor.stop_intake()

    async def stop(self) -> None:
        """Stop every child in reverse start order."""
        self._closed = True
        for child in reversed(self.children):
            await self._stop_child(child)

    def cells(self) -> list[Cell]:
        found: list[Cell] = []
        for child in self.children:
            if child.cell is not None:
                found.append(child.cell)
            if child.supervisor is not None:
                found.extend(child.supervisor.cells())
        return found


async def _raise(error: BaseException) -> None:
    raise error
