"""The campaign pages in a real browser: the list, pausing and resuming, a campaign file
uploaded with a problem (shown at its line) and without, a lead's emails previewed, leads
imported with a bad row, what a viewer sees and may do, and the limits on what is posted."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.plugins.browser import REPO, WebService, absent, screenshot, sign_in, wait_for_text

pytestmark = [pytest.mark.integration]

CAMPAIGN = "agency-intro"
EXAMPLE = (REPO / "examples" / "campaign.toml").read_text(encoding="utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _send(request: urllib.request.Request) -> tuple[int, str, str]:
    """(status, body, Location) without following a redirect."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=60) as answer:
            return answer.status, answer.read().decode(), answer.headers.get("Location", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("Location", "")


def _post(url: str, fields: dict[str, str], cookie: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    request.add_header("Cookie", cookie)
    return _send(request)


def _post_file(url: str, fields: dict[str, str], name: str, filename: str, data: bytes, cookie: str) -> tuple[int, str]:
    boundary = "----aicmo" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    body = b"".join([*parts, head, data, f"\r\n--{boundary}--\r\n".encode()])
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    request.add_header("Cookie", cookie)
    status, text, _ = _send(request)
    return status, text


def _session(browser: Any) -> str:
    cookie = browser.get_cookie("aicmo_session")
    assert cookie is not None
    return f"aicmo_session={cookie['value']}"


def _csrf(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    token = browser.find_element(By.CSS_SELECTOR, ".signout input[name=csrf]").get_attribute("value")
    assert token
    return str(token)


def _status(service: WebService, name: str = CAMPAIGN) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(service.cli("campaign", "status", name, "--json"))
    return found


def _audit(service: WebService, action: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(service.cli("audit", "--action", action, "--json"))
    return rows


def _campaign_file(name: str, *, replace: tuple[str, str] | None = None) -> str:
    text = EXAMPLE.replace(f'name = "{CAMPAIGN}"', f'name = "{name}"')
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    return text


def _line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if fragment in line)


def test_the_list_shows_the_demo_campaign_with_its_counts(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/campaigns")
    screenshot(browser, "campaigns")
    listed = {c["name"]: c for c in json.loads(web_service.cli("campaign", "list", "--json"))}
    row = browser.find_element(By.ID, f"campaign-{CAMPAIGN}")
    cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
    expected = listed[CAMPAIGN]
    assert cells[0] == CAMPAIGN
    assert cells[2:] == [str(expected["leads"]), str(expected["sent"]), str(expected["inbound"])]
    assert int(cells[2]) > 0 and int(cells[3]) > 0
    row.find_element(By.LINK_TEXT, CAMPAIGN).click()
    wait_for_text(browser, f"Campaign {CAMPAIGN}")
    assert browser.find_element(By.ID, "figure-leads").text == str(expected["leads"])
    screenshot(browser, "campaign")


def test_an_operator_pauses_and_resumes_the_campaign(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    if _status(web_service)["status"] != "active":  # the demo may leave it auto-paused
        web_service.cli("campaign", "resume", CAMPAIGN)
    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/campaigns/{CAMPAIGN}")
    browser.find_element(By.CSS_SELECTOR, "#campaign-status input[name=reason]").send_keys("copy under review")
    browser.find_element(By.ID, "pause-campaign").click()
    wait_for_text(browser, f"Campaign {CAMPAIGN} paused")
    status = _status(web_service)
    assert status["status"] == "paused" and status["paused_reason"] == "copy under review"
    assert "copy under review" in browser.find_element(By.ID, "campaign-status").text
    screenshot(browser, "campaign-paused")
    browser.get(f"{web_service.url}/app/campaigns")
    listed = browser.find_element(By.ID, f"campaign-{CAMPAIGN}")
    assert listed.get_attribute("data-status") == "paused" and "copy under review" in listed.text
    browser.get(f"{web_service.url}/app/campaigns/{CAMPAIGN}")
    browser.find_element(By.ID, "resume-campaign").click()
    wait_for_text(browser, f"Campaign {CAMPAIGN} resumed.")
    status = _status(web_service)
    assert status["status"] == "active" and status["paused_reason"] is None
    actions = [
        (r["action"], r["source"], r["actor"]) for r in _audit(web_service, "campaign.") if r["target"] == CAMPAIGN
    ]
    assert ("campaign.pause", "web", "operator1") in actions and ("campaign.resume", "web", "operator1") in actions


def test_an_archived_campaign_cannot_be_resumed(browser: Any, web_service: WebService, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    path = tmp_path / "archived.toml"
    path.write_text(_campaign_file("archived-one"), encoding="utf-8")
    web_service.cli("campaign", "create", str(path))
    web_service.cli("campaign", "archive", "archived-one", "--yes")
    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/campaigns/archived-one")
    assert browser.find_element(By.CSS_SELECTOR, "#campaign-status [data-status]").text == "archived"
    assert absent(browser, By.ID, "resume-campaign")
    assert absent(browser, By.ID, "import-leads")
    fields = {"csrf": _csrf(browser)}
    for action in ("resume", "pause"):
        status, _, location = _post(f"{web_service.url}/app/campaigns/archived-one/{action}", fields, _session(browser))
        assert status == 303 and "problem=" in location and "archived" in urllib.parse.unquote_plus(location)
    after = _status(web_service, "archived-one")
    assert after["status"] == "paused" and after["paused_reason"] == "archived"


def test_a_campaign_file_with_problems_is_shown_at_their_lines_then_a_good_one_is_stored(
    browser: Any, web_service: WebService, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "operator1")
    # A template syntax error in the second step's body, on the third line of the body.
    bad = _campaign_file("web-intro", replace=("just bringing this", "just {{ first_name } bringing this"))
    (tmp_path / "bad.toml").write_text(bad, encoding="utf-8")
    browser.get(f"{web_service.url}/app/campaigns/new")
    browser.find_element(By.CSS_SELECTOR, "input[type=file][name=file]").send_keys(str(tmp_path / "bad.toml"))
    browser.find_element(By.ID, "upload-submit").click()
    wait_for_text(browser, "nothing was stored")
    line = _line_of(bad, "{{ first_name } bringing")
    assert browser.find_element(By.ID, f"line-{line}").text == f"{line} {bad.split(chr(10))[line - 1]}"
    beside = browser.find_element(By.CSS_SELECTOR, f"tr.line-problem[data-line='{line}']")
    assert "step 2 variant A body: syntax error on line 3" in beside.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.line-problem")) == 1
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", beside)
    screenshot(browser, "campaign-upload-problems")

    # A bad field: an unknown key, at its own line (pasted as text this time).
    typo = _campaign_file("web-intro", replace=("delay_days = 7", "delay_dayz = 7"))
    textarea = browser.find_element(By.NAME, "toml")
    textarea.clear()
    browser.execute_script("arguments[0].value = arguments[1];", textarea, typo)
    browser.find_element(By.ID, "upload-submit").click()
    wait_for_text(browser, "unknown key (a typo?)")
    line = _line_of(typo, "delay_dayz")
    beside = browser.find_element(By.CSS_SELECTOR, f"tr.line-problem[data-line='{line}']")
    assert "steps[2].delay_dayz: unknown key (a typo?)" in beside.text
    assert "web-intro" not in web_service.cli("campaign", "list", "--json")

    good = tmp_path / "good.toml"
    good.write_text(_campaign_file("web-intro"), encoding="utf-8")
    browser.find_element(By.CSS_SELECTOR, "input[type=file][name=file]").send_keys(str(good))
    browser.find_element(By.ID, "upload-submit").click()
    wait_for_text(browser, "Campaign web-intro created: 3 steps, 2 mailboxes.")
    assert browser.current_url.split("?")[0].endswith("/app/campaigns/web-intro")
    listed = {c["name"]: c for c in json.loads(web_service.cli("campaign", "list", "--json"))}
    assert listed["web-intro"]["status"] == "active" and listed["web-intro"]["leads"] == 0
    assert any(r["target"] == "web-intro" and r["source"] == "web" for r in _audit(web_service, "campaign.create"))
    screenshot(browser, "campaign-created")


def test_a_lead_s_emails_are_previewed(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    lead = json.loads(web_service.cli("leads", "list", "--campaign", CAMPAIGN, "--limit", "1", "--json"))
    address = lead["email"]
    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/campaigns/{CAMPAIGN}/preview")
    browser.find_element(By.NAME, "lead").send_keys(address)
    browser.find_element(By.ID, "preview-submit").click()
    wait_for_text(browser, "Nothing is sent")
    expected = [
        json.loads(line)
        for line in web_service.cli("campaign", "preview", CAMPAIGN, "--lead", address, "--json").splitlines()
    ]
    sections = browser.find_elements(By.CSS_SELECTOR, "section.preview-email")
    assert len(sections) == len(expected) >= 3
    for want in expected:
        section = browser.find_element(By.ID, f"step-{want['step']}-{want['variant']}")
        assert want["headers"]["Subject"] in section.text
        assert address in section.text  # the To header
        assert want["text"].split("\n")[0] in section.text
    screenshot(browser, "campaign-preview")
    browser.get(f"{web_service.url}/app/campaigns/{CAMPAIGN}/preview?lead=nobody%40example.com")
    wait_for_text(browser, "No lead 'nobody@example.com' in campaign")


def test_leads_are_imported_with_a_report_of_the_bad_row(browser: Any, web_service: WebService, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    csv_file = tmp_path / "new-leads.csv"
    csv_file.write_text(
        "email,first_name,company,industry\n"
        "ada.webimport@example.com,Ada,Web Import One,software\n"
        "not-an-address,Bad,Row,software\n"
        "bo.webimport@example.com,Bo,Web Import Two,energy\n",
        encoding="utf-8",
    )
    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/campaigns/{CAMPAIGN}")
    browser.find_element(By.CSS_SELECTOR, "#import input[type=file]").send_keys(str(csv_file))
    browser.find_element(By.ID, "import-leads").click()
    wait_for_text(browser, "Rejected rows")
    counts = {
        cell.get_attribute("data-count"): cell.text
        for cell in browser.find_elements(By.CSS_SELECTOR, "#import-counts td[data-count]")
    }
    assert counts == {
        "rows": "3",
        "imported": "2",
        "existing": "0",
        "suppressed": "0",
        "duplicates": "0",
        "rejected": "1",
    }
    rejected = browser.find_element(By.CSS_SELECTOR, "#rejected tr[data-line='3']")
    assert "invalid address 'not-an-address'" in rejected.text
    assert "Partial import" in browser.page_source
    screenshot(browser, "campaign-import")
    found = web_service.cli("leads", "list", "--campaign", CAMPAIGN, "--email", "webimport", "--json").splitlines()
    assert sorted(json.loads(line)["email"] for line in found) == [
        "ada.webimport@example.com",
        "bo.webimport@example.com",
    ]
    imports = [r for r in _audit(web_service, "leads.import") if r["target"] == CAMPAIGN]
    assert imports and imports[0]["source"] == "web" and imports[0]["detail"]["imported"] == 2
    # The same file again changes nothing (the first report is on the page until the second
    # replaces it: wait for the old page to go, not for words both pages have).
    first_report = browser.find_element(By.CSS_SELECTOR, "td[data-count='existing']")
    browser.find_element(By.CSS_SELECTOR, "input[type=file][name=file]").send_keys(str(csv_file))
    browser.find_element(By.ID, "import-leads").click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(first_report))
    wait_for_text(browser, "Rejected rows")
    assert browser.find_element(By.CSS_SELECTOR, "td[data-count='existing']").text == "2"
    assert browser.find_element(By.CSS_SELECTOR, "td[data-count='imported']").text == "0"


def test_a_leads_file_over_the_limit_is_refused(browser: Any, web_service: WebService) -> None:
    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/campaigns/{CAMPAIGN}")
    row = b"someone@example.com,Some,One\n"
    data = b"email,first_name,last_name\n" + row * (21_000_000 // len(row))
    status, body = _post_file(
        f"{web_service.url}/app/campaigns/{CAMPAIGN}/leads",
        {"csrf": _csrf(browser)},
        "file",
        "huge.csv",
        data,
        _session(browser),
    )
    assert status == 413 and "huge.csv is larger than 20 MB" in body and "nothing was imported" in body
    assert "someone@example.com" not in web_service.cli("leads", "list", "--email", "someone@", "--json")


def test_a_viewer_sees_no_buttons_and_cannot_post_by_hand(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/campaigns")
    assert absent(browser, By.ID, "upload-campaign")
    browser.get(f"{web_service.url}/app/campaigns/{CAMPAIGN}")
    for button in ("pause-campaign", "resume-campaign", "import-leads"):
        assert absent(browser, By.ID, button)
    assert absent(browser, By.CSS_SELECTOR, "main form[method=post]")
    before = _status(web_service)["status"]
    token, cookie = _csrf(browser), _session(browser)
    # A valid CSRF token of this session does not make a viewer's hand-made form an operator's.
    for action in ("pause", "resume"):
        status, body, _ = _post(f"{web_service.url}/app/campaigns/{CAMPAIGN}/{action}", {"csrf": token}, cookie)
        assert status == 403 and "may only look" in body
    status, body, _ = _post(f"{web_service.url}/app/campaigns/new", {"csrf": token, "toml": EXAMPLE}, cookie)
    assert status == 403 and "may only look" in body
    status, body = _post_file(
        f"{web_service.url}/app/campaigns/{CAMPAIGN}/leads",
        {"csrf": token},
        "file",
        "x.csv",
        b"email\nviewer.made@example.com\n",
        cookie,
    )
    assert status == 403 and "may only look" in body
    assert _status(web_service)["status"] == before
    assert "viewer.made" not in web_service.cli("leads", "list", "--email", "viewer.made", "--json")


def test_the_campaign_page_fits_a_narrow_screen(browser: Any, web_service: WebService) -> None:
    sign_in(browser, web_service, "operator1")
    browser.set_window_size(390, 844)
    for path, name in (
        (f"/app/campaigns/{CAMPAIGN}", "campaign-narrow"),
        ("/app/campaigns", "campaigns-narrow"),
        ("/app/campaigns/new", "campaign-upload-narrow"),
    ):
        browser.get(web_service.url + path)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the screen"
        screenshot(browser, name)
