"""`ActorRef`: how anyone talks to an actor. It owns the mailbox, so mail survives restarts."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aicmo_actors.runtime import killpoints
from aicmo_actors.runtime.activity import released
from aicmo_actors.runtime.errors import AskTimeout
from aicmo_actors.runtime.mailbox import Envelope, MailboxClosed
from contracts.runtime import Tick

if TYPE_CHECKING:
    from aicmo_actors.runtime.cell import Cell

M = TypeVar("M")
R = TypeVar("R")


class ActorRef(Generic[M]):
    """A typed handle on a named actor.

    Every way in (`tell`, `try_tell`, `tell_soon`, `ask`) queues through `Mailbox.offer`;
    when the mailbox is full, all but `try_tell` wait their turn the same way.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def accepts(self) -> tuple[type, ...]:
        return self._cell.accepts

    def __repr__(self) -> str:
        return f"<ActorRef {self._cell.name}>"

    def check(self, message: object) -> None:
        """Raise `TypeError` (and record a refused dead letter) unless the actor accepts it."""
        if not isinstance(message, self._cell.accepts):
            self._cell.refuse_type(message)

    async def tell(self, message: M) -> None:
        """Queue `message`, waiting while the mailbox is full (backpressure)."""
        if killpoints.hook is not None:
            await killpoints.checkpoint(killpoints.TELL)
        cell = self._cell
        if not isinstance(message, cell.accepts):
            cell.refuse_type(message)
        if cell.suspended and type(message) is Tick and cell.holds_tick(Tick):
            return  # a suspended actor keeps one tick, not a pile of them
        envelope = (message, None)
        if not cell.mailbox.offer(envelope):
            await self._queue_when_room(envelope)

    def try_tell(self, message: M) -> bool:
        """Queue `message` if there is room now; False (and a dead letter) otherwise."""
        cell = self._cell
        if not isinstance(message, cell.accepts):
            cell.refuse_type(message)
        mailbox = cell.mailbox
        if mailbox.offer((message, None)):
            return True
        reason = "actor stopped" if mailbox.closed else f"mailbox full ({mailbox.capacity})"
        cell.system.dead_letters.record("refused", cell.name, message, reason)
        return False

    def tell_soon(self, message: M) -> None:
        """Queue `message` from synchronous code (a timer): at once if there is room, else
        from a task the system owns, which waits for room as `tell` does."""
        cell = self._cell
        if not isinstance(message, cell.accepts):
            cell.refuse_type(message)
        if cell.suspended and type(message) is Tick and cell.holds_tick(Tick):
            return
        envelope = (message, None)
        if not cell.mailbox.offer(envelope):
            cell.system.registry.create_task(self._queue_when_room(envelope), f"deliver:{cell.name}")

    async def ask(self, message: M, *, timeout: float = 5.0, expect: type[R] | None = None) -> Any:
        """Send `message` and wait for `receive`'s return value.

        Raises `AskTimeout` (naming the actor and the message type) after `timeout` seconds
        of clock time, `MessageUndeliverable` if the message is dead-lettered, and
        `TypeError` if `expect` is given and the reply is not of that type.
        """
        cell = self._cell
        if not isinstance(message, cell.accepts):
            cell.refuse_type(message)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        envelope = (message, reply)
        if not cell.mailbox.offer(envelope):
            await self._queue_when_room(envelope)

        def expire() -> None:
            if not reply.done():
                reply.set_exception(AskTimeout(cell.name, type(message).__name__, timeout))

        handle = cell.system.clock.call_later(timeout, expire)
        try:
            # Waiting for another actor is not work: our unit of activity is given back meanwhile.
            with released():
                result = await reply
        finally:
            handle.cancel()
        if expect is not None and not isinstance(result, expect):
            raise TypeError(
                f"actor {cell.name!r} answered {type(message).__name__} with "
                f"{type(result).__name__}, expected {expect.__name__}"
            )
        return result

    async def _queue_when_room(self, envelope: Envelope) -> None:
        """Wait in line for room, then queue; mail for a stopped actor becomes a dead letter
        (and fails the `ask` waiting on it)."""
        cell = self._cell
        try:
            await cell.mailbox.put(envelope)
        except MailboxClosed:
            message, reply = envelope
            cell.system.registry.undeliverable(cell.name, message, reply, "actor stopped")
