"""`Actor[Msg]`: subclass it, declare what it accepts, implement `receive`."""

from __future__ import annotations

import asyncio
import contextvars
import random
import types
import typing
import uuid
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, get_args, get_origin

import structlog

from aicmo_actors.runtime import killpoints
from aicmo_actors.runtime.activity import current_holder
from contracts.base import Event, Message, message_context

if TYPE_CHECKING:
    from aicmo_actors.runtime.cell import Cell
    from aicmo_actors.runtime.clock import Clock, TimerHandle
    from aicmo_actors.runtime.ref import ActorRef
    from aicmo_actors.runtime.system import ActorSystem

M = TypeVar("M", bound=Message)
T = TypeVar("T", bound=Message)


def _message_types(annotation: Any) -> tuple[type[Message], ...]:
    """Flatten `A | B | Union[C, D]` into a tuple of message classes."""
    if isinstance(annotation, types.UnionType) or get_origin(annotation) is typing.Union:
        found: list[type[Message]] = []
        for arg in get_args(annotation):
            found.extend(_message_types(arg))
        return tuple(found)
    if isinstance(annotation, type) and issubclass(annotation, Message):
        return (annotation,)
    return ()


class Actor(Generic[M]):
    """An actor: one message at a time, state in `self`, effects through `self.ctx`.

    ``class Sender(Actor[SendEmail | Tick])`` accepts exactly those types (and their
    subclasses); anything else is refused at `tell` time. `receive`'s return value is the
    reply to an `ask`. Raising crashes the actor: its supervisor decides what happens.
    """

    #: The contract types this actor's mailbox accepts (derived from `Actor[...]` if unset).
    accepts: ClassVar[tuple[type[Message], ...]] = ()
    #: Event types to subscribe to on the event stream when the actor is registered.
    subscribes: ClassVar[tuple[type[Event], ...]] = ()
    #: Mailbox capacity; None means the system default.
    mailbox_size: ClassVar[int | None] = None

    ctx: ActorContext
    _stop_requested: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "accepts" in cls.__dict__:
            return
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is Actor:
                found = _message_types(get_args(base)[0])
                if found:
                    cls.accepts = found
                    return

    async def on_start(self) -> None:
        """Called before the first message of each incarnation (after a restart too)."""

    async def receive(self, message: M) -> Any:
        """Handle one message. Return a reply for `ask`, raise to crash."""
        raise NotImplementedError(f"{type(self).__name__}.receive")

    async def on_stop(self) -> None:
        """Called when this incarnation ends (normal stop, shutdown or crash)."""

    def stop(self) -> None:
        """End this actor normally once the current message is done."""
        self._stop_requested = True


class ActorContext:
    """What an actor may touch: its name, the clock, its seeded random source, the system.

    There is one per incarnation: the tasks it spawns end with that incarnation.
    """

    __slots__ = ("_cell", "_crash", "_log", "_owner", "_tasks")

    def __init__(self, cell: Cell, owner: asyncio.Task[Any] | None) -> None:
        self._cell = cell
        self._log: Any = None
        # The incarnation's own task; None once it is ending (nothing left to crash).
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] | None = None
        # What a failed spawned task made of this incarnation, once one has failed.
        self._crash: RuntimeError | None = None

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def system(self) -> ActorSystem:
        return self._cell.system

    @property
    def clock(self) -> Clock:
        return self._cell.system.clock

    @property
    def random(self) -> random.Random:
        """This actor's own random source, seeded from the system seed and its name."""
        return self._cell.rng

    @property
    def log(self) -> Any:
        if self._log is None:
            self._log = structlog.get_logger("aicmo").bind(actor=self._cell.name)
        return self._log

    def report_dependency(self, name: str, *, ok: bool, detail: str = "") -> None:
        """Say what this actor just found of an outside dependency (health reads it)."""
        self._cell.system.report_dependency(name, ok=ok, detail=detail, actor=self._cell.name)

    @property
    def self_ref(self) -> ActorRef[Any]:
        return self._cell.ref

    @property
    def waiting(self) -> int:
        """How many messages are queued behind the one being processed."""
        return max(len(self._cell.mailbox) - 1, 0)

    def ref(self, name: str, message_type: type[T]) -> ActorRef[T]:
        return self._cell.system.ref(name, message_type)

    async def publish(self, event: Event) -> None:
        if killpoints.hook is not None:
            await killpoints.checkpoint(killpoints.PUBLISH)
        await self._cell.system.events.publish(event)

    def schedule(self, delay: float, message: Message, to: ActorRef[Any] | None = None) -> TimerHandle:
        """Tell `message` to `to` (default: this actor) after `delay` seconds of clock time."""
        return self._cell.system.schedule(delay, to or self._cell.ref, message)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run `coro` beside this incarnation: cancelled (and awaited) when it stops or is
        restarted; if it raises, the actor crashes and its supervisor decides.

        The task is not the actor: it holds no unit of activity (its waits do not keep a
        fake clock still), and the messages it builds take their ids from the actor's
        seeded source and no correlation id.
        """
        if self._owner is None:
            coro.close()
            raise RuntimeError(f"actor {self.name!r} has stopped: it cannot spawn {name!r}")
        cell = self._cell
        context = contextvars.copy_context()
        context.run(_detach, cell)
        task = cell.system.registry.create_task(coro, name or f"task:{cell.name}", context=context)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        if self._owner is None or self._crash is not None:
            # The incarnation is already ending or crashing: say so, there is nothing to crash.
            self.log.error("spawned task failed", task=task.get_name(), exc_info=error)
            return
        # Crash the actor wherever it is: its task is cancelled, and `_crash_cause` tells
        # the cell that this cancellation is the crash.
        crash = RuntimeError(f"task {task.get_name()!r} of actor {self.name!r} failed: {error!r}")
        crash.__cause__ = error
        self._crash = crash
        self._owner.cancel()

    def _crash_cause(self, error: BaseException) -> RuntimeError | None:
        """The crash a failed spawned task caused, if that is why `error` (a cancellation)
        ends this incarnation; None otherwise."""
        crash = self._crash
        if crash is None or not isinstance(error, asyncio.CancelledError):
            return None
        owner = self._owner
        if owner is not None and owner.cancelling():
            owner.uncancel()  # our own cancellation: the task goes on to handle the crash
        return crash

    async def _stop_tasks(self) -> None:
        """The incarnation is ending: cancel the tasks it spawned and wait until they end."""
        self._owner = None
        tasks = self._tasks
        if tasks:
            for task in tasks:
                task.cancel()
            await asyncio.wait(list(tasks))


class _TaskMessages:
    """Defaults of messages built in a spawned task: the actor's seeded ids and its clock,
    and no correlation id (the task is not processing a message)."""

    __slots__ = ("_cell",)

    correlation_id = None

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    def new_id(self) -> uuid.UUID:
        return self._cell.new_id()

    def now(self) -> datetime:
        return self._cell.now()


def _detach(cell: Cell) -> None:
    """Set up a spawned task's context: not the actor's holder of activity, nor its messages."""
    current_holder.set(None)
    message_context.set(_TaskMessages(cell))
