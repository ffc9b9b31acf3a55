"""Dead letters: refused, undeliverable and poison messages, counted, logged and kept."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from contracts.runtime import DeadLetter, DeadLetterKind

if TYPE_CHECKING:
    from aicmo_actors.runtime.system import ActorSystem


def _payload(message: object) -> str:
    if isinstance(message, BaseModel):
        try:
            return message.model_dump_json()
        except Exception:  # a payload that cannot be serialised must not hide the letter
            pass
    return repr(message)[:10_000]


class DeadLetters:
    """The last N dead letters in memory, counters by kind, and listeners (e.g. persistence)."""

    def __init__(self, system: ActorSystem, keep: int) -> None:
        self._system = system
        self.recent: deque[DeadLetter] = deque(maxlen=keep)
        self.counts: Counter[str] = Counter()
        self._listeners: list[Callable[[DeadLetter], None]] = []

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def listen(self, listener: Callable[[DeadLetter], None]) -> None:
        self._listeners.append(listener)

    def record(self, kind: DeadLetterKind, actor: str, message: object, error: str) -> DeadLetter:
        letter = DeadLetter(
            kind=kind,
            actor=actor,
            message_type=type(message).__name__,
            payload=_payload(message),
            error=error,
            at=self._system.clock.now(),
        )
        self.recent.append(letter)
        self.counts[kind] += 1
        cell = self._system.registry.cells.get(actor)
        if cell is not None:
            cell.counters.record_dead_letter(letter.at)
        self._system.log.warning("dead letter", kind=kind, target=actor, message_type=letter.message_type, error=error)
        for listener in self._listeners:
            listener(letter)
        return letter
