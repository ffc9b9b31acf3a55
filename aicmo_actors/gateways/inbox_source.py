"""The port for inbound mail: a mailbox that yields raw messages by ascending UID.

Two adapters implement it: `ImapSource` (a real IMAP server, `gateways/imap.py`) and
`MaildirInbox` (the embedded default, `gateways/maildir_inbox.py`). The inbox actor
keeps, per mailbox, the UIDVALIDITY and the last UID it has stored; when `open()`
reports another UIDVALIDITY, every UID it knew is void and it starts again from 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["FetchedMessage", "InboxAuthFailed", "InboxSource", "InboxUnavailable", "header_block"]


def header_block(head: bytes) -> bytes:
    """The header block at the start of a message (up to and with its blank line), or all
    of `head` when no blank line is in it."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = head.find(sep)
        if at != -1:
            return head[: at + len(sep)]
    return head


@dataclass(frozen=True)
class FetchedMessage:
    """One message as the mailbox holds it: unique per (mailbox, uidvalidity, uid)."""

    uid: int
    uidvalidity: int
    raw: bytes
    internal_date: datetime | None
    #: The message's whole size as the mailbox reports it (None: len(raw)).
    size: int | None = None
    #: True when only the start of it was fetched (it is larger than `size_limit`): `raw`
    #: then holds its header block only.
    truncated: bool = False
    size_limit: int | None = None

    def __repr__(self) -> str:
        # Never put a whole body into a log line or a traceback.
        return (
            f"FetchedMessage(uid={self.uid}, uidvalidity={self.uidvalidity}, "
            f"size={self.size if self.size is not None else len(self.raw)}, truncated={self.truncated}, "
            f"internal_date={self.internal_date!r})"
        )


class InboxUnavailable(Exception):
    """The mailbox cannot be read now (refused, dropped, timed out): reconnect with backoff.

    After this error the source is closed; call `open()` again before anything else.
    """


class InboxAuthFailed(InboxUnavailable):
    """The server refused the credentials: retrying soon will not help, tell a human."""


@runtime_checkable
class InboxSource(Protocol):
    """A mailbox read by UID. One caller at a time: methods are not safe to run concurrently."""

    name: str
    """The mailbox's name in logs and storage, e.g. "alex@outreach.example.com/INBOX"."""

    supports_idle: bool
    """True once `open()` found that `wait_for_new` can wait for the server's push."""

    async def open(self) -> int:
        """Connect, log in and select the mailbox; return its UIDVALIDITY.

        Calling it again reconnects (closing any previous connection first).
        """
        ...

    async def fetch_after(self, last_uid: int, batch: int, max_bytes: int | None = None) -> list[FetchedMessage]:
        """Messages with UID > `last_uid`, ascending, at most `batch` of them.

        A message larger than `max_bytes` comes back with its header block only and
        `truncated` set: a huge message must cost neither the memory nor the time to read it.
        """
        ...

    async def wait_for_new(self, timeout: float) -> bool:
        """Wait until the server announces new mail (True) or `timeout` seconds pass (False).

        Without push support it returns False at once, so the caller polls on its own clock.
        `cam.inbox` waits on a source of its own (a second connection), never on the one
        it fetches with, so a wait never holds up a fetch.
        """
        ...

    async def close(self) -> None:
        """Log out and disconnect; safe to call twice or after a failure."""
        ...
