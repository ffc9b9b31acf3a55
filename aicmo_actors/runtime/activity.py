"""Who is working right now: the basis of draining and of the fake clock's auto-jump.

A unit of activity is held by an actor that has mail to process (from the moment mail
arrives until its mailbox is empty again). Waiting on a runtime primitive (the clock, a
full mailbox, a reply) gives the unit back for as long as the wait lasts, so "every
actor idle" means nothing can happen until time moves.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar


class Activity:
    """A counter of active actors with a way to wait for zero."""

    __slots__ = ("_idle_waiters", "active")

    def __init__(self) -> None:
        self.active = 0
        self._idle_waiters: list[asyncio.Future[None]] = []

    def acquire(self) -> None:
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        if self.active == 0 and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_idle(self) -> None:
        """Return once no actor holds a unit of activity."""
        while self.active > 0:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter


class Holder:
    """Something that may hold one unit of activity (an actor's cell)."""

    __slots__ = ("activity", "holding")

    def __init__(self, activity: Activity) -> None:
        self.activity = activity
        self.holding = False


current_holder: ContextVar[Holder | None] = ContextVar("aicmo_activity_holder", default=None)


class released:
    """Give the current task's unit of activity back while it waits on the runtime.

    A small class (named like `contextlib.suppress`) rather than a generator function:
    `ask` enters one on every call, and this is the cheaper of the two.
    """

    __slots__ = ("_holder",)

    def __enter__(self) -> None:
        holder = current_holder.get()
        if holder is None or not holder.holding:
            self._holder = None
            return
        self._holder = holder
        holder.holding = False
        holder.activity.release()

    def __exit__(self, *exc_info: object) -> None:
        holder = self._holder
        if holder is not None:
            holder.activity.acquire()
            holder.holding = True
