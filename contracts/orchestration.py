"""Orchestration: what a module says of itself (its declaration in the module registry),
the switches, and (to come, issue 18) the project saga from onboarding to delivery."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class ModuleSpec(BaseModel):
    """A module's declaration, made once by the module (`<module>/module.py`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    #: Every actor it runs (names as registered), and its contracts' version.
    actors: tuple[str, ...]
    contract_version: int
    #: Message types its actors take, and events it publishes (by name).
    consumes: tuple[str, ...] = ()
    emits: tuple[str, ...] = ()
    #: Whether it may be switched off, and which of its actors stop when it is (the others,
    #: such as a public unsubscribe endpoint, keep serving).
    can_disable: bool = True
    switchable: tuple[str, ...] = ()
    #: The actors that send to the outside world on the agency's behalf: paused with the worker.
    sending: tuple[str, ...] = ()
    #: Modules whose work this one needs: switching one of them off stops this one's work too.
    needs: tuple[str, ...] = ()
    #: What stops, in words, when it is switched off.
    stops: str = ""


class OrchestrationMessage(Message):
    contract_version: int = CONTRACT_VERSION


class OrchestrationEvent(Event):
    contract_version: int = CONTRACT_VERSION


class ApplySwitches(OrchestrationMessage):
    """Read the switches again and apply them now (sent after a change through the API)."""


class SwitchesApplied(OrchestrationEvent):
    """The set of suspended actors changed."""

    disabled: tuple[str, ...]
    worker_paused: bool
    suspended: tuple[str, ...]


# -- the project saga (a first vocabulary; it grows, versioned, with issue 18) ---------------------
class StartProject(OrchestrationMessage):
    client_ref: uuid.UUID
    contact_email: str


class SagaStepCompleted(OrchestrationEvent):
    project_id: uuid.UUID
    step: str


class SagaCompensating(OrchestrationEvent):
    project_id: uuid.UUID
    failed_step: str
    reason: str


class ProjectCompleted(OrchestrationEvent):
    project_id: uuid.UUID
