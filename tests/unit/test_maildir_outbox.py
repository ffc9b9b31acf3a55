"""MaildirOutbox: the embedded default transport writes complete files into new/."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from aicmo_actors.gateways import maildir_outbox
from aicmo_actors.gateways.mail_message import build_message
from aicmo_actors.gateways.maildir_outbox import MaildirOutbox
from aicmo_actors.gateways.transport import SendResult

FROM = "alex@outreach.example.com"


def message(n: int = 1, html: str | None = None) -> EmailMessage:
    return build_message(
        from_address=FROM,
        from_name="Alex Berger",
        to_address=f"lead{n}@client.example",
        subject=f"Grüße {n}",
        text=f"Hello {n}\nsecond line\n",
        html=html,
        message_id=f"<m{n}@outreach.example.com>",
        date=datetime(2026, 3, 10, 9, 30, tzinfo=UTC),
    )


def files(root: Path, sub: str) -> list[Path]:
    return sorted((root / sub).iterdir())


@pytest.mark.anyio
async def test_a_message_lands_complete_in_new(tmp_path: Path) -> None:
    root = tmp_path / "mail" / "outbox"
    outbox = MaildirOutbox(root)
    result = await outbox.send(message(html="<p>Hello</p>"), mail_from=FROM, rcpt_to=["lead1@client.example"])
    assert result == SendResult(outcome="accepted", smtp_code=250, smtp_text="written to Maildir", stage="data")
    assert files(root, "tmp") == [] and files(root, "cur") == []
    [path] = files(root, "new")
    raw = path.read_bytes()
    assert b"\r\n" not in raw  # LF on disk, as in real Maildirs
    assert raw.startswith(b"X-Envelope-From: <alex@outreach.example.com>\nX-Envelope-To: <lead1@client.example>\n")
    back = message_from_bytes(raw, policy=policy.default)
    assert back["Subject"] == "Grüße 1"
    assert back["Message-ID"] == "<m1@outreach.example.com>"
    assert back["To"].addresses[0].addr_spec == "lead1@client.example"
    assert back.get_content_type() == "multipart/alternative"
    plain = back.get_body(("plain",))
    assert plain is not None and plain.get_content() == "Hello 1\nsecond line\n"
    await outbox.close()


@pytest.mark.anyio
async def test_every_send_is_its_own_file(tmp_path: Path) -> None:
    outbox = MaildirOutbox(tmp_path)
    for n in range(5):
        assert (
            await outbox.send(message(n), mail_from=FROM, rcpt_to=[f"lead{n}@client.example"])
        ).outcome == "accepted"
    # One instance per sending mailbox shares the folder; the same message twice is two files.
    other = MaildirOutbox(tmp_path)
    await other.send(message(0), mail_from=FROM, rcpt_to=["lead0@client.example"])
    paths = files(tmp_path, "new")
    assert len(paths) == 6 and len({p.name for p in paths}) == 6
    subjects = sorted(str(message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"]) for p in paths)
    assert subjects == ["Grüße 0", "Grüße 0", "Grüße 1", "Grüße 2", "Grüße 3", "Grüße 4"]


@pytest.mark.anyio
async def test_several_recipients_in_the_envelope(tmp_path: Path) -> None:
    await MaildirOutbox(tmp_path).send(message(), mail_from=FROM, rcpt_to=["a@client.example", "b@client.example"])
    [path] = files(tmp_path, "new")
    assert b"X-Envelope-To: <a@client.example>, <b@client.example>\n" in path.read_bytes()


@pytest.mark.anyio
async def test_the_file_is_written_in_tmp_and_renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen_at_fsync: list[tuple[list[str], list[str]]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        seen_at_fsync.append(([p.name for p in files(tmp_path, "tmp")], [p.name for p in files(tmp_path, "new")]))
        real_fsync(fd)

    monkeypatch.setattr(maildir_outbox.os, "fsync", fsync)
    await MaildirOutbox(tmp_path).send(message(), mail_from=FROM, rcpt_to=["lead1@client.example"])
    [(in_tmp, in_new)] = seen_at_fsync
    assert len(in_tmp) == 1 and in_new == []  # a reader of new/ never sees a half-written file
    assert [p.name for p in files(tmp_path, "new")] == in_tmp and files(tmp_path, "tmp") == []


@pytest.mark.anyio
async def test_a_failed_write_is_temporary_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(maildir_outbox.os, "replace", broken_replace)
    result = await MaildirOutbox(tmp_path).send(message(), mail_from=FROM, rcpt_to=["lead1@client.example"])
    assert result.outcome == "temporary"
    assert "No space left on device" in result.smtp_text
    assert files(tmp_path, "tmp") == [] and files(tmp_path, "new") == []


@pytest.mark.anyio
async def test_an_unusable_folder_is_a_temporary_failure_not_an_exception(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    result = await MaildirOutbox(blocker).send(message(), mail_from=FROM, rcpt_to=["lead1@client.example"])
    assert result.outcome == "temporary" and result.smtp_text.startswith("cannot write to the Maildir: ")


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ["a@example.com\nX-Evil: 1", "a@example.com\r", "a@exa\0mple.com"])
async def test_envelope_addresses_with_line_breaks_are_refused(tmp_path: Path, bad: str) -> None:
    outbox = MaildirOutbox(tmp_path)
    with pytest.raises(ValueError, match="line break or NUL in the envelope address"):
        await outbox.send(message(), mail_from=bad, rcpt_to=["lead1@client.example"])
    with pytest.raises(ValueError, match="line break or NUL in the envelope address"):
        await outbox.send(message(), mail_from=FROM, rcpt_to=["ok@client.example", bad])
    assert not (tmp_path / "new").exists() or files(tmp_path, "new") == []
