"""The intake form (`onboarding_routes`) on both databases, through a Starlette app in the test:
the form, partial saves, submitting, links that open nothing, size limits, escaping."""

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

from aicmo_actors.onboarding import OnboardingStore, onboarding_routes
from aicmo_actors.onboarding.emails import Letterhead, Recipient, welcome_email
from aicmo_actors.onboarding.repos import NewIntake
from aicmo_actors.onboarding.rules import MAX_ANSWER_CHARS, ReminderPolicy, plan
from aicmo_actors.onboarding.tables import onboarding_intakes as intakes_t
from aicmo_actors.onboarding.tables import onboarding_links as links_t
from aicmo_actors.onboarding.web import MAX_BODY_BYTES
from aicmo_actors.storage.links import make_token, revoke_in
from aicmo_actors.storage.work import run_write
from contracts.onboarding import BRIEF_FIELDS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2027, 7, 12, 10, 0, tzinfo=UTC)
PROJECT = "0b5e2f3a-9c1d-4e8f-a7b6-123456789abc"
SECRET = b"onboarding-test-secret-32-bytes!"
NONCE = 42
TOKEN = make_token(SECRET, "intake", PROJECT, NONCE)
EXPIRES = NOW + timedelta(days=30)
REQUIRED = {
    "business": "We sell tea to cafes.",
    "audience": "Cafe owners in France.",
    "goals": "Twenty new cafes this year.",
    "brand_voice": "Warm, precise, calm.",
    "competitors": "teaco.example",
}
HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


async def seed(store: OnboardingStore) -> None:
    head = Letterhead("hello@agency.example", "Bright Agency", "https://agency.example")
    to = Recipient(PROJECT, "Acme <Tea>", "Ann Lee", "ann@acme.example", "Europe/Paris")
    policy = ReminderPolicy()
    new = NewIntake(
        project_id=PROJECT,
        idempotency_key=f"{PROJECT}:onboarding",
        client={"company": "Acme <Tea>", "contact_email": "ann@acme.example", "timezone": "Europe/Paris"},
        package={"name": "starter"},
        start_date=date(2027, 7, 12),
        token=TOKEN,
        link_nonce=NONCE,
        link_expires_at=EXPIRES,
        welcome=welcome_email(head, to, token=TOKEN, expires_at=EXPIRES, kickoff_at=NOW + timedelta(days=2), now=NOW),
        policy=policy,
        plan=plan(NOW, policy, country="FR", tz="Europe/Paris"),
    )
    _, created = await store.intakes.start(new, NOW)
    assert created


@pytest.fixture
async def web(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, OnboardingStore, Clock]]:
    store, clock = OnboardingStore(engine), Clock()
    await seed(store)
    app = Starlette(routes=onboarding_routes(store, now=clock, agency_name="Bright Agency"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://agency.example") as client:
        yield client, store, clock


def url(token: str = TOKEN) -> str:
    return f"/client/intake/{token}"


async def intake(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return dict((await conn.execute(sa.select(intakes_t))).mappings().one())


def assert_private(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_the_form_shows_every_question_with_its_help(web: Any) -> None:
    client, _, _ = web
    response = await client.get(url())
    assert response.status_code == 200
    assert_private(response)
    page = response.text
    assert "<script" not in page.lower()
    assert "A few questions for Acme &lt;Tea&gt;" in page
    assert 'name="viewport"' in page
    for field in BRIEF_FIELDS:
        assert f'name="{field.key}"' in page
        assert f'maxlength="{MAX_ANSWER_CHARS}"' in page
        assert field.help.replace("'", "&#39;") in page
    assert page.count("(required)") == sum(1 for f in BRIEF_FIELDS if f.required)
    assert 'value="save"' in page and 'value="submit"' in page
    assert "Wednesday 11 August 2027" in page  # how long the link works, in the client's zone


async def test_a_partial_save_keeps_the_answers_and_the_intake_waiting(web: Any, engine: AsyncEngine) -> None:
    client, _, _ = web
    response = await client.post(url(), data={"business": "  We sell tea.\r\nTo cafes. ", "action": "save"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{TOKEN}?saved=1"
    assert_private(response)
    row = await intake(engine)
    assert (row["state"], row["answers"]) == ("waiting", {"business": "We sell tea.\nTo cafes."})

    # Saved again later with more: the earlier answer stays, what was posted replaces.
    await client.post(url(), data={"audience": "Cafes", "action": "save"})
    assert (await intake(engine))["answers"] == {"business": "We sell tea.\nTo cafes.", "audience": "Cafes"}
    page = (await client.get(f"{url()}?saved=1")).text
    assert "Your answers are saved." in page
    assert "We sell tea.\nTo cafes.</textarea>" in page


async def test_submit_without_every_required_answer_saves_and_names_what_is_missing(
    web: Any, engine: AsyncEngine
) -> None:
    client, _, _ = web
    posted = {k: v for k, v in REQUIRED.items() if k != "brand_voice"}
    response = await client.post(url(), data={**posted, "action": "submit"})
    assert (response.status_code, response.headers["location"]) == (303, f"{TOKEN}?incomplete=1")
    row = await intake(engine)
    assert row["state"] == "waiting" and row["answers"]["business"] == REQUIRED["business"]
    page = (await client.get(f"{url()}?incomplete=1")).text
    assert "To submit, please also answer:" in page
    assert "<li>How should you sound?</li>" in page


async def test_submit_with_every_required_answer_completes_and_shows_them_read_only(
    web: Any, engine: AsyncEngine
) -> None:
    client, _, clock = web
    clock.at = NOW + timedelta(hours=5)
    response = await client.post(url(), data={**REQUIRED, "words_to_use": "", "action": "submit"})
    assert (response.status_code, response.headers["location"]) == (303, TOKEN)
    row = await intake(engine)
    assert (row["state"], row["completed_by"], row["completed_at"]) == ("completed", "client", clock.at)
    assert row["brief"] == {**{f.key: "" for f in BRIEF_FIELDS}, **REQUIRED}
    assert row["announced_at"] is None  # the actor announces it on its next tick

    page = (await client.get(url())).text
    assert "Thank you" in page
    assert "<textarea" not in page and "<form" not in page
    assert REQUIRED["goals"] in page
    assert "Monday 12 July 2027 at 17:00 (Europe/Paris)" in page

    # Posting again changes nothing: the completed brief is what strategy reads.
    again = await client.post(url(), data={"business": "changed", "action": "submit"})
    assert again.status_code == 303
    assert (await intake(engine))["brief"]["business"] == REQUIRED["business"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_token_that_opens_nothing_gets_a_page_that_says_what_to_do(
    web: Any, engine: AsyncEngine, method: str
) -> None:
    client, store, clock = web
    data = {"business": "x", "action": "save"} if method == "POST" else None

    for token in ("0" * 64, "not-a-token", TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1")):
        response = await client.request(method, url(token), data=data)
        assert response.status_code == 404
        assert_private(response)
        assert "This link does not work" in response.text
        assert "contact your account manager" in response.text
        assert "Acme" not in response.text

    clock.at = EXPIRES
    response = await client.request(method, url(), data=data)
    assert (response.status_code, "This link has expired" in response.text) == (410, True)
    assert "Acme" not in response.text

    clock.at = NOW
    await run_write(store.engine, lambda conn: revoke_in(conn, links_t, PROJECT, NOW))
    response = await client.request(method, url(), data=data)
    assert (response.status_code, "This link is no longer active" in response.text) == (410, True)
    assert (await intake(engine))["answers"] == {}


async def test_a_body_over_the_limit_or_of_unknown_size_is_refused_before_it_is_read(
    web: Any, engine: AsyncEngine
) -> None:
    client, _, _ = web
    big = {"business": "x" * MAX_BODY_BYTES, "action": "save"}
    response = await client.post(url(), data=big)
    assert response.status_code == 413
    assert_private(response)
    assert "nothing was saved" in response.text

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length at all
        yield b"business=x&action=save"

    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = await client.post(url(), content=chunks(), headers=headers)
    assert response.status_code == 413
    response = await client.post(url(), json={"business": "x"})
    assert response.status_code == 415
    assert (await intake(engine))["answers"] == {}


async def test_an_answer_too_long_is_refused_by_name_and_nothing_is_saved(web: Any, engine: AsyncEngine) -> None:
    client, _, _ = web
    posted = {"business": "ok", "audience": "y" * (MAX_ANSWER_CHARS + 1), "action": "save"}
    response = await client.post(url(), data=posted)
    assert response.status_code == 400
    assert "Nothing was saved" in response.text
    assert 'id="error-audience"' in response.text
    assert ">ok</textarea>" in response.text  # what was typed is shown again, not lost
    assert (await intake(engine))["answers"] == {}


async def test_hostile_answers_are_stored_as_typed_and_shown_escaped(web: Any, engine: AsyncEngine) -> None:
    client, _, _ = web
    await client.post(url(), data={"business": HOSTILE, "goals": "</textarea><script>x</script>", "action": "save"})
    assert (await intake(engine))["answers"]["business"] == HOSTILE
    page = (await client.get(url())).text
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>" in page

    await client.post(url(), data={**REQUIRED, "business": HOSTILE, "action": "submit"})
    done = (await client.get(url())).text
    assert "Thank you" in done
    assert "<script" not in done and "<img" not in done
    assert "&lt;img src=x onerror=alert(1)&gt;" in done


async def test_a_cancelled_intakes_link_opens_nothing(web: Any, engine: AsyncEngine) -> None:
    client, store, _ = web

    def farewell(row: Any) -> Any:
        raise AssertionError("no welcome went out: no farewell")

    await store.intakes.cancel(PROJECT, idempotency_key="k", reason="test", now=NOW, farewell=farewell)
    response = await client.get(url())
    assert response.status_code == 410
    assert uuid.UUID(PROJECT)  # (the page names no project)
    assert PROJECT not in response.text
