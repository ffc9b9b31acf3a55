"""`judge_smtp_reply`: the replies our sender gets at send time, judged with the bounce logic.

The texts are real replies of major providers (Gmail, Microsoft 365 / Outlook.com, Yahoo,
Postfix defaults, Spamhaus-using servers, greylisting), with their documented codes.
"""

from __future__ import annotations

import pytest

from aicmo_actors.cam.classify import SmtpJudgement, judge_smtp_reply
from contracts.cam import BounceReason, ReplyCategory

HARD, SOFT = "bounce_hard", "bounce_soft"

REPLIES = [
    # (code, text, stage, category, reason, status, sending_side)
    (
        550,
        "5.1.1 <x@example.com>: Recipient address rejected: User unknown in local recipient table",
        "rcpt",
        HARD,
        "user_unknown",
        "5.1.1",
        False,
    ),
    (
        550,
        "5.1.1 The email account that you tried to reach does not exist. Please "
        "try double-checking the recipient's email address for typos or unnecessary "
        "spaces. https://support.google.com/mail/?p=NoSuchUser a1-20020a.1 - gsmtp",
        "rcpt",
        HARD,
        "user_unknown",
        "5.1.1",
        False,
    ),
    (
        550,
        "5.5.0 Requested action not taken: mailbox unavailable (S2017062302)",
        "rcpt",
        HARD,
        "user_unknown",
        "5.5.0",
        False,
    ),
    (
        550,
        "5.4.1 Recipient address rejected: Access denied. AS(201806281) "
        "[BN8NAM12FT034.eop-nam12.prod.protection.outlook.com]",
        "rcpt",
        HARD,
        "user_unknown",
        "5.4.1",
        False,
    ),
    (
        550,
        "5.1.2 Host or domain name not found. Name service error for name=nodomain.example type=A: Host not found",
        "rcpt",
        HARD,
        "host_unknown",
        "5.1.2",
        False,
    ),
    (556, "5.1.10 Recipient address has null MX", "rcpt", HARD, "not_accept", "5.1.10", False),
    (550, "5.1.6 Recipient addresses in this domain have moved", "rcpt", HARD, "has_moved", "5.1.6", False),
    (
        554,
        "5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10",
        "rcpt",
        SOFT,
        "blocked",
        "5.7.1",
        True,
    ),
    (
        550,
        "5.7.606 Access denied, banned sending IP [192.0.2.10]. To request removal from this list please visit https://sender.office.com/",
        "mail",
        SOFT,
        "blocked",
        "5.7.606",
        True,
    ),
    (
        550,
        "5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your "
        "Internet service provider since part of their network is on our block list (S3150).",
        "rcpt",
        SOFT,
        "blocked",
        "5.7.1",
        True,
    ),
    (
        550,
        "5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail "
        "users, and has been blocked. The sender must authenticate with at least one of SPF or DKIM.",
        "data",
        SOFT,
        "auth_failure",
        "5.7.26",
        True,
    ),
    (554, "5.7.5 Permanent error evaluating DMARC policy", "data", SOFT, "auth_failure", "5.7.5", True),
    (
        535,
        "5.7.8 Username and Password not accepted. Learn more at https://support.google.com/mail/?p=BadCredentials",
        "connect",
        SOFT,
        "auth_failure",
        "5.7.8",
        True,
    ),
    (550, "5.7.1 Message rejected as spam by Content Filtering.", "data", SOFT, "spam_detected", "5.7.1", True),
    (554, "5.7.1 <x@example.com>: Relay access denied", "rcpt", SOFT, "policy", "5.7.1", True),
    (
        554,
        "5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes",
        "data",
        SOFT,
        "policy",
        "5.7.9",
        True,
    ),
    # A rejected MAIL FROM is about our sender address, never the lead's.
    (
        550,
        "5.1.0 <alex@outreach.example.com>: Sender address rejected: User unknown",
        "mail",
        SOFT,
        "policy",
        "5.1.0",
        True,
    ),
    (
        552,
        "5.2.2 The email account that you tried to reach is over quota and inactive.",
        "rcpt",
        SOFT,
        "mailbox_full",
        "5.2.2",
        False,
    ),
    (
        452,
        "4.2.2 The email account that you tried to reach is over quota.",
        "rcpt",
        SOFT,
        "mailbox_full",
        "4.2.2",
        False,
    ),
    (550, "5.2.1 The email account that you tried to reach is disabled.", "rcpt", SOFT, "suspended", "5.2.1", False),
    (552, "5.3.4 Message size exceeds fixed limit", "data", SOFT, "message_too_big", "5.3.4", False),
    (
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume "
        "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
        "mail",
        SOFT,
        "rate_limited",
        "4.7.0",
        False,
    ),
    (
        421,
        "4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP address.",
        "data",
        SOFT,
        "rate_limited",
        "4.7.28",
        False,
    ),
    # Greylisting (RFC 6647): temporary, never hard, never a problem of our sending.
    (
        450,
        "4.2.0 <x@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html",
        "rcpt",
        SOFT,
        "greylisted",
        "4.2.0",
        False,
    ),
    (450, "4.7.1 Greylisted, please try again later", "rcpt", SOFT, "greylisted", "4.7.1", False),
    (451, "4.7.1 Greylisting in action, please come back in 00:05:00", "rcpt", SOFT, "greylisted", "4.7.1", False),
    (451, "4.7.1 Please try again later", "rcpt", SOFT, "greylisted", "4.7.1", False),
    (450, "4.2.0 Try again later", "rcpt", SOFT, "greylisted", "4.2.0", False),
    (451, "Greylisted for 5 minutes (see http://greylisting.org)", "rcpt", SOFT, "greylisted", None, False),
    (450, "<x@example.com>: Recipient address rejected: Greylisted", "rcpt", SOFT, "greylisted", None, False),
    (
        451,
        "4.7.1 <x@example.com>: Recipient address rejected: Graylisted, retry in 300 seconds",
        "rcpt",
        SOFT,
        "greylisted",
        "4.7.1",
        False,
    ),
    # A permanent code with greylisting words is still not a dead address.
    (550, "5.7.1 greylisted", "rcpt", SOFT, "greylisted", "5.7.1", False),
    # Not greylisting: the words say what it is.
    (
        451,
        "4.7.1 Please try again later, too many connections from your server",
        "rcpt",
        SOFT,
        "rate_limited",
        "4.7.1",
        False,
    ),
    (
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to user complaints - 4.16.55.1",
        "mail",
        SOFT,
        "rate_limited",
        "4.7.0",
        False,
    ),
    (
        450,
        "4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.10], try again later",
        "rcpt",
        SOFT,
        "blocked",
        "4.7.1",
        True,
    ),
    (451, "4.3.0 Temporary local problem - please try later", "rcpt", SOFT, "system_error", "4.3.0", False),
    (451, "4.3.0 Temporary local problem, please try again", "rcpt", SOFT, "system_error", "4.3.0", False),
    (None, "[Errno 111] Connection refused", "connect", SOFT, "network_error", None, False),
    (None, "timed out", "data", SOFT, "network_error", None, False),
    # No code: the connection never got a reply, so even a dead-sounding domain is only soft.
    (None, "[Errno -2] Name or service not known", "connect", SOFT, "host_unknown", None, False),
    # The server wants TLS or a login first: our configuration, counted against the mailbox.
    (530, "5.7.0 Must issue a STARTTLS command first", "mail", "bounce_soft", "policy", "5.7.0", True),
    (530, "5.7.0 Authentication required", "mail", "bounce_soft", "policy", "5.7.0", True),
    (None, "STARTTLS extension not supported by server", "connect", "bounce_soft", "network_error", None, False),
]


@pytest.mark.parametrize(("code", "text", "stage", "category", "reason", "status", "sending_side"), REPLIES)
def test_judge_smtp_reply(
    code: int | None, text: str, stage: str, category: str, reason: str, status: str | None, sending_side: bool
) -> None:
    j = judge_smtp_reply(code, text, stage=stage)
    assert j == SmtpJudgement(ReplyCategory(category), BounceReason(reason), status, sending_side)


def test_the_basic_code_decides_hard_or_soft_for_the_same_text() -> None:
    text = "5.1.1 <x@example.com>: Recipient address rejected: User unknown"
    assert judge_smtp_reply(550, text, stage="rcpt").category is ReplyCategory.BOUNCE_HARD
    assert judge_smtp_reply(450, text.replace("5.1.1", "4.1.1"), stage="rcpt").category is ReplyCategory.BOUNCE_SOFT


def test_an_empty_reply_is_an_undefined_soft_failure_or_a_network_error() -> None:
    assert judge_smtp_reply(550, "", stage="data") == SmtpJudgement(
        ReplyCategory.BOUNCE_SOFT, BounceReason.UNDEFINED, None, False
    )
    assert judge_smtp_reply(None, "", stage="connect").reason is BounceReason.NETWORK_ERROR


def test_the_default_stage_is_data() -> None:
    assert judge_smtp_reply(550, "5.1.1 User unknown").category is ReplyCategory.BOUNCE_HARD
