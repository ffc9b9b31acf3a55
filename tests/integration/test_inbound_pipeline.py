"""The inbound half end to end: a real Dovecot, the real actor tree, alerts into a real SMTP sink.

Each test builds the service the way `python run.py` does (`cam_supervisor(...)`),
with the sending mailbox and the alert transport pointed at an aiosmtpd sink and the inbox
at a private Dovecot. Step 1 goes out for real; the test reads the Message-IDs the sink
received, APPENDs replies and bounces (messages of the classifier corpus, their references
rewritten to those real Message-IDs) to the IMAP folder, moves the fake clock so the inbox
polls, and asserts on outcomes only: rows in the `cam_*` tables, emails in the sink, paused
campaigns and mailboxes.

Time: a `FakeClock` without auto-jump, moved by `Pipeline.run_for`, one timer at a time,
with the system settled in between. Actors waiting on network I/O count as busy, so
`settle()` covers SMTP, IMAP and the database; the test's own APPENDs happen while time
stands still. Where the server offers IDLE, the inbox may fetch a message as soon as
Dovecot announces it instead of at the next tick: the assertions hold either way, so
nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import cam_supervisor
from aicmo_actors.cam.campaign import CampaignSpec, Limits, MailboxSpec, SendWindow, StepSpec
from aicmo_actors.cam.decision import PausePolicy
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.gateways.imap import ImapSource
from aicmo_actors.gateways.smtp import SmtpTransport
from aicmo_actors.runtime import ActorSystem, ChildSpec, FakeClock, SupervisorSpec
from aicmo_actors.settings import Settings
from contracts.cam import LeadState
from tests.plugins.imap import DovecotServer
from tests.plugins.mail import Received, SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CORPUS = Path(__file__).resolve().parents[1] / "unit" / "classify" / "corpus"
START = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)  # a Monday
TICK_S = 4 * 3600.0
DAY_S = 86400.0
SEED = 20260309
MAILBOX = "alex@outreach.example.com"
ALERT_TO = "owner@agency.example"
ALERT_FROM = "alerts@agency.example"
INBOX = "imap"
#: Our own Message-IDs as the corpus writes them ("<iq.123.1@outreach.example.com>").
CORPUS_OUR_ID = re.compile(rb"<[A-Za-z0-9]+\.\d+\.\d+@outreach\.example\.com>")
#: The first step goes out at once; the follow-up three days later.
STEP2_DELAY_DAYS = 3


def campaign(name: str = "inbound-e2e") -> CampaignSpec:
    """Two steps from one mailbox, every day, no pacing: only replies decide what is sent."""
    return CampaignSpec(
        name=name,
        timezone="UTC",
        postal_address="AICMO Agency GmbH, Beispielstrasse 1, 10115 Berlin, Germany",
        stop_company_on_reply=False,
        window=SendWindow(days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start="00:00", end="24:00"),
        limits=Limits(daily_cap=1000, min_gap_seconds=0, jitter_seconds=0),
        mailboxes=(MailboxSpec(address=MAILBOX, display_name="Alex Berger"),),
        steps=(
            StepSpec(
                delay_days=0,
                subject="Quick question about {{ company }}",
                body="Hi {{ first_name }},\n\nwould a call help {{ company }}?\n\nAlex",
            ),
            StepSpec(
                delay_days=STEP2_DELAY_DAYS,
                subject="",
                body="Hi {{ first_name }},\n\njust bringing this up again.\n\nAlex",
            ),
        ),
    )


def lead(email: str) -> dict[str, Any]:
    local, _, domain = email.partition("@")
    first = local.split(".")[0].capitalize()
    return {
        "email": email,
        "first_name": first,
        "last_name": "Prospect",
        "company": domain.split(".")[0].capitalize(),
        "timezone": "UTC",
    }


def corpus_message(name: str, ours: str) -> bytes:
    """A corpus message whose references to "our" email point at `ours` (a real Message-ID).

    Replies carry it in In-Reply-To/References, bounces and complaints in the returned
    original. Line ends become CRLF, as on the wire.
    """
    raw = (CORPUS / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    raw, count = CORPUS_OUR_ID.subn(ours.encode(), raw)
    assert count > 0, f"{name} refers to no Message-ID of ours"
    return raw


@dataclass
class Pipeline:
    """The service under test and its surroundings."""

    engine: AsyncEngine
    store: CamStore
    clock: FakeClock
    sink: SmtpSink
    dovecot: DovecotServer
    settings: Settings
    folder: str = "INBOX"
    pause_policy: PausePolicy | None = None
    system: ActorSystem | None = None
    first_ids: dict[str, str] = field(default_factory=dict)
    appended: int = 0
    origin: float = 0.0
    #: IMAP sources the inbox made: one per connection it opened (fetching, and IDLE if used).
    connections: int = 0

    # -- the service ---------------------------------------------------------------------------
    def children(self) -> list[ChildSpec | SupervisorSpec]:
        sink = self.sink
        dovecot = self.dovecot
        folder = self.folder

        def transport(profile: str, mailbox: str) -> SmtpTransport:
            return SmtpTransport(sink.host, sink.port, tls="none", timeout=10)

        def imap() -> ImapSource:
            self.connections += 1
            return ImapSource(
                dovecot.host,
                dovecot.port,
                "test",
                "pass",
                folder=folder,
                tls="none",
                timeout=10,
                name=INBOX,
            )

        return [
            cam_supervisor(
                self.settings,
                self.store,
                secret=b"inbound-e2e-secret-0123456789",
                http=False,
                pause_policy=self.pause_policy,
                transports=transport,
                inboxes={INBOX: imap},
            )
        ]

    async def start(self) -> None:
        assert self.system is None or self.system.stopped
        self.system = ActorSystem(self.settings, clock=self.clock, children=self.children())
        self.origin = self.clock.monotonic()  # the clock actor ticks from here
        await self.system.start()
        await self.system.settle()

    async def stop(self) -> None:
        if self.system is not None and not self.system.stopped:
            await self.system.stop()
        assert self.system is None or self.system.failure is None, self.system.failure

    # -- time ------------------------------------------------------------------------------------
    async def run_for(self, seconds: float) -> None:
        """Move the clock `seconds` on, firing each timer in turn and settling after each."""
        assert self.system is not None
        clock = self.clock
        target = clock.monotonic() + seconds
        while True:
            await self.system.settle()
            deadline = clock.next_deadline()
            if deadline is None or deadline > target:
                break
            clock.advance(max(0.0, deadline - clock.monotonic()))
        clock.advance(target - clock.monotonic())
        await self.system.settle()
        assert self.system.failure is None, self.system.failure

    async def run_until(self, when: datetime) -> None:
        await self.run_for((when - self.clock.now()).total_seconds())

    async def poll(self) -> None:
        """Up to the next inbox poll (a fixed offset after a tick), and not a moment further."""
        offset = self.settings.inbox_poll_offset_s
        since = self.clock.monotonic() - self.origin - offset
        target = self.origin + (since // TICK_S + 1) * TICK_S + offset
        await self.run_for(target - self.clock.monotonic())

    # -- the outside world -----------------------------------------------------------------------------
    async def send_first_step(self, emails: Sequence[str]) -> dict[str, str]:
        """Create the campaign with these leads, let step 1 go out; return their real Message-IDs."""
        spec = campaign()
        await self.store.campaigns.create_or_update(spec, self.clock.now())
        new, _, _ = await self.store.leads.import_rows(spec.name, [lead(e) for e in emails], self.clock.now())
        assert new == len(emails)
        await self.run_for(TICK_S)
        for email in emails:
            received = self.sent_to(email)
            assert len(received) == 1, (email, len(received))
            self.first_ids[email] = str(received[0].message["Message-ID"])
        return dict(self.first_ids)

    async def append(self, *raws: bytes) -> list[int]:
        uids = await self.dovecot.append(*raws, folder=self.folder)
        self.appended += len(raws)
        return uids

    def sent_to(self, email: str) -> list[Received]:
        """Campaign emails that reached the sink for `email` (alerts go elsewhere)."""
        return [m for m in self.sink.messages if email in m.rcpt_tos and m.mail_from == MAILBOX]

    def alerts(self, about: str | None = None) -> list[Received]:
        """Alert emails in the sink, optionally only those naming `about` (a lead's address or a word)."""
        found = [m for m in self.sink.messages if m.mail_from == ALERT_FROM]
        for m in found:
            assert m.rcpt_tos == [ALERT_TO], m.rcpt_tos
        if about is None:
            return found
        return [m for m in found if about in m.message.get_content() or about in str(m.message["Subject"])]

    # -- the database -----------------------------------------------------------------------------
    async def rows(self, query: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def lead_row(self, email: str) -> dict[str, Any]:
        (row,) = await self.rows(sa.select(leads_t).where(leads_t.c.email == email))
        return row

    async def state(self, email: str) -> LeadState:
        return LeadState((await self.lead_row(email))["state"])

    async def inbound(self, email: str) -> list[dict[str, Any]]:
        lead_id = (await self.lead_row(email))["id"]
        return await self.rows(sa.select(inbound_t).where(inbound_t.c.lead_id == lead_id).order_by(inbound_t.c.id))

    async def suppressions(self) -> dict[str, str]:
        return {r["address"]: r["reason"] for r in await self.rows(sa.select(suppressions_t))}

    async def alert_rows(self) -> list[dict[str, Any]]:
        return await self.rows(sa.select(alerts_t).order_by(alerts_t.c.id))

    async def assert_stored_once(self, expected: int | None = None) -> list[dict[str, Any]]:
        """Every message put into the folder is one row, classified; none twice."""
        rows = await self.rows(sa.select(inbound_t).order_by(inbound_t.c.id))
        expected = self.appended if expected is None else expected
        ids = [r["message_id"] for r in rows]
        assert len(rows) == expected, f"{len(rows)} inbound rows for {expected} messages: {ids}"
        assert len(set(ids)) == len(ids) and None not in ids, ids
        assert len({(r["mailbox"], r["uidvalidity"], r["uid"]) for r in rows}) == len(rows)
        assert all(r["processed_at"] is not None for r in rows), "a stored message was never classified"
        return rows


@asynccontextmanager
async def pipeline(
    engine: AsyncEngine,
    imap_server: DovecotServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    *,
    folder: str = "INBOX",
    pause_policy: PausePolicy | None = None,
    **overrides: Any,
) -> AsyncIterator[Pipeline]:
    values: dict[str, Any] = {
        "database_url": str(engine.url.render_as_string(hide_password=False)),
        "seed": SEED,
        "tick_interval_s": TICK_S,
        "inbox_poll_offset_s": 1800.0,
        "alert_emails": [ALERT_TO],
        "alert_from": ALERT_FROM,
        "public_url": "https://agency.example",
        "state_dir": tmp_path / ".aicmo",
        "log_level": "warning",
        "classify_isolation": "inline",
    }
    settings = Settings(**{**values, **overrides})
    p = Pipeline(
        engine=engine,
        store=CamStore(engine),
        clock=FakeClock(START, autojump=False),
        sink=smtp_sink,
        dovecot=imap_server,
        settings=settings,
        folder=folder,
        pause_policy=pause_policy,
    )
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def sent_at(m: Received) -> datetime:
    return parsedate_to_datetime(str(m.message["Date"]))


# -- 1. replies are threaded, matched and alerted ------------------------------------------------------


async def test_human_replies_stop_the_sequence_and_alert_once_each(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    replies = {
        "fay@prospect.example": ("interested_with_quote.eml", "interested"),
        "mia@prospect.example": ("pricing_question.eml", "question"),
        "lou@prospect.example": ("meeting_request.eml", "meeting_request"),
    }
    silent = "quiet@other.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step([*replies, silent])
        await p.append(*(corpus_message(name, ids[email]) for email, (name, _) in replies.items()))
        await p.poll()

        for email, (_, category) in replies.items():
            assert await p.state(email) is LeadState.REPLIED, email
            (row,) = await p.inbound(email)
            assert (row["category"], row["matched_by"]) == (category, "message_id")
            assert row["in_reply_to"] == ids[email]
            (ours,) = await p.rows(sa.select(outbound_t).where(outbound_t.c.id == row["outbound_id"]))
            assert (ours["message_id"], ours["step"]) == (ids[email], 1)
            mails = p.alerts(about=email)
            assert len(mails) == 1, (email, [m.message["Subject"] for m in mails])
            assert category.replace("_", " ") in str(mails[0].message["Subject"])
        assert len(p.alerts()) == len(replies)
        alerts = await p.alert_rows()
        assert sorted(a["kind"] for a in alerts) == sorted(c for _, c in replies.values())
        assert {a["state"] for a in alerts} == {"delivered"}
        assert await p.state(silent) is LeadState.ACTIVE

        # Past the follow-up's due date: only the lead who never answered gets step 2.
        await p.run_for((STEP2_DELAY_DAYS + 2) * DAY_S)
        for email in replies:
            assert len(p.sent_to(email)) == 1, f"{email} got a follow-up after replying"
        (first, second) = p.sent_to(silent)
        assert second.message["In-Reply-To"] == first.message["Message-ID"]
        assert len(p.alerts()) == len(replies)
        await p.assert_stored_once()
        assert await p.suppressions() == {}


# -- 2. bounces in the formats of real MTAs ---------------------------------------------------------------

#: lead -> (corpus file, category, reason, sending side). The addresses are the ones the reports name.
BOUNCES = {
    "jane.doe@example.org": (
        "postfix_user_unknown.eml",
        "bounce_hard",
        "user_unknown",
        False,
    ),  # Postfix, RFC 3464
    "full@example.com": ("gmail_over_quota.eml", "bounce_soft", "mailbox_full", False),  # Gmail
    "pat@contoso.example": (
        "m365_recipient_not_found.eml",
        "bounce_hard",
        "user_unknown",
        False,
    ),  # Exchange Online NDR
    "lee.wong@corp.example": (
        "exchange_recipnotfound.eml",
        "bounce_hard",
        "user_unknown",
        False,
    ),  # on-premises Exchange
    "kim@corp.example": (
        "postfix_blocked_spamhaus.eml",
        "bounce_soft",
        "blocked",
        True,
    ),  # blocked by Spamhaus
}


async def test_bounces_are_read_from_real_mta_formats_and_only_hard_ones_suppress(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step(list(BOUNCES))
        await p.append(*(corpus_message(name, ids[email]) for email, (name, *_) in BOUNCES.items()))
        await p.poll()

        suppressed = await p.suppressions()
        for email, (_, category, reason, sending_side) in BOUNCES.items():
            (row,) = await p.inbound(email)
            assert (row["category"], row["reason"], row["matched_by"]) == (
                category,
                reason,
                "report",
            ), email
            assert row["classification"]["sending_side"] is sending_side, email
            lead_row = await p.lead_row(email)
            if category == "bounce_hard":
                assert LeadState(lead_row["state"]) is LeadState.BOUNCED, email
                assert lead_row["next_action_at"] is None, email
                assert suppressed.get(email) == "hard bounce", email
            else:
                assert LeadState(lead_row["state"]) is LeadState.ACTIVE, email
                assert email not in suppressed, email
        assert set(suppressed) == {e for e, b in BOUNCES.items() if b[1] == "bounce_hard"}
        # A soft bounce counts against the address; a block counts against our mailbox, not the lead.
        assert (await p.lead_row("full@example.com"))["soft_bounces"] == 1
        assert (await p.lead_row("kim@corp.example"))["soft_bounces"] == 0
        # One block is no reason to pause anything; bounces raise no alert.
        assert [m["status"] for m in await p.store.campaigns.mailboxes()] == ["active"]
        assert (await p.store.campaigns.all())["inbound-e2e"].status == "active"
        assert p.alerts() == [] and await p.alert_rows() == []

        # Days later: the dead addresses never hear from us again; the others go on.
        await p.run_for((STEP2_DELAY_DAYS + 2) * DAY_S)
        for email, (_, category, *_rest) in BOUNCES.items():
            if category == "bounce_hard":
                assert len(p.sent_to(email)) == 1, email
        # The over-quota step is sent again after a day (the same message: it never arrived),
        # then the follow-up; the blocked lead just gets its follow-up.
        assert [m.message["Message-ID"] for m in p.sent_to("full@example.com")][:2] == [ids["full@example.com"]] * 2
        assert any(m.message["In-Reply-To"] == ids["kim@corp.example"] for m in p.sent_to("kim@corp.example"))
        await p.assert_stored_once()


# -- 3. an out-of-office pauses the lead until its return date ---------------------------------------------


async def test_an_out_of_office_pauses_the_lead_until_the_return_date(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    away, control = "pat@prospect.example", "sam@prospect.example"
    back = datetime(2026, 3, 16, tzinfo=UTC)  # "I will be back on Monday, 16 March 2026."
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step([away, control])
        await p.append(corpus_message("ooo_exchange_en.eml", ids[away]))
        await p.poll()

        row = await p.lead_row(away)
        assert LeadState(row["state"]) is LeadState.PAUSED
        assert row["paused_until"].date() == back.date()
        (inbound,) = await p.inbound(away)
        assert inbound["category"] == "auto_reply"
        assert p.alerts() == []

        # The control lead gets its follow-up on day 3; the absent one nothing before she is back.
        await p.run_until(back - timedelta(minutes=1))
        assert len(p.sent_to(control)) == 2
        assert len(p.sent_to(away)) == 1
        assert await p.state(away) is LeadState.PAUSED

        await p.run_until(back + timedelta(days=1))
        _, second = p.sent_to(away)
        assert sent_at(second) >= back
        assert second.message["In-Reply-To"] == ids[away]
        assert await p.state(away) is LeadState.ACTIVE
        await p.assert_stored_once()


# -- 4. "please remove me" and a spam complaint suppress the address ---------------------------------------


async def test_an_unsubscribe_reply_and_an_arf_complaint_suppress_the_address(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    leaver, complainer = "dan@prospect.example", "angry@yahoo.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step([leaver, complainer])
        await p.append(
            corpus_message("remove_me.eml", ids[leaver]),
            corpus_message("arf_abuse.eml", ids[complainer]),  # the report quotes the original
        )
        await p.poll()

        (reply,) = await p.inbound(leaver)
        assert (reply["category"], reply["matched_by"]) == ("unsubscribe", "message_id")
        (report,) = await p.inbound(complainer)
        assert (report["category"], report["matched_by"]) == ("complaint", "report")
        assert await p.state(leaver) is LeadState.UNSUBSCRIBED
        assert await p.state(complainer) is LeadState.UNSUBSCRIBED
        assert await p.suppressions() == {leaver: "unsubscribe reply", complainer: "complaint"}
        assert p.alerts() == []

        await p.run_for((STEP2_DELAY_DAYS + 2) * DAY_S)
        assert len(p.sent_to(leaver)) == len(p.sent_to(complainer)) == 1
        await p.assert_stored_once()
        # Suppressed everywhere: another campaign cannot take the addresses on either.
        other = campaign("another-campaign")
        await p.store.campaigns.create_or_update(other, p.clock.now())
        assert await p.store.leads.import_rows(other.name, [lead(leaver), lead(complainer)], p.clock.now()) == (0, 0, 2)


# -- 5. an alert reaches a human once, whatever restarts ------------------------------------------------------


def kill(system: ActorSystem, name: str, under: str = "root/cam") -> None:
    """Kill one actor the hard way (its task cancelled, no on_stop): its supervisor restarts it."""
    supervisor = system._find_supervisor(under)
    (child,) = [c for c in supervisor.children if c.spec.id == name]
    assert child.task is not None and not child.task.done()
    child.task.cancel()


def restarts(system: ActorSystem, name: str) -> int:
    (stats,) = [a for a in system.snapshot().actors if a.name == name]
    return stats.restarts


async def test_an_alert_pending_when_its_actor_is_killed_is_delivered_once(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    email = "fay@prospect.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step([email])
        smtp_sink.reply_for[ALERT_TO] = "451 4.3.0 Try again later"  # until the kill
        await p.append(corpus_message("interested_with_quote.eml", ids[email]))
        await p.poll()
        (alert,) = await p.alert_rows()
        assert alert["state"] == "pending" and alert["attempts"] >= 1, alert
        assert p.alerts() == []

        # Killed while its retry timer is still running: the replacement finds the pending
        # alert in the database, and the old incarnation's timer fires too.
        assert p.system is not None
        del smtp_sink.reply_for[ALERT_TO]
        kill(p.system, "cam.alerts")
        await p.run_for(0)
        assert restarts(p.system, "cam.alerts") == 1
        assert len(p.alerts(about=email)) == 1  # delivered by the replacement, at once
        await p.run_for(DAY_S)

        assert len(p.alerts(about=email)) == 1
        assert len(p.alerts()) == 1
        (alert,) = await p.alert_rows()
        assert alert["state"] == "delivered"
        await p.assert_stored_once()


async def test_restarting_the_whole_system_on_the_same_database_repeats_no_alert(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    early, late = "fay@prospect.example", "mia@prospect.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step([early, late])
        await p.append(corpus_message("interested_with_quote.eml", ids[early]))
        await p.poll()
        assert len(p.alerts(about=early)) == 1

        # The second alert cannot be delivered before the process stops.
        smtp_sink.reply_for[ALERT_TO] = "451 4.3.0 Try again later"
        await p.append(corpus_message("pricing_question.eml", ids[late]))
        await p.poll()
        assert [a["state"] for a in await p.alert_rows()] == ["delivered", "pending"]
        await p.stop()
        del smtp_sink.reply_for[ALERT_TO]

        # A new process: new actors, a new store, the same database, the same folder.
        p.store = CamStore(engine)
        await p.start()
        await p.run_for(2 * DAY_S)
        assert len(p.alerts(about=early)) == 1
        assert len(p.alerts(about=late)) == 1
        assert len(p.alerts()) == 2
        assert [a["state"] for a in await p.alert_rows()] == ["delivered", "delivered"]
        assert await p.state(early) is LeadState.REPLIED
        assert await p.state(late) is LeadState.REPLIED
        await p.assert_stored_once()


# -- 6. the auto-pauses ----------------------------------------------------------------------------------------

#: Small numbers instead of 3% after 50 sends: 8 sends, and a rate over 25% pauses.
SMALL_POLICY = PausePolicy(
    hard_bounce_rate=0.25,
    complaint_rate=1.0,
    min_sends=8,
    mailbox_rejections=3,
    mailbox_window_s=DAY_S,
)


async def test_a_campaign_pauses_itself_when_its_hard_bounce_rate_passes_the_limit(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    dead = {
        "jane.doe@example.org": "postfix_user_unknown.eml",
        "pat@contoso.example": "m365_recipient_not_found.eml",
        "lee.wong@corp.example": "exchange_recipnotfound.eml",
    }
    alive = [f"lead{n}@alive{n}.example" for n in range(5)]
    async with pipeline(engine, imap_server, smtp_sink, tmp_path, pause_policy=SMALL_POLICY) as p:
        ids = await p.send_first_step([*dead, *alive])
        (first, second, third) = dead
        # 2 of 8 is 25%: not over the limit yet.
        await p.append(corpus_message(dead[first], ids[first]), corpus_message(dead[second], ids[second]))
        await p.poll()
        assert (await p.store.campaigns.all())["inbound-e2e"].status == "active"
        assert p.alerts() == []

        await p.append(corpus_message(dead[third], ids[third]))
        await p.poll()
        row = (await p.store.campaigns.all())["inbound-e2e"]
        assert row.status == "paused"
        assert row.paused_reason is not None and "hard-bounce rate 37.5% (3/8 attempted)" in row.paused_reason
        (mail,) = p.alerts()
        assert "campaign paused" in str(mail.message["Subject"])
        assert [a["kind"] for a in await p.alert_rows()] == ["campaign_paused"]
        for email in dead:
            assert await p.state(email) is LeadState.BOUNCED

        # Paused: nobody gets the follow-up, and the pause is alerted once.
        await p.run_for((STEP2_DELAY_DAYS + 2) * DAY_S)
        for email in alive:
            assert len(p.sent_to(email)) == 1, email
            assert await p.state(email) is LeadState.ACTIVE
        assert len(p.alerts()) == 1
        assert (await p.store.campaigns.all())["inbound-e2e"].status == "paused"
        await p.assert_stored_once()


async def test_a_mailbox_pauses_itself_after_three_sending_side_rejections_in_a_day(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    blocked = {
        "kim@corp.example": "postfix_blocked_spamhaus.eml",
        "it@school.example": "barracuda_blocked.eml",
        "procurement@enterprise.example": "proofpoint_blocked.eml",
    }
    control = "quiet@other.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path, pause_policy=SMALL_POLICY) as p:
        ids = await p.send_first_step([*blocked, control])
        (first, second, third) = blocked
        await p.append(corpus_message(blocked[first], ids[first]), corpus_message(blocked[second], ids[second]))
        await p.poll()
        assert [m["status"] for m in await p.store.campaigns.mailboxes()] == ["active"]

        await p.append(corpus_message(blocked[third], ids[third]))
        await p.poll()
        (box,) = await p.store.campaigns.mailboxes()
        assert (box["address"], box["status"]) == (MAILBOX, "paused")
        assert "3 sending-side rejections" in box["paused_reason"]
        (mail,) = p.alerts()
        assert "mailbox paused" in str(mail.message["Subject"]) and MAILBOX in str(mail.message["Subject"])
        assert [a["kind"] for a in await p.alert_rows()] == ["mailbox_paused"]
        # A block is our problem, not the leads': they stay, unsuppressed, and the campaign runs.
        for email in blocked:
            row = await p.lead_row(email)
            assert (LeadState(row["state"]), row["soft_bounces"]) == (LeadState.ACTIVE, 0), email
        assert await p.suppressions() == {}
        assert (await p.store.campaigns.all())["inbound-e2e"].status == "active"

        # Nothing leaves the paused mailbox, and the pause is alerted once.
        await p.run_for((STEP2_DELAY_DAYS + 2) * DAY_S)
        for email in [*blocked, control]:
            assert len(p.sent_to(email)) == 1, email
        assert len(p.alerts()) == 1
        await p.assert_stored_once()


# -- 7. and 8. the IMAP connection drops; the folder's UIDVALIDITY changes ----------------------------------


async def test_a_dropped_imap_connection_is_survived_and_nothing_is_stored_twice(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    before, after, last = "fay@prospect.example", "mia@prospect.example", "lou@prospect.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step([before, after, last])
        await p.append(corpus_message("interested_with_quote.eml", ids[before]))
        await p.poll()
        assert len(await p.inbound(before)) == 1

        # Dovecot drops the inbox's connections between two polls; mail keeps arriving.
        connected = p.connections
        await imap_server.akick("test")
        await p.append(corpus_message("pricing_question.eml", ids[after]))
        await p.poll()
        await p.poll()
        assert p.connections > connected, "the inbox never connected again"
        assert await p.state(after) is LeadState.REPLIED
        assert len(await p.inbound(after)) == 1

        # Dropped again, right before mail arrives; a day of polls after it.
        connected = p.connections
        await imap_server.akick("test")
        await p.append(corpus_message("meeting_request.eml", ids[last]))
        await p.run_for(DAY_S)
        assert p.connections > connected
        for email in (before, after, last):
            assert len(await p.inbound(email)) == 1, email
            assert await p.state(email) is LeadState.REPLIED, email
            assert len(p.alerts(about=email)) == 1, email
        assert len(p.alerts()) == 3
        await p.assert_stored_once()


@pytest.mark.parametrize("how", ["folder_recreated", "uidvalidity_changed"])
async def test_a_changed_uidvalidity_stores_new_mail_and_nothing_twice(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, how: str
) -> None:
    folder = "Replies" if how == "folder_recreated" else "INBOX"
    if folder != "INBOX":
        await recreate_folder(imap_server, folder)
    old, new = "fay@prospect.example", "mia@prospect.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path, folder=folder) as p:
        ids = await p.send_first_step([old, new])
        await p.append(corpus_message("interested_with_quote.eml", ids[old]))
        await p.poll()
        (stored,) = await p.inbound(old)
        validity = await asyncio.to_thread(imap_server.uidvalidity, "test", folder)
        assert stored["uidvalidity"] == validity

        if how == "folder_recreated":
            # The server rebuilt the folder: a new UIDVALIDITY, UIDs from 1 again, the old
            # message shown again under a new UID, a new one under a UID already seen.
            await recreate_folder(imap_server, folder)
            uids = await p.append(corpus_message("interested_with_quote.eml", ids[old]))
            uids += await p.append(corpus_message("pricing_question.eml", ids[new]))
            assert uids == [1, 2] and stored["uid"] == 1
        else:
            await imap_server.aset_uidvalidity(validity + 1000, "test", folder)
            uids = await p.append(corpus_message("pricing_question.eml", ids[new]))
        fresh = await asyncio.to_thread(imap_server.uidvalidity, "test", folder)
        assert fresh != validity
        await p.run_for(DAY_S)

        assert [r["uidvalidity"] for r in await p.inbound(old)] == [validity]
        (newer,) = await p.inbound(new)
        assert (newer["uidvalidity"], newer["uid"]) == (fresh, uids[-1])
        assert await p.state(new) is LeadState.REPLIED
        assert len(p.alerts(about=old)) == len(p.alerts(about=new)) == 1
        assert await p.store.inbound.cursor(INBOX) == (fresh, uids[-1])
        # The message shown again is one message, not two.
        await p.assert_stored_once(expected=2)


async def recreate_folder(dovecot: DovecotServer, folder: str) -> None:
    def run() -> None:
        if folder in dovecot.doveadm("mailbox", "list", "-u", "test").split():
            dovecot.doveadm("mailbox", "delete", "-u", "test", folder)
        dovecot.doveadm("mailbox", "create", "-u", "test", folder)

    await asyncio.to_thread(run)
