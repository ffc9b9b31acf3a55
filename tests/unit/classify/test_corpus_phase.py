"""Whose address failed, and words before bare codes (issue 21, items 1 and 2).

The corpus in `corpus/phase/` is written from the formats' documentation and the wordings
real servers use (Postfix's "(in reply to MAIL FROM command)", Exim's "SMTP error from
remote mail server after end of data", Sendmail's session transcript, qmail-remote's
phrases, RFC 3463's X.1.7 / X.1.8 sender codes, RFC 7504's 521): a refusal of our sender
address is a problem of our sending, never a dead lead; "user unknown" answered after the
message was sent is a filter; an explicit phrase wins over a status code in the same text;
a DNS lookup that failed for now is not an unknown host. The files sit in a folder of their
own so that `test_corpus.py`'s table of the top-level corpus stays whole.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aicmo_actors.cam.classify import classify_message, judge_smtp_reply
from aicmo_actors.cam.classify.dsn import notification_text, read_bounce
from aicmo_actors.cam.classify.parse import parse_message
from aicmo_actors.cam.classify.reasons import reason_from, smtp_phase
from aicmo_actors.cam.lead_rules import LeadView, decide_reply
from contracts.cam import ADDRESS_DEAD_REASONS, SENDING_SIDE_REASONS, BounceReason, LeadState, ReplyCategory
from tests.unit.classify.test_corpus import CORPUS

PHASE_CORPUS = CORPUS / "phase"
NOW = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)

#: file -> (category, reason, failed recipients, enhanced status, our Message-ID found in the report)
EXPECTED: dict[str, tuple[str, str, tuple[str, ...], str | None, str]] = {
    # -- 1. the phase and whose address: our sender refused is never a dead lead -------------------------
    # Postfix: "No such user" in reply to MAIL FROM is about our address.
    "phase_postfix_mail_from_rejected.eml": (
        "bounce_soft",
        "policy",
        ("dana@client.example",),
        "5.1.0",
        "<ph.201.1@outreach.example.com>",
    ),
    # Exim: "after MAIL FROM:<ours> SIZE=...: 550 5.1.0 Unknown address".
    "phase_exim_mail_from_rejected.eml": (
        "bounce_soft",
        "policy",
        ("erik@wholesale.example",),
        "5.1.0",
        "<ph.202.1@outreach.example.com>",
    ),
    # Sendmail: the transcript's ">>> MAIL From:<ours>" then "<<< 550 ... Mailbox unavailable".
    "phase_sendmail_mail_from_rejected.eml": (
        "bounce_soft",
        "policy",
        ("fiona@partner.example",),
        "5.7.0",
        "<ph.203.1@outreach.example.com>",
    ),
    # Sendmail with RFC 3464: Status 5.1.8, "Domain of sender address ... does not exist".
    "phase_sendmail_sender_domain.eml": (
        "bounce_soft",
        "policy",
        ("george@factory.example",),
        "5.1.8",
        "<ph.204.1@outreach.example.com>",
    ),
    # Postfix delays its sender checks to RCPT TO: "Sender address rejected: Domain not found" there.
    "phase_postfix_sender_domain_at_rcpt.eml": (
        "bounce_soft",
        "policy",
        ("hannah@logistics.example",),
        "5.1.8",
        "<ph.205.1@outreach.example.com>",
    ),
    # RFC 3464 Status 5.1.7 (bad sender's mailbox address): "Invalid address" is ours, not the lead's.
    "phase_status_517_rfc3464.eml": (
        "bounce_soft",
        "policy",
        ("ines@bistro.example",),
        "5.1.7",
        "<ph.206.1@outreach.example.com>",
    ),
    # Exim's sender callout: the quoted "Recipient address rejected: User unknown" is about our address.
    "phase_exim_sender_verify_failed.eml": (
        "bounce_soft",
        "policy",
        ("jonas@agency.example",),
        "5.1.1",
        "<ph.207.1@outreach.example.com>",
    ),
    # -- 1. "user unknown" after the message was sent: a filter, not a dead mailbox ------------------------
    "phase_postfix_user_unknown_after_data.eml": (
        "bounce_soft",
        "filtered",
        ("karl@mobile-carrier.example",),
        "5.1.1",
        "<ph.208.1@outreach.example.com>",
    ),
    "phase_exim_user_unknown_after_data.eml": (
        "bounce_soft",
        "filtered",
        ("lena@filtering.example",),
        "5.1.1",
        "<ph.209.1@outreach.example.com>",
    ),
    # Sendmail's ">>> ." is the end of DATA.
    "phase_sendmail_user_unknown_after_dot.eml": (
        "bounce_soft",
        "filtered",
        ("mona@shipping.example",),
        "5.1.1",
        "<ph.210.1@outreach.example.com>",
    ),
    # Refused at RCPT TO: still a dead address.
    "phase_postfix_rcpt_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("nora@dental.example",),
        "5.1.1",
        "<ph.211.1@outreach.example.com>",
    ),
    # -- 2. words beat bare codes ------------------------------------------------------------------------
    # "5.2.1 ... User Unknown": the words say a dead user, whatever X.2.1 (mailbox disabled) says.
    "words_521_status_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("oscar@cable-isp.example",),
        "5.2.1",
        "<wd.221.1@outreach.example.com>",
    ),
    # "521 5.3.2 ... not accepting mail" at the greeting: the host takes no mail (RFC 7504), not a system error.
    "words_521_532_not_accepting_mail.eml": (
        "bounce_hard",
        "not_accept",
        ("paula@closed-shop.example",),
        "5.3.2",
        "<wd.222.1@outreach.example.com>",
    ),
    # Postfix gave up on "Host not found, try again" (a DNS lookup that failed for now): expired, not host_unknown.
    "words_dns_postfix_try_again.eml": (
        "bounce_soft",
        "expired",
        ("quinn@flaky-dns.example",),
        "4.4.3",
        "<wd.223.1@outreach.example.com>",
    ),
    # Postfix still retrying "Malformed or unexpected name server reply": a network error.
    "words_dns_postfix_malformed_delayed.eml": (
        "delayed",
        "network_error",
        ("rita@broken-ns.example",),
        "4.4.3",
        "<wd.224.1@outreach.example.com>",
    ),
    # Gmail gave up on an MX lookup answered SERVFAIL.
    "words_dns_gmail_servfail.eml": (
        "bounce_soft",
        "expired",
        ("sam@lame-delegation.example",),
        "4.4.3",
        "<wd.225.1@outreach.example.com>",
    ),
}


def _classify(name: str):  # type: ignore[no-untyped-def]
    return classify_message((PHASE_CORPUS / name).read_bytes())


def test_every_file_of_the_phase_corpus_has_an_expectation() -> None:
    assert sorted(p.name for p in PHASE_CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_phase_corpus(name: str) -> None:
    category, reason, failed, status, ours = EXPECTED[name]
    c = _classify(name)
    assert c.category == ReplyCategory(category), c.reasons
    assert c.reason == reason, c.reasons
    assert c.failed_recipients == failed, c.reasons
    assert c.status == status, c.reasons
    assert c.in_reply_to == ours, c.reasons
    assert c.sending_side == (BounceReason(c.reason) in SENDING_SIDE_REASONS)
    assert c.confidence >= 0.8


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n][1] == "policy"))
def test_a_refusal_of_our_sender_never_suppresses_the_lead(name: str) -> None:
    c = _classify(name)
    assert BounceReason(c.reason) not in ADDRESS_DEAD_REASONS
    assert c.sending_side
    decision = decide_reply(LeadView(LeadState.ACTIVE), c, NOW)
    assert decision.suppress is None and decision.new_state is None
    assert decision.sending_side and not decision.count_soft_bounce


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n][1] == "filtered"))
def test_user_unknown_after_data_is_a_soft_bounce_of_the_lead(name: str) -> None:
    c = _classify(name)
    assert not c.sending_side
    decision = decide_reply(LeadView(LeadState.ACTIVE), c, NOW)
    assert decision.suppress is None and decision.new_state is None
    assert decision.count_soft_bounce and decision.retry_step_at is not None
    assert any("end of DATA" in r for r in c.reasons)


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("phase_postfix_mail_from_rejected.eml", "mail"),
        ("phase_exim_mail_from_rejected.eml", "mail"),
        ("phase_sendmail_mail_from_rejected.eml", "mail"),
        ("phase_sendmail_sender_domain.eml", "mail"),
        ("phase_postfix_sender_domain_at_rcpt.eml", "rcpt"),
        ("phase_exim_sender_verify_failed.eml", "rcpt"),
        ("phase_postfix_user_unknown_after_data.eml", "data"),
        ("phase_exim_user_unknown_after_data.eml", "data"),
        ("phase_sendmail_user_unknown_after_dot.eml", "data"),
        ("phase_postfix_rcpt_user_unknown.eml", "rcpt"),
        ("words_521_532_not_accepting_mail.eml", "connect"),
        ("phase_status_517_rfc3464.eml", None),
    ],
)
def test_each_recipient_carries_the_phase_its_report_gives(name: str, phase: str | None) -> None:
    msg = parse_message((PHASE_CORPUS / name).read_bytes())
    human, fields = notification_text(msg)
    (rcpt,) = read_bounce(msg, human, fields).recipients
    assert rcpt.phase == phase


def test_the_pipelined_sendmail_transcript_of_the_main_corpus_is_still_rcpt_to() -> None:
    """Sendmail writes ">>> DATA" before the refused RCPT TO's reply when it pipelines."""
    msg = parse_message((CORPUS / "sendmail_user_unknown.eml").read_bytes())
    human, fields = notification_text(msg)
    (rcpt,) = read_bounce(msg, human, fields).recipients
    assert rcpt.phase == "rcpt"
    assert classify_message((CORPUS / "sendmail_user_unknown.eml").read_bytes()).reason == "user_unknown"


def test_a_reply_naming_our_sender_address_is_read_as_mail_from() -> None:
    raw = (PHASE_CORPUS / "phase_status_517_rfc3464.eml").read_bytes()
    raw = raw.replace(b"550 5.1.7 Invalid address", b"550 5.1.1 <alex@outreach.example.com>: User unknown")
    raw = raw.replace(b"Status: 5.1.7", b"Status: 5.1.1")
    msg = parse_message(raw)
    human, fields = notification_text(msg)
    (rcpt,) = read_bounce(msg, human, fields).recipients
    assert rcpt.phase == "mail"
    assert reason_from(rcpt.status, rcpt.diagnostic, rcpt.code, phase=rcpt.phase)[0] is BounceReason.POLICY


# -- the SMTP phase, as each MTA writes it ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "phase"),
    [
        ("550 5.1.1 <a@b.example>: User unknown (in reply to RCPT TO command)", "rcpt"),
        ("550 5.7.1 Sender rejected (in reply to MAIL FROM command)", "mail"),
        ("550 5.1.1 User unknown (in reply to end of\n    DATA command)", "data"),
        ("554 5.7.1 Rejected (in reply to DATA command)", "data"),
        ("554 5.7.1 Go away (in reply to EHLO command)", "connect"),
        ("host mx.b.example[192.0.2.1] refused to talk to me: 554 5.7.1 No thanks", "connect"),
        ("SMTP error from remote mail server after RCPT TO:<a@b.example>: 550 Unknown user", "rcpt"),
        ("SMTP error from remote mail server after pipelined RCPT TO:<a@b.example>: 550 No", "rcpt"),
        ("SMTP error from remote mail server after MAIL FROM:<x@y.example> SIZE=1234: 550 No", "mail"),
        ("SMTP error from remote mail server after end of data: 550 5.1.1 User unknown", "data"),
        ("SMTP error from remote mail server after initial connection: 554 No SMTP service", "connect"),
        ("Connected to 192.0.2.1 but sender was rejected. Remote host said: 553 sorry", "mail"),
        ("192.0.2.1 does not like recipient. Remote host said: 550 no mailbox by that name", "rcpt"),
        ("192.0.2.1 failed after I sent the message. Remote host said: 554 5.7.1 spam", "data"),
        (">>> MAIL From:<x@y.example> SIZE=10 <<< 553 5.1.8 Domain of sender address does not exist", "mail"),
        (">>> RCPT To:<a@b.example> <<< 550 5.1.1 <a@b.example>... User unknown", "rcpt"),
        (">>> DATA <<< 550 5.1.1 <a@b.example>... User unknown <<< 503 5.0.0 Need RCPT (recipient)", "rcpt"),
        (">>> DATA <<< 354 Enter mail >>> . <<< 550 5.7.1 Rejected", "data"),
        ("<<< 554 5.7.1 Go away", "connect"),
        ("550 5.1.1 The email account that you tried to reach does not exist", None),
        ("", None),
    ],
)
def test_smtp_phase(text: str, phase: str | None) -> None:
    assert smtp_phase(text) == phase


# -- the reason with its phase ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "text", "code", "phase", "expected"),
    [
        # Our sender address, in words or by its code, at any step.
        (
            "5.1.8",
            "553 5.1.8 <x@y.example>... Domain of sender address x@y.example does not exist",
            553,
            None,
            "policy",
        ),
        ("4.1.8", "450 4.1.8 <x@y.example>: Sender address rejected: Domain not found", 450, "rcpt", "policy"),
        (
            "5.1.0",
            "550 5.1.0 <x@y.example>: Sender address rejected: User unknown in local recipient table",
            550,
            None,
            "policy",
        ),
        (None, "550 Sender verify failed", 550, "rcpt", "policy"),
        ("5.1.7", "550 5.1.7 Invalid address", 550, None, "policy"),
        (None, "553 sorry, your sender domain must exist (#5.1.8)", 553, None, "policy"),
        # MAIL FROM refused: nothing said about the recipient can be about the recipient.
        ("5.1.1", "550 5.1.1 User unknown", 550, "mail", "policy"),
        (None, "550 Rejected", 550, "mail", "policy"),
        ("5.2.2", "552 5.2.2 Mailbox full", 552, "mail", "policy"),
        # What is already about our sending, or temporary, stays what it is.
        ("5.7.1", "554 5.7.1 Client host [192.0.2.1] blocked using zen.spamhaus.org", 554, "mail", "blocked"),
        ("4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred", 421, "mail", "rate_limited"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", 552, "mail", "message_too_big"),
        # After the end of DATA a dead-address reason is a filter's; other reasons stay.
        ("5.1.1", "550 5.1.1 User unknown", 550, "data", "filtered"),
        (None, "550 No such user here", 550, "data", "filtered"),
        ("5.2.2", "552 5.2.2 Mailbox full", 552, "data", "mailbox_full"),
        ("5.7.1", "550 5.7.1 Message rejected as spam", 550, "data", "spam_detected"),
        # mail.ru looks the mailbox up only once the message is in: its own words keep it dead.
        (
            None,
            "550 Message was not accepted -- invalid mailbox. Local mailbox a@b.example is unavailable: user not found",
            550,
            "data",
            "user_unknown",
        ),
        # Before any recipient was named.
        ("5.1.1", "554 5.1.1 User unknown", 554, "connect", "policy"),
        # At RCPT TO, or unsaid: the reason of the words.
        ("5.1.1", "550 5.1.1 User unknown", 550, "rcpt", "user_unknown"),
        ("5.1.1", "550 5.1.1 User unknown", 550, None, "user_unknown"),
    ],
)
def test_reason_from_with_the_phase(
    status: str | None, text: str, code: int | None, phase: str | None, expected: str
) -> None:
    reason, why = reason_from(status, text, code, phase=phase)
    assert reason is BounceReason(expected), why


def test_the_phase_is_read_from_the_text_when_not_given() -> None:
    text = "550 5.1.1 <a@b.example>: User unknown (in reply to end of DATA command)"
    assert reason_from("5.1.1", text, 550)[0] is BounceReason.FILTERED
    assert reason_from("5.1.1", text, 550, phase="rcpt")[0] is BounceReason.USER_UNKNOWN


# -- 2. an explicit phrase wins over a bare code -----------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "text", "code", "expected"),
    [
        ("5.2.1", "550 5.2.1 <a@b.example>... User Unknown", 550, "user_unknown"),
        (None, "550 5.2.1 <a@b.example>... User Unknown", 550, "user_unknown"),
        ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled.", 550, "suspended"),
        ("5.2.1", "550 5.2.1 <a@b.example>... Mailbox disabled for this recipient", 550, "suspended"),
        ("5.2.1", "550 5.2.1 Rejected", 550, "suspended"),  # the code alone still says it
        ("5.3.2", "521 5.3.2 mx.b.example not accepting mail", 521, "not_accept"),
        (None, "521 5.3.2 mx.b.example does not accept mail", 521, "not_accept"),
        ("5.3.2", "521 5.3.2 Service not available", 521, "not_accept"),  # RFC 7504: 521 takes no mail
        ("5.1.10", "556 5.1.10 Recipient address has null MX", 556, "not_accept"),
        # "from your IP" is a block of our sending, not a host that takes no mail.
        ("5.7.1", "550 5.7.1 We are not accepting mail from your IP 192.0.2.1", 550, "blocked"),
        ("4.3.2", "421 4.3.2 System not accepting network messages", 421, "system_error"),
        # Gmail's 4.7.28 says a rate in words, though it also says "unsolicited".
        ("4.7.28", "421 4.7.28 Gmail has detected an unusual rate of unsolicited mail", 421, "rate_limited"),
    ],
)
def test_words_beat_bare_codes(status: str | None, text: str, code: int | None, expected: str) -> None:
    reason, why = reason_from(status, text, code)
    assert reason is BounceReason(expected), why


@pytest.mark.parametrize(
    "text",
    [
        "Host or domain name not found. Name service error for name=b.example type=MX: Host not found, try again",
        "Host or domain name not found. Name service error for name=b.example type=MX: Malformed or unexpected "
        "name server reply",
        "DNS Error: DNS type 'mx' lookup of b.example responded with code SERVFAIL",
        "[Errno -3] Temporary failure in name resolution",
        "R=dnslookup defer (-1): host lookup did not complete",
        "Deferred: Name server: b.example.: host name lookup failure",
        "Name server timeout",
        "451 4.4.0 DNS query failed. The error was: DNS query failed with error: ErrorRetry",
        "DNS lookup timed out for b.example",
        "could not resolve b.example: DNS temporary failure",
    ],
)
def test_a_dns_lookup_that_failed_for_now_is_a_network_error(text: str) -> None:
    for status, code in ((None, None), ("4.4.3", 451), ("5.4.4", 550)):
        reason, why = reason_from(status, text, code)
        assert reason is BounceReason.NETWORK_ERROR, (status, why)


@pytest.mark.parametrize(
    "text",
    [
        "Host or domain name not found. Name service error for name=b.example type=A: Host not found",
        "DNS Error: Domain name not found",
        "550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
        "[Errno -2] Name or service not known",
    ],
)
def test_a_domain_that_does_not_exist_is_still_an_unknown_host(text: str) -> None:
    assert reason_from("5.4.4", text, 550)[0] is BounceReason.HOST_UNKNOWN


def test_the_status_code_of_a_directory_server_failure_is_a_network_error() -> None:
    assert reason_from("4.4.3", "", None)[0] is BounceReason.NETWORK_ERROR


# -- send time: the same words --------------------------------------------------------------------------
def test_a_sender_refusal_at_rcpt_to_is_ours_at_send_time_too() -> None:
    j = judge_smtp_reply(
        550, "5.1.8 <alex@outreach.example.com>: Sender address rejected: Domain not found", stage="rcpt"
    )
    assert (j.category, j.reason, j.sending_side) == (ReplyCategory.BOUNCE_SOFT, BounceReason.POLICY, True)


# -- linear time: the new patterns on hostile text ----------------------------------------------------------
MB = 1_000_000


def _bounce(text: bytes) -> bytes:
    return (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example>\nTo: alex@outreach.example.com\n"
        b"Subject: Undelivered Mail Returned to Sender\nContent-Type: text/plain\n\n"
        b"This is the mail system at host mx.example.\n\n<a@b.example>: host mx said: 550 " + text
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "unit",
    [
        b">>> DATA ",
        b">>> ",
        b"<<< 5",
        b"<<< 250 ",
        b"after ",
        b"after pipelined ",
        b"in reply to ",
        b"sender ",
        b"sender domain ",
        b"invalid sender ",
        b"dns ",
        b"name server ",
        b"not accepting ",
        b"<a@",
        b"<a@b.",
        b"-- ",
    ],
)
def test_the_phase_and_sender_patterns_read_hostile_text_in_linear_time(unit: bytes) -> None:
    c = classify_message(_bounce(unit * (MB // len(unit))))
    assert c.category in {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT}
    assert smtp_phase((unit * (MB // len(unit))).decode()) in {None, "connect", "mail", "rcpt", "data"}
