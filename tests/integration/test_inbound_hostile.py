"""What a stranger's mail can and cannot do, end to end against Dovecot, on both databases.

The rule (issue "nothing hijacked"): a message acts on a lead, and counts toward a pause,
only when it is tied to an email we sent to that lead: our Message-ID (threading, or quoted
in a report), our signed per-message return path, or our signed unsubscribe token. A
forged report, a spoofed From, a display-name trick change nothing but the unmatched list.
And what stays real must keep working: delay notices are not bounces, an unsubscribe sent
to our List-Unsubscribe mailto works from any address, and one huge or malformed message
never blocks the mail behind it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.decision import PausePolicy
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from contracts.cam import LeadState
from tests.integration.test_inbound_pipeline import (
    ALERT_TO,
    DAY_S,
    MAILBOX,
    STEP2_DELAY_DAYS,
    Pipeline,
    corpus_message,
    pipeline,
)
from tests.plugins.imap import DovecotServer
from tests.plugins.mail import SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

#: Pauses at the first counted complaint or hard bounce: a forged one must not count.
TRIGGER_HAPPY = PausePolicy(hard_bounce_rate=0.0, complaint_rate=0.0, min_sends=1, mailbox_rejections=1)


def crlf(text: str) -> bytes:
    return text.strip("\n").replace("\n", "\r\n").encode() + b"\r\n"


def forged_dsn(victim: str, n: int, *, status: str = "5.1.1", diagnostic: str = "550 5.1.1 user unknown") -> bytes:
    """A delivery report that names a lead but quotes nothing of ours."""
    return crlf(f"""
From: MAILER-DAEMON@mx{n}.evil.example
To: {MAILBOX}
Subject: Undelivered Mail Returned to Sender
Message-ID: <forged-dsn-{n}@mx.evil.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b{n}"

--b{n}
Content-Type: text/plain

Your message could not be delivered to {victim}.

--b{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx{n}.evil.example

Final-Recipient: rfc822; {victim}
Action: failed
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--b{n}--
""")


def forged_arf(victim: str, n: int) -> bytes:
    """A complaint (RFC 5965) that names a lead but quotes nothing of ours."""
    return crlf(f"""
From: abuse@fbl.evil.example
To: {MAILBOX}
Subject: Abuse report
Message-ID: <forged-arf-{n}@fbl.evil.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="a{n}"

--a{n}
Content-Type: text/plain

This is an email abuse report.

--a{n}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: evil-fbl/1.0
Version: 1
Original-Rcpt-To: {victim}
Original-Mail-From: {MAILBOX}

--a{n}
Content-Type: text/rfc822-headers

From: {MAILBOX}
To: {victim}
Subject: Hello

--a{n}--
""")


def plain_reply(sender_header: str, subject: str, body: str, n: int, to: str = MAILBOX) -> bytes:
    return crlf(f"""
From: {sender_header}
To: {to}
Subject: {subject}
Message-ID: <plain-{n}@mail.example>
Date: Mon, 09 Mar 2026 12:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

{body}
""")


async def inbound_rows(p: Pipeline) -> list[dict[str, object]]:
    return await p.rows(sa.select(inbound_t).order_by(inbound_t.c.id))


async def test_forged_reports_and_spoofed_senders_change_nothing_but_the_unmatched_list(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    victim, bystander, friend = "vic@prospect.example", "bystander@gmail.example", "fay@prospect.example"
    # Read as the service reads: in a child process with a time limit per message.
    async with pipeline(
        engine, imap_server, smtp_sink, tmp_path, pause_policy=TRIGGER_HAPPY, classify_isolation="process"
    ) as p:
        ids = await p.send_first_step([victim, bystander, friend])
        await p.append(
            forged_dsn(victim, 1),  # "user unknown": would bounce and suppress the victim
            *(forged_arf(victim, n) for n in range(2, 7)),  # five complaints: would pause the campaign
            *(
                forged_dsn(victim, n, status="5.7.1", diagnostic="554 5.7.1 blocked using zen.spamhaus.org")
                for n in range(7, 10)
            ),
            plain_reply(victim, "unsubscribe", "Please unsubscribe me.", 10),  # spoofed From, no thread
            plain_reply(f'"{bystander}" <attacker@evil.example>', "remove me", "Please remove me from your list.", 11),
            plain_reply("someone@prospect.example", "unsubscribe", "Stop emailing our company.", 12),
        )
        # A genuine reply behind all that is still read and acted on.
        await p.append(corpus_message("interested_with_quote.eml", ids[friend]))
        await p.poll()

        for email in (victim, bystander):
            row = await p.lead_row(email)
            assert LeadState(row["state"]) is LeadState.ACTIVE, (email, row["state_reason"])
            assert row["soft_bounces"] == 0
        assert await p.suppressions() == {}
        assert (await p.store.campaigns.all())["inbound-e2e"].status == "active"
        assert [m["status"] for m in await p.store.campaigns.mailboxes()] == ["active"]
        ours = await p.rows(sa.select(outbound_t))
        assert all(r["bounce"] is None and r["complained_at"] is None for r in ours), ours

        rows = await inbound_rows(p)
        assert len(rows) == 13 and all(r["acted_at"] is not None for r in rows)
        display = next(r for r in rows if r["message_id"] == "<plain-11@mail.example>")
        assert display["from_address"] == "attacker@evil.example"  # never the display name
        assert display["classification"]["from_address"] == "attacker@evil.example"
        genuine = [r for r in rows if r["matched_by"] == "message_id"]
        assert len(genuine) == 1
        unmatched = {r["id"] for r in await p.store.inbound.unmatched(100)}
        assert unmatched == {r["id"] for r in rows} - {genuine[0]["id"]}
        assert {r["matched_by"] for r in rows if r["id"] in unmatched} <= {None, "sender", "report_recipient"}

        # The genuine reply: threaded by our Message-ID, it acts and alerts.
        assert await p.state(friend) is LeadState.REPLIED
        assert len(p.alerts(about=friend)) == 1
        # The spoofed unsubscribe from the victim's address is shown to a person, unverified.
        unverified = [a for a in await p.alert_rows() if a["kind"] == "unverified_reply"]
        assert unverified and all("nothing was changed" in a["payload"]["summary"] for a in unverified)

        # Days later the victim and the bystander still get their follow-up.
        await p.run_for((STEP2_DELAY_DAYS + 1) * DAY_S)
        assert len(p.sent_to(victim)) == 2 and len(p.sent_to(bystander)) == 2


def unsubscribe_token(p: Pipeline, email: str) -> str:
    (first, *_) = p.sent_to(email)
    header = str(first.message["List-Unsubscribe"])
    match = re.search(r"mailto:[^?>]+\?subject=unsubscribe%20([A-Za-z0-9_-]+)", header)
    assert match, header
    return match.group(1)


async def test_an_unsubscribe_to_our_mailto_works_from_any_address_and_a_forged_token_does_nothing(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    leaver, other = "dan@prospect.example", "eve@prospect.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        await p.send_first_step([leaver, other])
        token = unsubscribe_token(p, leaver)
        tampered = unsubscribe_token(p, other)[:-2] + ("AA" if not unsubscribe_token(p, other).endswith("AA") else "BB")
        await p.append(
            # From an alias of the lead's, not the address we wrote to, not in the thread.
            plain_reply("Dan (mobile) <dan.private@home.example>", f"unsubscribe {token}", "", 1),
            plain_reply("mallory@evil.example", f"unsubscribe {tampered}", "", 2),
        )
        await p.poll()
        assert await p.state(leaver) is LeadState.UNSUBSCRIBED
        assert await p.suppressions() == {leaver: "unsubscribe reply"}
        assert await p.state(other) is LeadState.ACTIVE
        rows = await inbound_rows(p)
        assert [(r["matched_by"], r["lead_id"] is not None) for r in rows] == [("token", True), (None, False)]


async def test_a_delay_notice_is_not_a_bounce_and_the_final_failure_counts_once(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    email = "full@example.com"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path) as p:
        ids = await p.send_first_step([email])
        await p.append(corpus_message("postfix_delayed_timeout.eml", ids[email]))
        await p.poll()
        (delay,) = await p.inbound(email)
        assert delay["category"] == "delayed"
        row = await p.lead_row(email)
        assert LeadState(row["state"]) is LeadState.ACTIVE and row["soft_bounces"] == 0
        (ours,) = await p.rows(sa.select(outbound_t))
        assert (ours["status"], ours["bounce"]) == ("SENT", None)
        assert ours["delayed_at"] is not None and ours["delay_note"]
        # Nothing is sent again while the receiving server still holds the original.
        await p.run_for(DAY_S + 3600)
        assert len(p.sent_to(email)) == 1
        figures = (await p.store.metrics.figures("inbound-e2e"))["inbound-e2e"]
        assert (figures.delayed, figures.soft_bounces, figures.sent) == (1, 0, 1)

        # The server gives up: one final failure, counted once, even when reported twice.
        await p.append(corpus_message("gmail_over_quota.eml", ids[email]))
        await p.poll()
        await p.append(
            corpus_message("gmail_over_quota.eml", ids[email]).replace(b"Message-ID: <", b"Message-ID: <again.")
        )
        await p.poll()
        row = await p.lead_row(email)
        assert row["soft_bounces"] == 1
        (ours,) = await p.rows(sa.select(outbound_t))
        assert ours["bounce"] == "soft" and ours["accepted_at"] is not None
        figures = (await p.store.metrics.figures("inbound-e2e"))["inbound-e2e"]
        assert (figures.soft_bounces, figures.sent, figures.attempted, figures.delayed) == (1, 1, 1, 0)


async def test_an_oversize_message_and_overlong_headers_are_set_aside_and_the_mail_behind_them_is_read(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    email = "fay@prospect.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path, inbound_max_bytes=50_000) as p:
        ids = await p.send_first_step([email])
        big = plain_reply("big@sender.example", "a large one", "x" * 60 + ("\n" + "y" * 76) * 3000, 1)
        long_id = f"<{'m' * 1500}@long.example>"
        long_from = f"{'f' * 400}@long.example"
        odd = crlf(f"""
From: {long_from}
To: {MAILBOX}
Subject: {"s" * 5000}
Message-ID: {long_id}
In-Reply-To: {long_id}

hello
""")
        await p.append(big, odd, corpus_message("interested_with_quote.eml", ids[email]))
        await p.poll()
        rows = await inbound_rows(p)
        assert len(rows) == 3 and all(r["acted_at"] is not None for r in rows)
        big_row, odd_row, reply = rows
        assert big_row["set_aside"] and "larger than" in big_row["set_aside"]
        assert len(big_row["raw"]) < 50_000 and big_row["size"] > 50_000
        assert odd_row["message_id"] is not None and len(odd_row["message_id"]) <= 998
        assert odd_row["from_address"] is None
        assert reply["category"] == "interested" and await p.state(email) is LeadState.REPLIED
        shown = {r["id"] for r in await p.store.inbound.set_aside(10)}
        assert big_row["id"] in shown


async def test_an_alert_with_nowhere_to_go_waits_and_is_delivered_once_a_destination_is_set(
    engine: AsyncEngine, imap_server: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    email = "fay@prospect.example"
    async with pipeline(engine, imap_server, smtp_sink, tmp_path, alert_emails=[]) as p:
        ids = await p.send_first_step([email])
        await p.append(corpus_message("interested_with_quote.eml", ids[email]))
        await p.poll()
        (alert,) = await p.alert_rows()
        assert alert["state"] == "pending" and p.alerts() == []
        await p.stop()
        p.settings = p.settings.model_copy(update={"alert_emails": [ALERT_TO]})
        await p.start()
        await p.run_for(60)
        (alert,) = await p.alert_rows()
        assert alert["state"] == "delivered"
        assert len(p.alerts(about=email)) == 1
