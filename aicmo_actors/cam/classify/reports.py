"""Delivery status reports and complaints: RFC 3464, RFC 5965 ARF, and what real servers send.

Standard reports are read from their `message/delivery-status` part. Many servers put the
status and the diagnostic only in plain text (Exim, qmail, old Sendmail, Exchange's
human part, Gmail, Yahoo, Lotus Notes...) and some break MIME, so the plain text is read
too: the failed recipient next to its diagnostic, and the original Message-ID wherever
the returned message or its headers appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from aicmo_actors.cam.classify.parse import (
    first_address,
    header,
    message_ids,
    parse_message,
    part_text,
)

#: Who sends bounces (From local part or display name).
DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery (system|subsystem)|mail administrator|maildelivery|bounce|microsoftexchange|nobody@|noreply-dmarc", re.I)
#: Subjects of bounces, in the languages servers speak.
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed|failed|problem|incomplete)|returned mail|"
    r"mail delivery (failed|failure|problem|subsystem)|failure notice|could not be delivered|not delivered|"
    r"nicht zustellbar|unzustellbar|non remis|non distribu|no se puede entregar|no entregado|non recapitabile|"
    r"onbestelbaar|niet bezorgd|returned to sender|delivery notification: delivery has failed|"
    r"message not delivered|rejected:|warning: could not send|delivery delayed|delayed mail|недоставлен|не доставлено",
    re.I,
)
#: Phrases that only bounces contain (body).
BOUNCE_BODY = re.compile(
    r"this is the mail system at host|this message was created automatically by mail delivery software|"
    r"the following address\(es\) failed|hi\. this is the qmail-send program|"
    r"i'm sorry to have to inform you that your message could not|"
    r"the following addresses had permanent fatal errors|transcript of session follows|"
    r"delivery has failed to these recipients or groups|your message (to .{1,200} )?couldn't be delivered|"
    r"your message wasn't delivered|the response from the remote server was|"
    r"sorry, we were unable to deliver your message|an error occurred while trying to deliver the mail to the following recipients|"
    r"this is the mailer-daemon, please do not reply|an error has occurred while attempting to deliver a message|"
    r"message was not delivered to|delivery to the following recipient(s)? (failed|has been delayed)|"
    r"your document:.{0,200}was not delivered to|delivery failure report|"
    r"could not be delivered to one or more (of its )?recipients|unable to deliver (your )?message|"
    r"remote server returned '|diagnostic information for administrators|"
    r"permanent error|delivery to the following recipients failed|smtp error from remote (mail )?server|"
    r"retry timeout exceeded|message could not be delivered",
    re.I | re.S,
)
ABUSE_SUBJECT = re.compile(r"abuse report|complaint|feedback loop|fbl report|spam report|this is an email abuse report", re.I)


@dataclass
class Recipient:
    address: str | None
    action: str | None = None
    status: str | None = None
    diagnostic: str = ""


@dataclass
class Report:
    kind: str  # "dsn" (standard), "text" (plain-text bounce), "arf", "complaint"
    recipients: list[Recipient] = field(default_factory=list)
    original_ids: list[str] = field(default_factory=list)
    text: str = ""
    evidence: list[str] = field(default_factory=list)
    feedback_type: str | None = None


def _fields(block: str) -> dict[str, str]:
    """RFC 822-style fields of one DSN block (continuation lines folded)."""
    out: dict[str, str] = {}
    key = None
    for line in block.splitlines():
        if line[:1] in {" ", "\t"} and key:
            out[key] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            key = name.strip().lower()
            out[key] = value.strip()
    return out


def _strip_type(value: str) -> str:
    """'rfc822; a@b' -> 'a@b'; 'smtp; 550 ...' -> '550 ...'."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value.strip()


def _status_parts(msg: Message) -> list[str]:
    texts = []
    for part in msg.walk():
        if part.get_content_type() in {"message/delivery-status", "message/global-delivery-status"}:
            payload = part.get_payload()
            if isinstance(payload, list):  # the stdlib parses the blocks as header-only messages
                texts.append("\n\n".join("\n".join(f"{k}: {v}" for k, v in p.items()) for p in payload))
            else:
                texts.append(part_text(part))
    return texts


def _returned_ids(msg: Message, top_ids: set[str]) -> list[str]:
    """Message-IDs of the returned message (message/rfc822 or text/rfc822-headers)."""
    found: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in {"message/rfc822", "message/global"}:
            inner = part.get_payload()
            inner_msg = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(inner_msg, Message):
                found += message_ids(header(inner_msg, "Message-ID"))
        elif ctype in {"text/rfc822-headers", "message/rfc822-headers", "text/global-headers"}:
            headers = parse_message(part_text(part).encode("utf-8", "replace"))
            found += message_ids(header(headers, "Message-ID"))
    return [i for i in dict.fromkeys(found) if i not in top_ids]


_INLINE_MSGID = re.compile(r"^[ \t>]*message-id:[ \t]*(<[^<>\s]+@[^<>\s]+>)", re.I | re.M)
#: "<addr>: host x said: 550 ..." (Postfix), "addr\n    SMTP error ... 550" (Exim), "<addr>:\nSorry..." (qmail).
_RCPT_LINE = re.compile(r"^[ \t]*<?([\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+)>?:?[ \t]*(.*)$", re.M)


def _text_recipients(text: str, skip: set[str]) -> list[Recipient]:
    """Failed recipients and their diagnostics from a plain-text bounce."""
    out: dict[str, Recipient] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _RCPT_LINE.match(line)
        if not match:
            continue
        address = match.group(1).lower()
        if address in skip or address in out:
            continue
        following = " ".join(lines[index + 1 : index + 6])
        diagnostic = " ".join((match.group(2) + " " + following).split())
        out[address] = Recipient(address, "failed", None, diagnostic[:600])
    return list(out.values())


def _all_text(msg: Message) -> str:
    texts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype.startswith("text/") and ctype not in {"text/rfc822-headers"}:
            texts.append(part_text(part))
    return "\n".join(texts)


def looks_like_bounce(msg: Message, text: str) -> list[str]:
    """The evidence that `msg` is a bounce (empty: it is not)."""
    evidence = []
    ctype = msg.get_content_type()
    report_type = (msg.get_param("report-type") or "") if ctype == "multipart/report" else ""
    if ctype == "multipart/report" and str(report_type).lower() in {"delivery-status", "global-delivery-status"}:
        evidence.append("multipart/report; report-type=delivery-status (RFC 3464)")
    if header(msg, "X-Failed-Recipients"):
        evidence.append("X-Failed-Recipients header")
    sender = header(msg, "From")
    subject = header(msg, "Subject")
    if DAEMON.search(sender) and BOUNCE_SUBJECT.search(subject):
        evidence.append(f"from {sender!r} with bounce subject {subject!r}")
    body_match = BOUNCE_BODY.search(text[:20000])
    if body_match and (DAEMON.search(sender) or BOUNCE_SUBJECT.search(subject) or not header(msg, "In-Reply-To")):
        evidence.append(f"bounce text {body_match.group(0)[:60]!r}")
    return evidence


def read_bounce(msg: Message, own_address: str | None) -> Report:
    top_ids = set(message_ids(header(msg, "Message-ID")))
    text = _all_text(msg)
    report = Report("text", text=text)
    blocks = _status_parts(msg)
    for block in blocks:
        parts = [b for b in re.split(r"\n[ \t]*\n", block) if b.strip()]
        for part in parts:
            f = _fields(part)
            if "final-recipient" not in f and "original-recipient" not in f and "action" not in f:
                continue
            address = first_address(_strip_type(f.get("final-recipient") or f.get("original-recipient") or ""))
            report.recipients.append(
                Recipient(address, (f.get("action") or "").lower() or None, f.get("status"), _strip_type(f.get("diagnostic-code", "")))
            )
    if report.recipients:
        report.kind = "dsn"
    skip = {a for a in (own_address,) if a} | {first_address(header(msg, "To")) or ""}
    if not report.recipients:
        failed = [a.strip().lower() for a in header(msg, "X-Failed-Recipients").split(",") if "@" in a]
        from_text = _text_recipients(text, skip)
        by_address = {r.address: r for r in from_text}
        for address in failed:
            by_address.setdefault(address, Recipient(address, "failed"))
        report.recipients = list(by_address.values())
        if failed:
            report.recipients.sort(key=lambda r: r.address not in failed)
    else:
        # Standard reports often keep the useful diagnostic only in the human part.
        for rcpt in report.recipients:
            if not rcpt.diagnostic and rcpt.address:
                near = _text_recipients(text, skip)
                rcpt.diagnostic = next((r.diagnostic for r in near if r.address == rcpt.address), "")
    report.original_ids = _returned_ids(msg, top_ids)
    if not report.original_ids:
        inline = [m for m in _INLINE_MSGID.findall(text) if m not in top_ids]
        report.original_ids = list(dict.fromkeys(inline))
    return report


def read_complaint(msg: Message, text: str) -> Report | None:
    """An ARF report (RFC 5965) or a provider's complaint notification; None if neither."""
    ctype = msg.get_content_type()
    report_type = str(msg.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""
    top_ids = set(message_ids(header(msg, "Message-ID")))
    if report_type == "feedback-report" or any(p.get_content_type() == "message/feedback-report" for p in msg.walk()):
        report = Report("arf", evidence=["multipart/report; report-type=feedback-report (RFC 5965 ARF)"])
        for part in msg.walk():
            if part.get_content_type() == "message/feedback-report":
                payload = part.get_payload()
                block = "\n".join(f"{k}: {v}" for p in payload for k, v in p.items()) if isinstance(payload, list) else part_text(part)
                f = _fields(block)
                report.feedback_type = (f.get("feedback-type") or "abuse").lower()
                rcpt = first_address(f.get("original-rcpt-to", ""))
                if rcpt:
                    report.recipients.append(Recipient(rcpt, "complaint"))
        report.original_ids = _returned_ids(msg, top_ids)
        return report
    subject = header(msg, "Subject")
    if ABUSE_SUBJECT.search(subject) and (DAEMON.search(header(msg, "From")) or re.search(r"abuse|fbl|feedback|complaints?@|jmrp|scomp", header(msg, "From"), re.I)):
        report = Report("complaint", evidence=[f"complaint notification {subject!r} from {header(msg, 'From')!r}"])
        report.original_ids = _returned_ids(msg, top_ids) or [m for m in _INLINE_MSGID.findall(text) if m not in top_ids]
        hm = first_address(header(msg, "X-HmXmrOriginalRecipient"))
        if hm:
            report.recipients.append(Recipient(hm, "complaint"))
        return report
    return None
