"""Orchestration: what a module says of itself (its declaration in the module registry),
the switches, and the project saga from a signed deal through onboarding and strategy."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Message

CONTRACT_VERSION = 2


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


# -- the project saga ------------------------------------------------------------------------------
class ProjectOpened(OrchestrationEvent):
    """Orchestration has (or already had) the project of this deal: CAM stops publishing
    `ClientSigned` for it."""

    project_id: uuid.UUID
    deal_id: int


class ProjectStepChanged(OrchestrationEvent):
    """A project's saga moved: `step` is now `state` (see `orchestration.saga.STEPS`)."""

    project_id: uuid.UUID
    step: str
    state: str


class ProjectFinished(OrchestrationEvent):
    """The saga ended: `outcome` is "delivered" (onboarded, plan approved, the period's work
    delivered), "compensated" (cancelled or failed, every completed step undone) or "failed"."""

    project_id: uuid.UUID
    outcome: str
    reason: str = ""


class RenewalApplied(OrchestrationEvent):
    """Orchestration has (or already had) the deal's renewal `number`: CAM stops publishing
    `ContractRenewed` for it. `applied` False: the project was cancelled, nothing was extended
    (`detail` says why). Version 2."""

    deal_id: int
    number: int
    project_id: uuid.UUID
    applied: bool = True
    detail: str = ""
