"""A review answered by email, through a real Dovecot: the client's reply to our review email
is delivered into the IMAP folder, fetched with the product's IMAP gateway, read by the
product's classifier and made into the `UnmatchedReply` exactly as `cam.followup` makes it
(`followup.unmatched_reply`: quotes stripped, review intent read); client review then approves
the batch, or, for an unclear reply, decides nothing and alerts a person."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.followup import unmatched_reply
from aicmo_actors.cam.lead_rules import HUMAN_REPLIES
from aicmo_actors.client_review import ReviewStore
from aicmo_actors.gateways.imap import ImapSource
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from contracts.client_review import ItemReviewed
from tests.integration.client_review_world import BATCH, ITEM_1, ITEM_2, FakeTransport, running
from tests.plugins.imap import DovecotServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def client_reply(ours: EmailMessage, text: str, message_id: str) -> bytes:
    """The client's answer as a mail client writes it: threaded on our Message-ID, our text quoted."""
    reply = EmailMessage()
    reply["From"] = "Ann Lee <ann@acme.example>"
    reply["To"] = str(ours["From"])
    reply["Subject"] = "Re: " + " ".join(str(ours["Subject"]).split())
    reply["Date"] = format_datetime(ours["Date"].datetime)
    reply["Message-ID"] = message_id
    reply["In-Reply-To"] = str(ours["Message-ID"])
    reply["References"] = str(ours["Message-ID"])
    body = ours.get_body(("plain",))
    assert body is not None
    quoted = "\n".join("> " + line for line in str(body.get_content()).splitlines())
    reply.set_content(
        f"{text}\n\nOn Mon, 30 Nov 2026 at 11:00, Bright Agency <reviews@agency.example> wrote:\n{quoted}\n"
    )
    return reply.as_bytes()


async def test_a_reply_through_dovecot_approves_the_batch(imap_server: DovecotServer, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/review.db"
    await upgrade(url)
    engine = make_engine(url)
    store, transport = ReviewStore(engine), FakeTransport()
    try:
        async with running(store, transport) as run:
            await run.tell(run.request())
            await run.tick()
            (ours,) = transport.sent
            await imap_server.append(
                client_reply(
                    ours, "Hi Alex,\n\nLooks good, go ahead.\n\nAnn\n\nSent from my iPhone", "<a1@acme.example>"
                ),
                client_reply(ours, "Let me check with my boss first.", "<a2@acme.example>"),
            )
            user = imap_server.user()
            source = ImapSource(imap_server.host, imap_server.port, user.username, user.password, tls="none")
            await source.open()
            try:
                fetched = await source.fetch_after(0, 10)
            finally:
                await source.close()
            assert len(fetched) == 2
            offered = []
            for inbound_id, message in enumerate(fetched, start=1):
                c = classify_message(message.raw)
                assert c.category in HUMAN_REPLIES, c  # followup offers it
                offered.append(unmatched_reply(inbound_id, message.raw, c, run.clock.now()))
            assert [o.review_intent for o in offered] == ["approve", "unclear"]
            assert "wrote:" not in offered[0].text
            for reply in offered:
                await run.publish(reply)
            assert {(e.batch_key, e.item_id, e.verdict, e.by) for e in run.of(ItemReviewed)} == {
                (BATCH, ITEM_1, "approved", "email"),
                (BATCH, ITEM_2, "approved", "email"),
            }
            (alert,) = run.alerts
            assert (alert.idempotency_key, alert.kind) == ("client_review:reply:2", "review_reply_unclear")
    finally:
        await engine.dispose()
