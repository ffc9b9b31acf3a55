"""The actor runtime: actors, mailboxes, supervision, clocks, the event stream."""

from aicmo_actors.runtime.actor import Actor, ActorContext
from aicmo_actors.runtime.clock import Clock, FakeClock, RealClock
from aicmo_actors.runtime.clock_actor import CLOCK_ACTOR, ClockActor
from aicmo_actors.runtime.errors import (
    ActorNotFound,
    AskTimeout,
    MessageUndeliverable,
    SupervisorGaveUp,
    SystemFailed,
)
from aicmo_actors.runtime.ref import ActorRef
from aicmo_actors.runtime.settings import RuntimeSettings
from aicmo_actors.runtime.supervisor import ChildSpec, SupervisorSpec
from aicmo_actors.runtime.system import ActorSystem

__all__ = [
    "CLOCK_ACTOR",
    "Actor",
    "ActorContext",
    "ActorNotFound",
    "ActorRef",
    "ActorSystem",
    "AskTimeout",
    "ChildSpec",
    "Clock",
    "ClockActor",
    "FakeClock",
    "MessageUndeliverable",
    "RealClock",
    "RuntimeSettings",
    "SupervisorGaveUp",
    "SupervisorSpec",
    "SystemFailed",
]
