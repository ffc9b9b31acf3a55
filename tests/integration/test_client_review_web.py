"""The client's review page: over HTTP (httpx against the ASGI app) and in a real headless
Chromium (Selenium against a real uvicorn server in the test's loop), on SQLite.

Every item shown (production's HTML sanitised, the text escaped as fallback), approve and
request changes per item (a comment required for changes), answered items read-only, hostile
input escaped, 404 for an unknown token and 410 for a revoked one, the body size limit, the
optional password (argon2, cookie scoped to the link, wrong guesses limited), no JavaScript
needed and a page that fits a phone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from aicmo_actors.client_review import ReviewStore, client_review_routes
from aicmo_actors.client_review.rules import MAX_GUESSES
from aicmo_actors.client_review.web import MAX_BODY_BYTES, hash_password
from aicmo_actors.gateways.http import HttpServer
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from contracts.client_review import ItemReviewed
from tests.integration.client_review_world import (
    BATCH,
    ITEM_1,
    ITEM_2,
    PROJECT,
    FakeTransport,
    Run,
    running,
    token_of,
)
from tests.plugins.browser import absent, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PHONE = (390, 844)


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path}/review.db"
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _started(run: Run, transport: FakeTransport) -> str:
    await run.tell(run.request())
    await run.tick()
    return token_of(transport.sent[0])


async def test_the_page_shows_every_item_sanitised_and_records_verdicts(sqlite_engine: AsyncEngine) -> None:
    store, transport = ReviewStore(sqlite_engine), FakeTransport()
    async with running(store, transport) as run:
        token = await _started(run, transport)
        page = await run.http.get(f"/client/review/{token}")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        body = page.text
        assert "<h2>Route optimisation</h2>" in body and "<strong>save fuel</strong>" in body
        assert "<script" not in body and "onerror" not in body
        assert "On-time delivery &lt;b&gt;matters&lt;/b&gt;" in body  # the title, escaped
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body  # the text fallback, escaped
        assert body.count('name="verdict" value="approve"') == 2

        url = f"/client/review/{token}/answer"
        missing = await run.http.post(url, data={"item": str(ITEM_2), "version": "1", "verdict": "changes"})
        assert missing.status_code == 400 and "Please write what should change." in missing.text
        hostile = '<img src=x onerror="alert(1)"> please shorten'
        changed = await run.http.post(
            url, data={"item": str(ITEM_2), "version": "1", "verdict": "changes", "comment": hostile}
        )
        assert changed.status_code == 303
        again = await run.http.post(url, data={"item": str(ITEM_2), "version": "1", "verdict": "approve"})
        assert again.status_code == 303  # answered already: nothing changes
        after = (await run.http.get(f"/client/review/{token}")).text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; please shorten" in after
        assert after.count('name="verdict" value="approve"') == 1  # the answered item is read-only
        assert "Changes requested" in after
        await run.tick()
        (reviewed,) = run.of(ItemReviewed)
        assert (reviewed.item_id, reviewed.verdict, reviewed.comment) == (ITEM_2, "changes", hostile)

        assert (
            await run.http.post(url, data={"item": "nope", "version": "1", "verdict": "approve"})
        ).status_code == 400
        assert (await run.http.post(url, content=b"x", headers={"content-type": "text/plain"})).status_code == 415
        big = b"comment=" + b"a" * MAX_BODY_BYTES
        too_big = await run.http.post(url, content=big, headers={"content-type": "application/x-www-form-urlencoded"})
        assert too_big.status_code == 413
        assert (await run.http.get("/client/review/" + "0" * 64)).status_code == 404
        assert (await run.http.get("/client/review/not-a-token")).status_code == 404
        assert await store.batches.revoke(BATCH, run.clock.now()) is True
        gone = await run.http.get(f"/client/review/{token}")
        assert gone.status_code == 410 and "Acme" not in gone.text


async def test_a_password_protects_the_page_and_wrong_guesses_are_limited(sqlite_engine: AsyncEngine) -> None:
    store, transport = ReviewStore(sqlite_engine), FakeTransport()
    async with running(store, transport) as run:
        token = await _started(run, transport)
        await store.batches.protect(str(PROJECT), hash_password("correct horse"), run.clock.now())
        page = await run.http.get(f"/client/review/{token}")
        assert page.status_code == 200 and 'type="password"' in page.text and "Route optimisation" not in page.text
        blocked = await run.http.post(
            f"/client/review/{token}/answer", data={"item": str(ITEM_1), "version": "1", "verdict": "approve"}
        )
        assert blocked.status_code == 403
        unlock = f"/client/review/{token}/unlock"
        wrong = await run.http.post(unlock, data={"password": "guess"})
        assert wrong.status_code == 401 and "That is not the password." in wrong.text
        right = await run.http.post(unlock, data={"password": "correct horse"})
        assert right.status_code == 303
        cookie = right.headers["set-cookie"]
        assert f"Path=/client/review/{token}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        shown = await run.http.get(f"/client/review/{token}")
        assert "Route optimisation" in shown.text
        run.http.cookies.clear()
        for _ in range(MAX_GUESSES):
            assert (await run.http.post(unlock, data={"password": "guess"})).status_code == 401
        assert (await run.http.post(unlock, data={"password": "correct horse"})).status_code == 429
        run.clock.advance(15 * 60)
        assert (await run.http.post(unlock, data={"password": "correct horse"})).status_code == 303


def _browse(browser: Any, url: str) -> dict[str, Any]:
    """In Chromium, no JavaScript needed: approve one item, ask changes on the other."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    seen: dict[str, Any] = {}
    browser.get(url)
    seen["title"] = browser.title
    seen["no_scripts"] = absent(browser, By.TAG_NAME, "script")
    browser.set_window_size(*PHONE)
    browser.get(url)
    seen["fits"] = bool(
        browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    )
    screenshot(browser, "client-review-narrow")

    def click(item: Any, verdict: str) -> None:
        """Click and wait for the next page: the old one gone stale and the new one loaded (an
        element found while it still loaded once belonged to no document by the time it was
        clicked, under a loaded CI machine)."""
        item.find_element(By.CSS_SELECTOR, f"button[value={verdict}]").click()
        WebDriverWait(browser, 10).until(expected_conditions.staleness_of(item))
        WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.readyState") == "complete")

    click(browser.find_element(By.ID, f"item-{ITEM_1}"), "approve")
    click(browser.find_element(By.ID, f"item-{ITEM_2}"), "changes")  # no comment: refused
    seen["error"] = browser.find_element(By.CSS_SELECTOR, ".error").text
    second = browser.find_element(By.ID, f"item-{ITEM_2}")
    second.find_element(By.TAG_NAME, "textarea").send_keys("Please use the 2027 figures.")
    click(second, "changes")
    seen["statuses"] = [e.get_attribute("data-status") for e in browser.find_elements(By.CSS_SELECTOR, "section.item")]
    seen["no_forms"] = absent(browser, By.TAG_NAME, "form")
    screenshot(browser, "client-review-answered")
    return seen


async def test_the_page_in_a_real_browser(sqlite_engine: AsyncEngine, browser: Any) -> None:
    store, transport = ReviewStore(sqlite_engine), FakeTransport()
    async with running(store, transport) as run:
        token = await _started(run, transport)
        app = Starlette(routes=client_review_routes(store, now=run.clock.now))
        async with HttpServer(app) as server:
            seen = await anyio.to_thread.run_sync(_browse, browser, f"{server.url}/client/review/{token}")
        await run.tick()
        assert seen["title"] == "For your review: Acme Logistics"
        assert seen["no_scripts"] and seen["fits"]
        assert seen["error"] == "Please write what should change."
        assert seen["statuses"] == ["approved", "changes"] and seen["no_forms"]
        assert {(e.item_id, e.verdict, e.by, e.comment) for e in run.of(ItemReviewed)} == {
            (ITEM_1, "approved", "page", ""),
            (ITEM_2, "changes", "page", "Please use the 2027 figures."),
        }
