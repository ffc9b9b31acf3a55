"""Production's work items in a real browser: the list and one item show what `work list --json`
and `work show ID --json` print for the same database (the start of an id is enough, an unknown
one gives the not-found page); an operator assigns an item, uploads a draft (the next version,
source "person") and signs one off; an empty draft, a user that is none and a sign-off of an item
not waiting for one are one line each and record nothing; a draft's markup is shown as text; a
viewer sees no form and is refused a hand-made one.

The service reads a short simulated run of its own (module-scoped, the fewest days in which
clients sign and production makes items: some planned, some in review). Its clock is the real one,
after the simulated days; the running service changes nothing the pages show before its first
tick (an hour)."""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
import urllib.parse
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from aicmo_actors.cli.demo import EXAMPLES, load_demo_inputs
from aicmo_actors.simulation.run import simulate
from aicmo_actors.simulation.world import BUSY_PROSPECTS, Faults
from aicmo_actors.webapp.pages_work import draft_text, listed_state
from aicmo_actors.webapp.web import when
from tests.plugins.browser import (
    IMPLICIT_WAIT_S,
    WebService,
    absent,
    post_form,
    screenshot,
    serving,
    sign_in,
    wait_for_text,
)
from tests.web.test_web_business import _cells, _open, _problem, _rows, _wait_for_url

integration = pytest.mark.integration

#: Interested prospects who sign within days; ten days: plans approved, items planned and in review.
SIGNING = dataclasses.replace(BUSY_PROSPECTS, interested=0.2)
LEADS, DAYS, SEED = 12, 10, 5
SCRIPT = '<script>document.title = "owned"</script> & <b>not bold</b>'


# -- pure parts --------------------------------------------------------------------------------------
def test_the_state_is_listed_as_the_command_lists_it() -> None:
    assert listed_state({"state": "planned", "needs_person_at": None, "late_at": None}) == "planned"
    late = {"state": "drafting", "needs_person_at": "2026-03-02T08:00:00", "late_at": "2026-03-03T08:00:00"}
    assert listed_state(late) == "drafting (needs a person) LATE"


def test_a_typed_draft_keeps_its_lines_as_a_file_has_them() -> None:
    assert draft_text("## Title\r\n\r\nA line.\r\n") == "## Title\n\nA line.\n"
    assert draft_text("no line end") == "no line end"


# -- the service over a short simulated run -----------------------------------------------------------
@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebService]:
    root = tmp_path_factory.mktemp("work")
    spec, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", LEADS)
    run = functools.partial(
        simulate, workdir=root / "sim", spec=spec, leads=rows, days=DAYS, seed=SEED, behaviour=SIGNING, faults=Faults()
    )
    result = anyio.run(run)
    assert result.violations == [], "; ".join(str(v) for v in result.violations)
    with serving(root, result.db_path, {"viewer1": "viewer", "operator1": "operator"}) as service:
        yield service


def _items(service: WebService, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.cli("work", "list", *args, "--json").splitlines() if line.strip()]


def _show(service: WebService, item_id: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(service.cli("work", "show", item_id, "--json"))
    return found


def _versions(browser: Any) -> list[tuple[str, str, str]]:
    from selenium.webdriver.common.by import By

    return [
        (str(v.get_attribute("data-version")), str(v.get_attribute("data-source")), str(v.get_attribute("data-author")))
        for v in browser.find_elements(By.CSS_SELECTOR, "section.version")
    ]


@integration
def test_the_work_pages_show_what_the_command_shows(browser: Any, production: WebService) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    expected = _items(production)
    states = {i["state"] for i in expected}
    assert "planned" in states and "in_review" in states, states
    sign_in(browser, production, "viewer1")
    _open(browser, production, "/work", "assignee")
    # Read in one go (a round trip per cell would cost seconds): each row's data and its cells' text.
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#work tbody tr')].map(r => ({data: {...r.dataset},"
        " cells: [...r.querySelectorAll('td')].map(td => td.innerText)}))"
    )
    assert [r["data"]["id"] for r in rows] == [i["id"] for i in expected]
    for row, i in zip(rows, expected, strict=True):
        shown = tuple(row["data"][name] for name in ("project", "state", "due", "version", "assignee"))
        assert shown == (i["project_id"], i["state"], i["due_on"], str(i["version"]), i["assignee"])
        cells = row["cells"]
        assert cells[:3] == [i["id"][:8], i["project_id"][:8], f"{i['type']} / {i['channel']}"]
        assert cells[3:7] == [i["due_on"], listed_state(i), str(i["version"]), i["assignee"]]
        assert cells[7] == i["topic"]
    screenshot(browser, "work")

    # The filter: the command's for the same state; a state no item is in; a state that is none.
    Select(browser.find_element(By.ID, "work-state")).select_by_value("in_review")
    browser.find_element(By.ID, "filter-work").click()
    _wait_for_url(browser, "state=in_review")
    in_review = [i["id"] for i in _items(production, "--state", "in_review")]
    assert [r.get_attribute("data-id") for r in _rows(browser, "work")] == in_review
    assert "cancelled" not in states
    _open(browser, production, "/work?state=cancelled", "No work items cancelled")
    _open(browser, production, "/work?state=lost", "Show work items in one of these states: planned,")

    # One item whole, from the list: the one with the most versions (QC and the client's verdict).
    item = max(expected, key=lambda i: (i["version"], i["id"]))
    whole = _show(production, item["id"])
    assert whole["versions"] and whole["history"]
    _open(browser, production, "/work", "assignee")
    browser.find_element(By.LINK_TEXT, item["id"][:8]).click()
    wait_for_text(browser, "History")
    assert browser.current_url.endswith(f"/app/work/{item['id']}")
    i = whole["item"]
    assert browser.find_element(By.ID, "item-id").text == i["id"]
    assert browser.find_element(By.ID, "item-state").text == i["state"]
    assert browser.find_element(By.ID, "item-version").text == str(i["version"])
    assert browser.find_element(By.ID, "item-assignee").text == i["assignee"]
    assert browser.find_element(By.ID, "item-due").text == f"{i['due_on']} (drafting from {i['start_on']})"
    assert i["company"] in browser.find_element(By.ID, "work-item").text
    assert _versions(browser) == [(str(v["version"]), v["source"], v["author"] or "") for v in whole["versions"]]
    browser.implicitly_wait(0)  # the page is there: an element absent is not waited for
    try:
        for v in whole["versions"]:
            section = browser.find_element(By.ID, f"version-{v['version']}")
            assert section.find_element(By.CSS_SELECTOR, "pre.draft").get_attribute("textContent") == v["text"]
            qc = [e.get_attribute("data-qc") for e in section.find_elements(By.CSS_SELECTOR, "[data-qc]")]
            assert qc == ([("passed" if v["qc_passed"] else "failed")] if v["qc_at"] else [])
            assert len(section.find_elements(By.CSS_SELECTOR, "ul.findings li")) == len(v["qc_findings"] or [])
            verdict = [
                e.get_attribute("data-verdict") for e in section.find_elements(By.CSS_SELECTOR, "[data-verdict]")
            ]
            assert verdict == ([v["verdict"]] if v["verdict"] else [])
        deliveries = [
            (r.get_attribute("data-version"), r.get_attribute("data-method")) for r in _rows(browser, "deliveries")
        ]
        assert deliveries == [(str(d["version"]), d["method"]) for d in whole["deliveries"]]
    finally:
        browser.implicitly_wait(IMPLICIT_WAIT_S)
    history = _rows(browser, "history")
    assert [(c[0], c[1]) for c in map(_cells, history)] == [(when(h["at"]), h["state"]) for h in whole["history"]]
    # A viewer sees no form.
    assert absent(browser, By.CSS_SELECTOR, "main form[method=post]")
    screenshot(browser, "work-item")

    # The start of the id is enough, as on the command line; anything else is the not-found page.
    _open(browser, production, f"/work/{item['id'][:8]}", i["id"])
    for wrong, said in (("0000dead", "There is no work item '0000dead'."), ("%%%%", "There is no work item '%%%%'.")):
        browser.get(f"{production.url}/app/work/{urllib.parse.quote(wrong)}")
        wait_for_text(browser, said)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"


def _item_rows(service: WebService, item_id: str) -> tuple[int, int, str]:
    """What the database holds of an item: (its versions, its history rows, its assignee)."""
    db = sqlite3.connect(f"file:{service.env['AICMO_DATABASE_URL'].split('///', 1)[1]}?mode=ro", uri=True)
    try:
        versions = db.execute("SELECT count(*) FROM production_versions WHERE item_id = ?", (item_id,)).fetchone()[0]
        events = db.execute("SELECT count(*) FROM production_item_events WHERE item_id = ?", (item_id,)).fetchone()[0]
        assignee = db.execute("SELECT assignee FROM production_items WHERE id = ?", (item_id,)).fetchone()[0]
        return int(versions), int(events), str(assignee)
    finally:
        db.close()


def _audit_of(service: WebService, item_id: str) -> list[tuple[str, str, str]]:
    """The audit rows of an item's work, oldest first: (action, source, actor)."""
    rows = json.loads(service.cli("audit", "--action", "work.", "--json"))
    found = sorted((r["id"], r["action"], r["source"], r["actor"]) for r in rows if r["target"] == item_id)
    return [(action, source, actor) for _, action, source, actor in found]


@integration
def test_an_operator_assigns_uploads_and_signs_off(browser: Any, production: WebService) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    # A planned item nobody wrote yet: a person's draft is welcome.
    item_id = next(i["id"] for i in _items(production, "--state", "planned") if i["version"] == 0)
    page = f"/work/{item_id}"
    sign_in(browser, production, "operator1")
    _open(browser, production, page, "Upload a draft")
    options = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "assign-user")).options]
    assert options == ["unassigned", "operator1", "viewer1"]
    assert absent(browser, By.ID, "signoff-item")

    # Assigned: said and shown (the command's view of it is checked at the end).
    Select(browser.find_element(By.ID, "assign-user")).select_by_value("viewer1")
    browser.find_element(By.ID, "assign-button").click()
    wait_for_text(browser, f"Item {item_id[:8]} assigned to viewer1.")
    assert browser.find_element(By.ID, "item-assignee").text == "viewer1"

    # An empty draft, a user that is none, a sign-off not awaited: one line each, nothing recorded.
    before = _item_rows(production, item_id)
    assert before[0] == 0 and before[2] == "viewer1"
    browser.find_element(By.ID, "draft-text").send_keys("  \n ")
    browser.find_element(By.ID, "upload-draft-button").click()
    said = _problem(browser, "The draft is empty")
    assert said == "The draft is empty: write it in the box or choose a file. Nothing was recorded."
    status, _, location = post_form(browser, f"{production.url}/app{page}/assign", {"user": "nobody"})
    assert status == 303 and "There is no user 'nobody'" in urllib.parse.unquote_plus(location)
    status, _, location = post_form(browser, f"{production.url}/app{page}/signoff", {})
    assert status == 303
    assert "only an item awaiting sign-off can be signed off. Nothing was changed." in urllib.parse.unquote_plus(
        location
    )
    assert _item_rows(production, item_id) == before

    # A draft typed in: version 1, source person, by the operator, its markup shown as text.
    _open(browser, production, page, "Upload a draft")
    browser.find_element(By.ID, "draft-title").send_keys("Written by hand")
    browser.find_element(By.ID, "draft-text").send_keys(f"## A heading\n\n{SCRIPT}\n")
    browser.find_element(By.ID, "upload-draft-button").click()
    wait_for_text(browser, "Version 1 uploaded: the service sends it to quality control on its next tick.")
    assert _versions(browser) == [("1", "person", "operator1")]
    text = browser.find_element(By.CSS_SELECTOR, "#version-1 pre.draft").get_attribute("textContent")
    assert text == f"## A heading\n\n{SCRIPT}\n"
    assert "&lt;script&gt;" in browser.page_source and browser.title != "owned"
    assert absent(browser, By.CSS_SELECTOR, "main script") and absent(browser, By.CSS_SELECTOR, "main b")
    assert browser.find_element(By.ID, "item-state").text == "in_qc"
    screenshot(browser, "work-item-uploaded")
    # A file chosen (UTF-8, CR LF kept as written): version 2, the last version's title.
    written = production.root / "draft.md"
    written.write_bytes("Second draft, from a file: caf\u00e9.\r\n".encode())
    browser.find_element(By.ID, "draft-file").send_keys(str(written))
    browser.find_element(By.ID, "upload-draft-button").click()
    wait_for_text(browser, "Version 2 uploaded")
    assert _versions(browser) == [("1", "person", "operator1"), ("2", "person", "operator1")]
    # The same assignee again: said so, not recorded twice.
    status, _, location = post_form(browser, f"{production.url}/app{page}/assign", {"user": "VIEWER1"})
    assert status == 303 and "is assigned to viewer1 already" in urllib.parse.unquote_plus(location)

    # Signed off (setup: the item passed QC in a package with QC sign-off): said, and in review.
    db = sqlite3.connect(production.env["AICMO_DATABASE_URL"].split("///", 1)[1])
    with db:
        db.execute("UPDATE production_items SET state = 'signoff' WHERE id = ?", (item_id,))
    db.close()
    _open(browser, production, page, "Sign off version 2")
    browser.find_element(By.ID, "signoff-button").click()
    wait_for_text(browser, "Version 2 signed off: it goes to the client with the next review batch.")
    assert browser.find_element(By.ID, "item-state").text == "in_review"
    assert absent(browser, By.ID, "signoff-item") and absent(browser, By.ID, "upload-draft")

    # What the command shows, and the audit: each change once, from the web; the refusals none.
    whole = _show(production, item_id)
    assert (whole["item"]["assignee"], whole["item"]["state"], whole["item"]["version"]) == ("viewer1", "in_review", 2)
    assert [(v["version"], v["source"], v["author"], v["title"], v["text"]) for v in whole["versions"]] == [
        (1, "person", "operator1", "Written by hand", f"## A heading\n\n{SCRIPT}\n"),
        (2, "person", "operator1", "Written by hand", "Second draft, from a file: caf\u00e9.\r\n"),
    ]
    assert _audit_of(production, item_id) == [
        ("work.assign", "web", "operator1"),
        ("work.upload", "web", "operator1"),
        ("work.upload", "web", "operator1"),
        ("work.signoff", "web", "operator1"),
    ]


@integration
def test_a_viewer_is_refused_a_hand_made_form(browser: Any, production: WebService) -> None:
    item = next(i for i in _items(production, "--state", "planned") if i["version"] == 0)
    before = _item_rows(production, item["id"])
    sign_in(browser, production, "viewer1")
    _open(browser, production, f"/work/{item['id']}", "History")
    # A valid CSRF token of this session does not make a viewer's hand-made form an operator's.
    for action, fields in (("draft", {"text": "a viewer's draft"}), ("assign", {"user": "viewer1"}), ("signoff", {})):
        status, body, _ = post_form(browser, f"{production.url}/app/work/{item['id']}/{action}", fields)
        assert status == 403 and "may only look" in body, action
    assert _item_rows(production, item["id"]) == before == (0, before[1], "unassigned")
