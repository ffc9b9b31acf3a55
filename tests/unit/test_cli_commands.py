"""The command line on bad input and bad surroundings: one line on stderr, exit codes that tell the truth.

Every test runs `python run.py` as a subprocess in its own working folder, with
AICMO_DATABASE_URL pointing into it: what a user sees, tracebacks included.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_PY = REPO / "run.py"
EXAMPLES = REPO / "examples"
CAMPAIGN = EXAMPLES / "campaign.toml"
SMTP_TRANSPORTS = json.dumps({"default": {"kind": "smtp", "host": "smtp.example.com"}})


def env_for(cwd: Path, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("AICMO_")}
    environ.update(
        {"AICMO_DATABASE_URL": f"sqlite+aiosqlite:///{cwd}/aicmo.db", "PYTHONDONTWRITEBYTECODE": "1", **extra}
    )
    return environ


def run_py(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN_PY), *args],
        cwd=cwd,
        env=env_for(cwd, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused command printed on stderr."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A working folder with the example campaign stored in its database."""
    done = run_py(tmp_path, "campaign", "create", str(CAMPAIGN))
    assert done.returncode == 0, done.stderr
    return tmp_path


# -- campaign create runs the checks of campaign check ------------------------------------------------


def test_create_refuses_what_check_refuses(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(CAMPAIGN.read_text().replace("{{ first_name }}", "{{ first_nme }}", 1))
    check = run_py(tmp_path, "campaign", "check", str(broken))
    assert check.returncode == 1 and "first_nme" in check.stdout
    create = run_py(tmp_path, "campaign", "create", str(broken))
    assert create.returncode == 1
    assert "first_nme" in create.stderr and "Traceback" not in create.stderr
    assert create.stderr.splitlines()[-1].startswith("error: campaign 'agency-intro' was not stored: 1 problem")
    assert "no campaigns yet" in run_py(tmp_path, "campaign", "list").stdout


def test_a_daily_cap_of_zero_is_refused(tmp_path: Path) -> None:
    zero = tmp_path / "zero.toml"
    text = CAMPAIGN.read_text()
    assert "daily_cap = 60" in text
    zero.write_text(text.replace("daily_cap = 60", "daily_cap = 0"))
    for action in ("check", "create"):
        done = run_py(tmp_path, "campaign", action, str(zero))
        assert done.returncode == 1
        assert "limits.daily_cap is 0: the campaign would never send" in done.stdout + done.stderr


def test_a_transport_the_settings_do_not_define_is_refused(tmp_path: Path) -> None:
    transports = json.dumps({"bulk": {}})
    check = run_py(tmp_path, "campaign", "check", str(CAMPAIGN), "--json", AICMO_TRANSPORTS=transports)
    assert check.returncode == 1
    problems = json.loads(check.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["settings", "settings"]
    assert (
        "alex@outreach.example.com uses transport 'default', which AICMO_TRANSPORTS does not define (defined: bulk)"
        in problems[0]["message"]
    )
    create = run_py(tmp_path, "campaign", "create", str(CAMPAIGN), AICMO_TRANSPORTS=transports)
    assert create.returncode == 1 and "does not define" in create.stderr


@pytest.mark.parametrize("public_url", ["http://127.0.0.1:8080", "http://links.agency.com", "https://localhost:8443"])
def test_smtp_with_an_unreachable_public_url_is_refused(tmp_path: Path, public_url: str) -> None:
    settings = {"AICMO_TRANSPORTS": SMTP_TRANSPORTS, "AICMO_PUBLIC_URL": public_url}
    check = run_py(tmp_path, "campaign", "check", str(CAMPAIGN), **settings)
    assert check.returncode == 1
    reason = [line for line in check.stdout.splitlines() if "AICMO_PUBLIC_URL" in line]
    assert len(reason) == 1 and ("RFC 8058" in reason[0] or "cannot reach" in reason[0])
    create = run_py(tmp_path, "campaign", "create", str(CAMPAIGN), **settings)
    assert create.returncode == 1 and "AICMO_PUBLIC_URL" in create.stderr
    assert "Traceback" not in create.stderr


def test_smtp_with_a_public_https_url_is_stored(tmp_path: Path) -> None:
    done = run_py(
        tmp_path,
        "campaign",
        "create",
        str(CAMPAIGN),
        AICMO_TRANSPORTS=SMTP_TRANSPORTS,
        AICMO_PUBLIC_URL="https://links.agency.com",
    )
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout


def test_the_maildir_default_does_not_need_a_public_url(tmp_path: Path) -> None:
    done = run_py(tmp_path, "campaign", "check", str(CAMPAIGN), "--leads", str(EXAMPLES / "leads.csv"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_with_no_readable_lead_is_a_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("email,first_name\nnot-an-address,A\nalso bad,B\n")
    done = run_py(tmp_path, "campaign", "check", str(CAMPAIGN), "--leads", str(bad))
    assert done.returncode == 1
    assert one_error_line(done).startswith(f"error: no lead of {bad} could be read: every row (2) was rejected")
    assert "renders for 0 leads" not in done.stdout
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    done = run_py(tmp_path, "campaign", "check", str(CAMPAIGN), "--leads", str(empty))
    assert done.returncode == 1
    assert one_error_line(done) == f"error: no lead of {empty} could be read: the file is empty"


def test_test_domains_need_the_setting(tmp_path: Path) -> None:
    test_mailbox = tmp_path / "test.toml"
    test_mailbox.write_text(CAMPAIGN.read_text().replace("outreach.example.com", "outreach.test"))
    refused = run_py(tmp_path, "campaign", "create", str(test_mailbox))
    assert refused.returncode == 2 and "special-use or reserved name" in one_error_line(refused)
    done = run_py(tmp_path, "campaign", "create", str(test_mailbox), AICMO_ALLOW_TEST_DOMAINS="true")
    assert done.returncode == 0, done.stderr
    # Once stored, the campaign is read back whatever the setting says now.
    assert "agency-intro" in run_py(tmp_path, "campaign", "list").stdout
    leads = tmp_path / "leads.csv"
    leads.write_text("email\nann@corp.test\nbob@mail.invalid\ncid@localhost\n")
    assert run_py(tmp_path, "leads", "import", str(leads), "--campaign", "agency-intro").returncode == 1
    imported = run_py(
        tmp_path, "leads", "import", str(leads), "--campaign", "agency-intro", AICMO_ALLOW_TEST_DOMAINS="1"
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "3 imported" in imported.stdout


# -- leads import: exit codes and what it prints --------------------------------------------------------


def test_leads_import_exit_codes(work: Path) -> None:
    good = work / "good.csv"
    good.write_text("email,first_name\nann@corp.example.com,Ann\nann@corp.example.com,Ann\nbob@corp.example.com,Bob\n")
    done = run_py(work, "leads", "import", str(good), "--campaign", "agency-intro")
    assert done.returncode == 0, done.stderr
    assert "2 imported" in done.stdout and "1 duplicates" in done.stdout and done.stderr == ""
    # Everything already there (or suppressed) is still a full import.
    assert run_py(work, "suppress", "cid@corp.example.com").returncode == 0
    good.write_text("email\nann@corp.example.com\ncid@corp.example.com\n")
    done = run_py(work, "leads", "import", str(good), "--campaign", "agency-intro")
    assert done.returncode == 0 and "1 already in the campaign, 1 suppressed" in done.stdout

    partial = work / "partial.csv"
    partial.write_text("email\ndan@corp.example.com\nnot-an-address\n")
    done = run_py(work, "leads", "import", str(partial), "--campaign", "agency-intro")
    assert done.returncode == 3
    assert "1 imported" in done.stdout and "line 3: invalid address 'not-an-address'" in done.stdout
    assert "partial import" in done.stderr and "Traceback" not in done.stderr

    rejected = work / "rejected.csv"
    rejected.write_text("email\nnope\nnope either\n")
    done = run_py(work, "leads", "import", str(rejected), "--campaign", "agency-intro")
    assert done.returncode == 1
    assert one_error_line(done) == "error: rejected.csv: nothing imported: every row was rejected"

    for name, content in (("empty.csv", ""), ("header.csv", "email,first_name\n")):
        (work / name).write_text(content)
        done = run_py(work, "leads", "import", str(work / name), "--campaign", "agency-intro")
        assert done.returncode == 1
        assert "nothing imported" in one_error_line(done)


def test_leads_import_help_documents_the_exit_codes(tmp_path: Path) -> None:
    done = run_py(tmp_path, "leads", "import", "--help")
    text = " ".join(done.stdout.split())
    assert "3 partial import" in text and "1 nothing imported" in text and "0 every row" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4,
            "it looks like a zip archive or an Excel/OpenDocument workbook",
        ),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "it holds binary data (NUL bytes)"),
        (b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4, "it looks like a gzip archive"),
    ],
)
def test_a_binary_file_is_one_readable_line(work: Path, content: bytes, expected: str) -> None:
    path = work / "leads.csv"
    path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, str(RUN_PY), "leads", "import", str(path), "--campaign", "agency-intro"],
        cwd=work,
        env=env_for(work),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    stderr = done.stderr.decode("utf-8")  # text, not the file's bytes
    assert stderr.endswith("\n") and stderr[:-1].isprintable()  # one line, nothing raw
    assert expected in stderr and "Traceback" not in stderr


def test_rows_never_print_control_characters(work: Path) -> None:
    path = work / "leads.csv"
    path.write_bytes(
        b"email,first_name\r\n"
        b"\x1b[31mred@corp.example.com,Red\r\n"  # an ANSI escape in the address
        b"caf\xe9@corp.example.com,Zo\xeb\r\n"  # not UTF-8: read as cp1252
        b"ok@corp.example.com,\x1b]0;title\x07Ok\r\n"
    )
    done = subprocess.run(
        [sys.executable, str(RUN_PY), "leads", "import", str(path), "--campaign", "agency-intro"],
        cwd=work,
        env=env_for(work),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 3
    out = done.stdout.decode("utf-8")
    assert all(line.isprintable() for line in out.splitlines())
    assert "\\x1b[31mred@corp.example.com" in out
    assert "not UTF-8; it was read as Windows-1252" in out


# -- suppress -------------------------------------------------------------------------------------------------


def test_suppress_refuses_what_is_not_an_address(work: Path) -> None:
    for bad in ("not-an-address", "a@b", "two@@corp.example.com", "x@host.invalid"):
        done = run_py(work, "suppress", bad)
        assert done.returncode == 2
        assert one_error_line(done).startswith(f"error: {bad!r} is not an email address: ")
    done = run_py(work, "suppress", " Bob@Corp.Example.COM ")
    assert done.returncode == 0 and done.stdout.strip() == "bob@corp.example.com suppressed"
    done = run_py(work, "suppress", "x@host.invalid", AICMO_ALLOW_TEST_DOMAINS="true")
    assert done.returncode == 0 and done.stdout.strip() == "x@host.invalid suppressed"


# -- the demo leaves what it did not make alone -------------------------------------------------------------


def demo(cwd: Path, folder: str, *more: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_py(cwd, "demo", "--dir", folder, "--leads", "5", "--days", "1", *more, **extra)


def test_the_demo_leaves_the_service_database_and_mail_in_its_folder_alone(tmp_path: Path) -> None:
    service = tmp_path / "service"
    (service / "mail" / "inbox" / "new").mkdir(parents=True)
    (service / "aicmo.db").write_bytes(b"precious")
    (service / "mail" / "inbox" / "new" / "1.eml").write_text("Subject: keep me\n\nhello\n")
    done = demo(tmp_path, "service")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (service / "aicmo.db").read_bytes() == b"precious"
    assert (service / "mail" / "inbox" / "new" / "1.eml").exists()
    assert (service / "simulation.db").exists()


def test_the_demo_refuses_what_it_did_not_make_and_the_configured_service_database(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    (foreign / "simulation-mail").mkdir(parents=True)
    done = demo(tmp_path, "foreign")
    assert done.returncode == 2 and "holds simulation-mail/, which the demo did not create" in one_error_line(done)
    (tmp_path / "logged").mkdir()
    (tmp_path / "logged" / "simulation.log").write_text("someone's own log")
    done = demo(tmp_path, "logged")
    assert done.returncode == 2 and "holds simulation.log, which the demo did not create" in one_error_line(done)
    assert (tmp_path / "logged" / "simulation.log").read_text() == "someone's own log"

    (tmp_path / ".aicmo-demo").write_text("as if a demo had run here once")
    url = f"sqlite+aiosqlite:///{tmp_path}/simulation.db"
    assert run_py(tmp_path, "campaign", "list", AICMO_DATABASE_URL=url).returncode == 0  # the service's database
    done = demo(tmp_path, ".", AICMO_DATABASE_URL=url)
    assert done.returncode == 2
    assert "is the service's database (AICMO_DATABASE_URL)" in one_error_line(done)


def test_the_demo_runs_again_in_its_own_folder_and_every_path_it_prints_exists(tmp_path: Path) -> None:
    for _ in range(2):
        done = demo(tmp_path, "d")
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "d" / ".aicmo-demo").exists()
    printed = [
        line.split(":", 1)[1].split()[0]
        for line in done.stdout.splitlines()
        if line.strip().startswith(("database:", "replies:", "sent mail:", "log:"))
    ]
    assert len(printed) == 4
    for path in printed:
        assert (tmp_path / path).exists(), path
    assert any((tmp_path / "d" / "simulation-mail" / "outbox" / "new").iterdir())  # what the prospects received
    # The run's log is in its file, not between the lines of the funnel.
    assert not [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("{")]


def test_the_demo_logs_to_its_file_and_counts_the_warnings(tmp_path: Path) -> None:
    done = demo(tmp_path, "d", AICMO_LOG_LEVEL="info")
    assert done.returncode == 0, done.stdout + done.stderr
    logged = (tmp_path / "d" / "simulation.log").read_text().splitlines()
    assert logged and all(json.loads(line)["level"] for line in logged)  # one JSON object a line
    assert not [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("{")]
    (line,) = [line for line in done.stdout.splitlines() if line.strip().startswith("log:")]
    warned = sum(json.loads(x)["level"] in ("warning", "error", "critical") for x in logged)
    assert ("no warning" in line) == (warned == 0), line


def test_the_demo_replaces_a_foreign_folder_only_with_force(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "simulation.db").write_bytes(b"old")
    assert demo(tmp_path, "old").returncode == 2
    done = demo(tmp_path, "old", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "old" / ".aicmo-demo").exists()


# -- the surroundings: closed pipes, read-only and unreachable databases --------------------------------------


def run_into_a_closed_pipe(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`python run.py ARGS | head -0`: the reader is gone before the first byte is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, str(RUN_PY), *args],
            cwd=cwd,
            env=env_for(cwd),
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("args", "codes"),
    [
        # argparse itself swallows the failed write of --help and exits 0.
        (("--help",), {0, 141}),
        (("classify", "CORPUS"), {141}),
        (("settings",), {141}),
    ],
)
def test_a_closed_pipe_is_no_traceback(tmp_path: Path, args: tuple[str, ...], codes: set[int]) -> None:
    corpus = sorted(str(p) for p in (REPO / "tests" / "unit" / "classify" / "corpus").glob("*.eml"))[:5]
    argv = [a for arg in args for a in (corpus if arg == "CORPUS" else [arg])]
    done = run_into_a_closed_pipe(tmp_path, *argv)
    assert done.stderr == b""
    assert done.returncode in codes


def test_a_pipe_closed_after_the_first_line(tmp_path: Path) -> None:
    """`python run.py classify *.eml | head -1`, with more output than a pipe holds."""
    corpus = sorted(str(p) for p in (REPO / "tests" / "unit" / "classify" / "corpus").glob("*.eml"))
    files = (corpus * (400 // len(corpus) + 1))[:400]
    proc = subprocess.Popen(
        [sys.executable, str(RUN_PY), "classify", *files],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert json.loads(first)["file"] == files[0]
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="aicmo-ro-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_read_only_database_is_one_line(shared_tmp: Path) -> None:
    assert run_py(shared_tmp, "campaign", "create", str(CAMPAIGN)).returncode == 0
    (shared_tmp / "aicmo.db").chmod(0o444)
    command = [sys.executable, str(RUN_PY), "campaign", "pause", "agency-intro"]
    if os.geteuid() == 0:  # root writes to any file: run the command as nobody
        setpriv = shutil.which("setpriv")
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            nobody = None
        if setpriv is None or nobody is None:
            pytest.skip("running as root, without setpriv or a user 'nobody' to run as")
        command = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", *command]
    done = subprocess.run(command, cwd=shared_tmp, env=env_for(shared_tmp), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    line = one_error_line(done)
    assert "readonly" in line or "read-only" in line


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    done = run_py(tmp_path, "campaign", "list", AICMO_DATABASE_URL="postgresql+asyncpg://aicmo@127.0.0.1:1/aicmo")
    assert done.returncode == 2
    assert one_error_line(done).startswith(
        "error: cannot reach the database at postgresql+asyncpg://aicmo@127.0.0.1:1/aicmo"
    )
    done = run_py(tmp_path, "campaign", "list", AICMO_DATABASE_URL="mysql://u@h/x")
    assert done.returncode == 2 and "unsupported database URL" in one_error_line(done)


def test_only_the_surroundings_of_a_database_are_one_line() -> None:
    from sqlalchemy.exc import OperationalError

    from aicmo_actors.cli.main import database_failure

    def error(text: str) -> OperationalError:
        return OperationalError("UPDATE x", {}, Exception(text))

    message = database_failure(error("attempt to write a readonly database"))
    assert message is not None and "read-only: give this user write access" in message
    assert database_failure(error("database or disk is full")) is not None
    assert database_failure(error("database is locked")) is not None
    # A bug (bad SQL, a missing table) keeps its traceback.
    assert database_failure(error('near "UPDAT": syntax error')) is None
    assert database_failure(error("no such table: cam_leads")) is None
