"""The pieces under the classifier: parsing, body text, quote stripping, return dates,
bounce reasons, and the auto-reply / intent rules on small synthetic messages."""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage

import pytest

from aicmo_actors.cam.classify import classify_message, strip_quoted
from aicmo_actors.cam.classify.autoreply import return_date
from aicmo_actors.cam.classify.parse import body_text, header, parse_message
from aicmo_actors.cam.classify.reasons import find_reply_code, find_status, reason_from
from contracts.cam import BounceReason, ReplyCategory


def reply(body: str, *, subject: str = "Re: Quick question", headers: str = "") -> bytes:
    """A person's reply to one of our messages, as raw bytes."""
    head = (
        "From: Pat <pat@prospect.example>\nTo: alex@outreach.example.com\n"
        f"Subject: {subject}\nDate: Wed, 11 Mar 2026 09:00:00 +0000\n"
        "Message-ID: <r1@prospect.example>\nIn-Reply-To: <q.1.1@outreach.example.com>\n"
        f"{headers}Content-Type: text/plain; charset=utf-8\n\n"
    )
    return (head + body).encode("utf-8")


# -- parse_message ---------------------------------------------------------------------------------
LF = b"From: a@b.example\nSubject: Hello\nContent-Type: text/plain\n\nline one\nline two\n"


@pytest.mark.parametrize("raw", [LF, LF.replace(b"\n", b"\r\n"), LF.replace(b"\n", b"\r")])
def test_line_ends_are_normalised(raw: bytes) -> None:
    msg = parse_message(raw)
    assert isinstance(msg, EmailMessage)
    assert header(msg, "Subject") == "Hello"
    assert body_text(raw) == "line one\nline two\n"


def test_8bit_headers_and_encoded_words_are_decoded() -> None:
    msg = parse_message(b"Subject: R\xe9ponse automatique\nFrom: =?utf-8?q?J=C3=A9r=C3=B4me?= <j@x.example>\n\nx")
    assert header(msg, "Subject") == "Réponse automatique"
    assert header(msg, "From") == "Jérôme <j@x.example>"
    assert header(msg, "X-Missing") == ""


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe",
        b"Content-Type: multipart/mixed\n\nno boundary",
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nunterminated',
        b'From: "broken <a@b\nTo: ,,,@@@\nContent-Type: text/plain; charset="no-such-charset"\n\n\xff\xfe',
        b"Content-Type: message/rfc822\n\n" * 50,
    ],
)
def test_parse_message_and_body_text_never_raise(raw: bytes) -> None:
    assert isinstance(parse_message(raw), EmailMessage)
    assert isinstance(body_text(raw), str)


# -- body_text -------------------------------------------------------------------------------------
def test_plain_text_is_preferred_to_html() -> None:
    raw = (
        b'Content-Type: multipart/alternative; boundary="a"\n\n--a\n'
        b"Content-Type: text/plain; charset=utf-8\n\nplain words\n"
        b"--a\nContent-Type: text/html; charset=utf-8\n\n<p>html words</p>\n--a--\n"
    )
    assert body_text(raw).strip() == "plain words"


def test_html_is_made_text_without_scripts_and_with_quotes_marked() -> None:
    raw = (
        b"Content-Type: text/html; charset=utf-8\n\n<html><head><style>p{}</style><title>t</title></head><body>"
        b"<p>Hello <b>there</b> &amp; welcome</p><script>x()</script><div>second<br>line</div>"
        b"<blockquote>quoted pitch</blockquote></body></html>"
    )
    assert body_text(raw) == "Hello there & welcome\n\nsecond\nline\n\n> quoted pitch"


@pytest.mark.parametrize(
    ("content_type", "payload", "expected"),
    [
        ("text/plain", "Tr\xe8s int\xe9ressant".encode("latin-1"), "Très intéressant"),  # 8-bit, no charset
        ("text/plain; charset=utf-8", "Tr\xe8s".encode("latin-1"), "Très"),  # wrong declared charset
        ("text/plain; charset=x-no-such", "caf\xe9".encode(), "café"),  # unknown charset
        ("text/plain; charset=windows-1252", b"\x93quoted\x94", "\u201cquoted\u201d"),
        ("text/plain; charset=koi8-r", "привет".encode("koi8-r"), "привет"),
    ],
)
def test_body_text_decodes_with_the_declared_charset_then_falls_back(
    content_type: str, payload: bytes, expected: str
) -> None:
    raw = f"Content-Type: {content_type}\nContent-Transfer-Encoding: 8bit\n\n".encode() + payload
    assert body_text(raw) == expected


def test_body_text_decodes_transfer_encodings() -> None:
    assert (
        body_text(b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nR3LDvMOfZQ==\n")
        == "Grüße"
    )
    assert (
        body_text(
            b"Content-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe=\n!"
        )
        == "Grüße!"
    )


def test_attachments_and_forwarded_messages_are_not_the_body() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="m"\n\n--m\nContent-Type: text/plain\n\nmy words\n'
        b'--m\nContent-Type: text/plain; name="notes.txt"\n'
        b'Content-Disposition: attachment; filename="notes.txt"\n\nattached words\n'
        b"--m\nContent-Type: message/rfc822\n\nFrom: x@y.example\nSubject: fwd\n\nforwarded words\n--m--\n"
    )
    assert body_text(raw).strip() == "my words"


def test_broken_mime_gives_the_raw_body() -> None:
    assert "no boundary" in body_text(b"Content-Type: multipart/mixed\n\nno boundary, just words")


# -- strip_quoted ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Sounds good.\n\nOn Mon, Mar 9, 2026 at 10:00 AM Alex Berger <\n"
            "alex@x.example> wrote:\n\n> Hi Pat\n> unsubscribe",
            "Sounds good.",
        ),
        ("Yes please.\n\nAm 09.03.2026 um 10:00 schrieb Alex <alex@x.example>:\n> Hallo\n", "Yes please."),
        ("Gerne.\n\nAlex Berger <alex@x.example> schrieb am Mo., 9. März 2026, 10:00:\n> Hallo", "Gerne."),
        ("Oui.\n\nLe lun. 9 mars 2026 à 10:00, Alex <alex@x.example> a écrit :\n> Bonjour", "Oui."),
        ("Sí.\n\nEl lun, 9 mar 2026 a las 10:00, Alex (<alex@x.example>) escribió:\n> Hola", "Sí."),
        ("Sure.\n\nOn 9 Mar 2026, at 10:00, Alex <alex@x.example> wrote:\n\n> Hi", "Sure."),
        ("ok\n-----Original Message-----\nFrom: a\nSent: b\n", "ok"),
        ("Danke\n\n-----Ursprüngliche Nachricht-----\nVon: Alex\n", "Danke"),
        ("Merci\n\n-------- Message d'origine --------\nDe : Alex\n", "Merci"),
        (
            "Thanks\n\nFrom: Alex Berger <alex@x.example>\nSent: Monday, March 9, 2026 10:00 AM\n"
            "To: Pat\nSubject: Quick question\n\nNot interested? Unsubscribe",
            "Thanks",
        ),
        (
            "Danke\n\nVon: Alex Berger <alex@x.example>\n"
            "Gesendet: Montag, 9. März 2026 10:00\nAn: Pat\nBetreff: Frage\n\nHallo",
            "Danke",
        ),
        ("Merci\n\nDe : Alex Berger <alex@x.example>\nEnvoyé : lundi 9 mars 2026 10:00\nÀ : Pat\n\nBonjour", "Merci"),
        (
            "Gracias\n\nDe: Alex Berger <alex@x.example>\n"
            "Enviado el: lunes, 9 de marzo de 2026 10:00\nPara: Pat\n\nHola",
            "Gracias",
        ),
        ("Thanks\n\n________________________________\nFrom: Alex\nbody", "Thanks"),
        ("Sure\n-- \nFay\nCEO", "Sure"),
        ("Sure\n--\nFay", "Sure"),
        ("Let's talk.\n\nSent from my iPhone", "Let's talk."),
        ("Gerne.\n\nVon meinem iPhone gesendet", "Gerne."),
        ("Oui.\n\nEnvoyé de mon iPhone", "Oui."),
        ("Sí.\n\nEnviado desde mi iPhone", "Sí."),
        ("Ok!\n\nGet Outlook for iOS", "Ok!"),
        # Bottom and inline posting: the reply's own lines between the quotes are kept.
        (
            "On Mon, 9 Mar 2026, Alex <a@x.example> wrote:\n> Would a call help?\nYes.\n> Tuesday?\nTuesday works.",
            "Yes.\nTuesday works.",
        ),
        ("> quoted only\n> more", ""),
        # "wrote" inside a sentence is not a quote header.
        (
            "I wrote to your colleague yesterday.\nNo answer yet.",
            "I wrote to your colleague yesterday.\nNo answer yet.",
        ),
        ("", ""),
        ("line one\r\nline two\r\n> quoted", "line one\nline two"),
    ],
)
def test_strip_quoted(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


# -- return dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "sent", "expected"),
    [
        ("I'm back on 12 March.", date(2026, 3, 9), date(2026, 3, 12)),
        ("I am out of the office until Monday, 3 March 2025.", date(2025, 2, 26), date(2025, 3, 3)),
        ("Returning March 12th.", date(2026, 3, 9), date(2026, 3, 12)),
        ("Ich bin bis zum 14.03.2025 nicht im Büro.", date(2025, 3, 10), date(2025, 3, 14)),
        ("Ab dem 24.03. bin ich wieder da.", date(2026, 3, 10), date(2026, 3, 24)),
        ("Ich bin vom 3. bis 14. März im Urlaub.", date(2026, 3, 2), date(2026, 3, 14)),
        ("Je suis absent jusqu'au 14/03/2025.", date(2025, 3, 10), date(2025, 3, 14)),
        (
            "Je suis absente jusqu'au 16 mars inclus. Je serai de retour le 17 mars.",
            date(2026, 3, 9),
            date(2026, 3, 17),
        ),
        ("Estoy fuera hasta el 14 de marzo.", date(2025, 3, 1), date(2025, 3, 14)),
        ("De vacaciones del 3 al 14 de marzo.", date(2026, 3, 2), date(2026, 3, 14)),
        ("Out from 3 to 14 March.", date(2026, 3, 2), date(2026, 3, 14)),
        ("Back on 2026-03-20.", date(2026, 3, 9), date(2026, 3, 20)),
        ("I'll be back Monday.", date(2026, 3, 11), date(2026, 3, 16)),  # a Wednesday: the next Monday
        ("Back on 5 January.", date(2025, 12, 22), date(2026, 1, 5)),  # over New Year
        ("I'm away until 3/4.", date(2026, 2, 20), date(2026, 4, 3)),  # day first unless told US style
        ("Thanks for your email.", date(2026, 3, 9), None),
        ("I was away until 1 January 2020.", date(2026, 3, 9), None),  # long past: not a return date
        ("Back on 12 March.", None, None),  # no year and no Date header: no guess
    ],
)
def test_return_date(text: str, sent: date | None, expected: date | None) -> None:
    assert return_date(text, sent) == expected


def test_us_style_reads_month_first() -> None:
    assert return_date("I'm away until 3/4.", date(2026, 2, 20), us_style=True) == date(2026, 3, 4)


# -- bounce reasons -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "text", "code", "expected"),
    [
        ("5.1.1", "", None, "user_unknown"),
        ("5.2.2", "", None, "mailbox_full"),
        ("5.7.1", "", None, "policy"),
        ("4.7.0", "", None, "rate_limited"),
        ("4.4.7", "", None, "expired"),
        ("5.0.0", "", None, "undefined"),
        (None, "", 556, "not_accept"),
        (None, "", None, "undefined"),
        ("5.7.1", "550 5.7.1 <x@example.com>... User unknown", 550, "user_unknown"),  # text beats a generic code
        ("5.0.0", "554 5.7.1 Message rejected: spam content", 554, "spam_detected"),
        ("5.1.10", "556 5.1.10 Recipient address has null MX", 556, "not_accept"),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", 550, "user_unknown"),
        (None, "Mailbox unavailable (not enough free space)", None, "mailbox_full"),
        (None, "This account has been suspended", None, "suspended"),
        (None, "I'm not going to try again; this message has been in the queue too long.", None, "expired"),
        (None, "4.3.1 Insufficient system storage", 452, "system_error"),
        (None, "Message blocked", None, "blocked"),
        (None, "550 5.7.1 Email rejected per DMARC policy", 550, "auth_failure"),
        (None, "550 Sorry, no mailbox here by that name. (#5.1.1)", 550, "user_unknown"),
        (None, "554 delivery error: dd This user doesn't have a yahoo.com account", 554, "user_unknown"),
        (None, "Почтовый ящик не существует", None, "user_unknown"),
    ],
)
def test_reason_from(status: str | None, text: str, code: int | None, expected: str) -> None:
    reason, why = reason_from(status, text, code)
    assert reason is BounceReason(expected)
    assert why


def test_status_and_reply_codes_are_found_and_ips_dates_are_not() -> None:
    assert find_status("Client host [192.0.2.10] said: 550 5.1.1 <a@b>") == "5.1.1"
    assert find_status("(#5.1.1)") == "5.1.1"
    assert find_status("from 192.0.2.10 on 2.3.2026") is None
    assert find_reply_code("550-5.7.26 unauthenticated") == 550
    assert find_reply_code("Thu, 5 Mar 2026 09:00:00 from 192.0.2.10") is None


# -- auto-replies ------------------------------------------------------------------------------------
def test_weak_headers_alone_do_not_make_an_auto_reply() -> None:
    raw = reply("Sounds interesting, tell me more.", headers="X-Auto-Response-Suppress: All\nPrecedence: bulk\n")
    assert classify_message(raw).category is ReplyCategory.INTERESTED


def test_auto_submitted_no_is_a_person() -> None:
    assert (
        classify_message(reply("No thanks.", headers="Auto-Submitted: no\n")).category is ReplyCategory.NOT_INTERESTED
    )


def test_a_person_on_vacation_who_is_interested_is_interested() -> None:
    c = classify_message(reply("I'm on vacation this week but yes, I'm interested - tell me more."))
    assert c.category is ReplyCategory.INTERESTED
    assert any("partly automatic" in r for r in c.reasons)


def test_an_absence_notice_without_headers_is_an_auto_reply() -> None:
    c = classify_message(reply("I am currently out of the office with limited access to email until 16 March."))
    assert c.category is ReplyCategory.AUTO_REPLY
    assert c.reason == "ooo_text"
    assert c.return_date == date(2026, 3, 16)
    assert c.confidence < 0.95


def test_an_auto_reply_subject_alone_is_enough() -> None:
    c = classify_message(reply("Thanks for your message.", subject="Automatic reply: Quick question"))
    assert (c.category, c.reason) == (ReplyCategory.AUTO_REPLY, "ooo_subject")


# -- unsubscribe and intents ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "category"),
    [
        ("Please take me off your list.", "unsubscribe"),
        ("Don't contact me again.", "unsubscribe"),
        ("unsubscribe", "unsubscribe"),
        ("Bitte abmelden.", "unsubscribe"),
        ("Merci de me désinscrire.", "unsubscribe"),
        ("I'm not interested.", "not_interested"),
        ("Not really interested, thanks.", "not_interested"),
        ("We're not interested at this time.", "not_interested"),
        ("We already have an agency for this.", "not_interested"),
        ("Pas intéressé, merci.", "not_interested"),
        ("No me interesa.", "not_interested"),
        ("We are interested!", "interested"),
        ("No problem, sounds good - tell me more.", "interested"),
        ("Klingt interessant, gerne mehr Infos.", "interested"),
        ("Can we book a time next week?", "meeting_request"),
        ("Let's set up a call - what's your availability?", "meeting_request"),
        ("What does it cost?", "question"),
        ("Me interesa, ¿cuánto cuesta?", "question"),
        ("Reach out to Sam (sam@prospect.example), she handles partnerships.", "referral"),
        ("You should contact our CMO instead.", "referral"),
        ("No.", "not_interested"),
        ("Maybe next year.", "not_interested"),
        ("Please send pricing", "question"),
        ("Can you send me your price list?", "question"),
        ("Yes", "interested"),
        ("ok", "other"),
    ],
)
def test_intents(body: str, category: str) -> None:
    c = classify_message(reply(body))
    assert c.category is ReplyCategory(category), c.reasons


def test_not_unsubscribing_is_not_an_unsubscribe() -> None:
    assert (
        classify_message(reply("Please don't unsubscribe me, I like these.")).category is not ReplyCategory.UNSUBSCRIBE
    )


def test_a_human_who_mentions_a_failed_delivery_is_not_a_bounce() -> None:
    raw = reply("FYI your earlier email could not be delivered to our CEO, he has a new address. Happy to chat though.")
    assert classify_message(raw).category not in {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT}


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("a < b and c > d", "a < b and c > d"),
        ("<p>one</p><!-- a comment <p>hidden</p> --><p>two</p>", "one\n\ntwo"),
        ("<p>open comment</p><!-- never closed <p>gone</p>", "open comment"),
        ("<script>if (a<b) { x('</p>') }</script><p>after</p>", "after"),
        ("<STYLE>p { }</STYLE><P>Upper &amp; lower&nbsp;case</P>", "Upper & lower case"),
        ("<!doctype html><?xml version='1.0'?><![CDATA[x]]><p>text</p>", "text"),
        ("<a href='x>y' title=\"<b>\">link</a> words", "link words"),  # quoted values may hold '<' and '>'
        ("<a href='never closed>text", "<a href='never closed>text"),
        ("<p>unclosed <b tag", "unclosed <b tag"),
    ],
)
def test_html_to_text_edge_cases(html: str, expected: str) -> None:
    from aicmo_actors.cam.classify.parse import html_to_text

    assert html_to_text(html) == expected
