"""Settings: the new ones and their defaults, a bad value is one line, `python run.py settings` masks secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.main import load_settings, main
from aicmo_actors.cli.settings_cmd import describe_settings, masked
from aicmo_actors.settings import Settings, TransportProfile, public_url_problem

RUN_PY = Path(__file__).resolve().parents[2] / "run.py"
SMTP = {"kind": "smtp", "host": "smtp.example.com", "username": "alex", "password": "hunter2-secret"}


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AICMO_* variable from the outside, and a working folder without a .env."""
    for key in list(os.environ):
        if key.upper().startswith("AICMO_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_py(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("AICMO_")}
    environ.update(AICMO_DATABASE_URL=f"sqlite+aiosqlite:///{cwd}/aicmo.db", **env)
    return subprocess.run(
        [sys.executable, str(RUN_PY), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


# -- the model ------------------------------------------------------------------------------------------


def test_the_new_settings_and_their_defaults(clean_env: Path) -> None:
    s = Settings()
    assert s.alert_from is None
    assert (s.soft_bounce_retry_s, s.auto_reply_pause_s, s.soft_bounces_as_hard) == (86400, 7 * 86400, 3)
    assert s.allow_test_domains is False
    assert (s.classify_timeout_s, s.classify_isolation) == (10, "process")
    assert (s.inbound_max_bytes, s.inbound_max_parts, s.inbound_max_depth, s.inbound_max_decoded_bytes) == (
        10_000_000,
        200,
        20,
        25_000_000,
    )
    assert s.send_error_pause_after == 3
    assert (s.http_header_timeout_s, s.http_max_connections) == (10.0, 100)
    assert s.transports["default"].helo_name is None


def test_every_setting_of_the_service_says_what_it_means() -> None:
    runtime = {"log_level"}  # declared in aicmo_actors/runtime/settings.py, without a description
    missing = [name for name, f in Settings.model_fields.items() if not f.description and name not in runtime]
    assert missing == []
    assert all(f.description for f in TransportProfile.model_fields.values())


def test_smtp_needs_a_host_and_the_maildir_default_needs_none() -> None:
    assert TransportProfile().kind == "maildir" and TransportProfile().host is None
    assert TransportProfile(kind="smtp", host="smtp.example.com").host == "smtp.example.com"
    with pytest.raises(ValidationError, match="kind smtp needs a host"):
        TransportProfile(kind="smtp")
    with pytest.raises(ValidationError, match="kind smtp needs a host"):
        TransportProfile(kind="smtp", host="  ")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://links.agency.com", True),
        ("https://links.agency.com:8443/base", True),
        ("http://links.agency.com", False),
        ("https://localhost", False),
        ("https://127.0.0.1:8080", False),
        ("https://[::1]", False),
        ("https://10.1.2.3", False),
        ("https://mail.localhost", False),
    ],
)
def test_public_url_problem(url: str, ok: bool) -> None:
    assert (public_url_problem(url) is None) is ok


# -- a bad value: one line naming the variable ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AICMO_TRANSPORTS", "{bad", "invalid setting AICMO_TRANSPORTS: not valid JSON: "),
        (
            "AICMO_TRANSPORTS",
            '{"default": {"kind": "smtp"}}',
            "invalid setting AICMO_TRANSPORTS.default: kind smtp needs a host",
        ),
        (
            "AICMO_TRANSPORTS",
            '{"default": {"kind": "smtp", "host": "h", "port": "x"}}',
            "invalid setting AICMO_TRANSPORTS.default.port: ",
        ),
        ("AICMO_INBOXES", "[1, 2]", "invalid setting AICMO_INBOXES: "),
        (
            "AICMO_INBOXES",
            '{"default": {"kind": "imap", "passwd": "x"}}',
            "invalid setting AICMO_INBOXES.default.passwd: ",
        ),
        ("AICMO_SEED", "seven", "invalid setting AICMO_SEED: "),
        ("AICMO_CLASSIFY_ISOLATION", "thread", "invalid setting AICMO_CLASSIFY_ISOLATION: "),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UserError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message
    assert info.value.exit_code == 2


def test_a_bad_setting_never_echoes_its_value(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICMO_TRANSPORTS", json.dumps({"default": {**SMTP, "port": "hunter2-secret"}}))
    with pytest.raises(UserError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_a_bad_dotenv_file_is_one_line(clean_env: Path) -> None:
    (clean_env / ".env").write_text("AICMO_TRANSPORTS={oops\n")
    with pytest.raises(UserError, match=r"^invalid setting AICMO_TRANSPORTS \(in \.env\): not valid JSON"):
        load_settings()
    (clean_env / ".env").write_bytes(b"AICMO_SEED=\xff\n")
    with pytest.raises(UserError, match=r"^cannot read \.env: it is not UTF-8"):
        load_settings()


def test_malformed_json_through_run_py_is_exit_2_and_one_line(tmp_path: Path) -> None:
    for name in ("AICMO_TRANSPORTS", "AICMO_INBOXES"):
        done = run_py(tmp_path, "campaign", "list", **{name: "{bad"})
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: invalid setting {name}: not valid JSON")
        assert done.stdout == ""


# -- python run.py settings --------------------------------------------------------------------------------


def test_masked_hides_every_secret() -> None:
    profile = TransportProfile.model_validate(SMTP)
    assert masked(profile)["password"] == "***"
    assert masked(profile)["username"] == "alex"
    assert (
        masked("postgresql+asyncpg://aicmo:pw-123@db.internal/aicmo")
        == "postgresql+asyncpg://aicmo:***@db.internal/aicmo"
    )
    assert masked("some-token-value", "api_token") == "***"
    assert masked(None, "password") is None


def test_describe_settings_knows_where_each_value_came_from(clean_env: Path) -> None:
    (clean_env / ".env").write_text("AICMO_SEED=7\nAICMO_TICK_INTERVAL_S=5\n")
    environ = {"AICMO_TICK_INTERVAL_S": "9", "aicmo_http_port": "9000"}
    rows = {row.variable: row for row in describe_settings(Settings(), environ, clean_env / ".env")}
    assert rows["AICMO_SEED"].source == ".env"
    assert rows["AICMO_TICK_INTERVAL_S"].source == "environment"  # the environment wins over .env
    assert rows["AICMO_HTTP_PORT"].source == "environment"  # names are not case-sensitive
    assert rows["AICMO_DATABASE_URL"].source == "default"
    assert rows["AICMO_TRANSPORTS"].fields is not None and "helo_name" in rows["AICMO_TRANSPORTS"].fields
    assert rows["AICMO_SEED"].description


def test_the_settings_command_masks_secrets_and_names_sources(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AICMO_UNSUBSCRIBE_SECRET=dotenv-secret-xyz\nAICMO_SEED=7\n")
    env = {
        "AICMO_TRANSPORTS": json.dumps({"default": SMTP}),
        "AICMO_INBOXES": json.dumps(
            {"default": {"kind": "imap", "host": "imap.example.com", "password": "imap-pass-123"}}
        ),
        "AICMO_PUBLIC_URL": "https://links.example.com",
    }
    text = run_py(tmp_path, "settings", **env)
    assert text.returncode == 0, text.stderr
    as_json = run_py(tmp_path, "settings", "--json", **env)
    assert as_json.returncode == 0, as_json.stderr
    for out in (text.stdout, as_json.stdout):
        for secret in ("hunter2-secret", "dotenv-secret-xyz", "imap-pass-123"):
            assert secret not in out
    assert "AICMO_TRANSPORTS.default.password = ***" in text.stdout
    assert "AICMO_TRANSPORTS.default.host = smtp.example.com" in text.stdout
    assert "AICMO_UNSUBSCRIBE_SECRET = ***   (.env" in text.stdout
    assert "AICMO_PUBLIC_URL = https://links.example.com   (environment; default http://127.0.0.1:8080)" in text.stdout
    assert "AICMO_DATABASE_URL = " in text.stdout
    data = json.loads(as_json.stdout)
    assert set(data) == {f"AICMO_{name.upper()}" for name in Settings.model_fields}
    assert data["AICMO_TRANSPORTS"]["value"]["default"]["password"] == "***"
    assert data["AICMO_TRANSPORTS"]["source"] == "environment"
    assert data["AICMO_SEED"] == {
        "value": 7,
        "source": ".env",
        "default": None,
        "description": Settings.model_fields["seed"].description,
    }
    assert data["AICMO_ALLOW_TEST_DOMAINS"]["source"] == "default"
    assert "AICMO_TRANSPORTS" in data and "helo_name" in data["AICMO_TRANSPORTS"]["fields"]


def test_the_settings_command_shows_chosen_ones(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "seed", "AICMO_ALLOW_TEST_DOMAINS", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"AICMO_SEED", "AICMO_ALLOW_TEST_DOMAINS"}
    assert main(["settings", "no_such_thing"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: no setting AICMO_NO_SUCH_THING: `python run.py settings` lists them all"
    )
