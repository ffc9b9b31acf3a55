"""The common base of every contract message: identity, correlation and a clock timestamp.

Messages are frozen pydantic v2 models. Inside an actor system the defaults come from
the runtime: ids from the seeded random source, the timestamp from the system clock and
the correlation id from the message being processed, so a simulated run replays exactly.
Outside a system (a CLI command, a script) they fall back to uuid4 and the wall clock.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

CONTRACT_VERSION = 1


class MessageContext(Protocol):
    """What the runtime provides to fill a new message's defaults."""

    def new_id(self) -> uuid.UUID: ...

    def now(self) -> datetime: ...

    @property
    def correlation_id(self) -> uuid.UUID | None: ...


message_context: ContextVar[MessageContext | None] = ContextVar("aicmo_message_context", default=None)


def _new_id() -> uuid.UUID:
    ctx = message_context.get()
    return ctx.new_id() if ctx is not None else uuid.uuid4()


def _now() -> datetime:
    ctx = message_context.get()
    # Outside a running system (CLI, scripts) there is no clock to ask: wall time is right there.
    return ctx.now() if ctx is not None else datetime.now(UTC)


class Message(BaseModel):
    """Base of every message an actor may receive or publish."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_version: int = CONTRACT_VERSION
    message_id: uuid.UUID = Field(default_factory=_new_id)
    correlation_id: uuid.UUID | None = None
    timestamp: datetime = Field(default_factory=_now)

    @model_validator(mode="before")
    @classmethod
    def _fill_correlation(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("correlation_id") is None:
            ctx = message_context.get()
            current = ctx.correlation_id if ctx is not None else None
            if current is not None:
                data = {**data, "correlation_id": current}
        return data

    @property
    def correlation(self) -> uuid.UUID:
        """The correlation id, or this message's own id when it starts a conversation."""
        return self.correlation_id or self.message_id


class Event(Message):
    """A message published on the event stream rather than told to one actor."""
