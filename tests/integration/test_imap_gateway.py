"""ImapSource against a real Dovecot (tests/plugins/imap.py), plus its response parsers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import aioimaplib
import anyio
import pytest
import structlog

from aicmo_actors.gateways.imap import (
    ImapSource,
    compress_uid_set,
    parse_fetch_response,
    parse_internaldate,
    parse_search_response,
    parse_uidvalidity,
)
from aicmo_actors.gateways.inbox_source import InboxAuthFailed, InboxSource, InboxUnavailable
from bench.inbox_raw import append_many, raw_uid_fetch_all
from tests.plugins.imap import DovecotServer, free_port

# A deadline well under the source's own 30 s command timeout: a test that needs it to
# pass proves the behaviour is not "eventually, by timeout".
PROMPT = 8.0


def reply(n: int, body: str = "Sounds interesting, tell me more.") -> bytes:
    return (
        f"From: Prospect {n} <prospect{n}@client.example>\r\n"
        f"To: alex@outreach.example.com\r\n"
        f"Subject: Re: quick question {n}\r\n"
        f"Message-ID: <reply-{n}@client.example>\r\n"
        f"In-Reply-To: <outreach-{n}@outreach.example.com>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def source_for(server: DovecotServer, **kwargs: object) -> ImapSource:
    options: dict[str, object] = {"tls": "none", "timeout": 30.0}
    options.update(kwargs)
    user = server.user("test")
    return ImapSource(server.host, server.port, user.username, user.password, **options)  # type: ignore[arg-type]


async def flags_of(server: DovecotServer, uid: int) -> bytes:
    client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=10)
    await client.wait_hello_from_server()
    await client.login("test", "pass")
    await client.select("INBOX")
    response = await client.uid("fetch", str(uid), "(FLAGS)")
    await client.logout()
    return b" ".join(bytes(line) for line in response.lines)


# --- against Dovecot ---------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.anyio
async def test_open_reports_the_servers_uidvalidity(imap_server: DovecotServer) -> None:
    source = source_for(imap_server)
    assert isinstance(source, InboxSource)
    try:
        assert await source.open() == imap_server.uidvalidity()
        assert source.supports_idle is True
        assert source.name == "test/INBOX"
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_fetch_after_zero_returns_every_message_in_uid_order_with_exact_bytes(
    imap_server: DovecotServer,
) -> None:
    # Unusual shapes: a body line that looks like a literal, parentheses, 8-bit bytes, and
    # a message big enough to arrive in many socket reads.
    odd = reply(2, "Call me (maybe) {5}\r\n) FETCH (UID 999\r\n").replace(b"maybe", "peut-être".encode())
    big = reply(3, "x" * 70) + (b"line of a long reply " * 4 + b"\r\n") * 4000
    raws = [reply(1), odd, big]
    uids = await imap_server.append(*raws)
    source = source_for(imap_server)
    try:
        uidvalidity = await source.open()
        messages = await source.fetch_after(0, 100)
    finally:
        await source.close()
    assert [m.uid for m in messages] == uids == sorted(uids)
    assert [crlf(m.raw) for m in messages] == [crlf(r) for r in raws]
    assert all(m.uidvalidity == uidvalidity for m in messages)
    for message in messages:
        assert message.internal_date is not None
        assert abs(message.internal_date - datetime.now(UTC)) < timedelta(hours=1)
    # BODY.PEEK: reading does not mark the prospect's reply as read for the human.
    assert b"\\Seen" not in await flags_of(imap_server, uids[0])


@pytest.mark.integration
@pytest.mark.anyio
async def test_fetch_after_last_uid_returns_only_newer_messages(imap_server: DovecotServer) -> None:
    first = await imap_server.append(reply(1), reply(2))
    source = source_for(imap_server)
    try:
        await source.open()
        assert [m.uid for m in await source.fetch_after(0, 10)] == first
        assert await source.fetch_after(first[-1], 10) == []
        later = await imap_server.append(reply(3), reply(4))
        newer = await source.fetch_after(first[-1], 10)
        assert [m.uid for m in newer] == later
        assert [crlf(m.raw) for m in newer] == [reply(3), reply(4)]
        assert [m.uid for m in await source.fetch_after(first[0], 10)] == [first[1], *later]
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_uid_range_to_star_pitfall_is_filtered(imap_server: DovecotServer) -> None:
    uids = await imap_server.append(reply(1), reply(2))
    source = source_for(imap_server)
    try:
        await source.open()
        # The server itself answers "UID SEARCH UID n:*" with the highest UID even when
        # it is below n (RFC 3501): the source must not hand that message out again.
        assert await source.fetch_after(uids[-1], 10) == []
        assert await source.fetch_after(uids[-1] + 1000, 10) == []
    finally:
        await source.close()
    client = aioimaplib.IMAP4(host=imap_server.host, port=imap_server.port, timeout=10)
    await client.wait_hello_from_server()
    await client.login("test", "pass")
    await client.select("INBOX")
    response = await client.uid_search("UID", f"{uids[-1] + 1000}:*", charset=None)
    await client.logout()
    assert parse_search_response(response.lines) == [uids[-1]]


@pytest.mark.integration
@pytest.mark.anyio
async def test_fetch_in_batches_then_new_mail_after_the_sweep(imap_server: DovecotServer) -> None:
    uids = await imap_server.append(*(reply(n) for n in range(7)))
    source = source_for(imap_server)
    seen: list[int] = []
    sizes: list[int] = []
    try:
        await source.open()
        last = 0
        for _ in range(10):  # bounded: a source that repeats itself must fail, not hang
            batch = await source.fetch_after(last, 3)
            if not batch:
                break
            sizes.append(len(batch))
            seen.extend(m.uid for m in batch)
            last = batch[-1].uid
        assert seen == uids
        assert sizes == [3, 3, 1]
        # The source remembers the UIDs of its last search; new mail must still be found.
        new = await imap_server.append(reply(8))
        assert [m.uid for m in await source.fetch_after(last, 3)] == new
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_big_batch_of_tiny_messages(imap_server: DovecotServer) -> None:
    # Thousands of response lines in one socket read crash aioimaplib's recursive parser
    # (aioimaplib #118) unless the source splits the batch into smaller UID FETCHes.
    raws = [b"Subject: %d\r\n\r\nok\r\n" % n for n in range(2000)]
    assert await append_many(imap_server, raws) == 2000
    source = source_for(imap_server)
    try:
        await source.open()
        messages = await source.fetch_after(0, 5000)
    finally:
        await source.close()
    assert [m.raw for m in messages] == raws
    assert [m.uid for m in messages] == sorted(m.uid for m in messages)
    # The benchmark's baseline reads the same mailbox.
    count, seconds = await raw_uid_fetch_all(imap_server)
    assert count == 2000 and seconds > 0


@pytest.mark.integration
@pytest.mark.anyio
async def test_messages_expunged_between_search_and_fetch_are_skipped(
    imap_server: DovecotServer,
) -> None:
    uids = await imap_server.append(*(reply(n) for n in range(4)))
    source = source_for(imap_server)
    try:
        await source.open()
        assert [m.uid for m in await source.fetch_after(0, 1)] == uids[:1]
        # The search above found all four; two vanish before they are fetched.
        await asyncio.to_thread(
            imap_server.doveadm, "expunge", "-u", "test", "mailbox", "INBOX",
            "uid", f"{uids[1]}:{uids[2]}",
        )  # fmt: skip
        assert [m.uid for m in await source.fetch_after(uids[0], 1)] == [uids[3]]
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_idle_wakes_up_on_an_append_from_another_connection(
    imap_server: DovecotServer,
) -> None:
    source = source_for(imap_server)
    try:
        await source.open()
        assert await source.fetch_after(0, 10) == []
        # Nothing arrives: the wait ends by its timeout and says so.
        assert await source.wait_for_new(timeout=0.2) is False

        waiting = asyncio.ensure_future(source.wait_for_new(timeout=20))
        client = source._client  # the test needs to know when IDLE is really active
        assert client is not None
        await asyncio.wait_for(client.protocol.wait_for_idle_response(), PROMPT)
        uids = await imap_server.append(reply(1))
        assert await asyncio.wait_for(waiting, PROMPT) is True
        # The connection is usable after IDLE ends.
        assert [m.uid for m in await source.fetch_after(0, 10)] == uids
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_cancelling_a_wait_drops_the_connection_and_open_recovers(
    imap_server: DovecotServer,
) -> None:
    uids = await imap_server.append(reply(1))
    source = source_for(imap_server)
    try:
        await source.open()
        waiting = asyncio.ensure_future(source.wait_for_new(timeout=25))
        client = source._client
        assert client is not None
        await asyncio.wait_for(client.protocol.wait_for_idle_response(), PROMPT)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert source._client is None  # no half-ended IDLE left behind
        with pytest.raises(InboxUnavailable):
            await source.fetch_after(0, 10)
        await source.open()
        assert [m.uid for m in await source.fetch_after(0, 10)] == uids
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_dropped_connection_surfaces_as_unavailable_and_open_recovers(
    imap_server: DovecotServer,
) -> None:
    uids = await imap_server.append(reply(1))
    source = source_for(imap_server)
    try:
        await source.open()
        await imap_server.akick("test")
        with anyio.fail_after(PROMPT), pytest.raises(InboxUnavailable):
            await source.fetch_after(0, 10)
        # Until it is opened again, the source keeps saying so.
        with pytest.raises(InboxUnavailable):
            await source.fetch_after(0, 10)
        await source.open()
        assert [m.uid for m in await source.fetch_after(0, 10)] == uids

        # A drop in the middle of IDLE ends the wait with the same error, at once.
        waiting = asyncio.ensure_future(source.wait_for_new(timeout=25))
        client = source._client
        assert client is not None
        await asyncio.wait_for(client.protocol.wait_for_idle_response(), PROMPT)
        await imap_server.akick("test")
        with anyio.fail_after(PROMPT), pytest.raises(InboxUnavailable):
            await waiting
        await source.open()
        assert [m.uid for m in await source.fetch_after(0, 10)] == uids
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_changed_uidvalidity_is_reported_by_open(imap_server: DovecotServer) -> None:
    await imap_server.append(reply(1))
    source = source_for(imap_server)
    try:
        before = await source.open()
        await imap_server.aset_uidvalidity(before + 1000)
        # Dovecot ends a session whose folder was renumbered under it ("view is now
        # inconsistent"), so the open source cannot hand out UIDs of the wrong numbering.
        with anyio.fail_after(PROMPT), pytest.raises(InboxUnavailable):
            await source.fetch_after(0, 10)
        after = await source.open()
        assert after == before + 1000 != before
        messages = await source.fetch_after(0, 10)
        assert [m.uidvalidity for m in messages] == [after]
    finally:
        await source.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_wrong_password_is_auth_failed_and_never_logged(
    imap_server: DovecotServer,
) -> None:
    secret = "s3cret-WRONG-pw"
    source = ImapSource(imap_server.host, imap_server.port, "test", secret, tls="none")
    with structlog.testing.capture_logs() as logs, pytest.raises(InboxAuthFailed) as caught:
        await source.open()
    assert isinstance(caught.value, InboxUnavailable)
    assert secret not in str(caught.value)
    assert secret not in repr(source)
    assert secret not in repr(logs)
    # A good login logs, without the password either.
    good = ImapSource(imap_server.host, imap_server.port, "other", "otherpass", tls="none")
    with structlog.testing.capture_logs() as logs:
        await good.open()
        await good.close()
    assert any(entry["event"] == "imap.opened" for entry in logs)
    assert "otherpass" not in repr(logs)


@pytest.mark.integration
@pytest.mark.anyio
async def test_refused_connection_and_missing_folder_are_unavailable(
    imap_server: DovecotServer,
) -> None:
    nobody = ImapSource("127.0.0.1", free_port(), "test", "pass", tls="none", timeout=5)
    with anyio.fail_after(PROMPT), pytest.raises(InboxUnavailable):
        await nobody.open()
    missing = source_for(imap_server, folder="No Such Folder")
    with pytest.raises(InboxUnavailable) as caught:
        await missing.open()
    assert not isinstance(caught.value, InboxAuthFailed)
    with pytest.raises(InboxUnavailable):
        await missing.fetch_after(0, 1)


@pytest.mark.integration
@pytest.mark.anyio
async def test_another_user_and_folder_are_separate_mailboxes(imap_server: DovecotServer) -> None:
    folder = "Replies Folder"  # a space: the name must be sent quoted
    if folder not in await asyncio.to_thread(imap_server.doveadm, "mailbox", "list", "-u", "other"):
        await asyncio.to_thread(imap_server.doveadm, "mailbox", "create", "-u", "other", folder)
    await asyncio.to_thread(imap_server.empty, "other", folder)
    inbox_uids = await imap_server.append(reply(4), username="other")
    folder_uids = await imap_server.append(reply(5), reply(6), username="other", folder=folder)
    other = imap_server.user("other")
    source = ImapSource(
        imap_server.host, imap_server.port, other.username, other.password, folder=folder,
        tls="none",
    )  # fmt: skip
    try:
        await source.open()
        assert source.name == f"other/{folder}"
        messages = await source.fetch_after(0, 10)
        assert [m.uid for m in messages] == folder_uids
        assert [crlf(m.raw) for m in messages] == [reply(5), reply(6)]
    finally:
        await source.close()
    assert len(inbox_uids) == 1
    tests_inbox = source_for(imap_server)
    try:
        await tests_inbox.open()
        assert await tests_inbox.fetch_after(0, 10) == []  # user "test" got none of it
    finally:
        await tests_inbox.close()


@pytest.mark.integration
@pytest.mark.anyio
async def test_implicit_tls_and_starttls(imap_server: DovecotServer) -> None:
    uids = await imap_server.append(reply(1))
    implicit = ImapSource(
        imap_server.host, imap_server.tls_port, "test", "pass", tls="implicit",
        ssl_context=imap_server.ssl_context(),
    )  # fmt: skip
    starttls = source_for(imap_server, tls="starttls", ssl_context=imap_server.ssl_context())
    for source in (implicit, starttls):
        try:
            await source.open()
            messages = await source.fetch_after(0, 10)
            assert [m.uid for m in messages] == uids
            assert [crlf(m.raw) for m in messages] == [reply(1)]
            client = source._client
            assert client is not None
            assert client.protocol.transport.get_extra_info("ssl_object") is not None
        finally:
            await source.close()
    # The self-signed certificate is not trusted by the system's default context.
    untrusted = ImapSource(imap_server.host, imap_server.tls_port, "test", "pass", tls="implicit", timeout=5)
    with anyio.fail_after(PROMPT), pytest.raises(InboxUnavailable):
        await untrusted.open()


# --- response parsing (no server) ----------------------------------------------------------


def test_parse_fetch_response_handles_any_attribute_order_and_unsolicited_items() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (FLAGS (\\Seen) UID 7 BODY[] {12}",
        bytearray(b"a\r\nb) UID 99"),
        b' INTERNALDATE " 2-Feb-2026 09:05:01 -0130")',
        b"2 FETCH (FLAGS (\\Flagged))",  # another client changed a flag meanwhile
        b'3 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700" BODY[] {0}',
        bytearray(b""),
        b" UID 9)",
        b'4 FETCH (UID 10 BODY[] "short \\"quoted\\" body")',
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    items = parse_fetch_response(lines)
    assert [(i.uid, i.body) for i in items] == [
        (7, b"a\r\nb) UID 99"),
        (None, None),
        (9, b""),
        (10, b'short "quoted" body'),
    ]
    assert items[0].internal_date == datetime(2026, 2, 2, 9, 5, 1, tzinfo=timezone(-timedelta(hours=1, minutes=30)))
    assert items[2].internal_date == datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))


def test_parse_internaldate_rejects_garbage() -> None:
    assert parse_internaldate("31-Foo-2026 00:00:00 +0000") is None
    assert parse_internaldate("31-Feb-2026 00:00:00 +0000") is None
    assert parse_internaldate("yesterday") is None


def test_parse_search_and_select_responses() -> None:
    assert parse_search_response([b"5 3 9 3", b"Search completed (0.001 + 0.000 secs)."]) == [
        3,
        5,
        9,
    ]
    assert parse_search_response([b"", b"Search completed (0.001 + 0.000 secs)."]) == []
    assert parse_search_response([b"Search completed 7 hits."]) == []
    select = [
        b"FLAGS (\\Answered \\Seen)",
        b"3 EXISTS",
        b"OK [UIDVALIDITY 1795387668] UIDs valid",
        b"[READ-WRITE] Select completed (0.001 + 0.000 secs).",
    ]
    assert parse_uidvalidity(select) == 1795387668
    assert parse_uidvalidity([b"OK done"]) is None


def test_compress_uid_set() -> None:
    assert compress_uid_set([9, 1, 2, 3, 7, 10]) == "1:3,7,9:10"
    assert compress_uid_set([4]) == "4"
    with pytest.raises(ValueError):
        compress_uid_set([])
