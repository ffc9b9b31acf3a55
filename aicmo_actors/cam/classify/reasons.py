"""Why a delivery failed, from the enhanced status code AND the diagnostic text.

The code alone is often wrong or missing (5.7.1 is used for "user unknown" by some
servers, 5.0.0 for anything), so clear text wins over a generic code, and the code
decides only when the text says nothing we know. Pure functions.
"""

from __future__ import annotations

import re

from contracts.cam import ADDRESS_DEAD_REASONS, SENDING_SIDE_REASONS, BounceReason, ReplyCategory

R = BounceReason

#: Diagnostic phrases, most specific first. Matched case-insensitively on the text.
TEXT_RULES: tuple[tuple[BounceReason, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.I))
    for reason, pattern in (
        (R.AUTH_FAILURE, r"\b(spf|dkim|dmarc)\b|unauthenticated|5\.7\.2[3-7]|not authenticated|authentication (check )?fail|sender (address )?verif\w* fail"),
        (R.NOT_ACCEPT, r"null ?mx|does not accept (any )?mail|doesn't accept mail|accepts no mail|5\.1\.10 .*null|domain .* no mail"),
        (R.HAS_MOVED, r"has moved|no longer (with|at|employed)|5\.1\.6|address (has )?changed|left the (company|organi[sz]ation)"),
        (R.HOST_UNKNOWN, r"host or domain name not found|name service error|domain (name )?not found|unrouteable (mail )?domain|unroutable|no such domain|nxdomain|domain does not exist|5\.1\.2\b|host not found|unknown (mail )?domain|mx lookup fail|no mx|couldn't find any host"),
        (R.USER_UNKNOWN, r"user (is )?unknown|unknown user|no such (user|recipient|mailbox|address|account)|user not found|recipient not found|recipientnotfound|address (is )?(unknown|rejected|not found|does not exist|doesn't exist)|mailbox (is )?(unavailable|not found|does not exist|doesn't exist|unknown|not available)|does not exist|doesn't exist|invalid (recipient|mailbox|address)|unknown (recipient|local part|address|mailbox)|not (a )?valid (recipient|mailbox|user)|5\.1\.1\b|5\.1\.0\b|5\.1\.10|account (does not|doesn't) exist|doesn't have a \S+ account|no mailbox here|not listed in (domino )?directory|undeliverable address|recipient address rejected: access denied|bad destination (mailbox )?address|user doesn't exist|нет такого|не существует|unbekannt|existiert nicht|inconnu|n'existe pas|no existe|desconocido"),
        (R.SUSPENDED, r"suspend|disabled|deactivated|inactive|account (is )?(locked|blocked|expired|closed)|5\.2\.1\b|mailbox (is )?(disabled|locked|frozen)|has been terminated|no longer active"),
        (R.MAILBOX_FULL, r"quota|mailbox (is )?full|over ?quota|insufficient (storage|space)|exceeded (its|the) storage|5\.2\.2\b|4\.2\.2\b|storage (limit|allocation)|postfach (ist )?voll|boîte .* pleine|buzón .* lleno|mail ?box full"),
        (R.MESSAGE_TOO_BIG, r"too (big|large)|size (limit|exceed)|exceeds (the )?(maximum|size)|message size|5\.3\.4\b|5\.2\.3\b|message length exceeds"),
        (R.RATE_LIMITED, r"rate limit|too many (messages|connections|recipients|emails)|throttl|try again later|temporarily (deferred|rejected)|deferred due to|unusual (rate|volume)|unexpected volume|4\.7\.28|\b421\b.*(rate|volume|too many)|slow down|exceeded .* (limit|rate)|\[TS0\d\]|receiving mail at a rate"),
        (R.SPAM_DETECTED, r"\bspam\b|spam (content|detected|score)|\buce\b|\bjunk\b|bulk mail|content (was )?rejected|message content|virus|malware|phish|suspicious|spamassassin|rejected by .*filter|5\.7\.350|policy (violation|reasons).*content"),
        (R.BLOCKED, r"block ?list|black ?list|blacklisted|blocklisted|\brbl\b|\bdnsbl\b|spamhaus|spamcop|barracuda ?(central|reputation)|sorbs|listed (at|on|in)|reputation|banned|blocked|\bS3150\b|\bS3140\b|poor reputation|ip .* (rejected|refused)|client host .* rejected|your ip|sender ip|5\.7\.606|5\.7\.511|4\.7\.1 .*(rbl|block)|not allowed to send"),
        (R.POLICY, r"policy|not (allowed|permitted)|relay(ing)? (access )?denied|relay not permitted|prohibited|administrative|refused by (the )?administrator|5\.7\.1\b|restricted|not authorized|unauthori[sz]ed|anti-?spoof"),
        (R.EXPIRED, r"retry (time(out)?|period) exceeded|retry timeout|gave up|giving up|delivery time expired|expired|too long in queue|could not be delivered within|4\.4\.7\b|5\.4\.7\b|message (has been )?delayed .* (days|hours) and will not"),
        (R.NETWORK_ERROR, r"connection (timed out|refused|reset|lost|closed)|timed out|timeout|network (is )?unreachable|no route to host|4\.4\.1\b|4\.4\.2\b|5\.4\.1\b(?!.*access denied)|could not connect|unable to connect|lost connection|tls (handshake|negotiation)|broken pipe"),
        (R.SYSTEM_ERROR, r"system (error|failure)|internal (server )?error|local (error|problem)|temporary (local )?(failure|problem)|server (error|failure)|resources? (temporarily )?unavailable|4\.3\.\d\b|5\.3\.0\b|loop(s)? (back|detected)|mail loop|too many hops|5\.4\.6\b|configuration error"),
    )
)

#: When the text says nothing we know: the enhanced status code's subject.detail.
CODE_RULES: dict[str, BounceReason] = {
    "1.1": R.USER_UNKNOWN, "1.0": R.USER_UNKNOWN, "1.2": R.HOST_UNKNOWN, "1.3": R.USER_UNKNOWN,
    "1.6": R.HAS_MOVED, "1.10": R.USER_UNKNOWN, "2.0": R.USER_UNKNOWN, "2.1": R.SUSPENDED,
    "2.2": R.MAILBOX_FULL, "2.3": R.MESSAGE_TOO_BIG, "2.4": R.SYSTEM_ERROR, "3.0": R.SYSTEM_ERROR,
    "3.1": R.SYSTEM_ERROR, "3.2": R.SYSTEM_ERROR, "3.4": R.MESSAGE_TOO_BIG, "3.5": R.SYSTEM_ERROR,
    "4.0": R.NETWORK_ERROR, "4.1": R.NETWORK_ERROR, "4.2": R.NETWORK_ERROR, "4.3": R.HOST_UNKNOWN,
    "4.4": R.HOST_UNKNOWN, "4.6": R.SYSTEM_ERROR, "4.7": R.EXPIRED, "5.0": R.SYSTEM_ERROR,
    "6.0": R.POLICY, "7.0": R.POLICY, "7.1": R.POLICY, "7.7": R.AUTH_FAILURE,
    "7.23": R.AUTH_FAILURE, "7.24": R.AUTH_FAILURE, "7.25": R.AUTH_FAILURE, "7.26": R.AUTH_FAILURE,
    "7.27": R.NOT_ACCEPT, "7.28": R.RATE_LIMITED, "7.8": R.AUTH_FAILURE, "7.9": R.AUTH_FAILURE,
}

STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
REPLY_CODE = re.compile(r"(?<![\d.])([245]\d\d)(?:[ -]|$)")


def find_status(text: str) -> str | None:
    """The first enhanced status code (RFC 3463) in `text`."""
    match = STATUS.search(text or "")
    return match.group(0) if match else None


def find_reply_code(text: str) -> int | None:
    match = REPLY_CODE.search(text or "")
    return int(match.group(1)) if match else None


def reason_from(status: str | None, text: str) -> tuple[BounceReason, str]:
    """The bounce reason and the evidence for it."""
    for reason, pattern in TEXT_RULES:
        match = pattern.search(text or "")
        if match:
            return reason, f"diagnostic says {match.group(0).strip()!r}"
    if status:
        detail = status.split(".", 1)[1]
        reason = CODE_RULES.get(detail)
        if reason is not None:
            return reason, f"status code {status}"
        if status.startswith("4"):
            return R.UNDEFINED, f"temporary status {status} with no known detail"
    return R.UNDEFINED, "no known status code or diagnostic"


def is_permanent(status: str | None, code: int | None, action: str | None = None) -> bool:
    if action and action.lower() == "delayed":
        return False
    if status:
        return status.startswith("5")
    if code is not None:
        return code >= 500
    return action is None or action.lower() == "failed"


def category_for(reason: BounceReason, permanent: bool) -> ReplyCategory:
    """Hard only when the address itself is dead; everything else that failed is soft."""
    if reason in ADDRESS_DEAD_REASONS and permanent:
        return ReplyCategory.BOUNCE_HARD
    if reason is R.NOT_ACCEPT and permanent:
        return ReplyCategory.BOUNCE_HARD
    return ReplyCategory.BOUNCE_SOFT


def sending_side(reason: BounceReason) -> bool:
    return reason in SENDING_SIDE_REASONS
