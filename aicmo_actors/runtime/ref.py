"""`ActorRef`: how anyone talks to an actor. It owns the mailbox, so mail survives restarts."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aicmo_actors.runtime import killpoints
from aicmo_actors.runtime.activity import current_holder
from aicmo_actors.runtime.errors import AskTimeout
from aicmo_actors.runtime.mailbox import MailboxClosed

if TYPE_CHECKING:
    from aicmo_actors.runtime.cell import Cell

M = TypeVar("M")
R = TypeVar("R")


class ActorRef(Generic[M]):
    """A typed handle on a named actor."""

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

    async def tell(self, message: M) -> None:
        """Queue `message`, waiting while the mailbox is full (backpressure)."""
        if killpoints.hook is not None:
            await killpoints.checkpoint(killpoints.TELL)
        cell = self._cell
        if not isinstance(message, cell.accepts):
            cell.refuse_type(message)
        mailbox = cell.mailbox
        envelope = (message, None)
        try:
            if not mailbox.offer(envelope):
                await mailbox.put(envelope)
        except MailboxClosed:
            cell.system.dead_letters.record("undeliverable", cell.name, message, "actor stopped")

    def try_tell(self, message: M) -> bool:
        """Queue `message` if there is room now; False (and a dead letter) otherwise."""
        cell = self._cell
        if not isinstance(message, cell.accepts):
            cell.refuse_type(message)
        try:
            if cell.mailbox.offer((message, None)):
                return True
            reason = f"mailbox full ({cell.mailbox.capacity})"
        except MailboxClosed:
            reason = "actor stopped"
        cell.system.dead_letters.record("refused", cell.name, message, reason)
        return False

    async def ask(self, message: M, *, timeout: float = 5.0, expect: type[R] | None = None) -> Any:
        """Send `message` and wait for `receive`'s return value.

        Raises `AskTimeout` (naming the actor and the message type) after `timeout` seconds
        of clock time, `MessageUndeliverable` if the message is dead-lettered, and
        `TypeError` if `expect` is given and the reply is not of that type.
        """
        cell = self._cell
        if not isinstance(message, cell.accepts):
            cell.refuse_type(message)
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        envelope = (message, reply)
        mailbox = cell.mailbox
        try:
            if not mailbox.offer(envelope):
                await mailbox.put(envelope)
        except MailboxClosed:
            cell.system.dead_letters.record("undeliverable", cell.name, message, "actor stopped")
            raise

        def expire() -> None:
            if not reply.done():
                reply.set_exception(AskTimeout(cell.name, type(message).__name__, timeout))

        handle = cell.system.clock.call_later(timeout, expire)
        holder = current_holder.get()
        if holder is not None and holder.holding:
            # Waiting for another actor is not work: give our unit of activity back meanwhile.
            holder.holding = False
            holder.activity.release()
            try:
                result = await reply
            finally:
                holder.activity.acquire()
                holder.holding = True
                handle.cancel()
        else:
            try:
                result = await reply
            finally:
                handle.cancel()
        if expect is not None and not isinstance(result, expect):
            raise TypeError(
                f"actor {cell.name!r} answered {type(message).__name__} with "
                f"{type(result).__name__}, expected {expect.__name__}"
            )
        return result
