"""A real SMTP server for tests: aiosmtpd on a loopback port, keeping what it accepted.

`smtp_sink` is a running server. Tests read `smtp_sink.messages` (each a parsed message plus
its envelope) and can script failures per recipient with `smtp_sink.reply_for[rcpt] = "550 ..."`,
or make the next DATA hang up after the payload (`smtp_sink.drop_after_data = True`) to
exercise the "server may have it" path.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


@dataclass
class SinkHandler:
    messages: list[Received] = field(default_factory=list)
    #: Recipient address -> the SMTP reply to give at RCPT (e.g. "550 5.1.1 User unknown").
    reply_for: dict[str, str] = field(default_factory=dict)
    #: Reply given to DATA instead of 250 (once), e.g. "451 4.3.0 try later".
    data_reply: str | None = None
    #: Close the connection after the payload arrived, without a reply.
    drop_after_data: bool = False
    #: Reply given to the next MAIL FROM instead of 250 (once), e.g. "421 4.4.2 idle timeout".
    mail_reply: str | None = None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.mail_reply is not None:
            reply, self.mail_reply = self.mail_reply, None
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        scripted = self.reply_for.get(address.lower())
        if scripted is not None:
            return scripted
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        if self.drop_after_data:
            self.drop_after_data = False
            self.messages.append(self._received(envelope, raw))
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        if self.data_reply is not None:
            reply, self.data_reply = self.data_reply, None
            return reply
        self.messages.append(self._received(envelope, raw))
        return "250 Message accepted for delivery"

    @staticmethod
    def _received(envelope: Envelope, raw: bytes) -> Received:
        msg: Any = message_from_bytes(raw, policy=policy.default)
        return Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw, msg)


@dataclass
class SmtpSink:
    host: str
    port: int
    handler: SinkHandler

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def reply_for(self) -> dict[str, str]:
        return self.handler.reply_for

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    handler = SinkHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield SmtpSink("127.0.0.1", port, handler)
    finally:
        controller.stop()
