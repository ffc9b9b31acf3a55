"""The unified inbox in a real browser, over a simulated month's replies: hot replies first,
one message with its thread and evidence, an operator correcting a category (and the lead
moving), marking a reply handled, suppressing its sender; a viewer sees no form and cannot
post one by hand; the pages on a narrow screen."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.plugins.browser import WebService, screenshot, sign_in, wait_for_text
from tests.web.test_web_modules import _post, _session

pytestmark = [pytest.mark.integration]

HOT = {"interested", "meeting_request", "question", "referral"}
PHONE = (390, 844)


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _replies(service: WebService) -> list[dict[str, Any]]:
    return _json_lines(service.cli("replies", "list", "--json", "--limit", "500"))


def _lead(service: WebService, lead_id: int) -> dict[str, Any]:
    (found,) = json.loads(service.cli("leads", "show", str(lead_id), "--json"))
    lead: dict[str, Any] = found["lead"]
    return lead


def _rows(browser: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, "#inbox tbody tr"))


def _fits_the_screen(browser: Any) -> bool:
    """Nothing wider than the window: wide tables scroll inside their `.table-wrap`."""
    return bool(
        browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    )


def test_the_inbox_lists_every_reply_hot_ones_first(browser: Any, web_service: WebService) -> None:
    replies = _replies(web_service)
    assert {r["category"] for r in replies} & HOT, "the demo month has hot replies"
    assert {r["category"] for r in replies} - HOT, "and others"
    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/inbox")
    screenshot(browser, "inbox")
    rows = _rows(browser)
    assert sorted(int(r.get_attribute("data-id")) for r in rows) == sorted(r["id"] for r in replies)
    hot = [r.get_attribute("data-hot") == "yes" for r in rows]
    assert hot == sorted(hot, reverse=True), "every hot reply comes before every other one"
    for row in rows:
        assert (row.get_attribute("data-hot") == "yes") == (row.get_attribute("data-category") in HOT)

    browser.get(f"{web_service.url}/app/inbox?category=not_interested")
    wanted = sorted(r["id"] for r in replies if r["category"] == "not_interested")
    assert sorted(int(r.get_attribute("data-id")) for r in _rows(browser)) == wanted
    mailbox = replies[0]["mailbox"]
    browser.get(f"{web_service.url}/app/inbox?mailbox={mailbox}")
    assert len(_rows(browser)) == sum(1 for r in replies if r["mailbox"] == mailbox)
    browser.get(f"{web_service.url}/app/inbox?mailbox=no-such-mailbox")
    assert "No inbound messages match." in browser.page_source and 'id="inbox"' not in browser.page_source

    browser.set_window_size(*PHONE)
    browser.get(f"{web_service.url}/app/inbox")
    assert _fits_the_screen(browser)
    screenshot(browser, "inbox-narrow")


def test_an_operator_corrects_a_category_and_the_lead_moves(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    target = next(
        r
        for r in _replies(web_service)
        if r["category"] in ("auto_reply", "not_interested") and r["matched_by"] == "message_id" and r["lead_id"]
    )
    lead_id = target["lead_id"]
    assert _lead(web_service, lead_id)["state"] in ("paused", "not_interested")
    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/inbox/{target['id']}")
    assert browser.find_element(By.ID, "category").get_attribute("data-category") == target["category"]
    evidence = browser.find_element(By.ID, "evidence").text
    assert all(reason in evidence for reason in target["reasons"])
    assert browser.find_element(By.CSS_SELECTOR, "#thread li.out"), "what we sent is in the thread"
    screenshot(browser, "inbox-message")

    Select(browser.find_element(By.ID, "relabel-category")).select_by_value("interested")
    browser.find_element(By.ID, "relabel-submit").click()
    wait_for_text(browser, f"Relabelled {target['category']} → interested.")
    assert f"Lead {lead_id}:" in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert browser.find_element(By.ID, "category").get_attribute("data-category") == "interested"
    assert browser.find_element(By.ID, "lead-state").get_attribute("data-state") == "replied"

    browser.find_element(By.ID, "lead-link").click()
    wait_for_text(browser, "What came back")
    assert browser.find_element(By.ID, "lead-state").get_attribute("data-state") == "replied"
    assert "relabelled by operator1" in browser.find_element(By.ID, "replies").text
    assert "from " + target["category"] + " to interested by operator1" in browser.find_element(By.ID, "timeline").text
    screenshot(browser, "lead-after-relabel")

    assert _lead(web_service, lead_id)["state"] == "replied"
    audit = json.loads(web_service.cli("audit", "--action", "reply.relabel", "--json"))
    assert any(a["target"] == str(target["id"]) and a["source"] == "web" and a["actor"] == "operator1" for a in audit)


def test_an_operator_marks_a_reply_handled(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/inbox?unhandled=1")
    before = [int(r.get_attribute("data-id")) for r in _rows(browser)]
    assert before, "the demo's replies start unhandled"
    inbound_id = before[0]
    browser.find_element(By.CSS_SELECTOR, f'#inbox tr[data-id="{inbound_id}"] a[href$="/inbox/{inbound_id}"]').click()
    wait_for_text(browser, "The thread")
    assert browser.find_element(By.ID, "handled").get_attribute("data-handled") == "no"
    browser.find_element(By.ID, "mark-handled").click()
    wait_for_text(browser, "Marked handled.")
    assert browser.find_element(By.ID, "handled").get_attribute("data-handled") == "yes"
    assert "by operator1" in browser.find_element(By.ID, "handled").text
    assert 'id="mark-handled"' not in browser.page_source

    browser.get(f"{web_service.url}/app/inbox?unhandled=1")
    assert [int(r.get_attribute("data-id")) for r in _rows(browser)] == [i for i in before if i != inbound_id]
    browser.get(f"{web_service.url}/app/inbox")
    row = browser.find_element(By.CSS_SELECTOR, f'#inbox tr[data-id="{inbound_id}"]')
    assert "by operator1" in row.text
    audit = json.loads(web_service.cli("audit", "--action", "reply.handled", "--json"))
    assert any(a["target"] == str(inbound_id) and a["source"] == "web" for a in audit)


def test_an_operator_suppresses_a_sender(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    target = _replies(web_service)[-1]
    sign_in(browser, web_service, "operator1")
    browser.get(f"{web_service.url}/app/inbox/{target['id']}")
    browser.find_element(By.ID, "suppress-confirm").click()
    browser.find_element(By.ID, "suppress-sender").click()
    wait_for_text(browser, "is suppressed: never written to again")
    assert 'id="suppress-sender"' not in browser.page_source
    assert target["from_address"] in browser.find_element(By.ID, "sender-suppressed").text
    listed = _json_lines(web_service.cli("suppressions", "list", "--json"))
    assert any(s["address"] == target["from_address"] and s["source"] == "web:operator1" for s in listed)


def test_a_viewer_sees_no_form_and_cannot_post_one_by_hand(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    target = _replies(web_service)[0]
    sign_in(browser, web_service, "viewer1")
    page = f"{web_service.url}/app/inbox/{target['id']}"
    browser.get(page)
    wait_for_text(browser, "The thread")
    assert "<form" not in browser.find_element(By.TAG_NAME, "main").get_attribute("innerHTML")
    assert 'id="actions"' not in browser.page_source
    handled = browser.find_element(By.ID, "handled").get_attribute("data-handled")
    cookie = _session(browser)
    token = browser.find_element(By.CSS_SELECTOR, ".signout input[name=csrf]").get_attribute("value")
    base = f"{web_service.url}/app/inbox/{target['id']}"
    for action, fields in (
        ("relabel", {"category": "unsubscribe"}),
        ("handled", {}),
        ("suppress", {"confirm": "on"}),
    ):
        status, body = _post(f"{base}/{action}", {**fields, "csrf": token}, cookie)
        assert status == 403 and "may only look" in body, action
    assert next(r for r in _replies(web_service) if r["id"] == target["id"])["category"] == target["category"]
    browser.get(page)
    assert browser.find_element(By.ID, "handled").get_attribute("data-handled") == handled
    listed = _json_lines(web_service.cli("suppressions", "list", "--json"))
    assert all(s["source"] != "web:viewer1" for s in listed)
    screenshot(browser, "inbox-message-viewer")


def test_a_message_on_a_narrow_screen_and_one_that_is_not_there(browser: Any, web_service: WebService) -> None:
    target = _replies(web_service)[0]
    sign_in(browser, web_service, "operator1")
    browser.set_window_size(*PHONE)
    browser.get(f"{web_service.url}/app/inbox/{target['id']}")
    wait_for_text(browser, "The thread")
    assert _fits_the_screen(browser)
    screenshot(browser, "inbox-message-narrow")
    browser.get(f"{web_service.url}/app/inbox/999999")
    wait_for_text(browser, "There is no inbound message #999999.")
