"""Provider notifications that are JSON delivered as mail: Amazon SES through SNS.

An SNS email subscription delivers each SES notification as a mail: with the "email-json"
protocol the body is the SNS envelope (`Type`, `TopicArn`, `Message` holding the SES JSON as
a string), with the "email" protocol it is the SES JSON itself, followed by SNS's footer
("... click or visit the link below to unsubscribe"), which never makes it an unsubscribe.
The SES notification (`notificationType`, or `eventType` for configuration-set events) says
Bounce, Complaint, Delivery or DeliveryDelay, with `mail.commonHeaders.messageId` and
`mail.headers` naming the Message-ID of our original.

Reading is bounded: at most `MAX_JSON_TEXT` characters are decoded, with the stdlib's
linear `json` decoder; bad or hostile JSON makes the notice `unreadable`, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aicmo_actors.cam.classify.arf import feedback_kind
from aicmo_actors.cam.classify.parse import content_type, leaf_parts, message_ids, part_text
from aicmo_actors.cam.classify.reasons import (
    category_for,
    find_reply_code,
    find_status,
    is_permanent,
    reason_from,
    sending_side,
)
from contracts.cam import SENDING_SIDE_REASONS, BounceReason, ReplyCategory

__all__ = ["JsonNotice", "read_provider_json"]

#: Characters of a body decoded as JSON: an SES notification with its headers is a few KB.
MAX_JSON_TEXT = 500_000
#: Recipients read from one notification (as `dsn.MAX_RECIPIENTS`).
MAX_RECIPIENTS = 100
#: Headers of the original read for its Message-ID.
MAX_HEADERS = 200
#: Keys that tell an SES notification or an SNS envelope, looked for before decoding.
MARKERS = ('"notificationType"', '"eventType"', '"TopicArn"')
#: The reason an SES bounce subtype names by itself; None: the diagnostic decides.
SUBTYPE_REASONS: dict[str, BounceReason] = {
    "noemail": BounceReason.USER_UNKNOWN,
    "suppressed": BounceReason.USER_UNKNOWN,
    "onaccountsuppressionlist": BounceReason.USER_UNKNOWN,
    "mailboxfull": BounceReason.MAILBOX_FULL,
    "messagetoolarge": BounceReason.MESSAGE_TOO_BIG,
    "contentrejected": BounceReason.POLICY,
    "attachmentrejected": BounceReason.POLICY,
}
#: SES DeliveryDelay delayType -> reason.
DELAY_REASONS: dict[str, BounceReason] = {
    "mailboxfull": BounceReason.MAILBOX_FULL,
    "spamdetected": BounceReason.SPAM_DETECTED,
    "recipientservererror": BounceReason.SYSTEM_ERROR,
    "ipfailure": BounceReason.BLOCKED,
    "transientcommunicationfailure": BounceReason.NETWORK_ERROR,
}


@dataclass
class JsonNotice:
    """What a provider's JSON notification says, judged (the caller adds the message's identity)."""

    category: ReplyCategory
    reason: str | None
    confidence: float
    reasons: list[str] = field(default_factory=list)
    failed_recipients: list[str] = field(default_factory=list)
    status: str | None = None
    smtp_code: int | None = None
    original_ids: list[str] = field(default_factory=list)
    sending_side: bool = False


def _text(value: Any, limit: int = 2000) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any, limit: int = MAX_RECIPIENTS) -> list[Any]:
    return value[:limit] if isinstance(value, list) else []


def _decode(text: str) -> dict[str, Any] | None:
    """The JSON object `text` starts with (what follows it, SNS's footer, is ignored)."""
    import json  # only a message that looks like a provider's notification gets here

    try:
        value, _end = json.JSONDecoder(strict=False).raw_decode(text)
    except (ValueError, RecursionError, MemoryError):
        return None
    return value if isinstance(value, dict) else None


def _candidates(msg: Message, text: str) -> list[str]:
    """The texts that may hold the JSON: application/json parts, then the message's text."""
    found = [part_text(p) for p in leaf_parts(msg) if content_type(p) == "application/json"]
    found.append(text)
    return [t.lstrip("\ufeff \t\r\n")[:MAX_JSON_TEXT] for t in found]


def _original_ids(mail: dict[str, Any]) -> list[str]:
    """The Message-ID of our original: commonHeaders.messageId, then a Message-ID in headers."""
    ids = message_ids(_text(_dict(mail.get("commonHeaders")).get("messageId")))
    for item in _list(mail.get("headers"), MAX_HEADERS):
        entry = _dict(item)
        if _text(entry.get("name"), 100).lower() == "message-id":
            ids += message_ids(_text(entry.get("value")))
    return list(dict.fromkeys(ids))


def read_provider_json(msg: Message, text: str) -> JsonNotice | None:
    """An SES notification (in an SNS envelope or bare) in `msg`, whose best human text
    (`parse.message_text`) is `text`; None when there is none."""
    for candidate in _candidates(msg, text):
        if not candidate.startswith("{") or not any(marker in candidate for marker in MARKERS):
            continue
        outer = _decode(candidate)
        if outer is None:
            return JsonNotice(
                ReplyCategory.OTHER,
                "delivery_provider_json_unreadable",
                0.5,
                ["looks like a provider's JSON notification (SES/SNS), but the JSON cannot be read"],
            )
        return _read(outer)
    return None


def _read(outer: dict[str, Any]) -> JsonNotice:
    evidence: list[str] = []
    notification = outer
    if _text(outer.get("Type"), 40) == "Notification" or "TopicArn" in outer:
        evidence.append(f"an SNS notification from {_text(outer.get('TopicArn'), 200) or 'an unnamed topic'}")
        inner = outer.get("Message")
        notification = (_decode(inner.lstrip()[:MAX_JSON_TEXT]) if isinstance(inner, str) else _dict(inner)) or {}
    kind = _text(notification.get("notificationType") or notification.get("eventType"), 40)
    if not kind:
        return JsonNotice(
            ReplyCategory.OTHER,
            "delivery_provider_notice",
            0.8,
            [*evidence, "a provider's JSON notification that is not an SES bounce, complaint or delivery"],
        )
    evidence.append(f"an Amazon SES notification (JSON): notificationType {kind}")
    mail = _dict(notification.get("mail"))
    ids = _original_ids(mail)
    if ids:
        evidence.append(f"original Message-ID {ids[0]} found in the notification's mail headers")
    lowered = kind.lower()
    if lowered == "bounce":
        notice = _bounce(_dict(notification.get("bounce")), evidence)
    elif lowered == "complaint":
        notice = _complaint(_dict(notification.get("complaint")), evidence)
    elif lowered == "deliverydelay":
        notice = _delay(_dict(notification.get("deliveryDelay")), evidence)
    elif lowered == "delivery":
        recipients = [_text(r, 320).lower() for r in _list(_dict(notification.get("delivery")).get("recipients"))]
        notice = JsonNotice(
            ReplyCategory.OTHER,
            "delivery_notification",
            0.95,
            [*evidence, "SES delivered the message: a delivery notice, not a bounce"],
            failed_recipients=[],
        )
        if recipients:
            notice.reasons.append(f"delivered to {', '.join(r for r in recipients[:10] if r)}")
    else:
        notice = JsonNotice(
            ReplyCategory.OTHER, "delivery_provider_notice", 0.8, [*evidence, f"an SES {kind[:40]} event: not a reply"]
        )
    notice.original_ids = ids
    return notice


def _recipients(items: list[Any]) -> list[tuple[str, str | None, str, str]]:
    """(address, status, diagnostic, action) of each bounced recipient."""
    out = []
    for item in items:
        entry = _dict(item)
        address = _text(entry.get("emailAddress"), 320).lower()
        status = find_status(_text(entry.get("status"), 40))
        out.append((address, status, _text(entry.get("diagnosticCode")), _text(entry.get("action"), 40).lower()))
    return out


def _bounce(bounce: dict[str, Any], evidence: list[str]) -> JsonNotice:
    bounce_type = _text(bounce.get("bounceType"), 40) or "Undetermined"
    sub_type = _text(bounce.get("bounceSubType"), 60) or "Undetermined"
    evidence.append(f"bounceType {bounce_type}, bounceSubType {sub_type}")
    if sub_type.lower() == "unsubscribedrecipient":
        # SES list management: the recipient unsubscribed from our contact list (or its topic),
        # so SES did not send. Their choice, not a dead address nor our sending's fault.
        evidence.append("SES did not send: the recipient unsubscribed (bounceSubType UnsubscribedRecipient)")
        recipients = [r[0] for r in _recipients(_list(bounce.get("bouncedRecipients"))) if r[0]]
        return JsonNotice(
            ReplyCategory.UNSUBSCRIBE, "unsubscribed_recipient", 0.95, evidence, failed_recipients=recipients
        )
    permanent_type = bounce_type.lower() == "permanent"
    decided = bounce_type.lower() in {"permanent", "transient"}
    named = SUBTYPE_REASONS.get(sub_type.lower())
    verdicts = []
    for address, status, diagnostic, action in _recipients(_list(bounce.get("bouncedRecipients"))) or [
        ("", None, "", "")
    ]:
        status = status or find_status(diagnostic)
        code = find_reply_code(diagnostic)
        reason, why = reason_from(status, diagnostic, code)
        if named is not None and not (named is BounceReason.POLICY and reason in SENDING_SIDE_REASONS):
            reason, why = named, f"SES's bounceSubType {sub_type} says {named.value}"
        elif reason is BounceReason.UNDEFINED and permanent_type and sub_type.lower() == "general":
            # SES: "a general hard bounce ... remove the recipient's address from your list".
            reason, why = BounceReason.USER_UNKNOWN, "SES's Permanent/General: the address is to be removed"
        # SES's bounceType decides hard or soft (it has read the whole exchange); only an
        # Undetermined bounce is judged on its codes.
        permanent = permanent_type if decided else is_permanent(status, code, action or None)
        verdicts.append((address, reason, why, status, code, permanent, diagnostic))
    hard = [v for v in verdicts if category_for(v[1], v[5]) is ReplyCategory.BOUNCE_HARD]
    address, reason, why, status, code, permanent, diagnostic = (hard or verdicts)[0]
    category = category_for(reason, permanent)
    if address or diagnostic:
        evidence.append(f"recipient {address or '(unnamed)'}" + (f": {diagnostic[:160]!r}" if diagnostic else ""))
    evidence.append(f"reason {reason.value}: {why}")
    if category is ReplyCategory.BOUNCE_HARD:
        evidence.append("hard: a permanent failure that says the address itself is dead")
    else:
        why_soft = "temporary" if not permanent else f"{reason.value} does not mean the address is dead"
        evidence.append(f"soft: {why_soft}")
    if sending_side(reason):
        evidence.append(f"{reason.value} is a problem of our sending, not of the address")
    return JsonNotice(
        category,
        reason.value,
        0.97 if decided else 0.8,
        evidence,
        failed_recipients=list(dict.fromkeys(v[0] for v in verdicts if v[0])),
        status=status,
        smtp_code=code,
        sending_side=sending_side(reason),
    )


def _complaint(complaint: dict[str, Any], evidence: list[str]) -> JsonNotice:
    named = [_text(_dict(r).get("emailAddress"), 320).lower() for r in _list(complaint.get("complainedRecipients"))]
    recipients = list(dict.fromkeys(r for r in named if r))
    feedback = _text(complaint.get("complaintFeedbackType"), 40).lower()
    sub_type = _text(complaint.get("complaintSubType"), 60)
    user_agent = _text(complaint.get("userAgent"), 80)
    evidence.append(
        f"complaintFeedbackType {feedback or '(none given)'}" + (f" from {user_agent}" if user_agent else "")
    )
    if sub_type.lower() == "onaccountsuppressionlist":
        evidence.append(
            "complaintSubType OnAccountSuppressionList: an earlier complaint; SES did not send, so nothing new to count"
        )
        return JsonNotice(ReplyCategory.UNSUBSCRIBE, "ses_suppressed_complaint", 0.9, evidence, recipients)
    kind = feedback_kind(feedback) if feedback else "complaint"
    name = feedback.replace("-", "_")
    if kind == "opt_out":
        evidence.append(f"feedback type {feedback} asks for the address to be removed: an unsubscribe, not a complaint")
        return JsonNotice(ReplyCategory.UNSUBSCRIBE, f"ses_{name}", 0.95, evidence, recipients)
    if kind == "auth_failure":
        evidence.append("an authentication failure report: a problem of our sending, never of the recipient")
        return JsonNotice(
            ReplyCategory.BOUNCE_SOFT,
            BounceReason.AUTH_FAILURE.value,
            0.9,
            evidence,
            recipients,
            sending_side=True,
        )
    if kind == "notice":
        evidence.append(f"feedback type {feedback} is a machine report, not a person's complaint")
        return JsonNotice(ReplyCategory.OTHER, f"delivery_feedback_{name}", 0.9, evidence, recipients)
    return JsonNotice(
        ReplyCategory.COMPLAINT, f"ses_complaint_{name}" if name else "ses_complaint", 0.97, evidence, recipients
    )


def _delay(delay: dict[str, Any], evidence: list[str]) -> JsonNotice:
    delay_type = _text(delay.get("delayType"), 60)
    recipients = _recipients(_list(delay.get("delayedRecipients")))
    diagnostic = next((r[2] for r in recipients if r[2]), "")
    status = next((r[1] for r in recipients if r[1]), None) or find_status(diagnostic)
    reason = DELAY_REASONS.get(delay_type.lower())
    why = f"SES's delayType {delay_type}"
    if reason is None:
        not_expired = frozenset({BounceReason.EXPIRED})  # still being retried (as `_judge_recipient`)
        reason, why = reason_from(status, diagnostic, find_reply_code(diagnostic), exclude=not_expired)
    evidence.append(f"reason {reason.value}: {why}")
    evidence.append("SES is still retrying (DeliveryDelay): a delay notice, not a bounce")
    return JsonNotice(
        ReplyCategory.DELAYED,
        reason.value,
        0.95,
        evidence,
        [r[0] for r in recipients if r[0]],
        status=status,
        smtp_code=find_reply_code(diagnostic),
        sending_side=sending_side(reason),
    )
