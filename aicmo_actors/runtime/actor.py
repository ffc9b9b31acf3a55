"""`Actor[Msg]`: subclass it, declare what it accepts, implement `receive`."""

from __future__ import annotations

import random
import types
import typing
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, get_args, get_origin

import structlog

from aicmo_actors.runtime import killpoints
from contracts.base import Event, Message

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
    """What an actor may touch: its name, the clock, its seeded random source, the system."""

    __slots__ = ("_cell", "_log")

    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        self._log: Any = None

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

    def schedule(
        self, delay: float, message: Message, to: ActorRef[Any] | None = None
    ) -> TimerHandle:
        """Tell `message` to `to` (default: this actor) after `delay` seconds of clock time."""
        return self._cell.system.schedule(delay, to or self._cell.ref, message)
