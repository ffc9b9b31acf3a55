"""The port for outbound mail: one `send` that never raises for an SMTP or network outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Protocol

Outcome = Literal["accepted", "temporary", "permanent", "unconfirmed"]


@dataclass(frozen=True)
class SendResult:
    """What happened to one message.

    - accepted: the server took it (250 after DATA);
    - temporary: 4xx, refused connection, timeout or disconnect before the payload was sent;
    - permanent: 5xx at MAIL, RCPT or DATA;
    - unconfirmed: the payload was fully sent but the final reply never came: the server may
      have it, so the caller must not send it again automatically.
    """

    outcome: Outcome
    smtp_code: int | None = None
    smtp_text: str = ""
    stage: str = "data"
    refused_recipients: tuple[str, ...] = field(default_factory=tuple)


class MailTransport(Protocol):
    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult: ...

    async def close(self) -> None: ...


class LazyTransport:
    """A transport made on the first send (a tick with nothing to send opens nothing) and
    closed by `close` (after each batch: emails to clients are few, so no idle connection is
    left to time out)."""

    def __init__(self, make: Callable[[], MailTransport]) -> None:
        self._make = make
        self._made: MailTransport | None = None

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        if self._made is None:
            self._made = self._make()
        return await self._made.send(message, mail_from=mail_from, rcpt_to=rcpt_to)

    async def close(self) -> None:
        made, self._made = self._made, None
        if made is not None:
            await made.close()
