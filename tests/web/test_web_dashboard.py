"""The dashboard in a real browser: the demo campaign's funnel as `campaign status` tells it,
the rates of the auto-pause next to their thresholds, the chart (inline SVG, no script), the
cycle reports, and what is paused: resumed with a button by an operator, only shown to a
viewer. The charts' pure parts are checked first, without a browser."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from aicmo_actors.settings import Settings
from aicmo_actors.webapp.charts import counts_chart, integer_ticks, timeline
from aicmo_actors.webapp.pages_dashboard import ticks
from tests.plugins.browser import WebService, absent, screenshot, sign_in, wait_for_text

CAMPAIGN = "agency-intro"
MAILBOX = "sam@outreach.example.com"
integration = pytest.mark.integration


# -- pure parts --------------------------------------------------------------------------------------
def test_timeline_fills_the_days_between_and_turns_to_months_over_a_long_span() -> None:
    labels, values = timeline({"2026-03-02": {"a": 2}, "2026-03-04": {"a": 1, "b": 5}}, ["a", "b"])
    assert labels == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert values == {"a": [2, 0, 1], "b": [0, 0, 5]}
    labels, values = timeline({"2026-01-31": {"a": 1}, "2026-06-01": {"a": 2}}, ["a"])
    assert labels == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert values == {"a": [1, 0, 0, 0, 0, 2]}
    assert timeline({}, ["a"]) == ([], {"a": []})


def test_the_axis_of_counts_has_whole_numbers() -> None:
    assert integer_ticks(0) == [0, 1]
    assert integer_ticks(3) == [0, 1, 2, 3]
    assert integer_ticks(78) == [0, 20, 40, 60, 80]
    assert all(isinstance(t, int) for t in integer_ticks(1234))


def test_a_chart_is_inline_svg_without_script_and_its_words_are_escaped() -> None:
    svg = str(counts_chart("sent <b>&</b>", ["2026-03-02"], {"a <i>": [3]}))
    assert svg.startswith("<svg") and 'class="pygal-chart chart"' in svg and 'role="img"' in svg
    assert "<script" not in svg and "<?xml" not in svg
    assert "<b>" not in svg and "<i>" not in svg and "&lt;b&gt;" in svg


def test_cycle_reports_are_grouped_by_tick_newest_first_and_a_cut_tick_is_left_out() -> None:
    def report(i: int, seq: int, step: str, errors: list[str] | None = None) -> dict[str, Any]:
        return {"id": i, "tick_seq": seq, "step": step, "started_at": f"t{i}", "errors": errors or []}

    newest_first = [report(6, 3, "inbox"), report(5, 3, "schedule", ["boom"]), report(4, 2, "inbox")]
    shown = ticks(newest_first, 5, complete=False)
    assert [t["seq"] for t in shown] == [3]
    assert [s["step"] for s in shown[0]["steps"]] == ["schedule", "inbox"]
    assert shown[0]["at"] == "t5" and shown[0]["errors"] == 1
    assert [t["seq"] for t in ticks(newest_first, 5, complete=True)] == [3, 2]
    assert [t["seq"] for t in ticks(newest_first, 1, complete=True)] == [3]


# -- in the browser ----------------------------------------------------------------------------------
def _status(service: WebService) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(service.cli("campaign", "status", CAMPAIGN, "--json"))
    return found


def _cell(scope: Any, attribute: str, key: str) -> str:
    from selenium.webdriver.common.by import By

    return str(scope.find_element(By.CSS_SELECTOR, f'[{attribute}="{key}"]').text)


def _database(service: WebService) -> sqlite3.Connection:
    path = service.env["AICMO_DATABASE_URL"].split(":///", 1)[1]
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _post(url: str, fields: dict[str, str], cookie: str) -> int:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    request.add_header("Cookie", cookie)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def _pause_mailbox(service: WebService, address: str, reason: str) -> None:
    """As the auto-pause does after sending-side rejections (no command pauses a mailbox)."""
    script = (
        "import asyncio, sys\n"
        "from datetime import UTC, datetime\n"
        "from aicmo_actors.cli.cam import open_store\n"
        "async def main():\n"
        "    async with open_store() as store:\n"
        "        assert await store.campaigns.pause_mailbox(sys.argv[1], sys.argv[2], datetime.now(UTC))\n"
        "asyncio.run(main())\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, address, reason],
        cwd=service.root,
        env=service.env,
        check=True,
        capture_output=True,
        timeout=60,
    )


@integration
def test_the_dashboard_shows_the_demo_campaigns_funnel_and_its_chart(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/")
    wait_for_text(browser, CAMPAIGN)
    status = _status(web_service)
    section = browser.find_element(By.ID, f"campaign-{CAMPAIGN}")
    assert section.get_attribute("data-status") == status["status"] == "active"
    figures = status["figures"]
    assert int(figures["sent"]) > 0, "the demo sent nothing: nothing to compare"
    for figure in ("attempted", "sent", "unconfirmed", "refused", "hard_bounces", "soft_bounces", "complaints"):
        assert _cell(section, "data-figure", figure) == str(figures[figure]), figure
    assert _cell(section, "data-figure", "leads") == str(sum(status["leads"].values()))
    assert _cell(section, "data-figure", "human_replies") == str(status["human_replies"])
    assert _cell(section, "data-figure", "inbound") == str(sum(status["replies"].values()))
    assert _cell(section, "data-figure", "unsubscribes") == str(status["leads"].get("unsubscribed", 0))
    shown_states = {
        e.get_attribute("data-lead-state") for e in section.find_elements(By.CSS_SELECTOR, "[data-lead-state]")
    }
    assert shown_states == set(status["leads"])
    for state, n in status["leads"].items():
        assert _cell(section, "data-lead-state", state) == str(n)
    for category, n in status["replies"].items():
        assert _cell(section, "data-reply", category) == str(n)
    for step, n in status["sent_by_step"].items():
        assert _cell(section, "data-sent-step", step) == str(n)
    # The rates the auto-pause judges, next to the thresholds the service runs with.
    defaults = Settings.model_fields
    window = status["since_resumed"]
    assert _cell(section, "data-threshold", "hard bounces") == f"{defaults['pause_hard_bounce_rate'].default:.1%}"
    assert _cell(section, "data-threshold", "complaints") == f"{defaults['pause_complaint_rate'].default:.2%}"
    hard_rate = f"{window['hard_bounces'] / window['attempted']:.1%}" if window["attempted"] else "-"
    assert _cell(section, "data-rate", "hard bounces") == hard_rate
    assert f"judged from {defaults['pause_min_sends'].default} attempted" in section.text
    # The chart: SVG made on the server, in the page; no script anywhere.
    chart = section.find_element(By.CSS_SELECTOR, "svg.chart")
    assert chart.tag_name == "svg" and CAMPAIGN in (chart.get_attribute("aria-label") or "")
    assert absent(browser, By.TAG_NAME, "script")
    screenshot(browser, "dashboard")


@integration
def test_the_dashboard_shows_the_cycle_reports_of_the_last_ticks(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    with _database(web_service) as db:
        newest = db.execute("SELECT max(id) FROM cam_cycle_reports").fetchone()[0]
    assert newest is not None, "the demo wrote no cycle report"
    sign_in(browser, web_service, "viewer1")
    browser.get(f"{web_service.url}/app/")
    cycles = browser.find_element(By.ID, "cycles")
    rows = cycles.find_elements(By.CSS_SELECTOR, "[data-report-id]")
    assert rows and len(cycles.find_elements(By.CSS_SELECTOR, "table[data-tick]")) >= 2
    shown = {int(r.get_attribute("data-report-id")): r for r in rows}
    assert max(shown) >= newest  # the newest report is there (or a newer one)
    with _database(web_service) as db:
        for report_id, row in shown.items():
            seq, step = db.execute(
                "SELECT tick_seq, worker FROM cam_cycle_reports WHERE id = ?", (report_id,)
            ).fetchone()
            assert row.get_attribute("data-step") == step
            table = row.find_element(By.XPATH, "./ancestor::table")
            assert table.get_attribute("data-tick") == str(seq)


@integration
def test_an_operator_resumes_a_campaign_paused_by_command(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    web_service.cli("campaign", "pause", CAMPAIGN)
    try:
        sign_in(browser, web_service, "operator1")
        browser.get(f"{web_service.url}/app/")
        row = browser.find_element(By.ID, f"paused-campaign-{CAMPAIGN}")
        assert "paused by command" in row.text
        section = browser.find_element(By.ID, f"campaign-{CAMPAIGN}")
        assert section.get_attribute("data-status") == "paused"
        screenshot(browser, "dashboard-paused")
        browser.find_element(By.ID, f"resume-campaign-{CAMPAIGN}").click()
        wait_for_text(browser, f"Campaign {CAMPAIGN} resumed.")
        assert absent(browser, By.ID, f"paused-campaign-{CAMPAIGN}")
        assert browser.find_element(By.ID, f"campaign-{CAMPAIGN}").get_attribute("data-status") == "active"
        assert _status(web_service)["status"] == "active"
        audit = json.loads(web_service.cli("audit", "--action", "campaign.resume", "--json"))
        assert any(a["actor"] == "operator1" and a["source"] == "web" and a["target"] == CAMPAIGN for a in audit)
    finally:
        if _status(web_service)["status"] != "active":
            web_service.cli("campaign", "resume", CAMPAIGN)


@integration
def test_an_operator_resumes_a_paused_mailbox(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    _pause_mailbox(web_service, MAILBOX, "3 sending-side rejections (browser test)")
    try:
        sign_in(browser, web_service, "operator1")
        browser.get(f"{web_service.url}/app/")
        row = browser.find_element(By.ID, f"paused-mailbox-{MAILBOX}")
        assert "3 sending-side rejections (browser test)" in row.text
        row.find_element(By.ID, f"resume-mailbox-{MAILBOX}").click()
        wait_for_text(browser, f"Mailbox {MAILBOX} resumed.")
        assert absent(browser, By.ID, f"paused-mailbox-{MAILBOX}")
        boxes = {b["address"]: b for b in _status(web_service)["mailboxes"]}
        assert boxes[MAILBOX]["status"] == "active"
        audit = json.loads(web_service.cli("audit", "--action", "mailbox.resume", "--json"))
        assert any(a["actor"] == "operator1" and a["target"] == MAILBOX for a in audit)
    finally:
        web_service.cli("mailbox", "resume", MAILBOX)


@integration
def test_a_viewer_sees_what_is_paused_but_no_resume_button(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    web_service.cli("campaign", "pause", CAMPAIGN)
    try:
        sign_in(browser, web_service, "viewer1")
        browser.get(f"{web_service.url}/app/")
        assert "paused by command" in browser.find_element(By.ID, f"paused-campaign-{CAMPAIGN}").text
        assert absent(browser, By.ID, f"resume-campaign-{CAMPAIGN}")
        assert absent(browser, By.CSS_SELECTOR, "#paused form")
        # A form made by hand, with this session's valid CSRF token, is still refused.
        token = browser.find_element(By.CSS_SELECTOR, ".signout input[name=csrf]").get_attribute("value")
        cookie = f"aicmo_session={browser.get_cookie('aicmo_session')['value']}"
        url = f"{web_service.url}/app/dashboard/resume-campaign"
        assert _post(url, {"name": CAMPAIGN, "csrf": token}, cookie) == 403
        assert _status(web_service)["status"] == "paused"
    finally:
        web_service.cli("campaign", "resume", CAMPAIGN)


@integration
def test_the_dashboard_fits_a_narrow_screen(browser: Any, web_service: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, web_service, "operator1")
    browser.set_window_size(390, 844)
    browser.get(f"{web_service.url}/app/")
    wait_for_text(browser, CAMPAIGN)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the dashboard is {overflow}px wider than the screen"
    chart = browser.find_element(By.CSS_SELECTOR, f"#campaign-{CAMPAIGN} svg.chart")
    assert chart.size["width"] <= 390
    screenshot(browser, "dashboard-narrow")
