"""The web inbox's reads and its one write, on both databases: a message marked handled once
(who and when; the first mark stands), the inbox's order (hot replies first, then newest
first) page after page without gaps or duplicates, and its filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.repos.inbound import inbox_key
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.webapp.pages_inbox import cursor_text, parse_cursor
from contracts.cam import ReplyCategory
from tests.integration.test_cam_records import NOW, add_leads, new_store, reply, sent

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_message_is_marked_handled_once(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    (lead,) = await add_leads(store, ["ana@prospect.example"])
    out = await sent(store, lead, 1, NOW)
    inbound_id = await reply(store, lead, out, ReplyCategory.QUESTION, NOW + timedelta(hours=1))

    before = await store.inbound.inbox_item(inbound_id)
    assert before is not None and before["handled_at"] is None and before["handled_by"] is None

    at = NOW + timedelta(hours=2)
    assert await store.inbound.mark_handled(inbound_id, "ana", at) is True
    assert await store.inbound.mark_handled(inbound_id, "bob", at + timedelta(hours=1)) is False
    assert await store.inbound.mark_handled(inbound_id + 1000, "ana", at) is False

    after = await store.inbound.inbox_item(inbound_id)
    assert after is not None
    assert (after["handled_at"], after["handled_by"]) == (at.isoformat(), "ana")
    # Marking handled is a person's note: the service's acting on it is left as it was.
    assert after["acted_at"] == before["acted_at"] and after["category"] == "question"
    assert await store.inbound.inbox(unhandled=True) == []
    assert [r["id"] for r in await store.inbound.inbox()] == [inbound_id]


async def test_the_inbox_lists_hot_replies_first_then_newest_page_by_page(engine: AsyncEngine) -> None:
    store = await new_store(engine, second_campaign=True)
    leads = await add_leads(store, [f"p{i}@prospect.example" for i in range(6)])
    (other,) = await add_leads(store, ["q@elsewhere.example"], campaign="other")
    outs = [await sent(store, lead, 1, NOW) for lead in [*leads, other]]
    at = NOW + timedelta(hours=1)
    categories = [
        ReplyCategory.NOT_INTERESTED,
        ReplyCategory.INTERESTED,
        ReplyCategory.AUTO_REPLY,
        ReplyCategory.QUESTION,
        ReplyCategory.NOT_INTERESTED,
        ReplyCategory.MEETING_REQUEST,
    ]
    ids = [
        await reply(store, lead, out, category, at + timedelta(minutes=i))
        for i, (lead, out, category) in enumerate(zip(leads, outs[:-1], categories, strict=True))
    ]
    # Two arrive at the same moment: the larger id first.
    same = await reply(store, other, outs[-1], ReplyCategory.REFERRAL, at + timedelta(minutes=5))
    stray = await reply(store, None, None, ReplyCategory.OTHER, at + timedelta(minutes=30))

    hot = [same, ids[5], ids[3], ids[1]]
    rest = [stray, ids[4], ids[2], ids[0]]
    everything = await store.inbound.inbox(limit=100)
    assert [r["id"] for r in everything] == hot + rest
    assert [r["hot"] for r in everything] == [True] * 4 + [False] * 4

    seen: list[int] = []
    after = None
    while True:
        page = await store.inbound.inbox(after=after, limit=3)
        seen += [r["id"] for r in page]
        if len(page) < 3:
            break
        # As the web inbox's "next page" link carries it.
        after = parse_cursor(cursor_text(inbox_key(page[-1])))
    assert seen == hot + rest

    assert [r["id"] for r in await store.inbound.inbox(category="question")] == [ids[3]]
    assert [r["id"] for r in await store.inbound.inbox(campaign="other")] == [same]
    assert await store.inbound.inbox(mailbox="inbox", limit=100) == everything
    assert await store.inbound.inbox(mailbox="nowhere") == []
    assert await store.inbound.mailboxes() == ["inbox"]

    await store.inbound.mark_handled(ids[5], "ana", at)
    assert ids[5] not in [r["id"] for r in await store.inbound.inbox(unhandled=True, limit=100)]
    with pytest.raises(RecordError, match="unknown category"):
        await store.inbound.inbox(category="warm")
    with pytest.raises(RecordError, match="no campaign"):
        await store.inbound.inbox(campaign="missing")
