"""The tables of client acquisition (prefix ``cam_``). Declarations only: no business logic.

Only the cam module writes them. The unique constraints carry idempotency (one outbound row
per lead and step, one inbound row per mailbox/UIDVALIDITY/UID, one alert per key, one
suppression per address); the indexes serve the hot queries (due leads by next action time,
replies by In-Reply-To, daily caps by mailbox and send time).

The allowed values of status columns are repeated in CHECK constraints on purpose: a new
value is a schema change and gets a migration (copy the literal list there, never import it).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime
from contracts.cam import LeadState, OutboundStatus

#: RFC 5321 limits an address to 254 octets in practice; 320 leaves room for odd ones.
ADDRESS = 320
#: RFC 5322 line limit: a Message-ID header value cannot be longer.
MESSAGE_ID = 998

CAMPAIGN_STATUSES = ("active", "paused")
MAILBOX_STATUSES = ("active", "paused")
ALERT_STATES = ("pending", "delivered", "failed")


def _one_of(column: str, values: tuple[str, ...] | list[str]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class CamCampaign(Base):
    """A campaign: the parsed campaign file and whether it is sending."""

    __tablename__ = "cam_campaigns"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[Any] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Auto-pause rates count from here (see migration 0002).
    resumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    stop_company_on_reply: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint(_one_of("status", CAMPAIGN_STATUSES), name="status"),)


class CamLead(Base):
    """A person in a campaign, with where they are in the sequence and when to act next."""

    __tablename__ = "cam_leads"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Id, ForeignKey("cam_campaigns.id"))
    #: Normalised (lower-case domain, validated) address.
    email: Mapped[str] = mapped_column(String(ADDRESS))
    email_domain: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(300))
    #: IANA zone name, e.g. "Europe/Berlin"; None: the campaign's zone.
    timezone: Mapped[str | None] = mapped_column(String(64))
    variables: Mapped[Any] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(32), default=LeadState.ACTIVE.value)
    state_reason: Mapped[str | None] = mapped_column(Text)
    #: The last step sent; 0 before the first.
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    #: NULL whenever the lead is not schedulable, so the index only holds due-able leads.
    next_action_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    paused_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("campaign_id", "email"),
        Index(None, "email"),
        # "stop the whole company on a reply" looks leads up by domain within a campaign.
        Index(None, "campaign_id", "email_domain"),
        # The operator's lists: a campaign's leads in a state, page after page by id.
        Index(None, "campaign_id", "state", "id"),
        CheckConstraint(_one_of("state", [s.value for s in LeadState]), name="state"),
    )


class CamOutboundEmail(Base):
    """One email to send (the outbox): computed ahead of time, then sent at most once."""

    __tablename__ = "cam_outbound_emails"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("cam_leads.id"))
    campaign_id: Mapped[int] = mapped_column(Id, ForeignKey("cam_campaigns.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str | None] = mapped_column(String(64))
    #: The sending address.
    mailbox: Mapped[str] = mapped_column(String(ADDRESS))
    recipient: Mapped[str] = mapped_column(String(ADDRESS))
    subject: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=OutboundStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sending_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    # What the server did at send time and what came back later are separate facts: the
    # status says the first, these columns the second, and neither rewrites the other.
    #: When a receiving server first accepted it (its 250); never cleared (a soft bounce
    #: that makes us send the same email again does not make it "not sent").
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Its final failure, once per email: "hard" or "soft", at send time (a 5xx, or 4xx
    #: retries given up) or by a report tied to it. A soft one may turn hard, never back.
    bounce: Mapped[str | None] = mapped_column(String(8))
    bounce_reason: Mapped[str | None] = mapped_column(String(32))
    bounce_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: A spam complaint (ARF, feedback loop) tied to it.
    complained_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The last delay notice (Action: delayed) tied to it: the server is still trying.
    delayed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delay_note: Mapped[str | None] = mapped_column(Text)
    #: Every attempt's outcome: [{"at", "stage", "code", "status", "reason", "text"}, ...].
    replies: Mapped[Any | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("lead_id", "step"),
        # Daily caps: how many did this mailbox send since midnight.
        Index(None, "mailbox", "sent_at"),
        # The sender's queue and its retries.
        Index(None, "status", "next_attempt_at"),
        # A bounce or a reply without our Message-ID: the latest email sent to its recipient.
        Index(None, "recipient"),
        CheckConstraint(_one_of("status", [s.value for s in OutboundStatus]), name="status"),
    )


class CamInboundEmail(Base):
    """One message fetched from a reply mailbox, stored raw before it is classified."""

    __tablename__ = "cam_inbound_emails"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(ADDRESS))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(MESSAGE_ID), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(MESSAGE_ID), index=True)
    references_header: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(String(ADDRESS), index=True)
    subject: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    #: The Date header or the server's INTERNALDATE, when known.
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime)
    category: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    classification: Mapped[Any | None] = mapped_column(JSON)
    lead_id: Mapped[int | None] = mapped_column(Id, ForeignKey("cam_leads.id"), index=True)
    outbound_id: Mapped[int | None] = mapped_column(Id, ForeignKey("cam_outbound_emails.id"))
    #: "message_id", "report", "sender" or None (see contracts.cam.ReplyClassified).
    matched_by: Mapped[str | None] = mapped_column(String(16))
    #: NULL until classified: the classifier's restart point after a crash.
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    #: NULL until acted on (lead decision, suppression, alert, the outcome on the outbound
    #: row, all in the transaction that sets it): the follow-up's restart point.
    acted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    #: Why it was set aside instead of read in full (too large, too many parts, too slow to
    #: read, a header that could not be stored): shown by `inbox set-aside`.
    set_aside: Mapped[str | None] = mapped_column(String(200))
    #: Its size in bytes as the server reported it (the stored raw may be only its headers).
    size: Mapped[int | None] = mapped_column(BigInteger)
    #: When a person marked it handled (answered, forwarded, nothing to do), and who: the
    #: web inbox's "unhandled" list. Not `acted_at`, which is the service's own acting on it.
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)


class CamSuppression(Base):
    """An address never to email again (bounce, complaint, unsubscribe, manual)."""

    __tablename__ = "cam_suppressions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: Normalised lower-case address.
    address: Mapped[str] = mapped_column(String(ADDRESS), unique=True)
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CamAlert(Base):
    """A notice to a human, delivered once per idempotency key."""

    __tablename__ = "cam_alerts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[int | None] = mapped_column(Id, ForeignKey("cam_leads.id"))
    campaign: Mapped[str | None] = mapped_column(String(200))
    inbound_id: Mapped[int | None] = mapped_column(Id, ForeignKey("cam_inbound_emails.id"))
    payload: Mapped[Any] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index(None, "state", "next_attempt_at"),
        # A lead's history lists its alerts.
        Index(None, "lead_id"),
        CheckConstraint(_one_of("state", ALERT_STATES), name="state"),
    )


class CamCycleReport(Base):
    """What one tick of the acquisition cycle did: per-step counts, errors, duration."""

    __tablename__ = "cam_cycle_reports"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tick_seq: Mapped[int] = mapped_column(BigInteger)
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    counts: Mapped[Any] = mapped_column(JSON, default=dict)
    errors: Mapped[Any] = mapped_column(JSON, default=list)


class CamMailboxCursor(Base):
    """How far a reply mailbox has been read: the last UID seen under its UIDVALIDITY."""

    __tablename__ = "cam_mailbox_cursors"

    mailbox: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CamSendingMailbox(Base):
    """A sending address and whether it may send (paused on blocks or spam complaints)."""

    __tablename__ = "cam_sending_mailboxes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(ADDRESS), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint(_one_of("status", MAILBOX_STATUSES), name="status"),)


class CamDeal(Base):
    """A lead that signed (`python run.py deal won`): the client it became and the package it
    bought, handed to orchestration by `ClientSigned` until it answers `ProjectOpened`."""

    __tablename__ = "cam_deals"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("cam_leads.id"), unique=True)
    campaign_id: Mapped[int] = mapped_column(Id, ForeignKey("cam_campaigns.id"))
    #: The client's email domain: no lead of it is prospected again.
    company_domain: Mapped[str] = mapped_column(String(255), index=True)
    client_ref: Mapped[str] = mapped_column(String(36), unique=True)
    #: `contracts.clients.ClientInfo` and `contracts.packages.PackageSpec`, as JSON.
    client: Mapped[Any] = mapped_column(JSON)
    package_name: Mapped[str] = mapped_column(String(100))
    package: Mapped[Any] = mapped_column(JSON)
    start_date: Mapped[date] = mapped_column(Date)
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    signed_by: Mapped[str] = mapped_column(String(200))
    #: Set when orchestration answered `ProjectOpened`: `ClientSigned` is not published again.
    project_id: Mapped[str | None] = mapped_column(String(36))
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CamRenewal(Base):
    """A deal's contract renewed (`python run.py deal renew`): `months` more from the end of the
    term before, handed to orchestration by `ContractRenewed` until it answers `RenewalApplied`."""

    __tablename__ = "cam_renewals"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    deal_id: Mapped[int] = mapped_column(Id, ForeignKey("cam_deals.id"))
    #: 1 for the deal's first renewal, 2 for its second...
    number: Mapped[int] = mapped_column(Integer)
    months: Mapped[int] = mapped_column(Integer)
    #: The end of the term before (the first day of the renewed months) and the new end.
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    renewed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    renewed_by: Mapped[str] = mapped_column(String(200))
    #: Set when orchestration answered `RenewalApplied`: `ContractRenewed` is not published again.
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: What orchestration said (empty: the project was extended; else why it was not).
    outcome: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("deal_id", "number"), Index(None, "applied_at"))


class CamVariantWeights(Base):
    """A bandit's allocation of one step's variants (`SetVariantWeights` from learning), once per
    key: the planner uses the latest (by `as_of`) of a campaign's step for new assignments."""

    __tablename__ = "cam_variant_weights"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    #: Variant name -> weight.
    weights: Mapped[Any] = mapped_column(JSON)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "campaign", "step", "as_of"),)


class CamVariantAssignment(Base):
    """The variant a lead of a bandit campaign first got: it keeps it for every later step that
    has a variant of that name (sticky; a restart or new weights never move it)."""

    __tablename__ = "cam_variant_assignments"

    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("cam_leads.id"), primary_key=True)
    variant: Mapped[str] = mapped_column(String(64))
    #: The step it was first assigned at.
    step: Mapped[int] = mapped_column(Integer)
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)


# The Core tables, typed as such (``__table__`` is typed as a plain FromClause).
cam_campaigns = cast(Table, CamCampaign.__table__)
cam_leads = cast(Table, CamLead.__table__)
cam_outbound_emails = cast(Table, CamOutboundEmail.__table__)
cam_inbound_emails = cast(Table, CamInboundEmail.__table__)
cam_suppressions = cast(Table, CamSuppression.__table__)
cam_alerts = cast(Table, CamAlert.__table__)
cam_cycle_reports = cast(Table, CamCycleReport.__table__)
cam_mailbox_cursors = cast(Table, CamMailboxCursor.__table__)
cam_sending_mailboxes = cast(Table, CamSendingMailbox.__table__)
cam_deals = cast(Table, CamDeal.__table__)
cam_renewals = cast(Table, CamRenewal.__table__)
cam_variant_weights = cast(Table, CamVariantWeights.__table__)
cam_variant_assignments = cast(Table, CamVariantAssignment.__table__)
