"""The web app in a real browser: signing in and out, the modules page and its switches,
what a viewer sees and may do, and forms without their CSRF token."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.plugins.browser import WebService, absent, screenshot, sign_in, wait_for_text

pytestmark = [pytest.mark.integration]


def _post(url: str, fields: dict[str, str], cookie: str | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    if cookie:
        request.add_header("Cookie", cookie)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _session(browser: Any) -> str:
    cookie = browser.get_cookie("aicmo_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    return f"aicmo_session={cookie['value']}"


def test_an_anonymous_visitor_is_sent_to_sign_in_and_back(browser: Any, web_service: WebService) -> None:
    browser.get(f"{web_service.url}/app/modules")
    assert "/app/login" in browser.current_url
    screenshot(browser, "login")
    sign_in(browser, web_service, "viewer1", here=True)
    assert browser.current_url.endswith("/app/modules")


def test_an_operator_switches_the_module_off_and_on(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/modules")
    screenshot(browser, "modules")
    section = browser.find_element(By.ID, "module-cam")
    section.find_element(By.NAME, "reason").send_keys("browser test")
    section.find_element(By.NAME, "confirm").click()
    section.find_element(By.ID, "switch-cam").click()
    wait_for_text(browser, "Module cam switched off.")
    health = browser.find_element(By.CSS_SELECTOR, "#module-cam [data-health]")
    assert health.get_attribute("data-health") == "disabled"
    assert "browser test" in browser.find_element(By.ID, "module-cam").text
    browser.find_element(By.ID, "switch-cam").click()
    wait_for_text(browser, "Module cam switched on.")
    assert "cam" in web_service.cli("audit", "--action", "module.", "--json")


def test_a_viewer_sees_no_switch_and_cannot_post_one_by_hand(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/modules")
    assert absent(browser, By.ID, "switch-cam")
    assert absent(browser, By.ID, "worker-switch")
    cookie = _session(browser)
    # A valid CSRF token of this session (the sign-out form carries one) does not make a
    # viewer's hand-made form an operator's: the role is checked on the server.
    token = browser.find_element(By.CSS_SELECTOR, ".signout input[name=csrf]").get_attribute("value")
    status, body = _post(f"{web_service.url}/app/modules/cam/switch", {"enabled": "off", "csrf": token}, cookie)
    assert status == 403 and "may only look" in body
    assert '"enabled": true' in web_service.cli("modules", "--json")


def test_a_form_without_its_csrf_token_is_refused(browser: Any, web_service: WebService) -> None:
    sign_in(browser, web_service, "operator1")
    cookie = _session(browser)
    status, body = _post(f"{web_service.url}/app/modules/cam/switch", {"enabled": "off"}, cookie)
    assert status == 403 and "expired" in body
    assert '"enabled": true' in web_service.cli("modules", "--json")


def test_signing_out_ends_the_session(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "viewer1")
    old = _session(browser)
    browser.get(f"{web_service.url}/app/modules")
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait_for_text(browser, "Sign in")
    assert "/app/login" in browser.current_url
    status, _ = _post(f"{web_service.url}/app/modules/cam/switch", {"enabled": "off"}, old)
    assert status == 303  # the old cookie no longer signs anyone in: back to the sign-in page
