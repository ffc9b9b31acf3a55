"""A private Dovecot for the tests (and the inbox benchmark), started by `.ci/dovecot.sh`.

Fixtures:
- `dovecot` (session): a Dovecot on free loopback ports in a temporary folder, with
  plain IMAP + STARTTLS on `port` and implicit TLS on `tls_port` (self-signed certificate,
  `ssl_context()` trusts it). Users: "test"/"pass" and "other"/"otherpass".
  Skips locally (fails under CI=true) when Dovecot is not installed.
- `imap_server` (function): the same server, with INBOX of both users emptied first.

`DovecotServer` also works outside pytest (`start_dovecot()` / `stop()`), for `bench`.
The config itself is written by `.ci/dovecot.sh start`, the one place that knows it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aioimaplib
import pytest

from tests.plugins.servers import server_missing

REPO_ROOT = Path(__file__).resolve().parents[2]
DOVECOT_SCRIPT = REPO_ROOT / ".ci" / "dovecot.sh"
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


@dataclass(frozen=True)
class ImapUser:
    """A test account of the private Dovecot."""

    username: str
    password: str


USERS = (ImapUser("test", "pass"), ImapUser("other", "otherpass"))


def dovecot_binary() -> str | None:
    """Path of `dovecot`, also where /usr/sbin is not on PATH (non-root shells)."""
    found = shutil.which("dovecot")
    if found is None and Path("/usr/sbin/dovecot").exists():
        found = "/usr/sbin/dovecot"
    return found


def doveadm_binary() -> str | None:
    """Path of `doveadm`, shipped with dovecot-core."""
    found = shutil.which("doveadm")
    for candidate in ("/usr/bin/doveadm", "/usr/sbin/doveadm"):
        if found is None and Path(candidate).exists():
            found = candidate
    return found


def free_port() -> int:
    """A loopback port free right now (the OS picks it; a small race is acceptable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class DovecotServer:
    """Connection info and control of one private Dovecot instance."""

    host: str
    port: int
    tls_port: int
    base_dir: Path
    users: tuple[ImapUser, ...] = USERS

    @property
    def config(self) -> Path:
        return self.base_dir / "dovecot.conf"

    @property
    def cert_path(self) -> Path:
        return self.base_dir / "cert.pem"

    def user(self, username: str = "test") -> ImapUser:
        """The account called `username`."""
        for user in self.users:
            if user.username == username:
                return user
        raise KeyError(username)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this instance's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    # -- control through doveadm (direct mail storage access, or the instance's sockets) --

    def doveadm(self, *args: str) -> str:
        """Run `doveadm -c CONFIG ARGS...`; return stdout, raise with stderr on failure."""
        binary = doveadm_binary()
        if binary is None:
            raise RuntimeError("doveadm is not installed")
        done = subprocess.run(
            [binary, "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def empty(self, username: str = "test", folder: str = "INBOX") -> None:
        """Expunge every message of the folder (UIDVALIDITY and UIDNEXT stay)."""
        self.doveadm("expunge", "-u", username, "mailbox", folder, "all")

    def uidvalidity(self, username: str = "test", folder: str = "INBOX") -> int:
        """The folder's current UIDVALIDITY, as Dovecot reports it."""
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", username, "uidvalidity", folder)
        match = re.search(r"uidvalidity=(\d+)", out)
        if match is None:
            raise RuntimeError(f"no uidvalidity in {out!r}")
        return int(match.group(1))

    def set_uidvalidity(self, value: int, username: str = "test", folder: str = "INBOX") -> None:
        """Give the folder a new UIDVALIDITY, as a server does when a mailbox is rebuilt."""
        self.doveadm("mailbox", "update", "-u", username, "--uid-validity", str(value), folder)

    def kick(self, username: str = "test") -> None:
        """Drop every IMAP connection of the user (Dovecot sends BYE and closes)."""
        self.doveadm("kick", username)

    async def akick(self, username: str = "test") -> None:
        """`kick` without blocking the event loop (the client sees the drop meanwhile)."""
        await asyncio.to_thread(self.kick, username)

    async def aset_uidvalidity(self, value: int, username: str = "test", folder: str = "INBOX") -> None:
        """`set_uidvalidity` without blocking the event loop."""
        await asyncio.to_thread(self.set_uidvalidity, value, username, folder)

    # -- putting mail in -----------------------------------------------------------------

    async def append(self, *raws: bytes, username: str = "test", folder: str = "INBOX") -> list[int]:
        """APPEND the raw messages over one IMAP connection; return their UIDs (APPENDUID)."""
        user = self.user(username)
        client = aioimaplib.IMAP4(host=self.host, port=self.port, timeout=10)
        await client.wait_hello_from_server()
        try:
            response = await client.login(user.username, user.password)
            assert response.result == "OK", response
            uids: list[int] = []
            for raw in raws:
                response = await client.append(raw, mailbox=aioimaplib.quoted(folder))
                assert response.result == "OK", response
                match = _APPENDUID.search(b" ".join(bytes(line) for line in response.lines))
                assert match is not None, response
                uids.append(int(match.group(2)))
            return uids
        finally:
            await client.logout()

    def stop(self) -> None:
        """Stop the instance and remove its folder."""
        subprocess.run([str(DOVECOT_SCRIPT), "stop", str(self.base_dir)], check=False, timeout=30)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_dovecot(attempts: int = 3) -> DovecotServer:
    """Start a private Dovecot in a new temporary folder; raise RuntimeError if it cannot."""
    if dovecot_binary() is None:
        raise FileNotFoundError("dovecot is not installed (run .ci/dovecot.sh install)")
    last_error = ""
    for _ in range(attempts):
        # Not under pytest's tmp_path: that folder is 0700 and Dovecot's mail processes
        # run as the `dovecot` user, which must reach the homes inside.
        base_dir = Path(tempfile.mkdtemp(prefix="aicmo-dovecot-"))
        port, tls_port = free_port(), free_port()
        try:
            done = subprocess.run(
                [str(DOVECOT_SCRIPT), "start", str(base_dir), str(port), str(tls_port)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if done.returncode == 0:
                return DovecotServer(host="127.0.0.1", port=port, tls_port=tls_port, base_dir=base_dir)
            last_error = done.stderr.strip()
        except subprocess.TimeoutExpired:
            last_error = ".ci/dovecot.sh start did not return within 60 s"
        log = base_dir / "dovecot.log"
        if log.exists():
            last_error += "\n" + log.read_text(errors="replace")[-2000:]
        subprocess.run([str(DOVECOT_SCRIPT), "stop", str(base_dir)], check=False, timeout=30)
        shutil.rmtree(base_dir, ignore_errors=True)
    raise RuntimeError(f"could not start Dovecot: {last_error}")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot for the whole session (skipped, or failed under CI, when absent)."""
    if dovecot_binary() is None:
        server_missing("Dovecot", "`dovecot` is not installed (run .ci/dovecot.sh install)")
    if doveadm_binary() is None:
        server_missing("Dovecot", "`doveadm` is not installed (it comes with dovecot-core)")
    try:
        server = start_dovecot()
    except RuntimeError as exc:
        server_missing("Dovecot", str(exc))
        raise  # unreachable: server_missing skips or fails
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_server(dovecot: DovecotServer) -> DovecotServer:
    """The session's Dovecot with both users' INBOX empty."""
    for user in dovecot.users:
        dovecot.empty(user.username)
    return dovecot
