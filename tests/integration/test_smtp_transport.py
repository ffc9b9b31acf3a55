"""The SMTP transport against a real SMTP server (aiosmtpd): every outcome is named honestly."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
import structlog.testing

from aicmo_actors.gateways import smtp as smtp_gateway
from aicmo_actors.gateways.smtp import SmtpTransport
from tests.plugins.certs import SelfSignedCertificate
from tests.plugins.mail import SmtpSink
from tests.plugins.smtp_tls import StartServer, TlsSmtpServer

pytestmark = [
    pytest.mark.anyio,
    # aiosmtpd only counts STARTTLS as TLS when it warns about AUTH; with implicit TLS it is wrong.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]


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
        first = await transport.send(
            _message(subject="one"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
        )
        second = await transport.send(
            _message(subject="two"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
        )
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
        failed = await transport.send(
            _message("gone@example.com"), mail_from="alex@outreach.example.com", rcpt_to=["gone@example.com"]
        )
        ok = await transport.send(
            _message(subject="after"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
        )
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
        rcpt = await transport.send(
            _message("busy@example.com"), mail_from="alex@outreach.example.com", rcpt_to=["busy@example.com"]
        )
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
        again = await transport.send(
            _message(subject="next"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
        )
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
        assert (
            await transport.send(
                _message(subject="a"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
            )
        ).outcome == "accepted"
        assert transport._client is not None
        transport._client.close()  # as if the server had timed the idle connection out
        assert (
            await transport.send(
                _message(subject="b"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
            )
        ).outcome == "accepted"
    finally:
        await transport.close()
    assert transport.connections == 2
    assert [m.message["Subject"] for m in smtp_sink.messages] == ["a", "b"]


async def test_a_connection_in_steady_use_sends_no_noop_but_an_idle_one_is_checked(
    smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    noops = 0
    original = aiosmtplib.SMTP.noop

    async def counting_noop(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        nonlocal noops
        noops += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(aiosmtplib.SMTP, "noop", counting_noop)
    transport = _transport(smtp_sink)
    try:
        for n in range(3):
            result = await transport.send(
                _message(subject=f"s{n}"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
            )
            assert result.outcome == "accepted"
        assert noops == 0  # a round trip per message saved
        monkeypatch.setattr(smtp_gateway, "IDLE_CHECK_S", 0.0)  # every connection now counts as idle
        assert (
            await transport.send(
                _message(subject="late"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
            )
        ).outcome == "accepted"
    finally:
        await transport.close()
    assert noops == 1
    assert transport.connections == 1


async def test_a_kept_connection_the_server_closed_is_replaced_before_the_message_goes(smtp_sink: SmtpSink) -> None:
    """No NOOP first: the dead connection is found at MAIL, and the message goes on a new one."""
    transport = _transport(smtp_sink)
    try:
        assert (
            await transport.send(
                _message(subject="a"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
            )
        ).outcome == "accepted"
        # The server gave up on us while we were idle and says so at the next command.
        smtp_sink.handler.mail_reply = "421 4.4.2 sink.example closing connection: idle timeout"
        stale = 0
        original = smtp_gateway._stale

        def counting(*args: Any) -> bool:
            nonlocal stale
            found = original(*args)
            stale += found
            return found

        smtp_gateway._stale = counting  # type: ignore[assignment]
        try:
            result = await transport.send(
                _message(subject="b"), mail_from="alex@outreach.example.com", rcpt_to=["lead@example.com"]
            )
        finally:
            smtp_gateway._stale = original  # type: ignore[assignment]
    finally:
        await transport.close()
    assert result.outcome == "accepted", result
    assert stale == 1
    assert transport.connections == 2
    assert [m.message["Subject"] for m in smtp_sink.messages] == ["a", "b"]


def test_the_password_never_shows_in_its_repr() -> None:
    transport = SmtpTransport("smtp.example.com", 587, username="alex", password="hunter2-secret")
    assert "hunter2" not in repr(transport)


# -- TLS and AUTH: aiosmtpd with a self-signed certificate (tests/plugins/smtp_tls.py) ----------

USER, PASSWORD = "alex", "Tr0ub4dor&3-never-logged"
FROM, TO = "alex@outreach.example.com", "lead@example.com"


def _secure(server: TlsSmtpServer, tls: str, **options: Any) -> SmtpTransport:
    """A transport to `server` that trusts its self-signed certificate through `ca_file`."""
    options.setdefault("ca_file", server.certificate.cert_path)
    return SmtpTransport(server.host, server.port, tls=tls, timeout=5, **options)  # type: ignore[arg-type]


async def test_starttls_upgrades_then_sends_trusting_a_private_ca(smtp_tls_server: StartServer) -> None:
    server = smtp_tls_server("starttls", require_starttls=True)
    transport = _secure(server, "starttls")
    try:
        result = await transport.send(_message(subject="over starttls"), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code) == ("accepted", 250)
    [delivery] = server.deliveries
    assert delivery.subject == "over starttls"
    assert delivery.tls_version is not None and delivery.tls_version.startswith("TLSv1")
    assert delivery.starttls_info is not None  # aiosmtpd's session.ssl: set by a STARTTLS handshake
    assert (server.connections, server.tls_connections) == (1, 1)


async def test_implicit_tls_sends(smtp_tls_server: StartServer) -> None:
    server = smtp_tls_server("implicit")
    transport = _secure(server, "implicit")
    try:
        result = await transport.send(_message(subject="over smtps"), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code) == ("accepted", 250)
    [delivery] = server.deliveries
    assert delivery.tls_version is not None and delivery.tls_version.startswith("TLSv1")
    assert delivery.starttls_info is None  # encrypted from the first byte, no STARTTLS
    assert (server.connections, server.tls_connections) == (1, 1)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_auth_with_the_right_credentials_sends(smtp_tls_server: StartServer, tls: str) -> None:
    server = smtp_tls_server(tls, users={USER: PASSWORD}, auth_required=True)
    transport = _secure(server, tls, username=USER, password=PASSWORD)
    with structlog.testing.capture_logs() as events:
        try:
            result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
        finally:
            await transport.close()
    assert result.outcome == "accepted"
    assert server.logins == [(USER, True)]
    assert [d.login for d in server.deliveries] == [USER]
    assert [e["event"] for e in events] == ["smtp connected"]
    assert PASSWORD not in repr(events)


async def test_without_credentials_a_server_that_requires_auth_refuses_permanently(
    smtp_tls_server: StartServer,
) -> None:
    server = smtp_tls_server("starttls", users={USER: PASSWORD}, auth_required=True)
    transport = _secure(server, "starttls")
    try:
        result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code, result.stage) == ("permanent", 530, "mail")
    assert "Authentication required" in result.smtp_text
    assert server.messages == []


def _secret_forms(password: str) -> list[str]:
    """The password as it could leak: plain, or base64 as AUTH PLAIN / AUTH LOGIN send it."""
    return [
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{password}".encode()).decode(),
    ]


async def test_wrong_credentials_are_permanent_and_the_password_shows_nowhere(
    smtp_tls_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wr0ng-horse-battery-staple"
    server = smtp_tls_server("starttls", users={USER: PASSWORD}, auth_required=True)
    transport = _secure(server, "starttls", username=USER, password=wrong)
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        try:
            result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
        finally:
            await transport.close()
    assert (result.outcome, result.smtp_code, result.stage) == ("permanent", 535, "connect")
    assert "5.7.8" in result.smtp_text and "credentials invalid" in result.smtp_text
    assert server.logins and all(user == USER and not ok for user, ok in server.logins)
    assert server.messages == []
    # The server's own log (aiosmtpd's "mail.log") is not ours; everything else is.
    ours = [r.getMessage() for r in caplog.records if r.name != "mail.log"]
    seen = " ".join([repr(result), repr(transport), *map(repr, events), *ours])
    for form in _secret_forms(wrong):
        assert form not in seen


async def test_a_refused_login_leaves_no_connection_open(
    smtp_tls_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients: list[aiosmtplib.SMTP] = []

    class RecordingSMTP(aiosmtplib.SMTP):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            clients.append(self)

    monkeypatch.setattr(smtp_gateway.aiosmtplib, "SMTP", RecordingSMTP)
    server = smtp_tls_server("starttls", users={USER: PASSWORD}, auth_required=True)
    transport = _secure(server, "starttls", username=USER, password="wrong")
    try:
        first = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
        second = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (first.outcome, second.outcome) == ("permanent", "permanent")
    assert len(clients) == 2
    assert [c.is_connected for c in clients] == [False, False]
    assert transport.connections == 0


async def test_a_server_that_requires_starttls_refuses_a_plaintext_transport(smtp_tls_server: StartServer) -> None:
    server = smtp_tls_server("starttls", require_starttls=True)
    transport = SmtpTransport(server.host, server.port, tls="none", timeout=5)
    try:
        result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code, result.stage) == ("permanent", 530, "mail")
    assert "STARTTLS" in result.smtp_text
    assert server.messages == []
    assert server.tls_connections == 0


async def test_a_starttls_transport_never_falls_back_to_plaintext(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.host, smtp_sink.port, tls="starttls", timeout=5)
    try:
        result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code, result.stage) == ("temporary", None, "connect")
    assert "STARTTLS" in result.smtp_text
    assert smtp_sink.messages == []


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_an_untrusted_certificate_fails_cleanly(smtp_tls_server: StartServer, tls: str) -> None:
    server = smtp_tls_server(tls)
    transport = _secure(server, tls, ca_file=None)  # only the system's CAs: the self-signed one is not among them
    try:
        result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code, result.stage) == ("temporary", None, "connect")
    assert "CERTIFICATE_VERIFY_FAILED" in result.smtp_text
    assert "self-signed certificate" in result.smtp_text
    assert server.messages == []
    assert transport.connections == 0


async def test_validate_certs_false_accepts_a_certificate_nobody_vouches_for(smtp_tls_server: StartServer) -> None:
    server = smtp_tls_server("starttls")
    transport = _secure(server, "starttls", ca_file=None, validate_certs=False)  # a lab setting, not for production
    try:
        result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert result.outcome == "accepted"
    assert server.deliveries[0].tls_version is not None


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_a_trusted_certificate_for_another_host_fails_cleanly(
    smtp_tls_server: StartServer, misnamed_certificate: SelfSignedCertificate, tls: str
) -> None:
    server = smtp_tls_server(tls, certificate=misnamed_certificate)
    transport = _secure(server, tls)  # trusts the certificate, but it names mail.elsewhere.example
    try:
        result = await transport.send(_message(), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (result.outcome, result.smtp_code, result.stage) == ("temporary", None, "connect")
    assert "CERTIFICATE_VERIFY_FAILED" in result.smtp_text
    assert "127.0.0.1" in result.smtp_text  # "IP address mismatch, certificate is not valid for '127.0.0.1'"
    assert server.messages == []


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_after_the_server_hangs_up_the_next_send_reconnects_over_tls_and_logs_in_again(
    smtp_tls_server: StartServer, tls: str
) -> None:
    server = smtp_tls_server(tls, users={USER: PASSWORD}, auth_required=True)
    transport = _secure(server, tls, username=USER, password=PASSWORD)
    try:
        first = await transport.send(_message(subject="before"), mail_from=FROM, rcpt_to=[TO])
        server.drop_connections()  # as a server does with an idle connection
        second = await transport.send(_message(subject="after"), mail_from=FROM, rcpt_to=[TO])
    finally:
        await transport.close()
    assert (first.outcome, second.outcome) == ("accepted", "accepted")
    assert transport.connections == 2
    assert (server.connections, server.tls_connections) == (2, 2)
    assert server.logins == [(USER, True), (USER, True)]
    assert [d.subject for d in server.deliveries] == ["before", "after"]
    assert all(d.tls_version is not None and d.login == USER for d in server.deliveries)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_many_sends_share_one_tls_session(smtp_tls_server: StartServer, tls: str) -> None:
    server = smtp_tls_server(tls, users={USER: PASSWORD}, auth_required=True)
    transport = _secure(server, tls, username=USER, password=PASSWORD)
    subjects = [f"message {n}" for n in range(5)]
    try:
        results = [await transport.send(_message(subject=s), mail_from=FROM, rcpt_to=[TO]) for s in subjects]
    finally:
        await transport.close()
    assert [r.outcome for r in results] == ["accepted"] * len(subjects)
    assert transport.connections == 1
    assert (server.connections, server.tls_connections) == (1, 1)
    assert server.logins == [(USER, True)]
    assert [d.subject for d in server.deliveries] == subjects
    assert all(d.tls_version is not None for d in server.deliveries)


async def test_a_send_cancelled_mid_conversation_does_not_poison_the_reused_connection(
    smtp_tls_server: StartServer,
) -> None:
    server = smtp_tls_server("starttls")
    transport = _secure(server, "starttls")
    hold = server.hold_next_rcpt()
    try:
        interrupted = asyncio.create_task(transport.send(_message(subject="cancelled"), mail_from=FROM, rcpt_to=[TO]))
        await hold.arrived()  # the transport is waiting for the server's reply to RCPT
        interrupted.cancel()
        with pytest.raises(asyncio.CancelledError):
            await interrupted
        hold.release()  # the late "250" for that RCPT must not be read as the answer to anything
        result = await transport.send(_message(subject="next"), mail_from=FROM, rcpt_to=[TO])
    finally:
        hold.release()
        await transport.close()
    assert (result.outcome, result.smtp_code) == ("accepted", 250)
    assert transport.connections == 2
    assert [d.subject for d in server.deliveries] == ["next"]
