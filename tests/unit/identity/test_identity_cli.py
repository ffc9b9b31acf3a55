"""`python run.py users ...` and `python run.py audit`, run in-process on a temporary SQLite database."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from aicmo_actors.cli import identity_cmd
from aicmo_actors.cli.main import build_parser, main
from aicmo_actors.identity.repos import IdentityStore
from aicmo_actors.identity.roles import Principal
from aicmo_actors.storage.engine import make_engine

TOKEN = re.compile(r"aicmo_[A-Za-z0-9_-]{43}")
PASSWORD = "correct horse battery staple"


class Terminal(io.StringIO):
    """Standard input that is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A working folder of its own, with AICMO_DATABASE_URL pointing into it and no other AICMO_ setting."""
    for name in list(os.environ):
        if name.upper().startswith("AICMO_"):
            monkeypatch.delenv(name)
    url = f"sqlite+aiosqlite:///{tmp_path}/aicmo.db"
    monkeypatch.setenv("AICMO_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nothing is asked
    yield url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def with_store(url: str, work: object) -> object:
    async def go() -> object:
        engine = make_engine(url)
        try:
            return await work(IdentityStore(engine))  # type: ignore[operator]
        finally:
            await engine.dispose()

    return anyio.run(go)


def me() -> str:
    return identity_cmd.cli_actor().name


def test_the_first_owner_and_a_token_printed_once(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "users", "add", "Alice", "--role", "owner", "--token", "laptop")
    assert (code, err) == (0, "")
    assert "user 'alice' added: owner, without a password" in out
    assert "will not be shown again" in out
    [raw] = TOKEN.findall(out)
    assert out.count(raw) == 1
    principal = with_store(db, lambda s: s.tokens.authenticate(raw, datetime.now(UTC)))
    assert isinstance(principal, Principal) and (principal.name, principal.role) == ("alice", "owner")
    # Listing shows the prefix, never the token.
    code, out, _ = run(capsys, "users", "tokens")
    assert code == 0 and raw[:12] in out and raw not in out and "laptop" in out
    code, out, _ = run(capsys, "users", "list")
    assert code == 0
    [line] = [x for x in out.splitlines() if x.startswith("alice")]
    assert line.split()[1:3] == ["owner", "no"] and line.split()[-1] == "1"
    # Audited as cli:<login>, and the token is in no audit row.
    code, out, _ = run(capsys, "audit", "--json")
    rows = json.loads(out)
    assert [(r["actor"], r["source"], r["action"], r["target"]) for r in rows] == [
        (me(), "cli", "token.create", "alice"),
        (me(), "cli", "user.add", "alice"),
    ]
    assert raw not in out


def test_a_password_from_stdin(db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, _ = run(capsys, "users", "add", "bob", "--role", "operator", "--password-stdin")
    assert code == 0 and "operator, with a password" in out and PASSWORD not in out
    principal = with_store(db, lambda s: s.login("bob", PASSWORD, datetime.now(UTC)))
    assert isinstance(principal, Principal) and principal.role == "operator"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, "users", "add", "carol", "--role", "viewer", "--password-stdin")
    assert code == 2 and "the password is 5 characters long: use at least 12" in one_error(err)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "users", "add", "carol", "--role", "viewer", "--password-stdin")
    assert code == 2 and "standard input gave no password" in one_error(err)


def test_a_password_asked_twice_on_a_terminal(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal())
    answers = iter([PASSWORD, PASSWORD + "!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = run(capsys, "users", "add", "bob", "--role", "viewer")
    assert code == 2 and one_error(err) == "error: the two passwords differ: no user was added"
    answers = iter([PASSWORD, PASSWORD])
    code, out, _ = run(capsys, "users", "add", "bob", "--role", "viewer")
    assert code == 0 and "viewer, with a password" in out
    answers = iter([""])
    code, out, _ = run(capsys, "users", "add", "tool", "--role", "viewer")
    assert code == 0 and "without a password" in out and "python run.py users token tool" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("users", "add", "carol", "--role", "boss"), "error: unknown role 'boss': use owner, operator or viewer"),
        (("users", "add", "Carol Smith", "--role", "viewer"), "error: invalid user name 'Carol Smith'"),
        (("users", "add", "carol", "--role", "viewer", "--token", " "), "error: invalid token label ' '"),
        (("users", "remove", "ghost"), "error: no user named 'ghost': see `python run.py users list`"),
        (("users", "remove", "ghost", "--yes"), "error: no user named 'ghost'"),
        (("users", "token", "ghost"), "error: no user named 'ghost'"),
        (("users", "tokens", "ghost"), "error: no user named 'ghost'"),
        (("users", "token", "alice", "--expires-days", "0"), "error: --expires-days must be at least 1, not 0"),
        (("users", "token", "alice", "--expires-days", "soon"), "error: --expires-days 'soon': not a whole number"),
        (("users", "revoke", "aicmo_nothing"), "error: no live token 'aicmo_nothing'"),
        (("users", "revoke", "laptop"), "error: 'laptop' names no token"),
        (("audit", "--since", "yesterday"), "error: --since 'yesterday': give a time"),
        (("audit", "--limit", "0"), "error: --limit must be at least 1, not 0"),
        (("audit", "--limit", "5000"), "error: --limit must be at most 1000, not 5000"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    db: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert run(capsys, "users", "add", "alice", "--role", "owner")[0] == 0
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert one_error(err).startswith(message)
    code, out, _ = run(capsys, "users", "list")
    assert [x.split()[0] for x in out.splitlines()[1:]] == ["alice"]  # nothing else was added


def test_remove_refuses_the_last_owner_and_asks_on_a_terminal(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "users", "add", "alice", "--role", "owner")[0] == 0
    assert run(capsys, "users", "add", "bob", "--role", "owner", "--token", "ci")[0] == 0
    code, _, err = run(capsys, "users", "remove", "bob")  # not a terminal: no question
    assert code == 0
    code, _, err = run(capsys, "users", "remove", "alice", "--yes")
    assert code == 2 and one_error(err) == "error: 'alice' is the last owner: make another user owner first"
    assert run(capsys, "users", "add", "carol", "--role", "viewer")[0] == 0
    assert run(capsys, "users", "add", "dan", "--role", "viewer")[0] == 0
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    code, out, _ = run(capsys, "users", "remove", "carol")
    assert code == 1 and "nothing removed" in out
    monkeypatch.setattr("builtins.input", lambda prompt="": "y")
    code, out, _ = run(capsys, "users", "remove", "carol")
    assert code == 0 and "user 'carol' removed" in out
    monkeypatch.setattr("builtins.input", lambda prompt="": pytest.fail("asked despite --yes"))
    assert run(capsys, "users", "remove", "dan", "--yes")[0] == 0
    code, out, _ = run(capsys, "users", "list")
    assert [x.split()[0] for x in out.splitlines()[1:]] == ["alice"]


def test_tokens_made_listed_and_revoked(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "users", "add", "alice", "--role", "owner")[0] == 0
    code, out, _ = run(capsys, "users", "token", "alice", "--label", "ci", "--expires-days", "30")
    assert code == 0 and "label 'ci', expires" in out
    [raw] = TOKEN.findall(out)
    code, out, _ = run(capsys, "users", "tokens", "alice")
    [line] = out.splitlines()[1:]
    assert line.split()[:4] == ["1", raw[:12], "alice", "ci"] and line.endswith("-")
    code, out, _ = run(capsys, "users", "revoke", raw[:12])
    assert code == 0 and "revoked" in out
    assert with_store(db, lambda s: s.tokens.authenticate(raw, datetime.now(UTC))) is None
    code, _, err = run(capsys, "users", "revoke", "1")
    assert code == 2 and one_error(err).startswith("error: no live token '1'")
    code, out, _ = run(capsys, "users", "list")
    assert out.splitlines()[1].split()[-1] == "0"  # no live token left
    code, out, _ = run(capsys, "audit", "--action", "token", "--since", "1h")
    assert code == 0 and [x.split()[5] for x in out.splitlines()[1:]] == ["token.revoke", "token.create"]
    code, out, _ = run(capsys, "audit", "--actor", "someone-else")
    assert code == 0 and out.strip() == "no audit rows match"


def test_audit_pages_with_before_id(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b", "c"):
        assert run(capsys, "users", "add", name, "--role", "owner")[0] == 0
    code, out, _ = run(capsys, "audit", "--limit", "2")
    assert code == 0 and out.splitlines()[-1] == "(more: --before-id 2)"
    code, out, _ = run(capsys, "audit", "--before-id", "2", "--json")
    assert [r["target"] for r in json.loads(out)] == ["a"]


def test_every_command_and_option_has_a_help_line() -> None:
    parser = build_parser()

    def commands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        [sub] = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        helps = {c.dest: c.help for c in sub._choices_actions}
        assert all(helps.values()), helps
        return dict(sub.choices)

    top = commands(parser)
    users = commands(top["users"])
    assert set(users) == {"add", "list", "remove", "token", "tokens", "revoke"}
    for p in [top["audit"], *users.values()]:
        for action in p._actions:
            assert action.help, f"{p.prog}: {action.dest} has no help"
