"""The read and operator methods of CAM's repositories (what the command line and the HTTP API
call), on both databases: pages without gaps or duplicates, a lead's whole history in time
order, and a reply relabelled by hand moving its lead as the classifier's label would have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import followup
from aicmo_actors.cam.campaign import load_campaign
from aicmo_actors.cam.repos import CamStore, Match
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.gateways.inbox_source import FetchedMessage
from contracts.cam import Classification, ReplyCategory

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
CAMPAIGN_FILE = Path(__file__).resolve().parents[2] / "examples" / "campaign.toml"
CAMPAIGN = "agency-intro"


# -- set-up: a campaign, leads, emails sent, replies classified and acted on --------------------------------


async def new_store(engine: AsyncEngine, *, second_campaign: bool = False) -> CamStore:
    store = CamStore(engine)
    spec = load_campaign(CAMPAIGN_FILE, allow_test_domains=True)
    await store.campaigns.create_or_update(spec, NOW)
    if second_campaign:
        await store.campaigns.create_or_update(spec.model_copy(update={"name": "other"}), NOW)
    return store


async def add_leads(store: CamStore, emails: list[str], campaign: str = CAMPAIGN) -> list[int]:
    rows = [{"email": e, "first_name": e.split("@")[0].title(), "company": "Acme"} for e in emails]
    await store.leads.import_rows(campaign, rows, NOW)
    ids = []
    for email in emails:
        async with store.engine.connect() as conn:
            ids.append(
                (
                    await conn.execute(
                        sa.select(leads_t.c.id)
                        .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                        .where(leads_t.c.email == email, campaigns_t.c.name == campaign)
                    )
                ).scalar_one()
            )
    return ids


async def sent(store: CamStore, lead_id: int, step: int, at: datetime, *, status: str = "SENT") -> int:
    """An email of `step` to the lead, accepted by the server at `at`; its Message-ID names it."""
    async with store.engine.begin() as conn:
        lead = (await conn.execute(sa.select(leads_t).where(leads_t.c.id == lead_id))).mappings().one()
        outbound_id = (
            await conn.execute(
                sa.insert(outbound_t)
                .values(
                    lead_id=lead_id,
                    campaign_id=lead["campaign_id"],
                    step=step,
                    mailbox="alex@outreach.example.com",
                    recipient=lead["email"],
                    subject=f"step {step}",
                    status=status,
                    attempts=1 if status != "QUEUED" else 0,
                    message_id=message_id(lead_id, step),
                    idempotency_key=f"{lead_id}:{step}",
                    queued_at=at - timedelta(minutes=1),
                    sent_at=at if status != "QUEUED" else None,
                    accepted_at=at if status == "SENT" else None,
                )
                .returning(outbound_t.c.id)
            )
        ).scalar_one()
        if status != "QUEUED":
            await conn.execute(
                leads_t.update().where(leads_t.c.id == lead_id).values(current_step=step, last_sent_at=at)
            )
    return int(outbound_id)


def message_id(lead_id: int, step: int) -> str:
    return f"<lead{lead_id}.step{step}@outreach.example.com>"


_uid = iter(range(1, 10_000))


async def reply(
    store: CamStore,
    lead_id: int | None,
    outbound_id: int | None,
    category: ReplyCategory,
    at: datetime,
    *,
    matched_by: str | None = "message_id",
    act: bool = True,
    reason: str | None = None,
) -> int:
    """A message from the lead answering the email, stored, classified as `category` and (unless
    `act` is False) acted on by the follow-up's path, all at `at`."""
    uid = next(_uid)
    raw = (
        f"From: Someone <someone{uid}@prospect.example>\r\nTo: alex@outreach.example.com\r\n"
        f"Subject: Re: step 1\r\nMessage-ID: <r{uid}@prospect.example>\r\n\r\n"
        f"Thanks for writing, this is reply number {uid}.\r\n"
    ).encode()
    (inbound_id,) = await store.inbound.store("inbox", 1, [FetchedMessage(uid, 1, raw, internal_date=at)], at)
    c = Classification(category=category, reason=reason, confidence=0.9, reasons=(f"test evidence {uid}",))
    match = Match(lead_id, CAMPAIGN, outbound_id) if lead_id is not None else None
    await store.inbound.save_classification(inbound_id, c, match, matched_by if match else None, at)
    if act:
        await act_on(store, inbound_id, at)
    return inbound_id


async def act_on(store: CamStore, inbound_id: int, at: datetime) -> None:
    await store.inbound.act(inbound_id, at, alert_text=followup.alert_text, shared_domains=followup.SHARED_DOMAINS)


async def lead_row(store: CamStore, lead_id: int) -> dict[str, Any]:
    async with store.engine.connect() as conn:
        return dict((await conn.execute(sa.select(leads_t).where(leads_t.c.id == lead_id))).mappings().one())


async def alert_kinds(store: CamStore, inbound_id: int) -> set[str]:
    async with store.engine.connect() as conn:
        return set(
            (await conn.execute(sa.select(alerts_t.c.kind).where(alerts_t.c.inbound_id == inbound_id))).scalars()
        )


async def outcome(store: CamStore, lead_id: int) -> dict[str, Any]:
    """What a reply did to a lead: its state, whether it waits, whether its address is suppressed."""
    lead = await lead_row(store, lead_id)
    suppressed = await store.leads.suppressed([lead["email"]])
    return {
        "state": lead["state"],
        "waiting": lead["next_action_at"] is not None,
        "suppressed": bool(suppressed),
    }


# -- relabel -------------------------------------------------------------------------------------------------

C = ReplyCategory


@pytest.mark.parametrize(
    ("first", "label"),
    [
        (C.AUTO_REPLY, C.INTERESTED),
        (C.AUTO_REPLY, C.UNSUBSCRIBE),
        (C.OTHER, C.MEETING_REQUEST),
        (C.NOT_INTERESTED, C.INTERESTED),
        (C.INTERESTED, C.NOT_INTERESTED),
        (C.QUESTION, C.COMPLAINT),
        (C.AUTO_REPLY, C.BOUNCE_HARD),
        (C.INTERESTED, C.AUTO_REPLY),
    ],
)
async def test_a_relabelled_reply_moves_its_lead_as_the_classifiers_label_would(
    engine: AsyncEngine, first: ReplyCategory, label: ReplyCategory
) -> None:
    store = await new_store(engine)
    direct, relabelled = await add_leads(store, ["dana@direct.example.com", "remy@relabel.example.com"])
    later = NOW + timedelta(hours=1)
    # The classifier's path: read as `label` from the start.
    direct_reply = await reply(store, direct, await sent(store, direct, 1, NOW), label, later)
    # Read as `first`, acted on, then labelled `label` by a person.
    relabel_reply = await reply(store, relabelled, await sent(store, relabelled, 1, NOW), first, later)
    first_alerts = await alert_kinds(store, relabel_reply)

    done = await store.inbound.relabel(relabel_reply, label.value, by="cli:pat", now=later + timedelta(minutes=5))

    expected = await outcome(store, direct)
    got = await outcome(store, relabelled)
    if first in (C.INTERESTED, C.QUESTION) and label is C.AUTO_REPLY:
        # A person answered: an auto-reply after that is ignored, by either path (no way back to active).
        assert expected == {"state": "paused", "waiting": True, "suppressed": False}
        assert got == {"state": "replied", "waiting": False, "suppressed": False}
    else:
        assert got == expected
    assert await alert_kinds(store, relabel_reply) == first_alerts | await alert_kinds(store, direct_reply)
    assert done["relabelled"] is True
    assert (done["previous_category"], done["category"], done["lead_id"]) == (first.value, label.value, relabelled)
    assert done["lead_after"]["state"] == got["state"]
    assert done["lead_after"]["suppressed"] == got["suppressed"]

    # Both labels are in the history: the classifier's evidence and the person's line.
    (row,) = [r for r in await store.inbound.replies() if r["id"] == relabel_reply]
    assert row["category"] == label.value and row["confidence"] == 1.0
    assert row["reasons"][0].startswith("test evidence")
    assert row["reasons"][-1].startswith(f"relabelled by cli:pat from {first.value} to {label.value} at ")


async def test_a_reply_not_acted_on_yet_is_acted_on_under_the_new_label_only(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    (lead,) = await add_leads(store, ["kai@prospect.example.com"])
    inbound_id = await reply(store, lead, await sent(store, lead, 1, NOW), C.AUTO_REPLY, NOW, act=False)
    done = await store.inbound.relabel(inbound_id, "interested", by="pat", now=NOW)
    assert (done["lead_before"]["state"], done["lead_after"]["state"]) == ("active", "replied")
    assert await alert_kinds(store, inbound_id) == {"interested"}
    lead_now = await lead_row(store, lead)
    assert lead_now["paused_until"] is None  # the auto-reply was never acted on
    # The follow-up finds nothing left to do.
    assert await store.inbound.classified_not_acted(0, 10) == []


async def test_relabel_refuses_what_does_not_exist_and_keeps_a_label_that_is_the_same(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    (lead,) = await add_leads(store, ["kai@prospect.example.com"])
    inbound_id = await reply(store, lead, await sent(store, lead, 1, NOW), C.INTERESTED, NOW)
    with pytest.raises(RecordError, match="no inbound message #999"):
        await store.inbound.relabel(999, "interested", by="pat", now=NOW)
    with pytest.raises(RecordError, match="unknown category 'keen'"):
        await store.inbound.relabel(inbound_id, "keen", by="pat", now=NOW)
    same = await store.inbound.relabel(inbound_id, "interested", by="pat", now=NOW)
    assert same["relabelled"] is False and same["lead_before"] == same["lead_after"]
    assert await alert_kinds(store, inbound_id) == {"interested"}
    # A message the classifier has not read yet cannot be labelled.
    raw = b"From: x@prospect.example\r\nSubject: hi\r\nMessage-ID: <unread@x>\r\n\r\nhello\r\n"
    (unread,) = await store.inbound.store("inbox", 1, [FetchedMessage(500, 1, raw, internal_date=NOW)], NOW)
    with pytest.raises(RecordError, match="not classified yet"):
        await store.inbound.relabel(unread, "interested", by="pat", now=NOW)


async def test_a_reply_tied_only_by_a_guess_changes_no_lead_whatever_its_label(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    (lead,) = await add_leads(store, ["kai@prospect.example.com"])
    await sent(store, lead, 1, NOW)
    guess = await reply(store, lead, None, C.OTHER, NOW, matched_by="sender")
    done = await store.inbound.relabel(guess, "unsubscribe", by="pat", now=NOW)
    assert done["lead_after"] == done["lead_before"]
    assert done["lead_after"]["state"] == "active" and not done["lead_after"]["suppressed"]
    assert "nothing changed" in done["cause"]
    assert await alert_kinds(store, guess) == {"unverified_reply"}


async def test_a_soft_bounce_relabelled_hard_ends_the_lead_and_counts_once(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    (lead,) = await add_leads(store, ["kai@prospect.example.com"])
    outbound_id = await sent(store, lead, 1, NOW)
    bounce = await reply(store, lead, outbound_id, C.BOUNCE_SOFT, NOW + timedelta(hours=1), reason="mailbox_full")
    await store.inbound.relabel(bounce, "bounce_hard", by="pat", now=NOW + timedelta(hours=2))
    assert await outcome(store, lead) == {"state": "bounced", "waiting": False, "suppressed": True}
    figures = (await store.metrics.figures(CAMPAIGN, window=False))[CAMPAIGN]
    assert (figures.attempted, figures.hard_bounces, figures.soft_bounces) == (1, 1, 0)


# -- pages -------------------------------------------------------------------------------------------------


async def test_leads_pages_have_no_gaps_or_duplicates_and_filter(engine: AsyncEngine) -> None:
    store = await new_store(engine, second_campaign=True)
    ours = await add_leads(store, [f"lead{n:02}@company{n}.example.com" for n in range(23)])
    theirs = await add_leads(store, ["zed@elsewhere.example.com", "lead00@company0.example.com"], "other")
    for lead in ours[:3]:
        await reply(store, lead, await sent(store, lead, 1, NOW), C.NOT_INTERESTED, NOW)

    async def walk(**filters: Any) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        after = None
        while page := await store.leads.page(after_id=after, limit=5, **filters):
            assert len(page) <= 5
            seen += page
            after = page[-1]["id"]
        return seen

    everyone = await walk()
    assert [lead["id"] for lead in everyone] == sorted(ours + theirs)
    assert [lead["id"] for lead in await walk(campaign=CAMPAIGN)] == ours
    assert [lead["id"] for lead in await walk(campaign=CAMPAIGN, state="not_interested")] == ours[:3]
    assert [lead["id"] for lead in await walk(campaign=CAMPAIGN, state="active")] == ours[3:]
    assert [lead["email"] for lead in await walk(email_contains="LEAD00@")] == ["lead00@company0.example.com"] * 2
    assert await walk(email_contains="%") == []  # a LIKE wildcard is a character like any other
    first = everyone[0]
    assert set(first) >= {"id", "email", "first_name", "last_name", "company", "campaign", "state", "step"}
    assert set(first) >= {"next_action_at", "created_at", "updated_at"}
    assert first["created_at"] == NOW.isoformat() and first["campaign"] == CAMPAIGN
    with pytest.raises(RecordError, match="unknown state 'happy'"):
        await store.leads.page(state="happy")
    with pytest.raises(RecordError, match="no campaign named 'nope'"):
        await store.leads.page(campaign="nope")
    with pytest.raises(RecordError):
        await store.leads.page(limit=0)
    assert len(await store.leads.page(limit=10_000)) == 25  # capped at 500, all there are


async def test_replies_pages_filter_by_category_campaign_handling_and_match(engine: AsyncEngine) -> None:
    store = await new_store(engine, second_campaign=True)
    a, b = await add_leads(store, ["ann@one.example.com", "bob@two.example.com"])
    (c,) = await add_leads(store, ["cy@three.example.com"], "other")
    interested = await reply(store, a, await sent(store, a, 1, NOW), C.INTERESTED, NOW)
    auto = await reply(store, b, await sent(store, b, 1, NOW), C.AUTO_REPLY, NOW)
    pending = await reply(store, c, await sent(store, c, 1, NOW), C.QUESTION, NOW, act=False)
    guess = await reply(store, a, None, C.OTHER, NOW, matched_by="sender")
    stranger = await reply(store, None, None, C.OTHER, NOW)

    async def ids(**filters: Any) -> list[int]:
        found: list[int] = []
        after = None
        while page := await store.inbound.replies(after_id=after, limit=2, **filters):
            found += [r["id"] for r in page]
            after = page[-1]["id"]
        return found

    assert await ids() == [interested, auto, pending, guess, stranger]
    assert await ids(category="interested") == [interested]
    assert await ids(campaign=CAMPAIGN) == [interested, auto, guess]
    assert await ids(campaign="other") == [pending]
    assert await ids(handled=False) == [pending]
    assert await ids(matched=True) == [interested, auto, pending]
    assert await ids(matched=False) == [guess, stranger]
    assert [r["id"] for r in await store.inbound.unmatched_page(limit=1)] == [guess]
    assert [r["id"] for r in await store.inbound.unmatched_page(after_id=guess)] == [stranger]
    (row,) = await store.inbound.replies(category="interested")
    assert row["from_address"].endswith("@prospect.example") and row["subject"] == "Re: step 1"
    assert (row["lead_id"], row["lead_email"], row["campaign"], row["matched_by"]) == (
        a,
        "ann@one.example.com",
        CAMPAIGN,
        "message_id",
    )
    assert row["reasons"] and row["acted_at"] == NOW.isoformat() and row["received_at"] == NOW.isoformat()
    assert (await store.inbound.reply(stranger) or {})["lead_id"] is None
    assert await store.inbound.reply(12345) is None
    with pytest.raises(RecordError, match="unknown category"):
        await store.inbound.replies(category="keen")


# -- history -----------------------------------------------------------------------------------------------


async def test_the_history_holds_every_email_and_reply_in_time_order(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    (lead,) = await add_leads(store, ["kai@prospect.example.com"])
    first = await sent(store, lead, 1, NOW + timedelta(hours=1))
    second = await sent(store, lead, 2, NOW + timedelta(days=4))
    auto = await reply(store, lead, first, C.AUTO_REPLY, NOW + timedelta(days=1))
    question = await reply(store, lead, second, C.QUESTION, NOW + timedelta(days=5))
    await store.inbound.relabel(question, "interested", by="pat", now=NOW + timedelta(days=5, hours=2))

    history = await store.leads.history(lead)
    assert history is not None
    assert history["lead"]["id"] == lead and history["lead"]["state"] == "replied"
    assert [e["id"] for e in history["emails"]] == [first, second]
    assert [i["id"] for i in history["inbound"]] == [auto, question]
    assert history["inbound"][1]["relabelled"] == [
        {"by": "pat", "from": "question", "to": "interested", "at": (NOW + timedelta(days=5, hours=2)).isoformat()}
    ]
    assert {a["kind"] for a in history["alerts"]} == {"question", "interested"}
    timeline = history["timeline"]
    times = [datetime.fromisoformat(t["at"]) for t in timeline]
    assert times == sorted(times)
    events = [(t["event"], t["ref"]) for t in timeline]
    for email in (first, second):
        assert ("sent", f"email {email}") in events and ("queued", f"email {email}") in events
    for inbound_id in (auto, question):
        assert ("received", f"inbound {inbound_id}") in events and ("acted on", f"inbound {inbound_id}") in events
    assert ("relabelled", f"inbound {question}") in events
    assert events[0] == ("imported", None) and timeline[-1]["event"] == "state"
    assert history["state_changes_recorded"] is False
    assert await store.leads.history(999) is None


# -- alerts, suppressions, campaigns, daily figures --------------------------------------------------------


async def test_alerts_pages_and_a_failed_alert_made_due_again(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    leads = await add_leads(store, [f"p{n}@firm{n}.example.com" for n in range(3)])
    for lead in leads:
        await reply(store, lead, await sent(store, lead, 1, NOW), C.INTERESTED, NOW)
    first, second, third = [a["id"] for a in await store.alerts.page()]
    await store.alerts.finish(first, "failed", NOW, "email: permanent 550 no such user", ["webhook"])
    await store.alerts.finish(second, "delivered", NOW, None, ["email"])
    await store.alerts.retry(third, 3, "email: temporary", [])

    assert [a["id"] for a in await store.alerts.page(state="failed")] == [first]
    assert [a["id"] for a in await store.alerts.page(after_id=first, limit=1)] == [second]
    (failed,) = await store.alerts.page(state="failed")
    assert failed["kind"] == "interested" and failed["channels_done"] == ["webhook"]
    assert failed["last_error"].startswith("email: permanent") and failed["summary"].startswith("interested reply")

    assert await store.alerts.retry_now(first, NOW + timedelta(hours=1)) is True
    assert await store.alerts.retry_now(third, NOW + timedelta(hours=1)) is True
    assert await store.alerts.retry_now(second, NOW + timedelta(hours=1)) is False
    again = {a["id"]: a for a in await store.alerts.page(state="pending")}
    assert set(again) == {first, third}
    assert (again[first]["attempts"], again[third]["attempts"]) == (0, 3)
    assert again[first]["next_attempt_at"] == (NOW + timedelta(hours=1)).isoformat()
    assert first in await store.alerts.pending_ids()
    assert await store.alerts.retry_now(999, NOW) is False
    with pytest.raises(RecordError, match="unknown alert state 'lost'"):
        await store.alerts.page(state="lost")


async def test_suppressions_page_and_removal(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    for n in range(5):
        await store.leads.suppress(f"Gone{n}@Example.com", "manual", "command line", NOW + timedelta(minutes=n))
    pages, after = [], None
    while page := await store.leads.suppressions(after_id=after, limit=2):
        pages.append([s["address"] for s in page])
        after = page[-1]["id"]
    assert pages == [
        ["gone0@example.com", "gone1@example.com"],
        ["gone2@example.com", "gone3@example.com"],
        ["gone4@example.com"],
    ]
    first = (await store.leads.suppressions(limit=1))[0]
    assert (first["reason"], first["source"], first["created_at"]) == ("manual", "command line", NOW.isoformat())
    assert await store.leads.unsuppress(" GONE2@example.com ") is True
    assert await store.leads.unsuppress("gone2@example.com") is False
    assert await store.leads.suppressed(["gone2@example.com", "gone3@example.com"]) == {"gone3@example.com"}


async def test_archiving_stops_a_campaign_for_good(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    waiting, replied, queued = await add_leads(store, ["w@one.example.com", "r@two.example.com", "q@three.example.com"])
    await reply(store, replied, await sent(store, replied, 1, NOW), C.INTERESTED, NOW)
    queued_email = await sent(store, queued, 1, NOW, status="QUEUED")

    done = await store.campaigns.archive(CAMPAIGN, NOW + timedelta(hours=1))
    assert done == {"campaign": CAMPAIGN, "archived": True, "leads_stopped": 2, "emails_cancelled": 1}
    row = (await store.campaigns.all())[CAMPAIGN]
    assert (row.status, row.paused_reason) == ("paused", "archived")
    assert [(await lead_row(store, i))["state"] for i in (waiting, replied, queued)] == [
        "stopped",
        "replied",
        "stopped",
    ]
    async with engine.connect() as conn:
        status = (await conn.execute(sa.select(outbound_t.c.status).where(outbound_t.c.id == queued_email))).scalar()
    assert status == "CANCELLED"
    assert (await store.campaigns.archive(CAMPAIGN, NOW))["archived"] is False
    with pytest.raises(RecordError, match="no campaign named 'nope'"):
        await store.campaigns.archive("nope", NOW)


async def test_daily_figures_count_each_day_in_the_campaigns_timezone(engine: AsyncEngine) -> None:
    store = await new_store(engine)  # Europe/Berlin: UTC+1 in February
    a, b, c = await add_leads(store, ["a@one.example.com", "b@two.example.com", "c@three.example.com"])
    late = datetime(2026, 2, 2, 23, 30, tzinfo=UTC)  # 00:30 on the 3rd in Berlin
    await sent(store, a, 1, datetime(2026, 2, 2, 10, 0, tzinfo=UTC))
    out_b = await sent(store, b, 1, late)
    out_c = await sent(store, c, 1, datetime(2026, 2, 2, 11, 0, tzinfo=UTC))
    await reply(store, a, None, C.INTERESTED, late, matched_by="sender")  # a guess: not counted
    await reply(store, b, out_b, C.INTERESTED, datetime(2026, 2, 3, 9, 0, tzinfo=UTC))
    await reply(store, c, out_c, C.BOUNCE_HARD, datetime(2026, 2, 3, 9, 0, tzinfo=UTC), reason="user_unknown")
    await reply(store, c, out_c, C.OTHER, datetime(2026, 2, 3, 9, 5, tzinfo=UTC), reason="delivered_dsn")

    days = await store.metrics.daily(CAMPAIGN)
    assert [d["day"] for d in days] == ["2026-02-02", "2026-02-03"]
    assert {d["timezone"] for d in days} == {"Europe/Berlin"}
    assert (days[0]["sent"], days[1]["sent"]) == (2, 1)
    assert days[0]["replies"] == {} and days[1]["replies"] == {"interested": 1, "bounce_hard": 1, "other": 1}
    assert (days[1]["hard_bounces"], days[1]["soft_bounces"], days[1]["complaints"]) == (1, 0, 0)
    assert days[1]["human_replies"] == 1  # the delivery notice filed under other is not one
    with pytest.raises(RecordError):
        await store.metrics.daily("nope")


async def test_cycle_reports_page_newest_first(engine: AsyncEngine) -> None:
    store = await new_store(engine)
    for seq in range(1, 4):
        for step in ("cam.scheduler", "cam.inbox"):
            await store.metrics.save_cycle_report(
                step=step, tick_seq=seq, counts={"sent": seq}, errors=[], duration_ms=1.5, now=NOW
            )
    newest = await store.metrics.cycle_reports(step="cam.scheduler", limit=2)
    assert [(r["step"], r["tick_seq"]) for r in newest] == [("cam.scheduler", 3), ("cam.scheduler", 2)]
    assert newest[0]["counts"] == {"sent": 3} and newest[0]["started_at"] == NOW.isoformat()
    rest = await store.metrics.cycle_reports(step="cam.scheduler", before_id=newest[-1]["id"])
    assert [r["tick_seq"] for r in rest] == [1]
    assert len(await store.metrics.cycle_reports()) == 6
