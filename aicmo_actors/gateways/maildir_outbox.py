"""The embedded default transport: each message becomes a file in a Maildir (./mail/outbox).

Written the Maildir way (tmp/ then an atomic rename into new/), with LF line ends as on disk
in real Maildirs. `python run.py` sends nowhere real until SMTP is configured.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from aicmo_actors.gateways.transport import SendResult


class MaildirOutbox:
    def __init__(self, path: Path | str) -> None:
        self.root = Path(path)
        self._count = 0

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        data = message.as_bytes().replace(b"\r\n", b"\n")
        envelope = f"X-Envelope-From: <{mail_from}>\nX-Envelope-To: {', '.join(f'<{r}>' for r in rcpt_to)}\n".encode()
        self._count += 1
        digest = hashlib.sha256(str(message.get("Message-ID", "")).encode() + str(self._count).encode()).hexdigest()[:16]
        name = f"{digest}.{os.getpid()}.{self._count}.aicmo"
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(envelope + data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "new" / name)
        return SendResult(outcome="accepted", smtp_code=250, smtp_text="written to Maildir", stage="data")

    async def close(self) -> None:
        return None
