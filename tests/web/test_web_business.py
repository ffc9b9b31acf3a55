"""What follows the deal, in a real browser: projects (later periods included), invoices and their
PDF, clients' health, the reports sent and what each A/B variant led to, pages that show what
`projects`, `project ID`, `invoices`, `invoice ID`, `health`, `reports` and `learn` print for the
same database; an unknown id gives the not-found page, a signed-out browser the sign-in. An
operator records a payment and cancels a project (the commands then show it); a bad amount or a
cancel not confirmed changes nothing; a viewer sees no form and is refused a hand-made one.

The service reads a simulated month of its own (module-scoped): the session's demo is too short for
anyone to sign. Its clock is the real one, months after the simulated days: every open invoice is
late, and the running service changes nothing the pages show before its first tick (an hour)."""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import pytest

from aicmo_actors.billing.money import shown
from aicmo_actors.billing.repos import InvoiceRow
from aicmo_actors.cli.demo import EXAMPLES, load_demo_inputs
from aicmo_actors.simulation.run import simulate
from aicmo_actors.simulation.world import BUSY_PROSPECTS, Faults
from aicmo_actors.webapp.pages_learning import percent
from aicmo_actors.webapp.pages_money import REPORT_PAGE_POLICY, days_late, report_parts
from aicmo_actors.webapp.pages_projects import step_rows
from aicmo_actors.webapp.web import when
from tests.plugins.browser import WebService, absent, post_form, screenshot, serving, sign_in, wait_for_text

integration = pytest.mark.integration

CAMPAIGN = "agency-intro"
#: Enough interested prospects who sign within days, and a month and a bit: every client has a
#: project in its second period, invoices (one open), a health row and the first month's report.
SIGNING = dataclasses.replace(BUSY_PROSPECTS, interested=0.2)
LEADS, DAYS, SEED = 12, 31, 5


# -- pure parts --------------------------------------------------------------------------------------
def test_steps_are_in_order_with_their_period() -> None:
    steps = [
        {"step": "production:2", "position": 4},
        {"step": "onboarding", "position": 0},
        {"step": "plan:2", "position": 3},
        {"step": "strategy", "position": 1},
    ]
    shown_steps = [(s["step"], s["kind"], s["period"]) for s in step_rows(steps)]
    assert shown_steps == [
        ("onboarding", "onboarding", 1),
        ("strategy", "strategy", 1),
        ("plan:2", "plan", 2),
        ("production:2", "production", 2),
    ]


def _invoice(state: str, due_on: date) -> InvoiceRow:
    fields = {f.name: None for f in dataclasses.fields(InvoiceRow)}
    return InvoiceRow(**{**fields, "state": state, "due_on": due_on})  # type: ignore[arg-type]


def test_an_invoice_is_late_only_when_open_past_its_due_date() -> None:
    today = date(2026, 5, 10)
    assert days_late(_invoice("open", date(2026, 5, 1)), today) == 9
    assert days_late(_invoice("open", date(2026, 5, 10)), today) == 0
    assert days_late(_invoice("paid", date(2026, 5, 1)), today) == 0
    assert days_late(_invoice("credited", date(2026, 4, 1)), today) == 0
    assert percent(None) == "-" and percent(0.125) == "12.5%"


# -- the service over a simulated month ----------------------------------------------------------------
@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebService]:
    root = tmp_path_factory.mktemp("business")
    spec, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", LEADS)
    run = functools.partial(
        simulate, workdir=root / "sim", spec=spec, leads=rows, days=DAYS, seed=SEED, behaviour=SIGNING, faults=Faults()
    )
    result = anyio.run(run)
    assert result.violations == [], "; ".join(str(v) for v in result.violations)
    with serving(root, result.db_path, {"viewer1": "viewer", "operator1": "operator"}) as service:
        yield service


def _report_raw(service: WebService, report_id: int) -> bytes:
    """The report's email as the database holds it."""
    path = service.env["AICMO_DATABASE_URL"].split(":///", 1)[1]
    with closing(sqlite3.connect(path)) as db:
        (raw,) = db.execute(
            "SELECT e.raw FROM reporting_reports r JOIN reporting_emails e ON e.idempotency_key = r.email_key"
            " WHERE r.id = ?",
            (report_id,),
        ).fetchone()
    return bytes(raw)


def _lines(service: WebService, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.cli(*args).splitlines() if line.strip()]


def _open(browser: Any, service: WebService, path: str, text: str) -> None:
    browser.get(f"{service.url}/app{path}")
    wait_for_text(browser, text)


def _wait_for_url(browser: Any, part: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda d: part in d.current_url, f"never went to a page with {part!r}")


def _rows(browser: Any, table: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"))


def _cells(row: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [td.text for td in row.find_elements(By.TAG_NAME, "td")]


def _not_found(browser: Any, service: WebService, path: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{service.url}/app{path}")
    wait_for_text(browser, text)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "Traceback" not in browser.page_source


def _money(amount: str, currency: str) -> str:
    return shown(Decimal(amount), currency)


@integration
def test_a_signed_out_browser_is_sent_to_sign_in(browser: Any, business: WebService) -> None:
    # Sent away before anything is looked up: whether the id exists or not is not told.
    paths = [
        "/projects",
        "/projects/0000dead",
        "/invoices?overdue=1",
        "/invoices/2026-0001",
        "/invoices/2026-0001/pdf",
        "/health",
        "/health/some-client",
        "/reports",
        "/learning",
        f"/campaigns/{CAMPAIGN}/learning",
    ]
    for path in paths:
        browser.get(f"{business.url}/app{path}")
        assert "/app/login" in browser.current_url, path
        assert "next=" in browser.current_url, path
    sign_in(browser, business, "viewer1", here=True)
    assert browser.current_url.endswith(f"/app/campaigns/{CAMPAIGN}/learning")


@integration
def test_projects_show_what_the_command_shows_later_periods_included(browser: Any, business: WebService) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    expected = _lines(business, "projects", "--json")
    assert expected, "the simulated month signed nobody"
    sign_in(browser, business, "viewer1")
    _open(browser, business, "/projects", "waiting for")
    rows = _rows(browser, "projects")
    assert [r.get_attribute("data-id") for r in rows] == [p["id"] for p in expected]
    for row, p in zip(rows, expected, strict=True):
        assert row.get_attribute("data-state") == p["state"]
        assert row.get_attribute("data-step") == p["step"]
        assert row.get_attribute("data-step-state") == (p["step_state"] or "")
        assert row.get_attribute("data-overdue") == ("yes" if p["overdue"] else "no")
        cells = _cells(row)
        assert cells[1] == p["company"] and cells[2] == p["package"]
        assert cells[5] == (p["waiting_for"] or "-")
        assert cells[6] == (when(p["deadline_at"]) if p["waiting_for"] else "-")
    screenshot(browser, "projects")

    # The filter: the state the command filters on; a state no project is in; a state that is none.
    Select(browser.find_element(By.ID, "project-state")).select_by_value("running")
    browser.find_element(By.ID, "filter-projects").click()
    _wait_for_url(browser, "state=running")
    running = [p["id"] for p in _lines(business, "projects", "--state", "running", "--json")]
    assert [r.get_attribute("data-id") for r in _rows(browser, "projects")] == running
    assert all(p["state"] != "compensated" for p in expected)
    _open(browser, business, "/projects?state=compensated", "No projects compensated")
    _open(browser, business, "/projects?state=lost", "Show projects in one of these states: running,")

    # One project whole: its steps in order, the second period's among them, and its history.
    project = expected[0]
    whole = json.loads(business.cli("project", project["id"][:8], "--json"))
    assert any(s["step"].startswith("plan:") for s in whole["steps"]), "no later period began"
    browser.find_element(By.LINK_TEXT, project["company"]).click()
    wait_for_text(browser, "History")
    assert browser.current_url.endswith(f"/app/projects/{project['id']}")
    assert browser.find_element(By.ID, "project-state").text == whole["project"]["state"]
    assert browser.find_element(By.ID, "project-step").text == whole["project"]["step"]
    steps = _rows(browser, "steps")
    assert [(r.get_attribute("data-step"), r.get_attribute("data-state")) for r in steps] == [
        (s["step"], s["state"]) for s in sorted(whole["steps"], key=lambda s: s["position"])
    ]
    for row, s in zip(steps, sorted(whole["steps"], key=lambda s: s["position"]), strict=True):
        cells = _cells(row)
        assert cells[2] == str(int(s["step"].partition(":")[2] or 1))
        if s["state"] == "waiting":
            assert cells[4] == s["waiting_for"] and cells[5] == when(s["deadline_at"])
    next_on = whole["project"]["next_period_on"]
    if next_on:
        assert browser.find_element(By.ID, "next-period").text == f"next period begins on {next_on}"
    else:
        assert absent(browser, By.ID, "next-period")
    history = _rows(browser, "history")
    assert len(history) == len(whole["history"]) > 0
    assert _cells(history[0])[0] == when(whole["history"][0]["at"])
    screenshot(browser, "project")
    # A whole id is not needed: its start is enough, as on the command line.
    _open(browser, business, f"/projects/{project['id'][:8]}", whole["project"]["id"])

    _not_found(browser, business, "/projects/0000dead", "There is no project '0000dead'.")
    _not_found(browser, business, "/projects/nothing-like-an-id", "There is no project 'nothing-like-an-id'.")


@integration
def test_invoices_show_what_the_command_shows_and_the_overdue_filter(browser: Any, business: WebService) -> None:
    from selenium.webdriver.common.by import By

    everything = _lines(business, "invoices", "--json")
    overdue = _lines(business, "invoices", "--overdue", "--json")
    assert everything and overdue and len(overdue) < len(everything)
    sign_in(browser, business, "viewer1")
    _open(browser, business, "/invoices", "balance")
    rows = _rows(browser, "invoices")
    assert [r.get_attribute("data-number") for r in rows] == [i["number"] for i in everything]
    for row, i in zip(rows, everything, strict=True):
        assert row.get_attribute("data-state") == i["state"]
        assert row.find_element(By.CSS_SELECTOR, "[data-total]").text == _money(i["total"], i["currency"])
        assert row.find_element(By.CSS_SELECTOR, "[data-balance]").text == _money(i["balance"], i["currency"])
        assert _cells(row)[1] == i["company"]
    screenshot(browser, "invoices")

    browser.find_element(By.ID, "overdue-only").click()
    browser.find_element(By.ID, "filter-invoices").click()
    _wait_for_url(browser, "overdue=1")
    rows = _rows(browser, "invoices")
    assert [r.get_attribute("data-number") for r in rows] == [i["number"] for i in overdue]
    today = datetime.now(UTC).date()
    for row, i in zip(rows, overdue, strict=True):
        late = (today - date.fromisoformat(i["due_on"])).days
        assert late > 0 and int(row.get_attribute("data-late")) in (late - 1, late)  # a midnight may pass
    assert browser.find_element(By.ID, "overdue-only").is_selected()

    # One invoice whole, from the list.
    number = overdue[0]["number"]
    whole = json.loads(business.cli("invoice", number, "--json"))
    browser.find_element(By.LINK_TEXT, number).click()
    wait_for_text(browser, "Download the PDF")
    cur = whole["currency"]
    assert browser.find_element(By.ID, "invoice-state").text == whole["state"]
    for name in ("net", "tax", "total", "paid", "balance"):
        assert browser.find_element(By.ID, f"invoice-{name}").text == _money(whole[name], cur), name
    lines = _rows(browser, "lines")
    assert [_cells(r)[0] for r in lines] == [x["description"] for x in whole["lines"]]
    assert [_cells(r)[3] for r in lines] == [_money(x["amount"], cur) for x in whole["lines"]]
    if whole["payments"]:
        assert len(_rows(browser, "payments")) == len(whole["payments"])
    else:
        assert "No payment recorded." in browser.page_source
    if whole["reminders"]:
        assert len(_rows(browser, "reminders")) == len(whole["reminders"])
    else:
        assert "No reminder sent." in browser.page_source
    screenshot(browser, "invoice")

    # Its PDF, as the command writes it.
    href = browser.find_element(By.ID, "invoice-pdf").get_attribute("href")
    assert href.endswith(f"/app/invoices/{number}/pdf")
    cookie = browser.get_cookie("aicmo_session")
    request = urllib.request.Request(href, headers={"Cookie": f"aicmo_session={cookie['value']}"})
    with urllib.request.urlopen(request, timeout=20) as answer:
        assert answer.headers["Content-Type"] == "application/pdf"
        assert f'filename="invoice-{number}.pdf"' in answer.headers["Content-Disposition"]
        body = answer.read()
    written = business.root / "invoice.pdf"
    business.cli("invoice", number, "--pdf", str(written))
    assert body.startswith(b"%PDF") and body == written.read_bytes()

    _not_found(browser, business, "/invoices/1999-0001", "There is no invoice '1999-0001'.")
    request = urllib.request.Request(
        f"{business.url}/app/invoices/1999-0001/pdf", headers={"Cookie": f"aicmo_session={cookie['value']}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404
    _open(browser, business, "/invoices?state=unpaid", "Show invoices in one of these states: open, paid, credited.")


@integration
def test_client_health_shows_what_the_command_shows(browser: Any, business: WebService) -> None:
    from selenium.webdriver.common.by import By

    expected = _lines(business, "health", "--json")
    assert expected
    sign_in(browser, business, "viewer1")
    _open(browser, business, "/health", "top reasons")
    rows = _rows(browser, "health")
    assert [r.get_attribute("data-client") for r in rows] == [c["client_ref"] for c in expected]
    for row, c in zip(rows, expected, strict=True):
        assert row.get_attribute("data-band") == (c["band"] or "")
        assert row.find_element(By.CSS_SELECTOR, "[data-score]").text == f"{c['score']:.0f}"
        cells = _cells(row)
        assert cells[0] == c["company"]
        assert cells[4] == (c["contract_end"] or "-")
        assert all(reason in cells[5] for reason in c["reasons"])
    screenshot(browser, "health")

    first = expected[0]
    whole = json.loads(business.cli("health", first["client_ref"], "--json"))
    browser.find_element(By.LINK_TEXT, first["company"]).click()
    wait_for_text(browser, "Contracts")
    assert browser.find_element(By.ID, "client-band").text == whole["band"]
    assert abs(float(browser.find_element(By.ID, "client-score").text) - whole["score"]) < 0.2
    assert browser.find_element(By.ID, "contract-end").text == (whole["contract_end"] or "-")
    if whole["signals"]:
        shown_signals = [(r.get_attribute("data-key"), r.get_attribute("data-kind")) for r in _rows(browser, "signals")]
        assert shown_signals == [(s["key"], s["kind"]) for s in whole["signals"]]
    else:
        assert browser.find_element(By.ID, "no-signals").text.startswith("No signal counts today")
    contracts = [r.get_attribute("data-deal") for r in _rows(browser, "contracts")]
    assert contracts == [str(c["deal_id"]) for c in whole["contracts"]] and contracts
    screenshot(browser, "client-health")

    _not_found(browser, business, "/health/no-such-client", "There is no client 'no-such-client'.")
    # What the address says is shown as text, never as markup.
    _not_found(browser, business, "/health/<i>x", "There is no client '&lt;i&gt;x'.")
    assert absent(browser, By.CSS_SELECTOR, "main i")


@integration
def test_reports_and_learning_show_what_the_commands_show(browser: Any, business: WebService) -> None:
    from selenium.webdriver.common.by import By

    reports = _lines(business, "reports", "--json")
    assert reports
    sign_in(browser, business, "viewer1")
    _open(browser, business, "/reports", "formats")
    rows = _rows(browser, "reports")
    assert [r.get_attribute("data-id") for r in rows] == [str(r["id"]) for r in reports]
    for row, r in zip(rows, reports, strict=True):
        cells = _cells(row)
        assert cells[0] == r["company"] and cells[1] == r["period"] and cells[5] == r["formats"]
        assert cells[3] == (r["email_status"] or "-").lower()
        assert cells[4] == when(r["sent_at"] or r["created_at"])
    screenshot(browser, "reports")

    # Each report as the client received it: its page (the email's HTML, the chart inlined, in a
    # sandbox of its own) and its PDF, byte for byte what the email carried.
    first = reports[0]
    html, pdf = report_parts(_report_raw(business, int(first["id"])))
    assert html is not None and pdf is not None
    cookie = {"Cookie": f"aicmo_session={browser.get_cookie('aicmo_session')['value']}"}
    page_href = rows[0].find_element(By.CSS_SELECTOR, "[data-open=page]").get_attribute("href")
    with urllib.request.urlopen(urllib.request.Request(page_href, headers=cookie), timeout=20) as answer:
        assert answer.headers["Content-Security-Policy"] == REPORT_PAGE_POLICY
        body = answer.read().decode()
    assert body == html and "cid:" not in body and 'src="data:image/png;base64,' in body
    pdf_href = rows[0].find_element(By.CSS_SELECTOR, "[data-open=pdf]").get_attribute("href")
    with urllib.request.urlopen(urllib.request.Request(pdf_href, headers=cookie), timeout=20) as answer:
        assert answer.headers["Content-Type"] == "application/pdf"
        assert answer.read() == pdf and pdf.startswith(b"%PDF")
    rows[0].find_element(By.CSS_SELECTOR, "[data-open=page]").click()
    wait_for_text(browser, f"report for {first['period']}")
    screenshot(browser, "report-page")
    for missing in ("/reports/999999", "/reports/abc/pdf"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"{business.url}/app{missing}", headers=cookie), timeout=10)
        assert refused.value.code == 404

    learned = json.loads(business.cli("learn", CAMPAIGN, "--json"))
    assert learned["variants"]
    _open(browser, business, "/learning", CAMPAIGN)
    browser.find_element(By.LINK_TEXT, CAMPAIGN).click()
    wait_for_text(browser, "Per step and variant")
    rows = _rows(browser, "variants")
    shown_lines = [
        (
            r.get_attribute("data-step"),
            r.get_attribute("data-variant"),
            r.find_element(By.CSS_SELECTOR, "[data-sends]").text,
            r.find_element(By.CSS_SELECTOR, "[data-positive]").text,
            r.find_element(By.CSS_SELECTOR, "[data-deals]").text,
        )
        for r in rows
    ]
    assert shown_lines == [
        (str(v["step"]), v["variant"], str(v["sends"]), str(v["positive_replies"]), str(v["deals"]))
        for v in learned["variants"]
    ]
    for row, v in zip(rows, learned["variants"], strict=True):
        low, high = v["rate_95"]
        assert f"{low * 100:.1f}-{high * 100:.1f}%" in row.text
    screenshot(browser, "learning")
    _not_found(browser, business, "/campaigns/no-such-campaign/learning", "No campaign named 'no-such-campaign'.")


@integration
def test_the_new_pages_fit_a_narrow_screen(browser: Any, business: WebService) -> None:
    sign_in(browser, business, "viewer1")
    browser.set_window_size(390, 844)
    for path, text in (("/projects", "waiting for"), ("/invoices", "balance"), ("/health", "top reasons")):
        _open(browser, business, path, text)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the screen"


# -- what an operator changes ------------------------------------------------------------------------
def _problem(browser: Any, text: str) -> str:
    """The one-line problem the page shows after a refused form (never a traceback)."""
    from selenium.webdriver.common.by import By

    wait_for_text(browser, text)
    shown_problem = str(browser.find_element(By.CSS_SELECTOR, ".flash.problem").text)
    assert "\n" not in shown_problem and "Traceback" not in browser.page_source
    return shown_problem


def _audited(service: WebService, action: str, target: str) -> list[tuple[str, str]]:
    rows = json.loads(service.cli("audit", "--action", action, "--json"))
    return [(r["source"], r["actor"]) for r in rows if r["target"] == target]


def _listed(browser: Any, service: WebService, path: str, table: str, attribute: str) -> list[str]:
    """What a list page shows, one attribute a row (the invoices' numbers, the projects' ids)."""
    _open(browser, service, path, "</table>")
    return [str(r.get_attribute(attribute)) for r in _rows(browser, table)]


@integration
def test_an_operator_records_a_partial_payment_and_a_bad_amount_records_nothing(
    browser: Any, business: WebService
) -> None:
    from selenium.webdriver.common.by import By

    # The oldest open invoice: not the one the test of the invoice pages opens.
    before = _lines(business, "invoices", "--state", "open", "--json")[-1]
    number, cur = before["number"], before["currency"]
    sign_in(browser, business, "operator1")
    _open(browser, business, f"/invoices/{number}", "Record a payment")
    payments_before = len(_rows(browser, "payments")) if "No payment recorded." not in browser.page_source else 0
    today = browser.find_element(By.ID, "payment-received-on").get_attribute("value")
    now = datetime.now(UTC)
    assert today in (now.date().isoformat(), (now - timedelta(days=1)).date().isoformat())  # a midnight may pass

    browser.find_element(By.ID, "payment-amount").send_keys("1")
    browser.find_element(By.ID, "payment-note").send_keys("bank ref WEB-1")
    browser.find_element(By.ID, "record-payment-button").click()
    wait_for_text(browser, "recorded; still owed")
    balance = browser.find_element(By.ID, "invoice-balance").text
    paid = browser.find_element(By.ID, "invoice-paid").text
    payments = [_cells(r) for r in _rows(browser, "payments")]
    assert balance == _money(str(Decimal(before["balance"]) - 1), cur)
    assert len(payments) == payments_before + 1
    assert payments[-1] == [today, _money("1", cur), "operator1", "bank ref WEB-1"]
    screenshot(browser, "invoice-paid")

    # Not a number, negative, too many decimals, none: one line each, nothing recorded.
    for amount, said in (
        ("12,50", "'12,50' is not an amount (no thousands separators, a dot for decimals)"),
        ("-5", "'-5' is not an amount"),
        ("1.234", f"1.234 has more decimals than {cur} has"),
        ("", "Say the amount received"),
    ):
        _open(browser, business, f"/invoices/{number}", "Record a payment")
        browser.find_element(By.ID, "payment-amount").send_keys(amount)
        browser.execute_script("document.getElementById('payment-amount').required = false")
        browser.find_element(By.ID, "record-payment-button").click()
        assert _problem(browser, said).endswith("Nothing was recorded."), amount
    status, _, location = post_form(
        browser, f"{business.url}/app/invoices/{number}/payments", {"amount": "1", "received_on": "next week"}
    )
    assert status == 303 and "is not a day" in urllib.parse.unquote_plus(location)
    # An invoice that is none: the not-found page.
    status, body, _ = post_form(browser, f"{business.url}/app/invoices/1999-0001/payments", {"amount": "1"})
    assert status == 404 and "There is no invoice &#39;1999-0001&#39;." in body

    # What the command shows: the one payment, and the balance the page showed.
    after = json.loads(business.cli("invoice", number, "--json"))
    assert Decimal(after["balance"]) == Decimal(before["balance"]) - 1 > 0 and after["state"] == "open"
    assert (_money(after["balance"], cur), _money(after["paid"], cur)) == (balance, paid)
    assert len(after["payments"]) == payments_before + 1
    last = after["payments"][-1]
    assert (Decimal(last["amount"]), last["received_on"], last["by"], last["note"]) == (
        1,
        today,
        "operator1",
        "bank ref WEB-1",
    )
    assert _audited(business, "invoice.pay", number) == [("web", "operator1")]


@integration
def test_an_operator_cancels_a_running_project_once_confirmed(browser: Any, business: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, business, "operator1")
    # The last running project: not the one the test of the project pages opens.
    project_id = _listed(browser, business, "/projects?state=running", "projects", "data-id")[-1]
    _open(browser, business, f"/projects/{project_id}", "Cancel this project")
    warning = browser.find_element(By.ID, "cancel-warning")
    button = browser.find_element(By.ID, "cancel-project-button")
    assert "undoes the client's work" in warning.text and "the client is told" in warning.text
    assert warning.location["y"] < button.location["y"]
    screenshot(browser, "project-cancel")

    # Without "I understand" nothing happens (had it, the reason kept would be this one).
    browser.find_element(By.ID, "cancel-reason").send_keys("not confirmed")
    button.click()
    assert _problem(browser, "to cancel the project. Nothing was changed.").startswith('Tick "I understand"')

    browser.find_element(By.ID, "cancel-reason").send_keys("budget cut")
    browser.find_element(By.ID, "cancel-understood").click()
    browser.find_element(By.ID, "cancel-project-button").click()
    wait_for_text(browser, "Cancel asked for project")
    assert "by operator1: budget cut" in browser.page_source
    assert absent(browser, By.ID, "cancel-project")

    # Asked again by hand: said so, nothing asked or audited twice.
    fields = {"reason": "again", "understood": "yes"}
    status, _, location = post_form(browser, f"{business.url}/app/projects/{project_id}/cancel", fields)
    assert status == 303 and "was asked already" in urllib.parse.unquote_plus(location)

    # What the command shows: the cancel asked (the undoing is the saga's, on its next tick).
    asked = json.loads(business.cli("project", project_id, "--json"))["project"]
    assert asked["cancel_requested_at"] is not None
    assert (asked["cancel_reason"], asked["cancelled_by"]) == ("budget cut", "operator1")
    assert _audited(business, "project.cancel", project_id) == [("web", "operator1")]


@integration
def test_a_viewer_sees_no_form_and_a_hand_made_one_is_refused(browser: Any, business: WebService) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, business, "viewer1")
    number = _listed(browser, business, "/invoices?state=open", "invoices", "data-number")[-1]
    project_id = _listed(browser, business, "/projects", "projects", "data-id")[0]
    _open(browser, business, f"/invoices/{number}", "Payments")
    assert absent(browser, By.ID, "record-payment") and absent(browser, By.CSS_SELECTOR, "main form[method=post]")
    paid = browser.find_element(By.ID, "invoice-paid").text
    _open(browser, business, f"/projects/{project_id}", "History")
    assert absent(browser, By.ID, "cancel-project") and absent(browser, By.CSS_SELECTOR, "main form[method=post]")
    # A valid CSRF token of this session does not make a viewer's hand-made form an operator's.
    for path, fields in (
        (f"/invoices/{number}/payments", {"amount": "1"}),
        (f"/projects/{project_id}/cancel", {"reason": "viewer", "understood": "yes"}),
    ):
        status, body, _ = post_form(browser, f"{business.url}/app{path}", fields)
        assert status == 403 and "may only look" in body, path
    _open(browser, business, f"/projects/{project_id}", "History")
    assert "by viewer1" not in browser.find_element(By.ID, "project").text
    _open(browser, business, f"/invoices/{number}", "Payments")
    assert browser.find_element(By.ID, "invoice-paid").text == paid


def _database(service: WebService) -> str:
    return service.env["AICMO_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")


def _renewals_stored(service: WebService, deal_id: int) -> list[tuple[int, int, str]]:
    """The deal's rows of `cam_renewals` as the database holds them: (number, months, by)."""
    import sqlite3

    db = sqlite3.connect(f"file:{_database(service)}?mode=ro", uri=True)
    try:
        query = "SELECT number, months, renewed_by FROM cam_renewals WHERE deal_id = ? ORDER BY number"
        return [(int(n), int(m), str(b)) for n, m, b in db.execute(query, (deal_id,)).fetchall()]
    finally:
        db.close()


def _sign_for(service: WebService, deal_id: int, project_id: str, months: int) -> None:
    """Setup, not the service's work: the deal signed for `months` (cam's copy of its package and
    the project's), so that its contract runs past today. The simulated contracts (three months
    from March 2026) ended long before the real clock the service reads: none can be renewed."""
    import sqlite3

    db = sqlite3.connect(_database(service))
    try:
        with db:
            for table, key in (("cam_deals", deal_id), ("orchestration_projects", project_id)):
                db.execute(
                    f"UPDATE {table} SET package = json_set(package, '$.term_months', ?) WHERE id = ?", (months, key)
                )
    finally:
        db.close()


@integration
def test_an_operator_renews_a_retainer_on_its_page_and_a_viewer_cannot(browser: Any, business: WebService) -> None:
    from selenium.webdriver.common.by import By

    from aicmo_actors.gateways.calendar import add_months

    # A retainer's project, running or delivered, no cancel asked (the test above cancels one).
    alive = [p for p in _lines(business, "projects", "--json") if p["state"] in ("running", "delivered")]
    projects = [json.loads(business.cli("project", p["id"], "--json"))["project"] for p in alive]
    project = next(p for p in projects if p["cancel_requested_at"] is None and p["package"]["billing"] == "monthly")
    project_id, deal_id, term = project["id"], int(project["deal_id"]), int(project["package"]["term_months"])
    deal = next(d for d in _lines(business, "deal", "list", "--json") if d["deal"] == deal_id)
    assert deal["renewals"] == [] and _renewals_stored(business, deal_id) == []
    start, ended = date.fromisoformat(project["start_date"]), date.fromisoformat(deal["ends"])
    assert ended == add_months(start, term) < datetime.now(UTC).date() - timedelta(days=30)
    page, renew_url = f"/projects/{project_id}", f"{business.url}/app/projects/{project_id}/renew"

    # A viewer sees the contract, not the form; its hand-made form is refused, nothing recorded.
    sign_in(browser, business, "viewer1")
    _open(browser, business, page, "Not renewed yet.")
    assert browser.find_element(By.ID, "contract-end").text == ended.isoformat()
    assert absent(browser, By.ID, "renew-contract") and absent(browser, By.CSS_SELECTOR, "main form[method=post]")
    status, body, _ = post_form(browser, renew_url, {"months": "3", "number": "1"})
    assert status == 403 and "may only look" in body
    assert _renewals_stored(business, deal_id) == []

    # An operator, on a contract that ended months ago: the refusal said instead of a form; a
    # hand-made form gets the repository's line, nothing recorded.
    browser.delete_all_cookies()
    sign_in(browser, business, "operator1")
    _open(browser, business, page, "Not renewed from here")
    assert browser.find_element(By.ID, "contract-deal").text == str(deal_id)
    assert absent(browser, By.ID, "renew-contract")
    assert browser.find_element(By.ID, "renew-refused").text == (
        f"Not renewed from here: its contract ended on {ended.isoformat()}, more than 30 days ago: sign a new deal."
    )
    status, _, location = post_form(browser, renew_url, {"months": "3", "number": "1"})
    assert status == 303 and urllib.parse.unquote_plus(location).endswith(
        f"deal {deal_id} cannot be renewed: its contract ended on {ended.isoformat()}, more than 30 days ago: "
        "sign a new deal. Nothing was changed."
    )
    assert _renewals_stored(business, deal_id) == []

    def renew(value: str) -> None:
        field = browser.find_element(By.ID, "renew-months")
        browser.execute_script("document.getElementById('renew-contract').noValidate = true")  # the server's check
        field.clear()
        field.send_keys(value)
        browser.find_element(By.ID, "renew-button").click()

    # Signed for longer (setup): the form, offering the signed term again. 0 months: one line,
    # nothing recorded. Three months more from its end: said, listed as waiting for the service's
    # tick, the new end shown; the form offers the signed term again.
    today = datetime.now(UTC).date()
    term = (today.year - start.year) * 12 + today.month - start.month + 2
    _sign_for(business, deal_id, project_id, term)
    end, renewed_to = add_months(start, term), add_months(start, term + 3)
    _open(browser, business, page, "Renew the contract")
    assert absent(browser, By.ID, "renew-refused")
    months = browser.find_element(By.ID, "renew-months")
    assert (months.get_attribute("min"), months.get_attribute("max")) == ("1", "120")
    renew("0")
    said = _problem(browser, "Say how many months: a whole number from 1 to 120. Nothing was changed.")
    assert said.startswith("Say how many months")
    assert _renewals_stored(business, deal_id) == []
    assert "Not renewed yet." in browser.find_element(By.ID, "contract").text
    _open(browser, business, page, "Renew the contract")
    assert browser.find_element(By.ID, "contract-end").text == end.isoformat()
    assert browser.find_element(By.ID, "renew-months").get_attribute("value") == str(term)
    renew("3")
    wait_for_text(browser, "Renewal 1 recorded: 3 more months, to")
    assert browser.find_element(By.CSS_SELECTOR, ".flash.ok").text == (
        f"Renewal 1 recorded: 3 more months, to {renewed_to.isoformat()}; the service applies it within a tick."
    )
    rows = _rows(browser, "renewals")
    assert [(r.get_attribute("data-number"), r.get_attribute("data-state")) for r in rows] == [("1", "waiting")]
    assert _cells(rows[0])[:5] == ["1", "3", end.isoformat(), renewed_to.isoformat(), "waiting"]
    assert _cells(rows[0])[5].endswith("by operator1")
    assert browser.find_element(By.ID, "contract-end").text == renewed_to.isoformat()
    assert browser.find_element(By.ID, "renew-months").get_attribute("value") == str(term)
    browser.execute_script("document.getElementById('contract').scrollIntoView()")
    screenshot(browser, "project-renewed")

    # The same form sent again (a double click): recorded once; a stale one with other months: refused.
    status, _, location = post_form(browser, renew_url, {"months": "3", "number": "1"})
    assert status == 303 and "Renewal 1 was recorded already" in urllib.parse.unquote_plus(location)
    status, _, location = post_form(browser, renew_url, {"months": "6", "number": "1"})
    assert status == 303 and "reload the page to renew again" in urllib.parse.unquote_plus(location)

    # What the database and the command hold: the one renewal, the new end, audited once from the web.
    assert _renewals_stored(business, deal_id) == [(1, 3, "operator1")]
    deal = next(d for d in _lines(business, "deal", "list", "--json") if d["deal"] == deal_id)
    assert deal["ends"] == renewed_to.isoformat()
    assert [(r["number"], r["months"], r["starts_on"]) for r in deal["renewals"]] == [(1, 3, end.isoformat())]
    assert _audited(business, "deal.renew", str(deal_id)) == [("web", "operator1")]
