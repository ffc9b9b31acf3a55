"""The SMTP transport against a real SMTP server (aiosmtpd): every outcome is named honestly."""

from __future__ import annotations

import socket
from email.message import EmailMessage

import pytest

from aicmo_actors.gateways.smtp import SmtpTransport
from tests.plugins.mail import SmtpSink

pytestmark = pytest.mark.anyio


def _message(to: str = "lead@example.com", subject: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alex <alex@outreach.example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@outreach.example.com>"
    msg.set_content("Hi there,\n.\nA line with only a dot above must survive.\n")
    return msg


def _transport(sink: SmtpSink) -> SmtpTransport:
    return SmtpTransport(sink.host, sink.port, tls="none", timeout=5)


async def test_accepted_message_arrives_whole_and_the_connection_is_reused(smtp_sink: SmtpSink) -> None:
    transport = _transport(smtp_sink)
    try:
        first = await transport.send(_message(subject="one"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
        second = await transport.send(_message(subject="two"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
    finally:
        await transport.close()
    assert (first.outcome, first.smtp_code) == ("accepted", 250)
    assert second.outcome == "accepted"
    assert transport.connections == 1
    assert [m.message["Subject"] for m in smtp_sink.messages] == ["one", "two"]
    got = smtp_sink.messages[0]
    assert got.mail_from == "alex@outreach.example.com"
    assert got.rcpt_tos == ["lead@example.com"]
    assert "\n.\n" in got.message.get_content().replace("\r\n", "\n")


async def test_permanent_rcpt_rejection_is_permanent_and_the_connection_stays_usable(smtp_sink: SmtpSink) -> None:
    smtp_sink.reply_for["gone@example.com"] = "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"
    transport = _transport(smtp_sink)
    try:
        failed = await transport.send(_message("gone@example.com"), mail_from="alex@outreach.example.com", rcpt_to=["gone@example.com"])
        ok = await transport.send(_message(subject="after"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
    finally:
        await transport.close()
    assert (failed.outcome, failed.smtp_code, failed.stage) == ("permanent", 550, "rcpt")
    assert "5.1.1" in failed.smtp_text
    assert failed.refused_recipients == ("gone@example.com",)
    assert ok.outcome == "accepted"
    assert transport.connections == 1
    assert [m.message["Subject"] for m in smtp_sink.messages] == ["after"]


async def test_temporary_rcpt_and_data_failures_are_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.reply_for["busy@example.com"] = "450 4.2.1 Mailbox busy, try again later"
    transport = _transport(smtp_sink)
    try:
        rcpt = await transport.send(_message("busy@example.com"), mail_from="alex@outreach.example.com", rcpt_to=["busy@example.com"])
        smtp_sink.handler.data_reply = "451 4.3.0 Temporary local problem"
        data = await transport.send(_message(), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
    finally:
        await transport.close()
    assert (rcpt.outcome, rcpt.smtp_code, rcpt.stage) == ("temporary", 450, "rcpt")
    assert (data.outcome, data.smtp_code, data.stage) == ("temporary", 451, "data")
    assert smtp_sink.messages == []


async def test_permanent_data_rejection_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.handler.data_reply = "554 5.7.1 Message rejected as spam"
    transport = _transport(smtp_sink)
    try:
        result = await transport.send(_message(), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code, result.stage) == ("permanent", 554, "data")


async def test_a_hangup_after_the_payload_is_unconfirmed_not_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.handler.drop_after_data = True
    transport = _transport(smtp_sink)
    try:
        result = await transport.send(_message(), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
        # The next send reconnects by itself.
        again = await transport.send(_message(subject="next"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
    finally:
        await transport.close()
    assert result.outcome == "unconfirmed"
    assert len(smtp_sink.messages) == 2  # the server did get the first one: that is why it must not be resent
    assert again.outcome == "accepted"
    assert transport.connections == 2


async def test_a_refused_connection_is_temporary() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = SmtpTransport("127.0.0.1", port, tls="none", timeout=2)
    result = await transport.send(_message(), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])
    await transport.close()
    assert (result.outcome, result.stage) == ("temporary", "connect")


async def test_a_dropped_idle_connection_is_reopened(smtp_sink: SmtpSink) -> None:
    transport = _transport(smtp_sink)
    try:
        assert (await transport.send(_message(subject="a"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])).outcome == "accepted"
        assert transport._client is not None
        transport._client.close()  # as if the server had timed the idle connection out
        assert (await transport.send(_message(subject="b"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"])).outcome == "accepted"
    finally:
        await transport.close()
    assert transport.connections == 2
    assert [m.message["Subject"] for m in smtp_sink.messages] == ["a", "b"]


def test_the_password_never_shows_in_its_repr() -> None:
    transport = SmtpTransport("smtp.example.com", 587, username="alex", password="hunter2-secret")
    assert "hunter2" not in repr(transport)
