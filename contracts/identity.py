"""Identity: who may issue which command.

A first, deliberately small vocabulary: enough to wire the module's actor; it grows,
versioned, as the module does.
"""

from __future__ import annotations

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class IdentityMessage(Message):
    contract_version: int = CONTRACT_VERSION


class IdentityEvent(Event):
    contract_version: int = CONTRACT_VERSION


class Authorize(IdentityMessage):
    principal: str
    action: str
    resource: str = ""


class AuthorizationDecision(IdentityMessage):
    principal: str
    action: str
    allowed: bool
    reason: str = ""
