"""Client acquisition (CAM): campaigns, sending, replies, classification, alerts."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec

CONTRACT_VERSION = 3


class CamMessage(Message):
    contract_version: int = CONTRACT_VERSION


class CamEvent(Event):
    contract_version: int = CONTRACT_VERSION


class ReplyCategory(StrEnum):
    BOUNCE_HARD = "bounce_hard"
    BOUNCE_SOFT = "bounce_soft"
    #: A delivery report that says the server is still trying (RFC 3464 Action: delayed):
    #: not a failure, nothing is retried or counted; the outbound row records it.
    DELAYED = "delayed"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    UNSUBSCRIBE = "unsubscribe"
    INTERESTED = "interested"
    MEETING_REQUEST = "meeting_request"
    QUESTION = "question"
    REFERRAL = "referral"
    NOT_INTERESTED = "not_interested"
    OTHER = "other"


class BounceReason(StrEnum):
    USER_UNKNOWN = "user_unknown"
    HOST_UNKNOWN = "host_unknown"
    HAS_MOVED = "has_moved"
    NOT_ACCEPT = "not_accept"
    MAILBOX_FULL = "mailbox_full"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    RATE_LIMITED = "rate_limited"
    #: A temporary refusal that asks us to come back later (RFC 6647 greylisting).
    GREYLISTED = "greylisted"
    BLOCKED = "blocked"
    SPAM_DETECTED = "spam_detected"
    #: Refused after the message was sent (end of DATA), the recipient having been accepted at
    #: RCPT TO: a content or policy filter of the recipient's side, even when it says "user
    #: unknown". Not proof that the mailbox is gone, nor a fault of our sending: soft.
    FILTERED = "filtered"
    POLICY = "policy"
    AUTH_FAILURE = "auth_failure"
    MESSAGE_TOO_BIG = "message_too_big"
    NETWORK_ERROR = "network_error"
    SYSTEM_ERROR = "system_error"
    UNDEFINED = "undefined"


#: Reasons that mean the address itself is dead (hard when the code is permanent).
ADDRESS_DEAD_REASONS = frozenset({BounceReason.USER_UNKNOWN, BounceReason.HOST_UNKNOWN, BounceReason.HAS_MOVED})
#: Reasons that are problems of our sending: they count against the mailbox, not the lead.
SENDING_SIDE_REASONS = frozenset(
    {
        BounceReason.BLOCKED,
        BounceReason.SPAM_DETECTED,
        BounceReason.POLICY,
        BounceReason.AUTH_FAILURE,
    }
)


class Classification(BaseModel):
    """What the classifier concluded about one inbound message, with its evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: ReplyCategory
    #: For bounces a BounceReason value; otherwise a short machine code or None.
    reason: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    #: Human-readable evidence, in the order it was weighed.
    reasons: tuple[str, ...] = ()
    failed_recipients: tuple[str, ...] = ()
    #: Enhanced status code (RFC 3463), e.g. "5.1.1", when one was found.
    status: str | None = None
    #: Basic SMTP reply code, e.g. 550, when one was found.
    smtp_code: int | None = None
    #: For auto-replies: when the sender says they are back.
    return_date: date | None = None
    #: The Message-ID of ours this message refers to (In-Reply-To, or inside a report).
    in_reply_to: str | None = None
    #: Every Message-ID the message refers to, most specific first.
    referenced_ids: tuple[str, ...] = ()
    #: True when the failure is a problem of our sending (blocked, spam, policy, auth).
    sending_side: bool = False
    #: The sender's real address (never the display name).
    from_address: str | None = None
    subject: str | None = None
    message_id: str | None = None
    #: An unsubscribe token found in the subject ("unsubscribe TOKEN", our List-Unsubscribe
    #: mailto) or the first lines of the body; unverified: the matcher checks its signature.
    unsubscribe_token: str | None = None
    #: Addresses this message was delivered to (To, Delivered-To, X-Original-To, Envelope-To):
    #: where a bounce to a per-message return path (VERP) carries our token; unverified.
    delivered_to: tuple[str, ...] = ()
    #: Why the message was not read in full (too large, too many parts, too deep, too slow).
    limited: str | None = None


class OutboundStatus(StrEnum):
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    UNCONFIRMED = "UNCONFIRMED"
    FAILED = "FAILED"  # refused by the server at send time, or given up after retries
    CANCELLED = "CANCELLED"  # never sent: the last check before sending or a send-time error stopped it


class LeadState(StrEnum):
    ACTIVE = "active"  # in sequence, waiting for its next step
    PAUSED = "paused"  # auto-reply: waiting for the return date
    REPLIED = "replied"  # a human answered: sequence stopped, a person takes over
    NOT_INTERESTED = "not_interested"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLETED = "completed"  # sequence ran out with no reply
    STOPPED = "stopped"  # stopped for another reason (same-domain reply, campaign ended)
    CLIENT = "client"  # signed a deal (`python run.py deal won`): never prospected again


class SendEmail(CamMessage):
    """Scheduler -> sender: send the outbound row with this id (already QUEUED in the db)."""

    outbound_id: int
    lead_id: int
    campaign: str
    step: int
    mailbox: str


class FlushSends(CamMessage):
    """Sender -> itself: commit the outcome of the last send now, no other email is waiting.

    While emails are queued, each send's SENT is committed together with the next claim.
    """


class EmailSent(CamEvent):
    outbound_id: int
    lead_id: int
    campaign: str
    step: int
    mailbox: str
    #: The RFC 5322 Message-ID header we set (not this event's own `message_id`).
    email_message_id: str
    recipient: str
    #: The A/B variant of the step that was sent ("A": the step's own text).
    variant: str = "A"


class EmailFailed(CamEvent):
    outbound_id: int
    lead_id: int
    campaign: str
    step: int
    mailbox: str
    permanent: bool
    #: The address is dead (a permanent user_unknown / host_unknown / has_moved / not_accept).
    hard: bool = False
    #: A problem of our sending (blocked, spam, policy, auth): counts against the mailbox.
    sending_side: bool = False
    recipient: str = ""
    smtp_code: int | None = None
    status: str | None = None
    reason: BounceReason | None = None
    detail: str = ""


class ReplyReceived(CamMessage):
    """Inbox -> classifier: a stored inbound message, identified by its row."""

    inbound_id: int
    mailbox: str


class ReplyClassified(CamEvent):
    inbound_id: int
    mailbox: str
    lead_id: int | None
    campaign: str | None
    outbound_id: int | None
    #: How it was tied to what we sent: "message_id" (threading), "report" (our Message-ID
    #: inside a bounce or complaint), "return_path" (our signed VERP address), "token" (our
    #: signed unsubscribe token), "sender" (the sender's address only: low confidence, acts
    #: on nothing by itself) or None (unmatched).
    matched_by: str | None
    classification: Classification


class CampaignPaused(CamEvent):
    campaign: str
    reason: str


class MailboxPaused(CamEvent):
    mailbox: str
    reason: str


class LeadStateChanged(CamEvent):
    lead_id: int
    campaign: str
    old: LeadState
    new: LeadState
    cause: str


class AlertRequested(CamMessage):
    """Anyone -> alerts: tell a human. Delivered once per idempotency key."""

    idempotency_key: str
    kind: str
    lead_id: int | None = None
    campaign: str | None = None
    category: ReplyCategory | None = None
    summary: str
    text: str = ""
    #: The reply that caused it, when one did.
    inbound_id: int | None = None


class ClientSigned(CamEvent):
    """A lead became a client (`python run.py deal won`): the hand-over to orchestration.

    Published again on every tick until orchestration answers `ProjectOpened` for the deal
    (at least once; orchestration opens one project per deal whatever it receives)."""

    deal_id: int
    lead_id: int
    campaign: str
    client: ClientInfo
    #: The package as it was when the deal was signed (a package file edited later does
    #: not change a signed client's terms).
    package: PackageSpec
    #: The first day of the engagement (the client's calendar).
    start: date
    signed_at: datetime


class ContractRenewed(CamEvent):
    """A client renewed its contract (`python run.py deal renew`): `months` more, from the end of
    the term before (`starts_on`) to `ends_on`. Version 3.

    Published again on every tick until orchestration answers `RenewalApplied` for the deal and
    `number` (at least once: each module applies a renewal once per deal and number)."""

    deal_id: int
    client_ref: str
    #: 1 for the deal's first renewal, 2 for its second...
    number: int = Field(ge=1)
    months: int = Field(ge=1)
    starts_on: date
    ends_on: date
    renewed_at: datetime


class UnmatchedReply(CamEvent):
    """An inbound message that is not a reply to any prospecting email: offered to the modules
    after the deal, which act on it only if it answers one of their own emails (`in_reply_to`
    or `references` holding a Message-ID they sent), never on what it claims otherwise."""

    inbound_id: int
    #: The email's own Message-ID header (not this event's `message_id`).
    email_message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    from_address: str | None = None
    subject: str = ""
    #: The plain-text body, at most `UNMATCHED_TEXT_CHARS` characters.
    text: str = ""
    received_at: datetime
    #: The text read as an answer to a review request (`cam.classify.review.review_intent`):
    #: "approve", "changes" or "unclear" (None: not read, an older publisher), and the
    #: sender's own words without greeting and signature (a change request's comment).
    review_intent: str | None = None
    review_comment: str = ""


UNMATCHED_TEXT_CHARS = 20_000


class PollInbox(CamMessage):
    """Inbox -> itself: poll one configured inbox now (after a tick, or when IDLE said so)."""

    inbox: str


class RetryAlert(CamMessage):
    """Alerts -> itself: try delivering a pending alert again."""

    alert_id: int


class AlertDelivered(CamEvent):
    """An alert reached every channel it was meant for."""

    alert_id: int
    kind: str
    campaign: str | None = None
    channels: tuple[str, ...] = ()


class CycleReport(CamEvent):
    """One acquisition cycle's counts, per step, as `python run.py status` shows them."""

    tick_seq: int
    step: str
    counts: dict[str, int]
    errors: tuple[str, ...] = ()
    duration_ms: float = 0.0


class ReplyActedOn(CamEvent):
    """Follow-up -> anyone: a classified message was acted on (written with its decision).

    `outcome` is what it counted as on the email it is tied to ("bounce_hard",
    "bounce_soft", "complaint", "delayed"), None when it counts as nothing (a reply, an
    unmatched or low-confidence message, a second report for the same email).
    """

    inbound_id: int
    lead_id: int | None
    campaign: str | None
    outbound_id: int | None
    #: The sending mailbox of the email it is tied to.
    mailbox: str | None
    category: ReplyCategory
    outcome: str | None = None
    sending_side: bool = False
