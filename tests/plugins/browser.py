"""A real headless Chromium (Debian's `chromium` + `chromium-driver`, through Selenium) and a
real service serving the web app over a simulated month, for the web app's tests.

- `web_service` (one per test session, shared by the web tests: each leaves what it switched
  or paused as it found it): `python run.py demo` in a fresh folder, then the service
  (`python run.py`) on the demo's database with the worker paused (nothing is sent), on a
  free port; users `owner1`, `operator1` and `viewer1` (password `PASSWORD`) made with
  `python run.py users add`. Stopped with SIGTERM at the end.
- `browser`: the session's Chromium with no cookies; `sign_in(browser, service, name)`; `screenshot(browser,
  name)` keeps a PNG under `tests/artifacts/screenshots/` (the README names the folder).

Without Chromium the tests are skipped on a developer machine and fail under `CI=true`
(`.ci/run` installs it). Nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "tests" / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "a-long-test-password"
USERS = {"owner1": "owner", "operator1": "operator", "viewer1": "viewer"}
#: How long a lookup waits for its element to appear (a page still loading after a click).
IMPLICIT_WAIT_S = 5


def _missing(what: str) -> None:
    message = f"{what} (install: apt-get install -y chromium chromium-driver; pip install selenium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WebService:
    url: str
    root: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, str(REPO / "run.py"), *args],
            cwd=self.root,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"run.py {' '.join(args)} exited {done.returncode}: {done.stdout}{done.stderr}"
        return done.stdout

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def service_env(database: Path, port: int) -> dict[str, str]:
    """The environment of a service for a browser test: its database, its port, hourly ticks."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AICMO_")},
        "AICMO_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "AICMO_HTTP_PORT": str(port),
        "AICMO_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "AICMO_TICK_INTERVAL_S": "3600",
        "AICMO_LOG_FORMAT": "json",
        "AICMO_ALLOW_TEST_DOMAINS": "true",
        "PYTHONUNBUFFERED": "1",
    }


@contextlib.contextmanager
def serving(
    root: Path, database: Path, users: dict[str, str], prepare: Callable[[WebService], None] | None = None
) -> Iterator[WebService]:
    """`python run.py` on `database` (prepared by `prepare` first, with the worker paused and
    `users` added, each with `PASSWORD`), until its /healthz answers; stopped after."""
    port = _free_port()
    env = service_env(database, port)
    base = WebService(f"http://127.0.0.1:{port}", root, env, None, root / "service.log")  # type: ignore[arg-type]
    if prepare is not None:
        prepare(base)
    base.cli("worker", "pause", "--reason", "browser tests: nothing is sent")
    for name, role in users.items():
        base.cli("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
    with base.log.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "run.py")],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = WebService(base.url, root, env, proc, base.log)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{service.url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the service did not start:\n{service.output()}")
        time.sleep(0.2)
    try:
        yield service
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def web_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebService]:
    root = tmp_path_factory.mktemp("web")

    def demo(base: WebService) -> None:
        base.cli("demo", "--leads", "40", "--days", "10", "--seed", "3", "--dir", "demo")

    with serving(root, root / "demo" / "simulation.db", USERS, demo) as service:
        yield service


@pytest.fixture(scope="session")
def _chromium() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists() and shutil.which(CHROMEDRIVER)):
        _missing("Chromium or chromedriver is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(IMPLICIT_WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(_chromium: Any) -> Iterator[Any]:
    """The session's Chromium, signed out and at its usual size for each test (starting a
    browser per test cost more than the tests themselves)."""
    _chromium.set_window_size(1280, 900)
    _chromium.get("about:blank")
    _chromium.delete_all_cookies()
    yield _chromium
    _chromium.delete_all_cookies()


def sign_in(driver: Any, service: WebService, name: str, password: str = PASSWORD, *, here: bool = False) -> None:
    """Sign in through the form (`here`: on the sign-in page the browser is on already)."""
    from selenium.webdriver.common.by import By

    if not here:
        driver.get(f"{service.url}/app/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(
        lambda d: "/login" not in d.current_url or "Wrong name" in d.page_source, "signing in never finished"
    )
    assert "/login" not in driver.current_url, driver.page_source[:2000]


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for_text(driver: Any, text: str, timeout: float = 10.0) -> None:
    """Wait until the page shows `text` (after a click that navigates, say)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: text in d.page_source, f"page never showed {text!r}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post_form(browser: Any, url: str, fields: dict[str, str]) -> tuple[int, str, str]:
    """A hand-made form POST in the browser's session, with its valid CSRF token: (status, body,
    Location), a redirect not followed."""
    from selenium.webdriver.common.by import By

    token = browser.find_element(By.CSS_SELECTOR, ".signout input[name=csrf]").get_attribute("value")
    cookie = browser.get_cookie("aicmo_session")
    assert token and cookie
    data = urllib.parse.urlencode({"csrf": token, **fields}).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Cookie", f"aicmo_session={cookie['value']}")
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as answer:
            return answer.status, answer.read().decode(), answer.headers.get("Location", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("Location", "")


def absent(driver: Any, by: str, value: str) -> bool:
    """Whether the page has no such element, asked at once: `find_elements` would first wait
    the whole implicit wait for one to appear (5 s per absence checked)."""
    driver.implicitly_wait(0)
    try:
        return not driver.find_elements(by, value)
    finally:
        driver.implicitly_wait(IMPLICIT_WAIT_S)
