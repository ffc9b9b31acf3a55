"""Send-time mistakes end to end (real SMTP sink, both databases): nothing recorded as sent
that was not, the true reason on the row, one alert, and a pause when it keeps happening.
Also: each email is signed with the name of the mailbox that really sends it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import cam_supervisor
from aicmo_actors.cam.campaign import CampaignSpec, Limits, MailboxSpec, SendWindow, StepSpec
from aicmo_actors.cam.repos import NOT_BUILT
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.gateways.imap import ImapSource
from aicmo_actors.gateways.smtp import SmtpTransport
from aicmo_actors.runtime import ActorSystem
from contracts.cam import LeadState, OutboundStatus
from tests.integration.test_inbound_pipeline import (
    ALERT_FROM,
    DAY_S,
    INBOX,
    TICK_S,
    Pipeline,
    lead,
    pipeline,
)
from tests.plugins.imap import DovecotServer
from tests.plugins.mail import SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

BOXES = (
    MailboxSpec(address="alex@outreach.example.com", display_name="Alex Berger"),
    MailboxSpec(address="sam@outreach.example.com", display_name="Sam Okafor"),
)


def spec(body: str, name: str = "send-errors") -> CampaignSpec:
    return CampaignSpec(
        name=name,
        timezone="UTC",
        postal_address="AICMO Agency GmbH, Beispielstrasse 1, 10115 Berlin, Germany",
        stop_company_on_reply=False,
        window=SendWindow(days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start="00:00", end="24:00"),
        limits=Limits(daily_cap=1000, min_gap_seconds=0, jitter_seconds=0),
        mailboxes=BOXES,
        steps=(StepSpec(delay_days=0, subject="Hello {{ first_name }}", body=body),),
    )


class Sending(Pipeline):
    """The pipeline, with every sending mailbox of the campaign pointed at the sink."""

    def children(self):  # type: ignore[no-untyped-def]
        sink = self.sink

        def transport(profile: str, mailbox: str) -> SmtpTransport:
            return SmtpTransport(sink.host, sink.port, tls="none", timeout=10)

        dovecot = self.dovecot

        def imap() -> ImapSource:
            return ImapSource(
                dovecot.host, dovecot.port, "test", "pass", folder=self.folder, tls="none", timeout=10, name=INBOX
            )

        return [
            cam_supervisor(
                self.settings,
                self.store,
                secret=b"send-errors-secret-0123456789",
                http=False,
                transports=transport,
                inboxes={INBOX: imap},
            )
        ]


async def _start(
    engine: AsyncEngine,
    imap_server: DovecotServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    body: str,
    leads: list[dict[str, object]],
) -> Sending:
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as base:
        settings = base.settings
    p = Sending(
        engine=engine, store=base.store, clock=base.clock, sink=smtp_sink, dovecot=imap_server, settings=settings
    )
    campaign = spec(body)
    await p.store.campaigns.create_or_update(campaign, p.clock.now())
    await p.store.leads.import_rows(campaign.name, leads, p.clock.now())
    await p.start()
    return p


def campaign_mails(p: Pipeline) -> list[object]:
    return [m for m in p.sink.messages if m.mail_from != ALERT_FROM]


async def test_an_email_that_cannot_be_built_is_never_recorded_as_sent_and_repeats_pause_the_campaign(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    # Leads imported after the campaign was checked: none of them has a "title".
    leads = [lead(f"p{n}@prospect.example") for n in range(4)]
    p = await _start(engine, imap_server, smtp_sink, tmp_path, "Dear {{ title }} {{ last_name }},\n\nhello.", leads)
    try:
        await p.run_for(TICK_S)
        assert campaign_mails(p) == []  # nothing went out
        rows = await p.rows(sa.select(outbound_t).order_by(outbound_t.c.id))
        cancelled = [r for r in rows if r["status"] == OutboundStatus.CANCELLED.value]
        # Three could not be built; then the campaign paused, which holds the fourth (QUEUED).
        assert len(cancelled) == 3 and [r["status"] for r in rows if r not in cancelled] == [
            OutboundStatus.QUEUED.value
        ]
        for r in rows:
            assert r["sending_at"] is None and r["accepted_at"] is None  # never claimed as in flight
        for r in cancelled:
            assert r["last_error"].startswith(NOT_BUILT) and "missing variable 'title'" in r["last_error"], r[
                "last_error"
            ]
        leads_rows = {row["id"]: row for row in await p.rows(sa.select(leads_t))}
        for r in cancelled:
            row = leads_rows[r["lead_id"]]
            # Where it was: step 0, still active, tried again later with the reason in words.
            assert (LeadState(row["state"]), row["current_step"]) == (LeadState.ACTIVE, 0)
            assert row["next_action_at"] is not None and "could not be built" in row["state_reason"]
        # One alert for the one problem, delivered; the campaign paused after the third.
        alerts = [a for a in await p.alert_rows() if a["kind"] == "send_error"]
        assert len(alerts) == 1 and alerts[0]["state"] == "delivered"
        assert len(p.alerts()) >= 2  # the problem, and the pause
        campaign = (await p.store.campaigns.all())["send-errors"]
        assert campaign.status == "paused" and "could not be built" in (campaign.paused_reason or "")

        # Fixed (the leads get their title), resumed: the same emails go out, once each.
        async with engine.begin() as conn:
            await conn.execute(leads_t.update().values(variables={"title": "Dr."}))
        await p.store.campaigns.set_status("send-errors", "active", None, p.clock.now())
        await p.run_for(DAY_S + TICK_S)
        sent = campaign_mails(p)
        assert sorted(m.rcpt_tos[0] for m in sent) == sorted(x["email"] for x in leads)  # type: ignore[attr-defined]
        rows = await p.rows(sa.select(outbound_t))
        assert {r["status"] for r in rows} == {OutboundStatus.SENT.value}
    finally:
        await p.stop()


async def test_each_email_is_signed_by_the_mailbox_that_sends_it(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    leads = [lead(f"p{n}@prospect.example") for n in range(12)]
    p = await _start(
        engine, imap_server, smtp_sink, tmp_path, "Hi {{ first_name }},\n\nhello.\n\n{{ sender_name }}", leads
    )
    try:
        await p.run_for(TICK_S)
        mails = campaign_mails(p)
        assert len(mails) == len(leads)
        names = {box.address: box.display_name for box in BOXES}
        senders = set()
        for m in mails:
            body = m.message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
            senders.add(m.mail_from)  # type: ignore[attr-defined]
            assert names[m.mail_from] in body, (m.mail_from, body)  # type: ignore[attr-defined]
            assert str(m.message["From"]).startswith(names[m.mail_from])  # type: ignore[attr-defined]
        assert senders == set(names)  # both mailboxes really sent
    finally:
        await p.stop()


async def test_two_databases_started_with_the_same_seed_never_share_a_message_id(
    tmp_path: Path,
) -> None:
    from aicmo_actors.cam.repos import CamStore
    from aicmo_actors.cli.service import load_or_create_installation
    from aicmo_actors.gateways.maildir_outbox import MaildirOutbox
    from aicmo_actors.runtime import FakeClock
    from aicmo_actors.settings import Settings
    from aicmo_actors.storage.engine import make_engine
    from aicmo_actors.storage.schema import ensure_schema
    from tests.integration.test_inbound_pipeline import SEED, START

    ids: list[set[str]] = []
    for name in ("first", "second"):
        url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
        engine = make_engine(url)
        await ensure_schema(engine)
        clock = FakeClock(START, autojump=False)
        settings = Settings(
            database_url=url, seed=SEED, tick_interval_s=TICK_S, log_level="warning", state_dir=tmp_path / name
        )
        store = CamStore(engine)
        campaign = spec("Hi {{ first_name }}", name="same-seed")
        await store.campaigns.create_or_update(campaign, clock.now())
        await store.leads.import_rows(campaign.name, [lead(f"p{n}@prospect.example") for n in range(5)], clock.now())
        installation = await load_or_create_installation(engine, clock.now())
        assert installation == await load_or_create_installation(engine, clock.now())  # kept
        outbox = tmp_path / name / "outbox"
        cam = cam_supervisor(
            settings,
            store,
            secret=b"same-seed-secret-0123456789",
            http=False,
            installation=installation,
            transports=lambda profile, mailbox, outbox=outbox: MaildirOutbox(outbox),
            inboxes={},
        )
        system = ActorSystem(settings, clock=clock, children=[cam])
        await system.start()
        clock.advance(TICK_S)
        await system.settle()
        await system.stop()
        async with engine.connect() as conn:
            ids.append(set((await conn.execute(sa.select(outbound_t.c.message_id))).scalars()))
        await engine.dispose()
    assert len(ids[0]) == len(ids[1]) == 5
    assert ids[0].isdisjoint(ids[1])


async def test_greylisting_keeps_every_answer_of_the_server_and_says_why_the_lead_waits(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    email = "grey@prospect.example"
    greylisted = "450 4.7.1 <grey@prospect.example>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/prospect.example.html"
    smtp_sink.reply_for[email] = greylisted
    p = await _start(engine, imap_server, smtp_sink, tmp_path, "Hi {{ first_name }}", [lead(email)])
    try:
        await p.run_for(TICK_S)
        (row,) = await p.rows(sa.select(outbound_t))
        assert row["status"] == OutboundStatus.QUEUED.value and row["attempts"] == 1
        (first,) = row["replies"]
        assert (first["code"], first["status"], first["reason"], first["stage"]) == (450, "4.7.1", "greylisted", "rcpt")
        assert "Greylisted, see http://postgrey" in first["text"]
        assert "Greylisted" in row["last_error"]
        (lead_row,) = await p.rows(sa.select(leads_t))
        assert "greylisted" in lead_row["state_reason"], lead_row["state_reason"]

        del smtp_sink.reply_for[email]
        await p.run_for(DAY_S)
        (row,) = await p.rows(sa.select(outbound_t))
        assert row["status"] == OutboundStatus.SENT.value
        assert [r["code"] for r in row["replies"]] == [450, 250]  # the first answer is kept
        assert len(campaign_mails(p)) == 1
    finally:
        await p.stop()


async def test_a_rejection_at_rcpt_is_a_hard_bounce_in_every_count(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    dead, fine = "gone@prospect.example", "here@prospect.example"
    smtp_sink.reply_for[dead] = (
        "550 5.1.1 <gone@prospect.example>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    p = await _start(engine, imap_server, smtp_sink, tmp_path, "Hi {{ first_name }}", [lead(dead), lead(fine)])
    try:
        await p.run_for(TICK_S)
        rows = {r["recipient"]: r for r in await p.rows(sa.select(outbound_t))}
        assert (rows[dead]["status"], rows[dead]["bounce"], rows[dead]["bounce_reason"]) == (
            "FAILED",
            "hard",
            "user_unknown",
        )
        assert (rows[fine]["status"], rows[fine]["bounce"]) == ("SENT", None)
        states = {r["email"]: r["state"] for r in await p.rows(sa.select(leads_t))}
        assert states == {dead: "bounced", fine: "active"}
        funnel = await p.store.metrics.funnel("send-errors")
        figures = funnel["figures"]
        assert (figures["attempted"], figures["sent"], figures["refused"], figures["hard_bounces"]) == (2, 1, 1, 1)
        assert (await p.store.metrics.figures("send-errors"))["send-errors"].hard_bounces == 1
    finally:
        await p.stop()


async def test_a_bounce_that_quotes_nothing_finds_its_email_by_the_per_message_return_path(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    from aicmo_actors.settings import TransportProfile

    email, other = "gone@prospect.example", "here@prospect.example"
    p = await _start(engine, imap_server, smtp_sink, tmp_path, "Hi {{ first_name }}", [lead(email), lead(other)])
    await p.stop()
    verp = TransportProfile(kind="smtp", host=smtp_sink.host, port=smtp_sink.port, tls="none", verp=True)
    p.settings = p.settings.model_copy(update={"transports": {"default": verp}, "inbox_poll_offset_s": 1800.0})
    await p.start()
    try:
        await p.run_for(TICK_S)
        (ours,) = [m for m in campaign_mails(p) if email in m.rcpt_tos]  # type: ignore[attr-defined]
        envelope_from = ours.mail_from  # type: ignore[attr-defined]
        local = envelope_from.partition("@")[0]
        assert local.startswith(str(ours.message["From"]).split("<")[-1].split("@")[0] + "+")  # type: ignore[attr-defined]
        # The bounce names no Message-ID of ours and quotes nothing: only where it was sent.
        bounce = (
            f"From: MAILER-DAEMON@mx.prospect.example\r\nTo: {envelope_from}\r\n"
            "Subject: Undeliverable\r\nMessage-ID: <ndr-1@mx.prospect.example>\r\n\r\n"
            f"Delivery to the following recipient failed permanently:\r\n\r\n    {email}\r\n\r\n"
            "550 5.1.1 The email account that you tried to reach does not exist.\r\n"
        ).encode()
        await p.append(bounce)
        await p.poll()
        states = {r["email"]: r["state"] for r in await p.rows(sa.select(leads_t))}
        assert states == {email: "bounced", other: "active"}
        from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t

        (row,) = await p.rows(sa.select(inbound_t))
        assert row["matched_by"] == "return_path"
    finally:
        await p.stop()


async def test_a_resumed_campaign_sends_to_the_leads_that_came_due_while_it_was_paused(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    leads = [lead(f"p{n}@prospect.example") for n in range(5)]
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as base:
        settings = base.settings
    p = Sending(
        engine=engine, store=base.store, clock=base.clock, sink=smtp_sink, dovecot=imap_server, settings=settings
    )
    campaign = spec("Hi {{ first_name }}", name="paused-then-resumed")
    await p.store.campaigns.create_or_update(campaign, p.clock.now())
    await p.store.campaigns.set_status(campaign.name, "paused", "paused by command", p.clock.now())
    await p.store.leads.import_rows(campaign.name, leads, p.clock.now())
    await p.start()
    try:
        await p.run_for(2 * TICK_S)  # due, but the campaign is paused: taken off the schedule
        assert campaign_mails(p) == []
        assert {r["next_action_at"] for r in await p.rows(sa.select(leads_t))} == {None}
        await p.store.campaigns.set_status(campaign.name, "active", None, p.clock.now())
        await p.run_for(TICK_S)
        assert len(campaign_mails(p)) == len(leads)
    finally:
        await p.stop()
