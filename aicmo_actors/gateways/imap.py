"""IMAP inbox source on aioimaplib: UIDVALIDITY, UID fetch in batches, IDLE.

What aioimaplib (2.0) does and does not do, and what this adapter adds:

- Implicit TLS is `IMAP4(..., ssl_context=...)` (we do not use `IMAP4_SSL`, which cannot
  take the connection-lost callback we need).
- STARTTLS is not implemented by aioimaplib (iroco-co/aioimaplib issue #1). We send the
  STARTTLS command through its protocol object and upgrade the socket with asyncio's
  public `loop.start_tls`, then ask for the capabilities again (RFC 3501 6.2.1).
- When the server drops the connection, aioimaplib only calls `conn_lost_cb`; pending
  commands would wait for their timeout (IDLE has none). Every call here races the
  command against that callback, so a drop surfaces at once as `InboxUnavailable`.
- Responses come back as a list of lines: untagged lines without the leading "* ",
  literals as `bytearray` items right after the line that announced them ("{123}"),
  and the tagged status text last. The parsers below are plain functions on that shape.
- aioimaplib parses a response recursively, a few stack frames per line, so one socket
  read holding hundreds of small messages raises RecursionError and kills the connection
  (iroco-co/aioimaplib issue #118, unfixed in 2.0.3). A batch is therefore fetched with
  several UID FETCH commands of at most `MAX_FETCH_PER_COMMAND` messages each.
- Folder names are sent quoted; non-ASCII names (modified UTF-7) are not supported.
- A session whose selected folder is deleted and created again under it (a server-side
  rebuild) keeps Dovecot's old view of it: NOOP and IDLE then only say "* NO Internal
  error" and never show new mail. An untagged NO or BAD during NOOP or IDLE therefore
  makes the source SELECT the folder again; a new UIDVALIDITY there is `InboxUnavailable`,
  so that the caller opens the source again and learns the new numbering from `open()`.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import ssl
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

import aioimaplib  # type: ignore[import-untyped]
import structlog

from aicmo_actors.gateways.inbox_source import FetchedMessage, InboxAuthFailed, InboxUnavailable

__all__ = [
    "FETCH_ITEMS",
    "MAX_FETCH_PER_COMMAND",
    "FetchedItem",
    "ImapSource",
    "compress_uid_set",
    "parse_fetch_response",
    "parse_internaldate",
    "parse_search_response",
    "parse_uidvalidity",
    "untagged_problems",
]

T = TypeVar("T")

# BODY.PEEK so that reading never sets \Seen for the human who shares the mailbox.
FETCH_ITEMS = "(UID BODY.PEEK[] INTERNALDATE)"
# About 3 stack frames per message in aioimaplib's parser: 100 stays far below Python's
# default limit of 1000 whatever the message sizes.
MAX_FETCH_PER_COMMAND = 100

_FETCH_START = re.compile(rb"^(\d+) FETCH \(", re.IGNORECASE)
_UID = re.compile(rb"[( ]UID (\d+)", re.IGNORECASE)
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]*)"', re.IGNORECASE)
_BODY_LITERAL = re.compile(rb"BODY\[(?:HEADER)?\] ~?\{(\d+)\+?\}$", re.IGNORECASE)
_BODY_QUOTED = re.compile(rb'BODY\[(?:HEADER)?\] "((?:[^"\\]|\\.)*)"', re.IGNORECASE)
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)", re.IGNORECASE)
#: What is fetched of a message over the size limit: its header block and its size.
HEADER_ITEMS = "(UID RFC822.SIZE BODY.PEEK[HEADER] INTERNALDATE)"
SIZE_ITEMS = "(UID RFC822.SIZE)"
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_EXISTS = re.compile(rb"^\d+ EXISTS", re.IGNORECASE)
_UNTAGGED_PROBLEM = re.compile(rb"^(?:NO|BAD)\b", re.IGNORECASE)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
        start=1,
    )
}
_INTERNALDATE_PARTS = re.compile(r"^\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")


# ---------------------------------------------------------------------------------------
# Pure parsing: aioimaplib response lines in, data out.


class FetchedItem:
    """One parsed `* n FETCH (...)` response: what the server sent for one message."""

    __slots__ = ("body", "internal_date", "size", "uid")

    def __init__(self, uid: int | None, body: bytes | None, internal_date: datetime | None, size: int | None = None):
        self.uid = uid
        self.body = body
        self.internal_date = internal_date
        self.size = size

    def __repr__(self) -> str:
        size = None if self.body is None else len(self.body)
        return f"FetchedItem(uid={self.uid}, size={size}, internal_date={self.internal_date!r})"


def parse_internaldate(text: str) -> datetime | None:
    """Parse an IMAP date-time ("17-Jul-1996 02:44:25 -0700"); None when it is malformed."""
    match = _INTERNALDATE_PARTS.match(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    month_number = _MONTHS.get(month.upper())
    if month_number is None:
        return None
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        return datetime(
            int(year),
            month_number,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )
    except ValueError:
        return None


def parse_uidvalidity(lines: Iterable[bytes | bytearray]) -> int | None:
    """The UIDVALIDITY from a SELECT/EXAMINE response (untagged `OK [UIDVALIDITY n]`)."""
    for line in lines:
        if isinstance(line, bytearray):
            continue
        match = _UIDVALIDITY.search(line)
        if match is not None:
            return int(match.group(1))
    return None


def parse_search_response(lines: Sequence[bytes | bytearray]) -> list[int]:
    """The numbers of a SEARCH response, ascending, without duplicates.

    aioimaplib strips "* SEARCH" from the data lines; the last line is the tagged
    status text ("Search completed (0.001 secs)."), which is never data.
    """
    numbers: set[int] = set()
    for line in lines[:-1]:
        if isinstance(line, bytearray):
            continue
        for token in line.split():
            if token.isdigit():
                numbers.add(int(token))
    return sorted(numbers)


def untagged_problems(lines: Iterable[bytes | bytearray]) -> list[str]:
    """The untagged NO/BAD lines (server warnings) of a response or of IDLE pushes.

    aioimaplib strips the leading "* "; the tagged status line of a response ("NOOP
    completed") never starts with NO or BAD, so whole responses can be passed in.
    """
    return [
        bytes(line).decode("utf-8", "replace")[:200]
        for line in lines
        if isinstance(line, bytes) and _UNTAGGED_PROBLEM.match(line)
    ]


def _unquote(value: bytes) -> bytes:
    return re.sub(rb"\\(.)", rb"\1", value)


def parse_fetch_response(lines: Sequence[bytes | bytearray]) -> list[FetchedItem]:
    """Every `n FETCH (...)` item in a FETCH response, in the order the server sent them.

    Items may carry their attributes in any order (UID before or after the body, FLAGS
    anywhere); the body is the literal announced by `BODY[] {n}` (or a quoted string).
    Items without a body (unsolicited flag updates) come back with `body=None`.
    """
    items: list[FetchedItem] = []
    text = b""
    body: bytes | None = None
    expecting_body = False
    in_item = False

    def finish() -> None:
        if not in_item:
            return
        uid_match = _UID.search(text)
        size_match = _SIZE.search(text)
        date_match = _INTERNALDATE.search(text)
        quoted_body = _BODY_QUOTED.search(text)
        item_body = body
        if item_body is None and quoted_body is not None:
            item_body = _unquote(quoted_body.group(1))
        items.append(
            FetchedItem(
                uid=int(uid_match.group(1)) if uid_match else None,
                body=item_body,
                internal_date=(
                    parse_internaldate(date_match.group(1).decode("ascii", "replace")) if date_match else None
                ),
                size=int(size_match.group(1)) if size_match else None,
            )
        )

    for line in lines:
        if isinstance(line, bytearray):
            if in_item and expecting_body:
                body = bytes(line)
            # A literal of another attribute stands in the text as a placeholder, so
            # that nothing inside it can be mistaken for an attribute of the item.
            text += b" {literal}"
            expecting_body = False
            continue
        if _FETCH_START.match(line):
            finish()
            in_item, text, body = True, line, None
        elif in_item:
            text += line
        expecting_body = bool(in_item and _BODY_LITERAL.search(line))
    finish()
    return items


def compress_uid_set(uids: Iterable[int]) -> str:
    """A compact IMAP sequence set for the UIDs: [1, 2, 3, 7, 9, 10] -> "1:3,7,9:10"."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an IMAP sequence set cannot be empty")
    ranges: list[str] = []
    start = previous = ordered[0]
    for uid in ordered[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    ranges.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(ranges)


def _status_text(lines: Sequence[bytes | bytearray]) -> str:
    if not lines:
        return ""
    last = lines[-1]
    return bytes(last).decode("utf-8", "replace")[:200]


# ---------------------------------------------------------------------------------------
# The adapter.


class ImapSource:
    """An IMAP folder as an `InboxSource`, with aioimaplib.

    `tls`: "implicit" (IMAPS, usually port 993), "starttls" (upgrade on port 143) or
    "none" (loopback and tests only). `ssl_context` defaults to the system's trust store
    with host name checking. `timeout` bounds connecting, each command and each silence
    inside a long FETCH. Not safe for concurrent calls: one caller drives it. Any error
    or cancellation in the middle of a command drops the connection (the protocol state
    is unknown then): the next call raises `InboxUnavailable` until `open()` is called.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        folder: str = "INBOX",
        tls: Literal["none", "starttls", "implicit"] = "implicit",
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        name: str | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "implicit"):
            raise ValueError(f"tls must be 'none', 'starttls' or 'implicit', not {tls!r}")
        self.name = name or f"{username}/{folder}"
        self.supports_idle = False
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._folder = folder
        self._tls = tls
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._client: aioimaplib.IMAP4 | None = None
        self._lost = asyncio.Event()
        self._uidvalidity: int | None = None
        # UIDs found by the last UID SEARCH and not yet fetched, with the `last_uid` that
        # search started from. New mail always gets higher UIDs, so while this list is not
        # exhausted we need not search again (one search per sweep, not per batch).
        self._known_uids: list[int] = []
        self._known_from = 0
        self._log = structlog.get_logger("aicmo").bind(gateway="imap", mailbox=self.name)

    def __repr__(self) -> str:
        return f"ImapSource(name={self.name!r}, host={self._host!r}, port={self._port}, tls={self._tls!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> int:
        """Connect, log in, select the folder; return its UIDVALIDITY."""
        await self.close()
        self._lost = asyncio.Event()
        lost = self._lost

        def on_connection_lost(exc: Exception | None) -> None:
            lost.set()

        ssl_context = self._context() if self._tls == "implicit" else None
        try:
            client = aioimaplib.IMAP4(
                host=self._host,
                port=self._port,
                timeout=self._timeout,
                conn_lost_cb=on_connection_lost,
                ssl_context=ssl_context,
            )
        except OSError as exc:  # pragma: no cover - create_client only schedules a task
            raise InboxUnavailable(f"{self.name}: cannot connect: {exc}") from exc
        self._client = client
        try:
            await self._call("connect", client.wait_hello_from_server())
            if self._tls == "starttls":
                await self._starttls(client)
            response = await self._call("login", client.login(self._username, self._password))
            if response.result != "OK":
                raise InboxAuthFailed(
                    f"{self.name}: login refused by {self._host}:{self._port}: {_status_text(response.lines)}"
                )
            self.supports_idle = client.has_capability("IDLE")
            response = await self._call("select", client.select(aioimaplib.quoted(self._folder)))
            if response.result != "OK":
                raise InboxUnavailable(f"{self.name}: cannot select {self._folder!r}: {_status_text(response.lines)}")
            uidvalidity = parse_uidvalidity(response.lines)
            if uidvalidity is None:
                raise InboxUnavailable(f"{self.name}: the server sent no UIDVALIDITY on SELECT")
        except BaseException:
            self._abort()
            raise
        self._uidvalidity = uidvalidity
        self._known_uids, self._known_from = [], 0
        self._log.info(
            "imap.opened",
            host=self._host,
            port=self._port,
            tls=self._tls,
            uidvalidity=uidvalidity,
            idle=self.supports_idle,
        )
        return uidvalidity

    async def close(self) -> None:
        """Log out (best effort) and drop the connection."""
        client = self._client
        if client is None:
            return
        if not self._lost.is_set():
            try:
                await self._call("logout", client.logout())
            except (InboxUnavailable, aioimaplib.AioImapException) as exc:
                self._log.debug("imap.logout_failed", error=str(exc))
        self._abort()

    # -- reading --------------------------------------------------------------------

    async def fetch_after(self, last_uid: int, batch: int, max_bytes: int | None = None) -> list[FetchedMessage]:
        """Messages with UID > `last_uid`, ascending, at most `batch` (UID SEARCH + UID FETCH).

        With `max_bytes`, the sizes are asked first (RFC822.SIZE) and a message over the limit
        is fetched as its header block only (BODY.PEEK[HEADER]), marked `truncated`.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        client, uidvalidity = self._connected()
        try:
            candidates = await self._uids_after(client, last_uid)
            while candidates:
                wanted = candidates[:batch]
                messages = await self._fetch_limited(client, uidvalidity, wanted, max_bytes)
                self._forget_uids_up_to(wanted[-1])
                if messages:
                    return messages
                # Every wanted UID was expunged meanwhile: try the next ones we know of.
                candidates = candidates[batch:]
            return []
        except BaseException:
            self._abort()
            raise

    async def wait_for_new(self, timeout: float) -> bool:
        """IDLE until the server says EXISTS (True) or `timeout` passes (False).

        Without IDLE it returns False at once. Other pushes (flag changes, expunges,
        "still here") do not end the wait. Keep `timeout` under 29 minutes (RFC 2177:
        servers may drop an IDLE after 30); aioimaplib ends the wait at 29 anyway.
        The deadline is the event loop's (a real-network wait, not the actor clock).
        """
        if not self.supports_idle:
            return False
        client, _ = self._connected()
        queue = client.protocol.idle_queue
        while not queue.empty():
            # Pushes left from an earlier IDLE are stale: a fetch has run since.
            queue.get_nowait()
        try:
            idle = await self._call("idle", client.idle_start())
            got_new = False
            problems: list[str] = []
            try:
                async with asyncio.timeout(timeout):
                    while not got_new and not problems:
                        pushed = await self._call("idle", client.wait_server_push())
                        if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                            break
                        got_new = any(isinstance(line, bytes) and _EXISTS.match(line) for line in pushed)
                        problems = untagged_problems(pushed)
            except TimeoutError:
                pass
            client.idle_done()
            response = await self._call("idle", asyncio.wait_for(idle, self._timeout))
            if response.result != "OK":
                raise InboxUnavailable(f"{self.name}: IDLE ended with {response.result}")
            if problems:
                await self._reselect(client, "idle", problems)
                got_new = True  # the folder may have changed meanwhile: worth a look
        except BaseException:
            self._abort()
            raise
        return got_new

    # -- internals ------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context(ssl.Purpose.SERVER_AUTH)

    def _connected(self) -> tuple[aioimaplib.IMAP4, int]:
        if self._client is None or self._uidvalidity is None:
            raise InboxUnavailable(f"{self.name}: not connected (call open() first)")
        if self._lost.is_set():
            self._abort()
            raise InboxUnavailable(f"{self.name}: connection lost")
        return self._client, self._uidvalidity

    async def _call(self, what: str, operation: Awaitable[T]) -> T:
        """Await one aioimaplib operation, failing at once if the connection drops."""
        task: asyncio.Future[T] = asyncio.ensure_future(operation)
        lost = asyncio.ensure_future(self._lost.wait())
        waiters: set[asyncio.Future[Any]] = {task, lost}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            raise InboxUnavailable(f"{self.name}: connection lost during {what}")
        exc = task.exception()
        if exc is None:
            return task.result()
        if isinstance(exc, InboxUnavailable):
            raise exc
        if isinstance(exc, (OSError, TimeoutError, aioimaplib.AioImapException)):
            detail = str(exc) or type(exc).__name__
            raise InboxUnavailable(f"{self.name}: {what} failed: {detail}") from exc
        raise exc

    async def _starttls(self, client: aioimaplib.IMAP4) -> None:
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise InboxUnavailable(f"{self.name}: the server does not offer STARTTLS")
        loop = asyncio.get_running_loop()
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=loop)
        response = await self._call("starttls", asyncio.wait_for(protocol.execute(command), self._timeout))
        if response.result != "OK":
            raise InboxUnavailable(f"{self.name}: STARTTLS refused: {_status_text(response.lines)}")
        transport = await self._call(
            "starttls",
            loop.start_tls(
                protocol.transport,
                protocol,
                self._context(),
                server_hostname=self._host,
                ssl_handshake_timeout=self._timeout,
            ),
        )
        if transport is None:
            raise InboxUnavailable(f"{self.name}: the TLS upgrade failed")
        protocol.transport = transport
        # Capabilities seen before TLS must be forgotten (RFC 3501 6.2.1).
        await self._call("capability", asyncio.wait_for(protocol.capability(), self._timeout))

    async def _uids_after(self, client: aioimaplib.IMAP4, last_uid: int) -> list[int]:
        if self._known_uids and last_uid >= self._known_from:
            remaining = self._known_uids[bisect.bisect_right(self._known_uids, last_uid) :]
            if remaining:
                return remaining
        # The server answers SEARCH from this session's view of the folder, which takes
        # in mail delivered by others only when it syncs: NOOP is that sync (RFC 3501 6.1.2).
        response = await self._call("noop", client.noop())
        if response.result != "OK":
            raise InboxUnavailable(f"{self.name}: NOOP failed: {_status_text(response.lines)}")
        problems = untagged_problems(response.lines)
        if problems:
            await self._reselect(client, "noop", problems)
        response = await self._call("search", client.uid_search("UID", f"{last_uid + 1}:*", charset=None))
        if response.result != "OK":
            raise InboxUnavailable(f"{self.name}: UID SEARCH failed: {_status_text(response.lines)}")
        # "n:*" always matches the highest UID, even below n (RFC 3501 6.4.8): filter.
        uids = [uid for uid in parse_search_response(response.lines) if uid > last_uid]
        self._known_uids, self._known_from = uids, last_uid
        return uids

    async def _reselect(self, client: aioimaplib.IMAP4, during: str, problems: list[str]) -> None:
        """The server warned about the selected folder: SELECT it again and check its numbering.

        Same UIDVALIDITY: the session sees the folder as it is now, carry on. Another one:
        every UID of this session is void, so `InboxUnavailable` (the caller opens again).
        """
        self._log.warning("imap.server_warning", during=during, warning=problems[0])
        response = await self._call("select", client.select(aioimaplib.quoted(self._folder)))
        if response.result != "OK":
            raise InboxUnavailable(
                f"{self.name}: cannot select {self._folder!r} again after the server warned "
                f"({problems[0]}): {_status_text(response.lines)}"
            )
        uidvalidity = parse_uidvalidity(response.lines)
        if uidvalidity != self._uidvalidity:
            raise InboxUnavailable(
                f"{self.name}: {self._folder!r} changed under the session (UIDVALIDITY "
                f"{self._uidvalidity} -> {uidvalidity}): open it again"
            )
        self._known_uids, self._known_from = [], 0

    def _forget_uids_up_to(self, uid: int) -> None:
        self._known_uids = self._known_uids[bisect.bisect_right(self._known_uids, uid) :]

    async def _fetch_limited(
        self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int], max_bytes: int | None
    ) -> list[FetchedMessage]:
        if max_bytes is None:
            return await self._fetch(client, uidvalidity, uids)
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), MAX_FETCH_PER_COMMAND):
            chunk = uids[start : start + MAX_FETCH_PER_COMMAND]
            response = await self._call("fetch", client.uid("fetch", compress_uid_set(chunk), SIZE_ITEMS))
            if response.result != "OK":
                raise InboxUnavailable(f"{self.name}: UID FETCH failed: {_status_text(response.lines)}")
            sizes.update(
                (i.uid, i.size)
                for i in parse_fetch_response(response.lines)
                if i.uid is not None and i.size is not None
            )
        small = [u for u in uids if sizes.get(u, 0) <= max_bytes]
        large = [u for u in uids if sizes.get(u, 0) > max_bytes]
        found = await self._fetch(client, uidvalidity, small) if small else []
        if large:
            heads = await self._fetch(client, uidvalidity, large, HEADER_ITEMS)
            found += [
                FetchedMessage(
                    m.uid,
                    m.uidvalidity,
                    m.raw,
                    m.internal_date,
                    size=sizes.get(m.uid),
                    truncated=True,
                    size_limit=max_bytes,
                )
                for m in heads
            ]
        return sorted(found, key=lambda m: m.uid)

    async def _fetch(
        self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int], items: str = FETCH_ITEMS
    ) -> list[FetchedMessage]:
        by_uid: dict[int, FetchedMessage] = {}
        for start in range(0, len(uids), MAX_FETCH_PER_COMMAND):
            chunk = uids[start : start + MAX_FETCH_PER_COMMAND]
            response = await self._call("fetch", client.uid("fetch", compress_uid_set(chunk), items))
            if response.result != "OK":
                raise InboxUnavailable(f"{self.name}: UID FETCH failed: {_status_text(response.lines)}")
            wanted = set(chunk)
            for item in parse_fetch_response(response.lines):
                # Unsolicited FETCH responses (flag changes by another client) carry no body.
                if item.uid is None or item.body is None or item.uid not in wanted:
                    continue
                by_uid[item.uid] = FetchedMessage(
                    uid=item.uid,
                    uidvalidity=uidvalidity,
                    raw=item.body,
                    internal_date=item.internal_date,
                    size=item.size,
                )
        return [by_uid[uid] for uid in sorted(by_uid)]

    def _abort(self) -> None:
        """Forget the connection: close the socket and cancel aioimaplib's own tasks."""
        client, self._client = self._client, None
        self._uidvalidity = None
        self._known_uids, self._known_from = [], 0
        if client is None:
            return
        self._lost.set()
        tasks: list[Any] = [*client.tasks, *client.protocol.tasks]
        for task in tasks:
            task.cancel()
        if not client._client_task.done():
            client._client_task.cancel()
        transport = client.protocol.transport
        if transport is not None:
            transport.close()
