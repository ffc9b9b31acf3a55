"""Complaints: RFC 5965 ARF feedback reports and the providers' own complaint notices.

A feedback loop (Yahoo, AOL, Microsoft JMRP/SNDS, Amazon SES, Comcast ...) tells us a
recipient pressed "this is spam". The ARF report has a `message/feedback-report` part with
Feedback-Type, Original-Rcpt-To and friends, plus the original message or its headers.
Not every Feedback-Type is a complaint (`feedback_kind`): "opt-out" (and the "unsubscribe"
some feedback loops send) is a request to be removed, "auth-failure" (RFC 6591, DMARC
failure reports) says our own mail failed SPF/DKIM/DMARC, "not-spam" is a machine notice.
Older notices (Microsoft's pre-ARF JMRP) only say "This is an email abuse report" and carry
the original with an `X-HmXmrOriginalRecipient` header. Read receipts (RFC 8098 MDNs) are
recognised here too, so they are never mistaken for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from aicmo_actors.cam.classify.dsn import returned_message
from aicmo_actors.cam.classify.parse import (
    addresses,
    content_param,
    content_type,
    first_address,
    header,
    leaf_parts,
    message_ids,
    parse_message,
    part_text,
)

__all__ = [
    "AUTH_FAILURE_TYPES",
    "COMPLAINT_TYPES",
    "OPT_OUT_TYPES",
    "Complaint",
    "feedback_kind",
    "read_complaint",
    "read_receipt_ids",
]

#: Feedback types that mean a person complained (RFC 5965 section 7.3).
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other", "complaint"})
#: Feedback types that ask for the address to be removed, not complaints: "opt-out" and
#: "opt-out-list" of the ARF drafts, and the "unsubscribe" some feedback loops send.
OPT_OUT_TYPES = frozenset({"opt-out", "opt-out-list", "optout", "unsubscribe"})
#: Feedback types that say our mail failed authentication (RFC 6591; DMARC failure reports,
#: RFC 7489 section 7.3): a problem of our sending, never of the recipient.
AUTH_FAILURE_TYPES = frozenset({"auth-failure"})
ABUSE_TEXT = re.compile(
    r"this is an (?:e-?mail )?abuse report|email feedback report|complaint about (?:a )?message|"
    r"feedback[- ]loop|marked (?:this|the) (?:message|email) as spam|reported (?:this|the) (?:message|email) as spam|"
    r"abuse complaint|spam complaint",
    re.I,
)
ABUSE_SUBJECT = re.compile(r"abuse report|complaint|feedback report|fbl|spam report", re.I)
#: A DMARC failure (forensic) report sent as plain text, not as RFC 6591 ARF: its subject, or
#: the ARF fields written into its text.
DMARC_SUBJECT = re.compile(
    r"\bdmarc\b.{0,40}\b(?:failure|forensic|fail)\b|\b(?:failure|forensic) report\b.{0,60}\bdmarc\b", re.I
)
_TEXT_FIELD = re.compile(
    r"^[ \t]*(feedback-type|auth-failure|delivery-result|original-rcpt-to|reported-domain|source-ip|user-agent)"
    r"[ \t]*:[ \t]*([^\n]{0,200})",
    re.I | re.M,
)
#: A plain-text report's words that our mail failed authentication.
AUTH_FAILED_TEXT = re.compile(
    r"\b(?:dmarc|spf|dkim)\b[^\n]{0,40}\b(?:fail(?:ed|ure|s)?|did not pass|not aligned)\b|"
    r"authentication failure report|failed (?:dmarc|spf|dkim)",
    re.I,
)
FBL_SENDER = re.compile(r"staff@hotmail|abuse|fbl|feedback|complaints?@|jmrp|scomp@|arf\.|email-abuse", re.I)


@dataclass
class Complaint:
    """What a complaint report says."""

    kind: str  # "arf" or "notice"
    feedback_type: str | None = None
    recipients: list[str] = field(default_factory=list)
    original_ids: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    user_agent: str | None = None
    #: RFC 6591 Auth-Failure (dmarc, spf, dkim's "signature", "bodyhash" ...) and Delivery-Result.
    auth_failure: str | None = None
    delivery_result: str | None = None


def feedback_kind(feedback_type: str) -> str:
    """What a Feedback-Type means for us: "complaint", "opt_out", "auth_failure" or "notice"."""
    if feedback_type in COMPLAINT_TYPES:
        return "complaint"
    if feedback_type in OPT_OUT_TYPES:
        return "opt_out"
    if feedback_type in AUTH_FAILURE_TYPES:
        return "auth_failure"
    return "notice"


def _report_fields(msg: Message, ctype: str) -> dict[str, str] | None:
    """The fields of the first `ctype` part (message/feedback-report, message/disposition-notification)."""
    for part in leaf_parts(msg):
        if content_type(part) != ctype:
            continue
        try:
            payload = part.get_payload()
        except Exception:
            payload = None
        block = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(block, Message):
            block = parse_message(part_text(part).encode("utf-8", "replace"))
        fields: dict[str, str] = {}
        try:
            for key, value in block.raw_items():
                fields.setdefault(key.lower(), " ".join(str(value).split()))
        except Exception:
            return fields
        return fields
    return None


def _hotmail_recipient(msg: Message) -> str | None:
    """X-HmXmrOriginalRecipient, on the notice itself or on the original inside it."""
    found = first_address(header(msg, "X-HmXmrOriginalRecipient"))
    if found:
        return found
    for part in leaf_parts(msg):
        if part is msg or not content_type(part).startswith(("message/", "text/rfc822")):
            continue
        try:
            payload = part.get_payload()
        except Exception:
            continue
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            inner = parse_message(part_text(part).encode("utf-8", "replace"))
        found = first_address(header(inner, "X-HmXmrOriginalRecipient"))
        if found:
            return found
    match = re.search(r"x-hmxmroriginalrecipient:\s*<?([^>\s]+@[^>\s]+)>?", _text(msg), re.I)
    return match.group(1).lower() if match else None


def _text(msg: Message) -> str:
    return "\n".join(part_text(p) for p in leaf_parts(msg) if content_type(p).startswith("text/"))[:40000]


def read_complaint(msg: Message, own_addresses: set[str]) -> Complaint | None:
    """An ARF report or a provider's complaint notice; None if `msg` is neither."""
    report_type = content_param(msg, "report-type") if content_type(msg) == "multipart/report" else ""
    fields = _report_fields(msg, "message/feedback-report")
    text = _text(msg)
    if report_type == "feedback-report" or fields is not None:
        fields = fields or {}
        feedback_type = (fields.get("feedback-type") or "abuse").split()[0].lower()[:40]
        complaint = Complaint(
            "arf",
            feedback_type=feedback_type,
            user_agent=fields.get("user-agent"),
            auth_failure=(fields.get("auth-failure") or "")[:80].lower() or None,
            delivery_result=(fields.get("delivery-result") or "")[:80].lower() or None,
        )
        complaint.evidence.append("multipart/report; report-type=feedback-report (RFC 5965 ARF)")
        complaint.evidence.append(
            f"Feedback-Type: {feedback_type}"
            + (f" from {fields['user-agent'][:80]}" if fields.get("user-agent") else "")
        )
        if complaint.auth_failure:
            complaint.evidence.append(f"Auth-Failure: {complaint.auth_failure} (RFC 6591)")
        if complaint.delivery_result:
            complaint.evidence.append(f"Delivery-Result: {complaint.delivery_result}")
        rcpts = addresses(fields.get("original-rcpt-to", "")) + addresses(fields.get("removal-recipient", ""))
    elif plain := _plain_auth_failure(msg, text):
        complaint, rcpts = plain
    else:
        sender = header(msg, "From")
        subject = header(msg, "Subject")
        text_match = ABUSE_TEXT.search(text[:5000]) or ABUSE_TEXT.search(subject)
        subject_match = ABUSE_SUBJECT.search(subject) and FBL_SENDER.search(sender)
        hotmail = _hotmail_recipient(msg)
        if not (text_match and (FBL_SENDER.search(sender) or hotmail or subject_match)) and not (
            subject_match and hotmail
        ):
            return None
        complaint = Complaint("notice", feedback_type="abuse")
        said = text_match.group(0) if text_match else subject
        complaint.evidence.append(f"complaint notice from {sender[:80]!r}: {said[:80]!r}")
        rcpts = [hotmail] if hotmail else []
    hotmail = _hotmail_recipient(msg) if not rcpts else None
    if hotmail:
        rcpts.append(hotmail)
        complaint.evidence.append("X-HmXmrOriginalRecipient names the complaining address")
    returned = returned_message(msg, text)
    complaint.original_ids = returned.ids
    ours = own_addresses | set(returned.senders)
    if not rcpts:
        rcpts = [a for a in returned.to if a not in ours and "redacted" not in a]
    complaint.recipients = [a for a in dict.fromkeys(rcpts) if a not in ours]
    return complaint


def _plain_auth_failure(msg: Message, text: str) -> tuple[Complaint, list[str]] | None:
    """A DMARC failure report written as plain text: the ARF fields in its text with
    Feedback-Type auth-failure, or a DMARC failure report's subject over words that say our
    mail failed DMARC, SPF or DKIM. None when `msg` is not one."""
    head = text[:20000]
    subject = header(msg, "Subject")
    if "auth-failure" not in head.lower() and not DMARC_SUBJECT.search(subject):
        return None  # neither the field nor the subject: the common case, decided cheaply
    fields: dict[str, str] = {}
    for match in _TEXT_FIELD.finditer(head):
        fields.setdefault(match.group(1).lower(), " ".join(match.group(2).split()))
    typed = fields.get("feedback-type", "").split()[:1] == ["auth-failure"]
    said = AUTH_FAILED_TEXT.search(head)
    if not typed and not (DMARC_SUBJECT.search(subject) and said):
        return None
    complaint = Complaint(
        "arf",
        feedback_type="auth-failure",
        user_agent=fields.get("user-agent"),
        auth_failure=(fields.get("auth-failure") or "")[:80].lower() or None,
        delivery_result=(fields.get("delivery-result") or "")[:80].lower() or None,
    )
    if typed:
        why = "Feedback-Type: auth-failure in its text"
    else:
        why = f"{subject[:80]!r}, and its text says {said.group(0) if said else ''!r}"
    complaint.evidence.append(f"a DMARC failure report in plain text, not ARF ({why})")
    if complaint.auth_failure:
        complaint.evidence.append(f"Auth-Failure: {complaint.auth_failure} (RFC 6591)")
    if complaint.delivery_result:
        complaint.evidence.append(f"Delivery-Result: {complaint.delivery_result}")
    return complaint, addresses(fields.get("original-rcpt-to", ""))


def read_receipt_ids(msg: Message) -> list[str] | None:
    """The Original-Message-ID(s) of a message disposition notification (read receipt,
    RFC 8098); None when `msg` is not one."""
    is_mdn = content_type(msg) == "multipart/report" and content_param(msg, "report-type") == "disposition-notification"
    fields = _report_fields(msg, "message/disposition-notification")
    if not is_mdn and fields is None:
        return None
    return message_ids((fields or {}).get("original-message-id", ""))
