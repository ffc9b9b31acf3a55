"""The client's plan page (`strategy_routes`) on both databases, through a Starlette app in the
test: the page, approving, asking for changes, the PDFs, links that open nothing, size
limits, escaping, headers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from aicmo_actors.storage.links import make_token, revoke_in
from aicmo_actors.storage.work import run_write
from aicmo_actors.strategy import StrategyStore, strategy_routes
from aicmo_actors.strategy.emails import Letterhead, plan_email
from aicmo_actors.strategy.plan import build_plan, plan_to_json, revise_plan
from aicmo_actors.strategy.render import render_html, render_pdf
from aicmo_actors.strategy.repos import NewVersion
from aicmo_actors.strategy.tables import strategy_links as links_t
from aicmo_actors.strategy.tables import strategy_plans as plans_t
from aicmo_actors.strategy.web import MAX_BODY_BYTES, MAX_COMMENTS
from contracts.clients import ClientInfo
from tests.integration.test_strategy import BRIEF, PACKAGE

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
PROJECT = "0b5e2f3a-9c1d-4e8f-a7b6-123456789abc"
SECRET = b"strategy-test-secret-32-bytes!!!"
TOKEN = make_token(SECRET, "plan", PROJECT, 42)
TOKEN2 = make_token(SECRET, "plan", PROJECT, 43)
DEADLINE = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme <Tea> & Co",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    timezone="Europe/Berlin",
    country="DE",
)
HEAD = Letterhead("plans@agency.example", "Bright Agency", "https://agency.example")


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


def _version(version: int, token: str, brief: dict[str, str]) -> NewVersion:
    plan = build_plan(CLIENT, PACKAGE, brief, date(2026, 12, 1), seed=PROJECT)
    if version > 1:
        plan = revise_plan(plan, "Please avoid 'fleet utilisation'.")
    pdf = render_pdf(plan, created=NOW)
    key = f"{PROJECT}:strategy:plan:{version}"
    email = plan_email(HEAD, CLIENT, plan, key=key, pdf=pdf, token=token, deadline=DEADLINE, last_round=False, now=NOW)
    return NewVersion(
        project_id=PROJECT,
        version=version,
        plan=plan_to_json(plan),
        html=render_html(plan, agency="Bright Agency"),
        pdf=pdf,
        deadline_at=DEADLINE,
        token=token,
        link_expires_at=NOW + timedelta(days=30),
        email=email,
    )


async def seed(store: StrategyStore, brief: dict[str, str] | None = None) -> None:
    created, _ = await store.plans.create_first(
        _version(1, TOKEN, brief or BRIEF),
        draft_key=f"{PROJECT}:strategy",
        client=CLIENT.model_dump(mode="json"),
        package=PACKAGE.model_dump(mode="json"),
        brief=brief or BRIEF,
        start=date(2026, 12, 1),
        now=NOW,
    )
    assert created


async def add_version_2(store: StrategyStore) -> None:
    answered = await store.plans.answer(TOKEN, 1, approve=False, comments="Shorter.", now=NOW)
    assert not isinstance(answered, str) and answered.done
    (pending,) = await store.plans.unannounced()
    assert await store.plans.revise(pending.id, _version(2, TOKEN2, BRIEF), NOW)


@pytest.fixture
async def web(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, StrategyStore, Clock]]:
    store, clock = StrategyStore(engine), Clock()
    app = Starlette(routes=strategy_routes(store, now=clock))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http, store, clock


Web = tuple[httpx.AsyncClient, StrategyStore, Clock]


def assert_private(response: httpx.Response) -> None:
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


# -- the page ------------------------------------------------------------------------------------------------------


async def test_the_page_shows_the_plan_and_the_two_forms(web: Web) -> None:
    http, store, _ = web
    await seed(store)
    response = await http.get(f"/client/plan/{TOKEN}")
    assert response.status_code == 200
    assert_private(response)
    page = response.text
    assert "<title>Plan for Acme &lt;Tea&gt; &amp; Co</title>" in page
    assert "<h1>Plan for Acme &lt;Tea&gt; &amp; Co</h1>" in page
    assert page.count('<td class="due"') == 6
    # Relative to /client/plan/{token}: the forms and the PDF stay below the token.
    assert f'<form method="post" action="{TOKEN}/approve">' in page
    assert f'<form method="post" action="{TOKEN}/changes">' in page
    assert f'<a href="{TOKEN}/plan-v1.pdf">version 1</a>' in page
    assert '<input type="hidden" name="version" value="1">' in page
    assert f'maxlength="{MAX_COMMENTS}"' in page
    assert "Mon 7 December 2026, 09:00 (Europe/Berlin)" in page
    assert "<script" not in page  # no JavaScript at all
    assert 'name="viewport"' in page and "@media (max-width:40em)" in page  # readable on a phone


async def test_a_hostile_brief_is_escaped_on_the_page(web: Web) -> None:
    http, store, _ = web
    await seed(store, {**BRIEF, "words_to_use": HOSTILE, "audience": HOSTILE})
    page = (await http.get(f"/client/plan/{TOKEN}")).text
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


@pytest.mark.parametrize("token", ["", "nothex" * 11, "ab" * 32, "AB" * 32, "a" * 200, "../../etc/passwd"])
async def test_a_token_that_opens_nothing_gets_a_plain_404(web: Web, token: str) -> None:
    http, store, _ = web
    await seed(store)
    for response in (
        await http.get(f"/client/plan/{token}"),
        await http.post(f"/client/plan/{token}/approve", data={"version": "1"}),
        await http.get(f"/client/plan/{token}/plan-v1.pdf"),
    ):
        assert response.status_code == 404
        assert "Acme" not in response.text and "Plan for" not in response.text and "plan-v" not in response.text


async def test_an_expired_or_revoked_link_gets_410_and_says_nothing(web: Web, engine: AsyncEngine) -> None:
    http, store, clock = web
    await seed(store)
    clock.at = NOW + timedelta(days=30)
    expired = await http.get(f"/client/plan/{TOKEN}")
    assert expired.status_code == 410
    assert_private(expired)
    assert "Acme" not in expired.text
    clock.at = NOW
    await run_write(engine, lambda conn: revoke_in(conn, links_t, PROJECT, NOW))
    revoked = await http.get(f"/client/plan/{TOKEN}")
    assert revoked.status_code == 410 and revoked.text == expired.text
    assert (await http.post(f"/client/plan/{TOKEN}/approve", data={"version": "1"})).status_code == 410
    assert (await http.get(f"/client/plan/{TOKEN}/plan-v1.pdf")).status_code == 410


# -- answers -------------------------------------------------------------------------------------------------------


async def test_approving_stores_the_answer_and_the_page_then_shows_it_without_forms(
    web: Web, engine: AsyncEngine
) -> None:
    http, store, clock = web
    await seed(store)
    clock.at = NOW + timedelta(hours=1)
    response = await http.post(f"/client/plan/{TOKEN}/approve", data={"version": "1"})
    assert response.status_code == 303
    assert response.headers["location"] == f"../{TOKEN}"
    assert_private(response)
    again = await http.post(f"/client/plan/{TOKEN}/approve", data={"version": "1"})  # a second click
    assert again.status_code == 303
    (plan,) = await rows(engine, sa.select(plans_t))
    assert (plan["status"], plan["answered_at"], plan["announced_at"]) == ("approved", NOW + timedelta(hours=1), None)

    page = (await http.get(f"/client/plan/{TOKEN}")).text
    assert "You approved version 1 of this plan on Mon 30 November 2026, 12:00 (Europe/Berlin)" in page
    assert "<form" not in page
    assert f'<a href="{TOKEN}/plan-v1.pdf">' in page
    # Asking for changes on an approved plan changes nothing.
    later = await http.post(f"/client/plan/{TOKEN}/changes", data={"version": "1", "comments": "No!"})
    assert later.status_code == 303
    (plan,) = await rows(engine, sa.select(plans_t))
    assert (plan["status"], plan["comments"]) == ("approved", None)


async def test_asking_for_changes_stores_the_comments(web: Web, engine: AsyncEngine) -> None:
    http, store, _ = web
    await seed(store)
    comments = "Please avoid 'fleet utilisation'.\r\nAnd <b>earlier</b> dates\x00."
    response = await http.post(f"/client/plan/{TOKEN}/changes", data={"version": "1", "comments": comments})
    assert response.status_code == 303
    (plan,) = await rows(engine, sa.select(plans_t))
    assert (plan["status"], plan["comments"]) == (
        "changes_requested",
        "Please avoid 'fleet utilisation'.\nAnd <b>earlier</b> dates.",
    )
    page = (await http.get(f"/client/plan/{TOKEN}")).text
    assert "we received your comments on version 1" in page and "A new version follows by email" in page
    assert "<form" not in page


@pytest.mark.parametrize(
    ("comments", "error"),
    [
        ("", "Please write what should change."),
        (" \r\n\t ", "Please write what should change."),
        ("x" * (MAX_COMMENTS + 1), "Please keep your comments to 5,000 characters (they are 5,001)."),
    ],
)
async def test_changes_need_comments_of_at_most_5000_characters(
    web: Web, engine: AsyncEngine, comments: str, error: str
) -> None:
    http, store, _ = web
    await seed(store)
    response = await http.post(f"/client/plan/{TOKEN}/changes", data={"version": "1", "comments": comments})
    assert response.status_code == 400
    assert_private(response)
    assert error in response.text
    # The page comes back from /client/plan/{token}/changes: its links are relative to that.
    assert '<form method="post" action="approve">' in response.text
    (plan,) = await rows(engine, sa.select(plans_t))
    assert (plan["status"], plan["comments"]) == ("awaiting", None)


async def test_comments_of_exactly_5000_characters_are_taken_and_a_refused_answer_is_echoed_escaped(
    web: Web, engine: AsyncEngine
) -> None:
    http, store, _ = web
    await seed(store)
    refused = await http.post(
        f"/client/plan/{TOKEN}/changes", data={"version": "1", "comments": HOSTILE + "x" * MAX_COMMENTS}
    )
    assert refused.status_code == 400
    assert "<script" not in refused.text and "&lt;script&gt;" in refused.text
    taken = await http.post(f"/client/plan/{TOKEN}/changes", data={"version": "1", "comments": "y" * MAX_COMMENTS})
    assert taken.status_code == 303
    (plan,) = await rows(engine, sa.select(plans_t))
    assert plan["comments"] == "y" * MAX_COMMENTS


async def test_an_answer_for_an_older_version_is_refused_with_the_current_one(web: Web, engine: AsyncEngine) -> None:
    http, store, _ = web
    await seed(store)
    await add_version_2(store)
    stale = await http.post(f"/client/plan/{TOKEN}/approve", data={"version": "1"})
    assert stale.status_code == 409
    assert "The plan changed since you opened it" in stale.text
    assert '<input type="hidden" name="version" value="2">' in stale.text
    v1, v2 = await rows(engine, sa.select(plans_t).order_by(plans_t.c.version))
    assert (v1["status"], v2["status"]) == ("changes_requested", "awaiting")
    # Both links show version 2, with the PDFs of both versions.
    for token in (TOKEN, TOKEN2):
        page = (await http.get(f"/client/plan/{token}")).text
        assert "version 2" in page and "<h2>Changes requested</h2>" in page
        assert f'<a href="{token}/plan-v1.pdf">version 1</a>' in page
        assert f'<a href="{token}/plan-v2.pdf">version 2</a>' in page
        # Version 2 is the package's last round (one review round): the page says so.
        assert "This is the last version your package includes" in page


@pytest.mark.parametrize("bad", ["", "x", "-1", "1.0"])
async def test_a_form_without_a_version_number_is_refused(web: Web, engine: AsyncEngine, bad: str) -> None:
    http, store, _ = web
    await seed(store)
    response = await http.post(f"/client/plan/{TOKEN}/approve", data={"version": bad})
    assert response.status_code == 400
    (plan,) = await rows(engine, sa.select(plans_t))
    assert plan["status"] == "awaiting"


async def test_a_body_over_the_limit_is_refused_before_it_is_read(web: Web, engine: AsyncEngine) -> None:
    http, store, _ = web
    await seed(store)
    body = b"version=1&comments=" + b"x" * MAX_BODY_BYTES
    declared = await http.post(
        f"/client/plan/{TOKEN}/changes",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b"version=1&comments="
        for _ in range(MAX_BODY_BYTES // 1000 + 1):
            yield b"x" * 1000

    streamed = await http.post(
        f"/client/plan/{TOKEN}/changes",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    assert_private(streamed)
    (plan,) = await rows(engine, sa.select(plans_t))
    assert plan["status"] == "awaiting"


async def test_only_a_web_form_is_read(web: Web) -> None:
    http, store, _ = web
    await seed(store)
    as_json = await http.post(f"/client/plan/{TOKEN}/approve", json={"version": "1"})
    assert as_json.status_code == 415
    multipart = await http.post(f"/client/plan/{TOKEN}/approve", files={"version": ("v", b"1")})
    assert multipart.status_code == 415


async def test_a_withdrawn_plan_shows_its_state_without_forms(web: Web, engine: AsyncEngine) -> None:
    http, store, _ = web
    await seed(store)
    async with engine.begin() as conn:  # withdrawn, link kept (a cancel also revokes it)
        await conn.execute(plans_t.update().values(withdrawn_at=NOW))
    page = (await http.get(f"/client/plan/{TOKEN}")).text
    assert "This plan has been withdrawn" in page and "<form" not in page
    refused = await http.post(f"/client/plan/{TOKEN}/approve", data={"version": "1"})
    assert refused.status_code == 303
    (plan,) = await rows(engine, sa.select(plans_t))
    assert plan["status"] == "awaiting"


# -- the PDFs ------------------------------------------------------------------------------------------------------


async def test_the_pdf_of_each_version(web: Web, engine: AsyncEngine) -> None:
    http, store, _ = web
    await seed(store)
    await add_version_2(store)
    v1, v2 = await rows(engine, sa.select(plans_t).order_by(plans_t.c.version))
    for version, row in ((1, v1), (2, v2)):
        response = await http.get(f"/client/plan/{TOKEN}/plan-v{version}.pdf")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == f'inline; filename="plan-v{version}.pdf"'
        assert_private(response)
        assert response.content == row["pdf"] and response.content.startswith(b"%PDF-")
    assert (await http.get(f"/client/plan/{TOKEN}/plan-v3.pdf")).status_code == 404
    assert (await http.get(f"/client/plan/{TOKEN}/plan-vx.pdf")).status_code == 404
