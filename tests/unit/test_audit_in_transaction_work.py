"""Work items, client review and delivery write a person's change and its audit row in one
transaction (`also`): `ItemsRepo.upload|assign|signoff`, `BatchesRepo.decide|revoke|protect` and
`DeliveriesRepo.retry` run `also(conn, result)` after the change, seeing it; when `also` fails,
the change is not kept; a refused change records nothing. Through the API (an upload, an
assignment, a sign-off) and the command line (those, and a decision, a revoked link, a page
password, a retry), each change is audited with it, and an audit row that cannot be written
leaves no change behind. On SQLite and PostgreSQL (the command line: SQLite)."""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cli.identity_cmd import cli_actor
from aicmo_actors.cli.main import main
from aicmo_actors.client_review.repos import Decided, NewBatch, ReviewStore
from aicmo_actors.client_review.repos import NewItem as NewReviewItem
from aicmo_actors.client_review.tables import client_review_items, client_review_links, client_review_passwords
from aicmo_actors.delivery.repos import DeliveriesRepo, DeliveryError, DeliveryRow, NewDelivery
from aicmo_actors.delivery.tables import delivery_deliveries
from aicmo_actors.identity.repos import AuditActor
from aicmo_actors.identity.tables import identity_audit
from aicmo_actors.production.repos import ItemsRepo, NewItem, ProductionError, ProductionStore, new_item_id
from aicmo_actors.production.tables import production_item_events, production_items, production_versions
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.storage.schema import upgrade
from tests.audit_support import AuditBroken, audit_rows, broken, count, post_fails
from tests.integration.test_api import NOW, Client, client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
__all__ = ["client"]

ACTOR = AuditActor("ops1", "api")
PROJECT = "0b7c1c1e-0000-4000-8000-0000000000b1"
BATCH = f"{PROJECT}:review:1"
REVIEWED = "5a1f0c3e-7b2d-4c8e-9f10-aabbccddee01"
DELIVERY = f"{REVIEWED}:v1:webhook"


async def _trail(engine: AsyncEngine) -> list[tuple[str, str, str, str | None, Any]]:
    """The whole audit trail, oldest first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(identity_audit).order_by(identity_audit.c.id))).mappings().all()
    return [(r["action"], r["actor"], r["source"], r["target"], r["detail"]) for r in rows]


async def _item(engine: AsyncEngine) -> str:
    """One planned blog post of PROJECT: its id."""
    key, topic = "blog_post:blog:1", "Pumps for plant managers"
    item_id = new_item_id(PROJECT, 1, key)
    item = {"key": key, "type": "blog_post", "channel": "blog", "piece": 1, "due": "2026-03-10", "topic": topic}
    await ProductionStore(engine).items.create(
        PROJECT,
        key=f"{PROJECT}:production",
        period=1,
        plan_version=1,
        client={
            "client_ref": "00000000-0000-0000-0000-000000000007",
            "company": "Acme",
            "contact_email": "a@acme.example",
        },
        package={"name": "growth", "delivery": ["email"]},
        brief={"business": "Pumps"},
        items=[NewItem(item_id, key, item, "blog_post", "blog", topic, date(2026, 3, 10), date(2026, 3, 3))],
        now=NOW,
    )
    return item_id


async def _state(engine: AsyncEngine, item_id: str) -> tuple[str, str, int]:
    async with engine.connect() as conn:
        query = sa.select(production_items.c.state, production_items.c.assignee, production_items.c.version)
        row = (await conn.execute(query.where(production_items.c.id == item_id))).one()
    return row.state, row.assignee, row.version


async def _awaiting_signoff(engine: AsyncEngine, item_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.update(production_items).where(production_items.c.id == item_id).values(state="signoff"))


async def _upload(repo: ItemsRepo, item_id: str, also: Any) -> int:
    return await repo.upload(
        item_id, title=None, text="Our own words.\n", html="<p>Our own words.</p>", by="ops1", now=NOW, also=also
    )


# -- production: a person's work ------------------------------------------------------------------------------------
async def test_an_upload_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    item_id = await _item(engine)
    repo = ItemsRepo(engine)

    with pytest.raises(AuditBroken):
        await _upload(repo, item_id, broken)
    # No version, and the item as it was.
    assert await count(engine, production_versions) == 0
    assert await _state(engine, item_id) == ("planned", "unassigned", 0)

    def audited(conn: Connection, version: int) -> None:
        # After the change, in its transaction: the version is there to be seen.
        written = sa.select(production_versions.c.author).where(production_versions.c.version == version)
        assert conn.execute(written).scalar_one() == "ops1"
        ACTOR.write(conn, "work.upload", item_id, {"version": version}, NOW)

    assert await _upload(repo, item_id, audited) == 1
    assert await _state(engine, item_id) == ("in_qc", "unassigned", 1)
    assert await audit_rows(engine, "work.upload") == [("ops1", "api", item_id, {"version": 1})]

    # Refused (no such item): nothing recorded.
    with pytest.raises(ProductionError, match="no work item"):
        await _upload(repo, "ffffffff-0000-4000-8000-000000000000", audited)
    assert len(await audit_rows(engine, "work.upload")) == 1


async def test_an_assignment_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    item_id = await _item(engine)
    repo = ItemsRepo(engine)
    events = await count(engine, production_item_events)

    with pytest.raises(AuditBroken):
        await repo.assign(item_id, "ann", NOW, also=broken)
    assert await _state(engine, item_id) == ("planned", "unassigned", 0)
    assert await count(engine, production_item_events) == events  # nor its history line

    def audited(conn: Connection, result: None) -> None:
        query = sa.select(production_items.c.assignee).where(production_items.c.id == item_id)
        assert conn.execute(query).scalar_one() == "ann"
        ACTOR.write(conn, "work.assign", item_id, {"user": "ann"}, NOW)

    await repo.assign(item_id, "ann", NOW, also=audited)
    assert (await _state(engine, item_id))[1] == "ann"
    assert await audit_rows(engine, "work.assign") == [("ops1", "api", item_id, {"user": "ann"})]

    with pytest.raises(ProductionError, match="no work item"):
        await repo.assign("ffffffff-0000-4000-8000-000000000000", "ann", NOW, also=audited)
    assert len(await audit_rows(engine, "work.assign")) == 1


async def test_a_signoff_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    item_id = await _item(engine)
    repo = ItemsRepo(engine)
    await _upload(repo, item_id, None)
    await _awaiting_signoff(engine, item_id)

    with pytest.raises(AuditBroken):
        await repo.signoff(item_id, "ops1", NOW, also=broken)
    assert (await _state(engine, item_id))[0] == "signoff"

    def audited(conn: Connection, version: int) -> None:
        query = sa.select(production_items.c.state).where(production_items.c.id == item_id)
        assert conn.execute(query).scalar_one() == "in_review"
        ACTOR.write(conn, "work.signoff", item_id, {"version": version}, NOW)

    assert await repo.signoff(item_id, "ops1", NOW, also=audited) == 1
    assert (await _state(engine, item_id))[0] == "in_review"
    assert await audit_rows(engine, "work.signoff") == [("ops1", "api", item_id, {"version": 1})]

    # Refused (not awaiting sign-off any more): nothing recorded.
    with pytest.raises(ProductionError, match="awaiting sign-off"):
        await repo.signoff(item_id, "ops1", NOW, also=audited)
    assert len(await audit_rows(engine, "work.signoff")) == 1


# -- client review: a person decides ---------------------------------------------------------------------------------
async def _batch(engine: AsyncEngine) -> ReviewStore:
    """PROJECT's first review batch, one item awaiting a verdict, its link live."""
    store = ReviewStore(engine)
    email = EmailMessage()
    email["To"], email["Subject"] = "ann@acme.example", "Acme: 1 piece for your review"
    email.set_content("Please review.")
    made, _ = await store.batches.create(
        NewBatch(
            batch_key=BATCH,
            project_id=PROJECT,
            client={"company": "Acme", "contact_email": "ann@acme.example", "timezone": "UTC"},
            package={"name": "growth"},
            deadline_at=NOW + timedelta(days=3),
            auto_approve_at=None,
            first_action_at=NOW + timedelta(days=1),
            link_nonce=1,
            token="t" * 43,
            link_expires_at=NOW + timedelta(days=30),
            reminders_planned=2,
            reminder_every=1,
            items=(NewReviewItem(REVIEWED, 1, "Pumps", "blog_post", "blog", "Text.", "<p>Text.</p>"),),
            email=email,
        ),
        NOW,
    )
    assert made
    return store


async def test_a_decision_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = await _batch(engine)
    awaiting = client_review_items.c.status == "awaiting"

    with pytest.raises(AuditBroken):
        await store.batches.decide(BATCH, approve=True, comment=None, item_id=None, now=NOW, also=broken)
    assert await count(engine, client_review_items, awaiting) == 1

    def audited(conn: Connection, decided: Decided) -> None:
        assert conn.execute(sa.select(client_review_items.c.status)).scalar_one() == "approved"
        ACTOR.write(conn, "review.decide", BATCH, {"verdict": "approved", "decided": decided.decided}, NOW)

    # Refused (no such batch, no such item): `also` is not called, nothing recorded.
    assert await store.batches.decide("nope", approve=True, comment=None, item_id=None, now=NOW, also=broken) is None
    unknown = await store.batches.decide(BATCH, approve=True, comment=None, item_id=PROJECT, now=NOW, also=broken)
    assert unknown is not None and unknown.unknown_item

    decided = await store.batches.decide(BATCH, approve=True, comment=None, item_id=None, now=NOW, also=audited)
    assert decided == Decided(BATCH, 1)
    assert await count(engine, client_review_items, awaiting) == 0
    assert await audit_rows(engine, "review.decide") == [("ops1", "api", BATCH, {"verdict": "approved", "decided": 1})]


async def test_a_revoked_link_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = await _batch(engine)
    live = client_review_links.c.revoked_at.is_(None)

    with pytest.raises(AuditBroken):
        await store.batches.revoke(BATCH, NOW, also=broken)
    assert await count(engine, client_review_links, live) == 1

    def audited(conn: Connection, was_live: bool) -> None:
        assert conn.execute(sa.select(sa.func.count()).select_from(client_review_links).where(live)).scalar_one() == 0
        ACTOR.write(conn, "review.revoke", BATCH, {"was_live": was_live}, NOW)

    assert await store.batches.revoke("nope", NOW, also=broken) is None  # no such batch: `also` not called
    assert await store.batches.revoke(BATCH, NOW, also=audited) is True
    assert await count(engine, client_review_links, live) == 0
    assert await audit_rows(engine, "review.revoke") == [("ops1", "api", BATCH, {"was_live": True})]


async def test_a_page_password_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    store = ReviewStore(engine)

    with pytest.raises(AuditBroken):
        await store.batches.protect(PROJECT, "argon2-hash", NOW, also=broken)
    assert await count(engine, client_review_passwords) == 0

    def audited(conn: Connection, result: None) -> None:
        assert conn.execute(sa.select(client_review_passwords.c.password_hash)).scalar_one() == "argon2-hash"
        ACTOR.write(conn, "review.protect", PROJECT, {"removed": False}, NOW)

    await store.batches.protect(PROJECT, "argon2-hash", NOW, also=audited)
    assert await count(engine, client_review_passwords) == 1
    assert await audit_rows(engine, "review.protect") == [("ops1", "api", PROJECT, {"removed": False})]


# -- delivery: a person retries ------------------------------------------------------------------------------------
async def _failed_delivery(engine: AsyncEngine) -> DeliveryRow:
    new = NewDelivery(
        key=DELIVERY,
        project_id=PROJECT,
        item_id=REVIEWED,
        version=1,
        method="webhook",
        client={"company": "Acme", "client_ref": "00000000-0000-0000-0000-000000000007"},
        title="Pumps",
        type="blog_post",
        channel="blog",
        text="Text.",
        html="<p>Text.</p>",
        refused="no webhook URL",
    )
    _, row = await DeliveriesRepo(engine).record(new, NOW)
    assert row.state == "failed"
    return row


async def test_a_retry_and_its_audit_row_are_one_transaction(engine: AsyncEngine) -> None:
    repo = DeliveriesRepo(engine)
    await _failed_delivery(engine)
    failed = (delivery_deliveries.c.state == "failed", delivery_deliveries.c.rounds == 0)

    with pytest.raises(AuditBroken):
        await repo.retry(DELIVERY, NOW, also=broken)
    assert await count(engine, delivery_deliveries, *failed) == 1

    def audited(conn: Connection, row: DeliveryRow) -> None:
        query = sa.select(delivery_deliveries.c.state).where(delivery_deliveries.c.key == DELIVERY)
        assert conn.execute(query).scalar_one() == row.state == "queued"
        ACTOR.write(conn, "delivery.retry", DELIVERY, {"round": row.rounds}, NOW)

    assert (await repo.retry(DELIVERY, NOW, also=audited)).rounds == 1
    assert await audit_rows(engine, "delivery.retry") == [("ops1", "api", DELIVERY, {"round": 1})]

    # Refused (queued, not failed): nothing recorded.
    with pytest.raises(DeliveryError, match="only a failed or unconfirmed one"):
        await repo.retry(DELIVERY, NOW, also=audited)
    assert len(await audit_rows(engine, "delivery.retry")) == 1


# -- through the API -----------------------------------------------------------------------------------------------
async def test_the_api_audits_work_with_the_change_or_keeps_neither(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = client.engine
    item_id = await _item(engine)
    draft = {"text": "# Pumps\n\nA person's own draft.", "title": "Pumps, by hand"}
    calls = ((f"/work/{item_id}/draft", draft), (f"/work/{item_id}/assign", {"user": "unassigned"}))

    # The audit row cannot be written: the request fails and no change is kept.
    def broken(self: AuditActor, *args: Any) -> int:
        raise AuditBroken("the audit row could not be written")

    await _awaiting_signoff(engine, item_id)
    with monkeypatch.context() as patched:
        patched.setattr(AuditActor, "write", broken)
        for path, body in (*calls, (f"/work/{item_id}/signoff", None)):
            await post_fails(client, path, body)
    assert await count(engine, production_versions) == 0
    assert await _state(engine, item_id) == ("signoff", "unassigned", 0)
    assert await count(engine, identity_audit, identity_audit.c.action.like("work.%")) == 0

    # As it should be: each change with its row.
    for path, body in calls:
        answer = await client.call("POST", path, "operator", json=body)
        assert answer.status_code in (200, 201), answer.text
    await _awaiting_signoff(engine, item_id)  # the upload sent it to QC; say QC passed it
    signed = await client.call("POST", f"/work/{item_id}/signoff", "operator")
    assert signed.status_code == 200 and signed.json()["version"] == 1, signed.text
    nbytes = len(draft["text"].encode())
    assert await audit_rows(engine, "work.upload") == [("operator1", "api", item_id, {"version": 1, "bytes": nbytes})]
    assert await audit_rows(engine, "work.assign") == [("operator1", "api", item_id, {"user": "unassigned"})]
    assert await audit_rows(engine, "work.signoff") == [("operator1", "api", item_id, {"version": 1})]

    # Refused (not awaiting sign-off any more): 409, and no row.
    again = await client.call("POST", f"/work/{item_id}/signoff", "operator")
    assert again.status_code == 409, again.text
    assert len(await audit_rows(engine, "work.signoff")) == 1


# -- from the command line -----------------------------------------------------------------------------------------
def test_the_command_line_audits_with_the_change_or_keeps_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [k for k in os.environ if k.upper().startswith("AICMO_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("AICMO_DATABASE_URL", url)
    (tmp_path / "draft.md").write_text("# Pumps\n\nOur own words.\n", encoding="utf-8")
    (tmp_path / "password").write_text("correct horse battery\n", encoding="utf-8")

    async def on_the_database(work: Any) -> Any:
        engine = make_engine(url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    async def made(engine: AsyncEngine) -> str:
        item_id = await _item(engine)
        await _batch(engine)
        await _failed_delivery(engine)
        await _awaiting_signoff(engine, item_id)
        return item_id

    async def changes(engine: AsyncEngine) -> dict[str, Any]:
        return {
            "item": await _state(engine, item_id),
            "versions": await count(engine, production_versions),
            "awaiting": await count(engine, client_review_items, client_review_items.c.status == "awaiting"),
            "live links": await count(engine, client_review_links, client_review_links.c.revoked_at.is_(None)),
            "passwords": await count(engine, client_review_passwords),
            "retried": await count(engine, delivery_deliveries, delivery_deliveries.c.rounds > 0),
        }

    asyncio.run(upgrade(url))
    item_id = asyncio.run(on_the_database(made))
    before = asyncio.run(on_the_database(changes))
    commands = [
        ("work", "upload", item_id[:8], "draft.md"),
        ("work", "assign", item_id[:8], "unassigned"),
        ("work", "signoff", item_id[:8]),
        ("review", "decide", BATCH, "--approve"),
        ("review", "revoke", BATCH),
        ("review", "protect", PROJECT, "--password-file", "password"),
        ("delivery", "retry", DELIVERY),
    ]

    # The audit row cannot be written: each command fails and no change is kept.
    def broken(self: AuditActor, *args: Any) -> int:
        raise AuditBroken("the audit row could not be written")

    with monkeypatch.context() as patched:
        patched.setattr(AuditActor, "write", broken)
        for command in commands:
            with pytest.raises(AuditBroken):
                main(list(command))
    assert asyncio.run(on_the_database(changes)) == before
    assert asyncio.run(on_the_database(_trail)) == []

    # As it should be: each change with its row (the upload sends the item to QC: say QC passed it).
    for command in commands:
        if command[1] == "signoff":
            asyncio.run(on_the_database(lambda engine: _awaiting_signoff(engine, item_id)))
        assert main(list(command)) == 0, capsys.readouterr().err
    after = asyncio.run(on_the_database(changes))
    assert after == {
        "item": ("in_review", "unassigned", 1),
        "versions": 1,
        "awaiting": 0,
        "live links": 0,
        "passwords": 1,
        "retried": 1,
    }
    who = cli_actor().name
    nbytes = len((tmp_path / "draft.md").read_bytes())
    assert asyncio.run(on_the_database(_trail)) == [
        ("work.upload", who, "cli", item_id, {"version": 1, "bytes": nbytes}),
        ("work.assign", who, "cli", item_id, {"user": "unassigned"}),
        ("work.signoff", who, "cli", item_id, {"version": 1}),
        ("review.decide", who, "cli", BATCH, {"verdict": "approved", "item": None, "decided": 1}),
        ("review.revoke", who, "cli", BATCH, {"was_live": True}),
        ("review.protect", who, "cli", PROJECT, {"removed": False}),
        ("delivery.retry", who, "cli", DELIVERY, {"round": 1}),
    ]
