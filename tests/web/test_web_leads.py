"""Leads in a real browser, over a simulated month: found by part of their address or their
company, narrowed by state; one lead's emails, replies, alerts and timeline; the pages on a
narrow screen."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from tests.plugins.browser import WebService, absent, post_form, screenshot, sign_in, wait_for_text

pytestmark = [pytest.mark.integration]

PHONE = (390, 844)


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _leads(service: WebService) -> list[dict[str, Any]]:
    return _json_lines(service.cli("leads", "list", "--json", "--limit", "500"))


def _shown(browser: Any) -> list[int]:
    from selenium.webdriver.common.by import By

    return [int(r.get_attribute("data-id")) for r in browser.find_elements(By.CSS_SELECTOR, "#leads tbody tr")]


def _fits_the_screen(browser: Any) -> bool:
    return bool(
        browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    )


def test_a_search_finds_a_lead_by_part_of_its_address(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    leads = _leads(web_service)
    wanted = leads[len(leads) // 2]
    part = wanted["email"].split("@")[0][1:7].upper()  # part of the local part, in capitals
    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/leads")
    assert _shown(browser) == [lead["id"] for lead in leads][:50]
    screenshot(browser, "leads")

    browser.find_element(By.ID, "search-email").send_keys(part)
    browser.find_element(By.ID, "search").click()
    wait_for_text(browser, f'value="{part}"')
    assert wanted["id"] in _shown(browser)
    assert _shown(browser) == [lead["id"] for lead in leads if part.lower() in lead["email"]]
    screenshot(browser, "leads-search")

    browser.find_element(By.CSS_SELECTOR, f'#leads tr[data-id="{wanted["id"]}"] a').click()
    wait_for_text(browser, "Timeline")
    assert browser.find_element(By.ID, "lead-state").get_attribute("data-state") == wanted["state"]
    assert wanted["email"] in browser.find_element(By.ID, "lead").text


def test_a_search_by_company_and_state(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    leads = _leads(web_service)
    company = next(lead["company"] for lead in leads if lead["company"])
    part = company.split()[0].lower()
    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/leads")
    browser.find_element(By.ID, "search-company").send_keys(part)
    browser.find_element(By.ID, "search").click()
    wait_for_text(browser, f'value="{part}"')
    assert _shown(browser) == [lead["id"] for lead in leads if part in (lead["company"] or "").lower()]

    state = leads[0]["state"]
    Select(browser.find_element(By.NAME, "state")).select_by_value(state)
    browser.find_element(By.ID, "search").click()
    wait_for_text(browser, f'<option value="{state}" selected')
    expected = [lead["id"] for lead in leads if part in (lead["company"] or "").lower() and lead["state"] == state]
    assert _shown(browser) == expected

    browser.get(f"{web_service.url}/app/leads?email=no-such-address-anywhere")
    assert "No leads match." in browser.page_source and 'id="leads"' not in browser.page_source
    browser.get(f"{web_service.url}/app/leads?state=sleeping")
    assert "unknown state" in browser.find_element(By.CSS_SELECTOR, ".flash.problem").text


def test_a_lead_page_shows_its_whole_history(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    replies = _json_lines(web_service.cli("replies", "list", "--json", "--limit", "500"))
    lead_id = next(r["lead_id"] for r in replies if r["lead_id"])
    (history,) = json.loads(web_service.cli("leads", "show", str(lead_id), "--json"))
    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/leads/{lead_id}")
    assert browser.find_element(By.ID, "lead-state").get_attribute("data-state") == history["lead"]["state"]
    emails = browser.find_elements(By.CSS_SELECTOR, "#emails tbody tr")
    assert [int(e.get_attribute("data-id")) for e in emails] == [e["id"] for e in history["emails"]]
    shown = browser.find_elements(By.CSS_SELECTOR, "#replies tbody tr")
    assert [int(r.get_attribute("data-id")) for r in shown] == [i["id"] for i in history["inbound"]]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")) == len(history["timeline"])
    screenshot(browser, "lead")

    inbound_id = history["inbound"][0]["id"]
    browser.find_element(By.CSS_SELECTOR, f'#replies tr[data-id="{inbound_id}"] a').click()
    wait_for_text(browser, "The thread")
    assert browser.current_url.endswith(f"/app/inbox/{inbound_id}")

    browser.set_window_size(*PHONE)
    browser.get(f"{web_service.url}/app/leads/{lead_id}")
    assert _fits_the_screen(browser)
    screenshot(browser, "lead-narrow")
    browser.get(f"{web_service.url}/app/leads")
    assert _fits_the_screen(browser)
    screenshot(browser, "leads-narrow")


def test_a_lead_that_is_not_there(browser: Any, web_service: WebService) -> None:
    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/leads/999999")
    wait_for_text(browser, "There is no lead with id 999999.")


def _deals(service: WebService, email: str) -> list[dict[str, Any]]:
    return [d for d in _json_lines(service.cli("deal", "list", "--json")) if d["client"]["contact_email"] == email]


def test_an_operator_signs_a_deal_on_the_leads_page_and_a_viewer_cannot(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    lead = next(x for x in _leads(web_service) if x["state"] == "replied")
    page, deal_url = f"{web_service.url}/app/leads/{lead['id']}", f"{web_service.url}/app/leads/{lead['id']}/deal"
    fields = {"package": "growth", "country": "DE", "start": "", "timezone": "", "company": "", "billing_email": ""}
    fields |= {"tax_id": "", "webhook_url": ""}

    # A viewer: no form; a hand-made one is refused, nothing signed.
    sign_in(browser, web_service, "viewer1")
    browser.get(page)
    wait_for_text(browser, "Timeline")
    assert absent(browser, By.ID, "sign-deal")
    status, body, _ = post_form(browser, deal_url, fields)
    assert status == 403 and "may only look" in body

    # An operator, no package in the folder yet: said, no form.
    browser.delete_all_cookies()
    sign_in(browser, web_service, "operator1")
    browser.get(page)
    wait_for_text(browser, "No package to sign on")
    assert absent(browser, By.ID, "deal-form")
    web_service.cli("package", "create", "growth")
    browser.get(page)
    wait_for_text(browser, "Sign the deal")
    browser.execute_script("document.getElementById('sign-deal').scrollIntoView()")
    screenshot(browser, "lead-sign-deal")

    def sign(country: str, tax_id: str = "") -> None:
        browser.get(page)
        wait_for_text(browser, "Sign the deal")
        assert [o.text for o in Select(browser.find_element(By.ID, "deal-package")).options] == ["growth"]
        browser.execute_script("document.getElementById('deal-form').noValidate = true")  # the server's check
        field = browser.find_element(By.ID, "deal-country")
        field.clear()
        field.send_keys(country)
        browser.find_element(By.ID, "deal-tax").send_keys(tax_id)
        browser.find_element(By.ID, "deal-button").click()

    # A country that is not two letters, then one without known holidays: one line each, nothing signed.
    sign("D1")
    wait_for_text(browser, "two letters")
    said = browser.find_element(By.CSS_SELECTOR, ".flash.problem").text
    assert said == "Say the client's country in two letters (ISO 3166-1: US, GB, DE). Nothing was changed."
    sign("QQ")
    wait_for_text(browser, "no public holidays known")
    assert "Traceback" not in browser.page_source and _deals(web_service, lead["email"]) == []

    # Signed: said, the lead a client, the deal as `deal list` shows it, audited once from the web.
    sign("de", tax_id="DE 123 456 789")
    wait_for_text(browser, "signed:")
    (deal,) = _deals(web_service, lead["email"])
    assert browser.find_element(By.CSS_SELECTOR, ".flash.ok").text.startswith(f"Deal {deal['deal']} signed: ")
    assert browser.find_element(By.ID, "lead-state").get_attribute("data-state") == "client"
    assert absent(browser, By.ID, "deal-form") and "Signed as a client" in browser.find_element(By.ID, "signed").text
    assert (deal["package"], deal["signed_by"]) == ("growth", "operator1")
    assert (deal["client"]["country"], deal["client"]["tax_id"]) == ("DE", "DE123456789")
    screenshot(browser, "lead-signed")
    audited = json.loads(web_service.cli("audit", "--action", "deal.won", "--json"))
    assert [(a["source"], a["actor"]) for a in audited] == [("web", "operator1")]

    # The same form sent again (a double click): refused, still one deal.
    status, _, location = post_form(browser, deal_url, fields)
    assert status == 303 and "signed already" in urllib.parse.unquote_plus(location)
    assert len(_deals(web_service, lead["email"])) == 1
