"""Inbound mail (`cam_inbound_emails`, `cam_mailbox_cursors`): every message fetched,
stored once, classified, tied to what we sent, and acted on once.

A row moves from stored to classified (`processed_at`) to acted on (`acted_at`). Acting is
one transaction (`act`): the outcome on the email it is tied to, the lead's decision, the
suppression, colleagues stopped, the alert to deliver, and `acted_at`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import tables as cam_tables
from aicmo_actors.cam import texts
from aicmo_actors.cam.lead_rules import (
    ALERT_CATEGORIES,
    DEFAULT_RULES,
    LeadDecision,
    LeadRules,
    LeadView,
    decide_reply,
)
from aicmo_actors.cam.repos.alerts import insert_alert
from aicmo_actors.cam.repos.leads import apply_decision_in, campaign_id_in, evidence, stop_colleagues_in
from aicmo_actors.cam.repos.outbox import stronger_bounce, stronger_bounce_reason
from aicmo_actors.cam.repos.records import RecordError, jsonable, one_of, page_size, relabel_note
from aicmo_actors.cam.repos.sql import aware, normalise_address, stable_hash
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_mailbox_cursors as cursors_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.gateways.inbox_source import FetchedMessage, header_block
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.sql import chunks
from aicmo_actors.storage.work import Also, run_read, run_write, with_also
from contracts.cam import BounceReason, Classification, LeadState, ReplyCategory


@dataclass(frozen=True)
class Match:
    lead_id: int
    campaign: str
    outbound_id: int | None


@dataclass(frozen=True)
class Acted:
    """What acting on one classified inbound message did (see `InboundRepo.act`)."""

    inbound_id: int
    lead_id: int | None
    campaign: str | None
    outbound_id: int | None
    mailbox: str | None
    category: ReplyCategory
    outcome: str | None
    sending_side: bool
    change: tuple[LeadState, LeadState] | None
    cause: str
    alert_ids: tuple[int, ...] = ()
    stopped_colleagues: int = 0
    #: Tied to its lead only by a guess (`WEAK_MATCHES`): nothing was changed for it.
    weak: bool = False


#: Ties to an email we sent that a stranger cannot make up: our Message-ID (threading, or
#: quoted inside a report), our signed per-message return path, our signed token.
STRONG_MATCHES = frozenset({"message_id", "report", "return_path", "token"})
#: Everything else is a guess (the sender's address, a recipient named in a report): it
#: changes nothing by itself and is shown with the unmatched mail.
WEAK_MATCHES = frozenset({"sender", "report_recipient"})
#: Categories a human wants to see even when the match is only a guess.
WORTH_A_LOOK = frozenset(
    {
        ReplyCategory.INTERESTED,
        ReplyCategory.MEETING_REQUEST,
        ReplyCategory.QUESTION,
        ReplyCategory.REFERRAL,
        ReplyCategory.UNSUBSCRIBE,
        ReplyCategory.COMPLAINT,
    }
)
#: Makes an alert's (summary, text) from the stored raw message, its sender and category.
AlertText = Callable[[bytes, str | None, str], tuple[str, str]]


def _acting_columns() -> tuple[sa.ColumnElement[Any], ...]:
    """What acting on a message reads of it (`_act`): by the follow-up and by a relabel."""
    c = inbound_t.c
    return (c.id, c.classification, c.lead_id, c.outbound_id, c.matched_by, c.raw, c.from_address, c.category)


def _passing(exc: Exception) -> bool:
    """Whether a database error says the database failed (gone, locked, a commit that did not
    go through), not that it refuses the one row it was given."""
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or bool(
        getattr(exc, "connection_invalidated", False)
    )


class InboundRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def cursor(self, inbox: str) -> tuple[int, int] | None:
        query = sa.select(cursors_t.c.uidvalidity, cursors_t.c.last_uid).where(cursors_t.c.mailbox == inbox)
        row = await run_read(self.engine, lambda conn: conn.execute(query).first())
        return None if row is None else (int(row[0]), int(row[1]))

    async def store(self, inbox: str, uidvalidity: int, batch: Sequence[FetchedMessage], now: datetime) -> list[int]:
        """Store each message once and move the cursor, in one transaction. Returns new row ids, ascending.

        A message whose Message-ID this inbox already holds (the same message under a new
        UIDVALIDITY, or delivered twice, in this batch too) is not stored again. One query
        finds the known ids of the whole batch and one multi-row insert stores the rest.
        Every value taken from the message is made to fit its column first (an over-long
        Message-ID is stored as a hash of itself, an over-long address not at all); if the
        database still refuses the batch, each message is stored on its own, and one it
        refuses even so is kept as a stub marked "set aside", so the mail behind it is read.
        A failure of the database itself while storing one on its own (`OperationalError`:
        a failed commit, a lost connection, a lock) is raised with the cursor before that
        message: it is fetched again, never replaced by a stub.
        """
        rows = [_inbound_row(inbox, uidvalidity, m, now) for m in batch]
        last_uid = max((m.uid for m in batch), default=0)
        try:
            return await run_write(self.engine, lambda conn: _store_rows(conn, inbox, uidvalidity, rows, last_uid, now))
        except (sa.exc.DBAPIError, sa.exc.StatementError):
            pass  # one of them is refused: find which, below
        ids: list[int] = []

        def one(row: dict[str, Any]) -> Callable[[Connection], list[int]]:
            return lambda conn: _store_rows(conn, inbox, uidvalidity, [row], int(row["uid"]), now)

        for row in rows:
            try:
                ids += await run_write(self.engine, one(row))
            except (sa.exc.DBAPIError, sa.exc.StatementError) as exc:
                if _passing(exc):
                    # The database failed, not this message (a commit that failed, a lost
                    # connection, a lock): the cursor stays before it and the next poll
                    # fetches it again. A stub here would lose a storable message for good.
                    raise
                ids += await run_write(self.engine, one(_stub_row(row, f"could not be stored: {type(exc).__name__}")))
        await run_write(self.engine, lambda conn: _move_cursor(conn, inbox, uidvalidity, last_uid, now))
        return sorted(ids)

    async def unclassified(self) -> list[tuple[int, str]]:
        query = (
            sa.select(inbound_t.c.id, inbound_t.c.mailbox)
            .where(inbound_t.c.processed_at.is_(None))
            .order_by(inbound_t.c.id)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return [(int(r[0]), r[1]) for r in rows]

    async def unclassified_raw(self, from_id: int, limit: int) -> list[tuple[int, str, bytes]]:
        """(id, mailbox, raw) of up to `limit` unclassified messages with id >= `from_id`, ascending."""
        query = (
            sa.select(inbound_t.c.id, inbound_t.c.mailbox, inbound_t.c.raw)
            .where(inbound_t.c.id >= from_id, inbound_t.c.processed_at.is_(None))
            .order_by(inbound_t.c.id)
            .limit(limit)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return [(int(r[0]), r[1], bytes(r[2])) for r in rows]

    async def raw(self, inbound_id: int) -> bytes | None:
        query = sa.select(inbound_t.c.raw).where(inbound_t.c.id == inbound_id)
        raw = await run_read(self.engine, lambda conn: conn.execute(query).scalar_one_or_none())
        return bytes(raw) if raw is not None else None

    async def match_by_message_ids(self, ids: Sequence[str]) -> Match | None:
        return (await self.matches_by_message_ids([ids]))[0]

    async def matches_by_message_ids(self, id_lists: Sequence[Sequence[str]]) -> list[Match | None]:
        """For each list of Message-IDs, what we sent under the first one of ours (most specific first)."""
        wanted = list(dict.fromkeys(i for ids in id_lists for i in ids))

        def work(conn: Connection) -> dict[str, Any]:
            rows: dict[str, Any] = {}
            for chunk in chunks(wanted):
                query = (
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id, outbound_t.c.message_id, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
                    .where(outbound_t.c.message_id.in_(chunk))
                )
                rows.update((r.message_id, r) for r in conn.execute(query))
            return rows

        rows = await run_read(self.engine, work) if wanted else {}
        found: list[Match | None] = []
        for ids in id_lists:
            r = next((rows[i] for i in ids if i in rows), None)
            found.append(None if r is None else Match(int(r.lead_id), r.name, int(r.id)))
        return found

    async def matches_by_outbound_ids(self, ids: Sequence[int]) -> dict[int, Match]:
        """The emails with these ids (a verified return-path token names one)."""
        wanted = sorted(set(ids))

        def work(conn: Connection) -> dict[int, Match]:
            found: dict[int, Match] = {}
            for chunk in chunks(wanted):
                query = (
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
                    .where(outbound_t.c.id.in_(chunk))
                )
                found.update((int(r.id), Match(int(r.lead_id), r.name, int(r.id))) for r in conn.execute(query))
            return found

        return await run_read(self.engine, work) if wanted else {}

    async def matches_by_lead(self, lead_ids: Sequence[int]) -> dict[int, Match]:
        """For each lead (a verified unsubscribe token names one), the latest email sent to
        it (None as `outbound_id` when nothing was sent yet)."""
        wanted = sorted(set(lead_ids))

        def work(conn: Connection) -> dict[int, Match]:
            found: dict[int, Match] = {}
            for chunk in chunks(wanted):
                leads = conn.execute(
                    sa.select(leads_t.c.id, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                    .where(leads_t.c.id.in_(chunk))
                ).all()
                for lead in leads:
                    found[int(lead.id)] = Match(int(lead.id), lead.name, None)
                sent = conn.execute(
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id)
                    .where(outbound_t.c.lead_id.in_(chunk), outbound_t.c.sent_at.is_not(None))
                    .order_by(outbound_t.c.sent_at, outbound_t.c.id)
                )
                for r in sent:  # the latest wins
                    match = found.get(int(r.lead_id))
                    if match is not None:
                        found[int(r.lead_id)] = Match(match.lead_id, match.campaign, int(r.id))
            return found

        return await run_read(self.engine, work) if wanted else {}

    async def match_by_recipient(self, address: str) -> Match | None:
        return (await self.matches_by_recipient([address])).get(address)

    async def matches_by_recipient(self, addresses: Sequence[str]) -> dict[str, Match]:
        """For each address we wrote to, the latest email sent there (keyed by the address as given)."""
        by_normal: dict[str, list[str]] = {}
        for address in addresses:
            by_normal.setdefault(normalise_address(address), []).append(address)
        normals = list(by_normal)

        def work(conn: Connection) -> dict[str, Match]:
            latest: dict[str, Match] = {}
            for chunk in chunks(normals):
                query = (
                    sa.select(outbound_t.c.id, outbound_t.c.lead_id, outbound_t.c.recipient, campaigns_t.c.name)
                    .join(campaigns_t, campaigns_t.c.id == outbound_t.c.campaign_id)
                    .where(outbound_t.c.recipient.in_(chunk), outbound_t.c.sent_at.is_not(None))
                    .order_by(outbound_t.c.sent_at.desc(), outbound_t.c.id.desc())
                )
                for r in conn.execute(query):
                    latest.setdefault(r.recipient, Match(int(r.lead_id), r.name, int(r.id)))
            return latest

        latest = await run_read(self.engine, work) if normals else {}
        return {address: latest[normal] for normal, given in by_normal.items() if normal in latest for address in given}

    async def save_classification(
        self, inbound_id: int, c: Classification, match: Match | None, matched_by: str | None, now: datetime
    ) -> bool:
        """Record how a message was read; False (and nothing changed) if it already was."""
        return bool(await self.save_classifications([(inbound_id, c, match, matched_by)], now))

    async def save_classifications(
        self, results: Sequence[tuple[int, Classification, Match | None, str | None]], now: datetime
    ) -> list[int]:
        """Record several classifications in one transaction; returns the ids that were still unclassified.

        A message classified already (handed on twice, say after a restart) is left as it was,
        so whoever acts on the result acts once.
        """
        if not results:
            return []
        ids = [r[0] for r in results]

        def work(conn: Connection) -> list[int]:
            pending: set[int] = set()
            for chunk in chunks(ids):
                query = (
                    sa.select(inbound_t.c.id)
                    .where(inbound_t.c.id.in_(chunk), inbound_t.c.processed_at.is_(None))
                    .with_for_update()
                )
                pending.update(int(i) for i in conn.execute(query).scalars())
            params: list[dict[str, Any]] = []
            for inbound_id, c, match, matched_by in results:
                if inbound_id not in pending:
                    continue
                pending.discard(inbound_id)  # the first result of a message given twice wins
                params.append(
                    {
                        "b_id": inbound_id,
                        "b_category": c.category.value,
                        "b_reason": c.reason[:64] if c.reason else None,  # the column's size; the JSON keeps it whole
                        "b_confidence": c.confidence,
                        "b_classification": json.loads(c.model_dump_json()),
                        "b_lead_id": match.lead_id if match else None,
                        "b_outbound_id": match.outbound_id if match else None,
                        "b_matched_by": matched_by,
                        "b_set_aside": c.limited[:200] if c.limited else None,
                    }
                )
            if params:
                columns = inbound_t.c
                conn.execute(
                    inbound_t.update()
                    .where(columns.id == sa.bindparam("b_id"), columns.processed_at.is_(None))
                    .values(
                        category=sa.bindparam("b_category", type_=columns.category.type),
                        reason=sa.bindparam("b_reason", type_=columns.reason.type),
                        confidence=sa.bindparam("b_confidence", type_=columns.confidence.type),
                        classification=sa.bindparam("b_classification", type_=columns.classification.type),
                        lead_id=sa.bindparam("b_lead_id", type_=columns.lead_id.type),
                        outbound_id=sa.bindparam("b_outbound_id", type_=columns.outbound_id.type),
                        matched_by=sa.bindparam("b_matched_by", type_=columns.matched_by.type),
                        set_aside=sa.func.coalesce(
                            columns.set_aside, sa.bindparam("b_set_aside", type_=columns.set_aside.type)
                        ),
                        processed_at=now,
                    ),
                    params,
                )
            return [p["b_id"] for p in params]

        return await run_write(self.engine, work)

    async def offered(self, inbound_id: int) -> Any | None:
        """What an unmatched message offers the modules after the deal (`UnmatchedReply`): its
        headers as the classifier read them, the raw bytes and when it came."""
        t = inbound_t.c
        query = sa.select(t.id, t.raw, t.classification, t.received_at, t.stored_at).where(t.id == inbound_id)
        return await run_read(self.engine, lambda conn: conn.execute(query).first())

    async def unmatched(self, limit: int) -> list[dict[str, Any]]:
        """Inbound mail tied to nothing we sent, or only by a guess (the sender's address, a
        recipient named in a report): kept, never dropped, for a person to look at."""
        query = (
            sa.select(
                inbound_t.c.id,
                inbound_t.c.mailbox,
                inbound_t.c.from_address,
                inbound_t.c.subject,
                inbound_t.c.category,
                inbound_t.c.received_at,
                inbound_t.c.message_id,
                inbound_t.c.matched_by,
                inbound_t.c.lead_id,
                inbound_t.c.set_aside,
            )
            .where(
                inbound_t.c.processed_at.is_not(None),
                sa.or_(inbound_t.c.lead_id.is_(None), inbound_t.c.matched_by.in_(sorted(WEAK_MATCHES))),
            )
            .order_by(inbound_t.c.id.desc())
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    async def set_aside(self, limit: int) -> list[dict[str, Any]]:
        """Inbound mail that was not read in full (too large, too complex, too slow to read,
        a header that could not be stored), newest first."""
        query = (
            sa.select(
                inbound_t.c.id,
                inbound_t.c.mailbox,
                inbound_t.c.from_address,
                inbound_t.c.subject,
                inbound_t.c.received_at,
                inbound_t.c.size,
                inbound_t.c.set_aside,
                inbound_t.c.category,
            )
            .where(inbound_t.c.set_aside.is_not(None))
            .order_by(inbound_t.c.id.desc())
            .limit(limit)
        )
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    async def classified_not_acted(self, after: int, limit: int) -> list[int]:
        """Ids of classified messages not acted on yet (above `after`, ascending): the
        follow-up's work left by a crash between the classifier's commit and its own."""
        query = (
            sa.select(inbound_t.c.id)
            .where(inbound_t.c.processed_at.is_not(None), inbound_t.c.acted_at.is_(None), inbound_t.c.id > after)
            .order_by(inbound_t.c.id)
            .limit(limit)
        )
        found = await self.kept.read(
            ("classified_not_acted", after, limit), lambda conn: tuple(int(i) for i in conn.execute(query).scalars())
        )
        return list(found)

    async def act(
        self,
        inbound_id: int,
        now: datetime,
        *,
        alert_text: AlertText,
        rules: LeadRules = DEFAULT_RULES,
        shared_domains: Iterable[str] = (),
    ) -> Acted | None:
        """Act on one classified message, once, in one transaction: the outcome on the email
        it is tied to (a delay, a bounce, a complaint: once per email), the lead's decision,
        the suppression, colleagues stopped, the alert to deliver, and `acted_at`.

        Only a strong tie (`STRONG_MATCHES`) acts on a lead; a guess only raises an alert for
        what a person should see. None: not classified yet, or acted on already.
        """
        shared = frozenset(shared_domains)

        def work(conn: Connection) -> Acted | None:
            row = conn.execute(
                sa.select(*_acting_columns())
                .where(
                    inbound_t.c.id == inbound_id, inbound_t.c.processed_at.is_not(None), inbound_t.c.acted_at.is_(None)
                )
                .with_for_update()
            ).first()
            if row is None:
                return None
            c = Classification.model_validate(row.classification)
            acted = _act(conn, row, c, now, alert_text, rules, shared)
            conn.execute(inbound_t.update().where(inbound_t.c.id == inbound_id).values(acted_at=now))
            return acted

        return await run_write(self.engine, work)

    # -- reading and operator actions (the command line and the HTTP API) ------------------------

    async def replies(
        self,
        *,
        category: str | None = None,
        campaign: str | None = None,
        handled: bool | None = None,
        matched: bool | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """One page of inbound mail by id ascending (keyset on `after_id`), each `REPLY_FIELDS`.

        Filters: the category; the campaign of the lead it is tied to; `handled` True for the
        messages acted on (`acted_at` set: the lead's decision, suppression and alert are
        written), False for those not (yet); `matched` True for the ones tied to an email we
        sent (`STRONG_MATCHES`), False for the rest (what `inbox unmatched` lists: tied to
        nothing, or only by a guess; not classified yet is neither). An unknown category or
        campaign is a `RecordError`."""
        size = page_size(limit)
        if category is not None:
            one_of("category", category, [c.value for c in ReplyCategory])

        def work(conn: Connection) -> list[dict[str, Any]]:
            query = sa.select(*_REPLY_COLUMNS).select_from(
                inbound_t.outerjoin(leads_t, leads_t.c.id == inbound_t.c.lead_id).outerjoin(
                    campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id
                )
            )
            if category is not None:
                query = query.where(inbound_t.c.category == category)
            if campaign is not None:
                query = query.where(leads_t.c.campaign_id == campaign_id_in(conn, campaign))
            if handled is not None:
                query = query.where(inbound_t.c.acted_at.is_not(None) if handled else inbound_t.c.acted_at.is_(None))
            if matched is True:
                query = query.where(
                    inbound_t.c.lead_id.is_not(None), inbound_t.c.matched_by.in_(sorted(STRONG_MATCHES))
                )
            elif matched is False:
                query = query.where(
                    inbound_t.c.processed_at.is_not(None),
                    sa.or_(inbound_t.c.lead_id.is_(None), inbound_t.c.matched_by.in_(sorted(WEAK_MATCHES))),
                )
            if after_id is not None:
                query = query.where(inbound_t.c.id > after_id)
            rows = conn.execute(query.order_by(inbound_t.c.id).limit(size)).mappings()
            return [_reply(dict(r)) for r in rows]

        return await run_read(self.engine, work)

    async def unmatched_page(self, *, after_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """What `inbox unmatched` lists (mail tied to nothing we sent, or only by a guess), as
        pages by id ascending: `replies(matched=False, ...)`."""
        return await self.replies(matched=False, after_id=after_id, limit=limit)

    async def reply(self, inbound_id: int) -> dict[str, Any] | None:
        """One inbound message as `REPLY_FIELDS`; None: there is none with this id."""

        def work(conn: Connection) -> dict[str, Any] | None:
            query = (
                sa.select(*_REPLY_COLUMNS)
                .select_from(
                    inbound_t.outerjoin(leads_t, leads_t.c.id == inbound_t.c.lead_id).outerjoin(
                        campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id
                    )
                )
                .where(inbound_t.c.id == inbound_id)
            )
            row = conn.execute(query).mappings().first()
            return _reply(dict(row)) if row is not None else None

        return await run_read(self.engine, work)

    async def relabel(
        self,
        inbound_id: int,
        category: str,
        *,
        by: str,
        now: datetime,
        alert_text: AlertText | None = None,
        rules: LeadRules = DEFAULT_RULES,
        shared_domains: Iterable[str] | None = None,
        also: Also[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A person labels a message by hand, in one transaction: its classification becomes
        `category` (confidence 1; the classifier's evidence kept, with a line saying who changed
        it from what, `records.relabel_note`) and its lead moves exactly as acting on that
        label moves it (`act`: the outcome on the email, the lead rules' decision, suppression,
        colleagues stopped, the alert).

        Acted on already under another label, the new label's decision goes on top of what
        the first one did: what the lead state machine allows (auto-reply -> interested moves
        a paused lead to replied and raises the interested alert; -> unsubscribe suppresses
        the address). Nothing is undone: a suppression, a bounce on the email, a state with no
        way back stay. As with the classifier's label, a message tied to its lead only by a
        guess changes no lead (at most an alert). Not acted on yet, it is acted on under the
        new label only.

        `alert_text`, `shared_domains`: as for `act` (default: the follow-up's). Returns
        `RELABEL_FIELDS`; `also(conn, result)` runs in the same transaction (also when the label
        was the same). An unknown id or category, or a message not classified yet, is a
        `RecordError`.
        """
        new = ReplyCategory(one_of("category", category, [c.value for c in ReplyCategory]))
        if alert_text is None or shared_domains is None:
            # The follow-up's own wording and free-mail domains, so a person's label acts as the
            # classifier's would (imported here: the follow-up imports this module).
            from aicmo_actors.cam import followup

            alert_text = alert_text or followup.alert_text
            shared_domains = followup.SHARED_DOMAINS if shared_domains is None else shared_domains
        text, shared = alert_text, frozenset(shared_domains)

        def work(conn: Connection) -> dict[str, Any]:
            row = conn.execute(
                sa.select(*_acting_columns(), inbound_t.c.processed_at, inbound_t.c.acted_at)
                .where(inbound_t.c.id == inbound_id)
                .with_for_update()
            ).first()
            if row is None:
                raise RecordError(f"no inbound message #{inbound_id}")
            if row.processed_at is None or row.classification is None:
                raise RecordError(f"inbound message #{inbound_id} is not classified yet: label it once it is read")
            old = Classification.model_validate(row.classification)
            lead_id = int(row.lead_id) if row.lead_id is not None else None
            before = _lead_now(conn, lead_id)
            result: dict[str, Any] = {
                "inbound_id": inbound_id,
                "category": new.value,
                "previous_category": old.category.value,
                "by": by,
                "relabelled": old.category is not new,
                "lead_id": lead_id,
                "campaign": None,
                "matched_by": row.matched_by,
                "cause": f"already labelled {new.value}: nothing changed",
                "outcome": None,
                "lead_before": before,
                "lead_after": before,
                "alert_ids": [],
                "stopped_colleagues": 0,
            }
            if old.category is new:
                return result
            c = relabelled(old, new, by, now)
            conn.execute(
                inbound_t.update()
                .where(inbound_t.c.id == inbound_id)
                .values(
                    category=c.category.value,
                    reason=c.reason[:64] if c.reason else None,
                    confidence=c.confidence,
                    classification=json.loads(c.model_dump_json()),
                    acted_at=sa.func.coalesce(inbound_t.c.acted_at, now),
                )
            )
            acted = _act(conn, row, c, now, text, rules, shared)
            return result | {
                "campaign": acted.campaign,
                "cause": acted.cause,
                "outcome": acted.outcome,
                "lead_after": _lead_now(conn, lead_id),
                "alert_ids": list(acted.alert_ids),
                "stopped_colleagues": acted.stopped_colleagues,
            }

        return await run_write(self.engine, with_also(work, also))

    # -- the web inbox ---------------------------------------------------------------------------

    async def inbox(
        self,
        *,
        category: str | None = None,
        campaign: str | None = None,
        mailbox: str | None = None,
        unhandled: bool = False,
        after: InboxKey | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """One page of the unified inbox, each `INBOX_FIELDS`: the replies a person should
        answer first (`HOT`: interested, meeting request, question, referral), then the rest,
        each group newest first (received, else stored), by id last.

        Keyset: the next page starts `after` the last row's `inbox_key`. Filters: the category;
        the campaign of the lead it is tied to; the mailbox it was read from; `unhandled`, only
        those nobody marked handled (`mark_handled`). An unknown category or campaign is a
        `RecordError`."""
        size = page_size(limit)
        if category is not None:
            one_of("category", category, [c.value for c in ReplyCategory])

        def work(conn: Connection) -> list[dict[str, Any]]:
            query = _inbox_query()
            if category is not None:
                query = query.where(inbound_t.c.category == category)
            if campaign is not None:
                query = query.where(leads_t.c.campaign_id == campaign_id_in(conn, campaign))
            if mailbox is not None:
                query = query.where(inbound_t.c.mailbox == mailbox)
            if unhandled:
                query = query.where(inbound_t.c.handled_at.is_(None))
            if after is not None:
                hot, at, last_id = after
                at_value = sa.literal(at, type_=inbound_t.c.stored_at.type)
                query = query.where(
                    sa.or_(
                        _HOT_RANK < int(hot),
                        sa.and_(
                            _HOT_RANK == int(hot),
                            sa.or_(_ARRIVED < at_value, sa.and_(_ARRIVED == at_value, inbound_t.c.id < last_id)),
                        ),
                    )
                )
            query = query.order_by(_HOT_RANK.desc(), _ARRIVED.desc(), inbound_t.c.id.desc()).limit(size)
            return [_inbox_row(dict(r)) for r in conn.execute(query).mappings()]

        return await run_read(self.engine, work)

    async def inbox_item(self, inbound_id: int) -> dict[str, Any] | None:
        """One message of the inbox as `INBOX_FIELDS`; None: there is none with this id."""
        query = _inbox_query().where(inbound_t.c.id == inbound_id)
        row = await run_read(self.engine, lambda conn: conn.execute(query).mappings().first())
        return _inbox_row(dict(row)) if row is not None else None

    async def mailboxes(self) -> list[str]:
        """The names of the mailboxes mail was read from, sorted (the inbox's mailbox filter)."""
        query = sa.select(inbound_t.c.mailbox).distinct().order_by(inbound_t.c.mailbox)
        return await run_read(self.engine, lambda conn: [str(m) for m in conn.execute(query).scalars()])

    async def mark_handled(self, inbound_id: int, by: str, now: datetime, *, also: Also[bool] | None = None) -> bool:
        """A person marks a message handled (`handled_at`, `handled_by`). True: marked now;
        False: no such message, or marked already (the first mark stands). `also(conn, result)`
        runs in the same transaction."""
        statement = (
            inbound_t.update()
            .where(inbound_t.c.id == inbound_id, inbound_t.c.handled_at.is_(None))
            .values(handled_at=now, handled_by=by[:200])
        )
        return await run_write(self.engine, with_also(lambda conn: conn.execute(statement).rowcount == 1, also))


#: What `InboundRepo.replies` returns for each message.
REPLY_FIELDS = (
    "id",
    "mailbox",
    "from_address",
    "subject",
    "message_id",
    "category",
    "reason",
    "reasons",
    "confidence",
    "lead_id",
    "lead_email",
    "campaign",
    "outbound_id",
    "matched_by",
    "received_at",
    "processed_at",
    "acted_at",
    "set_aside",
)
#: What `InboundRepo.relabel` returns; "lead_before" and "lead_after" are `LEAD_NOW_FIELDS` (or None).
RELABEL_FIELDS = (
    "inbound_id",
    "category",
    "previous_category",
    "by",
    "relabelled",
    "lead_id",
    "campaign",
    "matched_by",
    "cause",
    "outcome",
    "lead_before",
    "lead_after",
    "alert_ids",
    "stopped_colleagues",
)
LEAD_NOW_FIELDS = ("email", "state", "state_reason", "next_action_at", "suppressed")

_REPLY_COLUMNS = (
    inbound_t.c.id,
    inbound_t.c.mailbox,
    inbound_t.c.from_address,
    inbound_t.c.subject,
    inbound_t.c.message_id,
    inbound_t.c.category,
    inbound_t.c.reason,
    inbound_t.c.classification,
    inbound_t.c.confidence,
    inbound_t.c.lead_id,
    leads_t.c.email.label("lead_email"),
    campaigns_t.c.name.label("campaign"),
    inbound_t.c.outbound_id,
    inbound_t.c.matched_by,
    inbound_t.c.received_at,
    inbound_t.c.processed_at,
    inbound_t.c.acted_at,
    inbound_t.c.set_aside,
)


def _reply(row: dict[str, Any]) -> dict[str, Any]:
    row["reasons"] = evidence(row.pop("classification"))
    return jsonable({name: row[name] for name in REPLY_FIELDS})


#: The replies a person should answer first: someone wants something (the categories that
#: raise an alert to a person).
HOT = ALERT_CATEGORIES
#: The inbox's key (`InboundRepo.inbox`): hot or not, when it arrived, its id.
InboxKey = tuple[bool, datetime, int]
#: What `InboundRepo.inbox` returns for each message: `REPLY_FIELDS`, whether it is `HOT`,
#: when it arrived (received, else stored), who marked it handled and when.
INBOX_FIELDS = (*REPLY_FIELDS, "hot", "arrived_at", "handled_at", "handled_by")
_HOT_RANK = sa.case((inbound_t.c.category.in_(sorted(c.value for c in HOT)), 1), else_=0)
_ARRIVED = sa.func.coalesce(inbound_t.c.received_at, inbound_t.c.stored_at, type_=inbound_t.c.stored_at.type)


def _inbox_query() -> sa.Select[Any]:
    return sa.select(
        *_REPLY_COLUMNS,
        _HOT_RANK.label("hot"),
        _ARRIVED.label("arrived_at"),
        inbound_t.c.handled_at,
        inbound_t.c.handled_by,
    ).select_from(
        inbound_t.outerjoin(leads_t, leads_t.c.id == inbound_t.c.lead_id).outerjoin(
            campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id
        )
    )


def _inbox_row(row: dict[str, Any]) -> dict[str, Any]:
    row["reasons"] = evidence(row.pop("classification"))
    row["hot"] = bool(row["hot"])
    return jsonable({name: row[name] for name in INBOX_FIELDS})


def inbox_key(row: dict[str, Any]) -> InboxKey:
    """Where the inbox's next page starts after `row` (one of `InboundRepo.inbox`'s)."""
    return (bool(row["hot"]), datetime.fromisoformat(row["arrived_at"]), int(row["id"]))


def _lead_now(conn: Connection, lead_id: int | None) -> dict[str, Any] | None:
    """A lead's state as `relabel` reports it before and after: `LEAD_NOW_FIELDS`."""
    if lead_id is None:
        return None
    lead = conn.execute(
        sa.select(leads_t.c.email, leads_t.c.state, leads_t.c.state_reason, leads_t.c.next_action_at).where(
            leads_t.c.id == lead_id
        )
    ).first()
    if lead is None:
        return None
    suppressed = conn.execute(sa.select(suppressions_t.c.id).where(suppressions_t.c.address == lead.email)).first()
    return jsonable(
        {
            "email": lead.email,
            "state": lead.state,
            "state_reason": lead.state_reason,
            "next_action_at": lead.next_action_at,
            "suppressed": suppressed is not None,
        }
    )


_BOUNCES = frozenset({ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT})


def relabelled(old: Classification, new: ReplyCategory, by: str, now: datetime) -> Classification:
    """The classification a person's label gives a message: `new`, certain (confidence 1),
    the classifier's evidence kept with a line that says who changed it from what.

    A bounce keeps its reason (and whether it was about our sending) only from another bounce;
    otherwise its reason is "undefined", as for a report that does not say. An auto-reply keeps
    no return date it did not have (the lead waits the default pause). Any other label's
    reason is "relabelled", never one the rules read as a machine notice."""
    if new in _BOUNCES:
        from_bounce = old.category in _BOUNCES
        reason = old.reason if from_bounce and old.reason else BounceReason.UNDEFINED.value
        sending_side = old.sending_side and from_bounce
    else:
        reason, sending_side = "relabelled", False
    return old.model_copy(
        update={
            "category": new,
            "reason": reason,
            "confidence": 1.0,
            "reasons": (*old.reasons, relabel_note(by, old.category.value, new.value, now)),
            "sending_side": sending_side,
            "return_date": old.return_date if new is ReplyCategory.AUTO_REPLY else None,
        }
    )


def _store_rows(
    conn: Connection, inbox: str, uidvalidity: int, rows: list[dict[str, Any]], last_uid: int, now: datetime
) -> list[int]:
    message_ids = list(dict.fromkeys(r["message_id"] for r in rows if r["message_id"]))
    seen: set[str] = set()
    for chunk in chunks(message_ids):
        found = conn.execute(
            sa.select(inbound_t.c.message_id).where(inbound_t.c.mailbox == inbox, inbound_t.c.message_id.in_(chunk))
        )
        seen.update(found.scalars())
    fresh: list[dict[str, Any]] = []
    for row in rows:
        message_id = row["message_id"]
        if message_id:
            if message_id in seen:
                continue
            seen.add(message_id)
        fresh.append(row)
    inserted = insert_ignore_in(conn, inbound_t, fresh, conflict_columns=["mailbox", "uidvalidity", "uid"])
    _move_cursor(conn, inbox, uidvalidity, last_uid, now)
    # Rows are inserted in UID order, so ascending ids are UID order too.
    return sorted(int(r[0]) for r in inserted)


def _move_cursor(conn: Connection, inbox: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
    moved = conn.execute(
        cursors_t.update()
        .where(cursors_t.c.mailbox == inbox)
        .values(uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
    )
    if moved.rowcount == 0:
        conn.execute(
            cursors_t.insert().values(mailbox=inbox, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now)
        )


def _act(
    conn: Connection,
    row: Any,
    c: Classification,
    now: datetime,
    alert_text: AlertText,
    rules: LeadRules,
    shared: frozenset[str],
) -> Acted:
    inbound_id = int(row.id)
    lead_id = int(row.lead_id) if row.lead_id is not None else None
    lead = None
    if lead_id is not None:
        lead = conn.execute(
            sa.select(leads_t.c.id, leads_t.c.state, leads_t.c.soft_bounces, leads_t.c.email, campaigns_t.c.name)
            .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
            .where(leads_t.c.id == lead_id)
        ).first()
    out = None
    if row.outbound_id is not None:
        out = conn.execute(
            sa.select(
                outbound_t.c.id,
                outbound_t.c.step,
                outbound_t.c.mailbox,
                outbound_t.c.sent_at,
                outbound_t.c.bounce,
                outbound_t.c.bounce_at,
                outbound_t.c.complained_at,
            ).where(outbound_t.c.id == row.outbound_id)
        ).first()

    def acted(
        cause: str,
        outcome: str | None = None,
        change: tuple[LeadState, LeadState] | None = None,
        alert_ids: tuple[int, ...] = (),
        stopped: int = 0,
        weak: bool = False,
    ) -> Acted:
        return Acted(
            inbound_id=inbound_id,
            lead_id=lead_id,
            campaign=lead.name if lead is not None else None,
            outbound_id=row.outbound_id,
            mailbox=out.mailbox if out is not None else None,
            category=c.category,
            outcome=outcome,
            sending_side=c.sending_side,
            change=change,
            cause=cause,
            alert_ids=alert_ids,
            stopped_colleagues=stopped,
            weak=weak,
        )

    if lead_id is None:
        return acted("matched nothing we sent: kept with the unmatched mail")
    if lead is None:
        return acted("its lead is gone")

    def alert(kind: str, key: str, summary: str, text: str) -> tuple[int, ...]:
        """Store the alert this message raises (once per key): its id, or none if it exists."""
        new = insert_alert(
            conn,
            key=f"reply:{inbound_id}:{key}",
            kind=kind,
            lead_id=lead_id,
            campaign=lead.name,
            category=c.category.value,
            summary=summary,
            text=text,
            inbound_id=inbound_id,
            now=now,
        )
        return (new,) if new is not None else ()

    if row.matched_by not in STRONG_MATCHES:
        # A guess: a stranger can write from any address and name anyone in a report.
        alert_ids: tuple[int, ...] = ()
        if c.category in WORTH_A_LOOK:
            summary, text = texts.unverified_alert(
                *alert_text(bytes(row.raw or b""), row.from_address, c.category.value), lead.email, row.matched_by
            )
            alert_ids = alert("unverified_reply", "unverified", summary, text)
        return acted(f"matched by {row.matched_by} only: nothing changed", alert_ids=alert_ids, weak=True)

    outcome: str | None = None
    view = LeadView(LeadState(lead.state), int(lead.soft_bounces))
    decision: LeadDecision | None = decide_reply(view, c, now, rules)
    if c.category is ReplyCategory.DELAYED:
        if out is not None:
            note = " ".join(c.reasons)[-500:] if c.reasons else (c.reason or "delayed")
            conn.execute(outbound_t.update().where(outbound_t.c.id == out.id).values(delayed_at=now, delay_note=note))
            outcome = "delayed"
    elif c.category in (ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT) and out is not None:
        kind = "hard" if c.category is ReplyCategory.BOUNCE_HARD else "soft"
        bounced, sent = aware(out.bounce_at), aware(out.sent_at)
        again = out.bounce is not None and bounced is not None and (sent is None or bounced >= sent)
        if again and not (kind == "hard" and out.bounce == "soft"):
            # A second report about the same attempt: it counted once already.
            decision = None
        else:
            reason = c.reason or BounceReason.UNDEFINED.value
            conn.execute(
                outbound_t.update()
                .where(outbound_t.c.id == out.id)
                .values(
                    bounce=stronger_bounce(kind), bounce_reason=stronger_bounce_reason(kind, reason[:32]), bounce_at=now
                )
            )
            outcome = c.category.value
    elif c.category is ReplyCategory.COMPLAINT and out is not None and out.complained_at is None:
        conn.execute(outbound_t.update().where(outbound_t.c.id == out.id).values(complained_at=now))
        outcome = "complaint"
    if decision is None:
        return acted("a second report for the same email: counted once")
    step = int(out.step) if out is not None else None
    change = apply_decision_in(conn, lead_id, decision, now, step)
    stopped = 0
    if decision.human_reply:
        stopped = stop_colleagues_in(conn, lead_id, shared, now)
    alert_ids = ()
    if decision.alert:
        summary, text = alert_text(bytes(row.raw or b""), row.from_address, c.category.value)
        alert_ids = alert(decision.alert, decision.alert, summary, text)
    return acted(decision.cause, outcome, change, alert_ids, stopped)


def _clean_id(value: object) -> str | None:
    """A Message-ID as stored: `<...>`, and one that would not fit its column (RFC 5322's
    998 characters) as a hash of itself, so it still never matches one of ours by accident."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    start, end = text.find("<"), text.find(">")
    found = text[start : end + 1] if start != -1 and end > start else f"<{text.split()[0]}>"
    if len(found) > cam_tables.MESSAGE_ID or any(ord(ch) < 32 for ch in found):
        return f"<{stable_hash(found)}@too-long.invalid>"
    return found


def _address(value: object) -> str | None:
    """The sender's real address, as the classifier reads it (never one written in the
    display name, quoted or not); None when there is none or it would not fit its column."""
    from aicmo_actors.cam.classify.parse import mailbox_addresses

    found = mailbox_addresses(str(value or ""), limit=1)
    address = normalise_address(found[0]) if found else ""
    return address if address and len(address) <= cam_tables.ADDRESS and address.isprintable() else None


def _inbound_row(inbox: str, uidvalidity: int, m: FetchedMessage, now: datetime) -> dict[str, Any]:
    """A fetched message as a row of cam_inbound_emails, every value fitted to its column."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    # The header block alone: in headers-only mode the parser still reads the body line by
    # line, which was most of what storing a message cost.
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(m.raw[:65536]))

    def text(name: str, limit: int) -> str:
        try:
            return " ".join(str(headers.get(name) or "").split())[:limit]
        except Exception:
            return ""

    set_aside = None
    if m.truncated:
        set_aside = f"larger than the {m.size_limit or 0:,} byte limit ({m.size or 0:,} bytes): stored its headers only"
    return {
        "mailbox": inbox,
        "uidvalidity": uidvalidity,
        "uid": m.uid,
        "message_id": _clean_id(text("Message-ID", 4000)),
        "in_reply_to": _clean_id(text("In-Reply-To", 4000)),
        "references_header": text("References", 4000),
        "from_address": _address(text("From", 4000)),
        "subject": text("Subject", 500),
        "raw": m.raw,
        "received_at": m.internal_date or now,
        "stored_at": now,
        "set_aside": set_aside,
        "size": m.size if m.size is not None else len(m.raw),
    }


def _stub_row(row: dict[str, Any], why: str) -> dict[str, Any]:
    """What is kept of a message the database refused: where it was, and why."""
    return {
        **row,
        "message_id": None,
        "in_reply_to": None,
        "references_header": "",
        "from_address": None,
        "subject": "(could not be stored)",
        "raw": b"",
        "set_aside": why[:200],
    }
