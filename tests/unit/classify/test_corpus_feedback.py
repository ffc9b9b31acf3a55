"""Feedback reports by type, automatic messages judged by their content, and provider JSON.

The messages (corpus/feedback/) are written from the formats' documentation: RFC 5965 ARF
and its feedback types, RFC 6591 authentication failure reports (DMARC failure reports,
RFC 7489 section 7.3), RFC 3834 auto-replies, and Amazon SES's notification contents as
SNS delivers them by mail (the "email-json" envelope and the "email" body with its footer).
They sit in a folder of their own so the main corpus table (test_corpus.py) stays whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.lead_rules import LeadView, decide_reply
from contracts.cam import LeadState, ReplyCategory
from tests.unit.classify.test_corpus import TOKEN_A
from tests.unit.classify.verdicts import assert_verdict

CORPUS = Path(__file__).parent / "corpus" / "feedback"
NOW = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)

#: file -> (category, reason, failed recipients, in_reply_to: the Message-ID of ours it carries or quotes)
EXPECTED: dict[str, tuple[str, str | None, tuple[str, ...], str | None]] = {
    # -- ARF by Feedback-Type (RFC 5965; abuse is in the main corpus) ---------------------------------
    "arf_fraud.eml": ("complaint", "arf_fraud", ("wary.reader@bigisp.example",), "<fr.170.1@outreach.example.com>"),
    "arf_virus.eml": ("complaint", "arf_virus", ("it.desk@mailhost.example",), "<vi.171.1@outreach.example.com>"),
    "arf_other.eml": ("complaint", "arf_other", ("m.keller@regionalisp.example",), "<ot.172.1@outreach.example.com>"),
    # Opt-out: removed from the list, never counted as a complaint.
    "arf_opt_out.eml": ("unsubscribe", "arf_opt_out", ("no.thanks@mailco.example",), "<oo.173.1@outreach.example.com>"),
    "arf_unsubscribe_legacy.eml": (
        "unsubscribe",
        "arf_unsubscribe",
        ("reader@oldmail.example",),
        "<ul.174.1@outreach.example.com>",
    ),
    # RFC 6591 auth-failure: our sending's problem, a soft bounce for auth_failure (counts against the mailbox).
    "arf_auth_failure_dmarc.eml": (
        "bounce_soft",
        "auth_failure",
        ("buyer@receiver.example",),
        "<da.175.1@outreach.example.com>",
    ),
    "arf_auth_failure_spf.eml": (
        "bounce_soft",
        "auth_failure",
        ("ops@partner.example",),
        "<sf.176.2@outreach.example.com>",
    ),
    # -- automatic messages judged by what they say, not by Auto-Submitted --------------------------------
    # A helpdesk relay's bounce: Auto-Submitted: auto-replied, a From that is no mailer-daemon, a reply subject.
    "autosub_plain_bounce.eml": (
        "bounce_hard",
        "user_unknown",
        ("jane.roe@corp.example",),
        "<ab.180.1@outreach.example.com>",
    ),
    "autosub_gateway_rejected.eml": (
        "bounce_soft",
        "spam_detected",
        ("partner@lawfirm.example",),
        "<gr.181.1@outreach.example.com>",
    ),
    "autosub_unsubscribe_confirmation.eml": (
        "unsubscribe",
        "unsubscribe_confirmation",
        (),
        "<uc.182.1@outreach.example.com>",
    ),
    # A mail client's message to our List-Unsubscribe mailto: tied to us by the token (not a Message-ID),
    # here with the subject left URL-encoded ("unsubscribe%20TOKEN").
    "autosub_mail_client_unsubscribe.eml": ("unsubscribe", "unsubscribe", (), None),
    "autosub_unsubscribe_no_token.eml": ("unsubscribe", "unsubscribe", (), "<un.183.1@outreach.example.com>"),
    # -- Amazon SES notifications through SNS -----------------------------------------------------------
    "json_sns_ses_bounce_permanent.eml": (
        "bounce_hard",
        "user_unknown",
        ("jdoe@gone-corp.example",),
        "<js.190.1@outreach.example.com>",
    ),
    "json_sns_ses_bounce_mailbox_full.eml": (
        "bounce_soft",
        "mailbox_full",
        ("hoarder@bigmail.example",),
        "<js.191.1@outreach.example.com>",
    ),
    "json_sns_ses_bounce_blocked.eml": (
        "bounce_soft",
        "blocked",
        ("cfo@careful-bank.example",),
        "<js.194.1@outreach.example.com>",
    ),
    # Quoted-printable body.
    "json_sns_ses_complaint_abuse.eml": (
        "complaint",
        "ses_complaint_abuse",
        ("annoyed@webmail.example",),
        "<js.192.1@outreach.example.com>",
    ),
    # The bare SES JSON ("email" protocol) with SNS's footer: its "unsubscribe" link counts for nothing;
    # our Message-ID only in mail.headers.
    "json_ses_raw_bounce.eml": (
        "bounce_hard",
        "user_unknown",
        ("nobody@startup-that-folded.example",),
        "<js.193.1@outreach.example.com>",
    ),
    # Cut short: unreadable, a machine notice, and still not an unsubscribe.
    "json_ses_truncated.eml": ("other", "delivery_provider_json_unreadable", (), None),
}


def _classify(name: str):  # type: ignore[no-untyped-def]
    return classify_message((CORPUS / name).read_bytes())


def test_every_feedback_file_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_feedback_corpus(name: str) -> None:
    category, reason, failed, in_reply_to = EXPECTED[name]
    c = _classify(name)
    assert_verdict(c, category, reason, failed, in_reply_to)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_prefixes_never_raise(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    step = max(1, len(raw) // 12)
    for cut in [*range(0, len(raw), step), len(raw) - 1]:
        c = classify_message(raw[: max(cut, 0)])
        assert c.category in set(ReplyCategory)
        assert c.reasons


def _decide(name: str, state: LeadState = LeadState.ACTIVE):  # type: ignore[no-untyped-def]
    return decide_reply(LeadView(state), _classify(name), NOW)


@pytest.mark.parametrize("name", ["arf_auth_failure_dmarc.eml", "arf_auth_failure_spf.eml"])
def test_an_auth_failure_report_counts_against_the_mailbox_never_the_lead(name: str) -> None:
    c = _classify(name)
    assert c.sending_side
    decision = _decide(name)
    assert decision.new_state is None
    assert decision.suppress is None
    assert not decision.stop_sequence
    assert not decision.count_soft_bounce
    assert decision.sending_side


@pytest.mark.parametrize(
    "name", ["arf_opt_out.eml", "arf_unsubscribe_legacy.eml", "autosub_unsubscribe_confirmation.eml"]
)
def test_an_opt_out_suppresses_but_is_no_complaint(name: str) -> None:
    decision = _decide(name)
    assert decision.new_state is LeadState.UNSUBSCRIBED
    assert decision.suppress is not None and decision.suppress != "complaint"


@pytest.mark.parametrize(
    "name", ["arf_fraud.eml", "arf_virus.eml", "arf_other.eml", "json_sns_ses_complaint_abuse.eml"]
)
def test_a_complaint_suppresses_as_a_complaint(name: str) -> None:
    decision = _decide(name)
    assert decision.new_state is LeadState.UNSUBSCRIBED
    assert decision.suppress == "complaint"


def test_a_bounce_marked_auto_submitted_says_why_the_header_was_ignored() -> None:
    c = _classify("autosub_plain_bounce.eml")
    assert c.status == "5.1.1"
    assert any("never an auto-reply" in r for r in c.reasons)


def test_an_undecoded_mailto_subject_still_gives_our_token() -> None:
    c = _classify("autosub_mail_client_unsubscribe.eml")
    assert c.unsubscribe_token == TOKEN_A
    assert c.confidence >= 0.95


def test_ses_json_keeps_status_and_code() -> None:
    c = _classify("json_sns_ses_bounce_permanent.eml")
    assert (c.status, c.smtp_code) == ("5.1.1", 550)
    c = _classify("json_sns_ses_bounce_mailbox_full.eml")
    assert (c.status, c.smtp_code, c.sending_side) == ("4.2.2", 452, False)
    assert _classify("json_sns_ses_bounce_blocked.eml").sending_side


# -- made-up messages: the edges of the rules ---------------------------------------------------------
def _mail(headers: str, body: str) -> bytes:
    head = "From: Pat <pat@prospect.example>\nTo: alex@outreach.example.com\nMessage-ID: <m1@prospect.example>\n"
    return (head + headers + "Content-Type: text/plain; charset=utf-8\n\n" + body).encode()


def test_an_out_of_office_with_auto_submitted_stays_an_auto_reply() -> None:
    c = classify_message(
        _mail(
            "Subject: Automatic reply: Quick question\nAuto-Submitted: auto-replied\n",
            "I am out of the office until 20 March. Your message could not be delivered to my colleague; "
            "I will read it when I am back.",
        )
    )
    assert c.category is ReplyCategory.AUTO_REPLY


def test_a_person_quoting_a_bounce_is_no_bounce() -> None:
    c = classify_message(
        _mail(
            "Subject: Re: Quick question\nIn-Reply-To: <q.1.1@outreach.example.com>\n",
            "Tell me more, it sounds interesting!\n\n> Your message could not be delivered: 550 5.1.1 User unknown\n",
        )
    )
    assert c.category is ReplyCategory.INTERESTED


def test_an_auto_reply_that_says_the_person_left_is_no_unsubscribe_confirmation() -> None:
    c = classify_message(
        _mail(
            "Subject: Automatic reply: Quick question\nAuto-Submitted: auto-replied\n",
            "Pat is no longer with the company. You will no longer receive replies from this address.",
        )
    )
    assert c.category is ReplyCategory.AUTO_REPLY
    assert c.reason == "left_company"


def test_a_json_reply_of_a_person_is_read_as_a_reply() -> None:
    c = classify_message(_mail("Subject: Re: Quick question\n", '{"a": 1} is what our API returns. Interested!'))
    assert c.category is ReplyCategory.INTERESTED


def test_an_sns_message_of_another_topic_is_a_machine_notice_not_an_unsubscribe() -> None:
    body = (
        '{"Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:111122223333:alarms", '
        '"Message": "CPU above 90%", "UnsubscribeURL": "https://sns.example/?Action=Unsubscribe"}\n'
        "--\nIf you wish to stop receiving notifications from this topic, please click the link to unsubscribe"
    )
    c = classify_message(_mail("Subject: AWS Notification Message\n", body))
    assert c.category is ReplyCategory.OTHER
    assert c.reason == "delivery_provider_notice"


@pytest.mark.parametrize(
    "body",
    [
        '{"notificationType": ' + "[" * 200_000,
        '{"notificationType": "Bounce", "bounce": ' + '{"a": ' * 100_000,
        '{"notificationType": "Bounce", "bounce": {"bouncedRecipients": "x", "bounceType": 5}, "mail": []}',
        '{"notificationType": "Complaint", "complaint": [], "mail": {"headers": "no", "commonHeaders": 1}}',
        '{"Type": "Notification", "TopicArn": 1, "Message": "{\\"notificationType\\": 7"}',
        '{"notificationType": "Bounce", "n": ' + "1" * 100_000 + "}",
        '{"notificationType": "Bounce", "s": "' + "a" * 1_000_000 + '"}',
        '{"notificationType": "Bounce", "bounce": {"bouncedRecipients": ['
        + ",".join(['{"emailAddress": "a@b.example", "diagnosticCode": "smtp; 550 5.1.1"}'] * 20_000)
        + "]}}",
    ],
)
def test_hostile_json_never_raises(body: str) -> None:
    c = classify_message(_mail("Subject: AWS Notification Message\n", body))
    assert c.category in set(ReplyCategory)
    assert c.category is not ReplyCategory.UNSUBSCRIBE
    assert c.reasons
    assert len(c.failed_recipients) <= 100


@pytest.mark.parametrize("separator", [" ", ": ", "%20", "+", "%20%20"])
def test_the_token_survives_how_a_client_writes_the_mailto_subject(separator: str) -> None:
    c = classify_message(_mail(f"Subject: unsubscribe{separator}{TOKEN_A}\nAuto-Submitted: auto-generated\n", ""))
    assert (c.category, c.unsubscribe_token) == (ReplyCategory.UNSUBSCRIBE, TOKEN_A)


def test_a_run_of_encoded_spaces_without_a_token_is_read_in_linear_time() -> None:
    c = classify_message(_mail("Subject: Re: Quick question\n", ("unsubscribe" + "%20" * 300 + "\n") * 3000))
    assert c.category is ReplyCategory.UNSUBSCRIBE
    assert c.unsubscribe_token is None
