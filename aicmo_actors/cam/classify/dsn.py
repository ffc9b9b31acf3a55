"""Delivery status reports: RFC 3464 and the plain-text formats real servers send.

Standard reports are read from their `message/delivery-status` part, one block of fields
per recipient (Final-Recipient, Action, Status, Diagnostic-Code ...). Many servers put the
address and the diagnostic only in the human-readable text (Exim, qmail, Sendmail,
OpenSMTPD, Exchange, Yahoo, Zoho, Lotus Notes/Domino, mail.ru ...) and some break MIME,
so the human text is read too: each address that starts a line, with the lines that
follow it. The returned original message is never read for reasons (it is our own pitch,
which may say anything), only for its Message-ID.

Each recipient also carries the SMTP step its reply answered (`Recipient.phase`), where the
report says it: Postfix's "(in reply to RCPT TO command)", Exim's "after MAIL FROM:<...>",
Sendmail's session transcript (added to the diagnostic of the recipients it is about), or a
reply that names our own sender address rather than the recipient's.

A report reaches us in other clothes too: forwarded by a person or wrapped by a gateway as a
message/rfc822 part (`report_message`: every embedded message of a level, a few levels
down), or forwarded inline in the text ("---------- Forwarded message ---------",
`inline_forward`); from a provider's plain no-reply sender, in its own language only
(`UNDELIVERED_TEXT` counts where the message names what failed); as a list manager's or a
group's refusal of our post (Mailman, LISTSERV, FML, Google Groups: the address lives, a
filter refused us), or as RFC 5429's Sieve reject, an MDN with Disposition "...; deleted"
(`sieve_reject`). A post held for a moderator is no failure (`held_for_moderation`).

The text is matched in lower case (`body_marker`, `_words`): the patterns are written in lower
case, and without IGNORECASE the regex engine skips positions by their first character.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from email.message import Message

from aicmo_actors.cam.classify.languages import UNDELIVERED_TEXT
from aicmo_actors.cam.classify.parse import (
    addresses,
    content_param,
    content_type,
    first_address,
    header,
    html_to_text,
    leaf_parts,
    message_ids,
    parse_message,
    part_text,
)
from aicmo_actors.cam.classify.reasons import (
    compile_reading,
    find_reply_code,
    find_status,
    reason_from,
    required_words,
    smtp_phase,
)
from contracts.cam import BounceReason

__all__ = [
    "BounceReport",
    "Recipient",
    "Returned",
    "bounce_evidence",
    "forwarded_inline",
    "held_for_moderation",
    "notification_text",
    "read_bounce",
    "report_message",
    "returned_message",
    "says_delayed",
]

#: Who sends bounces (the From header: local part or display name).
DAEMON = re.compile(
    r"mailer-daemon|\bpost_?master\b|mail delivery (?:system|subsystem|service)|mail administrator|"
    r"maildelivery|microsoftexchange|system administrator|\bbounces?[@+]|mdaemon|"
    r"delivery status notification|mail delivery failure|interscan|"
    # mailing-list managers answering a post: LISTSERV, Majordomo, Sympa
    r"\blistserv\b|\bmajordomo\b|\bsympa\b",
    re.I,
)
#: A sender that takes no replies. Some providers send their bounces from one, with no
#: Auto-Submitted header and no RFC 3464 part: it counts as a daemon only when the subject or
#: the text says "could not be delivered" in a language other than English
#: (`languages.UNDELIVERED_TEXT`) and the text names an address, a code or the returned message.
NO_REPLY = re.compile(r"\bno-?reply\b|\bdo-?not-?reply\b|\bnoreply-", re.I)
#: A subject that answers another ("Re:", "AW:", "回复:", "답장:" ...): never a bounce subject
#: on the strength of a foreign "could not be delivered" alone (a person may write it).
REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|vs|odp|ответ|回复|回覆|答复|답장|返信)\s*[:\uff1a]", re.I)
#: Subjects of bounces, in the languages servers speak.
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|"
    r"delivery (?:status notification \((?:failure|delay)\)|failure|has failed|failed|problem|incomplete|delayed)|"
    r"returned mail|mail delivery (?:failed|failure|problem|system)|"
    r"failure notice|could not be delivered|not delivered|"
    r"nicht zustellbar|unzustellbar|non remis|non distribu|no se puede entregar|no entregado|non recapitabile|"
    r"onbestelbaar|niet bezorgd|n[aã]o entregue|returned to sender|message not delivered|delivery notification|"
    r"delayed mail|warning: message .{0,40} delayed|delivery_failure|"
    r"automatically rejected mail|rejected posting to|request to mailing list .{1,80} rejected|"
    r"mail system error|not member article|"
    r"недоставлен|не доставлено|не удалось доставить",
    re.I,
)
#: Openings that only bounces have (the format is named for the evidence), in lower case: they are
#: matched against the lower-cased text (`body_marker`). A pattern here runs
#: over text anyone can send: no unbounded run that could restart at every position of a long
#: line ("-{3}", not "-{3,}"), no two runs that can split the same characters.
BODY_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.M))
    for name, pattern in (
        ("Postfix", r"this is the mail system at host"),
        ("Exim", r"this message was created automatically by mail delivery software"),
        ("Exim", r"the following address\(es\) failed"),
        ("qmail", r"this is the qmail-send program"),
        ("Sendmail", r"-{3} ?the following addresses had (?:permanent fatal|transient non-fatal) errors"),
        ("Sendmail", r"-{3} ?transcript of session follows"),
        ("OpenSMTPD", r"this is the mailer-daemon, please do not reply"),
        (
            "OpenSMTPD",
            r"an error has occurred while attempting to deliver a message for\s+the following list of recipients",
        ),
        ("Exchange", r"delivery has failed to these recipients or groups"),
        ("Exchange", r"delivery is delayed to these recipients or groups"),
        ("Exchange", r"your message to .{1,200}? couldn't be delivered"),
        ("Exchange", r"remote server returned '"),
        ("Exchange", r"diagnostic information for administrators"),
        ("Gmail", r"your message wasn't delivered to"),
        ("Gmail", r"the response from the remote server was"),
        ("Gmail", r"delivery to the following recipients? (?:failed|has been delayed)"),
        ("Gmail", r"there was a temporary problem delivering your message"),
        ("Yahoo", r"sorry, we were unable to deliver your message to the following address"),
        ("Amazon SES", r"an error occurred while trying to deliver the mail to the following recipients"),
        ("Zoho", r"error_code ?:"),
        # mail.ru's fixed Russian wording (an auto-reply may also say its letter was "created
        # automatically"). Its English "Message was not delivered to ..." is ordinary
        # prose too ("your message was not delivered to my colleague"): it counts only from a
        # daemon's address or under a bounce subject (WEAK_BODY).
        ("mail.ru", r"не может быть доставлено одному или нескольким получателям"),
        ("Lotus Notes", r"delivery failure report|your document:.{0,300}?was not delivered to"),
        ("Domino", r"was not delivered to:\s++[^\s@]++@\S++\s++because:"),
        ("Lotus Notes", r"-{3} failure reasons"),
        ("DSN", r"this is an automatically generated delivery status notification"),
        ("Courier", r"this is a delivery status notification, automatically generated by"),
        ("MTA", r"i'm sorry to have to inform you that your message could not"),
        ("MTA", r"unable to deliver (?:your )?message to the following (?:address|recipient)"),
        ("MTA", r"could not be delivered to one or more (?:of its )?recipients"),
        # Exchange 5.5 to 2003 (and the gateways that copied it).
        ("Exchange", r"did not reach some or all of the intended recipients"),
        ("Exchange", r"the following recipient\(s\) (?:could not|cannot) be reached"),
        # Trend Micro InterScan MSS / VirusWall and other filtering appliances.
        ("InterScan", r"message from interscan|the error message of the destination smtp server was"),
        ("InterScan", r"^(?:reason: *)?unable to deliver message to <"),
        ("InterScan", r"^sent <<< (?:rcpt|mail|data)"),
        # Mailing-list managers and groups refusing our post (the address lives; the list filters).
        ("Google Groups", r"the group you tried to contact \(\S{1,100}\) may not exist"),
        ("Mailman", r"you are not allowed to post to this mailing list|has been rejected by the list moderator"),
        ("LISTSERV", r"you are not authori[sz]ed to send mail to the \S{1,100} list"),
        ("FML", r"not member article from|you are not a member of this mailing list"),
        # RFC 5429 Sieve `reject` sent as plain text (its MDN form is read by `sieve_reject`).
        ("Sieve", r"your message was automatically rejected by sieve|rejected by (?:the recipient's )?sieve"),
        # Japanese mobile carriers: au (EZweb, KDDI).
        (
            "au EZweb",
            r"the user\(s\) account is (?:disabled|temporarily)|"
            r"each of the following recipients was rejected by a remote mail server",
        ),
        ("KDDI", r"your mail (?:sent on|attempted to be delivered on):? [a-z]{3},"),
    )
)
#: All of BODY_MARKERS as one alternation: one pass tells that none is there (if any one
#: matches somewhere, the alternation matches there or before).
_ANY_BODY_MARKER = re.compile("|".join(f"(?:{pattern.pattern})" for _name, pattern in BODY_MARKERS), re.M)


@functools.cache
def _body_markers_ignoring_case() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """BODY_MARKERS for a text that lower-casing would lengthen (compiled when one comes)."""
    return tuple((name, re.compile(pattern.pattern, re.I | re.M)) for name, pattern in BODY_MARKERS)


def body_marker(text: str, lowered: str | None = None) -> tuple[str, str] | None:
    """The format and the words of the first of BODY_MARKERS (in their order) found in `text`
    (`lowered`: `text.lower()`, when the caller has it). BODY_MARKERS are written in lower case
    and matched against the lower-cased text: without IGNORECASE the engine skips positions by
    their first character."""
    lowered = text.lower() if lowered is None else lowered
    if len(lowered) != len(text):  # a character whose lower case is longer: the slow, exact way
        for name, pattern in _body_markers_ignoring_case():
            if match := pattern.search(text):
                return name, match.group(0)
        return None
    if not _ANY_BODY_MARKER.search(lowered):
        return None
    for name, pattern in BODY_MARKERS:
        if match := pattern.search(lowered):
            return name, text[match.start() : match.end()]
    return None  # pragma: no cover - the alternation found one of them


#: A generic bounce phrase: enough only next to a bounce subject or a daemon sender.
WEAK_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|was not delivered|wasn't delivered|undeliverable|"
    r"permanent (?:error|failure)|delivery (?:has )?failed|unable to deliver|returned to sender",
    re.I,
)
_LOWER_WEAK_BODY = re.compile(WEAK_BODY.pattern)
_LOWER_UNDELIVERED = compile_reading(UNDELIVERED_TEXT.pattern)
#: Words every match of UNDELIVERED_TEXT holds (its phrases in ten languages make it slow to run
#: over a text that holds none of them, which is nearly every text).
_UNDELIVERED_WORDS = required_words(_LOWER_UNDELIVERED)
#: The ASCII ones of such words, by the id of the words (`_words`).
_ASCII_WORDS = {id(_UNDELIVERED_WORDS): tuple(w for w in _UNDELIVERED_WORDS or () if w.isascii())}


def _words(
    pattern: re.Pattern[str],
    lower: re.Pattern[str],
    text: str,
    lowered: str,
    needed: tuple[str, ...] | None = None,
) -> str | None:
    """The words of `text` that `pattern` (IGNORECASE) finds first, found by `lower` (the same
    pattern, case-sensitive) in `lowered` (`text.lower()`) when lower-casing kept every place;
    `needed`: words one of which every match holds (`reasons.required_words`)."""
    if len(lowered) != len(text):
        match = pattern.search(text)
        return match.group(0) if match else None
    if needed is not None:
        if lowered.isascii():  # it holds none of the words in other scripts
            needed = _ASCII_WORDS.get(id(needed)) or tuple(w for w in needed if w.isascii())
        if not any(word in lowered for word in needed):
            return None
    match = lower.search(lowered)
    return text[match.start() : match.end()] if match else None


#: Where a returned copy of the original message starts inside a plain-text bounce.
RETURNED_MARKER = re.compile(
    r"^[ \t]*(?:-+ *(?:this is a copy of the message|"
    r"below (?:this|the next) line is a copy of the (?:message|mail header)|"
    r"original message(?: follows)?|unsent message follows|"
    r"message header follows|returned message|undelivered message|"
    r"元のメッセージ|元メッセージ|原始邮件|原始郵件|原邮件|исходное сообщение|оригинальное сообщение|"
    r"원본 메시지|원문 메시지|mensagem original|messaggio originale|oorspronkelijk bericht|"
    r"urspr[üu]ngliche nachricht|message d'origine|message original)|"
    r"original message headers:|original mail as follows:|below is a copy of the original message|"
    r"--- mensaje original adjunto|"
    r"content-type:\s*(?:message/rfc822|text/rfc822-headers)|content-description:\s*undelivered message)",
    re.I | re.M,
)
#: Plain-text phrases that say the server is still trying.
DELAYED_TEXT = re.compile(
    r"this is a warning (?:message )?only|you do not need to resend|will (?:continue to )?retry|will keep trying|"
    r"has not yet been delivered|hasn't been delivered yet|delivery is delayed|has been delayed|delivery delayed|"
    r"still being retried|temporary problem delivering|delivery incomplete|will continue to be attempted|"
    r"not been delivered .{0,60}(?:yet|still trying)|delivery attempts will continue|will try again",
    re.I,
)
#: Subjects of delay notices (the subject of a failure may quote ours, so only its start counts).
DELAYED_SUBJECT = re.compile(
    r"^\s*(?:delayed mail\b|(?:mail )?delivery (?:is )?delayed\b|delivery status notification \(delay\)|"
    r"warning: message \S{1,60} delayed|warning: could not send message for past|message delayed\b)",
    re.I,
)
PERMANENT_TEXT = re.compile(
    r"permanent (?:fatal )?error|failed permanently|permanent failure|this is a permanent", re.I
)
_LOWER_DELAYED_TEXT = re.compile(DELAYED_TEXT.pattern)
_LOWER_PERMANENT_TEXT = re.compile(PERMANENT_TEXT.pattern)
ACTIONS_NOT_FAILED = frozenset({"delivered", "relayed", "expanded"})
#: Recipients read from one report: ours name one; more is a list or a hostile message.
MAX_RECIPIENTS = 100
#: Characters of diagnostic kept per recipient.
MAX_DIAGNOSTIC = 2000


@dataclass
class Recipient:
    """One recipient of a report: what happened to it and what the server said."""

    address: str | None
    action: str | None = None  # failed, delayed, delivered, relayed, expanded (RFC 3464 2.3.3)
    status: str | None = None
    diagnostic: str = ""
    code: int | None = None
    from_fields: bool = False  # read from RFC 3464 fields, not from prose
    #: The SMTP step the reply answered: "connect", "mail" (MAIL FROM, or a reply about our
    #: sender address), "rcpt", "data" (DATA or the end of the message), None when unsaid.
    phase: str | None = None

    @property
    def failed(self) -> bool:
        return (self.action or "failed") not in ACTIONS_NOT_FAILED


@dataclass
class BounceReport:
    """What a delivery report says, read from its fields and its text."""

    recipients: list[Recipient] = field(default_factory=list)
    original_ids: list[str] = field(default_factory=list)
    human_text: str = ""  # the notification, without the returned message
    formats: list[str] = field(default_factory=list)
    per_message: dict[str, str] = field(default_factory=dict)
    structured: bool = False  # RFC 3464 per-recipient fields were found
    unread_recipients: int = 0  # recipients past MAX_RECIPIENTS, not read


# -- the text of a report ------------------------------------------------------------------------
def _fields_text(part: Message) -> str:
    """A message/delivery-status part as `Name: value` lines, blocks separated by blank lines."""
    blocks: list[str] = []
    try:
        payload = part.get_payload()
    except Exception:
        payload = None
    if isinstance(payload, list):
        for block in payload:
            if not isinstance(block, Message):
                continue
            try:
                lines = [f"{key}: {' '.join(str(value).split())}" for key, value in block.raw_items()]
            except Exception:
                lines = []
            body = part_text(block) if not isinstance(block.get_payload(), list) else ""
            blocks.append("\n".join([*lines, body.strip()]).strip())
        return "\n\n".join(blocks)
    return part_text(part)


#: Levels of message/rfc822 parts searched for a forwarded or wrapped delivery report.
MAX_REPORT_NESTING = 3


def _is_report(part: Message) -> bool:
    """`part` is a delivery report: its own type says so, or it has a delivery-status part."""
    if content_type(part) == "multipart/report":
        return content_param(part, "report-type") in {"delivery-status", "global-delivery-status"}
    return any(
        content_type(leaf) in {"message/delivery-status", "message/global-delivery-status"} for leaf in leaf_parts(part)
    )


def _embedded(part: Message) -> Message | None:
    if content_type(part) not in {"message/rfc822", "message/global"}:
        return None
    try:
        payload = part.get_payload()
    except Exception:
        return None
    return payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None


#: Embedded messages looked at, over all levels: a hostile message may carry thousands.
MAX_EMBEDDED = 12


def report_message(msg: Message) -> Message:
    """The delivery report `msg` is, or carries: someone forwarded a bounce to us, or a gateway
    wrapped it, as a message/rfc822 part (`msg` itself when it carries none, or is a report of
    any kind itself). Every embedded message of a level is searched, MAX_REPORT_NESTING levels
    down and MAX_EMBEDDED messages in all; an RFC 3464 report, or a plain-text bounce (a
    daemon's message with a bounce's subject or text) when `msg` is not a daemon's itself.
    Looked for once per message."""
    found = msg.__dict__.get("_classify_report")
    if found is None:
        found = msg.__dict__["_classify_report"] = _find_report(msg)
    return found


def _find_report(msg: Message) -> Message:
    if content_type(msg) == "multipart/report" or _is_report(msg):
        return msg
    plain = not DAEMON.search(header(msg, "From"))
    level = [msg]
    looked = 0
    for _depth in range(MAX_REPORT_NESTING):
        inner_level: list[Message] = []
        for outer in level:
            for inner in map(_embedded, leaf_parts(outer)):
                if inner is None:
                    continue
                looked += 1
                if _is_report(inner) or (plain and _is_plain_bounce(inner)):
                    return inner
                inner_level.append(inner)
                if looked >= MAX_EMBEDDED:
                    return msg
        if not inner_level:
            break
        level = inner_level
    return msg


def _is_plain_bounce(inner: Message) -> bool:
    """An embedded message that is a bounce without RFC 3464 fields: a daemon's, with a bounce's
    subject, an X-Failed-Recipients header or a bounce's opening in its text."""
    if not DAEMON.search(header(inner, "From")):
        return False
    if BOUNCE_SUBJECT.search(header(inner, "Subject")) or header(inner, "X-Failed-Recipients"):
        return True
    text = "\n".join(part_text(p)[:20000] for p in leaf_parts(inner) if content_type(p) == "text/plain")
    return body_marker(text) is not None


#: The first line of a message forwarded inline, as mail clients write it (Gmail, Thunderbird,
#: Apple Mail, Outlook's rule, and their translations).
_FORWARD_START = re.compile(
    r"^[ \t]*(?:-{2,12} ?(?:forwarded message|original message|weitergeleitete nachricht|"
    r"urspr[üu]ngliche nachricht|message transf[ée]r[ée]|mensaje reenviado|mensaje original|"
    r"messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada|пересылаемое сообщение|"
    r"転送されたメッセージ|转发的邮件) ?-{0,12}|begin forwarded message:|_{10,40})[ \t]*$",
    re.I | re.M,
)
#: A header line of an inline-forwarded message ("From: ...", "Von: ...", "差出人: ...").
_FORWARD_FIELD = re.compile(r"^[ \t]*\*?([^\s:*]{1,20})\*?[ \t]*[:\uff1a][ \t]*(.{0,300})$")
_FORWARD_FROM = frozenset({"from", "von", "de", "da", "van", "от", "差出人", "发件人", "寄件者", "보낸사람"})
_FORWARD_SUBJECT = frozenset(
    {"subject", "betreff", "objet", "asunto", "oggetto", "onderwerp", "assunto", "тема", "件名", "主题"}
)


@dataclass(frozen=True)
class InlineForward:
    """A bounce someone forwarded inline: the daemon's From and Subject, and its text."""

    sender: str
    subject: str
    text: str


def inline_forward(text: str) -> InlineForward | None:
    """The first message forwarded inline in `text` whose From is a mail daemon (at most four
    forwarded blocks are looked at); None when there is none."""
    for count, start in enumerate(_FORWARD_START.finditer(text[:60000])):
        if count >= 4:
            return None
        fields: dict[str, str] = {}
        block = text[start.end() : start.end() + 4000]
        skipped = len(block) - len(block.lstrip("\n"))
        lines = block[skipped:].split("\n")
        body_at = 0
        for index, line in enumerate(lines[:16]):
            if not line.strip():
                body_at = index + 1
                break
            if match := _FORWARD_FIELD.match(line):
                fields.setdefault(match.group(1).lower(), match.group(2).strip())
        sender = next((v for k, v in fields.items() if k in _FORWARD_FROM), "")
        if not body_at or not DAEMON.search(sender):
            continue
        subject = next((v for k, v in fields.items() if k in _FORWARD_SUBJECT), "")
        offset = start.end() + skipped + len("\n".join(lines[:body_at])) + 1
        body = text[offset : offset + 40000]
        following = _FORWARD_START.search(body)
        return InlineForward(sender, subject, body[: following.start()] if following else body)
    return None


def notification_text(msg: Message) -> tuple[str, str]:
    """(human text, delivery-status fields text) of a report, or of the report it carries
    (`report_message`), or of a bounce forwarded inline in its text (`forwarded_inline`);
    returned messages left out."""
    outer, msg = msg, report_message(msg)
    # An MDN's fields are read only to tell a Sieve reject (RFC 5429) from a read receipt.
    mdn = content_type(msg) == "multipart/report" and content_param(msg, "report-type") == "disposition-notification"
    plain: list[str] = []
    html: list[Message] = []
    fields: list[str] = []
    for part in leaf_parts(msg):
        ctype = content_type(part)
        if ctype in {"message/delivery-status", "message/global-delivery-status"} or (
            ctype == "message/disposition-notification" and mdn
        ):
            fields.append(_fields_text(part))
        elif part is not msg and header(part, "Content-Disposition").lower().startswith("attachment"):
            continue  # an attached copy of the original or a log, not the notification
        elif ctype == "text/plain":
            plain.append(part_text(part))
        elif ctype == "text/html":
            html.append(part)
        elif ctype.startswith("multipart/") and part is msg:  # broken MIME: the raw body
            plain.append(part_text(part))
    human = "\n".join(t for t in plain if t.strip()) or "\n".join(html_to_text(part_text(p)) for p in html)
    if not fields and msg is outer and not DAEMON.search(header(msg, "From")):
        forward = inline_forward(human)
        if forward is not None and _says_bounce(forward.subject, forward.text):
            outer.__dict__["_classify_inline"] = forward
            human = forward.text
    cut = RETURNED_MARKER.search(human)
    if cut:
        human = human[: cut.start()]
    return human[:40000], "\n\n".join(fields)[:40000]


# -- detection -----------------------------------------------------------------------------------
def forwarded_inline(msg: Message) -> InlineForward | None:
    """The daemon's bounce forwarded inline in `msg`'s text, once `notification_text` found it."""
    found = msg.__dict__.get("_classify_inline")
    return found if isinstance(found, InlineForward) else None


def _says_bounce(subject: str, text: str) -> bool:
    """A daemon's message says it is a bounce: by its subject, a bounce's opening or a bounce phrase."""
    head = text[:20000]
    return bool(BOUNCE_SUBJECT.search(subject) or WEAK_BODY.search(head) or body_marker(head) is not None)


def says_delayed(subject: str, human: str) -> bool:
    """A notice without RFC 3464 fields says the server is still trying (and nothing permanent)."""
    lowered = human.lower()
    if len(lowered) == len(human):  # both written in lower case: the same answer, found faster
        delayed = _LOWER_DELAYED_TEXT.search(lowered) or DELAYED_SUBJECT.search(subject)
        return bool(delayed) and not _LOWER_PERMANENT_TEXT.search(lowered)
    delayed = DELAYED_TEXT.search(human) or DELAYED_SUBJECT.search(subject)
    return bool(delayed) and not PERMANENT_TEXT.search(human)


def bounce_evidence(msg: Message, human: str, fields: str) -> list[str]:
    """The evidence that `msg` is an automatic bounce (empty: it is not)."""
    evidence: list[str] = []
    ctype = content_type(msg)
    report_type = content_param(msg, "report-type") if ctype == "multipart/report" else ""
    if report_type == "disposition-notification":
        rejected = sieve_reject(msg, human, fields)
        return [rejected] if rejected else []  # else a read receipt, not a delivery report
    if report_type == "feedback-report":
        return []  # a complaint, not a delivery report
    if report_type in {"delivery-status", "global-delivery-status"}:
        evidence.append(f"multipart/report; report-type={report_type} (RFC 3464)")
    elif fields:
        evidence.append("a message/delivery-status part (RFC 3464)")
    if (report := report_message(msg)) is not msg:
        wrapped = f"{header(report, 'From')[:80]!r}, {header(report, 'Subject')[:80]!r}"
        evidence.append(f"a delivery report forwarded or wrapped in a message/rfc822 part ({wrapped})")
    if forward := forwarded_inline(msg):
        evidence.append(
            f"a bounce forwarded inline in the text (from {forward.sender[:80]!r}, {forward.subject[:80]!r})"
        )
    if failed := header(msg, "X-Failed-Recipients"):
        evidence.append(f"X-Failed-Recipients: {failed[:120]}")
    sender = header(msg, "From")
    subject = header(msg, "Subject")
    # A person quoting a bounce ("> This is the mail system ...") does not make a bounce.
    head = "\n".join(line for line in human[:20000].splitlines() if not line.lstrip().startswith(">"))
    daemon = DAEMON.search(sender) or _no_reply_daemon(msg, sender, subject, head)
    # A person answering under a bounce's subject ("Re: Mail not delivered") is no bounce subject.
    reply = REPLY_SUBJECT.match(subject)
    subject_match = None if reply and not daemon else BOUNCE_SUBJECT.search(subject)
    bounce_subject = subject_match.group(0) if subject_match else None
    # "Could not be delivered" in another language than English says less: a parcel service
    # says it too. It counts only where the message names what failed (`_names_a_failure`).
    foreign_subject = None
    if not bounce_subject and not reply:
        foreign_subject = _words(UNDELIVERED_TEXT, _LOWER_UNDELIVERED, subject, subject.lower(), _UNDELIVERED_WORDS)
    lowered = head.lower()
    foreign_text = _words(UNDELIVERED_TEXT, _LOWER_UNDELIVERED, head, lowered, _UNDELIVERED_WORDS)
    if (foreign_subject or foreign_text) and not DAEMON.search(sender) and not _names_a_failure(msg, head):
        foreign_subject = foreign_text = None
    bounce_subject = bounce_subject or foreign_subject
    if daemon and bounce_subject:
        evidence.append(f"from {sender[:80]!r} with the bounce subject {subject[:80]!r}")
    if marker := body_marker(head, lowered):
        evidence.append(f"{marker[0]} bounce text {' '.join(marker[1].split())[:70]!r}")
    if not evidence and (daemon or bounce_subject):
        # A daemon sender or a bounce subject alone is not enough: the text or an empty
        # envelope sender must agree.
        weak = _words(WEAK_BODY, _LOWER_WEAK_BODY, head, lowered) or foreign_text
        null_sender = header(msg, "Return-Path").replace(" ", "") == "<>"
        if weak or (bounce_subject and null_sender):
            what = f"from {sender[:80]!r}" if daemon else f"subject {subject[:80]!r}"
            evidence.append(f"{what} and the text says {weak!r}" if weak else f"{what} with an empty Return-Path")
    if not evidence and daemon and (coded := _coded_failure(head)):
        # post_master@ answering "Re: <our subject>" with nothing but the server's reply in it.
        evidence.append(f"from {sender[:80]!r} and the text gives {coded}")
    return evidence


def _coded_failure(text: str) -> str | None:
    """A 4xx/5xx enhanced status in `text` with a reason it names ("550 5.1.1 ... unknown"):
    a server's reply, which a person's prose does not hold."""
    status = find_status(text)
    if not (status and status[0] in "45"):
        return None
    reason, _why = reason_from(status, text, find_reply_code(text))
    if reason is BounceReason.UNDEFINED:
        return None
    return f"status {status} with the reason {reason.value}"


#: RFC 5429 section 2.1: a Sieve `reject` answers with an MDN whose disposition is automatic and
#: "deleted", marked "Auto-Submitted: auto-replied (rejected)"; its text gives the script's reason.
_DISPOSITION = re.compile(r"^disposition:[ \t]*([^\n]{0,200})", re.I | re.M)
_DELETED = re.compile(r"automatic-action\b.{0,80}[;/][ \t]*(?:deleted|rejected|denied)\b", re.I)
_REJECT_TEXT = re.compile(r"\bsieve\b|automatically rejected|(?:was|has been) rejected|\brejected\b", re.I)


def sieve_reject(msg: Message, human: str, fields: str) -> str | None:
    """Why `msg`, an MDN, is a Sieve reject of our message (None: a read receipt)."""
    disposition = _DISPOSITION.search(fields)
    if not disposition or not _DELETED.search(disposition.group(1)):
        return None
    auto = header(msg, "Auto-Submitted").lower()
    said = _REJECT_TEXT.search(human[:20000])
    if "rejected" not in auto and not said:
        return None
    value = " ".join(disposition.group(1).split())[:80]
    return f"an MDN with Disposition: {value} that says the recipient's filter rejected it (RFC 5429 Sieve reject)"


#: A list manager's notice that our post waits for a moderator (Mailman, LISTSERV, Sympa, Google
#: Groups): not delivered yet, nor refused.
HELD_TEXT = re.compile(
    r"is being held until the list moderator can review it|awaits? moderator approval|held for moderation|"
    r"(?:waiting|pending) (?:for )?(?:the )?moderator(?:'s)? approval|pending moderation|"
    r"requires? (?:the )?(?:list )?moderator(?:'s)? approval",
    re.I,
)


def held_for_moderation(msg: Message, text: str) -> str | None:
    """The words that say a list manager holds our post for its moderator, None if it does not."""
    subject = header(msg, "Subject")
    if not DAEMON.search(header(msg, "From")) and not HELD_TEXT.search(subject):
        return None
    found = HELD_TEXT.search(subject) or HELD_TEXT.search(text[:8000])
    return " ".join(found.group(0).split()) if found else None


#: What a bounce from a no-reply sender names besides its words: an SMTP code or status, or an
#: address on a line of its own (the failed recipient).
_CODED = re.compile(r"(?<![\w.])[45]\d\d(?![\w.])|(?<![\d.])[45]\.\d{1,3}\.\d{1,3}(?![\d.])")


def _no_reply_daemon(msg: Message, sender: str, subject: str, head: str) -> re.Match[str] | None:
    """A no-reply sender that is a provider's bounce daemon: it says "could not be delivered"
    in another language than English, in the subject or the text, and names what failed (an
    address on a line of its own, an SMTP code) or returns the message. A no-reply newsletter,
    a parcel service's notice or an auto-reply names none of these."""
    if not (no_reply := NO_REPLY.search(sender)):
        return None
    if not (UNDELIVERED_TEXT.search(head) or (UNDELIVERED_TEXT.search(subject) and not REPLY_SUBJECT.match(subject))):
        return None
    return no_reply if _names_a_failure(msg, head) else None


def _names_a_failure(msg: Message, head: str) -> bool:
    """The text names what failed (an SMTP code or status, an address on a line of its own) or
    the message returns ours (a message/rfc822 or headers part)."""
    lines = head.splitlines()[:400]
    if _CODED.search(head) or any(
        "@" in line and (_RCPT_LINE.match(line) or _LABELLED_RCPT.match(line)) for line in lines
    ):
        return True
    return any(
        content_type(part) in {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"}
        for part in leaf_parts(msg)
    )


# -- RFC 3464 fields -----------------------------------------------------------------------------
_FIELD = re.compile(r"^([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*)$")


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for line in text.splitlines():
        if line[:1] in {" ", "\t"} and lines and lines[-1].strip():
            lines[-1] += " " + line.strip()
        else:
            lines.append(line.rstrip())
    return lines


def _strip_type(value: str) -> str:
    """'rfc822; a@b' -> 'a@b'; 'smtp; 550 ...' -> '550 ...'."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value.strip()


#: Fields that name the recipient of a per-recipient block (RFC 3464 2.3.1, 2.3.2; Exchange and
#: Sendmail add X-Actual-Recipient when an alias or a local name was expanded).
_ADDRESS_FIELDS = frozenset({"original-recipient", "final-recipient", "x-actual-recipient"})
#: Fields only a per-recipient block has (RFC 3464 2.3): one of them starts the block when the
#: report leaves out its per-message block or the blank line before a recipient.
_RECIPIENT_FIELDS = _ADDRESS_FIELDS | {
    "action",
    "status",
    "remote-mta",
    "diagnostic-code",
    "last-attempt-date",
    "final-log-id",
    "will-retry-until",
}


def _field_blocks(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Per-message fields and per-recipient field blocks, the fields of a block in any order,
    even when the per-message block or the blank lines between blocks are missing.

    A block is what lies between blank lines; a per-recipient field opens one when none is open
    (fields before it are per-message), and `_next_recipient` tells where a server left out the
    blank line between two recipients.
    """
    per_message: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in _unfold(text):
        if not line.strip():
            current = None
            continue
        match = _FIELD.match(line)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key in _RECIPIENT_FIELDS and (current is None or _next_recipient(current, key, value)):
            current = {}
            blocks.append(current)
        if current is not None:
            current.setdefault(key, value)
        elif key not in per_message:
            per_message[key] = value
    return per_message, blocks


def _next_recipient(block: dict[str, str], key: str, value: str) -> bool:
    """`key` starts the next recipient's block in a report that left out the blank line: a field
    the block already has, once the block names a recipient (or an address field it has); a new
    address once the block names another one and says what happened to it."""
    has_address = any(k in block for k in _ADDRESS_FIELDS)
    if key in block:
        return has_address or key in _ADDRESS_FIELDS
    if key not in _ADDRESS_FIELDS or not ("action" in block or "status" in block):
        return False
    named = {first_address(_strip_type(block[k])) for k in _ADDRESS_FIELDS if k in block} - {None}
    return bool(named) and first_address(_strip_type(value)) not in named


#: Action values as servers write them (any case, words after the value, RFC 1891's forms).
_ACTIONS = (
    ("fail", "failed"),
    ("delay", "delayed"),
    ("deliver", "delivered"),
    ("relay", "relayed"),
    ("expand", "expanded"),
)


def _action(value: str) -> str | None:
    """'FAILED', 'Failure', 'delayed (will retry)' -> 'failed', 'failed', 'delayed'."""
    word = (value.split() or [""])[0].lower().strip(";,.()")
    for prefix, action in _ACTIONS:
        if word.startswith(prefix):
            return action
    return word or None


def _recipient_from_fields(block: dict[str, str]) -> Recipient:
    address = None
    # The address as we sent it first (an alias may have expanded it to the final one).
    for key in ("original-recipient", "final-recipient", "x-actual-recipient"):
        address = first_address(_strip_type(block.get(key, "")))
        if address:
            break
    diagnostic = _strip_type(block.get("diagnostic-code", ""))
    status = find_status(block.get("status", "")) or find_status(diagnostic)
    action = _action(block.get("action", ""))
    return Recipient(address, action, status, diagnostic, find_reply_code(diagnostic), from_fields=True)


# -- plain-text formats --------------------------------------------------------------------------
_ADDR = r"[\w.!#$%&'*+/=?^`{|}~-]+@(?:[\w-]+\.)+[\w-]{2,}"
#: An address that starts a line: "<a@b>: host x said: 550 ..." (Postfix), "  a@b" (Exim),
#: "<a@b>:" (qmail, Yahoo), "a@b: 550 ..." (OpenSMTPD), "a@b Invalid Address, ERROR_CODE ..." (Zoho).
_RCPT_LINE = re.compile(r"^[ \t]*[\"']?<?(" + _ADDR + r")>?[\"']?(.*)$")
#: Prose that names the failed recipient mid-sentence.
_RCPT_PROSE = re.compile(
    r"(?:your message to|wasn't delivered to|was not delivered to|could not be delivered to|"
    r"couldn't be delivered to|delivery to|message to)(?:\s*+:)?\s++<?(" + _ADDR + r")>?",
    re.I,
)
#: What follows the address on a recipient line (a line that only continues prose does not match).
_RCPT_LINE_REST = re.compile(
    r"\s*+(?:[:,(]|<mailto:|\.{3})|\s+(?:invalid|error|\(|-|host|smtp|said|#|\d{3}|on \d)", re.I
)
#: A recipient named after a label in the language of the report ("宛先: a@b", "Получатель: a@b").
_LABELLED_RCPT = re.compile(
    r"^[ \t]*(?:宛先|受信者|送信先|あて先|收件人|收件者|收信人|получатель|адресат|수신자|받는 ?사람|"
    r"destinat[áa]rio|destinatario|ontvanger|empf[äa]nger|destinataire)[ \t]*[:\uff1a][ \t]*<?(" + _ADDR + r")>?(.*)$",
    re.I,
)
_NOT_RECIPIENT_LINE = re.compile(r"^\s*(?:from|to|cc|reply-to|sender|return-path|x-[\w-]+|message-id)\s*:", re.I)
#: Addresses that are never the failed recipient: daemons, and a list's own control addresses
#: ("list-request@", "list-ctl@" in a list manager's help text).
_DAEMON_LOCAL = re.compile(
    r"^(?:(?:mailer-daemon|postmaster|post_master|abuse|noreply|no-reply|bounces?)\b|[^@\s]{1,64}-(?:ctl|request)@)",
    re.I,
)


def _text_recipients(text: str, skip: set[str]) -> dict[str, Recipient]:
    """Failed recipients and their diagnostics from a plain-text notification."""
    found: dict[str, Recipient] = {}
    lines = text.splitlines()
    starts: list[tuple[int, str, str]] = []
    for index, line in enumerate(lines):
        if "@" not in line or _NOT_RECIPIENT_LINE.match(line):
            continue  # a recipient line holds an address
        labelled = _LABELLED_RCPT.match(line)
        match = labelled or _RCPT_LINE.match(line)
        if not match:
            continue
        address = match.group(1).lower().strip(".")
        rest = match.group(2)
        if address in skip or _DAEMON_LOCAL.match(address):
            continue
        # A line that only continues prose ("a@b wrote a message that...") is not a recipient line.
        if not labelled and rest.strip() and not _RCPT_LINE_REST.match(rest):
            continue
        starts.append((index, address, rest))
    for position, (index, address, rest) in enumerate(starts):
        end = starts[position + 1][0] if position + 1 < len(starts) else len(lines)
        following: list[str] = []
        for line in lines[index + 1 : min(end, index + 12)]:
            if not line.strip():
                if following:
                    break
                continue
            following.append(line.strip())
        diagnostic = " ".join(" ".join([rest.strip(" :"), *following]).split())[:800]
        rcpt = found.setdefault(address, Recipient(address, "failed"))
        if diagnostic and len(rcpt.diagnostic) < MAX_DIAGNOSTIC and diagnostic not in rcpt.diagnostic:
            rcpt.diagnostic = f"{rcpt.diagnostic} | {diagnostic}" if rcpt.diagnostic else diagnostic
    for match in _RCPT_PROSE.finditer(text):
        address = match.group(1).lower().strip(".")
        if address not in skip and not _DAEMON_LOCAL.match(address):
            found.setdefault(address, Recipient(address, "failed"))
    for rcpt in found.values():
        rcpt.status = find_status(rcpt.diagnostic)
        rcpt.code = find_reply_code(rcpt.diagnostic)
    return found


# -- the SMTP phase ------------------------------------------------------------------------------
#: Sendmail's "----- Transcript of session follows -----", up to the next "-----" line.
_TRANSCRIPT_START = re.compile(r"-{3} ?transcript of session follows ?-*", re.I)
_SECTION_END = re.compile(r"^[ \t]*-{3}", re.M)
MAX_TRANSCRIPT = 1500
#: The address a reply is about: the first one in angle brackets ("550 5.1.1 <a@b>: ...").
_REPLY_ADDRESS = re.compile(r"<(" + _ADDR + r")>")


def _transcript(human: str) -> str:
    """Sendmail's session transcript in a report's text, on one line ("" when there is none)."""
    start = _TRANSCRIPT_START.search(human)
    if not start:
        return ""
    section = human[start.end() : start.end() + MAX_TRANSCRIPT]
    end = _SECTION_END.search(section)
    return " ".join((section[: end.start()] if end else section).split())


def _read_phases(recipients: list[Recipient], human: str, our: set[str]) -> None:
    """Give each failed recipient its transcript (when the report has one) and its phase."""
    transcript = _transcript(human)
    lowered = transcript.lower()
    named = {r.address for r in recipients if r.address and r.address in lowered}
    for rcpt in recipients:
        if not rcpt.failed:
            continue
        # The transcript is about a recipient it names, or about the whole session (MAIL FROM,
        # the greeting, the end of DATA) when it names none of them.
        if transcript and (rcpt.address in named or not named) and transcript not in rcpt.diagnostic:
            rcpt.diagnostic = f"{rcpt.diagnostic} | {transcript}" if rcpt.diagnostic else transcript
        rcpt.phase = smtp_phase(rcpt.diagnostic)
        about = _REPLY_ADDRESS.search(rcpt.diagnostic)
        if rcpt.phase is None and about and about.group(1).lower() in our and about.group(1).lower() != rcpt.address:
            rcpt.phase = "mail"  # the reply names our sender address, not the recipient's


# -- the returned message ------------------------------------------------------------------------
_INLINE_MSGID = re.compile(r"^[ \t>]*message-id:[ \t]*(<[^<>\s@]+@[^<>\s]+>)", re.I | re.M)


def _headers_of(part: Message) -> Message | None:
    """The header block of a message/rfc822 or text/rfc822-headers part (or of message/partial,
    where some forwarding services return the original's headers)."""
    ctype = content_type(part)
    if ctype in {"message/rfc822", "message/global", "message/partial"}:
        try:
            payload = part.get_payload()
        except Exception:
            return None
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        return parse_message(part_text(part).encode("utf-8", "replace"))
    if ctype in {"text/rfc822-headers", "message/rfc822-headers", "text/global-headers", "message/global-headers"}:
        return parse_message(part_text(part).encode("utf-8", "replace"))
    return None


@dataclass
class Returned:
    """What a report says about the original message it returns."""

    ids: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)


def returned_message(msg: Message, all_text: str) -> Returned:
    """Message-IDs, To and From addresses of the returned original: from a message/rfc822
    or text/rfc822-headers part, else from `Message-ID:` lines in the text."""
    own = set(message_ids(header(msg, "Message-ID")))
    ids: list[str] = []
    rcpts: list[str] = []
    senders: list[str] = []
    for part in leaf_parts(msg):
        if part is msg:
            continue
        inner = _headers_of(part)
        if inner is None:
            continue
        ids += message_ids(header(inner, "Message-ID"))
        rcpts += addresses(header(inner, "To"))
        senders += addresses(header(inner, "From"))
    if not ids:
        ids = _INLINE_MSGID.findall(all_text)
    cut = RETURNED_MARKER.search(all_text)
    if cut:
        returned = all_text[cut.start() :]
        if not rcpts and (to_line := re.search(r"^[ \t]*to:[ \t]*(.+)$", returned, re.I | re.M)):
            rcpts = addresses(to_line.group(1))
        if not senders and (from_line := re.search(r"^[ \t]*from:[ \t]*(.+)$", returned, re.I | re.M)):
            senders = addresses(from_line.group(1))
    return Returned([i for i in dict.fromkeys(ids) if i not in own], rcpts, senders)


# -- all together --------------------------------------------------------------------------------
def _all_text(msg: Message) -> str:
    texts = []
    for part in leaf_parts(msg):
        if content_type(part).startswith("text/") or (part is msg and not content_type(part).startswith("message/")):
            texts.append(part_text(part))
    return "\n".join(texts)[:80000]


def read_bounce(msg: Message, human: str, fields: str) -> BounceReport:
    """Recipients, diagnostics and the original Message-ID of a delivery report."""
    report = BounceReport(human_text=human)
    per_message, blocks = _field_blocks(fields or human)
    report.per_message = per_message
    our = set(addresses(header(msg, "To"))) | set(addresses(per_message.get("x-postfix-sender", "")))
    our |= set(addresses(header(msg, "From")))
    if (carried := report_message(msg)) is not msg:
        our |= set(addresses(header(carried, "To")))
        msg = carried
    structured = [_recipient_from_fields(b) for b in blocks]
    structured = [r for r in structured if r.address or r.status or r.action]
    returned = returned_message(msg, _all_text(msg))
    report.original_ids = returned.ids
    original_to = returned.to
    our |= set(returned.senders)
    prose = _text_recipients(human, our)
    if structured:
        report.structured = True
        for rcpt in structured:
            extra = prose.get(rcpt.address or "")
            if extra and extra.diagnostic and extra.diagnostic not in rcpt.diagnostic:
                rcpt.diagnostic = f"{rcpt.diagnostic} | {extra.diagnostic}" if rcpt.diagnostic else extra.diagnostic
                rcpt.status = rcpt.status or extra.status
            rcpt.code = rcpt.code or find_reply_code(rcpt.diagnostic)
        report.recipients = structured[:MAX_RECIPIENTS]
        report.unread_recipients = max(0, len(structured) - MAX_RECIPIENTS)
    else:
        failed_header = {a: i for i, a in enumerate(addresses(header(msg, "X-Failed-Recipients"))[:MAX_RECIPIENTS])}
        for address in failed_header:
            prose.setdefault(address, Recipient(address, "failed"))
        # Those the X-Failed-Recipients header names first, in its order.
        ordered = sorted(prose.values(), key=lambda r: failed_header.get(r.address or "", len(failed_header)))
        if not ordered and len(original_to) == 1 and original_to[0] not in our:
            ordered = [Recipient(original_to[0], "failed")]
        delayed = says_delayed(header(msg, "Subject"), human)
        for rcpt in ordered:
            if delayed:
                rcpt.action = "delayed"
        report.recipients = ordered[:MAX_RECIPIENTS]
        report.unread_recipients = max(0, len(ordered) - MAX_RECIPIENTS)
    _read_phases(report.recipients, human, our)
    return report
