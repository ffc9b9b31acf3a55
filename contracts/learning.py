"""Learning: A/B variants chosen by a bandit, and the outcomes each sent variant led to.

- `BanditCampaign` (event, published by `cam.scheduler`): a campaign asks for a bandit (its
  `[bandit]` section): the reward window, burn-in and floor, and per step with variants the arms
  and their static weights from the campaign file. Published when a scheduler incarnation first
  sees the campaign (or its file changed); `learning.bandit` keeps the latest.
- `SetVariantWeights` (command, `learning.bandit` -> `cam.scheduler`): the allocation to use for
  new assignments of one step's variants, recorded once per idempotency key.
- `VariantWeightsComputed` (event): the same decision with the numbers behind it, for whoever
  watches (the simulation's invariants, the trace).
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.base import Event, Message

CONTRACT_VERSION = 2


class LearningMessage(Message):
    contract_version: int = CONTRACT_VERSION


class LearningEvent(Event):
    contract_version: int = CONTRACT_VERSION


def _check_weights(value: dict[str, float]) -> dict[str, float]:
    if not value:
        raise ValueError("at least one variant is needed")
    if any(not math.isfinite(w) or w < 0 for w in value.values()):
        raise ValueError("weights must be finite and >= 0")
    if sum(value.values()) <= 0:
        raise ValueError("the weights must not all be 0")
    return value


class BanditStep(BaseModel):
    """One step of a bandit campaign that has variants: its arms and the file's own weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: 1-based, as in `SendEmail.step`.
    step: int = Field(ge=1)
    #: Variant name -> the campaign file's weight ("A" is the step's own text).
    weights: dict[str, float]

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_weights(value)


class BanditCampaign(LearningEvent):
    """A campaign whose variants a bandit chooses (cam.scheduler -> whoever learns)."""

    campaign: str
    #: A send counts as a success when a positive reply arrives within this many days, as a
    #: failure once the window closed without one, and as neither before.
    window_days: float = Field(gt=0)
    #: No reweighting until every arm of a step has this many decided sends.
    burn_in: int = Field(ge=1)
    #: The least share of new assignments any arm keeps.
    floor: float = Field(ge=0, lt=1)
    steps: tuple[BanditStep, ...] = ()


class SetVariantWeights(LearningMessage):
    """learning -> cam.scheduler: new assignments of `campaign`'s `step` use these weights.

    Recorded once per `idempotency_key` (told again after a crash, recorded once)."""

    campaign: str
    step: int = Field(ge=1)
    weights: dict[str, float]
    #: When the weights were computed (the learner's clock).
    as_of: datetime
    idempotency_key: str

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_weights(value)


class ArmStats(BaseModel):
    """One variant's numbers at a decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: str
    sends: int
    successes: int
    failures: int
    #: The Monte Carlo share of draws in which this arm was the best.
    p_best: float


class VariantWeightsComputed(LearningEvent):
    """The bandit decided a step's allocation (written first, then told to cam.scheduler)."""

    campaign: str
    step: int
    weights: dict[str, float]
    as_of: datetime
    idempotency_key: str
    #: True while some arm has fewer than burn_in decided sends: the campaign's own weights
    #: (with the floor), no reweighting.
    burn_in: bool
    floor: float
    arms: tuple[ArmStats, ...] = ()
