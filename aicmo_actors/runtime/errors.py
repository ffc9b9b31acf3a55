"""Errors the runtime raises to its callers."""

from __future__ import annotations


class ActorSystemError(Exception):
    """Base of runtime errors."""


class AskTimeout(ActorSystemError, TimeoutError):
    """An `ask` got no reply in time."""

    def __init__(self, actor: str, message_type: str, timeout: float) -> None:
        super().__init__(f"actor {actor!r} did not answer {message_type} within {timeout:g}s")
        self.actor = actor
        self.message_type = message_type
        self.timeout = timeout


class ActorNotFound(ActorSystemError, LookupError):
    """No actor of that name is registered."""


class MessageUndeliverable(ActorSystemError):
    """The message could not be processed (actor stopped, or the message was poison)."""


class SupervisorGaveUp(ActorSystemError):
    """A supervisor exceeded its restart intensity; its parent decides what happens next."""

    def __init__(self, supervisor: str, reason: str) -> None:
        super().__init__(f"supervisor {supervisor!r} gave up: {reason}")
        self.supervisor = supervisor
        self.reason = reason


class SystemFailed(ActorSystemError):
    """The root supervisor gave up: the system stopped."""
