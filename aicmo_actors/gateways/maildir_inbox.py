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
two files above, under an advisory lock (`aicmo-uidlist.lock`) so two processes reading
the same Maildir agree on the numbering. File I/O runs in a worker thread so a large
Maildir does not stall the event loop.

Incremental (issue 22): the numbering is kept in memory. A poll lists the directories'
names (new/ always; cur/ only when its modification time moved) and only names not yet
numbered cost anything more: under the lock, lines another reader appended since are read,
then the new names' lines are appended to the uidlist and synced, one short write per poll
that found mail, instead of rewriting the whole list. The list is rewritten whole (atomically)
only when it is created, when a torn last line (a crash mid-append) is found, and at `open()`
when names of deleted messages make up most of it. A uidlist whose identity changed under us
(deleted, replaced) is read again from the start.

`raw` is the file's bytes as stored (Maildir files usually end lines with LF, where
IMAP gives CRLF); `internal_date` is the file's modification time, as Dovecot uses it.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import os
import tempfile
import time
import zlib
from collections.abc import Collection, Iterator
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
    """Read the uidlist file's text; None when it is not a uidlist we wrote.

    The header's N is the next UID when the file was last written whole; lines appended
    since carry UIDs from there on, ascending. A last line without its newline (a crash in
    the middle of an append) is not part of the list."""
    lines = text.split("\n")
    lines.pop()  # "" after the final newline, or a torn line
    if not lines:
        return None
    header = lines[0].split()
    if " ".join(header[:2]) != _HEADER or len(header) != 4:
        return None
    try:
        if not (header[2].startswith("V") and header[3].startswith("N")):
            return None
        uidvalidity, next_uid = int(header[2][1:]), int(header[3][1:])
        uids = _parse_lines(lines[1:])
    except ValueError:
        return None
    if uids is None or not 1 <= uidvalidity <= _MAX_UIDVALIDITY or next_uid < 1:
        return None
    return UidList(uidvalidity=uidvalidity, next_uid=max([next_uid, *(uid + 1 for uid in uids.values())]), uids=uids)


def _parse_lines(lines: list[str], after: int = 0) -> dict[str, int] | None:
    """ "UID name" lines, each UID above the one before (and above `after` once past the
    header's block, which `format_uidlist` writes in UID order); None when they are not."""
    uids: dict[str, int] = {}
    last = after
    for line in lines:
        if not line.strip():
            continue
        uid_text, name = line.split(" ", 1)
        uid = int(uid_text)
        if uid <= last or name in uids:
            return None
        uids[name] = last = uid
    return uids


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


def _stat(path: str | None) -> os.stat_result | None:
    """The file's stat, None when there is no path or no file there (any more)."""
    if path is None:
        return None
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class _Entry:
    uid: int
    name: str  # the base name


class _UidlistReplaced(Exception):
    """The uidlist on disk is not the one we numbered from (deleted, replaced, unreadable)."""


#: At `open()`, the uidlist is rewritten without the names of deleted messages when they
#: are at least this many and at least as many as the messages present.
_COMPACT_AFTER = 1000


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
        self._reset()
        self._log = structlog.get_logger("aicmo").bind(gateway="maildir", mailbox=name)

    def _reset(self) -> None:
        # The numbering as read from (and appended to) the uidlist file.
        self._numbering: UidList | None = None
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of that file
        self._file_read = 0  # bytes of it read so far (always ends at a newline)
        # Where each present message is (base name -> path), and cur/'s state when listed.
        self._where: dict[str, str] = {}
        self._cur_seen: tuple[int, int] | None = None
        self._cur_names: dict[str, str] = {}
        # Present, numbered messages by ascending UID; rescanned when nothing above last_uid is known.
        self._entries: list[_Entry] = []
        self._listed: set[str] = set()  # their names

    def __repr__(self) -> str:
        return f"MaildirInbox(name={self.name!r}, path={str(self._root)!r})"

    async def open(self) -> int:
        """Create the Maildir if missing, number its messages; return the UIDVALIDITY."""
        self._reset()
        try:
            uidvalidity = await asyncio.to_thread(self._scan, True)
        except OSError as exc:
            raise InboxUnavailable(f"{self.name}: cannot read the Maildir {self._root}: {exc}") from exc
        self._uidvalidity = uidvalidity
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
                uidvalidity = await asyncio.to_thread(self._scan, False)
                if uidvalidity != self._uidvalidity:
                    # The uidlist was deleted while we were reading: our UIDs are void.
                    self._uidvalidity = None
                    raise InboxUnavailable(f"{self.name}: UIDVALIDITY changed, open() again")
            start = bisect.bisect_right(self._entries, last_uid, key=lambda entry: entry.uid)
            return await asyncio.to_thread(self._read, self._entries[start:], batch, self._uidvalidity, max_bytes)
        except OSError as exc:
            raise InboxUnavailable(f"{self.name}: cannot read the Maildir {self._root}: {exc}") from exc

    async def wait_for_new(self, timeout: float) -> bool:
        """A Maildir has no push: always False at once, the caller polls."""
        return False

    async def close(self) -> None:
        """Nothing to release; the numbering is already on disk."""
        self._uidvalidity = None
        self._reset()

    # -- blocking helpers, run in a worker thread -------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._root / _LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _list(self, *, full: bool) -> dict[str, str]:
        """Base name -> path of every message in new/ and cur/. cur/ is listed again only when
        its modification time or inode moved (mail arrives in new/; cur/ changes when a mail
        client moves or flags a message), or when `full`."""
        names: dict[str, str] = {}
        # new/ before cur/: a message moved from new/ to cur/ meanwhile is then seen at
        # least once, never missed.
        new_dir = os.path.join(self._root, "new")
        with os.scandir(new_dir) as listing:
            for entry in listing:
                if not entry.name.startswith(".") and entry.is_file():
                    names[entry.name.split(":", 1)[0]] = entry.path
        cur_dir = os.path.join(self._root, "cur")
        stat = os.stat(cur_dir)
        seen = (stat.st_ino, stat.st_mtime_ns)
        # A listing made less than 2 s after cur/ last changed may have missed a change made
        # within the file system's timestamp granularity: such a listing is not trusted later.
        if full or seen != self._cur_seen:
            cur_names: dict[str, str] = {}
            with os.scandir(cur_dir) as listing:
                for entry in listing:
                    if not entry.name.startswith(".") and entry.is_file():
                        cur_names[entry.name.split(":", 1)[0]] = entry.path
            settled = time.time_ns() - stat.st_mtime_ns > 2_000_000_000
            self._cur_seen = seen if settled else None
            self._cur_names = cur_names
        for name, path in self._cur_names.items():
            names.setdefault(name, path)
        return names

    def _scan(self, opening: bool) -> int:
        """List the Maildir and number what is new; the UIDVALIDITY."""
        if opening:
            for sub in ("new", "cur", "tmp"):
                (self._root / sub).mkdir(parents=True, exist_ok=True)
            # Under the lock: the listing may drop deleted names from the uidlist (compaction),
            # and one older than the uidlist would drop a message another reader just numbered.
            with self._locked():
                present = self._list(full=True)
                self._number(present.keys(), compact=True)
        else:
            # Appending never drops a name: a listing made before taking the lock is safe.
            present = self._list(full=False)
        # Listed names are numbered already: only the others can need a UID.
        listed = self._listed
        unlisted = [name for name in present if name not in listed]
        assert self._numbering is not None
        if not opening and any(name not in self._numbering.uids for name in unlisted):
            with self._locked():
                self._number(unlisted, compact=False)
            if self._listed is not listed:  # the uidlist was read again from the start
                listed, unlisted = self._listed, list(present)
        numbering = self._numbering
        assert numbering is not None
        fresh = [_Entry(uid=numbering.uids[n], name=n) for n in unlisted if n in numbering.uids]
        if fresh:
            fresh.sort(key=lambda entry: entry.uid)
            if self._entries and fresh[0].uid < self._entries[-1].uid:
                self._entries = sorted(self._entries + fresh, key=lambda entry: entry.uid)
            else:
                self._entries.extend(fresh)
            listed.update(entry.name for entry in fresh)
        self._where = present
        return numbering.uidvalidity

    def _number(self, present: Collection[str], *, compact: bool) -> None:
        """Under the lock: catch up with the uidlist file, append UIDs for `present` names it
        lacks (in name order). A file that is not the one we read from is read whole again;
        if our UIDVALIDITY is no longer its, the caller sees the new one and gives up."""
        path = self._root / UIDLIST_FILE
        try:
            self._catch_up(path)
        except _UidlistReplaced:
            self._numbering, self._file_id, self._file_read = None, None, 0
            self._entries, self._listed = [], set()
            self._catch_up(path)
        numbering = self._numbering
        assert numbering is not None
        missing = sorted(name for name in present if name not in numbering.uids)
        lines = []
        for name in missing:
            numbering.uids[name] = numbering.next_uid
            lines.append(f"{numbering.next_uid} {name}\n")
            numbering.next_uid += 1
        if compact and self._should_compact(names := set(present)):
            self._rewrite(path, assign_uids(numbering, names))
        elif lines:
            data = "".join(lines).encode("utf-8")
            with open(path, "ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._file_read += len(data)

    def _should_compact(self, present: set[str]) -> bool:
        assert self._numbering is not None
        gone = len(self._numbering.uids) - len(present & self._numbering.uids.keys())
        return gone >= _COMPACT_AFTER and gone >= len(present)

    def _catch_up(self, path: Path) -> None:
        """Read what was appended to the uidlist since we last read it (the whole file the
        first time, a new one when it is missing or unreadable)."""
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            if self._numbering is not None:
                raise _UidlistReplaced() from None
            self._rewrite(path, UidList(uidvalidity=self._new_uidvalidity()))
            return
        with handle:
            stat = os.fstat(handle.fileno())
            file_id = (stat.st_dev, stat.st_ino)
            if self._numbering is not None and (file_id != self._file_id or stat.st_size < self._file_read):
                raise _UidlistReplaced()
            if self._numbering is not None and stat.st_size == self._file_read:
                return
            handle.seek(self._file_read)
            data = handle.read()
        text = data.decode("utf-8", "replace")
        torn = not text.endswith("\n")
        if self._numbering is None:
            current = parse_uidlist(text)
            if current is None:
                self._log.warning("maildir.uidlist_unreadable", path=str(path))
                self._rewrite(path, UidList(uidvalidity=self._new_uidvalidity()))
                return
            self._numbering, self._file_id = current, file_id
        else:
            appended = _parse_lines(text.split("\n")[:-1], after=self._numbering.next_uid - 1)
            if appended is None:
                raise _UidlistReplaced()
            self._numbering.uids.update(appended)
            self._numbering.next_uid = max([self._numbering.next_uid, *(uid + 1 for uid in appended.values())])
        self._file_read += len(data)
        if torn:
            # A crash in the middle of an append: write the list whole, without that line.
            self._rewrite(path, self._numbering)

    def _rewrite(self, path: Path, numbering: UidList) -> None:
        text = format_uidlist(numbering)
        _write_atomically(path, text)
        stat = path.stat()
        self._numbering = UidList(numbering.uidvalidity, numbering.next_uid, dict(numbering.uids))
        self._file_id, self._file_read = (stat.st_dev, stat.st_ino), len(text.encode("utf-8"))

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
            path = self._where.get(entry.name)
            stat = _stat(path)
            if stat is None:  # moved (a mail client read or flagged it) or deleted since the scan
                path = self._locate(entry.name)
                stat = _stat(path)
            if path is None or stat is None:
                continue
            try:
                truncated = max_bytes is not None and stat.st_size > max_bytes
                with open(path, "rb") as file:
                    raw = header_block(file.read(_HEAD_BYTES)) if truncated else file.read()
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

    def _locate(self, wanted: str) -> str | None:
        """The file's current path: a mail client may have moved it to cur/ or flagged it."""
        for sub in ("cur", "new"):
            with os.scandir(self._root / sub) as listing:
                for entry in listing:
                    if base_name(entry.name) == wanted:
                        return entry.path
        return None
