"""CamStore's inbound functions on SQLite and PostgreSQL: stored once, matched, saved once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.repos import CamStore, Match
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from tests.unit.inbound_fixtures import NOW, fetched, sent_emails

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def mail(n: int, message_id: str | None = None, sender: str = "p@client.example") -> bytes:
    header = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (
        f"{header}From: Prospect <{sender}>\r\nSubject: Re: hello {n}\r\n"
        f"In-Reply-To: <out-{n}@outreach.example.com>\r\n\r\nThanks {n}\r\n"
    ).encode()


async def stored_rows(engine: AsyncEngine) -> list[tuple[int, int, str | None]]:
    query = sa.select(inbound_t.c.uidvalidity, inbound_t.c.uid, inbound_t.c.message_id).order_by(inbound_t.c.id)
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(query)]  # type: ignore[misc]


async def test_store_inbound_stores_each_message_once_in_uid_order(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    raws = [
        mail(1, "<a@x>"),
        mail(2, "<b@x>"),
        mail(3, "<a@x>"),  # the same message twice in one batch
        mail(4),  # no Message-ID: never a duplicate of anything
        mail(5),
        mail(6, "  <c@x> (comment)"),
    ]
    ids = await store.inbound.store("inbox", 10, fetched(raws), NOW)
    assert ids == sorted(ids) and len(ids) == 5
    assert await stored_rows(engine) == [
        (10, 1, "<a@x>"),
        (10, 2, "<b@x>"),
        (10, 4, None),
        (10, 5, None),
        (10, 6, "<c@x>"),
    ]
    assert await store.inbound.cursor("inbox") == (10, 6)
    # The same UIDs again (a retried batch): nothing new, the cursor stays.
    assert await store.inbound.store("inbox", 10, fetched(raws), NOW) == []
    # A new UIDVALIDITY: known Message-IDs are not stored again, the rest is.
    again = await store.inbound.store("inbox", 11, fetched([mail(1, "<a@x>"), mail(7, "<d@x>"), mail(4)]), NOW)
    assert len(again) == 2
    assert (await stored_rows(engine))[-2:] == [(11, 2, "<d@x>"), (11, 3, None)]
    assert await store.inbound.cursor("inbox") == (11, 3)
    # Another inbox has its own Message-IDs and cursor.
    assert len(await store.inbound.store("other", 1, fetched([mail(1, "<a@x>")]), NOW)) == 1
    assert await store.inbound.cursor("other") == (1, 1)
    assert await store.inbound.cursor("nowhere") is None


async def test_store_inbound_takes_a_batch_bigger_than_one_in_list(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    raws = [mail(n, f"<m{n}@x>") for n in range(1200)]
    ids = await store.inbound.store("inbox", 1, fetched(raws), NOW)
    assert len(ids) == 1200
    assert await store.inbound.store("inbox", 2, fetched(raws), NOW) == []


async def test_unclassified_raw_reads_in_id_order_from_where_it_is_told(
    engine: AsyncEngine,
) -> None:
    store = CamStore(engine)
    raws = [mail(n, f"<m{n}@x>") for n in range(6)]
    ids = await store.inbound.store("inbox", 1, fetched(raws), NOW)
    rows = await store.inbound.unclassified_raw(ids[1], 3)
    assert [(i, box) for i, box, _ in rows] == [(i, "inbox") for i in ids[1:4]]
    assert rows[0][2] == raws[1]
    c = classify_message(raws[2])
    assert await store.inbound.save_classifications([(ids[2], c, None, None)], NOW) == [ids[2]]
    assert [i for i, _, _ in await store.inbound.unclassified_raw(ids[1], 3)] == [ids[1], ids[3], ids[4]]
    assert await store.inbound.unclassified() == [(i, "inbox") for i in ids if i != ids[2]]


async def test_a_classification_is_saved_once(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    outbound = await sent_emails(engine, [("p@client.example", "<out-1@outreach.example.com>")])
    ids = await store.inbound.store("inbox", 1, fetched([mail(1, "<m1@x>"), mail(2, "<m2@x>")]), NOW)
    first, second = (classify_message(mail(n)) for n in (1, 2))
    match = await store.inbound.match_by_message_ids(["<out-1@outreach.example.com>"])
    assert match is not None and match.outbound_id == outbound["<out-1@outreach.example.com>"]
    assert await store.inbound.save_classification(ids[0], first, match, "message_id", NOW) is True
    # Once classified, the row keeps its first result, in a batch as alone.
    assert await store.inbound.save_classifications(
        [(ids[0], second, None, None), (ids[1], second, None, None)], NOW
    ) == [ids[1]]
    assert await store.inbound.save_classification(ids[0], second, None, None, NOW) is False
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(inbound_t.c.matched_by, inbound_t.c.lead_id, inbound_t.c.classification).order_by(
                    inbound_t.c.id
                )
            )
        ).all()
    assert rows[0][0] == "message_id" and rows[0][1] == match.lead_id
    assert rows[0][2]["category"] == first.category.value
    assert rows[1][0] is None and rows[1][1] is None
    assert await store.inbound.save_classifications([], NOW) == []
    third = await store.inbound.store("inbox", 1, fetched([mail(3, "<m3@x>")], first_uid=3), NOW)
    twice = [(third[0], second, None, None), (third[0], first, None, None)]
    assert await store.inbound.save_classifications(twice, NOW) == third


async def test_matching_many_at_once(engine: AsyncEngine) -> None:
    store = CamStore(engine)
    outbound = await sent_emails(
        engine,
        [
            ("ann@client.example", "<s1@out>"),
            ("ann@client.example", "<s2@out>"),  # sent later: the latest for ann
            ("bob@client.example", "<s3@out>"),
        ],
    )
    found = await store.inbound.matches_by_message_ids(
        [["<nope@x>", "<s3@out>"], ["<s2@out>", "<s1@out>"], [], ["<nope@x>"]]
    )
    assert [m.outbound_id if m else None for m in found] == [
        outbound["<s3@out>"],
        outbound["<s2@out>"],
        None,
        None,
    ]
    assert found[0] == await store.inbound.match_by_message_ids(["<nope@x>", "<s3@out>"])
    by_address = await store.inbound.matches_by_recipient(
        ["Ann@Client.example ", "bob@client.example", "eve@client.example", "ann@client.example"]
    )
    assert set(by_address) == {"Ann@Client.example ", "bob@client.example", "ann@client.example"}
    assert (
        by_address["Ann@Client.example "].outbound_id
        == outbound["<s2@out>"]
        == by_address["ann@client.example"].outbound_id
    )
    assert isinstance(by_address["bob@client.example"], Match)
    assert await store.inbound.match_by_recipient("BOB@client.example") == by_address["bob@client.example"]
    assert await store.inbound.match_by_recipient("eve@client.example") is None
    assert await store.inbound.matches_by_recipient([]) == {}
    assert await store.inbound.matches_by_message_ids([]) == []


async def test_a_database_failure_twice_over_leaves_the_message_to_be_fetched_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Soak seed 398: the batch's commit failed, then the same message's own commit failed too,
    and the message was kept as a stub without its Message-ID, the cursor past it: an
    out-of-office reply lost for good. A failure of the database is not a refusal of the row."""
    from aicmo_actors.cam.repos import inbound

    store = CamStore(engine)
    real = inbound.run_write
    failures = [2]

    async def failing(engine_: AsyncEngine, work: object) -> object:
        if failures[0]:
            failures[0] -= 1
            raise sa.exc.OperationalError("COMMIT", {}, Exception("simulated commit failure"))
        return await real(engine_, work)  # type: ignore[arg-type]

    monkeypatch.setattr(inbound, "run_write", failing)
    batch = fetched([mail(1, "<ooo@x>")], first_uid=6)
    with pytest.raises(sa.exc.OperationalError):
        await store.inbound.store("inbox", 10, batch, NOW)
    assert await stored_rows(engine) == [] and await store.inbound.cursor("inbox") is None
    # The next poll fetches it again: stored whole, the cursor after it.
    await store.inbound.store("inbox", 10, batch, NOW)
    assert await stored_rows(engine) == [(10, 6, "<ooo@x>")]
    assert await store.inbound.cursor("inbox") == (10, 6)
