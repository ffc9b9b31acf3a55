"""Delivery on both databases: `delivery.courier` in an actor system on a fake clock.

The webhook against a real HTTP server on a loopback socket that fails (500, a dropped
connection, a timeout) and recovers: delivered once, the same Idempotency-Key and a valid
signature every time; a 4xx is permanent and alerts once; failures past the threshold alert
once. The email through a real SMTP server (aiosmtpd) with its three attachments readable;
an email whose send a crash interrupted is never sent again and a person is alerted; a person's
retry sends it once more. The folder export. Told twice: done once. Cancelling.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import docx
import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.delivery import DeliveryStore
from aicmo_actors.delivery.repos import DeliveryError
from aicmo_actors.delivery.tables import delivery_deliveries as deliveries_t
from aicmo_actors.delivery.tables import delivery_emails as emails_t
from aicmo_actors.gateways.smtp import SmtpTransport
from aicmo_actors.storage.client_mail import QUEUED, SENDING
from contracts.delivery import DeliveriesCancelled, DeliveryFailing, ItemDelivered
from tests.integration.delivery_world import (
    CLIENT,
    ITEM,
    PROJECT,
    START,
    MemoryTransport,
    cancel,
    deliver,
    receiving,
    running,
)
from tests.plugins.mail import SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

HOOKED = CLIENT.model_copy(update={"webhook_url": None})


async def rows(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def one(engine: AsyncEngine, key: str) -> dict[str, Any]:
    (row,) = await rows(engine, sa.select(deliveries_t).where(deliveries_t.c.key == key))
    return row


# -- webhook --------------------------------------------------------------------------------------------------------


async def test_webhook_fails_then_recovers_and_is_delivered_once(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    async with receiving(["500", "drop", "timeout"]) as receiver:
        client = CLIENT.model_copy(update={"webhook_url": receiver.url})
        async with running(store, transport=lambda: transport, folder=tmp_path, timeout_s=0.3) as run:
            message = deliver(run.system, "webhook", client=client)
            await run.tell(message)  # attempted at once: 500
            row = await one(engine, message.idempotency_key)
            assert (row["state"], row["attempts"]) == ("retrying", 1)
            assert row["error"] == 'HTTP 500: {"error": "scripted 500"}'
            assert START < row["next_attempt_at"] <= START.replace(minute=1)
            for _ in range(3):  # a dropped connection, a timeout, then a 200
                await run.tick()
            await run.tell(message)  # asked again: said again, not posted again
            await run.tick()

            delivered = run.of(ItemDelivered)
            assert len(delivered) == 2
            assert {(e.item_id, e.version, e.method) for e in delivered} == {(ITEM, 1, "webhook")}
            assert delivered[0].receipt == 'HTTP 200: {"ok":true}'
            assert run.of(DeliveryFailing) == [] and run.alerts == []
        assert [h.action for h in receiver.hits] == ["500", "drop", "timeout", "200"]
        assert set(receiver.keys) == {message.idempotency_key}
        assert receiver.valid_signatures()
        (body,) = receiver.processed.values()
        assert body["delivery_key"] == message.idempotency_key and body["item_id"] == str(ITEM)
        assert (body["title"], body["type"], body["channel"], body["version"]) == (
            "Five ways to cut empty miles",
            "blog_post",
            "blog",
            1,
        )
        assert body["text"].startswith("Route optimisation") and "<b>empty miles</b>" in body["html"]
    row = await one(engine, message.idempotency_key)
    assert (row["state"], row["attempts"], row["receipt"]) == ("delivered", 4, 'HTTP 200: {"ok":true}')
    assert row["error"].startswith("ReadTimeout")


async def test_a_4xx_is_permanent_and_alerts_once(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    async with receiving(["400"]) as receiver:
        client = CLIENT.model_copy(update={"webhook_url": receiver.url})
        async with running(store, transport=lambda: transport, folder=tmp_path) as run:
            message = deliver(run.system, "webhook", client=client)
            await run.tell(message)
            await run.tick()
            await run.tell(message)
            await run.tick()
            failing = run.of(DeliveryFailing)
            assert len(failing) == 2 and all(e.permanent and e.attempts == 1 for e in failing)
            assert failing[0].error == 'HTTP 400: {"error": "scripted 400"}'
            (alert,) = run.alerts
            assert alert.idempotency_key == f"{message.idempotency_key}:failing" and alert.kind == "delivery"
            assert "Acme Logistics" in alert.summary and "refused it for good" in alert.text
        assert len(receiver.hits) == 1
    row = await one(engine, message.idempotency_key)
    assert (row["state"], row["permanent"]) == ("failed", True) and row["alerted_at"] == START


async def test_no_webhook_url_is_permanent(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    async with running(store, transport=lambda: transport, folder=tmp_path) as run:
        await run.tell(deliver(run.system, "webhook", client=HOOKED))
        (failing,) = run.of(DeliveryFailing)
        assert failing.permanent and failing.error == "the client has no webhook_url"
        assert len(run.alerts) == 1


async def test_failing_past_the_threshold_alerts_once_and_keeps_trying(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    async with receiving(["503"] * 4) as receiver:
        client = CLIENT.model_copy(update={"webhook_url": receiver.url})
        async with running(store, transport=lambda: transport, folder=tmp_path, alert_after=2) as run:
            message = deliver(run.system, "webhook", client=client)
            await run.tell(message)
            assert run.of(DeliveryFailing) == []
            await run.tick()  # the second failure: the alert
            (failing,) = run.of(DeliveryFailing)
            assert (failing.attempts, failing.permanent) == (2, False)
            await run.tick()
            await run.tick()  # 4 failures: still one alert, still trying
            assert len(run.of(DeliveryFailing)) == 1 and len(run.alerts) == 1
            assert "still being retried" in run.alerts[0].text
            await run.tick()  # recovers
            assert len(run.of(ItemDelivered)) == 1
        assert len(receiver.hits) == 5 and len(receiver.processed) == 1


# -- email ----------------------------------------------------------------------------------------------------------


async def test_email_through_smtp_with_three_readable_attachments_once(
    engine: AsyncEngine, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    store = DeliveryStore(engine)

    def transport() -> SmtpTransport:
        return SmtpTransport(smtp_sink.host, smtp_sink.port, tls="none", timeout=5)

    async with running(store, transport=transport, folder=tmp_path) as run:
        message = deliver(run.system, "email")
        await run.tell(message)
        await run.tell(message)
        await run.tick()
        delivered = run.of(ItemDelivered)
        assert len(delivered) == 2 and delivered[0].method == "email"
        assert delivered[0].receipt.startswith("email to ann@acme.example accepted by the mail server, Message-ID <")
    (received,) = smtp_sink.messages
    assert received.rcpt_tos == ["ann@acme.example"]
    mail = received.message
    assert "Five ways to cut empty miles" in str(mail["Subject"])
    body = mail.get_body(("plain",))
    assert body is not None and "Über 30 % weniger Leerfahrten." in body.get_content()
    attached = {a.get_filename(): a.get_content() for a in mail.iter_attachments()}
    base = "blog-post-five-ways-to-cut-empty-miles-5a1f0c3e-v1"
    assert set(attached) == {f"{base}.html", f"{base}.pdf", f"{base}.docx"}
    html = attached[f"{base}.html"]
    assert "<h1>Five ways to cut empty miles</h1>" in (html if isinstance(html, str) else html.decode())
    pdf_text = " ".join((PdfReader(io.BytesIO(attached[f"{base}.pdf"])).pages[0].extract_text() or "").split())
    assert "Five ways to cut empty miles" in pdf_text and "Über 30 % weniger Leerfahrten." in pdf_text
    paragraphs = [p.text for p in docx.Document(io.BytesIO(attached[f"{base}.docx"])).paragraphs]
    assert paragraphs[0] == "Five ways to cut empty miles" and "Über 30 % weniger Leerfahrten." in paragraphs
    row = await one(engine, message.idempotency_key)
    assert (row["state"], row["attempts"], row["delivered_at"]) == ("delivered", 1, START)


async def test_an_interrupted_email_is_never_resent_a_person_is_alerted_and_may_retry(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport(answer="temporary")
    async with running(store, transport=lambda: transport, folder=tmp_path) as run:
        message = deliver(run.system, "email")
        await run.tell(message)  # refused for now: queued again
    async with engine.begin() as conn:  # as if the process died in the middle of the next send
        await conn.execute(emails_t.update().where(emails_t.c.status == QUEUED).values(status=SENDING))
    transport.answer = "accepted"
    async with running(DeliveryStore(engine), transport=lambda: transport, folder=tmp_path) as run:
        await run.tick()
        await run.tell(message)
        # Announced at start (before this test listens) and said again when asked.
        (failing,) = run.of(DeliveryFailing)
        assert failing.permanent and failing.error.startswith("unconfirmed")
        (alert,) = run.alerts
        assert "check with the client" in alert.summary and "delivery retry" in alert.text
        assert transport.sent == []

        # A person checked: it did not arrive. Retry: the same email, once more.
        retried = await store.deliveries.retry(message.idempotency_key, run.clock.now())
        assert (retried.state, retried.rounds) == ("queued", 1)
        with pytest.raises(DeliveryError, match="only a failed or unconfirmed one"):
            await store.deliveries.retry(message.idempotency_key, run.clock.now())
        await run.tick()
        await run.tick()
        assert len(run.of(ItemDelivered)) == 1
    assert len(transport.sent) == 1
    keys = [e["idempotency_key"] for e in await rows(engine, sa.select(emails_t).order_by(emails_t.c.id))]
    assert keys == [message.idempotency_key, f"{message.idempotency_key}:resend1"]
    assert (await one(engine, message.idempotency_key))["state"] == "delivered"


async def test_an_address_no_email_can_carry_fails_and_alerts(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    bad = CLIENT.model_copy(update={"contact_email": "ann@acme.example\r\nBcc: everyone@example.com"})
    async with running(store, transport=lambda: transport, folder=tmp_path) as run:
        await run.tell(deliver(run.system, "email", client=bad))
        (failing,) = run.of(DeliveryFailing)
        assert failing.permanent and "cannot be written" in failing.error
        assert len(run.alerts) == 1
    assert transport.sent == [] and await rows(engine, sa.select(emails_t)) == []


# -- folder ---------------------------------------------------------------------------------------------------------


async def test_folder_export_told_twice_writes_once(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    async with running(store, transport=lambda: transport, folder=tmp_path / "out") as run:
        message = deliver(run.system, "folder", title="../../Über: <Five> ways")
        await run.tell(message)
        await run.tell(message)
        await run.tick()
        delivered = run.of(ItemDelivered)
        assert len(delivered) == 2
        assert delivered[0].receipt == "acme-logistics-11111111/blog-post-uber-five-ways-5a1f0c3e-v1.{md,html,pdf,docx}"
    folder = tmp_path / "out" / "acme-logistics-11111111"
    assert sorted(p.name for p in folder.iterdir()) == [
        "blog-post-uber-five-ways-5a1f0c3e-v1.docx",
        "blog-post-uber-five-ways-5a1f0c3e-v1.html",
        "blog-post-uber-five-ways-5a1f0c3e-v1.md",
        "blog-post-uber-five-ways-5a1f0c3e-v1.pdf",
        "manifest.json",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert list(manifest["deliveries"]) == [message.idempotency_key]
    assert (folder / "blog-post-uber-five-ways-5a1f0c3e-v1.md").read_text().startswith("# ../../Über: <Five> ways")


async def test_an_unwritable_folder_is_retried_then_delivered(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    blocker = tmp_path / "out"
    blocker.write_text("a file where the folder should be")
    async with running(store, transport=lambda: transport, folder=blocker) as run:
        message = deliver(run.system, "folder")
        await run.tell(message)
        row = await one(engine, message.idempotency_key)
        assert row["state"] == "retrying" and row["error"].startswith(("FileExistsError", "NotADirectoryError"))
        blocker.unlink()
        await run.tick()
        assert len(run.of(ItemDelivered)) == 1


# -- cancelling -----------------------------------------------------------------------------------------------------


async def test_cancel_stops_what_is_not_made_and_later_asks(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport(answer="temporary")
    async with receiving(["500"]) as receiver:
        client = CLIENT.model_copy(update={"webhook_url": receiver.url})
        async with running(store, transport=lambda: transport, folder=tmp_path) as run:
            email = deliver(run.system, "email", client=client)
            hook = deliver(run.system, "webhook", client=client)
            folder = deliver(run.system, "folder", client=client)
            for message in (email, hook, folder):
                await run.tell(message)
            await run.tell(cancel(run.system))
            await run.tell(cancel(run.system))
            assert [e.project_id for e in run.of(DeliveriesCancelled)] == [PROJECT, PROJECT]
            transport.answer = "accepted"
            await run.tick()
            await run.tick()
            late = deliver(run.system, "webhook", client=client, version=2)
            await run.tell(late)
            assert len(run.of(DeliveriesCancelled)) == 3
            await run.tell(email)
            assert len(run.of(DeliveriesCancelled)) == 4
            assert [e.method for e in run.of(ItemDelivered)] == ["folder"]  # made before the cancel
        assert len(receiver.hits) == 1
    assert transport.sent == []
    states = {r["key"]: r["state"] for r in await rows(engine, sa.select(deliveries_t))}
    assert states == {
        email.idempotency_key: "cancelled",
        hook.idempotency_key: "cancelled",
        folder.idempotency_key: "delivered",
        late.idempotency_key: "cancelled",
    }
    (mail,) = await rows(engine, sa.select(emails_t))
    assert mail["status"] == "CANCELLED"


# -- the repository -------------------------------------------------------------------------------------------------


async def test_repos_listing_and_errors(engine: AsyncEngine, tmp_path: Path) -> None:
    store, transport = DeliveryStore(engine), MemoryTransport()
    async with running(store, transport=lambda: transport, folder=tmp_path) as run:
        await run.tell(deliver(run.system, "folder"))
        await run.tell(deliver(run.system, "webhook", client=HOOKED))
    assert [r.method for r in await store.deliveries.page()] == ["webhook", "folder"]
    assert [r.method for r in await store.deliveries.page(state="failed")] == ["webhook"]
    assert len(await store.deliveries.page(project_prefix=str(PROJECT)[:6])) == 2
    assert await store.deliveries.page(project_prefix="ffff") == []
    assert await store.deliveries.client_refs(str(PROJECT)[:8]) == [str(CLIENT.client_ref)]
    with pytest.raises(DeliveryError, match="no state"):
        await store.deliveries.page(state="lost")
    with pytest.raises(DeliveryError, match="no delivery"):
        await store.deliveries.retry("nope", START)
