"""SMTP with aiosmtplib: one reused connection per sending mailbox, reconnect, and an honest
answer about what the server has: a failure after the payload went out is "unconfirmed".

We drive the transaction ourselves (MAIL, RCPT, DATA) rather than `send_message`, so each
failure is attributed to its stage. The payload is known to be out once aiosmtplib has
written it after the server's 354; a disconnect or timeout after that point may have lost
only the server's "250 queued", so the message must not be sent again automatically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any, Literal

import aiosmtplib
import structlog

from aicmo_actors.gateways.transport import SendResult

log = structlog.get_logger("aicmo.gateways.smtp")


def _text(message: object) -> str:
    return " ".join(str(message).split())[:500]


class SmtpTransport:
    """One connection to one server, connected lazily, re-connected when it died."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: Literal["none", "starttls", "implicit"] = "starttls",
        timeout: float = 30.0,
        local_hostname: str | None = None,
        validate_certs: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.tls = tls
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.validate_certs = validate_certs
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self.connections = 0

    def __repr__(self) -> str:
        return f"SmtpTransport({self.host}:{self.port}, tls={self.tls}, user={self.username!r})"

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            use_tls=self.tls == "implicit",
            start_tls=True if self.tls == "starttls" else False,
            validate_certs=self.validate_certs,
            local_hostname=self.local_hostname,
        )
        await client.connect()
        if self.username is not None and self._password is not None:
            await client.login(self.username, self._password)
        self.connections += 1
        log.info("smtp connected", host=self.host, port=self.port, tls=self.tls)
        return client

    async def _alive(self) -> aiosmtplib.SMTP:
        client = self._client
        if client is not None and client.is_connected:
            try:
                # An idle connection the server dropped (421, timeout) is found here, not mid-send.
                await client.noop()
                return client
            except aiosmtplib.SMTPException:
                self._drop()
        self._client = await self._connect()
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        self._client = None

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        async with self._lock:
            return await self._send(message, mail_from, rcpt_to)

    async def _send(self, message: EmailMessage, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        stage = "connect"
        try:
            client = await self._alive()
        except aiosmtplib.SMTPAuthenticationError as exc:
            self._drop()
            return SendResult("permanent", exc.code, _text(exc.message), "connect")
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            return SendResult("temporary", getattr(exc, "code", None), _text(exc), "connect")
        payload_sent = False
        try:
            stage = "mail"
            await client.mail(mail_from)
            stage = "rcpt"
            refused: list[str] = []
            last: aiosmtplib.SMTPRecipientRefused | None = None
            for rcpt in rcpt_to:
                try:
                    await client.rcpt(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(rcpt)
                    last = exc
            if last is not None and len(refused) == len(rcpt_to):
                await self._reset(client)
                outcome = "permanent" if last.code >= 500 else "temporary"
                return SendResult(outcome, last.code, _text(last.message), "rcpt", tuple(refused))
            stage = "data"
            payload = message.as_bytes(policy=SMTP_POLICY)
            protocol: Any = client.protocol
            original_write = protocol.write
            writes = 0

            def counting_write(data: bytes) -> None:
                nonlocal writes, payload_sent
                writes += 1
                original_write(data)
                if writes >= 2:  # DATA, then the payload once the server said 354
                    payload_sent = True

            protocol.write = counting_write
            try:
                response = await client.data(payload)
            finally:
                protocol.write = original_write
            return SendResult("accepted", response.code, _text(response.message), "data", tuple(refused))
        except aiosmtplib.SMTPResponseException as exc:
            if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError):
                self._drop()
                if payload_sent:
                    return SendResult("unconfirmed", None, _text(exc), "after_data")
                return SendResult("temporary", None, _text(exc), stage)
            await self._reset(client)
            outcome = "permanent" if exc.code >= 500 else "temporary"
            if exc.code == 421:  # the server is closing the connection
                self._drop()
            return SendResult(outcome, exc.code, _text(exc.message), stage)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            if payload_sent:
                return SendResult("unconfirmed", None, _text(exc), "after_data")
            return SendResult("temporary", getattr(exc, "code", None), _text(exc), stage)

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except Exception:
            self._drop()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except Exception:
                client.close()
