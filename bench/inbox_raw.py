"""Helpers for the inbox benchmark: fill a real Dovecot mailbox, time a raw UID FETCH.

- `append_many(conn_info, raws)`: real IMAP APPENDs into the user's folder, so Dovecot
  indexes the mail exactly as delivered mail. aioimaplib sends one APPEND and waits for
  its answer (about 1,000 messages/s here), so this speaks IMAP itself on one connection:
  MULTIAPPEND (RFC 3502, many messages per command, one transaction) with non-synchronizing
  literals (LITERAL+, RFC 7888, no round trip per message). Dovecot offers both.
- `raw_uid_fetch_all(conn_info)`: the baseline the pipeline is compared with: aioimaplib,
  UID SEARCH ALL, then UID FETCH (UID BODY.PEEK[] INTERNALDATE) in batches, nothing else.
  Batches hold at most `MAX_FETCH_PER_COMMAND` (100) messages, the same cap `ImapSource`
  uses: larger ones can crash aioimaplib's recursive parser (aioimaplib issue #118).

`python -m bench.inbox_raw` starts a private Dovecot (tests/plugins/imap.py, so run it
from the repository root with the test dependencies installed), appends 500 messages,
times the raw fetch and prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from typing import Protocol

import aioimaplib

from aicmo_actors.gateways.imap import FETCH_ITEMS, MAX_FETCH_PER_COMMAND

__all__ = ["ImapConnInfo", "append_many", "make_messages", "raw_uid_fetch_all"]


class _User(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...


class ImapConnInfo(Protocol):
    """What the helpers need to reach a server (tests.plugins.imap.DovecotServer has it)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    def user(self, username: str = "test") -> _User: ...


def _quoted(text: str) -> bytes:
    return ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()


class _LineReader:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def until_tagged(self, tag: bytes) -> bytes:
        """Read the response up to its tagged line; return all of it, or raise if not OK."""
        seen = []
        while True:
            line = await self._reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            seen.append(line)
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise RuntimeError(f"IMAP command {tag!r} failed: {line!r}")
                return b"".join(seen)


async def append_many(
    conn_info: ImapConnInfo,
    raws: Sequence[bytes],
    *,
    username: str = "test",
    folder: str = "INBOX",
    per_command: int = 500,
) -> int:
    """APPEND every raw message to the folder over one connection; return how many."""
    user = conn_info.user(username)
    reader, writer = await asyncio.open_connection(conn_info.host, conn_info.port)
    lines = _LineReader(reader)
    try:
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"unexpected greeting {greeting!r}")
        login = b"l1 LOGIN " + _quoted(user.username) + b" " + _quoted(user.password)
        writer.write(login + b"\r\nc1 CAPABILITY\r\n")
        await writer.drain()
        await lines.until_tagged(b"l1")
        # After login: servers list more capabilities (MULTIAPPEND among them) than before.
        capabilities = set((await lines.until_tagged(b"c1")).upper().split())
        missing = {b"LITERAL+", b"MULTIAPPEND"} - capabilities
        if missing:
            raise RuntimeError(f"the server lacks {sorted(m.decode() for m in missing)}")
        for number, start in enumerate(range(0, len(raws), per_command)):
            tag = f"a{number}".encode()
            parts = [tag, b" APPEND ", _quoted(folder)]
            for raw in raws[start : start + per_command]:
                parts += [b" {", str(len(raw)).encode(), b"+}\r\n", raw]
            parts.append(b"\r\n")
            writer.write(b"".join(parts))
            await writer.drain()
            await lines.until_tagged(tag)
        writer.write(b"z1 LOGOUT\r\n")
        await writer.drain()
        await lines.until_tagged(b"z1")
    finally:
        writer.close()
        await writer.wait_closed()
    return len(raws)


async def raw_uid_fetch_all(
    conn_info: ImapConnInfo,
    *,
    username: str = "test",
    folder: str = "INBOX",
    batch: int = MAX_FETCH_PER_COMMAND,
) -> tuple[int, float]:
    """UID FETCH every message's body with plain aioimaplib; return (count, seconds)."""
    user = conn_info.user(username)
    client = aioimaplib.IMAP4(host=conn_info.host, port=conn_info.port, timeout=60)
    await client.wait_hello_from_server()
    try:
        response = await client.login(user.username, user.password)
        if response.result != "OK":
            raise RuntimeError(f"login failed: {response.lines!r}")
        started = time.perf_counter()
        response = await client.select(aioimaplib.quoted(folder))
        if response.result != "OK":
            raise RuntimeError(f"select failed: {response.lines!r}")
        search = await client.uid_search("ALL", charset=None)
        uids = sorted({int(t) for line in search.lines[:-1] for t in bytes(line).split()})
        count = 0
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            response = await client.uid("fetch", f"{chunk[0]}:{chunk[-1]}", FETCH_ITEMS)
            if response.result != "OK":
                raise RuntimeError(f"fetch failed: {response.lines[-1]!r}")
            count += sum(isinstance(line, bytearray) for line in response.lines)
        return count, time.perf_counter() - started
    finally:
        await client.logout()


def make_messages(count: int, seed: int = 1) -> list[bytes]:
    """Deterministic replies of varied size (a few hundred bytes to ~20 kB)."""
    rng = random.Random(seed)
    words = b"thanks interested pricing call next week send details not now unsubscribe".split()
    messages = []
    for n in range(count):
        body_lines = [b" ".join(rng.choice(words) for _ in range(12)) for _ in range(rng.randint(3, 250))]
        messages.append(
            b"From: Prospect %d <p%d@client.example>\r\n"
            b"To: alex@outreach.example.com\r\n"
            b"Subject: Re: quick question %d\r\n"
            b"Message-ID: <bench-%d@client.example>\r\n"
            b"In-Reply-To: <outreach-%d@outreach.example.com>\r\n"
            b"\r\n" % (n, n, n, n, n) + b"\r\n".join(body_lines) + b"\r\n"
        )
    return messages


async def _main(count: int) -> dict[str, object]:
    from tests.plugins.imap import start_dovecot

    server = start_dovecot()
    try:
        raws = make_messages(count)
        started = time.perf_counter()
        await append_many(server, raws)
        append_s = time.perf_counter() - started
        fetched, seconds = await raw_uid_fetch_all(server)
        if fetched != count:
            raise RuntimeError(f"appended {count} messages but fetched {fetched}")
        return {
            "bench": "inbox_raw",
            "messages": count,
            "bytes": sum(len(r) for r in raws),
            "append_per_s": round(count / append_s, 1),
            "raw_fetch_per_s": round(fetched / seconds, 1),
        }
    finally:
        server.stop()


def main(count: int = 500) -> None:
    """Append `count` messages to a private Dovecot, time the raw fetch, print JSON."""
    print(json.dumps(asyncio.run(_main(count))))


if __name__ == "__main__":
    main()
