"""The classifier on a corpus of realistic messages, written from the formats' documentation
(RFC 3464 delivery reports, RFC 5965 ARF, RFC 3834 auto-replies, RFC 8098 read receipts)
and the plain-text formats real MTAs and providers send (Postfix, Exim, Sendmail, qmail,
OpenSMTPD, Exchange/Microsoft 365, Gmail, Yahoo, Outlook.com, Amazon SES, Zoho, mail.ru,
Lotus Notes/Domino, Mimecast, Barracuda, Proofpoint, AT&T), plus replies of people and
hostile input (CR-only and CRLF line ends, 8-bit Latin-1 without a charset, broken MIME,
an empty file, binary garbage).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from aicmo_actors.cam.classify import classify_message
from contracts.cam import SENDING_SIDE_REASONS, BounceReason, ReplyCategory
from tests.unit.classify.verdicts import assert_prefixes_never_raise

CORPUS = Path(__file__).parent / "corpus"
BOUNCES = {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT}
#: A 34-character token of our List-Unsubscribe mailto, as the fixtures carry it.
TOKEN_A = "AQAAAAAAABCSUBHMYf9Tqlr0_fDUSxF5AA"
TOKEN_B = "AQAAAAAAAABNoLr0RqbLiVaMvgEiSqogMg"

#: file -> (category, reason, failed recipients, enhanced status, in_reply_to (ours, found in the
#: report for bounces and complaints), return date)
EXPECTED: dict[str, tuple[str, str | None, tuple[str, ...], str | None, str | None, date | None]] = {
    # -- bounces: RFC 3464 reports and MTA plain text ---------------------------------------------
    "postfix_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("jane.doe@example.org",),
        "5.1.1",
        "<a1b2c3.17.1@outreach.example.com>",
        None,
    ),
    "postfix_host_unknown.eml": (
        "bounce_hard",
        "host_unknown",
        ("info@defunct-startup.example",),
        "5.4.4",
        "<hu.21.1@outreach.example.com>",
        None,
    ),
    # Action: delayed: still retrying, a delay notice (RFC 3464), not a bounce, whatever the reason.
    "postfix_delayed_timeout.eml": (
        "delayed",
        "network_error",
        ("slow@slow-host.example",),
        "4.4.1",
        "<dl.22.1@outreach.example.com>",
        None,
    ),
    # Action: failed with a 4.x.x status: the server gave up retrying.
    "postfix_expired.eml": (
        "bounce_soft",
        "expired",
        ("slow@slow-host.example",),
        "4.4.1",
        "<dl.22.1@outreach.example.com>",
        None,
    ),
    # multipart/report without a boundary: everything is read from the plain text.
    "postfix_broken_mime.eml": (
        "bounce_hard",
        "user_unknown",
        ("m.rossi@azienda.example.it",),
        "5.1.1",
        "<bk.23.1@outreach.example.com>",
        None,
    ),
    "exim_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("bob@gone.example",),
        "5.1.1",
        "<x9.44.2@outreach.example.com>",
        None,
    ),
    "exim_retry_timeout.eml": (
        "bounce_soft",
        "expired",
        ("ops@flaky.example",),
        None,
        "<rt.45.1@outreach.example.com>",
        None,
    ),
    # Two recipients: both reported, the category from the most severe (the dead address).
    "exim_two_recipients.eml": (
        "bounce_hard",
        "user_unknown",
        ("full@bigcorp.example", "nobody@bigcorp.example"),
        "5.1.1",
        "<tw.46.1@outreach.example.com>",
        None,
    ),
    "sendmail_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("kmiller@legacy.example",),
        "5.1.1",
        "<sm.47.1@outreach.example.com>",
        None,
    ),
    "sendmail_plain.eml": (
        "bounce_hard",
        "user_unknown",
        ("tgreen@old.legacy.example",),
        None,
        "<sp.48.1@outreach.example.com>",
        None,
    ),
    "qmail_no_mailbox.eml": (
        "bounce_hard",
        "user_unknown",
        ("sam@smallisp.example",),
        "5.1.1",
        "<qm.49.1@outreach.example.com>",
        None,
    ),
    "qmail_remote_blocked.eml": (
        "bounce_soft",
        "blocked",
        ("buyer@retail.example",),
        "5.7.1",
        "<qb.50.1@outreach.example.com>",
        None,
    ),
    # An alias expanded to a dead mailbox: the address we sent to (Original-Recipient) is reported.
    "postfix_alias_expanded.eml": (
        "bounce_hard",
        "user_unknown",
        ("sales@company.example",),
        "5.1.1",
        "<al.140.1@outreach.example.com>",
        None,
    ),
    # Exim's 24-hour warning: still retrying; it returns no copy, so no Message-ID of ours.
    # "451 4.7.1 Please try again later, too many connections": the specific words win over greylisting.
    "exim_delay_warning.eml": ("delayed", "rate_limited", ("busy@overloaded.example",), "4.7.1", None, None),
    "opensmtpd_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("theo@bsd.example",),
        "5.1.1",
        "<os.51.1@outreach.example.com>",
        None,
    ),
    # -- bounces: Exchange / Microsoft 365 / Outlook.com --------------------------------------------
    "exchange_recipnotfound.eml": (
        "bounce_hard",
        "user_unknown",
        ("lee.wong@corp.example",),
        "5.1.1",
        "<ex.52.1@outreach.example.com>",
        None,
    ),
    "m365_recipient_not_found.eml": (
        "bounce_hard",
        "user_unknown",
        ("pat@contoso.example",),
        "5.1.10",
        "<m1.61.1@outreach.example.com>",
        None,
    ),
    # Directory-based edge blocking: the address does not exist.
    "m365_access_denied_as.eml": (
        "bounce_hard",
        "user_unknown",
        ("ghost@fabrikam.example",),
        "5.4.1",
        "<as.62.1@outreach.example.com>",
        None,
    ),
    "m365_plain_undeliverable.eml": (
        "bounce_hard",
        "user_unknown",
        ("dana.fox@tailspin.example",),
        "5.1.10",
        "<mp.65.1@outreach.example.com>",
        None,
    ),
    # Only an HTML part, no delivery-status part: the recipient and the code are read from the prose.
    "m365_html_only.eml": (
        "bounce_hard",
        "user_unknown",
        ("former.ceo@adatum.example",),
        "5.1.10",
        "<mh.142.1@outreach.example.com>",
        None,
    ),
    # A delay notice says "4.4.7 Message delayed", but a delivery still being retried is never `expired`.
    "exchange_delayed_plain.eml": (
        "delayed",
        "network_error",
        ("nina.park@litware.example",),
        "4.4.7",
        "<ed.141.1@outreach.example.com>",
        None,
    ),
    "m365_dmarc_reject.eml": (
        "bounce_soft",
        "auth_failure",
        ("sales@northwind.example",),
        "5.7.509",
        "<dm.66.1@outreach.example.com>",
        None,
    ),
    "outlook_blocked_s3150.eml": (
        "bounce_soft",
        "blocked",
        ("someone@hotmail.example",),
        "5.7.1",
        "<ol.63.1@outreach.example.com>",
        None,
    ),
    "outlook_mailbox_unavailable.eml": (
        "bounce_hard",
        "user_unknown",
        ("oldname@outlook.example",),
        "5.5.0",
        "<ou.64.1@outreach.example.com>",
        None,
    ),
    # -- bounces: Gmail, Yahoo, SES, Zoho, mail.ru, Notes/Domino --------------------------------------
    "gmail_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("nosuchuser@gmail.example",),
        "5.1.1",
        "<gm.67.1@outreach.example.com>",
        None,
    ),
    "gmail_old_plain.eml": (
        "bounce_hard",
        "user_unknown",
        ("oldfriend@legacyhost.example",),
        "5.1.1",
        "<og.143.1@outreach.example.com>",
        None,
    ),
    "gmail_over_quota.eml": (
        "bounce_soft",
        "mailbox_full",
        ("full@example.com",),
        "5.2.2",
        "<q1.50.1@outreach.example.com>",
        None,
    ),
    "gmail_dmarc_unauthenticated.eml": (
        "bounce_soft",
        "auth_failure",
        ("priya@gmail.example",),
        "5.7.26",
        "<gd.68.1@outreach.example.com>",
        None,
    ),
    "gmail_blocked_spam.eml": (
        "bounce_soft",
        "spam_detected",
        ("omar@gmail.example",),
        "5.7.1",
        "<gs.69.1@outreach.example.com>",
        None,
    ),
    "gmail_delayed_rate.eml": (
        "delayed",
        "rate_limited",
        ("team@bigmail.example",),
        "4.7.28",
        "<gr.70.1@outreach.example.com>",
        None,
    ),
    "gmail_account_disabled.eml": (
        "bounce_soft",
        "suspended",
        ("inactive@gmail.example",),
        "5.2.1",
        "<ga.71.1@outreach.example.com>",
        None,
    ),
    "yahoo_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("gone.user@yahoo.example",),
        None,
        "<yh.72.1@outreach.example.com>",
        None,
    ),
    # "temporarily deferred due to unexpected volume or user complaints": a rate limit, not greylisting.
    "yahoo_deferred_tss04.eml": (
        "delayed",
        "rate_limited",
        ("reader@yahoo.example",),
        "4.7.0",
        "<yd.73.1@outreach.example.com>",
        None,
    ),
    # SES rewrites the Message-ID: the one inside the report is SES's own.
    "ses_bounce.eml": (
        "bounce_hard",
        "user_unknown",
        ("nobody@ses-target.example",),
        "5.1.1",
        "<0100018e0a1b2c3d-1111-2222-3333-444444444444-000000@email.amazonses.com>",
        None,
    ),
    "zoho_invalid_address.eml": (
        "bounce_hard",
        "user_unknown",
        ("kumar@zoho-client.example",),
        "5.1.1",
        "<zo.74.1@outreach.example.com>",
        None,
    ),
    "mailru_user_not_found.eml": (
        "bounce_hard",
        "user_unknown",
        ("ivan.petrov@mail.example.ru",),
        None,
        "<mr.75.1@outreach.example.com>",
        None,
    ),
    "mailru_russian.eml": (
        "bounce_hard",
        "user_unknown",
        ("olga@mail.example.ru",),
        None,
        "<mr.76.1@outreach.example.com>",
        None,
    ),
    "lotus_notes_failure.eml": (
        "bounce_hard",
        "user_unknown",
        ("hmueller@insurer.example",),
        None,
        "<ln.77.1@outreach.example.com>",
        None,
    ),
    "domino_delivery_failure.eml": (
        "bounce_hard",
        "user_unknown",
        ("kim.lee@bank.example",),
        "5.0.0",
        "<dd.78.1@outreach.example.com>",
        None,
    ),
    # -- bounces: filters, carriers and the reason table -----------------------------------------------
    "mimecast_antispoofing.eml": (
        "bounce_soft",
        "policy",
        ("ceo@lawfirm.example",),
        "5.0.0",
        "<mc.79.1@outreach.example.com>",
        None,
    ),
    "barracuda_blocked.eml": (
        "bounce_soft",
        "blocked",
        ("it@school.example",),
        "5.7.1",
        "<bc.80.1@outreach.example.com>",
        None,
    ),
    "proofpoint_blocked.eml": (
        "bounce_soft",
        "blocked",
        ("procurement@enterprise.example",),
        "5.7.1",
        "<pp.81.1@outreach.example.com>",
        None,
    ),
    "carrier_att_rbl.eml": (
        "bounce_soft",
        "blocked",
        ("customer@att.example",),
        "5.7.1",
        "<at.85.1@outreach.example.com>",
        None,
    ),
    "null_mx.eml": (
        "bounce_hard",
        "not_accept",
        ("anyone@parked.example",),
        "5.1.10",
        "<nm.82.1@outreach.example.com>",
        None,
    ),
    "message_too_big.eml": (
        "bounce_soft",
        "message_too_big",
        ("design@studio.example",),
        "5.3.4",
        "<tb.83.1@outreach.example.com>",
        None,
    ),
    "has_moved.eml": (
        "bounce_hard",
        "has_moved",
        ("former@agency.example",),
        "5.1.6",
        "<hm.84.1@outreach.example.com>",
        None,
    ),
    "spam_content.eml": (
        "bounce_soft",
        "spam_detected",
        ("buyer@shop.example",),
        "5.7.1",
        "<sc.86.1@outreach.example.com>",
        None,
    ),
    # The text ("User unknown") wins over the generic 5.7.1.
    "user_unknown_under_571.eml": (
        "bounce_hard",
        "user_unknown",
        ("jdoe@oddserver.example",),
        "5.7.1",
        "<uu.87.1@outreach.example.com>",
        None,
    ),
    "relay_denied.eml": (
        "bounce_soft",
        "policy",
        ("sales@misrouted.example",),
        "5.7.1",
        "<rd.88.1@outreach.example.com>",
        None,
    ),
    # -- delay notices: the server is still trying (RFC 3464 Action: delayed, or the words of one) ----------
    # Postfix's "Delayed Mail (still being retried)" without the RFC 3464 part.
    "postfix_delayed_plain.eml": (
        "delayed",
        "mailbox_full",
        ("maria@busy-mx.example",),
        "4.2.2",
        "<pd.150.1@outreach.example.com>",
        None,
    ),
    # Exchange's plain "Delivery to the following recipients has been delayed": no reason given.
    "exchange_dsn_delay_warning.eml": ("delayed", "undefined", ("rosa.diaz@fabrikam.example",), None, None, None),
    # Gmail's "Delivery incomplete ... Gmail will retry", without the RFC 3464 part.
    "gmail_delivery_incomplete.eml": (
        "delayed",
        "mailbox_full",
        ("theo@fullbox.example",),
        "4.2.2",
        "<gi.152.1@outreach.example.com>",
        None,
    ),
    # Sendmail's "Warning: could not send message for past 4 hours".
    "sendmail_warning_delayed.eml": (
        "delayed",
        "network_error",
        ("ken@partner.example",),
        None,
        "<sw.151.1@outreach.example.com>",
        None,
    ),
    # Postgrey: greylisting, a reason of its own.
    "postfix_greylisted_delay.eml": (
        "delayed",
        "greylisted",
        ("ops@careful.example",),
        "4.2.0",
        "<gy.153.1@outreach.example.com>",
        None,
    ),
    # One recipient failed, one is still being retried: judged on the failed one only.
    "mixed_failed_and_delayed.eml": (
        "bounce_hard",
        "user_unknown",
        ("gone@mixed.example",),
        "5.1.1",
        "<mx.154.1@outreach.example.com>",
        None,
    ),
    # A bounce to our per-message return path (VERP): tied to us by `delivered_to`, not by a Message-ID.
    "verp_bounce.eml": ("bounce_hard", "user_unknown", ("ceo@gone-corp.example",), "5.1.1", None, None),
    # -- delivery notices that are not bounces -----------------------------------------------------------
    "delivered_dsn.eml": ("other", "delivery_notification", (), None, "<ok.89.1@outreach.example.com>", None),
    "relayed_dsn.eml": ("other", "delivery_notification", (), None, "<rl.90.1@outreach.example.com>", None),
    "read_receipt.eml": ("other", "delivery_read_receipt", (), None, "<rr.95.1@outreach.example.com>", None),
    # -- complaints -------------------------------------------------------------------------------------
    "arf_abuse.eml": (
        "complaint",
        "arf_abuse",
        ("angry@yahoo.example",),
        None,
        "<ab1.80.1@outreach.example.com>",
        None,
    ),
    "jmrp_complaint.eml": (
        "complaint",
        "arf_abuse",
        ("complainer@outlook.example",),
        None,
        "<jm.91.1@outreach.example.com>",
        None,
    ),
    "aol_fbl_headers_only.eml": (
        "complaint",
        "arf_fraud",
        ("redacted@aol.example",),
        None,
        "<ao.92.1@outreach.example.com>",
        None,
    ),
    "hotmail_old_abuse_notice.eml": (
        "complaint",
        "fbl_complaint",
        ("user2@hotmail.example",),
        None,
        "<jo.93.1@outreach.example.com>",
        None,
    ),
    # "not-spam" feedback is a machine notice, not a complaint.
    "arf_not_spam.eml": (
        "other",
        "delivery_feedback_not_spam",
        ("fan@isp.example",),
        None,
        "<ns.94.1@outreach.example.com>",
        None,
    ),
    # -- auto-replies -------------------------------------------------------------------------------------
    "ooo_exchange_en.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<oo.100.1@outreach.example.com>",
        date(2026, 3, 16),
    ),
    # No RFC 3834 header: subject, body and X-Auto-Response-Suppress; 3/24 read as US (Date is -0500).
    "ooo_exchange_legacy.eml": (
        "auto_reply",
        "ooo_text",
        (),
        None,
        "<oo.101.1@outreach.example.com>",
        date(2026, 3, 24),
    ),
    "ooo_gmail_vacation.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<oo.102.1@outreach.example.com>",
        date(2026, 3, 20),
    ),
    "ooo_apple_icloud.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<oo.103.1@outreach.example.com>",
        date(2026, 3, 23),
    ),
    "ooo_german.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<de1.90.1@outreach.example.com>",
        date(2026, 3, 14),
    ),
    "ooo_german_weekday.eml": (
        "auto_reply",
        "ooo_text",
        (),
        None,
        "<de2.91.1@outreach.example.com>",
        date(2026, 3, 23),
    ),
    "ooo_french.eml": ("auto_reply", "ooo_text", (), None, "<fr1.92.1@outreach.example.com>", date(2026, 3, 14)),
    "ooo_spanish_latin1_crlf.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<es1.93.1@outreach.example.com>",
        date(2026, 3, 20),
    ),
    "ooo_italian.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<it1.94.1@outreach.example.com>",
        date(2026, 3, 20),
    ),
    "ooo_dutch.eml": ("auto_reply", "ooo_text", (), None, "<nl.144.1@outreach.example.com>", date(2026, 3, 20)),
    "ooo_left_company.eml": ("auto_reply", "left_company", (), None, "<lc.95.1@outreach.example.com>", None),
    # Sent 22 Dec 2025, "back on 5 January": the next year.
    "ooo_year_rollover.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<yr.96.1@outreach.example.com>",
        date(2026, 1, 5),
    ),
    "ooo_no_date_sieve.eml": ("auto_reply", "auto_submitted_header", (), None, "<nd.97.1@outreach.example.com>", None),
    "ooo_cr_only.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<cr.98.1@outreach.example.com>",
        date(2026, 3, 13),
    ),
    "autoreply_ticket.eml": ("auto_reply", "auto_submitted_header", (), None, "<tk.99.1@outreach.example.com>", None),
    # -- unsubscribe ------------------------------------------------------------------------------------
    "remove_me.eml": ("unsubscribe", "unsubscribe", (), None, "<rm.110.1@outreach.example.com>", None),
    "stop_emailing.eml": ("unsubscribe", "unsubscribe", (), None, "<st.111.1@outreach.example.com>", None),
    "unsubscribe_german.eml": ("unsubscribe", "unsubscribe", (), None, "<ug.112.1@outreach.example.com>", None),
    "unsubscribe_spanish.eml": ("unsubscribe", "unsubscribe", (), None, "<us.113.1@outreach.example.com>", None),
    "unsubscribe_subject.eml": ("unsubscribe", "unsubscribe", (), None, None, None),
    # Our List-Unsubscribe mailto: the token in the subject, or in the body's first line.
    "unsubscribe_token_subject.eml": ("unsubscribe", "unsubscribe", (), None, None, None),
    "unsubscribe_token_body.eml": ("unsubscribe", "unsubscribe", (), None, None, None),
    # The token decides, whatever the text says.
    "unsubscribe_token_with_interest.eml": (
        "unsubscribe",
        "unsubscribe",
        (),
        None,
        "<ut.155.1@outreach.example.com>",
        None,
    ),
    # -- intents ----------------------------------------------------------------------------------------
    # "Not now, ask me in Q3" is a decline, but at low confidence so a human looks (see the test below).
    "not_now_q3.eml": ("not_interested", "not_interested", (), None, "<nq.114.1@outreach.example.com>", None),
    "not_interested_plain.eml": ("not_interested", "not_interested", (), None, "<ni.115.1@outreach.example.com>", None),
    "not_interested_negation.eml": (
        "not_interested",
        "not_interested",
        (),
        None,
        "<nn.116.1@outreach.example.com>",
        None,
    ),
    "not_interested_german.eml": (
        "not_interested",
        "not_interested",
        (),
        None,
        "<ng.117.1@outreach.example.com>",
        None,
    ),
    "interested_after_decline.eml": ("interested", "interested", (), None, "<lm.127.1@outreach.example.com>", None),
    "referral.eml": ("referral", "referral", (), None, "<rf.118.1@outreach.example.com>", None),
    "referral_cc.eml": ("referral", "referral", (), None, "<rc.119.1@outreach.example.com>", None),
    "referral_left_company.eml": ("referral", "referral", (), None, "<rl.128.1@outreach.example.com>", None),
    "meeting_request.eml": ("meeting_request", "meeting_request", (), None, "<mt.120.1@outreach.example.com>", None),
    "bottom_posted.eml": ("meeting_request", "meeting_request", (), None, "<bp.125.1@outreach.example.com>", None),
    "pricing_question.eml": ("question", "question", (), None, "<pq.121.1@outreach.example.com>", None),
    "question_generic.eml": ("question", "question", (), None, "<qg.122.1@outreach.example.com>", None),
    # The quoted pitch says "Not interested? Unsubscribe" and "remove me": it must not count.
    "interested_with_quote.eml": ("interested", "interested", (), None, "<iq.123.1@outreach.example.com>", None),
    "html_only_reply.eml": ("interested", "interested", (), None, "<ho.132.1@outreach.example.com>", None),
    "interested_spanish.eml": ("interested", "interested", (), None, "<is.124.1@outreach.example.com>", None),
    "other_thanks.eml": ("other", None, (), None, "<ot.126.1@outreach.example.com>", None),
    # -- encodings, line ends, broken input ---------------------------------------------------------------
    "crlf_reply.eml": ("interested", "interested", (), None, "<cl.130.1@outreach.example.com>", None),
    "latin1_8bit_no_charset.eml": ("interested", "interested", (), None, "<l1.131.1@outreach.example.com>", None),
    "base64_utf8_reply.eml": ("interested", "interested", (), None, "<b6.133.1@outreach.example.com>", None),
    "broken_mime_no_boundary.eml": (
        "not_interested",
        "not_interested",
        (),
        None,
        "<bm.134.1@outreach.example.com>",
        None,
    ),
    "broken_mime_unterminated.eml": (
        "meeting_request",
        "meeting_request",
        (),
        None,
        "<bu.135.1@outreach.example.com>",
        None,
    ),
    "headers_only.eml": ("other", None, (), None, "<h0.136.1@outreach.example.com>", None),
    # -- from the first corpus -------------------------------------------------------------------------
    "postfix_blocked_spamhaus.eml": (
        "bounce_soft",
        "blocked",
        ("kim@corp.example",),
        "5.7.1",
        "<k1.70.1@outreach.example.com>",
        None,
    ),
    "postfix_delayed.eml": ("delayed", "network_error", ("slow@example.com",), "4.4.1", None, None),
    "postfix_delivered_success.eml": ("other", "delivery_notification", (), None, None, None),
    # Exim's plain text with `Auto-Submitted: auto-replied`: still a bounce.
    "exim_plain_auto_submitted.eml": (
        "bounce_hard",
        "user_unknown",
        ("bob@gone.example",),
        None,
        "<x9.44.2@outreach.example.com>",
        None,
    ),
    "m365_ndr_in_reply_to.eml": (
        "bounce_hard",
        "user_unknown",
        ("pat@contoso.example",),
        "5.1.10",
        "<m1.61.1@outreach.example.com>",
        None,
    ),
    "meeting_thursday.eml": ("meeting_request", "meeting_request", (), None, "<mt.104.1@outreach.example.com>", None),
    "broken_mime_multipart_mixed.eml": (
        "not_interested",
        "not_interested",
        (),
        None,
        "<bm.106.1@outreach.example.com>",
        None,
    ),
    "ooo_english_cr_only.eml": (
        "auto_reply",
        "auto_submitted_header",
        (),
        None,
        "<en1.93.1@outreach.example.com>",
        date(2026, 3, 16),
    ),
    "empty.eml": ("other", "empty", (), None, None, None),
    "garbage.eml": ("other", "unparsable", (), None, None, None),
}


def _classify(name: str):  # type: ignore[no-untyped-def]
    return classify_message((CORPUS / name).read_bytes())


def test_every_corpus_file_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 60


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    category, reason, failed, status, in_reply_to, back = EXPECTED[name]
    c = _classify(name)
    assert c.category == ReplyCategory(category), c.reasons
    assert c.reason == reason, c.reasons
    assert c.failed_recipients == failed, c.reasons
    assert c.status == status, c.reasons
    assert c.in_reply_to == in_reply_to, c.reasons
    assert c.return_date == back, c.reasons
    assert c.reasons, "every decision carries its evidence"
    assert 0.0 <= c.confidence <= 1.0


@pytest.mark.parametrize(
    "name", sorted(n for n, e in EXPECTED.items() if e[0] in {"bounce_hard", "bounce_soft", "delayed"})
)
def test_a_bounce_is_sending_side_exactly_when_its_reason_is(name: str) -> None:
    c = _classify(name)
    assert c.sending_side == (BounceReason(c.reason) in SENDING_SIDE_REASONS)
    assert c.confidence >= 0.8


@pytest.mark.parametrize(
    ("name", "sending_side"),
    [
        ("outlook_blocked_s3150.eml", True),
        ("gmail_dmarc_unauthenticated.eml", True),
        ("mimecast_antispoofing.eml", True),
        ("gmail_blocked_spam.eml", True),
        ("gmail_over_quota.eml", False),
        ("postfix_expired.eml", False),
    ],
)
def test_sending_side(name: str, sending_side: bool) -> None:
    assert _classify(name).sending_side is sending_side


def test_structured_reports_are_surer_than_text_heuristics() -> None:
    assert _classify("postfix_user_unknown.eml").confidence >= 0.95
    assert _classify("arf_abuse.eml").confidence >= 0.95
    assert _classify("ooo_german.eml").confidence >= 0.95
    assert _classify("referral.eml").confidence < 0.95
    assert _classify("ooo_exchange_legacy.eml").confidence < _classify("ooo_exchange_en.eml").confidence


def test_a_bounce_with_auto_submitted_is_still_a_bounce() -> None:
    c = _classify("postfix_user_unknown.eml")
    assert c.category is ReplyCategory.BOUNCE_HARD
    assert any("never an auto-reply" in r for r in c.reasons)


def test_referenced_ids_put_the_report_first_then_in_reply_to_then_references_newest_first() -> None:
    assert _classify("exim_user_unknown.eml").referenced_ids == ("<x9.44.2@outreach.example.com>",)
    c = _classify("ooo_gmail_vacation.eml")
    assert c.referenced_ids == ("<oo.102.1@outreach.example.com>", "<oo.102.0@outreach.example.com>")
    c = _classify("m365_recipient_not_found.eml")
    assert c.referenced_ids == ("<m1.61.1@outreach.example.com>",)


def test_identity_fields() -> None:
    c = _classify("ooo_german.eml")
    assert (c.from_address, c.subject, c.message_id) == (
        "hans@firma.example.de",
        "Abwesenheitsnotiz: Kurze Frage",
        "<abw-1@firma.example.de>",
    )
    c = _classify("ooo_french.eml")  # RFC 2047 subject decoded
    assert c.subject == "Réponse automatique : Petite question"
    c = _classify("ooo_spanish_latin1_crlf.eml")
    assert c.subject == "Respuesta automática: Pregunta rápida"


def test_smtp_codes_are_kept() -> None:
    assert _classify("postfix_user_unknown.eml").smtp_code == 550
    assert _classify("yahoo_user_unknown.eml").smtp_code == 554
    assert _classify("null_mx.eml").smtp_code == 556
    assert _classify("yahoo_deferred_tss04.eml").smtp_code == 421


def test_the_other_failed_recipient_is_named_in_the_evidence() -> None:
    c = _classify("exim_two_recipients.eml")
    assert any("full@bigcorp.example (mailbox_full)" in r for r in c.reasons)


def test_left_the_company_is_an_auto_reply_a_human_can_see() -> None:
    c = _classify("ooo_left_company.eml")
    assert c.category is ReplyCategory.AUTO_REPLY
    assert any("a human should look" in r for r in c.reasons)


def test_the_later_maybe_is_a_decline_less_sure_than_a_plain_no() -> None:
    """Documented choice: "not interested right now but ask me in Q3" is `not_interested`
    with low confidence (below 0.6), so the alerts treat it as unclear for a human."""
    later = _classify("not_now_q3.eml")
    plain = _classify("not_interested_plain.eml")
    assert later.category is plain.category is ReplyCategory.NOT_INTERESTED
    assert later.confidence < 0.6 < plain.confidence
    assert any("later contact" in r for r in later.reasons)


def test_a_decline_then_interest_is_interest_but_unsure() -> None:
    c = _classify("interested_after_decline.eml")
    assert c.category is ReplyCategory.INTERESTED
    assert c.confidence <= 0.6


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_prefixes_never_raise(name: str) -> None:
    assert_prefixes_never_raise((CORPUS / name).read_bytes())


def test_garbage_and_empty_input_are_other_with_low_confidence() -> None:
    for raw in (b"", b"   \n", bytes(range(256)) * 4, b"\xff\xfe\x00" * 100, b"\x00" * 10):
        c = classify_message(raw)
        assert c.category is ReplyCategory.OTHER
        assert c.confidence <= 0.2
        assert c.reason in {"empty", "unparsable"}
        assert c.reasons


def test_a_delay_notice_is_not_a_bounce_and_says_so() -> None:
    c = _classify("postfix_delayed_timeout.eml")
    assert c.category is ReplyCategory.DELAYED
    assert any("still retrying" in r and "not a bounce" in r for r in c.reasons)
    assert not any(r.startswith(("hard:", "soft:")) for r in c.reasons)


def test_a_delayed_recipient_next_to_a_failed_one_is_named_but_not_counted() -> None:
    c = _classify("mixed_failed_and_delayed.eml")
    assert c.failed_recipients == ("gone@mixed.example",)
    assert any("still being retried, not counted: later@mixed.example" in r for r in c.reasons)


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("unsubscribe_token_subject.eml", TOKEN_A),
        ("unsubscribe_token_body.eml", TOKEN_B),
        ("unsubscribe_token_with_interest.eml", TOKEN_A),
        ("unsubscribe_subject.eml", None),
        ("remove_me.eml", None),
    ],
)
def test_the_unsubscribe_token_is_reported(name: str, token: str | None) -> None:
    c = _classify(name)
    assert c.unsubscribe_token == token
    if token:
        assert c.confidence >= 0.95


def test_delivered_to_carries_the_return_path_of_a_verp_bounce() -> None:
    # Delivered-To, X-Original-To (another case of the same address) and To: one address.
    assert _classify("verp_bounce.eml").delivered_to == ("alex+b-k7x2m9q4w8e5r1t6@outreach.example.com",)
    assert _classify("ooo_german.eml").delivered_to
