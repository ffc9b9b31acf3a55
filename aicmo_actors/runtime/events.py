"""The event stream: actors publish contract events, others subscribe by type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aicmo_actors.runtime.ref import ActorRef
from contracts.base import Event


class EventStream:
    """Publish/subscribe by event type (a subscription to a base class gets its subclasses)."""

    def __init__(self) -> None:
        self._subscriptions: dict[type[Event], list[ActorRef[Any]]] = {}
        self._resolved: dict[type[Event], tuple[ActorRef[Any], ...]] = {}
        self._taps: list[Callable[[Event], None]] = []

    def subscribe(self, event_type: type[Event], ref: ActorRef[Any]) -> None:
        if not any(issubclass(event_type, accepted) for accepted in ref.accepts):
            names = ", ".join(t.__name__ for t in ref.accepts)
            raise TypeError(f"actor {ref.name!r} cannot subscribe to {event_type.__name__}: it accepts {names}")
        refs = self._subscriptions.setdefault(event_type, [])
        if ref not in refs:
            refs.append(ref)
        self._resolved.clear()

    def unsubscribe(self, event_type: type[Event], ref: ActorRef[Any]) -> None:
        refs = self._subscriptions.get(event_type, [])
        if ref in refs:
            refs.remove(ref)
        self._resolved.clear()

    def tap(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call `listener` synchronously with every published event; returns an untap function."""
        self._taps.append(listener)
        return lambda: self._taps.remove(listener)

    def subscribers(self, event_type: type[Event]) -> tuple[ActorRef[Any], ...]:
        resolved = self._resolved.get(event_type)
        if resolved is None:
            found: list[ActorRef[Any]] = []
            for base in event_type.__mro__:
                for ref in self._subscriptions.get(base, ()):
                    if ref not in found:
                        found.append(ref)
            resolved = self._resolved[event_type] = tuple(found)
        return resolved

    async def publish(self, event: Event) -> None:
        """Deliver to every subscriber, waiting on full mailboxes (backpressure)."""
        for listener in self._taps:
            listener(event)
        for ref in self.subscribers(type(event)):
            await ref.tell(event)
