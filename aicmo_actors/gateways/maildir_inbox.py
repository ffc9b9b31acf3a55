"""The embedded inbox: a Maildir (default `./mail/inbox`) read as an `InboxSource`.

Messages get stable, ascending UIDs the way Dovecot gives them: a file `aicmo-uidlist`
in the Maildir's root maps each message's base name (the file name without its
":2,FLAGS" info suffix, so a mail client moving it from new/ to cur/ or flagging it
keeps its UID) to a UID. Files not yet listed get the next UIDs in name order, which is
delivery order for standard Maildir names ("<seconds>.<unique>.<host>").

UIDVALIDITY: chosen when the uidlist is created and kept in it. A counter file
`aicmo-uidvalidity` remembers the last one issued, so deleting `aicmo-uidlist` (to
renumber) always yields a new UIDVALIDITY and the inbox actor starts over. The first
value is `initial_uidvalidity` if given, else derived from the Maildir's absolute path;
deleting both files may therefore reuse the first value: delete only the uidlist.

We only read: messages are never moved, renamed or modified; the only writes are the
two files above, replaced atomically under an advisory lock (`aicmo-uidlist.lock`) so
two processes reading the same Maildir agree on the numbering. File I/O runs in a
worker thread so a large Maildir does not stall the event loop.

`raw` is the file's bytes as stored (Maildir files usually end lines with LF, where
IMAP gives CRLF); `internal_date` is the file's modification time, as Dovecot uses it.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from aicmo_actors.gateways.inbox_source import FetchedMessage, InboxUnavailable, header_block

#: How much of a message over the size limit is read to find its header block.
_HEAD_BYTES = 256 * 1024

__all__ = [
    "UIDLIST_FILE",
    "UIDVALIDITY_FILE",
    "MaildirInbox",
    "UidList",
    "assign_uids",
    "base_name",
    "format_uidlist",
    "parse_uidlist",
]

UIDLIST_FILE = "aicmo-uidlist"
UIDVALIDITY_FILE = "aicmo-uidvalidity"
_LOCK_FILE = "aicmo-uidlist.lock"
_HEADER = "aicmo-uidlist 1"
_MAX_UIDVALIDITY = 2**32 - 1


@dataclass
class UidList:
    """The persisted numbering: UIDVALIDITY, the next UID to give, and base name -> UID."""

    uidvalidity: int
    next_uid: int = 1
    uids: dict[str, int] = field(default_factory=dict)


def base_name(file_name: str) -> str:
    """A Maildir file's unique part: "1700.M1P2.host:2,S" -> "1700.M1P2.host"."""
    return file_name.split(":", 1)[0]


def parse_uidlist(text: str) -> UidList | None:
    """Read the uidlist file's text; None when it is not a uidlist we wrote."""
    lines = text.splitlines()
    if not lines:
        return None
    header = lines[0].split()
    if " ".join(header[:2]) != _HEADER or len(header) != 4:
        return None
    try:
        if not (header[2].startswith("V") and header[3].startswith("N")):
            return None
        uidvalidity, next_uid = int(header[2][1:]), int(header[3][1:])
        uids: dict[str, int] = {}
        for line in lines[1:]:
            if not line.strip():
                continue
            uid_text, name = line.split(" ", 1)
            uids[name] = int(uid_text)
    except ValueError:
        return None
    if not 1 <= uidvalidity <= _MAX_UIDVALIDITY or next_uid < 1:
        return None
    if uids and max(uids.values()) >= next_uid:
        return None
    return UidList(uidvalidity=uidvalidity, next_uid=next_uid, uids=uids)


def format_uidlist(uidlist: UidList) -> str:
    """The uidlist file's text: a header, then "UID base-name" lines in UID order."""
    lines = [f"{_HEADER} V{uidlist.uidvalidity} N{uidlist.next_uid}"]
    lines.extend(f"{uid} {name}" for name, uid in sorted(uidlist.uids.items(), key=lambda kv: kv[1]))
    return "\n".join(lines) + "\n"


def assign_uids(uidlist: UidList, present: set[str]) -> UidList:
    """The numbering after a scan: known names keep their UID, new ones get the next UIDs
    in name order, names no longer present are dropped. UIDs are never reused."""
    kept = {name: uid for name, uid in uidlist.uids.items() if name in present}
    next_uid = uidlist.next_uid
    for name in sorted(present - kept.keys()):
        kept[name] = next_uid
        next_uid += 1
    return UidList(uidvalidity=uidlist.uidvalidity, next_uid=next_uid, uids=kept)


def _derived_uidvalidity(path: Path) -> int:
    # Deterministic and never 0 (UIDVALIDITY is a non-zero 32-bit number).
    return zlib.crc32(str(path).encode("utf-8")) % (_MAX_UIDVALIDITY - 1) + 1


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class _Entry:
    uid: int
    path: Path


class MaildirInbox:
    """A Maildir as an `InboxSource` (read only; polls: `wait_for_new` returns False)."""

    supports_idle = False

    def __init__(self, path: str | os.PathLike[str], name: str, *, initial_uidvalidity: int | None = None):
        if initial_uidvalidity is not None and not 1 <= initial_uidvalidity <= _MAX_UIDVALIDITY:
            raise ValueError("initial_uidvalidity must be between 1 and 2**32 - 1")
        self.name = name
        self._root = Path(path).absolute()
        self._initial_uidvalidity = initial_uidvalidity
        self._uidvalidity: int | None = None
        # The last scan, by ascending UID; rescanned when nothing above last_uid is known.
        self._entries: list[_Entry] = []
        self._log = structlog.get_logger("aicmo").bind(gateway="maildir", mailbox=name)

    def __repr__(self) -> str:
        return f"MaildirInbox(name={self.name!r}, path={str(self._root)!r})"

    async def open(self) -> int:
        """Create the Maildir if missing, number its messages; return the UIDVALIDITY."""
        try:
            uidvalidity, entries = await asyncio.to_thread(self._scan)
        except OSError as exc:
            raise InboxUnavailable(f"{self.name}: cannot read the Maildir {self._root}: {exc}") from exc
        self._uidvalidity, self._entries = uidvalidity, entries
        self._log.info("maildir.opened", path=str(self._root), uidvalidity=uidvalidity)
        return uidvalidity

    async def fetch_after(self, last_uid: int, batch: int, max_bytes: int | None = None) -> list[FetchedMessage]:
        """Messages with UID > `last_uid`, ascending, at most `batch` (over `max_bytes`: the
        header block only, marked `truncated`)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if self._uidvalidity is None:
            raise InboxUnavailable(f"{self.name}: not open (call open() first)")
        try:
            if not self._entries or self._entries[-1].uid <= last_uid:
                uidvalidity, self._entries = await asyncio.to_thread(self._scan)
                if uidvalidity != self._uidvalidity:
                    # The uidlist was deleted while we were reading: our UIDs are void.
                    self._uidvalidity = None
                    raise InboxUnavailable(f"{self.name}: UIDVALIDITY changed, open() again")
            start = bisect.bisect_right([entry.uid for entry in self._entries], last_uid)
            return await asyncio.to_thread(self._read, self._entries[start:], batch, self._uidvalidity, max_bytes)
        except OSError as exc:
            raise InboxUnavailable(f"{self.name}: cannot read the Maildir {self._root}: {exc}") from exc

    async def wait_for_new(self, timeout: float) -> bool:
        """A Maildir has no push: always False at once, the caller polls."""
        return False

    async def close(self) -> None:
        """Nothing to release; the numbering is already on disk."""
        self._uidvalidity = None
        self._entries = []

    # -- blocking helpers, run in a worker thread -------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._root / _LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _scan(self) -> tuple[int, list[_Entry]]:
        for sub in ("new", "cur", "tmp"):
            (self._root / sub).mkdir(parents=True, exist_ok=True)
        # List under the lock: a listing older than the uidlist it updates would drop
        # (and later renumber) a message another reader has just numbered.
        with self._locked():
            files: dict[str, Path] = {}
            # new/ before cur/: a message moved from new/ to cur/ meanwhile is then seen
            # at least once, never missed.
            for sub in ("new", "cur"):
                with os.scandir(self._root / sub) as listing:
                    for entry in listing:
                        if entry.name.startswith(".") or not entry.is_file():
                            continue
                        files[base_name(entry.name)] = Path(entry.path)
            uidlist_path = self._root / UIDLIST_FILE
            try:
                current = parse_uidlist(uidlist_path.read_text(encoding="utf-8"))
                if current is None:
                    self._log.warning("maildir.uidlist_unreadable", path=str(uidlist_path))
            except FileNotFoundError:
                current = None
            if current is None:
                current = UidList(uidvalidity=self._new_uidvalidity())
            updated = assign_uids(current, set(files))
            if updated != current or not uidlist_path.exists():
                _write_atomically(uidlist_path, format_uidlist(updated))
        entries = sorted(
            (_Entry(uid=uid, path=files[name]) for name, uid in updated.uids.items()),
            key=lambda entry: entry.uid,
        )
        return updated.uidvalidity, entries

    def _new_uidvalidity(self) -> int:
        counter_path = self._root / UIDVALIDITY_FILE
        try:
            previous: int | None = int(counter_path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            previous = None
        if previous is None:
            value = self._initial_uidvalidity or _derived_uidvalidity(self._root)
        else:
            value = previous % _MAX_UIDVALIDITY + 1
        _write_atomically(counter_path, f"{value}\n")
        self._log.info("maildir.new_uidvalidity", uidvalidity=value)
        return value

    def _read(
        self, entries: list[_Entry], batch: int, uidvalidity: int, max_bytes: int | None = None
    ) -> list[FetchedMessage]:
        """Up to `batch` messages from `entries`, skipping files deleted since the scan."""
        messages: list[FetchedMessage] = []
        for entry in entries:
            if len(messages) == batch:
                break
            path = self._locate(entry.path)
            if path is None:
                continue  # deleted since the scan
            try:
                stat = path.stat()
                truncated = max_bytes is not None and stat.st_size > max_bytes
                if truncated:
                    with path.open("rb") as file:
                        raw = header_block(file.read(_HEAD_BYTES))
                else:
                    raw = path.read_bytes()
            except FileNotFoundError:
                continue
            messages.append(
                FetchedMessage(
                    uid=entry.uid,
                    uidvalidity=uidvalidity,
                    raw=raw,
                    internal_date=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                    size=stat.st_size,
                    truncated=truncated,
                    size_limit=max_bytes if truncated else None,
                )
            )
        return messages

    def _locate(self, path: Path) -> Path | None:
        """The file's current path: a mail client may have moved it to cur/ or flagged it."""
        if path.exists():
            return path
        wanted = base_name(path.name)
        for sub in ("cur", "new"):
            with os.scandir(self._root / sub) as listing:
                for entry in listing:
                    if base_name(entry.name) == wanted:
                        return Path(entry.path)
        return None
