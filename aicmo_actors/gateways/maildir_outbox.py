"""The embedded default transport: each message becomes a file in a Maildir (./mail/outbox).

Written the Maildir way (tmp/ then an atomic rename into new/), with LF line ends as on disk
in real Maildirs. `python run.py` sends nowhere real until SMTP is configured.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from aicmo_actors.gateways.mail_message import wire_bytes
from aicmo_actors.gateways.transport import SendResult

_LINE_BREAKS = ("\r", "\n", "\0")


class MaildirOutbox:
    def __init__(self, path: Path | str) -> None:
        self.root = Path(path)
        self._count = 0

    def _unique_name(self) -> str:
        # Several instances share one folder (one per sending mailbox) and a container's pid
        # is the same after every restart: time and a random part keep names apart, so a
        # rename never replaces an earlier message.
        self._count += 1
        return f"{time.time_ns()}.P{os.getpid()}Q{self._count}R{secrets.token_hex(6)}.aicmo"

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        for address in (mail_from, *rcpt_to):
            if any(c in address for c in _LINE_BREAKS):
                raise ValueError(f"refused: line break or NUL in the envelope address {address!r}")
        data = wire_bytes(message).replace(b"\r\n", b"\n")
        envelope = f"X-Envelope-From: <{mail_from}>\nX-Envelope-To: {', '.join(f'<{r}>' for r in rcpt_to)}\n".encode()
        try:
            self._deliver(envelope + data)
        except OSError as exc:
            # Nothing reached new/: like a refused connection, it may be tried again.
            return SendResult(outcome="temporary", smtp_text=f"cannot write to the Maildir: {exc}", stage="connect")
        return SendResult(outcome="accepted", smtp_code=250, smtp_text="written to Maildir", stage="data")

    def _deliver(self, payload: bytes) -> None:
        """Write to tmp/, fsync, rename into new/: a reader never sees half a message."""
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        name = self._unique_name()
        tmp = self.root / "tmp" / name
        try:
            with open(tmp, "xb") as fh:  # "x": never overwrite
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.root / "new" / name)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise

    async def close(self) -> None:
        return None
