"""`transport test` and `transport send-test` against a real SMTP server (aiosmtpd, started by
the test): what the server offered, whether AUTH succeeded, never the password; a refusal or an
unreachable server is one line and exit code 2."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.certs import SelfSignedCertificate
from tests.plugins.mail import SmtpSink
from tests.plugins.smtp_tls import StartServer
from tests.unit.cli_records.conftest import Run, one_error_line

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`settings(name=profile, ...)` sets AICMO_TRANSPORTS for the command (and nothing else)."""
    import os

    for name in [k for k in os.environ if k.upper().startswith("AICMO_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def set_transports(**profiles: dict[str, Any]) -> None:
        monkeypatch.setenv("AICMO_TRANSPORTS", json.dumps(profiles))

    return set_transports


def test_a_plain_server_shows_its_banner_and_extensions(smtp_sink: SmtpSink, settings: Any, run: Run) -> None:
    settings(relay={"kind": "smtp", "host": smtp_sink.host, "port": smtp_sink.port, "tls": "none"})
    code, out, err = run("transport", "test", "relay")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"connected to {smtp_sink.host}:{smtp_sink.port} (in the clear)"
    assert lines[1].startswith("banner: 220 ")
    assert lines[2].startswith("EHLO ") and "8BITMIME" in lines[2]
    assert lines[3] == "AUTH: not configured (no username): none tried"
    assert smtp_sink.messages == []


def test_starttls_and_auth_as_configured_without_printing_the_password(
    smtp_tls_server: StartServer, tls_certificate: SelfSignedCertificate, settings: Any, run: Run
) -> None:
    server = smtp_tls_server("starttls", users={"alex": PASSWORD})
    profile = {
        "kind": "smtp",
        "host": server.host,
        "port": server.port,
        "tls": "starttls",
        "username": "alex",
        "password": PASSWORD,
        "ca_file": str(tls_certificate.cert_path),
    }
    settings(default=profile)
    code, out, err = run("transport", "test", "default")
    assert code == 0, err
    assert "STARTTLS" in out.splitlines()[2]
    assert any(line.startswith("STARTTLS: TLSv1.") for line in out.splitlines())
    assert "EHLO again: " in out and "AUTH" in out.split("EHLO again: ")[1]
    assert out.splitlines()[-1].startswith("AUTH as alex: accepted (235")
    assert PASSWORD not in out + err
    assert server.logins == [("alex", True)] and server.messages == []

    settings(default=profile | {"password": "wrong-" + PASSWORD})
    code, out, err = run("transport", "test", "default")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"error: {server.host}:{server.port} refused AUTH as 'alex': 535")
    assert PASSWORD not in out + err


def test_an_unreachable_server_or_an_unknown_transport_is_one_line(settings: Any, run: Run) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings(default={"kind": "smtp", "host": "127.0.0.1", "port": port, "tls": "none", "timeout_s": 5})
    code, _, err = run("transport", "test", "default")
    assert code == 2
    assert one_error_line(err).startswith(f"error: cannot talk to 127.0.0.1:{port} (at connect): ")
    code, _, err = run("transport", "test", "bulk")
    assert code == 2 and one_error_line(err) == "error: no transport 'bulk' in AICMO_TRANSPORTS (defined: default)"


def test_starttls_missing_on_the_server_is_one_line(smtp_sink: SmtpSink, settings: Any, run: Run) -> None:
    settings(default={"kind": "smtp", "host": smtp_sink.host, "port": smtp_sink.port, "tls": "starttls"})
    code, _, err = run("transport", "test", "default")
    assert code == 2
    assert one_error_line(err).endswith("does not offer STARTTLS, and transport tls is starttls")


def test_send_test_sends_one_email_and_prints_the_servers_answer(smtp_sink: SmtpSink, settings: Any, run: Run) -> None:
    settings(default={"kind": "smtp", "host": smtp_sink.host, "port": smtp_sink.port, "tls": "none"})
    code, out, err = run("transport", "send-test", "default", "--to", "pat@example.com", "--from", "alex@example.com")
    assert code == 0, err
    assert out.strip().startswith(f"sent to pat@example.com from alex@example.com through {smtp_sink.host}")
    assert "the server said 250" in out
    (got,) = smtp_sink.messages
    assert got.rcpt_tos == ["pat@example.com"] and got.message["Subject"] == "AICMO transport test (default)"

    smtp_sink.reply_for["gone@example.com"] = "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"
    code, _, err = run("transport", "send-test", "default", "--to", "gone@example.com", "--from", "alex@example.com")
    assert code == 2
    assert one_error_line(err).startswith("error: not sent (permanent at rcpt): 550 5.1.1")
    code, _, err = run("transport", "send-test", "default", "--to", "pat@example.com")
    assert code == 2 and one_error_line(err).startswith("error: give --from ADDRESS")
