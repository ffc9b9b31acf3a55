"""The usage page in a real browser: each module's health, the totals per module and kind and
per day as the `usage` command counts them, the chart, the period filter, and the CSV."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from aicmo_actors.observability.usage import UsageTotal, totals_csv
from aicmo_actors.webapp.pages_usage import per_day_table
from tests.plugins.browser import WebService, absent, screenshot, sign_in, wait_for_text

integration = pytest.mark.integration


def test_the_per_day_table_has_a_column_per_module_and_kind_newest_day_first() -> None:
    totals = [
        UsageTotal({"module": "cam", "kind": "email_sent", "day": "2026-03-02"}, 40),
        UsageTotal({"module": "cam", "kind": "message_read", "day": "2026-03-04"}, 1),
        UsageTotal({"module": "api", "kind": "api_call", "day": "2026-03-04"}, 7),
    ]
    columns, rows = per_day_table(totals)
    assert columns == ["api api_call", "cam email_sent", "cam message_read"]
    assert rows == [
        {"day": "2026-03-04", "values": {"cam message_read": 1, "api api_call": 7}},
        {"day": "2026-03-02", "values": {"cam email_sent": 40}},
    ]
    expected = "module,kind,day,quantity\ncam,email_sent,2026-03-02,40\n"
    assert totals_csv(totals[:1], ["module", "kind", "day"]) == expected


def _cli_totals(service: WebService, *args: str) -> dict[str, int]:
    lines = service.cli("usage", "--by", "module,kind", "--json", *args).splitlines()
    return {f"{r['module']} {r['kind']}": int(r["quantity"]) for r in map(json.loads, filter(None, lines))}


def _shown_totals(browser: Any) -> dict[str, int]:
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "#usage-kinds [data-usage]")
    return {r.get_attribute("data-usage"): int(r.find_elements(By.TAG_NAME, "td")[-1].text) for r in rows}


def _get(url: str, cookie: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    request.add_header("Cookie", cookie)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status), {k.lower(): v for k, v in answer.headers.items()}, answer.read().decode()


@integration
def test_the_usage_page_shows_health_totals_a_chart_and_the_csv(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/usage")
    wait_for_text(browser, "Per module and kind")
    modules = {m["name"]: m for m in json.loads(web_service.cli("modules", "--json"))["modules"]}
    for name, module in modules.items():
        line = browser.find_element(By.CSS_SELECTOR, f'#health [data-module="{name}"]')
        assert line.find_element(By.CSS_SELECTOR, "[data-health]").get_attribute("data-health") == module["health"]
        for reason in module["reasons"]:
            assert reason in line.text
    # Everything by default: the same totals as the command, the demo's emails among them.
    expected = _cli_totals(web_service)
    assert expected.get("cam email_sent", 0) > 0
    assert _shown_totals(browser) == expected
    table = browser.find_element(By.ID, "usage-table")
    header = [th.text for th in table.find_elements(By.TAG_NAME, "th")]
    assert header[0] == "day" and set(header[1:]) == set(expected)
    assert browser.find_element(By.CSS_SELECTOR, "#usage-days svg.chart").tag_name == "svg"
    assert absent(browser, By.TAG_NAME, "script")
    screenshot(browser, "usage")

    cookie = browser.get_cookie("aicmo_session")
    href = browser.find_element(By.ID, "usage-csv").get_attribute("href")
    status, headers, body = _get(href, f"aicmo_session={cookie['value']}")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert headers["content-disposition"].startswith("attachment;") and ".csv" in headers["content-disposition"]
    assert body.splitlines()[0] == "module,kind,day,quantity"
    assert body == web_service.cli("usage", "--by", "module,kind,day", "--csv")


@integration
def test_the_period_filter_narrows_the_totals(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/usage")
    Select(browser.find_element(By.ID, "since")).select_by_value("90d")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait_for_text(browser, "Per module and kind (last 90 days)")
    assert "since=90d" in browser.current_url
    assert Select(browser.find_element(By.ID, "since")).first_selected_option.get_attribute("value") == "90d"
    assert "since=90d" in browser.find_element(By.ID, "usage-csv").get_attribute("href")
    assert _shown_totals(browser) == _cli_totals(web_service, "--since", "90d")
    browser.get(f"{web_service.url}/app/usage?since=yesterday")
    wait_for_text(browser, "Show usage over one of: 7d, 30d, 90d, all.")


@integration
def test_the_usage_page_fits_a_narrow_screen(browser: Any, web_service: WebService) -> None:
    sign_in(browser, web_service, "viewer1")
    browser.set_window_size(390, 844)
    browser.get(f"{web_service.url}/app/usage")
    wait_for_text(browser, "Per module and kind")
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the usage page is {overflow}px wider than the screen"
    screenshot(browser, "usage-narrow")
