"""A bounded FIFO of envelopes, owned by an actor's reference (it outlives restarts)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from aicmo_actors.runtime.activity import released

#: (message, reply future or None). A tuple keeps the hot path cheap.
Envelope = tuple[Any, "asyncio.Future[Any] | None"]


class MailboxClosed(Exception):
    """The actor behind this mailbox has stopped for good."""


class Mailbox:
    """Bounded FIFO: `put` waits while full, `offer` refuses at once (and when closed).

    The head message stays in the mailbox until it was processed, so when an actor crashes
    on it, its replacement sees it again (up to the poison threshold).
    """

    __slots__ = (
        "_getter",
        "_putters",
        "capacity",
        "closed",
        "high_water",
        "items",
        "on_wake",
    )

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        # The deque is made on first mail: an empty deque costs ~600 bytes, and an actor
        # system may hold a hundred thousand idle actors.
        self.items: deque[Envelope] | tuple[()] = ()
        self.high_water = 0
        self.closed = False
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] | None = None
        # Called when a waiting consumer is woken by new mail (the cell takes activity).
        self.on_wake: Any = None

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, envelope: Envelope, *, waited: bool = False) -> bool:
        """Append if the mailbox is open, has room and nobody waits before us; never waits.

        The one way mail enters a mailbox: `put` comes here too once its turn has come
        (`waited`: the producers still waiting are behind it).
        """
        items = self.items
        if self.closed or len(items) >= self.capacity or (self._putters and not waited):
            return False
        if not isinstance(items, deque):
            items = self.items = deque()
        items.append(envelope)
        if len(items) > self.high_water:
            self.high_water = len(items)
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                if self.on_wake is not None:
                    self.on_wake()
                getter.set_result(None)
        return True

    async def put(self, envelope: Envelope) -> None:
        """Append, waiting (in FIFO order with other producers) while the mailbox is full.

        Raises `MailboxClosed` if the mailbox is closed, or closes while we wait.
        """
        if self.offer(envelope):
            return
        if self.closed:
            raise MailboxClosed
        if self._putters is None:
            self._putters = deque()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._putters.append(waiter)
        try:
            with released():
                while True:
                    await waiter
                    if self.closed:
                        raise MailboxClosed
                    if self.offer(envelope, waited=True):
                        break
                    waiter = asyncio.get_running_loop().create_future()
                    self._putters.appendleft(waiter)
        except BaseException:
            if waiter in self._putters:
                self._putters.remove(waiter)
            self._wake_putter()
            raise
        if waiter in self._putters:
            self._putters.remove(waiter)
        self._wake_putter()

    def pop_head(self) -> Envelope:
        """Remove the processed head message and let a waiting producer in."""
        envelope = self.items.popleft()  # type: ignore[union-attr]
        if self._putters:
            self._wake_putter()
        return envelope

    def _wake_putter(self) -> None:
        putters = self._putters
        if not putters or len(self.items) >= self.capacity:
            return
        for waiter in putters:
            if not waiter.done():
                waiter.set_result(None)
                return

    def waiter(self) -> asyncio.Future[None]:
        """A future resolved when mail arrives (or the mailbox is closed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._getter = future
        return future

    def wake_consumer(self) -> None:
        """Wake a consumer that waits for mail, e.g. to tell it to stop."""
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    def close(self) -> list[Envelope]:
        """Refuse all further mail; return what was still queued and wake everyone."""
        self.closed = True
        left = list(self.items)
        self.items = ()
        self.wake_consumer()
        if self._putters:
            for waiter in self._putters:
                if not waiter.done():
                    waiter.set_result(None)
        return left

    def reopen(self) -> None:
        self.closed = False
