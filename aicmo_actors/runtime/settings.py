"""Runtime settings: one pydantic model, read from AICMO_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """What the actor runtime needs. The service's own settings extend this class."""

    model_config = SettingsConfigDict(env_prefix="AICMO_", extra="ignore", frozen=True)

    seed: int | None = Field(
        default=None,
        description="Seed of every random source; unset: drawn at start and logged, so a run can be replayed.",
    )
    tick_interval_s: float = Field(default=60.0, ge=0, description="Seconds between clock ticks (0: no clock actor).")
    mailbox_size: int = Field(default=1000, ge=1, description="Default mailbox capacity.")
    poison_threshold: int = Field(
        default=3,
        ge=1,
        description="A message that crashes its actor this many times in a row goes to dead letters.",
    )
    dead_letters_kept: int = Field(default=1000, ge=1, description="Dead letters kept in memory.")
    drain_timeout_s: float = Field(default=10.0, ge=0, description="On shutdown, how long to let mailboxes drain.")
    max_restarts: int = Field(default=5, ge=0, description="Root supervisor: restarts allowed...")
    restart_period_s: float = Field(default=30.0, gt=0, description="...within this many seconds.")
    backoff_base_s: float = Field(default=0.05, ge=0, description="Delay before a repeated restart.")
    backoff_max_s: float = Field(default=10.0, ge=0, description="Upper bound of the restart delay.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: readable on a terminal, JSON lines otherwise."
    )
