"""Client review on both databases: `client_review.reviews` in an actor system with a fake
clock, an in-memory mail transport, a stand-in for cam.alerts and the review page served in
the test.

RequestReview told many times makes one batch, one link and one email; answers on the page
are announced on the next tick (and said again on every ask); reminders go on the client's
business days, then a person is alerted once; silence approves only where the package says
so (and the reminder says when); an emailed answer is read only through our Message-IDs and
approves, asks for changes, or goes to a person; a withdrawal revokes the link (410), cancels
what is queued and tells the client once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.client_review import ReviewStore
from aicmo_actors.client_review.tables import client_review_batches as batches_t
from aicmo_actors.client_review.tables import client_review_emails as emails_t
from aicmo_actors.client_review.tables import client_review_items as items_t
from aicmo_actors.client_review.tables import client_review_links as links_t
from aicmo_actors.client_review.tables import client_review_replies as replies_t
from aicmo_actors.storage.client_mail import SENDING
from contracts.client_review import ItemReviewed, ReviewRequested, ReviewsWithdrawn
from tests.integration.client_review_world import (
    ALERT_AT,
    BATCH,
    DEADLINE,
    ITEM_1,
    ITEM_2,
    PROJECT,
    REMINDER_2,
    START,
    FakeTransport,
    at9,
    plain,
    rows,
    running,
    token_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def verdicts(events: list[ItemReviewed]) -> set[tuple[uuid.UUID, str, str, str]]:
    return {(e.item_id, e.verdict, e.by, e.comment) for e in events}


async def test_a_request_told_many_times_makes_one_batch_one_link_and_one_email(engine: AsyncEngine) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request())
        await run.tell(run.request())
        await run.tick()
        await run.tell(run.request())
        await run.tick()
        requested = run.of(ReviewRequested)
        assert len(requested) == 3
        assert {(e.project_id, e.batch_key, e.deadline, e.auto_approve_at) for e in requested} == {
            (PROJECT, BATCH, DEADLINE, None)
        }
        assert run.of(ItemReviewed) == []
    (message,) = transport.sent
    assert message["To"] == "Ann Lee <ann@acme.example>"
    assert transport.subjects() == ["Acme Logistics: 2 pieces for your review"]
    text = plain(message)
    assert f"https://agency.example/client/review/{token_of(message)}" in text
    assert "- Route optimisation in 2027 (blog_post)" in text
    assert 'a reply saying "approved" approves every piece' in text
    assert "anything else you write is read as a request for changes" in text
    assert "by Thu 3 December 2026, 09:00 (Europe/Berlin)" in text
    assert "works until Wed 30 December 2026, 11:00 (Europe/Berlin)" in text
    assert "treat the pieces as approved" not in text
    html = message.get_body(("html",))
    assert html is not None and f'<a href="https://agency.example/client/review/{token_of(message)}">' in str(
        html.get_content()
    )
    assert "On-time delivery &lt;b&gt;matters&lt;/b&gt;" in str(html.get_content())
    (batch,) = await rows(engine, sa.select(batches_t))
    assert (batch["state"], batch["deadline_at"], batch["next_action_at"]) == ("open", DEADLINE, DEADLINE)
    assert len(await rows(engine, sa.select(items_t))) == 2
    (link,) = await rows(engine, sa.select(links_t))
    assert (link["purpose"], link["expires_at"], link["revoked_at"]) == ("review", START + timedelta(days=30), None)
    (email,) = await rows(engine, sa.select(emails_t))
    assert (email["idempotency_key"], email["kind"], email["status"]) == (f"{BATCH}#request", "review", "SENT")


async def test_page_answers_are_announced_on_the_next_tick_and_said_again_on_every_ask(engine: AsyncEngine) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request())
        await run.tick()
        token = token_of(transport.sent[0])
        answer = await run.http.post(
            f"/client/review/{token}/answer", data={"item": str(ITEM_1), "version": "1", "verdict": "approve"}
        )
        assert answer.status_code == 303
        assert run.of(ItemReviewed) == []  # the page only records it
        await run.tick()
        (approved,) = run.of(ItemReviewed)
        assert (approved.item_id, approved.verdict, approved.by, approved.at) == (ITEM_1, "approved", "page", START)
        await run.http.post(
            f"/client/review/{token}/answer",
            data={"item": str(ITEM_2), "version": "1", "verdict": "changes", "comment": "Shorter, please."},
        )
        await run.tick()
        await run.tick()
        assert verdicts(run.of(ItemReviewed)) == {
            (ITEM_1, "approved", "page", ""),
            (ITEM_2, "changes", "page", "Shorter, please."),
        }
        assert len(run.of(ItemReviewed)) == 2  # each once
        await run.tell(run.request())
        assert len(run.of(ItemReviewed)) == 4  # said again
        # Every item answered: no reminder, no alert.
        await run.tick(ALERT_AT + timedelta(days=10))
        assert len(transport.sent) == 1 and run.alerts == []
    (batch,) = await rows(engine, sa.select(batches_t))
    assert batch["state"] == "answered"


async def test_reminders_on_business_days_then_a_person_is_alerted_once(engine: AsyncEngine) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request())
        await run.tick()
        await run.tick(DEADLINE - timedelta(minutes=1))
        assert len(transport.sent) == 1
        await run.tick(DEADLINE)
        await run.tick(DEADLINE + timedelta(hours=4))
        await run.tick(REMINDER_2)
        assert transport.subjects()[1:] == [
            "Reminder: Acme Logistics: 2 pieces for your review",
            "Reminder 2: Acme Logistics: 2 pieces for your review",
        ]
        request_id = str(transport.sent[0]["Message-ID"])
        assert [str(m["In-Reply-To"]) for m in transport.sent[1:]] == [request_id, request_id]
        assert "by Fri 11 December 2026, 09:00 (Europe/Berlin)" in plain(transport.sent[2])
        assert run.alerts == []
        await run.tick(ALERT_AT)
        await run.tick(ALERT_AT + timedelta(days=5))
        (alert,) = run.alerts
        assert (alert.idempotency_key, alert.kind) == (f"client_review:{BATCH}:unanswered", "review_unanswered")
        assert f"python run.py review decide {BATCH} --approve" in alert.text
        assert run.of(ItemReviewed) == []  # silence approves nothing without the package's say
        assert len(transport.sent) == 3


async def test_silence_approves_only_where_the_package_allows_it_and_the_reminder_says_when(
    engine: AsyncEngine,
) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request(auto_approve_days=5))
        await run.tick()
        (requested,) = run.of(ReviewRequested)
        assert requested.auto_approve_at == at9(7)
        assert "If we hear nothing from you by Mon 7 December 2026, 09:00 (Europe/Berlin)" in plain(transport.sent[0])
        await run.tick(DEADLINE)
        assert "by Mon 7 December 2026, 09:00 (Europe/Berlin), your package has us treat the pieces as approved" in (
            " ".join(plain(transport.sent[1]).split())
        )
        await run.tick(at9(7) - timedelta(minutes=1))
        assert run.of(ItemReviewed) == []
        await run.tick(at9(7))
        assert verdicts(run.of(ItemReviewed)) == {(ITEM_1, "approved", "auto", ""), (ITEM_2, "approved", "auto", "")}
        await run.tick(at9(30))
        assert len(run.of(ItemReviewed)) == 2 and run.alerts == []
        assert len(transport.sent) == 2  # the second reminder never came: nothing was open


async def test_a_reply_to_our_email_approves_or_asks_for_changes_and_an_unclear_one_goes_to_a_person(
    engine: AsyncEngine,
) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request())
        await run.tell(run.request(key=f"{PROJECT}:review:2"))
        await run.tick()
        first, second = (str(m["Message-ID"]) for m in transport.sent)
        # The client's address and our subject, but none of our Message-IDs: not ours.
        await run.publish(run.reply(1, "Approved", "approve", in_reply_to="<other@acme.example>"))
        assert run.of(ItemReviewed) == [] and await rows(engine, sa.select(replies_t)) == []
        # Unclear: nothing decided, a person is told (one key per reply), offered twice changes nothing.
        unclear = run.reply(2, "Let me check with my boss.", "unclear", in_reply_to=first, references=(first,))
        await run.publish(unclear)
        await run.publish(unclear)
        assert run.of(ItemReviewed) == []
        (alert,) = {a.idempotency_key: a for a in run.alerts}.values()
        assert (alert.idempotency_key, alert.kind, alert.inbound_id) == (
            "client_review:reply:2",
            "review_reply_unclear",
            2,
        )
        assert "Let me check with my boss." in alert.text
        # An approval by reply (its References name our first email): every item of batch 1.
        await run.publish(run.reply(3, "Approved, thanks", "approve", references=("<x@y.example>", first)))
        assert verdicts(run.of(ItemReviewed)) == {(ITEM_1, "approved", "email", ""), (ITEM_2, "approved", "email", "")}
        assert {e.batch_key for e in run.of(ItemReviewed)} == {BATCH}
        # Changes by reply to the second batch: its words are the comment.
        await run.publish(run.reply(4, "Please change the title.", "changes", in_reply_to=second))
        changed = [e for e in run.of(ItemReviewed) if e.batch_key == f"{PROJECT}:review:2"]
        assert {(e.verdict, e.by, e.comment) for e in changed} == {("changes", "email", "Please change the title.")}
        assert len(changed) == 2
        # Changes asked after everything was answered: a person, nothing changed.
        await run.publish(run.reply(5, "Actually, change the intro.", "changes", in_reply_to=first))
        assert "client_review:reply:5" in {a.idempotency_key for a in run.alerts}
        assert len(run.of(ItemReviewed)) == 4
    stored = await rows(engine, sa.select(replies_t).order_by(replies_t.c.id))
    assert [(r["inbound_id"], r["intent"], r["decided"]) for r in stored] == [
        (2, "unclear", 0),
        (3, "approve", 2),
        (4, "changes", 2),
        (5, "changes", 0),
    ]


async def test_a_person_decides_after_an_unclear_reply_and_the_actor_announces_it(engine: AsyncEngine) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request())
        await run.tick()
        decided = await store.batches.decide(
            BATCH, approve=False, comment="Use the 2027 figures.", item_id=str(ITEM_2), now=run.clock.now()
        )
        assert decided is not None and decided.decided == 1
        assert (await store.batches.decide(BATCH, approve=True, comment=None, item_id=None, now=START)).decided == 1
        await run.tick()
        assert verdicts(run.of(ItemReviewed)) == {
            (ITEM_2, "changes", "person", "Use the 2027 figures."),
            (ITEM_1, "approved", "person", ""),
        }


async def test_withdraw_revokes_the_link_cancels_the_queue_and_tells_the_client_once(engine: AsyncEngine) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request())
        await run.tick()
        token = token_of(transport.sent[0])
        assert (await run.http.get(f"/client/review/{token}")).status_code == 200
        await run.tell(run.request(key=f"{PROJECT}:review:2"))  # queued, not sent yet
        await run.tell(run.withdraw())
        await run.tell(run.withdraw())
        await run.tick()
        await run.tick()
        assert len(run.of(ReviewsWithdrawn)) == 2
        assert (await run.http.get(f"/client/review/{token}")).status_code == 410
        posted = await run.http.post(
            f"/client/review/{token}/answer", data={"item": str(ITEM_1), "version": "1", "verdict": "approve"}
        )
        assert posted.status_code == 410
        assert transport.subjects() == [
            "Acme Logistics: 2 pieces for your review",
            "Acme Logistics: the review we asked you for is withdrawn",
        ]
        await run.tell(run.request())
        assert len(run.of(ReviewsWithdrawn)) == 3
        await run.tick(ALERT_AT + timedelta(days=3))
        assert run.alerts == [] and len(transport.sent) == 2 and run.of(ItemReviewed) == []
    statuses = {r["idempotency_key"]: r["status"] for r in await rows(engine, sa.select(emails_t))}
    assert statuses[f"{PROJECT}:review:2#request"] == "CANCELLED"
    assert {r["state"] for r in await rows(engine, sa.select(batches_t))} == {"withdrawn"}


async def test_a_withdrawal_first_means_no_batch_is_ever_made(engine: AsyncEngine) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.withdraw())
        await run.tell(run.request())
        await run.tick()
        assert len(run.of(ReviewsWithdrawn)) == 2 and run.of(ReviewRequested) == []
    assert transport.sent == [] and await rows(engine, sa.select(batches_t)) == []


async def test_an_email_in_flight_when_the_actor_died_is_never_sent_again(engine: AsyncEngine) -> None:
    store, transport = ReviewStore(engine), FakeTransport()
    async with running(store, transport) as run:
        await run.tell(run.request())
    async with engine.begin() as conn:
        await conn.execute(emails_t.update().values(status=SENDING))
    async with running(store, transport, at=START + timedelta(minutes=5)) as run:
        await run.tick()
        await run.tell(run.request())
        assert len(run.of(ReviewRequested)) == 1
    assert transport.sent == []
    (email,) = await rows(engine, sa.select(emails_t))
    assert email["status"] == "UNCONFIRMED"
