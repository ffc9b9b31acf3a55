"""Our verdicts against Sisimai's (the reference bounce parser, Debian's libsisimai-perl 4.25) on the corpus.

Per file of the corpus and its subfolders: hard, soft or not a bounce, and for a bounce both call hard or
soft, its reason. Where we differ on purpose, KNOWN_DISAGREEMENTS (or KNOWN_REASON_DISAGREEMENTS) says why
in one line. A new difference fails, and so does an entry that no longer differs (delete it). Without
Sisimai the tests skip, except under CI=true, where they fail (`.ci/run` installs it). Tables last checked
against the 249 files of the corpus on 2026-12-05.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from aicmo_actors.cam.classify import classify_message
from contracts.cam import BounceReason, ReplyCategory
from tests.plugins.servers import server_missing

CORPUS = Path(__file__).parent / "corpus"
SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "sisimai_verdicts.pl"
#: Every message of the corpus and its subfolders, by its path inside the corpus ("feedback/arf_fraud.eml").
FILES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.eml"))

HARD, SOFT, NONE = "hard", "soft", "not a bounce"
OURS = {ReplyCategory.BOUNCE_HARD: HARD, ReplyCategory.BOUNCE_SOFT: SOFT}
#: Sisimai's softbounce field; -1 (delivered, feedback, vacation) and no record at all are not a bounce.
SISIMAI = {"0": HARD, "1": SOFT}

_B = BounceReason
#: Sisimai 4.25's reasons (`Sisimai->reason`) and the ones of ours that mean the same. None: Sisimai
#: decided no reason (onhold, undefined), so there is nothing to compare.
REASONS: dict[str, frozenset[BounceReason] | None] = {
    "userunknown": frozenset({_B.USER_UNKNOWN}),
    "hostunknown": frozenset({_B.HOST_UNKNOWN}),
    "hasmoved": frozenset({_B.HAS_MOVED}),
    "notaccept": frozenset({_B.NOT_ACCEPT}),
    "mailboxfull": frozenset({_B.MAILBOX_FULL}),
    "suspend": frozenset({_B.SUSPENDED}),
    "expired": frozenset({_B.EXPIRED}),
    "toomanyconn": frozenset({_B.RATE_LIMITED}),
    "blocked": frozenset({_B.BLOCKED}),
    "spamdetected": frozenset({_B.SPAM_DETECTED}),
    "virusdetected": frozenset({_B.SPAM_DETECTED}),
    # Sisimai files DMARC, SPF and DKIM refusals under policyviolation; we keep them apart as auth_failure.
    "policyviolation": frozenset({_B.POLICY, _B.AUTH_FAILURE}),
    "securityerror": frozenset({_B.AUTH_FAILURE}),
    "rejected": frozenset({_B.POLICY}),  # our sender address refused
    "norelaying": frozenset({_B.POLICY}),
    "contenterror": frozenset({_B.POLICY}),
    "filtered": frozenset({_B.FILTERED, _B.POLICY, _B.SPAM_DETECTED}),
    "mesgtoobig": frozenset({_B.MESSAGE_TOO_BIG}),
    "exceedlimit": frozenset({_B.MESSAGE_TOO_BIG}),
    "networkerror": frozenset({_B.NETWORK_ERROR}),
    "systemerror": frozenset({_B.SYSTEM_ERROR}),
    "systemfull": frozenset({_B.SYSTEM_ERROR}),
    "mailererror": frozenset({_B.SYSTEM_ERROR}),
    "syntaxerror": frozenset({_B.SYSTEM_ERROR}),
    "onhold": None,
    "undefined": None,
}

_DELAY = "Sisimai 4.25 counts a delay notice as a soft failure ({}); we read it as delayed, still being retried"
_JSON = (
    "Sisimai 4.25 reads SES JSON in a mail only with an X-Amz-Sns-Message-Id header, which this one lacks: "
    "no record; we read the SNS notification's JSON"
)
#: Files where hard / soft / not a bounce differs, and why.
KNOWN_DISAGREEMENTS: dict[str, str] = {
    # Delay notices: RFC 3464 Action: delayed (or the plain-text equivalent) is not a failure for us.
    "exchange_delayed_plain.eml": _DELAY.format("expired") + " (Exchange's 'Delivery delayed' text)",
    "exchange_dsn_delay_warning.eml": _DELAY.format("expired") + " (Exchange's 'Delivery Status Notification (Delay)')",
    "exim_delay_warning.eml": _DELAY.format("expired") + " (Exim's 'Warning: message ... delayed 24 hours')",
    "gmail_delayed_rate.eml": _DELAY.format("securityerror") + " (RFC 3464 Action: delayed, 4.7.28 rate limit)",
    "gmail_delivery_incomplete.eml": _DELAY.format("mailboxfull") + " (Gmail's 'Delivery incomplete' text)",
    "postfix_delayed.eml": _DELAY.format("expired") + " (RFC 3464 Action: delayed)",
    "postfix_delayed_plain.eml": _DELAY.format("mailboxfull") + " (Postfix's 'Delayed Mail' text, 4.2.2)",
    "postfix_delayed_timeout.eml": _DELAY.format("expired") + " (RFC 3464 Action: delayed)",
    "postfix_greylisted_delay.eml": _DELAY.format("expired") + " (RFC 3464 Action: delayed, a greylisting 4.2.0)",
    "sendmail_warning_delayed.eml": _DELAY.format("expired") + " (Sendmail's 'could not send message for past...')",
    "yahoo_deferred_tss04.eml": _DELAY.format("blocked") + " (RFC 3464 Action: delayed, Yahoo's TSS04 deferral)",
    "phase/words_dns_postfix_malformed_delayed.eml": _DELAY.format("networkerror") + " (Action: delayed, 4.4.3)",
    "dsn/dsn_action_delayed_will_retry.eml": _DELAY.format("mailboxfull") + " ('Action: Delayed (will retry)', 4.2.2)",
    # User unknown that Sisimai 4.25 does not recognise, so it falls back to a soft reason or to nothing.
    "lotus_notes_failure.eml": "Sisimai 4.25's Notes parser wants Subject 'Undeliverable message'; this "
    "'Delivery Failure Report' gives no record; we read 'not listed in Domino Directory' as user_unknown",
    "m365_html_only.eml": "Sisimai 4.25 calls an HTML-only Exchange NDR 'filtered' (soft); we read "
    "550 5.1.10 RecipientNotFound as user_unknown (hard), as it does for the RFC 3464 form",
    "m365_plain_undeliverable.eml": "Sisimai 4.25 calls a plain-text Exchange NDR 'filtered' (soft); we read "
    "550 5.1.10 RecipientNotFound as user_unknown (hard), as it does for the RFC 3464 form",
    "mailru_russian.eml": "Sisimai 4.25 puts it 'onhold' (undecided, so soft); we read \"the mailbox doesn't "
    'exist" (and the Russian "Почтовый ящик не существует") as user_unknown',
    "sendmail_plain.eml": "Sisimai 4.25 calls it 'filtered' 5.0.910 (soft); we read the transcript's "
    "550 ... User unknown to RCPT TO as user_unknown (hard)",
    "yahoo_user_unknown.eml": "Sisimai 4.25 calls it 'filtered' 5.0.910 (soft); we read \"554 delivery error: "
    "This user doesn't have a ... account\" as user_unknown (hard)",
    # The status against the words: each of us trusts one of them.
    "phase/words_521_status_user_unknown.eml": "Sisimai 4.25 goes by the status 5.2.1 and says 'filtered' (soft); "
    "we trust the text 'User Unknown': user_unknown (hard)",
    "phase/words_dns_postfix_try_again.eml": "Sisimai 4.25 calls 'Host or domain name not found' hostunknown (hard) "
    "whatever the status; 4.4.3 is a temporary DNS failure given up on: expired (soft)",
    # Where in the SMTP dialogue the refusal came: Sisimai 4.25 reads the words, we also read the phase.
    "phase/phase_exim_mail_from_rejected.eml": "Sisimai 4.25 calls 550 5.1.0 'Unknown address' userunknown (hard); "
    "it answered MAIL FROM, so it is about our sender address: policy (soft)",
    "phase/phase_postfix_mail_from_rejected.eml": "Sisimai 4.25 calls 550 5.1.0 'No such user' userunknown (hard); "
    "it answered MAIL FROM, so it is about our sender address: policy (soft)",
    "phase/phase_exim_sender_verify_failed.eml": "Sisimai 4.25 takes the quoted 550 5.1.1 User unknown for the "
    "lead's; it is the callout on our sender address ('Sender verify failed'): policy (soft)",
    "phase/phase_exim_user_unknown_after_data.eml": "Sisimai 4.25 calls 550 5.1.1 User unknown hard wherever it "
    "comes; after end of data the recipient was already accepted at RCPT TO: filtered (soft)",
    "phase/phase_postfix_user_unknown_after_data.eml": "Sisimai 4.25 calls 550 5.1.1 User unknown hard wherever "
    "it comes; '(in reply to end of DATA)': the recipient was accepted at RCPT TO: filtered (soft)",
    "phase/phase_sendmail_user_unknown_after_dot.eml": "Sisimai 4.25 calls 550 5.1.1 User unknown hard wherever "
    "it comes; Sendmail's transcript has it after the dot, RCPT TO accepted: filtered (soft)",
    # Notices Sisimai 4.25 files under another kind of message, or does not read at all.
    "dsn/dsn_crlf_blank_lines_folded.eml": "Sisimai 4.25 does not unfold a folded 'Final-Recipient: rfc822;' line, "
    "so it finds no recipient; we unfold it (RFC 5322 folding): 552 5.2.2 mailbox_full (soft)",
    "dsn/dsn_original_recipient_only.eml": "Sisimai 4.25 needs a Final-Recipient field; this block names the "
    "recipient only in Original-Recipient: 552 5.2.2 mailbox_full (soft)",
    "dsn/dsn_x_actual_recipient.eml": "Sisimai 4.25 finds no address in 'Final-Recipient: LOCAL; sales'; we take "
    "the X-Actual-Recipient: 550 5.1.1 user unknown (hard)",
    "dsn/dsn_forwarded_bounce.eml": "Sisimai 4.25 does not look for a delivery report inside a forwarded "
    "message/rfc822 part; we read the forwarded Postfix report: 550 5.1.1 user_unknown (hard)",
    "dsn/dsn_gateway_wrapped.eml": "Sisimai 4.25 does not look for a delivery report a gateway wrapped in a "
    "message/rfc822 part; we read the wrapped report: 554 5.7.1 blocked (soft)",
    "feedback/arf_auth_failure_dmarc.eml": "Sisimai 4.25 reads an ARF auth-failure report as feedback (no "
    "failure); its 'Delivery-Result: reject' says the message was refused: auth_failure (soft)",
    "feedback/arf_auth_failure_spf.eml": "Sisimai 4.25 reads an ARF auth-failure report as feedback (no "
    "failure); we read an SPF failure report as our authentication failing: auth_failure (soft)",
    "feedback/autosub_gateway_rejected.eml": "Sisimai 4.25 takes Auto-Submitted: auto-replied for a vacation "
    "reply; the text is a gateway's 554 5.7.1 spam rejection: spam_detected (soft)",
    "feedback/autosub_plain_bounce.eml": "Sisimai 4.25 takes Auto-Submitted: auto-replied for a vacation reply; "
    "the text is a 550 5.1.1 User unknown: user_unknown (hard)",
    "feedback/json_ses_raw_bounce.eml": _JSON + " (bounceType Permanent, NoEmail)",
    "feedback/json_sns_ses_bounce_blocked.eml": _JSON + " (Transient, General: blocked)",
    "feedback/json_sns_ses_bounce_mailbox_full.eml": _JSON + " (Transient, MailboxFull)",
    "feedback/json_sns_ses_bounce_permanent.eml": _JSON + " (Permanent, General)",
    # Non-English diagnostics: Sisimai 4.25 reads English (and a few fixed formats) only.
    "lang/it_utf8_host_unknown.eml": "Sisimai 4.25 puts it 'onhold' (soft): it reads no reason in Italian; "
    "'Dominio ... inesistente' is host_unknown (hard)",
    "lang/ja_iso2022jp_user_unknown.eml": "Sisimai 4.25 puts it 'onhold' (soft): it reads no reason in Japanese; "
    "'ユーザーは存在しません' (user does not exist): user_unknown (hard)",
    "lang/ko_euckr_user_unknown.eml": "Sisimai 4.25 puts it 'onhold' (soft): it reads no reason in Korean; "
    "'존재하지 않는 사용자' (user does not exist): user_unknown (hard)",
    "lang/nl_utf8_user_unknown.eml": "Sisimai 4.25 puts it 'onhold' (soft): it reads no reason in Dutch; "
    "'Gebruiker onbekend' (user unknown): user_unknown (hard)",
    "lang/ru_cp1251_undeclared_host_unknown.eml": "Sisimai 4.25 puts it 'onhold' (soft): it reads no reason in "
    "Russian; 'Домен ... не найден' (domain not found): host_unknown (hard)",
    "lang/ru_koi8r_user_unknown.eml": "Sisimai 4.25 puts it 'onhold' (soft): it reads no reason in Russian; "
    "'Пользователь не найден' (user not found): user_unknown (hard)",
    "lang/zh_big5_noreply_user_unknown.eml": "Sisimai 4.25 puts it 'onhold' (soft): it reads no reason in Chinese; "
    "'收件者不存在' (recipient does not exist): user_unknown (hard)",
    "lang/ja_sjis_labelled_latin1_user_unknown.eml": "Sisimai 4.25 reads the Shift_JIS body as its label says "
    "(Latin-1) and puts it 'onhold'; read as Shift_JIS it says 'ユーザーは存在しません': user_unknown (hard)",
    "lang/ja_eucjp_html_meta_charset.eml": "Sisimai 4.25 finds no recipient in an HTML-only report; its <meta> "
    "names EUC-JP, and '宛先不明' (addressee unknown) is user_unknown (hard)",
    # Bounces from a plain no-reply sender in the language of the provider (issue 21, item 4).
    "formats/noreply_ja_iso2022jp_no_english.eml": "Sisimai 4.25 knows no format without RFC 3464 fields from a "
    "no-reply sender; '配信できませんでした' and '存在しません': user_unknown (hard)",
    "formats/noreply_ko_euckr_labelled_recipient.eml": "Sisimai 4.25 knows no format without RFC 3464 fields "
    "from a no-reply sender; '전달되지 않았습니다' and '존재하지 않는 계정': user_unknown (hard)",
    "formats/noreply_ru_generic_english.eml": "Sisimai 4.25 knows no format without RFC 3464 fields from a "
    "no-reply sender; 'не было доставлено' and 'ящик переполнен': mailbox_full (soft)",
    "formats/carrier_softbank_japanese_user_unknown.eml": "Sisimai 4.25 has no parser for a Japanese notice "
    "without RFC 3464 fields; '届けることができませんでした' and '存在しません': user_unknown (hard)",
    # Bounces forwarded by a person (issue 21, item 3).
    "formats/fwd_rfc822_exim_plain_bounce.eml": "Sisimai 4.25 does not look inside a forwarded message/rfc822 "
    "part; the forwarded Exim bounce says 550 5.1.1 User unknown (hard)",
    "formats/fwd_inline_postfix_plain_bounce.eml": "Sisimai 4.25 does not read a bounce forwarded inline; the "
    "forwarded Postfix text says 550 5.1.1 User unknown at RCPT TO (hard)",
    "formats/fwd_outlook_inline_exchange_ndr.eml": "Sisimai 4.25 does not read a bounce forwarded inline; the "
    "forwarded Exchange NDR says 550 5.1.10 RecipientNotFound (hard)",
    "formats/fwd_second_embedded_is_report.eml": "Sisimai 4.25 does not look inside forwarded message/rfc822 "
    "parts; the second one is an RFC 3464 report, 552 5.2.2 mailbox_full (soft)",
    # Formats Sisimai 4.25 does not read (issue 21, item 5).
    "formats/postmaster_underscore_re_subject.eml": "Sisimai 4.25 does not take post_master@ with a 'Re:' "
    "subject for a bounce; its only text is 550 5.1.1 User unknown (hard)",
    "formats/exchange_did_not_reach_some_or_all.eml": "Sisimai 4.25's Exchange 2003 parser reads the 'did not "
    "reach the following recipient(s)' form only; this one says 552 5.2.2: mailbox_full (soft)",
    "formats/exim3_unknown_local_part.eml": "Sisimai 4.25 calls Exim 3's 'unknown local-part ... in domain' "
    "filtered (soft); it says there is no such user: user_unknown (hard)",
    "formats/mailman_non_member_rejected.eml": "Sisimai 4.25 has no Mailman parser; 'not allowed to post to this "
    "mailing list': the list filters us, the address lives: filtered (soft)",
    "formats/listserv_not_authorized.eml": "Sisimai 4.25 has no LISTSERV parser; 'not authorized to send mail to "
    "the BUYERS list': filtered (soft)",
    "formats/fml_not_member.eml": "Sisimai 4.25's FML parser finds no recipient here; 'not a member of this "
    "mailing list': filtered (soft)",
    "formats/dmarc_plain_text_failure_report.eml": "Sisimai 4.25 reads no DMARC report written as plain text; "
    "Feedback-Type auth-failure says our mail failed DMARC: auth_failure (soft, our sending)",
    # One file per mail server format (corpus/mta/, test_corpus_mta.py).
    "mta/apache_james_bounce.eml": "Sisimai 4.25 calls James's '550 - Requested action not taken: no such user "
    "here' filtered (soft); the server that holds the mailbox says there is no such user: user_unknown (hard)",
    "mta/courier_no_such_domain.eml": "Sisimai 4.25 goes by Status 5.0.0 with no Diagnostic-Code: undefined (soft); "
    "Courier's text says 'No such domain.': host_unknown (hard)",
    "mta/mcafee_user_unknown.eml": "Sisimai 4.25's McAfee wording wants a space before 'User (...) unknown.', so it "
    "puts it 'onhold' (soft); 'User (a@b) unknown.' is user_unknown (hard)",
    "mta/messagelabs_no_such_user.eml": "Sisimai 4.25's MessageLabs reader keys on the provider's own domain; its "
    "RFC 3464 reader calls '553-No such user' under 5.0.0 filtered (soft); we read user_unknown (hard)",
    "mta/receiving_ses_mailbox_not_exist.eml": "Sisimai 4.25's ReceivingSES maps 'Mailbox does not exist' to "
    "filtered (soft); with 550 5.1.1 it is user_unknown (hard)",
    "mta/surfcontrol_rejected.eml": "Sisimai 4.25 finds SurfControl's recipient but no reason (undefined, soft); "
    "its transcript line says 550 5.1.1 User unknown (hard)",
    "mta/verizon_sms_gateway_no_such_user.eml": "Sisimai 4.25's Verizon reader keys on the carrier's own domain: "
    "no record; '550 - Requested action not taken: no such user here' for the RCPT TO is user_unknown (hard)",
}
#: Files where both call it the same kind of bounce but the reasons differ (after REASONS), and why.
KNOWN_REASON_DISAGREEMENTS: dict[str, str] = {
    "m365_dmarc_reject.eml": "Sisimai 4.25 calls 550 5.7.509 'blocked' (an IP or host refused); the text says the "
    "domain failed DMARC, which we call auth_failure",
    "proofpoint_blocked.eml": "Sisimai 4.25 calls 554 5.7.1 'Blocked by Proofpoint Reputation' securityerror; "
    "a reputation block of our IP is blocked for us",
    "formats/google_groups_no_permission.eml": "Sisimai 4.25 calls a Google Group that takes no post 'rejected' "
    "(a refused sender); the group refuses posts, our address is fine: filtered",
    "formats/carrier_docomo_unknown_after_data.eml": "Sisimai 4.25 calls docomo's 550 Unknown user after DATA "
    "'rejected' (a refused sender); it is the user's reception filter, the address lives: filtered",
    "mta/barracuda_bulk_filter_blocked.eml": "Sisimai 4.25 calls 'rejected by Barracuda Reputation' securityerror; "
    "a reputation block of our IP is blocked",
    "mta/office365_group_restricted.eml": "Sisimai 4.25 calls 5.7.133 SenderNotAuthenticatedForGroup securityerror; "
    "the group takes mail only from its own organisation, our authentication is fine: filtered",
    "mta/x4_qmail_like_ldap_disabled.eml": "Sisimai 4.25 reads this qmail-ldap bounce with its RFC 3464 reader: "
    "filtered; 'Mailaddress is administratively disabled (#5.2.1)' is suspended (its own qmail table says so)",
}


def _sisimai_installed() -> str | None:
    """Why Sisimai cannot run here, or None when it can."""
    perl = shutil.which("perl")
    if perl is None:
        return "perl is not installed"
    done = subprocess.run([perl, "-MSisimai", "-e", "1"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return "the Perl module Sisimai is missing (apt-get install -y libsisimai-perl)"
    return None


@pytest.fixture(scope="module")
def sisimai(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    """Sisimai's records per corpus file, from one run over a flat folder of links to every file.

    Flat because Sisimai 4.25 counts a subfolder as a message read and then stops that many files
    short of the end of the folder.
    """
    missing = _sisimai_installed()
    if missing:
        server_missing("Sisimai", missing)
    flat = tmp_path_factory.mktemp("sisimai-corpus")
    names = {f"{i:04d}.eml": name for i, name in enumerate(FILES)}
    for link, name in names.items():
        (flat / link).symlink_to((CORPUS / name).resolve())
    done = subprocess.run(["perl", str(SCRIPT), str(flat)], capture_output=True, text=True, check=True, timeout=300)
    records: dict[str, list[list[str]]] = defaultdict(list)
    for line in done.stdout.splitlines():
        # path, agent, reason, status, softbounce, command, address
        fields = line.split("\t")
        records[names[Path(fields[0]).name]].append(fields)
    return records


def sisimai_verdict(records: list[list[str]]) -> tuple[str, set[str]]:
    """Hard if any recipient is hard, else soft if any is soft, else not a bounce; with those recipients' reasons."""
    for verdict in (HARD, SOFT):
        reasons = {r[2] for r in records if SISIMAI.get(r[4]) == verdict}
        if reasons:
            return verdict, reasons
    return NONE, set()


def test_the_tables_name_corpus_files_only() -> None:
    for name in [*KNOWN_DISAGREEMENTS, *KNOWN_REASON_DISAGREEMENTS]:
        assert (CORPUS / name).is_file(), f"{name} is not in the corpus: delete its entry"
    assert not set(KNOWN_DISAGREEMENTS) & set(KNOWN_REASON_DISAGREEMENTS)


@pytest.mark.parametrize("name", FILES)
def test_our_verdict_is_sisimais_or_a_known_difference(name: str, sisimai: dict[str, list[list[str]]]) -> None:
    ours = classify_message((CORPUS / name).read_bytes())
    mine = OURS.get(ours.category, NONE)
    theirs, their_reasons = sisimai_verdict(sisimai.get(name, []))
    said = f"we say {mine} ({ours.category.value}, {ours.reason}); Sisimai says {theirs} {sorted(their_reasons)}"
    if name in KNOWN_DISAGREEMENTS:
        assert mine != theirs, f"{name}: we now agree ({said}): delete its KNOWN_DISAGREEMENTS entry"
        return
    assert mine == theirs, f"{name}: {said}; if we are right, add a one-line reason to KNOWN_DISAGREEMENTS"
    if mine == NONE:
        assert name not in KNOWN_REASON_DISAGREEMENTS, f"{name}: not a bounce now: delete its entry"
        return
    meanings = [REASONS.get(r, frozenset()) for r in their_reasons]
    # Sisimai deciding no reason (onhold, undefined) leaves nothing to compare.
    agree = any(m is None or ours.reason in m for m in meanings)
    said = f"we say {ours.reason}; Sisimai says {sorted(their_reasons)}"
    if name in KNOWN_REASON_DISAGREEMENTS:
        assert not agree, f"{name}: we now agree ({said}): delete its KNOWN_REASON_DISAGREEMENTS entry"
    else:
        assert agree, f"{name}: {said}; fix REASONS, or add a one-line reason to KNOWN_REASON_DISAGREEMENTS"
