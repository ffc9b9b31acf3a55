"""The classifier on a corpus written from the formats' documentation (RFC 3464, RFC 5965,
RFC 3834) and the plain-text formats real MTAs and providers emit, plus tricky replies."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from aicmo_actors.cam.classify import classify_message, judge_smtp_reply, strip_quoted
from aicmo_actors.cam.classify.parse import body_text
from contracts.cam import BounceReason, ReplyCategory

CORPUS = Path(__file__).parent / "classify_corpus"
ROOT = Path(__file__).resolve().parents[2]

#: file -> (category, reason, status, failed recipients, referenced Message-ID, return date)
EXPECTED = {
    "postfix_user_unknown.eml": ("bounce_hard", "user_unknown", "5.1.1", ("jane.doe@example.org",), "<a1b2c3.17.1@outreach.example.com>", None),
    "exim_plain.eml": ("bounce_hard", "user_unknown", None, ("bob@gone.example",), "<x9.44.2@outreach.example.com>", None),
    "gmail_over_quota.eml": ("bounce_soft", "mailbox_full", "5.2.2", ("full@example.com",), "<q1.50.1@outreach.example.com>", None),
    "m365_ndr.eml": ("bounce_hard", "user_unknown", "5.1.10", ("pat@contoso.example",), "<m1.61.1@outreach.example.com>", None),
    "blocked_spamhaus.eml": ("bounce_soft", "blocked", "5.7.1", ("kim@corp.example",), "<k1.70.1@outreach.example.com>", None),
    "delayed.eml": ("bounce_soft", "network_error", "4.4.1", ("slow@example.com",), None, None),
    "delivered.eml": ("other", "delivery_notification", None, (), None, None),
    "arf_abuse.eml": ("complaint", "arf_abuse", None, ("angry@example.net",), "<ab1.80.1@outreach.example.com>", None),
    "ooo_german.eml": ("auto_reply", "auto_submitted_header", None, (), "<de1.90.1@outreach.example.com>", date(2026, 3, 23)),
    "ooo_french.eml": ("auto_reply", "ooo_text", None, (), "<fr1.91.1@outreach.example.com>", date(2026, 3, 17)),
    "ooo_spanish_latin1_crlf.eml": ("auto_reply", "auto_submitted_header", None, (), "<es1.92.1@outreach.example.com>", date(2026, 3, 20)),
    "ooo_english_cr_only.eml": ("auto_reply", "auto_submitted_header", None, (), "<en1.93.1@outreach.example.com>", date(2026, 3, 16)),
    # A "no for now, later maybe" is a decline with low confidence, so a human can look.
    "not_now_q3.eml": ("not_interested", "not_interested", None, (), "<nq.100.1@outreach.example.com>", None),
    "remove_me.eml": ("unsubscribe", "unsubscribe", None, (), "<rm.101.1@outreach.example.com>", None),
    "referral.eml": ("referral", "referral", None, (), "<rf.102.1@outreach.example.com>", None),
    # The quoted original contains "Not interested? Unsubscribe": it must not count.
    "interested_with_quote.eml": ("interested", "interested", None, (), "<iq.103.1@outreach.example.com>", None),
    "meeting.eml": ("meeting_request", "meeting_request", None, (), "<mt.104.1@outreach.example.com>", None),
    "pricing_question.eml": ("question", "question", None, (), "<pq.105.1@outreach.example.com>", None),
    "broken_mime.eml": ("not_interested", "not_interested", None, (), "<bm.106.1@outreach.example.com>", None),
    "garbage.eml": ("other", None, None, (), None, None),
    "empty.eml": ("other", "empty", None, (), None, None),
}


def test_every_corpus_file_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    category, reason, status, failed, referenced, back = EXPECTED[name]
    c = classify_message((CORPUS / name).read_bytes())
    assert c.category == ReplyCategory(category), c.reasons
    assert c.reason == reason, c.reasons
    assert c.status == status
    assert c.failed_recipients == failed
    assert c.in_reply_to == referenced
    assert c.return_date == back
    assert c.reasons, "every decision carries its evidence"


def test_a_bounce_with_auto_submitted_is_still_a_bounce() -> None:
    c = classify_message((CORPUS / "postfix_user_unknown.eml").read_bytes())
    assert c.category is ReplyCategory.BOUNCE_HARD
    assert any("never an auto-reply" in r for r in c.reasons)


def test_a_block_is_a_problem_of_our_sending_not_of_the_address() -> None:
    c = classify_message((CORPUS / "blocked_spamhaus.eml").read_bytes())
    assert (c.category, c.sending_side) == (ReplyCategory.BOUNCE_SOFT, True)


def test_the_later_maybe_is_less_sure_than_a_plain_no() -> None:
    later = classify_message((CORPUS / "not_now_q3.eml").read_bytes())
    plain = classify_message(b"From: a@b.example\nSubject: Re: x\n\nNo thanks, not interested.\n")
    assert later.confidence < plain.confidence


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_files_never_raise(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    for cut in range(0, len(raw), max(1, len(raw) // 25)):
        assert classify_message(raw[:cut]).category in set(ReplyCategory)


@pytest.mark.parametrize(
    ("code", "text", "stage", "category", "reason", "sending_side"),
    [
        (550, "5.1.1 <x@example.com>: Recipient address rejected: User unknown in local recipient table", "rcpt", "bounce_hard", "user_unknown", False),
        (550, "5.5.0 Requested action not taken: mailbox unavailable", "rcpt", "bounce_hard", "user_unknown", False),
        (554, "5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org", "rcpt", "bounce_soft", "blocked", True),
        (550, "5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users", "data", "bounce_soft", "auth_failure", True),
        (552, "5.2.2 The email account that you tried to reach is over quota", "rcpt", "bounce_soft", "mailbox_full", False),
        (452, "4.2.2 The email account that you tried to reach is over quota", "rcpt", "bounce_soft", "mailbox_full", False),
        (421, "4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints", "mail", "bounce_soft", "rate_limited", False),
        (550, "5.7.1 Message rejected as spam by Content Filtering", "data", "bounce_soft", "spam_detected", True),
        (552, "5.3.4 Message size exceeds fixed limit", "data", "bounce_soft", "message_too_big", False),
        (550, "5.1.2 Host or domain name not found. Name service error", "rcpt", "bounce_hard", "host_unknown", False),
        (None, "[Errno 111] Connection refused", "connect", "bounce_soft", "network_error", False),
        (550, "5.4.1 Recipient address rejected: Access denied. AS(201806281)", "rcpt", "bounce_hard", "user_unknown", False),
        (554, "5.7.1 <x@example.com>: Relay access denied", "rcpt", "bounce_soft", "policy", True),
        (451, "4.3.0 Temporary local problem, try again", "rcpt", "bounce_soft", "system_error", False),
    ],
)
def test_judge_smtp_reply(code: int | None, text: str, stage: str, category: str, reason: str, sending_side: bool) -> None:
    j = judge_smtp_reply(code, text, stage=stage)
    assert (j.category.value, j.reason, j.sending_side) == (category, BounceReason(reason), sending_side)


def test_strip_quoted_keeps_only_the_reply() -> None:
    text = "Yes please.\n\nAm 09.03.2026 um 10:00 schrieb Alex <alex@x.example>:\n> Hallo\n"
    assert strip_quoted(text) == "Yes please."
    assert strip_quoted("Sure\n-- \nFay\nCEO") == "Sure"
    assert strip_quoted("ok\n-----Original Message-----\nFrom: a\n") == "ok"


def test_body_text_falls_back_to_html() -> None:
    raw = b"Content-Type: text/html; charset=utf-8\n\n<html><body><p>Hello <b>there</b></p><script>x()</script></body></html>"
    assert body_text(raw) == "Hello there"


def test_the_command_prints_one_json_line_per_file_and_survives_a_missing_one(tmp_path: Path) -> None:
    missing = tmp_path / "nope.eml"
    out = subprocess.run(
        [sys.executable, "run.py", "classify", str(CORPUS / "remove_me.eml"), str(CORPUS / "garbage.eml"), str(missing)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["category"] for line in lines] == ["unsubscribe", "other", "other"]
    assert set(lines[0]) >= {"file", "category", "reason", "confidence", "reasons", "failed_recipients", "status", "return_date", "in_reply_to"}
    assert lines[2]["reason"] == "unreadable"
    assert out.returncode == 1
