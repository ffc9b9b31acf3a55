"""The service's settings: one pydantic model read from AICMO_* environment variables (and `.env`).

Secrets (SMTP/IMAP passwords, the unsubscribe HMAC key) come only from here, never from
campaign files.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
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

    kind: Literal["maildir", "smtp"] = Field(
        default="maildir", description="maildir (default): write each email to a folder; smtp: send it"
    )
    path: Path = Field(default=Path("mail/outbox"), description="kind maildir: the folder (default mail/outbox)")
    host: str | None = Field(default=None, description="kind smtp: the server's name (required for smtp)")
    port: int = Field(default=587, ge=1, le=65535, description="kind smtp: the server's port (default 587)")
    username: str | None = Field(default=None, description="kind smtp: AUTH user name (default: no AUTH)")
    password: SecretStr | None = Field(default=None, description="kind smtp: AUTH password")
    tls: Tls = Field(default="starttls", description="kind smtp: starttls (default), implicit (port 465) or none")
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="kind smtp: seconds before a silent server counts as a temporary failure (default 30)",
    )
    ca_file: Path | None = Field(
        default=None,
        description="kind smtp: a PEM file of a private CA or "
        "self-signed server certificate to trust besides the system's",
    )
    validate_certs: bool = Field(
        default=True, description="kind smtp: false trusts any certificate: for a test server only (default true)"
    )
    helo_name: str | None = Field(
        default=None,
        description="kind smtp: the EHLO/HELO name this transport announces; "
        "unset: the machine's fully qualified name, as aiosmtplib does",
    )

    verp: bool = Field(
        default=False,
        description="kind smtp: send each email with its own return path, sender+TOKEN@domain (VERP), so a bounce "
        "that quotes nothing of the original still names the email; only for mailboxes that receive mail sent to "
        "sender+anything@domain (plus addressing: Gmail, Microsoft 365, Fastmail, Dovecot with recipient_delimiter) "
        "and local parts of at most 32 characters (default false)",
    )

    @model_validator(mode="after")
    def _smtp_needs_a_host(self) -> TransportProfile:
        if self.kind == "smtp" and not (self.host or "").strip():
            raise ValueError("kind smtp needs a host")
        return self


class InboxProfile(BaseModel):
    """Where replies arrive: a Maildir folder (default) or an IMAP mailbox."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["maildir", "imap"] = Field(
        default="maildir", description="maildir (default): read a folder; imap: read a mailbox"
    )
    path: Path = Field(default=Path("mail/inbox"), description="kind maildir: the folder (default mail/inbox)")
    host: str = Field(default="localhost", description="kind imap: the server's name (default localhost)")
    port: int = Field(default=993, ge=1, le=65535, description="kind imap: the server's port (default 993)")
    username: str | None = Field(default=None, description="kind imap: login name")
    password: SecretStr | None = Field(default=None, description="kind imap: login password")
    tls: Tls = Field(default="implicit", description="kind imap: implicit (default), starttls or none")
    folder: str = Field(default="INBOX", description="kind imap: the folder to read (default INBOX)")
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="kind imap: seconds before a silent server counts as a dropped connection (default 30)",
    )


def public_url_problem(url: str) -> str | None:
    """Why recipients could not use one-click unsubscribe links under `url`, or None.

    RFC 8058 one-click unsubscribe needs an https URL that recipients can reach: not http,
    not this machine (localhost, a loopback address) nor a private network address.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        return f"AICMO_PUBLIC_URL is {url!r}: one-click unsubscribe (RFC 8058) needs https://"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        unreachable = host in ("localhost", "") or host.endswith(".localhost")
    else:
        unreachable = address.is_loopback or address.is_private or address.is_unspecified or address.is_link_local
    if unreachable:
        return f"AICMO_PUBLIC_URL points at {host or 'no host'}, which recipients cannot reach"
    return None


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _not_blank(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must name a directory (it is empty)")
    return value


def _dunning(value: object) -> object:
    """`7,14:2,28:3`: days after the due date of each reminder level, each with an optional late
    fee in percent of what is owed (1 to 3 levels, each later than the one before)."""
    if not isinstance(value, str):
        return value
    levels: list[tuple[int, float]] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        days_text, _, fee_text = part.partition(":")
        try:
            levels.append((int(days_text), float(fee_text.rstrip("%") or 0)))
        except ValueError:
            raise ValueError(f"{part!r} is not DAYS or DAYS:FEE_PERCENT (write e.g. 7,14:2,28:3)") from None
    previous = -1
    for days, fee in levels:
        if days <= previous or days < 0 or not 0 <= fee <= 100:
            raise ValueError("each level comes later than the one before, fees 0 to 100 % (e.g. 7,14:2,28:3)")
        previous = days
    if not 1 <= len(levels) <= 3:
        raise ValueError("write 1 to 3 reminder levels (e.g. 7,14:2,28:3)")
    return levels


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
    send_max_attempts: int = Field(
        default=5, ge=1, description="temporary SMTP failures retried up to this many attempts"
    )
    send_retry_base_s: float = Field(default=300.0, ge=0, description="first retry delay; doubles each attempt")
    scheduler_batch: int = Field(
        default=500,
        ge=1,
        description="due leads planned per batch (one transaction each); a tick takes batches until none is due",
    )
    inbox_batch: int = Field(default=100, ge=1, description="messages fetched per IMAP round trip")
    inbox_poll_offset_s: float = Field(
        default=0.0,
        ge=0,
        description="poll the inboxes this long after each tick (default: half the tick interval, so reading "
        "replies and the tick's sending never contend for the database at one instant; an IMAP inbox with IDLE "
        "is read as mail arrives anyway)",
    )

    pause_hard_bounce_rate: float = Field(
        default=0.03, ge=0, le=1, description="auto-pause a campaign above this hard-bounce rate ..."
    )
    pause_min_sends: int = Field(
        default=50,
        ge=1,
        description="... once it has attempted at least this many emails since it was created, last paused or resumed",
    )
    pause_complaint_rate: float = Field(
        default=0.003, ge=0, le=1, description="auto-pause a campaign above this complaint rate"
    )
    pause_mailbox_rejections: int = Field(
        default=3, ge=1, description="auto-pause a sending mailbox after this many sending-side rejections ..."
    )
    pause_mailbox_window_s: float = Field(default=86400.0, gt=0, description="... within this many seconds")

    alert_emails: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = Field(
        default_factory=list, description="comma-separated addresses that receive alerts"
    )
    alert_webhook_url: str | None = Field(default=None, description="JSON POST target for alerts")
    alert_from: str | None = Field(
        default=None,
        description="From address of alert emails; unset (default): aicmo-alerts@ + the domain of the first "
        "campaign mailbox, decided by the service when it starts",
    )
    alert_transport: str = Field(default="default", description="transport profile alert emails use")

    http_host: str = Field(default="127.0.0.1", description="address of the unsubscribe/health/metrics server")
    http_port: int = Field(default=8080, ge=0, le=65535, description="its port (0: pick a free one)")
    public_url: str = Field(default="http://127.0.0.1:8080", description="base URL of unsubscribe links in emails")
    unsubscribe_secret: SecretStr | None = Field(
        default=None, description="HMAC key of unsubscribe links; unset: generated and stored on first run"
    )

    # -- what the lead rules wait for ------------------------------------------------------------------
    soft_bounce_retry_s: float = Field(
        default=86400.0,
        ge=0,
        allow_inf_nan=False,
        description="how long before a soft-bounced step is sent again (default 86400: a day)",
    )
    auto_reply_pause_s: float = Field(
        default=7 * 86400.0,
        ge=0,
        allow_inf_nan=False,
        description="an auto-reply without a return date pauses its lead this long (default 604800: 7 days)",
    )
    soft_bounces_as_hard: int = Field(
        default=3, ge=1, description="this many soft bounces of one address count as a hard bounce (default 3)"
    )

    # -- addresses ----------------------------------------------------------------------------------------
    allow_test_domains: bool = Field(
        default=False,
        description="accept the special-use test domains (.test, .invalid, .localhost; "
        ".example and example.com/net/org are always accepted) in lead files, "
        "campaign mailboxes and `suppress`: for test environments (default false)",
    )

    # -- reading replies ------------------------------------------------------------------------------------
    classify_timeout_s: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="a message that takes longer than this to read is set aside (default 10)",
    )
    classify_isolation: Literal["process", "inline"] = Field(
        default="process",
        description="process (default): read untrusted mail in a child process with the time limit; "
        "inline: in the service process, as the simulation does",
    )
    inbound_max_bytes: int = Field(
        default=10_000_000,
        ge=1,
        description="a larger inbound message is stored as headers only and set aside (default 10000000)",
    )
    inbound_max_parts: int = Field(
        default=200,
        ge=1,
        description="a message with more MIME parts is read only up to there and set aside (default 200)",
    )
    inbound_max_depth: int = Field(
        default=20,
        ge=1,
        description="a message with MIME parts nested deeper is read only down to there and set aside (default 20)",
    )
    inbound_max_decoded_bytes: int = Field(
        default=25_000_000,
        ge=1,
        description="a message whose decoded parts add up to more "
        "is read only up to there and set aside (default 25000000)",
    )

    # -- sending ------------------------------------------------------------------------------------------------
    send_error_pause_after: int = Field(
        default=3,
        ge=1,
        description="a campaign pauses after this many emails that could not be rendered or built at send time "
        "since it was created or last resumed (default 3)",
    )

    # -- the HTTP server ----------------------------------------------------------------------------------------
    http_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="a client must send its request headers within this many seconds (default 10)",
    )
    http_max_connections: int = Field(
        default=100, ge=1, description="open connections the HTTP server accepts at once (default 100)"
    )

    # -- after the deal ------------------------------------------------------------------------------------------
    packages_dir: Annotated[Path, BeforeValidator(_not_blank)] = Field(
        default=Path("packages"), description="where the service packages are (one TOML file each; default ./packages)"
    )
    agency_name: str = Field(default="Our agency", description="the agency's name, as clients read it in emails")
    client_mail_from: str | None = Field(
        default=None,
        description="From address of emails to clients (welcome, reminders, plans); unset: the alert From address",
    )
    client_transport: str = Field(default="default", description="transport profile emails to clients use")
    client_link_days: int = Field(
        default=30, ge=1, le=365, description="days a client's link (intake form, plan) stays valid (default 30)"
    )
    onboarding_reminder_days: int = Field(
        default=3, ge=1, le=30, description="business days between intake reminders (default 3)"
    )
    onboarding_reminders: int = Field(
        default=2, ge=0, le=10, description="intake reminders before a person is alerted (default 2)"
    )
    plan_approval_days: int = Field(
        default=5, ge=1, le=60, description="business days a client has to answer a plan before a person is alerted"
    )
    review_days: int = Field(
        default=3, ge=1, le=60, description="business days a client has to review a batch of work before a reminder"
    )
    review_reminders: int = Field(
        default=2, ge=0, le=10, description="review reminders before a person is alerted (default 2)"
    )
    generator_url: str | None = Field(
        default=None,
        description=(
            "base URL of an OpenAI-compatible API that writes first drafts (e.g. http://127.0.0.1:11434/v1); "
            "unset: the built-in offline templates"
        ),
    )
    generator_model: str = Field(default="", description="the model the generator asks for")
    generator_key: SecretStr | None = Field(default=None, description="the generator's API key (Bearer), if any")
    generator_timeout_s: float = Field(
        default=60.0, gt=0, le=600, allow_inf_nan=False, description="seconds one draft request may take"
    )
    generator_budget_tokens: int = Field(
        default=200_000, ge=0, description="tokens the generator may use per client and period (then: templates)"
    )
    delivery_dir: Annotated[Path, BeforeValidator(_not_blank)] = Field(
        default=Path("deliveries"), description="where the folder export writes approved work (one folder per client)"
    )
    delivery_alert_after: int = Field(
        default=5, ge=1, le=50, description="failed attempts of one delivery before a person is alerted (default 5)"
    )
    agency_country: str = Field(
        default="US",
        pattern=r"^[A-Za-z]{2}$",
        description="the agency's country, ISO 3166-1 (decides the VAT on invoices: DE, FR, GB, ...)",
    )
    agency_tax_id: str | None = Field(default=None, description="the agency's VAT number, printed on every invoice")
    agency_address: str = Field(default="", description="the agency's postal address, printed on invoices")
    agency_timezone: str = Field(
        default="UTC", description="the calendar of invoice dates, due dates and reminders (IANA zone)"
    )
    tax_rates: dict[str, float] = Field(
        default_factory=dict,
        description='VAT rates replacing or adding to the built-in standard ones, as JSON: {"DE": 19, "CH": 8.1}',
    )
    dunning: Annotated[list[tuple[int, float]], NoDecode, BeforeValidator(_dunning)] = Field(
        default=[(7, 0.0), (14, 2.0), (28, 3.0)],
        description="payment reminders: days after the due date, each with an optional late fee in percent "
        "of what is owed (default 7,14:2,28:3)",
    )
    dunning_repeat_days: int = Field(
        default=14, ge=1, le=365, description="after the last level, a reminder every so many days (default 14)"
    )
    report_hour: int = Field(
        default=8, ge=0, le=23, description="the hour (the client's time) new clients' reports are sent (default 8)"
    )
    report_formats: str = Field(
        default="html,pdf",
        pattern=r"^\s*(html|pdf)\s*(,\s*(html|pdf)\s*)?$",
        description="what a new client's report is: html (the email's body), pdf (attached), or both (default)",
    )
    report_catch_up: int = Field(
        default=12, ge=1, le=100, description="the most overdue reports one client gets per tick after a long stop"
    )
    retention_half_life_days: float = Field(
        default=30.0, gt=0, le=3650, description="days for a health signal's weight to halve (default 30)"
    )
    retention_weights: dict[str, float] = Field(
        default_factory=dict,
        description='health signal weights replacing the defaults, as JSON: {"invoice_overdue": -8} '
        "(python run.py health --help lists the kinds)",
    )
    retention_bands: Annotated[list[float], NoDecode, BeforeValidator(_comma_list)] = Field(
        default=[70.0, 40.0],
        min_length=2,
        max_length=2,
        description="health score from which a client is green, and from which amber (below: red); default 70,40",
    )
    retention_renewal_days: Annotated[list[int], NoDecode, BeforeValidator(_comma_list)] = Field(
        default=[60, 30, 7], description="days before a contract's end when its owner is reminded (default 60,30,7)"
    )
    retention_slow_review_days: float = Field(
        default=3.0, gt=0, le=365, description="a review answered this many days late or later counts as slow"
    )
    learning_interval_s: float = Field(
        default=86400.0,
        gt=0,
        le=30 * 86400,
        description="how often (seconds) the bandit reweights the variants of campaigns with [bandit] (default a day)",
    )
    learning_draws: int = Field(
        default=2000, ge=100, le=1_000_000, description="Monte Carlo draws per step per bandit decision (default 2000)"
    )
    hold_after_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="days an invoice may be overdue before the client's deliveries are held until it is paid",
    )

    @model_validator(mode="after")
    def _poll_half_a_tick_later(self) -> Settings:
        # Half a tick after the tick, unless set: reading replies and sending then never meet
        # at one instant (on SQLite they would queue for the one writer), and the simulation
        # proves its invariants on the same timing the service runs with.
        if "inbox_poll_offset_s" not in self.model_fields_set:
            object.__setattr__(self, "inbox_poll_offset_s", self.tick_interval_s / 2)
        return self
