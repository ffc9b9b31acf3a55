"""MaildirInbox: the embedded inbox, numbered the way Dovecot numbers a Maildir."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicmo_actors.gateways.inbox_source import InboxSource, InboxUnavailable
from aicmo_actors.gateways.maildir_inbox import (
    UIDLIST_FILE,
    UIDVALIDITY_FILE,
    MaildirInbox,
    UidList,
    assign_uids,
    base_name,
    format_uidlist,
    parse_uidlist,
)


def deliver(root: Path, name: str, raw: bytes, sub: str = "new", mtime: int | None = None) -> Path:
    (root / sub).mkdir(parents=True, exist_ok=True)
    path = root / sub / name
    path.write_bytes(raw)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def msg(n: int) -> bytes:
    return f"From: p{n}@client.example\nSubject: Re: hello {n}\n\nreply {n}\n".encode()


async def uids_of(inbox: MaildirInbox, last_uid: int = 0, batch: int = 100) -> list[int]:
    return [m.uid for m in await inbox.fetch_after(last_uid, batch)]


@pytest.mark.anyio
async def test_messages_get_ascending_uids_in_name_order_with_exact_bytes(tmp_path: Path) -> None:
    deliver(tmp_path, "1700000002.M2.host", msg(2), mtime=1_700_000_002)
    deliver(tmp_path, "1700000001.M1.host:2,S", msg(1), sub="cur", mtime=1_700_000_001)
    deliver(tmp_path, "1700000003.M3.host", msg(3), mtime=1_700_000_003)
    (tmp_path / "tmp").mkdir()
    deliver(tmp_path, "1700000000.M0.host", msg(0), sub="tmp")  # still being delivered
    deliver(tmp_path, ".hidden", msg(9))
    inbox = MaildirInbox(tmp_path, "local/inbox", initial_uidvalidity=42)
    assert isinstance(inbox, InboxSource)
    assert await inbox.open() == 42
    messages = await inbox.fetch_after(0, 100)
    assert [(m.uid, m.raw) for m in messages] == [(1, msg(1)), (2, msg(2)), (3, msg(3))]
    assert all(m.uidvalidity == 42 for m in messages)
    assert messages[0].internal_date == datetime.fromtimestamp(1_700_000_001, tz=UTC)
    assert await inbox.fetch_after(3, 100) == []
    assert inbox.supports_idle is False
    assert await inbox.wait_for_new(timeout=60) is False


@pytest.mark.anyio
async def test_uids_are_stable_across_instances_and_new_files_get_higher_ones(
    tmp_path: Path,
) -> None:
    deliver(tmp_path, "200.b.host", msg(2))
    deliver(tmp_path, "300.c.host", msg(3))
    first = MaildirInbox(tmp_path, "local/inbox")
    uidvalidity = await first.open()
    assert await uids_of(first) == [1, 2]

    # Sorts before the others by name, but arrives later: it must not take their UIDs.
    deliver(tmp_path, "100.a.host", msg(1))
    second = MaildirInbox(tmp_path, "local/inbox")
    assert await second.open() == uidvalidity
    messages = await second.fetch_after(0, 100)
    assert [(m.uid, m.raw) for m in messages] == [(1, msg(2)), (2, msg(3)), (3, msg(1))]
    # The instance that stayed open agrees on the numbering of the new file.
    assert [(m.uid, m.raw) for m in await first.fetch_after(2, 100)] == [(3, msg(1))]
    await first.close()
    third = MaildirInbox(tmp_path, "local/inbox")
    assert await third.open() == uidvalidity
    assert await uids_of(third) == [1, 2, 3]


@pytest.mark.anyio
async def test_new_mail_is_found_by_an_open_instance(tmp_path: Path) -> None:
    deliver(tmp_path, "100.a.host", msg(1))
    inbox = MaildirInbox(tmp_path, "local/inbox")
    await inbox.open()
    assert await uids_of(inbox) == [1]
    assert await uids_of(inbox, 1) == []
    deliver(tmp_path, "200.b.host", msg(2))
    assert [(m.uid, m.raw) for m in await inbox.fetch_after(1, 100)] == [(2, msg(2))]


@pytest.mark.anyio
async def test_flags_suffix_and_move_to_cur_keep_the_uid(tmp_path: Path) -> None:
    deliver(tmp_path, "100.a.host", msg(1))
    deliver(tmp_path, "200.b.host", msg(2))
    inbox = MaildirInbox(tmp_path, "local/inbox")
    await inbox.open()
    assert await uids_of(inbox, batch=1) == [1]
    # A mail client reads message 2 after our scan: new/ -> cur/ with flags.
    (tmp_path / "cur").mkdir(exist_ok=True)
    os.rename(tmp_path / "new" / "200.b.host", tmp_path / "cur" / "200.b.host:2,RS")
    assert [(m.uid, m.raw) for m in await inbox.fetch_after(1, 100)] == [(2, msg(2))]
    # And a fresh instance still numbers it 2.
    again = MaildirInbox(tmp_path, "local/inbox")
    await again.open()
    assert [(m.uid, m.raw) for m in await again.fetch_after(0, 100)] == [(1, msg(1)), (2, msg(2))]


@pytest.mark.anyio
async def test_batches_and_deleted_files_are_skipped(tmp_path: Path) -> None:
    for n in range(1, 8):
        deliver(tmp_path, f"{100 + n}.m{n}.host", msg(n))
    inbox = MaildirInbox(tmp_path, "local/inbox")
    await inbox.open()
    assert await uids_of(inbox, 0, 3) == [1, 2, 3]
    # Messages 4 and 5 vanish after the scan: the batch is filled from the next ones.
    (tmp_path / "new" / "104.m4.host").unlink()
    (tmp_path / "new" / "105.m5.host").unlink()
    assert await uids_of(inbox, 3, 2) == [6, 7]
    assert await uids_of(inbox, 7, 3) == []
    # A deleted message's UID is never given again.
    deliver(tmp_path, "100.zz.host", msg(8))
    assert await uids_of(inbox, 7, 3) == [8]


@pytest.mark.anyio
async def test_losing_the_uidlist_means_a_new_uidvalidity(tmp_path: Path) -> None:
    deliver(tmp_path, "100.a.host", msg(1))
    deliver(tmp_path, "200.b.host", msg(2))
    inbox = MaildirInbox(tmp_path, "local/inbox")
    before = await inbox.open()
    assert await uids_of(inbox, batch=1) == [1]

    (tmp_path / UIDLIST_FILE).unlink()
    deliver(tmp_path, "050.first-by-name.host", msg(3))
    # The open instance notices when it rescans, rather than mixing two numberings.
    with pytest.raises(InboxUnavailable):
        await inbox.fetch_after(2, 10)
    after = await inbox.open()
    assert after != before
    messages = await inbox.fetch_after(0, 100)
    assert [(m.uid, m.raw) for m in messages] == [(1, msg(3)), (2, msg(1)), (3, msg(2))]
    assert {m.uidvalidity for m in messages} == {after}

    # An unreadable uidlist counts as lost, too.
    (tmp_path / UIDLIST_FILE).write_text("garbage\n")
    assert await MaildirInbox(tmp_path, "local/inbox").open() not in (before, after)


@pytest.mark.anyio
async def test_uidvalidity_comes_from_the_caller_or_the_path_never_the_clock(
    tmp_path: Path,
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    derived = await MaildirInbox(one, "a").open()
    assert 1 <= derived < 2**32
    # Same path, everything reset: the same value again (deterministic).
    (one / UIDLIST_FILE).unlink()
    (one / UIDVALIDITY_FILE).unlink()
    assert await MaildirInbox(one, "a").open() == derived
    assert await MaildirInbox(two, "b", initial_uidvalidity=7).open() == 7
    # The caller's value only seeds a new uidlist; an existing one keeps its own.
    assert await MaildirInbox(two, "b", initial_uidvalidity=99).open() == 7
    with pytest.raises(ValueError):
        MaildirInbox(two, "b", initial_uidvalidity=0)


@pytest.mark.anyio
async def test_the_maildir_is_only_read(tmp_path: Path) -> None:
    deliver(tmp_path, "100.a.host", msg(1))
    deliver(tmp_path, "200.b.host:2,S", msg(2), sub="cur")

    def snapshot() -> dict[str, bytes]:
        return {
            str(p.relative_to(tmp_path)): p.read_bytes()
            for sub in ("new", "cur", "tmp")
            for p in sorted((tmp_path / sub).glob("*"))
        }

    inbox = MaildirInbox(tmp_path, "local/inbox")
    await inbox.open()
    before = snapshot()
    await inbox.fetch_after(0, 100)
    await inbox.close()
    assert snapshot() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(  # noqa: ASYNC240
        [UIDLIST_FILE, UIDVALIDITY_FILE, "aicmo-uidlist.lock"]
    )


@pytest.mark.anyio
async def test_fetch_before_open_and_an_unreadable_maildir_are_unavailable(
    tmp_path: Path,
) -> None:
    inbox = MaildirInbox(tmp_path, "local/inbox")
    with pytest.raises(InboxUnavailable):
        await inbox.fetch_after(0, 10)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(InboxUnavailable):
        await MaildirInbox(blocker, "local/broken").open()


def test_uidlist_text_round_trips_and_rejects_foreign_files() -> None:
    uidlist = UidList(uidvalidity=5, next_uid=4, uids={"b": 3, "a": 1})
    text = format_uidlist(uidlist)
    assert text == "aicmo-uidlist 1 V5 N4\n1 a\n3 b\n"
    assert parse_uidlist(text) == uidlist
    assert parse_uidlist("3 V1275660208 N25 G0\n1 100.a.host\n") is None  # Dovecot's own
    # Lines appended after the header's block go on from N, ascending; the next UID follows them.
    assert parse_uidlist("aicmo-uidlist 1 V5 N2\n1 a\n4 b\n") == UidList(5, 5, {"a": 1, "b": 4})
    assert parse_uidlist("aicmo-uidlist 1 V5 N9\n3 b\n2 c\n") is None  # UIDs must ascend
    assert parse_uidlist("aicmo-uidlist 1 V5 N9\n3 b\n4 b\n") is None  # a name twice
    # A last line without its newline (a crash in the middle of an append) is not read.
    assert parse_uidlist("aicmo-uidlist 1 V5 N2\n1 a\n2 b") == UidList(5, 2, {"a": 1})
    assert parse_uidlist("aicmo-uidlist 1 V0 N1\n") is None
    assert parse_uidlist("") is None


def test_assign_uids_keeps_known_names_and_numbers_new_ones_in_name_order() -> None:
    current = UidList(uidvalidity=9, next_uid=3, uids={"m.b": 1, "m.gone": 2})
    updated = assign_uids(current, {"m.b", "m.d", "m.c"})
    assert updated == UidList(uidvalidity=9, next_uid=5, uids={"m.b": 1, "m.c": 3, "m.d": 4})
    assert base_name("1700.M1P2.host:2,FS") == "1700.M1P2.host"
    assert base_name("1700.M1P2.host") == "1700.M1P2.host"


@pytest.mark.anyio
async def test_new_mail_is_appended_to_the_uidlist_not_rewritten(tmp_path: Path) -> None:
    deliver(tmp_path, "100.a.host", msg(1))
    inbox = MaildirInbox(tmp_path, "local/inbox", initial_uidvalidity=3)
    await inbox.open()
    assert await uids_of(inbox) == [1]
    uidlist = tmp_path / UIDLIST_FILE
    inode = uidlist.stat().st_ino
    deliver(tmp_path, "300.c.host", msg(3))
    deliver(tmp_path, "200.b.host", msg(2))
    assert [(m.uid, m.raw) for m in await inbox.fetch_after(1, 100)] == [(2, msg(2)), (3, msg(3))]
    assert uidlist.stat().st_ino == inode  # appended in place
    assert uidlist.read_text() == "aicmo-uidlist 1 V3 N1\n1 100.a.host\n2 200.b.host\n3 300.c.host\n"
    # Nothing new: nothing written.
    before = uidlist.stat().st_mtime_ns
    assert await uids_of(inbox, 3) == []
    assert uidlist.stat().st_mtime_ns == before


@pytest.mark.anyio
async def test_two_readers_appending_agree(tmp_path: Path) -> None:
    one, two = MaildirInbox(tmp_path, "a"), MaildirInbox(tmp_path, "b")
    await one.open()
    await two.open()
    deliver(tmp_path, "100.a.host", msg(1))
    assert await uids_of(one) == [1]
    deliver(tmp_path, "200.b.host", msg(2))
    assert [(m.uid, m.raw) for m in await two.fetch_after(0, 100)] == [(1, msg(1)), (2, msg(2))]
    deliver(tmp_path, "050.c.host", msg(3))
    assert [(m.uid, m.raw) for m in await one.fetch_after(1, 100)] == [(2, msg(2)), (3, msg(3))]
    assert [(m.uid, m.raw) for m in await two.fetch_after(2, 100)] == [(3, msg(3))]


@pytest.mark.anyio
async def test_a_torn_last_line_is_dropped_and_the_list_rewritten(tmp_path: Path) -> None:
    deliver(tmp_path, "100.a.host", msg(1))
    deliver(tmp_path, "200.b.host", msg(2))
    (tmp_path / UIDLIST_FILE).write_text("aicmo-uidlist 1 V8 N1\n1 100.a.host\n2 200.b")
    inbox = MaildirInbox(tmp_path, "local/inbox")
    assert await inbox.open() == 8  # the same numbering, not a new one
    assert [(m.uid, m.raw) for m in await inbox.fetch_after(0, 100)] == [(1, msg(1)), (2, msg(2))]
    assert (tmp_path / UIDLIST_FILE).read_text() == "aicmo-uidlist 1 V8 N2\n1 100.a.host\n2 200.b.host\n"


@pytest.mark.anyio
async def test_names_of_deleted_messages_are_dropped_at_open_when_they_are_most_of_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aicmo_actors.gateways.maildir_inbox as maildir

    monkeypatch.setattr(maildir, "_COMPACT_AFTER", 3)
    for n in range(1, 6):
        deliver(tmp_path, f"{100 + n}.m{n}.host", msg(n))
    inbox = MaildirInbox(tmp_path, "local/inbox", initial_uidvalidity=4)
    await inbox.open()
    for n in range(1, 5):
        (tmp_path / "new" / f"{100 + n}.m{n}.host").unlink()
    again = MaildirInbox(tmp_path, "local/inbox")
    assert await again.open() == 4
    assert (tmp_path / UIDLIST_FILE).read_text() == "aicmo-uidlist 1 V4 N6\n5 105.m5.host\n"
    assert await uids_of(again) == [5]
