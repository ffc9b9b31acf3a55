"""The registry: the system's actors by name and the tasks it owns, as its supervisors see them.

The system owns one and hands it to every supervisor, so that a supervisor registers its
children, starts their tasks and dead-letters their mail without reaching into the system.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from aicmo_actors.runtime.cell import Cell
from aicmo_actors.runtime.errors import MessageUndeliverable
from contracts.runtime import DeadLetterKind

if TYPE_CHECKING:
    from aicmo_actors.runtime.actor import Actor
    from aicmo_actors.runtime.supervisor import ChildSpec
    from aicmo_actors.runtime.system import ActorSystem


class Registry:
    """Cells by actor name, and every task the system owns (cancelled when it stops)."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self.cells: dict[str, Cell] = {}
        #: Actors suspended by name, including ones not started yet (they start suspended).
        self.suspended: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def register(self, spec: ChildSpec, actor: Actor[Any]) -> Cell:
        """The cell for a child about to start: a new one, or the one a restart reuses."""
        existing = self.cells.get(spec.id)
        if existing is not None:
            if existing.status not in ("stopped", "restarting"):
                raise ValueError(f"an actor named {spec.id!r} already exists")
            # A restarted supervisor starts its children again: same name, same cell, same mail.
            existing.mailbox.reopen()
            return existing
        system = self._system
        accepts = type(actor).accepts
        capacity = spec.mailbox_size or type(actor).mailbox_size or system.settings.mailbox_size
        cell = Cell(system, spec.id, accepts, capacity)
        cell.suspended = spec.id in self.suspended
        self.cells[spec.id] = cell
        for event_type in type(actor).subscribes:
            system.events.subscribe(event_type, cell.ref)
        return cell

    def create_task(
        self,
        coro: Coroutine[Any, Any, Any],
        name: str,
        *,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        """Run `coro` as a task the system owns: cancelled and awaited when it stops."""
        task = asyncio.get_running_loop().create_task(coro, name=name, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()

    def undeliverable(
        self,
        actor: str,
        message: Any,
        reply: asyncio.Future[Any] | None,
        why: str,
        kind: DeadLetterKind = "undeliverable",
    ) -> None:
        """Dead-letter a message that will not be processed, and fail the `ask` waiting on it."""
        self._system.dead_letters.record(kind, actor, message, why)
        if reply is not None and not reply.done():
            reply.set_exception(MessageUndeliverable(f"{actor}: {why}"))
