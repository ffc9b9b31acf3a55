"""The classifier as a pure function: raw message bytes -> `Classification`, with its evidence.

Order matters and follows what a message can be: a delivery report first (an automatic
bounce is never an auto-reply, whatever its headers say), then a complaint, then an
auto-reply, then the intent of a human reply read without its quotes and signature.
`judge_smtp_reply` applies the same bounce-reason logic to the replies our sender gets
at send time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from email.message import Message
from email.utils import parsedate_to_datetime

from aicmo_actors.cam.classify.autoreply import auto_reply_evidence, left_company, return_date
from aicmo_actors.cam.classify.intent import classify_intent, strip_quoted
from aicmo_actors.cam.classify.parse import (
    body_text,
    first_address,
    header,
    message_ids,
    message_text,
    parse_message,
)
from aicmo_actors.cam.classify.reasons import (
    category_for,
    find_reply_code,
    find_status,
    is_permanent,
    reason_from,
    sending_side,
)
from aicmo_actors.cam.classify.reports import looks_like_bounce, read_bounce, read_complaint
from contracts.cam import BounceReason, Classification, ReplyCategory

__all__ = ["SmtpJudgement", "body_text", "classify_message", "judge_smtp_reply", "strip_quoted"]

#: Reports whose every recipient has one of these actions are not failures (RFC 3464 2.3.3).
NOT_FAILED = frozenset({"delivered", "relayed", "expanded"})


@dataclass(frozen=True)
class SmtpJudgement:
    category: ReplyCategory  # BOUNCE_HARD or BOUNCE_SOFT
    reason: BounceReason | None
    status: str | None
    sending_side: bool


def judge_smtp_reply(code: int | None, text: str, *, stage: str = "data") -> SmtpJudgement:
    """Judge an SMTP reply our sender got (stage: connect, mail, rcpt or data)."""
    status = find_status(text)
    reason, _ = reason_from(status, text)
    if reason is BounceReason.UNDEFINED and code is None:
        reason = BounceReason.NETWORK_ERROR
    permanent = is_permanent(status, code) if (status or code) else False
    if stage in {"connect", "mail"} and reason in {BounceReason.USER_UNKNOWN, BounceReason.HOST_UNKNOWN}:
        # A rejection before RCPT is about us (our sender address or our host), not the lead.
        reason = BounceReason.POLICY
    return SmtpJudgement(category_for(reason, permanent), reason, status, sending_side(reason))


def _sent_date(msg: Message) -> date | None:
    try:
        value = header(msg, "Date")
        return parsedate_to_datetime(value).date() if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _referenced(msg: Message) -> list[str]:
    ids = message_ids(header(msg, "In-Reply-To"))
    ids += list(reversed(message_ids(header(msg, "References"))))
    return list(dict.fromkeys(ids))


def classify_message(raw: bytes) -> Classification:
    """Classify one inbound message; never raises (a message we cannot read is `other`)."""
    try:
        return _classify(raw)
    except Exception as exc:  # a pure function over hostile input: report, never crash the actor
        return Classification(
            category=ReplyCategory.OTHER,
            reason="unparsable",
            confidence=0.1,
            reasons=(f"could not read the message: {type(exc).__name__}: {exc}"[:300],),
        )


def _classify(raw: bytes) -> Classification:
    if not raw or not raw.strip():
        return Classification(category=ReplyCategory.OTHER, reason="empty", confidence=0.1, reasons=("the message is empty",))
    msg = parse_message(raw)
    if not msg.keys() and not msg.get_payload():
        return Classification(category=ReplyCategory.OTHER, reason="unparsable", confidence=0.1, reasons=("no headers or body found",))
    subject = header(msg, "Subject")
    sender = first_address(header(msg, "From"))
    own_ids = message_ids(header(msg, "Message-ID"))
    common = {
        "from_address": sender,
        "subject": subject or None,
        "message_id": own_ids[0] if own_ids else None,
    }
    referenced = _referenced(msg)
    text = message_text(msg)

    # 1. Delivery reports.
    evidence = looks_like_bounce(msg, text)
    if evidence:
        report = read_bounce(msg, sender)
        ids = list(dict.fromkeys([*report.original_ids, *referenced]))
        failed = [r for r in report.recipients if (r.action or "failed") not in NOT_FAILED]
        if report.recipients and not failed:
            actions = sorted({r.action or "" for r in report.recipients})
            return Classification(
                category=ReplyCategory.OTHER,
                reason="delivery_notification",
                confidence=0.9,
                reasons=(*evidence, f"every recipient's Action is {', '.join(actions)}: delivered, not a bounce"),
                in_reply_to=ids[0] if ids else None,
                referenced_ids=tuple(ids),
                **common,
            )
        first = failed[0] if failed else None
        diagnostic = first.diagnostic if first else ""
        status = (first.status if first and first.status else None) or find_status(diagnostic) or find_status(report.text)
        code = find_reply_code(diagnostic) or find_reply_code(report.text)
        whole = f"{diagnostic}\n{report.text[:6000]}"
        reason, why = reason_from(status, diagnostic)
        if reason is BounceReason.UNDEFINED:
            reason, why = reason_from(status, whole)
        action = first.action if first else None
        permanent = is_permanent(status, code, action)
        if action == "delayed" and reason is BounceReason.UNDEFINED:
            reason, why = BounceReason.NETWORK_ERROR, "delivery delayed, still retrying"
        category = category_for(reason, permanent)
        reasons = [*evidence, f"reason {reason.value}: {why}"]
        if status:
            reasons.append(f"status {status} ({'permanent' if permanent else 'temporary'})")
        if action == "delayed":
            reasons.append("Action: delayed: the server is still trying")
        if auto := header(msg, "Auto-Submitted"):
            reasons.append(f"Auto-Submitted: {auto} ignored: a bounce is never an auto-reply")
        return Classification(
            category=category,
            reason=reason.value,
            confidence=0.97 if report.kind == "dsn" else 0.85,
            reasons=tuple(reasons),
            failed_recipients=tuple(r.address for r in failed if r.address),
            status=status,
            smtp_code=code,
            in_reply_to=ids[0] if ids else None,
            referenced_ids=tuple(ids),
            sending_side=sending_side(reason),
            **common,
        )

    # 2. Complaints.
    complaint = read_complaint(msg, text)
    if complaint is not None:
        ids = list(dict.fromkeys([*complaint.original_ids, *referenced]))
        reasons = list(complaint.evidence)
        if complaint.feedback_type:
            reasons.append(f"Feedback-Type: {complaint.feedback_type}")
        return Classification(
            category=ReplyCategory.COMPLAINT,
            reason=f"arf_{complaint.feedback_type}" if complaint.feedback_type else "complaint_notification",
            confidence=0.97 if complaint.kind == "arf" else 0.85,
            reasons=tuple(reasons),
            failed_recipients=tuple(r.address for r in complaint.recipients if r.address),
            in_reply_to=ids[0] if ids else None,
            referenced_ids=tuple(ids),
            **common,
        )

    # 3. Auto-replies.
    own_text = strip_quoted(text)
    evidence, score = auto_reply_evidence(msg, subject, own_text or text)
    if score >= 0.75:
        left = left_company(own_text or text)
        back = return_date(own_text or text, _sent_date(msg))
        reasons = list(evidence)
        if left:
            reasons.append(f"says the person left: {left!r}")
        if back:
            reasons.append(f"back on {back.isoformat()}")
        return Classification(
            category=ReplyCategory.AUTO_REPLY,
            reason="left_company" if left else ("auto_submitted_header" if score >= 0.95 else "ooo_text"),
            confidence=score,
            reasons=tuple(reasons),
            return_date=back,
            in_reply_to=referenced[0] if referenced else None,
            referenced_ids=tuple(referenced),
            **common,
        )

    # 4. A human reply.
    category, confidence, why = classify_intent(own_text)
    return Classification(
        category=ReplyCategory(category),
        reason=category if category != "other" else None,
        confidence=confidence,
        reasons=(why,),
        in_reply_to=referenced[0] if referenced else None,
        referenced_ids=tuple(referenced),
        **common,
    )
