"""The service's settings: one pydantic model read from AICMO_* environment variables (and `.env`).

Secrets (SMTP/IMAP passwords, the unsubscribe HMAC key) come only from here, never from
campaign files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from aicmo_actors.runtime.settings import RuntimeSettings

Tls = Literal["none", "starttls", "implicit"]


class TransportProfile(BaseModel):
    """How a sending mailbox delivers: to a Maildir folder (default) or an SMTP server.

    A campaign names its transport (`transport = "default"`); the secrets live here.
    e.g. AICMO_TRANSPORTS='{"default": {"kind": "smtp", "host": "smtp.example.com",
    "port": 587, "username": "alex", "password": "...", "tls": "starttls"}}'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["maildir", "smtp"] = "maildir"
    path: Path = Path("mail/outbox")
    host: str = "localhost"
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    tls: Tls = "starttls"
    timeout_s: float = 30.0
    ca_file: Path | None = None  # PEM of a private CA or self-signed server certificate to trust
    validate_certs: bool = True  # False trusts any certificate: for a test server only


class InboxProfile(BaseModel):
    """Where replies arrive: a Maildir folder (default) or an IMAP mailbox."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["maildir", "imap"] = "maildir"
    path: Path = Path("mail/inbox")
    host: str = "localhost"
    port: int = 993
    username: str | None = None
    password: SecretStr | None = None
    tls: Tls = "implicit"
    folder: str = "INBOX"
    timeout_s: float = 30.0


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(RuntimeSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="AICMO_", env_file=".env", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///./aicmo.db",
        description="sqlite+aiosqlite:///FILE (default) or postgresql+asyncpg://USER@HOST/DB",
    )
    state_dir: Path = Field(default=Path(".aicmo"), description="where the service writes status.json")
    status_interval_s: float = Field(default=2.0, gt=0, description="how often status.json is refreshed")
    lease_ttl_s: float = Field(
        default=15.0, gt=0, description="worker lease time: a standby takes over this long after the active worker dies"
    )

    transports: dict[str, TransportProfile] = Field(
        default_factory=lambda: {"default": TransportProfile()},
        description="sending transports by name (JSON); default: Maildir ./mail/outbox",
    )
    inboxes: dict[str, InboxProfile] = Field(
        default_factory=lambda: {"default": InboxProfile()},
        description="reply inboxes by name (JSON); default: Maildir ./mail/inbox",
    )
    send_max_attempts: int = Field(default=5, ge=1, description="temporary SMTP failures retried up to this many attempts")
    send_retry_base_s: float = Field(default=300.0, ge=0, description="first retry delay; doubles each attempt")
    scheduler_batch: int = Field(default=500, ge=1, description="due leads taken per tick")
    inbox_batch: int = Field(default=100, ge=1, description="messages fetched per IMAP round trip")
    inbox_poll_offset_s: float = Field(
        default=0.0,
        ge=0,
        description="poll the inboxes this long after each tick instead of with it (the simulation "
        "uses half a tick, so reading replies and scheduling never race at one instant)",
    )

    pause_hard_bounce_rate: float = Field(default=0.03, ge=0, le=1, description="auto-pause a campaign above this hard-bounce rate ...")
    pause_min_sends: int = Field(default=50, ge=1, description="... once it has sent at least this many emails")
    pause_complaint_rate: float = Field(default=0.003, ge=0, le=1, description="auto-pause a campaign above this complaint rate")
    pause_mailbox_rejections: int = Field(default=3, ge=1, description="auto-pause a sending mailbox after this many sending-side rejections ...")
    pause_mailbox_window_s: float = Field(default=86400.0, gt=0, description="... within this many seconds")

    alert_emails: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = Field(
        default_factory=list, description="comma-separated addresses that receive alerts"
    )
    alert_webhook_url: str | None = Field(default=None, description="JSON POST target for alerts")
    alert_from: str = Field(default="aicmo-alerts@localhost", description="From address of alert emails")
    alert_transport: str = Field(default="default", description="transport profile alert emails use")

    http_host: str = Field(default="127.0.0.1", description="address of the unsubscribe/health/metrics server")
    http_port: int = Field(default=8080, ge=0, le=65535, description="its port (0: pick a free one)")
    public_url: str = Field(
        default="http://127.0.0.1:8080", description="base URL of unsubscribe links in emails"
    )
    unsubscribe_secret: SecretStr | None = Field(
        default=None, description="HMAC key of unsubscribe links; unset: generated and stored on first run"
    )
