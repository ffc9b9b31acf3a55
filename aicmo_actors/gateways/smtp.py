"""SMTP with aiosmtplib: one reused connection per sending mailbox, reconnect, and an honest
answer about what the server has: a failure after the payload went out is "unconfirmed".

We drive the transaction ourselves (MAIL, RCPT, DATA) rather than `send_message`, so each
failure is attributed to its stage. The payload is known to be out once aiosmtplib has
written it after the server's 354; a disconnect or timeout after that point may have lost
only the server's "250 queued", so the message must not be sent again automatically.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
import structlog

from aicmo_actors.gateways.mail_message import wire_bytes
from aicmo_actors.gateways.transport import Outcome, SendResult

log = structlog.get_logger("aicmo.gateways.smtp")


def _text(message: object) -> str:
    return " ".join(str(message).split())[:500]


#: A reused connection idle this long is checked with a NOOP before the next message.
IDLE_CHECK_S = 30.0


class _StaleConnection(Exception):
    """A reused connection turned out dead before any of the message went out: try a fresh one."""


def _stale(exc: BaseException, stage: str, fresh: bool) -> bool:
    """Did a connection we kept open die under us before the transaction started?"""
    if fresh or stage != "mail":
        return False
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421:
        return True  # "closing transmission channel": the server dropped an idle client
    return isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError)


def _outcome(code: int) -> Outcome:
    return "permanent" if code >= 500 else "temporary"


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
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.tls = tls
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.validate_certs = validate_certs
        # PEM file of the CA (or the self-signed certificate) to trust besides the system's.
        self.ca_file = os.fspath(ca_file) if ca_file is not None else None
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self._last_used = 0.0  # time.monotonic() at the end of the last send
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
            cert_bundle=self.ca_file,
            local_hostname=self.local_hostname,
        )
        await client.connect()  # on failure it closes itself
        try:
            if self.username is not None and self._password is not None:
                await client.login(self.username, self._password)
        except BaseException:
            # Not yet ours to keep: a refused login must not leave the socket open.
            client.close()
            raise
        self.connections += 1
        log.info("smtp connected", host=self.host, port=self.port, tls=self.tls)
        return client

    async def _alive(self) -> tuple[aiosmtplib.SMTP, bool]:
        """The connection to use and whether it is fresh (just opened).

        A connection in steady use is trusted as it is: a NOOP before every message would
        cost a round trip each. One that sat idle long enough for the server to drop it
        (421, idle timeout) is checked first; one that dies anyway at MAIL is retried on a
        fresh connection by `send` (nothing of the message had gone out).
        """
        client = self._client
        if client is not None and client.is_connected:
            if time.monotonic() - self._last_used < IDLE_CHECK_S:
                return client, False
            try:
                await client.noop()
                return client, False
            except aiosmtplib.SMTPException:
                self._drop()
        self._client = await self._connect()
        return self._client, True

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        self._client = None

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        async with self._lock:
            try:
                try:
                    return await self._send(message, mail_from, rcpt_to)
                except _StaleConnection:
                    return await self._send(message, mail_from, rcpt_to)
                finally:
                    self._last_used = time.monotonic()
            except asyncio.CancelledError:
                # Cancelled mid-conversation: the reply to the interrupted command (or the rest
                # of the payload) is still owed, so the next send would read the wrong answers.
                self._drop()
                raise

    async def _send(self, message: EmailMessage, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        stage = "connect"
        try:
            client, fresh = await self._alive()
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
                return SendResult(_outcome(last.code), last.code, _text(last.message), "rcpt", tuple(refused))
            stage = "data"
            payload = wire_bytes(message)
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
            if _stale(exc, stage, fresh):
                self._drop()
                raise _StaleConnection from exc
            if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError):
                self._drop()
                if payload_sent:
                    return SendResult("unconfirmed", None, _text(exc), "after_data")
                return SendResult("temporary", None, _text(exc), stage)
            await self._reset(client)
            if exc.code == 421:  # the server is closing the connection
                self._drop()
            return SendResult(_outcome(exc.code), exc.code, _text(exc.message), stage)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            if _stale(exc, stage, fresh):
                raise _StaleConnection from exc
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
