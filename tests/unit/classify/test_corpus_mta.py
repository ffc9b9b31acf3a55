"""One bounce per mail server or gateway format that Sisimai knows (its Lhost modules), issue 21.

Each file in corpus/mta/ is written from the markers a Debian Sisimai 4.25 Lhost module documents
for one format (its first lines, boundaries, subject, headers and its own diagnostic wordings),
with invented hosts and addresses. Where a module recognises a format only by the provider's real
domain (Bigfoot, Biglobe, Facebook, MessageLabs, Verizon, Yandex ...), our file keeps the shape
under an example domain, so Sisimai reads it with its generic RFC 3464 reader or not at all; the
verdicts are still compared with Sisimai's in test_vs_sisimai.py.

`FORMATS` is the coverage table: every Lhost module and the corpus file of its shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aicmo_actors.cam.classify import classify_message
from contracts.cam import ReplyCategory
from tests.unit.classify.verdicts import BOUNCES, assert_prefixes_never_raise, assert_verdict

CORPUS = Path(__file__).parent / "corpus"
MTA = CORPUS / "mta"


def _ours(n: int) -> str:
    return f"<mta.{n}.1@outreach.example.com>"


#: file -> (category, reason, failed recipients, in_reply_to: our Message-ID it carries)
EXPECTED: dict[str, tuple[str, str | None, tuple[str, ...], str | None]] = {
    "activehunter_user_unknown.eml": ("bounce_hard", "user_unknown", ("kurt.meyer@ah-mail.example.net",), _ours(501)),
    # amavisd-new's "554 5.7.0 Reject, id=... - spam": our content, our sending.
    "amavis_spam_rejected.eml": ("bounce_soft", "spam_detected", ("dana.whitfield@mx.example.org",), _ours(502)),
    "amazon_workmail_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("ines.duarte@workmail-client.example.org",),
        _ours(503),
    ),
    "aol_host_unknown.eml": ("bounce_hard", "host_unknown", ("m.okonkwo@gone-domain.example",), _ours(504)),
    "apache_james_bounce.eml": ("bounce_hard", "user_unknown", ("l.novak@james-site.example.org",), _ours(505)),
    "barracuda_bulk_filter_blocked.eml": (
        "bounce_soft",
        "blocked",
        ("r.castillo@cuda-client.example.com",),
        _ours(506),
    ),
    # The original's headers come back in a message/partial part.
    "bigfoot_transcript_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("p.harlow@forward-for-life.example",),
        _ours(507),
    ),
    # "The number of messages in recipient's mailbox exceeded the local limit."
    "biglobe_mailbox_full.eml": ("bounce_soft", "mailbox_full", ("s-kato@isp-jp.example",), _ours(508)),
    # Status 5.0.0 and no Diagnostic-Code: the text's "No such domain." decides.
    "courier_no_such_domain.eml": ("bounce_hard", "host_unknown", ("y.haddad@no-longer-there.example",), _ours(509)),
    "einsundeins_message_too_big.eml": ("bounce_soft", "message_too_big", ("h.vogel@mailhost-de.example",), _ours(510)),
    # Exchange's "#550 4.4.7 QUEUE.Expired": given up after retrying, never hard.
    "exchange2007_queue_expired.eml": (
        "bounce_soft",
        "expired",
        ("o.lindgren@branch.corp-ex.example.org",),
        _ours(511),
    ),
    "social_network_rcp_p1.eml": ("bounce_hard", "user_unknown", ("sam.oduya@social-net.example",), _ours(512)),
    "gmx_retry_timeout.eml": ("bounce_soft", "expired", ("j.berger@gmx-client.example.net",), _ours(513)),
    "gsuite_address_not_found.eml": (
        "bounce_hard",
        "user_unknown",
        ("t.abara@workspace-client.example.com",),
        _ours(514),
    ),
    "imail_server_unknown_user.eml": ("bounce_hard", "user_unknown", ("f.mendes@imail-host.example.com",), _ours(515)),
    "mxlogic_user_not_found.eml": ("bounce_hard", "user_unknown", ("c.ramos@mxl-client.example.com",), _ours(516)),
    "mailfoundry_mailbox_full.eml": (
        "bounce_soft",
        "mailbox_full",
        ("g.kowalski@mf-appliance.example.org",),
        _ours(517),
    ),
    "mailmarshal_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("w.tanaka@marshal-client.example.net",),
        _ours(518),
    ),
    # "User (a@b) unknown." with Status 5.0.0.
    "mcafee_user_unknown.eml": ("bounce_hard", "user_unknown", ("r.sato@mcafee-client.example.com",), _ours(519)),
    "messagelabs_no_such_user.eml": (
        "bounce_hard",
        "user_unknown",
        ("d.ncube@cloudfilter-client.example.net",),
        _ours(520),
    ),
    "messaging_server_illegal_alias.eml": (
        "bounce_hard",
        "user_unknown",
        ("e.moreau@sun-style.example.org",),
        _ours(521),
    ),
    # A group that takes mail only from its organisation: the address lives, our authentication is fine.
    "office365_group_restricted.eml": (
        "bounce_soft",
        "filtered",
        ("sales-team@tenant72-client.example.com",),
        _ours(522),
    ),
    "outlook_dsn_domain_not_reachable.eml": (
        "bounce_hard",
        "host_unknown",
        ("b.osei@unreachable-corp.example",),
        _ours(523),
    ),
    "powermta_bad_mailbox.eml": ("bounce_hard", "user_unknown", ("n.adeyemi@pmta-client.example.org",), _ours(524)),
    "receiving_ses_mailbox_not_exist.eml": (
        "bounce_hard",
        "user_unknown",
        ("v.petrov@ses-inbound.example.com",),
        _ours(525),
    ),
    "sendgrid_host_unknown.eml": ("bounce_hard", "host_unknown", ("k.mwangi@missing-zone.example",), _ours(526)),
    "surfcontrol_rejected.eml": ("bounce_hard", "user_unknown", ("i.fraser@surf-client.example.com",), _ours(527)),
    "v5sendmail_host_unknown.eml": ("bounce_hard", "host_unknown", ("u.svensson@nowhere-dept.example",), _ours(528)),
    "verizon_sms_gateway_no_such_user.eml": (
        "bounce_hard",
        "user_unknown",
        ("5550100179@sms-gw.example.com",),
        _ours(529),
    ),
    "x1_mail_deliver_system.eml": ("bounce_hard", "user_unknown", ("a.ueda@x1-host.example.net",), _ours(530)),
    "x2_unable_to_deliver.eml": ("bounce_soft", "mailbox_full", ("q.lambert@x2-host.example.org",), _ours(531)),
    "x3_smtp_rcpt_rejected.eml": ("bounce_hard", "user_unknown", ("m.keller@x3-client.example.com",), _ours(532)),
    # qmail-ldap's "Mailaddress is administratively disabled. (#5.2.1)".
    "x4_qmail_like_ldap_disabled.eml": ("bounce_soft", "suspended", ("z.horvat@x4-host.example.net",), _ours(533)),
    "x5_notification_recipients.eml": ("bounce_soft", "mailbox_full", ("h.costa@x5-client.example.org",), _ours(534)),
    "x6_error_sending_mail.eml": ("bounce_hard", "user_unknown", ("j.banda@x6-host.example.com",), _ours(535)),
    "yahoo_remote_host_said.eml": ("bounce_soft", "mailbox_full", ("f.achebe@yahoo-client.example.net",), _ours(536)),
    # "550 5.7.1 No such user!": the words beat the bare 5.7.1.
    "yandex_rcpt_rejected.eml": ("bounce_hard", "user_unknown", ("d.volkov@yandex-client.example.org",), _ours(537)),
    "mfilter_failure_notice.eml": ("bounce_hard", "user_unknown", ("k.fujita@mfilter-host.example.jp",), _ours(538)),
    "opensmtpd_envelope_expired.eml": ("bounce_soft", "expired", ("e.quist@slow-relay.example.net",), _ours(539)),
}

#: Every Sisimai 4.25 Lhost module and the corpus file (path in corpus/) of its shape.
FORMATS: dict[str, str] = {
    "Activehunter": "mta/activehunter_user_unknown.eml",
    "Amavis": "mta/amavis_spam_rejected.eml",
    "AmazonSES": "ses_bounce.eml",
    "AmazonWorkMail": "mta/amazon_workmail_user_unknown.eml",
    "Aol": "mta/aol_host_unknown.eml",
    "ApacheJames": "mta/apache_james_bounce.eml",
    "Barracuda": "mta/barracuda_bulk_filter_blocked.eml",
    "Bigfoot": "mta/bigfoot_transcript_user_unknown.eml",
    "Biglobe": "mta/biglobe_mailbox_full.eml",
    "Courier": "mta/courier_no_such_domain.eml",
    "Domino": "domino_delivery_failure.eml",
    "EZweb": "formats/carrier_au_ezweb_account_disabled.eml",
    "EinsUndEins": "mta/einsundeins_message_too_big.eml",
    "Exchange2003": "formats/exchange2003_did_not_reach.eml",
    "Exchange2007": "mta/exchange2007_queue_expired.eml",
    "Exim": "exim_user_unknown.eml",
    "FML": "formats/fml_not_member.eml",
    "Facebook": "mta/social_network_rcp_p1.eml",
    "GMX": "mta/gmx_retry_timeout.eml",
    "GSuite": "mta/gsuite_address_not_found.eml",
    "Gmail": "gmail_old_plain.eml",
    "GoogleGroups": "formats/google_groups_no_permission.eml",
    "IMailServer": "mta/imail_server_unknown_user.eml",
    "InterScanMSS": "formats/interscan_mss_user_unknown.eml",
    "KDDI": "formats/carrier_kddi_mailbox_full.eml",
    "MXLogic": "mta/mxlogic_user_not_found.eml",
    "MailFoundry": "mta/mailfoundry_mailbox_full.eml",
    "MailMarshalSMTP": "mta/mailmarshal_user_unknown.eml",
    "MailRu": "mailru_user_not_found.eml",
    "McAfee": "mta/mcafee_user_unknown.eml",
    "MessageLabs": "mta/messagelabs_no_such_user.eml",
    "MessagingServer": "mta/messaging_server_illegal_alias.eml",
    "Notes": "formats/lotus_r5_failure_reasons.eml",
    "Office365": "mta/office365_group_restricted.eml",
    "OpenSMTPD": "mta/opensmtpd_envelope_expired.eml",
    "Outlook": "mta/outlook_dsn_domain_not_reachable.eml",
    "Postfix": "postfix_user_unknown.eml",
    "PowerMTA": "mta/powermta_bad_mailbox.eml",
    "ReceivingSES": "mta/receiving_ses_mailbox_not_exist.eml",
    "SendGrid": "mta/sendgrid_host_unknown.eml",
    "Sendmail": "sendmail_user_unknown.eml",
    "SurfControl": "mta/surfcontrol_rejected.eml",
    "V5sendmail": "mta/v5sendmail_host_unknown.eml",
    "Verizon": "mta/verizon_sms_gateway_no_such_user.eml",
    "X1": "mta/x1_mail_deliver_system.eml",
    "X2": "mta/x2_unable_to_deliver.eml",
    "X3": "mta/x3_smtp_rcpt_rejected.eml",
    "X4": "mta/x4_qmail_like_ldap_disabled.eml",
    "X5": "mta/x5_notification_recipients.eml",
    "X6": "mta/x6_error_sending_mail.eml",
    "Yahoo": "mta/yahoo_remote_host_said.eml",
    "Yandex": "mta/yandex_rcpt_rejected.eml",
    "Zoho": "zoho_invalid_address.eml",
    "mFILTER": "mta/mfilter_failure_notice.eml",
    "qmail": "qmail_no_mailbox.eml",
}


def test_every_mta_file_has_an_expectation() -> None:
    assert sorted(p.name for p in MTA.glob("*.eml")) == sorted(EXPECTED)


def test_every_format_names_a_corpus_file() -> None:
    for module, name in FORMATS.items():
        assert (CORPUS / name).is_file(), f"{module}: {name} is not in the corpus"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mta_corpus(name: str) -> None:
    category, reason, failed, in_reply_to = EXPECTED[name]
    c = classify_message((MTA / name).read_bytes())
    assert_verdict(c, category, reason, failed, in_reply_to)
    if c.category in BOUNCES:
        assert c.confidence >= 0.7


@pytest.mark.parametrize("name", sorted(FORMATS.values()))
def test_every_format_is_read_as_a_bounce(name: str) -> None:
    c = classify_message((CORPUS / name).read_bytes())
    assert c.category in BOUNCES | {ReplyCategory.DELAYED}, c.reasons
    assert c.failed_recipients, c.reasons


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_prefixes_never_raise(name: str) -> None:
    assert_prefixes_never_raise((MTA / name).read_bytes())


# -- the wordings of Sisimai's reason lists (Sisimai/Reason/*.pm) that servers commonly send ----------------
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("552 5.2.2 The number of messages in recipient's mailbox exceeded the local limit.", "mailbox_full"),
        ("552 account is exceeding their quota", "mailbox_full"),
        ("552 mailbox has exceeded its disk space limit", "mailbox_full"),
        ("452 user has too many messages on the server", "mailbox_full"),
        ("452 4.2.2 would be over the allowed quota", "mailbox_full"),
        ("550 5.1.1 User (a@b.example) unknown.", "user_unknown"),
        ("550 this address no longer accepts mail", "user_unknown"),
        ("550 sorry, your envelope recipient has been denied", "user_unknown"),
        ("550 recipient a@b.example was not found in LDAP", "user_unknown"),
        ("550 mail domain mentioned in email address is unknown", "host_unknown"),
        ("550 5.2.1 mailbox currently suspended", "suspended"),
        ("550 has been suspended for abuse", "suspended"),
        ("550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required", "filtered"),
        ("550 refused due to recipient preferences", "filtered"),
        ("550 because the sender isn't on the recipient's list of senders to accept mail from", "filtered"),
        ("554 this message was blocked because its content presents a potential security issue", "spam_detected"),
        ("550 an illegal attachment on your message", "policy"),
        ("550 5.6.0 improper use of 8-bit data in message header", "policy"),
        ("550 not an open relay, so get lost", "policy"),
        ("550 5.7.1 sender rejected", "policy"),
        ("553 bogus mail from", "policy"),
        ("421 too many smtp sessions for this host", "rate_limited"),
        ("421 all available ips are at maximum connection limit", "rate_limited"),
        ("451 malformed name server reply", "network_error"),
        ("554 5.4.6 mail forwarding loop for a@b.example", "system_error"),
        ("550 Envelope expired", "expired"),
        ("552 line limit exceeded", "message_too_big"),
    ],
)
def test_common_wordings(text: str, reason: str) -> None:
    from aicmo_actors.cam.classify.reasons import find_reply_code, find_status, reason_from

    assert reason_from(find_status(text), text, find_reply_code(text))[0].value == reason


def test_giving_up_on_a_host_is_no_expiry() -> None:
    """qmail says "Giving up on <ip>." after a permanent refusal too: it names no reason."""
    from aicmo_actors.cam.classify.reasons import reason_from

    assert reason_from(None, "Giving up on 192.0.2.1.", None)[0].value != "expired"


# -- compiling a rule once for its code and its trigger words (import time) ---------------------------------
def test_compile_reading_gives_the_pattern_re_compile_gives() -> None:
    import re

    from aicmo_actors.cam.classify import dsn, intent, reasons

    patterns = [p for _r, p in (*reasons.SPECIFIC_TEXT, *reasons.GENERIC_TEXT)]
    patterns += [dsn._LOWER_UNDELIVERED, intent.INTERESTED, intent.UNSUBSCRIBE, intent.MEETING]
    texts = [p.read_bytes().decode("utf-8", "replace").lower() for p in CORPUS.rglob("*.eml")]
    for pattern in patterns:
        plain = re.compile(pattern.pattern, pattern.flags)
        assert (pattern.pattern, pattern.flags, pattern.groups) == (plain.pattern, plain.flags, plain.groups)
        assert reasons.required_words(pattern) == reasons._words(
            reasons._required(reasons._sre_parser.parse(pattern.pattern, pattern.flags))
        )
        for text in texts:
            found, expected = pattern.search(text), plain.search(text)
            assert (found and found.span()) == (expected and expected.span()), pattern.pattern[:60]


def test_a_text_that_lower_casing_lengthens_is_still_read() -> None:
    """The IGNORECASE twins (`parse.AnyCase`) are compiled on first need, for such a text only."""
    from aicmo_actors.cam.classify.reasons import reason_from

    text = "550 5.1.0 <alex@outreach.example.com>: Sender address rejected: İstanbul relay says User unknown"
    assert reason_from(None, text, 550, phase="rcpt")[0].value == "policy"
    ooo = (
        "From: Ayse <ayse@prospect.example>\nTo: alex@outreach.example.com\nSubject: Ofis disinda\n"
        "Date: Mon, 16 Mar 2026 09:00:00 +0000\nAuto-Submitted: auto-replied\n"
        "Content-Type: text/plain; charset=utf-8\n\nI am out of the office until 24 March 2026. İyi günler.\n"
    ).encode()
    c = classify_message(ooo)
    assert c.category is ReplyCategory.AUTO_REPLY
    assert c.return_date is not None and (c.return_date.month, c.return_date.day) == (3, 24)
