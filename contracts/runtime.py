"""Messages of the actor runtime itself: ticks, dead letters and health snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from contracts.base import Event, Message

CONTRACT_VERSION = 1


class RuntimeMessage(Message):
    contract_version: int = CONTRACT_VERSION


class Tick(Event):
    """Emitted by the clock actor at the configured interval."""

    contract_version: int = CONTRACT_VERSION
    seq: int
    at: datetime
    interval_s: float


DeadLetterKind = Literal["refused", "undeliverable", "poison", "shutdown"]


class DeadLetter(Event):
    """A message that could not be delivered or processed."""

    contract_version: int = CONTRACT_VERSION
    kind: DeadLetterKind
    actor: str
    message_type: str
    payload: str
    error: str
    at: datetime


class ActorStats(BaseModel):
    """Counters of one actor (across all its incarnations)."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: Literal["starting", "running", "restarting", "stopped", "failed", "suspended"]
    processed: int
    failed: int
    restarts: int
    mailbox_depth: int
    mailbox_high_water: int
    mailbox_capacity: int
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    #: When it last processed a message without raising, and last raised (and what).
    last_ok_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    #: When its latest restarts happened (the last few), for "restarts within the window".
    recent_restarts: tuple[datetime, ...] = ()
    #: Dead letters addressed to it since the system started, and when the last one was.
    dead_letters: int = 0
    last_dead_letter_at: datetime | None = None


class DependencyStatus(BaseModel):
    """What an actor last found of something outside the process it needs (an SMTP server,
    an IMAP server, the database): reported by the actor, kept by the system."""

    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    detail: str
    actor: str
    at: datetime
    #: When it was last found working (None: never since the start).
    last_ok_at: datetime | None = None


class SystemSnapshot(RuntimeMessage):
    """Everything `python run.py status` shows."""

    started_at: datetime
    now: datetime
    clock: str
    seed: int
    actors: tuple[ActorStats, ...]
    dead_letters: int
    stopping: bool
    failure: str | None = None
    dependencies: tuple[DependencyStatus, ...] = ()
