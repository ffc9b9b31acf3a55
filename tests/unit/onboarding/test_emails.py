"""Onboarding's emails: the words, the kickoff invitation (read back with icalendar), the
headers (deterministic Message-IDs, header injection refused), the same bytes every time."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from aicmo_actors.gateways.mail_message import HeaderInjectionError
from aicmo_actors.onboarding import texts
from aicmo_actors.onboarding.emails import (
    Letterhead,
    Recipient,
    cancelled_email,
    email_key,
    reminder_email,
    welcome_email,
)
from aicmo_actors.onboarding.invite import Kickoff, kickoff_ics, uid

PROJECT = "0b5e2f3a-9c1d-4e8f-a7b6-123456789abc"
HEAD = Letterhead(mail_from="hello@agency.example", agency_name="Bright Agency", public_url="https://agency.example/")
TO = Recipient(PROJECT, "Acme Tea", "Ann Lee", "ann@acme.example", "Europe/Paris")
NOW = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
KICKOFF = datetime(2027, 3, 3, 9, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=30)
TOKEN = "ab" * 32


def parsed(message: EmailMessage) -> EmailMessage:
    result: EmailMessage = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    return result


def welcome() -> EmailMessage:
    return welcome_email(HEAD, TO, token=TOKEN, expires_at=EXPIRES, kickoff_at=KICKOFF, now=NOW)


def test_the_welcome_says_what_happens_next_with_the_link_its_expiry_and_the_kickoff() -> None:
    message = parsed(welcome())
    assert message["From"] == "Bright Agency <hello@agency.example>"
    assert message["To"] == "Ann Lee <ann@acme.example>"
    assert message["Subject"] == "Welcome to Bright Agency: a few questions to get started"
    assert message["Message-ID"] == f"<onboarding.welcome.{PROJECT}@agency.example>"
    plain = message.get_body(("plain",))
    assert plain is not None
    text = plain.get_content().replace("\r\n", "\n")
    assert text.startswith("Hello Ann Lee,")
    assert f"https://agency.example/client/intake/{TOKEN}" in text
    assert "It works until Wednesday 31 March 2027." in text
    assert "Wednesday 3 March 2027 at 10:00 (Europe/Paris)" in text
    html = message.get_body(("html",))
    assert html is not None
    assert f'<a href="https://agency.example/client/intake/{TOKEN}">' in html.get_content()


def test_the_kickoff_invitation_is_attached_as_a_calendar_request() -> None:
    message = parsed(welcome())
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"
    assert str(attachment.get_param("charset")).upper() == "UTF-8"
    assert attachment.get_filename() == "invite.ics"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = Calendar.from_ical(payload)
    assert str(calendar["method"]) == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["uid"]) == f"kickoff-{PROJECT}@agency.example"
    assert event.decoded("dtstart") == KICKOFF
    assert event.decoded("dtend") == KICKOFF + timedelta(minutes=45)
    assert event.decoded("dtstamp") == NOW
    assert str(event["summary"]) == "Kickoff: Acme Tea and Bright Agency"
    assert str(event["organizer"]) == "mailto:hello@agency.example"
    assert event["organizer"].params["CN"] == "Bright Agency"
    attendee = event["attendee"]
    assert str(attendee) == "mailto:ann@acme.example"
    assert attendee.params["RSVP"] == "TRUE"
    assert attendee.params["CN"] == "Ann Lee"


def test_the_same_welcome_is_the_same_bytes() -> None:
    assert welcome().as_bytes() == welcome().as_bytes()


def test_names_cannot_break_out_of_the_invitation() -> None:
    ics = kickoff_ics(
        Kickoff(
            project_id=PROJECT,
            company='Evil "Co"\r\nATTENDEE:mailto:x@evil.example',
            agency="Bright Agency",
            organizer="hello@agency.example",
            attendee="ann@acme.example",
            attendee_name='Ann "\r\nORGANIZER:mailto:x@evil.example',
            start=KICKOFF,
            stamp=NOW,
        )
    )
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    assert str(event["organizer"]) == "mailto:hello@agency.example"
    assert str(event["attendee"]) == "mailto:ann@acme.example"  # one attendee, ours
    assert uid(PROJECT, "hello@agency.example") == f"kickoff-{PROJECT}@agency.example"


def test_reminders_are_short_and_carry_the_link() -> None:
    first = parsed(reminder_email(HEAD, TO, number=1, token=TOKEN, expires_at=EXPIRES, now=NOW))
    second = parsed(reminder_email(HEAD, TO, number=2, token=TOKEN, expires_at=EXPIRES, now=NOW))
    assert first["Message-ID"] == f"<onboarding.reminder.1.{PROJECT}@agency.example>"
    assert second["Message-ID"] == f"<onboarding.reminder.2.{PROJECT}@agency.example>"
    assert first["Subject"] != second["Subject"]
    for message in (first, second):
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert f"https://agency.example/client/intake/{TOKEN}" in text
        assert len(text) < 600
        assert not list(message.iter_attachments())


def test_the_cancelled_email_has_no_link() -> None:
    message = parsed(cancelled_email(HEAD, TO, now=NOW))
    assert message["Message-ID"] == f"<onboarding.cancelled.{PROJECT}@agency.example>"
    body = message.get_body(("plain",))
    assert body is not None
    assert "/client/intake/" not in body.get_content()
    assert "stopped" in body.get_content()


def test_hostile_names_are_escaped_in_html_and_refused_in_headers() -> None:
    hostile = Recipient(PROJECT, "<script>alert(1)</script>", "<b>Ann</b>", "ann@acme.example", "Europe/Paris")
    message = parsed(welcome_email(HEAD, hostile, token=TOKEN, expires_at=EXPIRES, kickoff_at=KICKOFF, now=NOW))
    html = message.get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.get_content()
    with pytest.raises(HeaderInjectionError):
        reminder_email(
            Letterhead("hello@agency.example", "Agency\r\nBcc: all@evil.example", "https://agency.example"),
            TO,
            number=1,
            token=TOKEN,
            expires_at=EXPIRES,
            now=NOW,
        )
    with pytest.raises(HeaderInjectionError):
        cancelled_email(
            HEAD, Recipient(PROJECT, "Acme", "Ann\nBcc: x@evil.example", "ann@acme.example", "UTC"), now=NOW
        )


def test_keys_and_words_for_the_saga() -> None:
    assert email_key(PROJECT, "welcome") == f"{PROJECT}:onboarding:welcome"
    assert email_key(PROJECT, "reminder", 2) == f"{PROJECT}:onboarding:reminder:2"
    assert texts.waiting_for("ann@acme.example") == "intake answers from ann@acme.example"
    assert texts.intake_url("https://a.example/base/", "t0k") == "https://a.example/base/client/intake/t0k"
    assert texts.greeting(texts.Addressee("Acme", None, "Agency", "UTC")) == "Hello,"
