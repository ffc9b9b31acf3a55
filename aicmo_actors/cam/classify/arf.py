"""Complaints: RFC 5965 ARF feedback reports and the providers' own complaint notices.

A feedback loop (Yahoo, AOL, Microsoft JMRP/SNDS, Amazon SES, Comcast ...) tells us a
recipient pressed "this is spam". The ARF report has a `message/feedback-report` part with
Feedback-Type, Original-Rcpt-To and friends, plus the original message or its headers.
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

__all__ = ["COMPLAINT_TYPES", "Complaint", "read_complaint", "read_receipt_ids"]

#: Feedback types that mean a person complained (RFC 5965 section 7.3).
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other", "complaint"})
ABUSE_TEXT = re.compile(
    r"this is an (?:e-?mail )?abuse report|email feedback report|complaint about (?:a )?message|"
    r"feedback[- ]loop|marked (?:this|the) (?:message|email) as spam|reported (?:this|the) (?:message|email) as spam|"
    r"abuse complaint|spam complaint",
    re.I,
)
ABUSE_SUBJECT = re.compile(r"abuse report|complaint|feedback report|fbl|spam report", re.I)
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
        feedback_type = (fields.get("feedback-type") or "abuse").split()[0].lower()
        complaint = Complaint("arf", feedback_type=feedback_type, user_agent=fields.get("user-agent"))
        complaint.evidence.append("multipart/report; report-type=feedback-report (RFC 5965 ARF)")
        complaint.evidence.append(
            f"Feedback-Type: {feedback_type}" + (f" from {fields['user-agent']}" if fields.get("user-agent") else "")
        )
        rcpts = addresses(fields.get("original-rcpt-to", "")) + addresses(fields.get("removal-recipient", ""))
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


def read_receipt_ids(msg: Message) -> list[str] | None:
    """The Original-Message-ID(s) of a message disposition notification (read receipt,
    RFC 8098); None when `msg` is not one."""
    is_mdn = content_type(msg) == "multipart/report" and content_param(msg, "report-type") == "disposition-notification"
    fields = _report_fields(msg, "message/disposition-notification")
    if not is_mdn and fields is None:
        return None
    return message_ids((fields or {}).get("original-message-id", ""))
