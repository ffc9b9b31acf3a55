"""Contract messages: the only things actors may send each other.

One file per module, each with its own ``CONTRACT_VERSION``. Import the module you need,
e.g. ``from contracts import cam``.
"""

from contracts.base import CONTRACT_VERSION, Event, Message

__all__ = ["CONTRACT_VERSION", "Event", "Message"]
