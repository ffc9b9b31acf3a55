"""Bounces that are not RFC 3464, however they reach us (issue 21, items 3, 4 and 5).

The messages (corpus/formats/) are written from the formats' documentation, with invented
values:

- a provider's bounce from a plain no-reply sender, no Auto-Submitted header, no RFC 3464 part,
  its subject and text in Japanese, Russian or Korean, with at most a generic English line;
- bounces forwarded by a person: as a message/rfc822 attachment without RFC 3464 fields,
  inline (Gmail's "Forwarded message", Outlook's line of underscores), or as the second of
  several embedded messages;
- old and odd formats: post_master@ answering "Re: <our subject>", Exchange 5.5 to 2003,
  Lotus Notes R5, Exim 3, InterScan MSS, the Japanese carriers (au EZweb and KDDI, NTT docomo,
  SoftBank);
- a list or a filter refusing our message, the address being alive (Mailman, LISTSERV, FML,
  Google Groups, a Sieve `reject` as RFC 5429's MDN): `filtered`, soft, never hard; a post held
  for a moderator: a machine notice;
- Amazon SES's UnsubscribedRecipient: an unsubscribe; a DMARC failure report written as plain
  text: our authentication failing, as its RFC 6591 form.

Non-bounces sit beside them: a parcel service's no-reply notice, a person's reply under a
bounce-like subject, a person forwarding a colleague's message, a read receipt of a message
deleted unread. The files sit in a folder of their own so that the main corpus table
(test_corpus.py) stays whole.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicmo_actors.cam.classify import autoreply, classify_message, dsn, intent, reasons
from aicmo_actors.cam.classify.dsn import inline_forward
from aicmo_actors.cam.classify.languages import UNDELIVERED_TEXT
from aicmo_actors.cam.lead_rules import LeadView, decide_reply
from contracts.cam import LeadState, ReplyCategory
from tests.unit.classify.verdicts import BOUNCES as HARD_OR_SOFT
from tests.unit.classify.verdicts import assert_prefixes_never_raise, assert_verdict

CORPUS = Path(__file__).parent / "corpus" / "formats"
NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
BOUNCES = {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT, ReplyCategory.DELAYED}


def _ours(n: int) -> str:
    return f"<fmt.{n}.1@outreach.example.com>"


#: file -> (category, reason, failed recipients, in_reply_to: our Message-ID it carries)
EXPECTED: dict[str, tuple[str, str | None, tuple[str, ...], str | None]] = {
    # -- a no-reply sender, no Auto-Submitted, no RFC 3464, a non-English subject -------------------------
    "noreply_ja_iso2022jp_no_english.eml": ("bounce_hard", "user_unknown", ("yamada.taro@example.co.jp",), _ours(401)),
    "noreply_ru_generic_english.eml": ("bounce_soft", "mailbox_full", ("smirnov@example.ru",), _ours(402)),
    "noreply_ko_euckr_labelled_recipient.eml": (
        "bounce_hard",
        "user_unknown",
        ("lee.minho@example.co.kr",),
        _ours(403),
    ),
    # "konnte nicht zugestellt werden" from a no-reply sender, but no address, code or returned message.
    "noreply_de_parcel_notice_not_bounce.eml": ("other", None, (), None),
    # A person answering under "Re: Письмо не доставлено?" ("message not delivered?").
    "reply_ru_not_delivered_to_colleague.eml": ("other", None, (), _ours(405)),
    # -- forwarded bounces -------------------------------------------------------------------------------
    "fwd_rfc822_exim_plain_bounce.eml": ("bounce_hard", "user_unknown", ("r.hughes@pine-ops.example",), _ours(410)),
    "fwd_inline_postfix_plain_bounce.eml": (
        "bounce_hard",
        "user_unknown",
        ("procurement@harbor-logistics.example",),
        _ours(411),
    ),
    "fwd_outlook_inline_exchange_ndr.eml": (
        "bounce_hard",
        "user_unknown",
        ("mark.jensen@tidewater.example",),
        _ours(412),
    ),
    # The first embedded message is the person's own note; the report is the second.
    "fwd_second_embedded_is_report.eml": (
        "bounce_soft",
        "mailbox_full",
        ("purchasing@birch-tools.example",),
        _ours(413),
    ),
    "fwd_inline_person_not_bounce.eml": ("meeting_request", "meeting_request", (), _ours(414)),
    # -- old and odd formats -----------------------------------------------------------------------------
    "postmaster_underscore_re_subject.eml": (
        "bounce_hard",
        "user_unknown",
        ("park.jiwoo@example.co.kr",),
        _ours(420),
    ),
    "exchange2003_did_not_reach.eml": (
        "bounce_hard",
        "user_unknown",
        ("gary.lindqvist@legacy-corp.example",),
        _ours(421),
    ),
    "exchange_did_not_reach_some_or_all.eml": (
        "bounce_soft",
        "mailbox_full",
        ("h.verbeek@oldmail.example",),
        _ours(422),
    ),
    "lotus_r5_failure_reasons.eml": ("bounce_hard", "user_unknown", ("k.brandt@millwork.example",), _ours(423)),
    "exim3_unknown_local_part.eml": ("bounce_hard", "user_unknown", ("b.okafor@oldisp.example",), _ours(424)),
    "interscan_mss_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("t.nakamura@ironworks.example",),
        _ours(429),
    ),
    # -- a list, a group or a filter refuses our message: the address lives --------------------------------
    "mailman_non_member_rejected.eml": ("bounce_soft", "filtered", ("sales@lists.quarry.example",), _ours(425)),
    "mailman_held_for_moderation.eml": ("other", "delivery_held_for_moderation", (), None),
    "listserv_not_authorized.eml": ("bounce_soft", "filtered", (), _ours(427)),
    "fml_not_member.eml": ("bounce_soft", "filtered", ("staff@ml.example.jp",), _ours(428)),
    "google_groups_no_permission.eml": ("bounce_soft", "filtered", ("partners@slate-studio.example",), _ours(430)),
    "sieve_reject_mdn.eml": ("bounce_soft", "filtered", ("r.alvarez@juniper.example",), _ours(431)),
    "mdn_manual_deleted_not_bounce.eml": ("other", "delivery_read_receipt", (), _ours(432)),
    # -- provider notices ----------------------------------------------------------------------------------
    "ses_unsubscribed_recipient.eml": (
        "unsubscribe",
        "unsubscribed_recipient",
        ("m.ito@harbor-tech.example",),
        _ours(433),
    ),
    "dmarc_plain_text_failure_report.eml": (
        "bounce_soft",
        "auth_failure",
        ("cfo@receiver-mail.example",),
        _ours(434),
    ),
    # -- Japanese mobile carriers ---------------------------------------------------------------------------
    "carrier_au_ezweb_account_disabled.eml": ("bounce_soft", "suspended", ("hana-0435@ezweb.ne.jp",), _ours(435)),
    "carrier_au_ezweb_over_quota.eml": ("bounce_soft", "mailbox_full", ("kenta-0436@ezweb.ne.jp",), _ours(436)),
    "carrier_kddi_mailbox_full.eml": ("bounce_soft", "mailbox_full", ("yui-0437@au.com",), _ours(437)),
    # docomo answers "550 Unknown user" after DATA when the user's reception filter refuses us.
    "carrier_docomo_unknown_after_data.eml": (
        "bounce_soft",
        "filtered",
        ("sakura-0438@docomo.ne.jp",),
        _ours(438),
    ),
    "carrier_docomo_too_much_mail_data.eml": (
        "bounce_soft",
        "mailbox_full",
        ("riku-0439@docomo.ne.jp",),
        _ours(439),
    ),
    "carrier_softbank_japanese_user_unknown.eml": (
        "bounce_hard",
        "user_unknown",
        ("mio-0440@softbank.ne.jp",),
        _ours(440),
    ),
}


def _classify(name: str):  # type: ignore[no-untyped-def]
    return classify_message((CORPUS / name).read_bytes())


def test_every_formats_file_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_formats_corpus(name: str) -> None:
    category, reason, failed, in_reply_to = EXPECTED[name]
    c = _classify(name)
    assert_verdict(c, category, reason, failed, in_reply_to)
    if c.category in HARD_OR_SOFT:
        assert c.confidence >= 0.7


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_prefixes_never_raise(name: str) -> None:
    assert_prefixes_never_raise((CORPUS / name).read_bytes())


def _decide(name: str):  # type: ignore[no-untyped-def]
    return decide_reply(LeadView(LeadState.ACTIVE), _classify(name), NOW)


@pytest.mark.parametrize(
    "name",
    [
        "mailman_non_member_rejected.eml",
        "listserv_not_authorized.eml",
        "fml_not_member.eml",
        "google_groups_no_permission.eml",
        "sieve_reject_mdn.eml",
        "carrier_docomo_unknown_after_data.eml",
    ],
)
def test_a_list_or_filter_refusing_us_is_a_soft_bounce_of_the_lead_not_of_our_sending(name: str) -> None:
    c = _classify(name)
    assert (c.category, c.reason, c.sending_side) == (ReplyCategory.BOUNCE_SOFT, "filtered", False)
    decision = _decide(name)
    assert decision.suppress is None
    assert decision.count_soft_bounce


def test_a_post_held_for_a_moderator_changes_nothing() -> None:
    decision = _decide("mailman_held_for_moderation.eml")
    assert decision.new_state is None
    assert decision.suppress is None
    assert not decision.human_reply


def test_ses_unsubscribed_recipient_suppresses_as_an_unsubscribe() -> None:
    decision = _decide("ses_unsubscribed_recipient.eml")
    assert decision.new_state is LeadState.UNSUBSCRIBED
    assert decision.suppress is not None and decision.suppress != "complaint"


def test_a_plain_text_dmarc_report_counts_against_the_mailbox_never_the_lead() -> None:
    c = _classify("dmarc_plain_text_failure_report.eml")
    assert c.sending_side
    assert any("plain text" in r for r in c.reasons)
    decision = _decide("dmarc_plain_text_failure_report.eml")
    assert decision.suppress is None
    assert decision.new_state is None
    assert decision.sending_side


def test_forwarded_bounces_say_how_they_were_forwarded() -> None:
    assert any("forwarded inline" in r for r in _classify("fwd_inline_postfix_plain_bounce.eml").reasons)
    assert any("message/rfc822" in r for r in _classify("fwd_rfc822_exim_plain_bounce.eml").reasons)


# -- made-up messages: the edges of the rules -----------------------------------------------------------------
def _mail(sender: str, subject: str, body: str, extra: str = "") -> bytes:
    head = f"From: {sender}\nTo: alex@outreach.example.com\nMessage-ID: <m1@sender.example>\nSubject: {subject}\n"
    return (head + extra + "Content-Type: text/plain; charset=utf-8\n\n" + body).encode()


@pytest.mark.parametrize(
    ("sender", "subject", "body"),
    [
        # A no-reply newsletter: a foreign "not delivered" with nothing that names a failed recipient.
        (
            "no-reply@shop.example.jp",
            "配送できませんでした",
            "ご注文の商品を配送できませんでした。再配達をご依頼ください。",
        ),
        # A no-reply sender whose text says nothing of a failed delivery.
        ("noreply@bank.example.ru", "Выписка по счёту", "Ваша выписка готова: client@example.ru"),
        # A person's reply under a foreign bounce-like subject, naming an address.
        ("ivan@example.ru", "Re: Сообщение не доставлено", "Письмо не доставлено коллеге.\nivan.two@example.ru\n"),
        # A person whose prose holds a code and a reason's words.
        ("shop-owner@vendor.example", "Re: Quick question", "We run 550 stores; our mailbox is full of offers."),
        # An out-of-office from a no-reply address.
        ("no-reply@corp.example.de", "Abwesenheitsnotiz", "Ich bin bis 20. März nicht im Büro."),
    ],
)
def test_not_bounces(sender: str, subject: str, body: str) -> None:
    assert classify_message(_mail(sender, subject, body)).category not in BOUNCES


def test_a_no_reply_bounce_with_a_foreign_subject_and_only_a_generic_english_line() -> None:
    c = classify_message(
        _mail(
            "no-reply@mail.example.cn",
            "=?utf-8?b?" + __import__("base64").b64encode("邮件投递失败".encode()).decode() + "?=",
            "Your message could not be delivered.\n\nzhang.wei@example.cn: 550 5.1.1 user unknown\n",
        )
    )
    assert (c.category, c.reason, c.failed_recipients) == (
        ReplyCategory.BOUNCE_HARD,
        "user_unknown",
        ("zhang.wei@example.cn",),
    )


def test_a_daemon_notice_without_a_failure_code_is_not_a_bounce() -> None:
    c = classify_message(
        _mail("post_master@mail.example.co.kr", "Re: Quick question", "Your mailbox is 90% full, please tidy it up.")
    )
    assert c.category not in BOUNCES


def test_inline_forward_reads_only_a_daemon_block() -> None:
    text = "See below.\n\n---------- Forwarded message ---------\nFrom: Pat <pat@x.example>\nSubject: hi\n\nhello\n"
    assert inline_forward(text) is None
    text += (
        "\n---------- Forwarded message ---------\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example>\n"
        "Subject: Undelivered Mail Returned to Sender\n\nThis is the mail system at host mx.example.\n"
    )
    found = inline_forward(text)
    assert found is not None
    assert found.subject == "Undelivered Mail Returned to Sender"
    assert found.text.startswith("This is the mail system")


def test_a_quoted_forward_is_not_a_forward() -> None:
    body = (
        "Thanks, interested!\n\n> ---------- Forwarded message ---------\n"
        "> From: Mail Delivery System <MAILER-DAEMON@mx.example>\n> Subject: Undelivered Mail\n>\n"
        "> This is the mail system at host mx.example.\n> <a@b.example>: 550 5.1.1 User unknown\n"
    )
    assert classify_message(_mail("pat@prospect.example", "Re: Quick question", body)).category not in BOUNCES


# -- bounded work on hostile input ----------------------------------------------------------------------------
MB = 1_000_000


@pytest.mark.timeout(20)
def test_many_embedded_messages_are_searched_within_bounds() -> None:
    note = b"--b\nContent-Type: message/rfc822\n\nFrom: a@b.example\nSubject: note\n\nhello\n"
    raw = (
        b'From: pat@prospect.example\nSubject: Fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        + note * 20000
        + b"--b--\n"
    )
    assert classify_message(raw).category not in BOUNCES


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "unit",
    [
        "---------- Forwarded message ---------\n",
        "---------- Forwarded message ---------\nFrom: MAILER-DAEMON@mx.example\n",
        "________________________________\nFrom: postmaster@x.example\nSubject: Undeliverable\n\n",
        "宛先: a@b.example\n",
        "Disposition: automatic-action/MDN-sent-automatically; deleted\n",
    ],
)
def test_the_new_readers_take_hostile_text_in_linear_time(unit: str) -> None:
    body = unit * (MB // len(unit.encode()))
    for sender in ("pat@prospect.example", "no-reply@mail.example.jp", "MAILER-DAEMON@mx.example"):
        c = classify_message(_mail(sender, "メール配信エラー", body))
        assert c.category in set(ReplyCategory)


# -- matching in lower case (speed) must find what IGNORECASE finds -------------------------------------------
def _capitals(pattern: str) -> list[str]:
    return [c for c in re.sub(r"\\.", "", pattern) if c != c.lower()]


def test_the_patterns_matched_in_lower_case_are_written_in_lower_case() -> None:
    patterns = [p for _r, p in (*reasons.SPECIFIC_TEXT, *reasons.GENERIC_TEXT)]
    patterns += [p for _n, p in dsn.BODY_MARKERS] + [dsn.WEAK_BODY, UNDELIVERED_TEXT]
    patterns += [reasons.SENDER_TEXT, reasons.PHASE_WORDS, autoreply.BODY, dsn.DELAYED_TEXT, dsn.PERMANENT_TEXT]
    patterns += [p for _k, p in autoreply.DATE_TOKENS]
    patterns += [intent.INTERESTED, intent.NOT_INTERESTED, intent.MEETING, intent.REFERRAL, intent.PRICING]
    patterns += [intent.LATER, intent.QUESTION_WORDS, intent.UNSUBSCRIBE]
    for pattern in patterns:
        assert not _capitals(pattern.pattern), pattern.pattern[:80]


@pytest.mark.parametrize(
    "text",
    [
        "550 5.1.1 <A@B.example>: Recipient address rejected: User Unknown in virtual mailbox table",
        "THIS IS THE MAIL SYSTEM AT HOST MX.EXAMPLE. Mailbox FULL",
        "İstanbul: DOMAIN NOT FOUND, Пользователь НЕ НАЙДЕН",  # noqa: RUF001 (İ lower-cases to two characters)
        "Delivery to the following recipient failed permanently: 5.2.1 account DISABLED",
        "Your message did not reach some or all of the intended recipients. ÜBERSCHRITTEN",
    ],
)
def test_lower_case_matching_finds_what_ignorecase_finds(text: str) -> None:
    for rules in (reasons.SPECIFIC_TEXT, reasons.GENERIC_TEXT):
        assert reasons._first_match(rules, text, frozenset()) == _first_match_ignoring_case(rules, text)
    markers = dsn._body_markers_ignoring_case()
    expected = next(((n, m.group(0)) for n, p in markers if (m := p.search(text))), None)
    assert dsn.body_marker(text) == expected


def _first_match_ignoring_case(rules, text):  # type: ignore[no-untyped-def]
    """`reasons._first_match` the plain way: IGNORECASE patterns on the text as it is."""
    bare = None
    for reason, pattern in reasons._ignorecase(rules):
        for match in pattern.finditer(text):
            words = match.group(0).strip()
            if not reasons.STATUS.fullmatch(words):
                return (reason, words), bare
            bare = bare or (reason, words)
    return None, bare


def test_every_corpus_text_gets_the_reason_ignoring_case_gives() -> None:
    for path in (Path(__file__).parent / "corpus").rglob("*.eml"):
        text = " ".join(path.read_bytes().decode("utf-8", "replace").split())
        for rules in (reasons.SPECIFIC_TEXT, reasons.GENERIC_TEXT):
            assert reasons._first_match(rules, text, frozenset()) == _first_match_ignoring_case(rules, text), path


def test_every_rule_has_words_that_each_of_its_matches_holds() -> None:
    texts = [
        p.read_bytes().decode("utf-8", "replace").lower() for p in (Path(__file__).parent / "corpus").rglob("*.eml")
    ]
    for rules in (reasons.SPECIFIC_TEXT, reasons.GENERIC_TEXT):
        for (reason, pattern), needed in zip(rules, reasons._TRIGGERS[id(rules)], strict=True):
            assert needed, f"{reason.value}: no words found, the rule would always be tried"
            for text in texts:
                for match in pattern.finditer(text):
                    assert any(word in match.group(0) for word in needed), (reason.value, match.group(0))


def test_a_reply_is_searched_for_an_intent_only_when_it_holds_the_words_every_match_holds() -> None:
    texts = [
        " ".join(p.read_bytes().decode("ascii", "replace").split())
        for p in (Path(__file__).parent / "corpus").rglob("*.eml")
    ]
    texts += ["Yes, I'd be INTERESTED. Can you send PRICING? Let's TALK next week, or ask my colleague Ann."]
    for text in texts:
        probe = intent._probe(text)
        for key in intent._NEEDED:
            pattern = next(p for p in vars(intent).values() if isinstance(p, re.Pattern) and id(p) == key)
            if pattern.search(text):
                assert not intent._absent(pattern, probe), (pattern.pattern[:40], text[:80])
