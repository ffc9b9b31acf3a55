"""The classifier as a pure function: raw message bytes -> `Classification`, with its evidence.

Order follows what a message can be, and the first that fits wins:

1. a provider's JSON notification delivered as mail (Amazon SES through SNS: bounce,
   complaint, delivery, delay), read from its JSON, never from its footer; SES's
   UnsubscribedRecipient (the recipient left our contact list) is an unsubscribe;
2. a delivery report (bounce): RFC 3464 or the plain text real servers send; an automatic
   bounce is never an auto-reply, whatever headers it carries, and an automatic message
   (Auto-Submitted, X-Autoreply ...) whose text reports a failed delivery is a bounce.
   A report whose every recipient is still being retried (Action: delayed) is a delay
   notice, not a bounce. A report forwarded to us (attached or inline) is read as the
   report; a list's or a Sieve script's refusal of our message is a soft `filtered` bounce,
   and a list manager holding our post for its moderator is a machine notice;
3. a feedback report (RFC 5965 ARF, or a provider's feedback-loop notice), by its type:
   abuse, fraud, virus, other are complaints; opt-out is an unsubscribe; auth-failure
   (RFC 6591, DMARC failure reports, and the same written as plain text) is a soft bounce
   for `auth_failure`, a problem of our sending; read receipts and delivery notices
   ("delivered", "relayed") are machine notices: `other`;
4. a message carrying our unsubscribe token (our List-Unsubscribe mailto), whatever it says;
   a confirmation that the address was unsubscribed, and a mail client's "unsubscribe"
   (the subject or the whole text is the word), even when marked Auto-Submitted;
5. an auto-reply (RFC 3834 headers, the de-facto headers, subject and body phrases);
6. a request to unsubscribe;
7. the intent of a person's reply, read without its quotes and signature.

`judge_smtp_reply` applies the same bounce-reason logic to the replies our sender gets at
send time. Nothing here does I/O; `classify_message` never raises, and its cost grows
linearly with the message: every pattern is written so that no input makes it backtrack
over the same text again and again, and `ParseLimits` bounds what is parsed at all. Still,
the service runs it in a child process with a time limit (`gateways.isolated`), through
`classify_to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import TypedDict

from aicmo_actors.cam.classify.arf import (
    Complaint,
    feedback_kind,
    read_complaint,
    read_receipt_ids,
)
from aicmo_actors.cam.classify.autoreply import (
    auto_reply_evidence,
    automatic_marker,
    delivery_failure_evidence,
    left_company,
    return_date,
)
from aicmo_actors.cam.classify.dsn import (
    BounceReport,
    Recipient,
    bounce_evidence,
    held_for_moderation,
    notification_text,
    read_bounce,
    says_delayed,
)
from aicmo_actors.cam.classify.intent import (
    classify_intent,
    unsubscribe_command,
    unsubscribe_confirmation,
    unsubscribe_request,
    unsubscribe_token,
)
from aicmo_actors.cam.classify.limits import ParseLimits, bound
from aicmo_actors.cam.classify.parse import (
    addresses,
    body_text,
    header,
    mailbox_addresses,
    message_ids,
    message_text,
    normalise_line_ends,
    parse_message,
    raw_headers,
)
from aicmo_actors.cam.classify.provider_json import JsonNotice, read_provider_json
from aicmo_actors.cam.classify.quotes import strip_quoted
from aicmo_actors.cam.classify.reasons import (
    category_for,
    find_reply_code,
    find_status,
    is_permanent,
    reason_from,
    sending_side,
)
from contracts.cam import BounceReason, Classification, ReplyCategory

__all__ = [
    "ParseLimits",
    "SmtpJudgement",
    "body_text",
    "classify_message",
    "classify_to_json",
    "judge_smtp_reply",
    "parse_message",
    "strip_quoted",
]

#: At or above this auto-reply score the message is an auto-reply before any intent is read.
AUTO_REPLY_THRESHOLD = 0.7
#: Headers that name where a message was delivered, most specific first (`delivered_to`).
DELIVERED_TO_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
MAX_DELIVERED_TO = 20
#: Characters of a reply's text read for its intent: a person's own words come first, and
#: what follows a few pages is quotes, signatures and pasted documents.
MAX_REPLY_TEXT = 200_000
DEFAULT_LIMITS = ParseLimits()


# -- send time -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmtpJudgement:
    """What an SMTP reply our sender got means: hard or soft, why, and whose problem it is."""

    category: ReplyCategory  # BOUNCE_HARD or BOUNCE_SOFT
    reason: BounceReason | None
    status: str | None  # enhanced status code found in the text, e.g. "5.1.1"
    sending_side: bool


def judge_smtp_reply(code: int | None, text: str, *, stage: str = "data") -> SmtpJudgement:
    """Judge an SMTP reply our sender got at send time (stage: connect, mail, rcpt or data).

    With no reply code (the connection failed) the failure is temporary and, when the text
    names nothing better, a network error. A rejection of MAIL FROM is about our sender
    address, never about the lead's: an "unknown" there becomes a policy problem of ours
    (and so does an "unknown user" at connect time, before any recipient was named).
    """
    text = text or ""
    status = find_status(text)
    reason, _why = reason_from(status, text, code)
    if code is None and reason in {BounceReason.UNDEFINED, BounceReason.SYSTEM_ERROR}:
        reason = BounceReason.NETWORK_ERROR
    if stage == "mail" and reason in {BounceReason.USER_UNKNOWN, BounceReason.HOST_UNKNOWN, BounceReason.HAS_MOVED}:
        reason = BounceReason.POLICY
    if stage == "connect" and reason in {BounceReason.USER_UNKNOWN, BounceReason.HAS_MOVED}:
        reason = BounceReason.POLICY
    permanent = is_permanent(status, code) if (status or code is not None) else False
    return SmtpJudgement(category_for(reason, permanent), reason, status, sending_side(reason))


# -- helpers -------------------------------------------------------------------------------------
class _Identity(TypedDict):
    """The fields every classification carries about the message itself."""

    from_address: str | None
    subject: str | None
    message_id: str | None
    unsubscribe_token: str | None
    delivered_to: tuple[str, ...]


class _Thread(TypedDict):
    """What a reply refers to."""

    in_reply_to: str | None
    referenced_ids: tuple[str, ...]


def _date_header(msg: Message) -> datetime | None:
    try:
        value = header(msg, "Date")
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _referenced(msg: Message) -> list[str]:
    """In-Reply-To first, then References from the newest back."""
    ids = message_ids(header(msg, "In-Reply-To"))
    ids += list(reversed(message_ids(header(msg, "References"))))
    return list(dict.fromkeys(ids))


def _sender(msg: Message) -> str | None:
    """The real address of the From header's first mailbox (never one in its display name)."""
    values = raw_headers(msg, "From")
    found = mailbox_addresses(values[0], limit=1) if values else []
    return found[0] if found else None


def _delivered_to(msg: Message) -> tuple[str, ...]:
    """The addresses the message was delivered to, from DELIVERED_TO_HEADERS, in that order."""
    found: dict[str, None] = {}
    for name in DELIVERED_TO_HEADERS:
        for value in raw_headers(msg, name):
            for address in mailbox_addresses(value, limit=MAX_DELIVERED_TO):
                found.setdefault(address)
                if len(found) >= MAX_DELIVERED_TO:
                    return tuple(found)
    return tuple(found)


def _has_headers(msg: Message) -> bool:
    try:
        keys = msg.keys()
    except Exception:
        return False
    return any(k and all(c.isalnum() or c in "-_" for c in k) for k in keys)


def _unreadable(reason: str, why: str) -> Classification:
    return Classification(category=ReplyCategory.OTHER, reason=reason, confidence=0.1, reasons=(why,))


def _snippet(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- 1. provider JSON notifications --------------------------------------------------------------
def _provider_notice(notice: JsonNotice, referenced: list[str], common: _Identity) -> Classification:
    ids = list(dict.fromkeys([*notice.original_ids, *referenced]))
    return Classification(
        category=notice.category,
        reason=notice.reason,
        confidence=notice.confidence,
        reasons=tuple(notice.reasons),
        failed_recipients=tuple(notice.failed_recipients),
        status=notice.status,
        smtp_code=notice.smtp_code,
        in_reply_to=ids[0] if ids else None,
        referenced_ids=tuple(ids),
        sending_side=notice.sending_side,
        **common,
    )


# -- 2. bounces ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Verdict:
    rcpt: Recipient
    reason: BounceReason
    why: str
    status: str | None
    code: int | None
    permanent: bool
    category: ReplyCategory


_TextReasons = dict[tuple[str | None, int | None, frozenset[BounceReason]], tuple[BounceReason, str]]


def _judge_recipient(rcpt: Recipient, report: BounceReport, from_text: _TextReasons) -> _Verdict:
    """One failed recipient: its reason from its own diagnostic, else from the report's text.

    A delayed delivery is still being retried, so it is never `expired` (Exchange says
    "4.4.7 Message delayed" in its delay notices): the next reason the text gives is taken.
    The report's text is judged once per status and code (`from_text`), not per recipient.
    """
    action = rcpt.action or "failed"
    exclude = frozenset({BounceReason.EXPIRED}) if action == "delayed" else frozenset()
    status = rcpt.status or find_status(rcpt.diagnostic)
    code = rcpt.code or find_reply_code(rcpt.diagnostic)
    reason, why = reason_from(status, rcpt.diagnostic, code, exclude=exclude, phase=rcpt.phase)
    if reason is BounceReason.UNDEFINED and report.human_text:
        status = status or find_status(report.human_text)
        code = code or find_reply_code(report.human_text)
        key = (status, code, exclude)
        if key not in from_text:
            from_text[key] = reason_from(status, report.human_text, code, exclude=exclude)
        reason, why = from_text[key]
        why = f"{why} (in the report's text)"
    if (
        action == "failed"
        and status
        and status.startswith("4")
        and reason in {BounceReason.NETWORK_ERROR, BounceReason.UNDEFINED, BounceReason.SYSTEM_ERROR}
    ):
        why = f"the server gave up retrying a temporary failure ({reason.value}, status {status})"
        reason = BounceReason.EXPIRED
    permanent = is_permanent(status, code, action)
    return _Verdict(rcpt, reason, why, status, code, permanent, category_for(reason, permanent))


def _bounce(
    msg: Message, human: str, fields: str, evidence: list[str], referenced: list[str], common: _Identity
) -> Classification:
    report = read_bounce(msg, human, fields)
    ids = list(dict.fromkeys([*report.original_ids, *referenced]))
    reasons = list(evidence)
    if report.original_ids:
        reasons.append(f"original Message-ID {report.original_ids[0]} found inside the report")
    failed = [r for r in report.recipients if r.failed]
    if report.recipients and not failed:
        actions = sorted({r.action or "" for r in report.recipients})
        return Classification(
            category=ReplyCategory.OTHER,
            reason="delivery_notification",
            confidence=0.95 if report.structured else 0.8,
            reasons=(*reasons, f"every recipient's Action is {', '.join(actions)}: a delivery notice, not a bounce"),
            in_reply_to=ids[0] if ids else None,
            referenced_ids=tuple(ids),
            **common,
        )
    if not failed:
        failed = [Recipient(None, "delayed" if says_delayed(common["subject"] or "", human) else None)]
        reasons.append("no failed recipient named: judged on the report's text")
    from_text: _TextReasons = {}
    verdicts = [_judge_recipient(r, report, from_text) for r in failed]
    # A report that mixes failed and delayed recipients is judged on the failed ones.
    delayed = [v for v in verdicts if v.rcpt.action == "delayed"]
    verdicts = [v for v in verdicts if v.rcpt.action != "delayed"] or delayed
    still_trying = verdicts is delayed
    primary = next((v for v in verdicts if v.category is ReplyCategory.BOUNCE_HARD), verdicts[0])
    rcpt = primary.rcpt
    detail = [f"Action: {rcpt.action}" if rcpt.action else "", f"Status: {primary.status}" if primary.status else ""]
    described = ", ".join(d for d in detail if d)
    if rcpt.address or described or rcpt.diagnostic:
        line = f"recipient {rcpt.address or '(unnamed)'}"
        line += f" ({described})" if described else ""
        line += f": {_snippet(rcpt.diagnostic)!r}" if rcpt.diagnostic else ""
        reasons.append(line)
    reasons.append(f"reason {primary.reason.value}: {primary.why}")
    if still_trying:
        reasons.append("the server is still retrying (Action: delayed): a delay notice, not a bounce")
    elif primary.category is ReplyCategory.BOUNCE_HARD:
        reasons.append("hard: a permanent failure that says the address itself is dead")
    else:
        why_soft = "temporary" if not primary.permanent else f"{primary.reason.value} does not mean the address is dead"
        reasons.append(f"soft: {why_soft}")
    if sending_side(primary.reason):
        reasons.append(f"{primary.reason.value} is a problem of our sending, not of the address")
    others = [v for v in verdicts if v is not primary and v.rcpt.address]
    if others:
        also = "also delayed" if still_trying else "also failed"
        reasons.append(f"{also}: " + "; ".join(f"{v.rcpt.address} ({v.reason.value})" for v in others[:10]))
    if delayed and not still_trying:
        named = [v.rcpt.address for v in delayed if v.rcpt.address]
        reasons.append("still being retried, not counted: " + (", ".join(named[:10]) or "(unnamed)"))
    if report.unread_recipients:
        reasons.append(f"{report.unread_recipients} more recipients not read")
    if auto := header(msg, "Auto-Submitted"):
        reasons.append(f"Auto-Submitted: {auto} ignored: an automatic bounce is never an auto-reply")
    if report.structured:
        confidence = 0.97
    elif primary.status or primary.code:
        confidence = 0.9
    elif rcpt.address:
        confidence = 0.85
    else:
        confidence = 0.7
    if primary.reason is BounceReason.UNDEFINED and not still_trying:
        confidence = min(confidence, 0.75)  # hard or soft cannot be told (a delay counts as neither)
    failed_addresses = [v.rcpt.address for v in verdicts if v.rcpt.address]
    return Classification(
        category=ReplyCategory.DELAYED if still_trying else primary.category,
        reason=primary.reason.value,
        confidence=confidence,
        reasons=tuple(reasons),
        failed_recipients=tuple(dict.fromkeys(failed_addresses)),
        status=primary.status,
        smtp_code=primary.code,
        in_reply_to=ids[0] if ids else None,
        referenced_ids=tuple(ids),
        sending_side=sending_side(primary.reason),
        **common,
    )


# -- 3. feedback reports -------------------------------------------------------------------------
def _complaint(complaint: Complaint, referenced: list[str], common: _Identity) -> Classification:
    ids = list(dict.fromkeys([*complaint.original_ids, *referenced]))
    reasons = list(complaint.evidence)
    if complaint.original_ids:
        reasons.append(f"original Message-ID {complaint.original_ids[0]} found inside the report")
    feedback = complaint.feedback_type or "abuse"
    name = feedback.replace("-", "_")
    kind = feedback_kind(feedback) if complaint.kind == "arf" else "complaint"
    on_our_side = False
    if kind == "opt_out":
        category, reason, confidence = ReplyCategory.UNSUBSCRIBE, f"arf_{name}", 0.95
        reasons.append(f"Feedback-Type {feedback} asks for the address to be removed: an unsubscribe, not a complaint")
    elif kind == "auth_failure":
        # Our mail failed SPF/DKIM/DMARC: a soft bounce for auth_failure, so it counts against
        # the sending mailbox (cam.decision) and never against the lead (lead_rules).
        category, reason, confidence = ReplyCategory.BOUNCE_SOFT, BounceReason.AUTH_FAILURE.value, 0.95
        on_our_side = True
        reasons.append(
            "an authentication failure report (RFC 6591): our mail failed SPF/DKIM/DMARC, "
            "a problem of our sending, not a person's complaint"
        )
    elif kind == "notice":
        category, reason, confidence = ReplyCategory.OTHER, f"delivery_feedback_{name}", 0.9
        reasons.append(f"Feedback-Type {feedback} is a machine report, not a person's complaint")
    elif complaint.kind == "arf":
        category, reason, confidence = ReplyCategory.COMPLAINT, f"arf_{name}", 0.97
    else:
        category, reason, confidence = ReplyCategory.COMPLAINT, "fbl_complaint", 0.85
    return Classification(
        category=category,
        reason=reason,
        confidence=confidence,
        reasons=tuple(reasons),
        failed_recipients=tuple(complaint.recipients),
        in_reply_to=ids[0] if ids else None,
        referenced_ids=tuple(ids),
        sending_side=on_our_side,
        **common,
    )


# -- 4.-7. replies -------------------------------------------------------------------------------
def _replies(msg: Message, text: str, referenced: list[str], common: _Identity) -> Classification:
    subject = common["subject"] or ""
    text = text[:MAX_REPLY_TEXT]
    own = strip_quoted(text)
    readable = own or text
    sent_at = _date_header(msg)
    sent = sent_at.date() if sent_at else None
    offset = sent_at.utcoffset() if sent_at else None
    us_style = bool(offset is not None and offset.total_seconds() < 0)
    thread: _Thread = {"in_reply_to": referenced[0] if referenced else None, "referenced_ids": tuple(referenced)}

    token = common["unsubscribe_token"] or unsubscribe_token("", own)
    if token:
        where = "the subject" if common["unsubscribe_token"] else "the first lines of the text"
        return Classification(
            category=ReplyCategory.UNSUBSCRIBE,
            reason="unsubscribe",
            confidence=0.97,
            reasons=(
                f"our unsubscribe token is in {where} ('unsubscribe {token[:6]}...', our List-Unsubscribe mailto)",
            ),
            **thread,
            **{**common, "unsubscribe_token": token},
        )

    def as_unsubscribe(reason: str, confidence: float, why: str) -> Classification:
        return Classification(
            category=ReplyCategory.UNSUBSCRIBE,
            reason=reason,
            confidence=confidence,
            reasons=(why,),
            **thread,
            **common,
        )

    # What the message says outranks the headers that say a machine sent it.
    machine = automatic_marker(msg)
    confirmed = None if left_company(readable) else unsubscribe_confirmation(own, subject)
    if confirmed:
        note = f" ({machine} does not make it an auto-reply)" if machine else ""
        return as_unsubscribe(
            "unsubscribe_confirmation", 0.9, f"confirms the address was unsubscribed: {confirmed!r}{note}"
        )
    command = unsubscribe_command(own, subject) if machine else None
    if command:
        return as_unsubscribe(
            "unsubscribe", 0.9, f"a mail client's unsubscribe message: {command!r} ({machine}: sent by a program)"
        )

    auto = auto_reply_evidence(msg, subject, readable, sent)

    def as_auto_reply(confidence: float, extra: list[str]) -> Classification:
        left = left_company(readable)
        back = return_date(f"{readable}\n{subject}", sent, us_style=us_style)
        reasons = [*auto.reasons, *extra]
        if left:
            reasons = [r for r in reasons if not r.startswith("says the person is gone")]
            reasons.append(f"says the person left or the mailbox is dead ({left!r}): a human should look")
        reasons.append(f"back on {back.isoformat()}" if back else "no return date found")
        return Classification(
            category=ReplyCategory.AUTO_REPLY,
            reason="left_company" if left else auto.code,
            confidence=round(confidence, 3),
            reasons=tuple(reasons),
            return_date=back,
            **thread,
            **common,
        )

    if auto.score >= AUTO_REPLY_THRESHOLD:
        return as_auto_reply(auto.score, [])

    asked = unsubscribe_request(own, subject)
    if asked:
        return as_unsubscribe("unsubscribe", 0.92, f"asks to be removed: {asked!r}")

    intent = classify_intent(own, common["from_address"])
    if intent.category == "other" and auto.score:
        return as_auto_reply(auto.score, ["no intent of a person found: taken as an automatic reply, unsurely"])
    reasons = list(intent.evidence)
    if not own.strip() and text.strip():
        reasons.append("the reply has no text of its own (only quotes or a signature)")
    if auto.score:
        reasons.append(f"looks partly automatic ({'; '.join(auto.reasons)}), but a person's intent was found")
    if (left := left_company(own)) and intent.category != "other":
        reasons.append(f"says someone left: {left!r}")
    return Classification(
        category=ReplyCategory(intent.category),
        reason=intent.category if intent.category != "other" else None,
        confidence=round(intent.confidence, 3),
        reasons=tuple(reasons),
        **thread,
        **common,
    )


# -- the whole ---------------------------------------------------------------------------------
def classify_message(raw: bytes, *, limits: ParseLimits | None = None) -> Classification:
    """Classify one inbound message; never raises (a message we cannot read is `other`).

    Past one of `limits` (default `ParseLimits()`) the message is classified from what was
    read before it, and `limited` says which limit stopped the reading.
    """
    try:
        return _classify(raw, limits or DEFAULT_LIMITS)
    except Exception as exc:  # a pure function over hostile input: report, never crash the actor
        return _unreadable("unparsable", f"could not read the message: {type(exc).__name__}: {exc}"[:300])


def classify_to_json(raw: bytes, *, limits: ParseLimits | None = None) -> str:
    """`classify_message` as JSON text, read back with `Classification.model_validate_json`:
    the entry point for a child process (`gateways.isolated.IsolatedWorker`)."""
    return classify_message(raw, limits=limits).model_dump_json()


def _classify(raw: bytes, limits: ParseLimits) -> Classification:
    if not raw or not raw.strip():
        return _unreadable("empty", "the message is empty")
    bounded = bound(normalise_line_ends(raw), limits)
    classification = _classify_parsed(parse_message(bounded.raw))
    if bounded.limited is None:
        return classification
    return classification.model_copy(
        update={
            "limited": bounded.limited,
            "reasons": (*classification.reasons, f"read only in part: {bounded.limited}"),
        }
    )


def _classify_parsed(msg: Message) -> Classification:
    if not _has_headers(msg):
        return _unreadable("unparsable", "no mail headers found: not a message we can read")
    own_ids = message_ids(header(msg, "Message-ID"))
    subject = header(msg, "Subject")
    common: _Identity = {
        "from_address": _sender(msg),
        "subject": subject or None,
        "message_id": own_ids[0] if own_ids else None,
        "unsubscribe_token": unsubscribe_token(subject),
        "delivered_to": _delivered_to(msg),
    }
    referenced = _referenced(msg)

    text = message_text(msg)
    notice = read_provider_json(msg, text)
    if notice is not None:
        return _provider_notice(notice, referenced, common)

    human, fields = notification_text(msg)
    evidence = bounce_evidence(msg, human, fields)
    if not evidence and automatic_marker(msg):
        evidence = delivery_failure_evidence(msg, strip_quoted(human) or human)
    if evidence:
        return _bounce(msg, human, fields, evidence, referenced, common)

    if held := held_for_moderation(msg, human or text):
        return Classification(
            category=ReplyCategory.OTHER,
            reason="delivery_held_for_moderation",
            confidence=0.85,
            reasons=(f"a mailing list holds our message for its moderator ({held!r}): not delivered yet, nor refused",),
            in_reply_to=referenced[0] if referenced else None,
            referenced_ids=tuple(referenced),
            **common,
        )

    complaint = read_complaint(msg, set(addresses(header(msg, "To"))))
    if complaint is not None:
        return _complaint(complaint, referenced, common)

    receipt_ids = read_receipt_ids(msg)
    if receipt_ids is not None:
        ids = list(dict.fromkeys([*receipt_ids, *referenced]))
        return Classification(
            category=ReplyCategory.OTHER,
            reason="delivery_read_receipt",
            confidence=0.95,
            reasons=("multipart/report; report-type=disposition-notification: a read receipt (RFC 8098), not a reply",),
            in_reply_to=ids[0] if ids else None,
            referenced_ids=tuple(ids),
            **common,
        )
    return _replies(msg, text, referenced, common)
