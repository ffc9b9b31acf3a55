"""Client review's repositories: every read and write of the `client_review_*` tables.

Each public method is one transaction (one unit of work of `storage.work`) and returns rows or
plain dataclasses, never contract messages: the actor builds those. What goes into a
transaction whole is decided there, so a crash leaves all of it or none: a batch with its
items, its link and its email; a reminder with its email; an emailed answer with the verdicts
it gives; a withdrawal with its links revoked, its emails cancelled and its notice. The emails
are made before (pure, in the actor) and handed in.

A reply belongs to a batch only if its In-Reply-To or one of its References is the Message-ID
of an email of that batch (`client_review_emails.message_id`): never by its From address, its
subject or anything else it claims.

`ReviewStore` is the module's store: `store.batches` and `store.mail` (the client emails'
outbox, `storage.client_mail.MailBook`) over one engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.client_review.tables import (
    ANSWERED,
    APPROVED,
    AWAITING,
    CHANGES,
    ITEM_STATUSES,
    OPEN,
    WITHDRAWN,
    client_review_batches,
    client_review_emails,
    client_review_items,
    client_review_links,
    client_review_passwords,
    client_review_replies,
    client_review_withdrawals,
)
from aicmo_actors.storage import client_mail
from aicmo_actors.storage.changes import ReadCache, come
from aicmo_actors.storage.client_mail import MailBook, cancel_in, queue_in
from aicmo_actors.storage.links import UNKNOWN, find_in, issue_in, revoke_in, token_hash
from aicmo_actors.storage.work import Also, run_read, run_write, with_also

#: The links' purpose (checked on every use).
PURPOSE = "review"
#: The email kinds.
REVIEW_EMAIL, REMINDER_EMAIL, WITHDRAWN_EMAIL = "review", "reminder", "withdrawn"
#: The newest References looked at (a thread's whole history is not needed to find ours).
MAX_REFERENCES = 50
MAX_SUBJECT_CHARS = 1_000
MAX_REPLY_CHARS = 20_000

_B = client_review_batches
_I = client_review_items
#: An item's answered statuses, named (not "not awaiting"), so the (status, announced_at) index
#: finds the verdicts not announced without reading every item ever reviewed.
_VERDICTS = tuple(status for status in ITEM_STATUSES if status != AWAITING)
_R = client_review_replies
_W = client_review_withdrawals
_P = client_review_passwords
_E = client_review_emails
_L = client_review_links


def review_email_key(batch_key: str) -> str:
    return f"{batch_key}#request"


def reminder_email_key(batch_key: str, number: int) -> str:
    return f"{batch_key}#reminder-{number}"


def withdrawn_email_key(project_id: str) -> str:
    return f"{project_id}:review#withdrawn"


# -- rows -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    id: int
    batch_key: str
    project_id: str
    client: dict[str, Any]
    package: dict[str, Any]
    created_at: datetime
    deadline_at: datetime
    auto_approve_at: datetime | None
    link_nonce: int
    link_expires_at: datetime
    reminders_planned: int
    reminder_every: int
    state: str
    reminders_sent: int
    next_action_at: datetime | None
    needs_person_at: datetime | None
    person_alerted_at: datetime | None
    withdrawn_at: datetime | None

    @property
    def company(self) -> str:
        return str(self.client.get("company", ""))


@dataclass(frozen=True)
class Item:
    id: int
    batch_id: int
    position: int
    item_id: str
    version: int
    title: str
    type: str
    channel: str
    text: str
    html: str
    status: str
    comment: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    announced_at: datetime | None


@dataclass(frozen=True)
class BatchState:
    """A batch and its items, in order."""

    batch: Batch
    items: tuple[Item, ...]

    @property
    def open_items(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.status == AWAITING)


@dataclass(frozen=True)
class Withdrawn:
    """The project's reviews were withdrawn: nothing is made for it any more."""


@dataclass(frozen=True)
class NewItem:
    item_id: str
    version: int
    title: str
    type: str
    channel: str
    text: str
    html: str


@dataclass(frozen=True)
class NewBatch:
    """A batch made by the actor, ready to store with its items, link and email."""

    batch_key: str
    project_id: str
    client: dict[str, Any]
    package: dict[str, Any]
    deadline_at: datetime
    auto_approve_at: datetime | None
    first_action_at: datetime | None
    link_nonce: int
    token: str
    link_expires_at: datetime
    reminders_planned: int
    reminder_every: int
    items: tuple[NewItem, ...]
    email: EmailMessage


@dataclass(frozen=True)
class Reviewed:
    """A verdict not announced yet, with its batch's key and project."""

    item: Item
    batch_key: str
    project_id: str


@dataclass(frozen=True)
class InboundReply:
    """An inbound email as CAM offered it (`UnmatchedReply`)."""

    inbound_id: int
    in_reply_to: str | None
    references: tuple[str, ...]
    from_address: str | None
    subject: str
    text: str
    received_at: datetime
    intent: str
    comment: str


@dataclass(frozen=True)
class ReplyOutcome:
    """What an emailed answer did: `new` False when it was stored before (offered twice)."""

    reply_id: int
    batch_key: str
    project_id: str
    company: str
    intent: str
    decided: int
    needs_person: bool
    new: bool


@dataclass(frozen=True)
class PendingAlert:
    """A person must be told (and `cam.alerts` was not told yet)."""

    kind: str  # "unanswered" (a batch) or "reply" (an emailed answer)
    row_id: int
    batch_key: str
    company: str
    #: Unanswered: the reminders sent and the items still open; reply: the sender, its text,
    #: its intent and the inbound message.
    reminders: int = 0
    open_items: int = 0
    sender: str | None = None
    text: str = ""
    intent: str = ""
    inbound_id: int | None = None


@dataclass(frozen=True)
class WithdrawDone:
    first: bool
    links_revoked: int = 0
    emails_cancelled: int = 0
    notice_queued: bool = False


@dataclass(frozen=True)
class PageView:
    """What the client's page shows for a link: the batch and its items."""

    batch_key: str
    project_id: str
    company: str
    state: str
    deadline_at: datetime
    auto_approve_at: datetime | None
    timezone: str
    items: tuple[Item, ...]
    #: The project's page password (argon2 hash) and its wrong guesses, when it has one.
    password_hash: str | None = None
    failures: int = 0
    failures_since: datetime | None = None


@dataclass(frozen=True)
class Answered:
    """What an answer on the page did: `done` False when the item was not awaiting one."""

    done: bool
    view: PageView


@dataclass(frozen=True)
class Decided:
    """What a person's decision did: the items decided (none: nothing was open)."""

    batch_key: str
    decided: int
    unknown_item: bool = False


@dataclass(frozen=True)
class Summary:
    """One batch as `review list` shows it."""

    batch_key: str
    project_id: str
    company: str
    state: str
    created_at: datetime
    deadline_at: datetime
    auto_approve_at: datetime | None
    reminders_sent: int
    counts: dict[str, int] = field(default_factory=dict)


# -- helpers ----------------------------------------------------------------------------------------------------------


def _batch(row: Any) -> Batch:
    return Batch(
        id=int(row.id),
        batch_key=row.batch_key,
        project_id=row.project_id,
        client=dict(row.client or {}),
        package=dict(row.package or {}),
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        auto_approve_at=row.auto_approve_at,
        link_nonce=int(row.link_nonce),
        link_expires_at=row.link_expires_at,
        reminders_planned=int(row.reminders_planned),
        reminder_every=int(row.reminder_every),
        state=row.state,
        reminders_sent=int(row.reminders_sent),
        next_action_at=row.next_action_at,
        needs_person_at=row.needs_person_at,
        person_alerted_at=row.person_alerted_at,
        withdrawn_at=row.withdrawn_at,
    )


def _item(row: Any) -> Item:
    return Item(
        id=int(row.id),
        batch_id=int(row.batch_id),
        position=int(row.position),
        item_id=row.item_id,
        version=int(row.version),
        title=row.title,
        type=row.type,
        channel=row.channel,
        text=row.text,
        html=row.html,
        status=row.status,
        comment=row.comment,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        announced_at=row.announced_at,
    )


def _printable(text: str) -> str:
    return text.replace("\x00", "")  # PostgreSQL text cannot hold a NUL


def batch_in(conn: Connection, batch_key: str) -> Batch | None:
    row = conn.execute(sa.select(_B).where(_B.c.batch_key == batch_key)).first()
    return _batch(row) if row is not None else None


def items_in(conn: Connection, batch_id: int) -> tuple[Item, ...]:
    query = sa.select(_I).where(_I.c.batch_id == batch_id).order_by(_I.c.position)
    return tuple(_item(r) for r in conn.execute(query))


def state_in(conn: Connection, batch_key: str) -> BatchState | None:
    batch = batch_in(conn, batch_key)
    return BatchState(batch, items_in(conn, batch.id)) if batch is not None else None


def withdrawn_in(conn: Connection, project_id: str) -> bool:
    return conn.execute(sa.select(_W.c.project_id).where(_W.c.project_id == project_id)).first() is not None


def _settle_in(conn: Connection, batch_id: int) -> None:
    """An open batch whose every item has a verdict is answered: nothing more is due for it."""
    left = conn.execute(
        sa.select(sa.func.count()).select_from(_I).where(_I.c.batch_id == batch_id, _I.c.status == AWAITING)
    ).scalar_one()
    if not left:
        conn.execute(
            _B.update().where(_B.c.id == batch_id, _B.c.state == OPEN).values(state=ANSWERED, next_action_at=None)
        )


def decide_in(
    conn: Connection,
    batch_id: int,
    *,
    verdict: str,
    by: str,
    comment: str | None,
    now: datetime,
    item_ids: Sequence[int] | None = None,
) -> int:
    """Give `verdict` to the batch's items still awaiting one (or only `item_ids` of them):
    how many. The batch is settled in the same transaction."""
    statement = _I.update().where(_I.c.batch_id == batch_id, _I.c.status == AWAITING)
    if item_ids is not None:
        statement = statement.where(_I.c.id.in_(list(item_ids)))
    done = int(
        conn.execute(
            statement.values(status=verdict, comment=comment, reviewed_by=by, reviewed_at=now, announced_at=None)
        ).rowcount
    )
    if done:
        _settle_in(conn, batch_id)
    return done


def answered_ids(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    """The Message-IDs a reply says it answers, newest first, each once."""
    found: list[str] = []
    for candidate in [in_reply_to or "", *reversed(references[-MAX_REFERENCES:])]:
        value = candidate.strip()
        if value and value not in found and len(value) <= 250:
            found.append(value)
    return found


def batch_key_of_email(key: str) -> str:
    """The batch an email of ours belongs to, from its idempotency key ("<batch>#request")."""
    return key.rpartition("#")[0]


# -- the repository ---------------------------------------------------------------------------------------------------


# Statements a tick asks for, built once: they never change.


#: Verdicts not announced yet, of batches not withdrawn.
_UNANNOUNCED = (
    sa.select(_I, _B.c.batch_key, _B.c.project_id)
    .join(_B, _B.c.id == _I.c.batch_id)
    .where(_I.c.status.in_(_VERDICTS), _I.c.announced_at.is_(None), _B.c.state != WITHDRAWN)
    .order_by(_I.c.reviewed_at, _I.c.id)
)

#: The first moment an open batch has a reminder or an auto-approval due.
_FIRST_DUE = sa.select(sa.func.min(_B.c.next_action_at), sa.func.min(_B.c.auto_approve_at)).where(_B.c.state == OPEN)


class BatchesRepo:
    """The batches, their items, the emailed answers, the withdrawals and the page passwords."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    # -- asked by production ---------------------------------------------------------------------------------------

    async def state(self, batch_key: str, project_id: str) -> BatchState | Withdrawn | None:
        """The batch as it stands; `Withdrawn` when its project's reviews were withdrawn and it
        was never made; None when it is not known."""

        def work(conn: Connection) -> BatchState | Withdrawn | None:
            found = state_in(conn, batch_key)
            if found is not None:
                return found
            return Withdrawn() if withdrawn_in(conn, project_id) else None

        return await run_read(self.engine, work)

    async def create(self, new: NewBatch, now: datetime) -> tuple[bool, BatchState | Withdrawn]:
        """Store the batch with its items, its link and its email, unless it exists or its
        project's reviews were withdrawn: (whether it did, the state after)."""

        def work(conn: Connection) -> tuple[bool, BatchState | Withdrawn]:
            found = state_in(conn, new.batch_key)
            if found is not None:
                return False, found
            if withdrawn_in(conn, new.project_id):
                return False, Withdrawn()
            batch_id = conn.execute(
                _B.insert()
                .values(
                    batch_key=new.batch_key,
                    project_id=new.project_id,
                    client=new.client,
                    package=new.package,
                    created_at=now,
                    deadline_at=new.deadline_at,
                    auto_approve_at=new.auto_approve_at,
                    link_nonce=new.link_nonce,
                    link_hash=token_hash(new.token),
                    link_expires_at=new.link_expires_at,
                    reminders_planned=new.reminders_planned,
                    reminder_every=new.reminder_every,
                    state=OPEN,
                    reminders_sent=0,
                    next_action_at=new.first_action_at,
                )
                .returning(_B.c.id)
            ).scalar_one()
            for position, item in enumerate(new.items):
                conn.execute(
                    _I.insert().values(
                        batch_id=batch_id,
                        position=position,
                        item_id=item.item_id,
                        version=item.version,
                        title=item.title,
                        type=item.type,
                        channel=item.channel,
                        text=_printable(item.text),
                        html=_printable(item.html),
                        status=AWAITING,
                    )
                )
            issue_in(
                conn,
                _L,
                token=new.token,
                project_id=new.project_id,
                purpose=PURPOSE,
                now=now,
                expires_at=new.link_expires_at,
            )
            queue_in(
                conn,
                _E,
                key=review_email_key(new.batch_key),
                project_id=new.project_id,
                kind=REVIEW_EMAIL,
                message=new.email,
                now=now,
            )
            state = state_in(conn, new.batch_key)
            assert state is not None
            return True, state

        return await run_write(self.engine, work)

    # -- the tick --------------------------------------------------------------------------------------------------

    async def unannounced(self) -> list[Reviewed]:
        """Verdicts not announced yet (of batches not withdrawn), oldest first."""
        return list(
            await self.kept.read(
                "unannounced",
                lambda conn: [Reviewed(_item(r), r.batch_key, r.project_id) for r in conn.execute(_UNANNOUNCED)],
            )
        )

    async def mark_announced(self, item_ids: Sequence[int], now: datetime) -> int:
        if not item_ids:
            return 0
        statement = (
            _I.update()
            .where(_I.c.id.in_(list(item_ids)), _I.c.announced_at.is_(None), _I.c.status != AWAITING)
            .values(announced_at=now)
        )
        return await run_write(self.engine, lambda conn: int(conn.execute(statement).rowcount))

    async def due(self, now: datetime) -> list[BatchState]:
        """Open batches with something due: a reminder, the alert, the auto-approval."""

        def work(conn: Connection) -> list[BatchState]:
            query = (
                sa.select(_B.c.batch_key)
                .where(
                    _B.c.state == OPEN,
                    sa.or_(_B.c.next_action_at <= now, _B.c.auto_approve_at <= now),
                )
                .order_by(_B.c.id)
            )
            keys = list(conn.execute(query).scalars())
            return [s for k in keys if (s := state_in(conn, k)) is not None]

        # The first moment an open batch has something due, kept until the batches change.
        return await self.kept.read_if(
            "due",
            lambda conn: tuple(conn.execute(_FIRST_DUE).one()),
            lambda times: any(come(now)(t) for t in times),
            work,
            [],
        )

    async def remind(
        self, batch_id: int, number: int, next_action_at: datetime | None, email: EmailMessage, now: datetime
    ) -> bool:
        """Queue reminder `number` and plan the next step, once (only while the batch is open
        and `number - 1` reminders went)."""

        def work(conn: Connection) -> bool:
            changed = conn.execute(
                _B.update()
                .where(_B.c.id == batch_id, _B.c.state == OPEN, _B.c.reminders_sent == number - 1)
                .values(reminders_sent=number, next_action_at=next_action_at)
                .returning(_B.c.project_id, _B.c.batch_key)
            ).first()
            if changed is None:
                return False
            queue_in(
                conn,
                _E,
                key=reminder_email_key(changed.batch_key, number),
                project_id=changed.project_id,
                kind=REMINDER_EMAIL,
                message=email,
                now=now,
            )
            return True

        return await run_write(self.engine, work)

    async def auto_approve(self, batch_id: int, now: datetime) -> int:
        """Approve every item still awaiting an answer (the package allows it): how many."""

        def work(conn: Connection) -> int:
            row = conn.execute(sa.select(_B.c.state, _B.c.auto_approve_at).where(_B.c.id == batch_id)).first()
            if row is None or row.state != OPEN or row.auto_approve_at is None or row.auto_approve_at > now:
                return 0
            return decide_in(conn, batch_id, verdict=APPROVED, by="auto", comment=None, now=now)

        return await run_write(self.engine, work)

    async def needs_person(self, batch_id: int, now: datetime) -> bool:
        """No answer after the last reminder: a person is needed (once); nothing more is due."""
        statement = (
            _B.update()
            .where(_B.c.id == batch_id, _B.c.state == OPEN, _B.c.needs_person_at.is_(None))
            .values(needs_person_at=now, next_action_at=None)
        )
        return await run_write(self.engine, lambda conn: bool(conn.execute(statement).rowcount))

    async def idle(self) -> bool:
        """Nothing a tick could act on: no open batch, no verdict unannounced, no alert untold,
        no email queued (one read; an idle tick then reads nothing else)."""

        def work(conn: Connection) -> bool:
            checks = (
                sa.select(_B.c.id).where(_B.c.state == OPEN),
                sa.select(_I.c.id).where(_I.c.status.in_(_VERDICTS), _I.c.announced_at.is_(None)),
                sa.select(_R.c.id).where(_R.c.needs_person_at.is_not(None), _R.c.person_alerted_at.is_(None)),
                sa.select(_E.c.id).where(_E.c.status == client_mail.QUEUED),
            )
            return not any(conn.execute(query.limit(1)).first() for query in checks)

        return await self.kept.read("idle", work)

    async def pending_alerts(self) -> list[PendingAlert]:
        """What a person must be told and `cam.alerts` was not told yet."""

        def work(conn: Connection) -> list[PendingAlert]:
            found: list[PendingAlert] = []
            batches = conn.execute(
                sa.select(_B)
                .where(_B.c.needs_person_at.is_not(None), _B.c.person_alerted_at.is_(None), _B.c.state == OPEN)
                .order_by(_B.c.id)
            )
            for row in batches.fetchall():
                b = _batch(row)
                left = sum(1 for i in items_in(conn, b.id) if i.status == AWAITING)
                found.append(
                    PendingAlert(
                        "unanswered", b.id, b.batch_key, b.company, reminders=b.reminders_sent, open_items=left
                    )
                )
            replies = conn.execute(
                sa.select(_R, _B.c.batch_key, _B.c.client)
                .join(_B, _B.c.id == _R.c.batch_id)
                .where(_R.c.needs_person_at.is_not(None), _R.c.person_alerted_at.is_(None))
                .order_by(_R.c.id)
            )
            for r in replies:
                found.append(
                    PendingAlert(
                        "reply",
                        int(r.id),
                        r.batch_key,
                        str((r.client or {}).get("company", "")),
                        sender=r.from_address,
                        text=r.text,
                        intent=r.intent,
                        inbound_id=int(r.inbound_id),
                    )
                )
            return found

        return list(await self.kept.read("pending_alerts", work))

    async def alerted(self, alert: PendingAlert, now: datetime) -> None:
        table = _B if alert.kind == "unanswered" else _R
        statement = (
            table.update()
            .where(table.c.id == alert.row_id, table.c.person_alerted_at.is_(None))
            .values(person_alerted_at=now)
        )
        await run_write(self.engine, lambda conn: conn.execute(statement))

    # -- emailed answers -------------------------------------------------------------------------------------------

    async def record_reply(self, reply: InboundReply, now: datetime) -> ReplyOutcome | None:
        """Store `reply` for the batch whose email it answers and apply what it says (in the same
        transaction): an approval approves every item still open, a change request asks for
        changes on each (the reply's words as the comment); an unclear reply, or changes asked
        when nothing is open, needs a person. None when it answers none of our review emails."""
        ids = answered_ids(reply.in_reply_to, reply.references)
        if not ids:
            return None

        def work(conn: Connection) -> ReplyOutcome | None:
            email = conn.execute(
                sa.select(_E.c.idempotency_key, _E.c.project_id)
                .where(_E.c.message_id.in_(ids), _E.c.kind.in_((REVIEW_EMAIL, REMINDER_EMAIL)))
                .order_by(_E.c.id.desc())
                .limit(1)
            ).first()
            if email is None:
                return None
            batch = batch_in(conn, batch_key_of_email(email.idempotency_key))
            if batch is None or batch.project_id != email.project_id:
                return None
            existing = conn.execute(
                sa.select(_R).where(_R.c.batch_id == batch.id, _R.c.inbound_id == reply.inbound_id)
            ).first()
            if existing is not None:
                return ReplyOutcome(
                    int(existing.id),
                    batch.batch_key,
                    batch.project_id,
                    batch.company,
                    existing.intent,
                    int(existing.decided),
                    existing.needs_person_at is not None,
                    new=False,
                )
            text = _printable(reply.text)[:MAX_REPLY_CHARS]
            comment = _printable(reply.comment).strip()[:MAX_REPLY_CHARS] or text.strip()
            decided = 0
            if batch.state == OPEN and reply.intent == "approve":
                decided = decide_in(conn, batch.id, verdict=APPROVED, by="email", comment=None, now=now)
            elif batch.state == OPEN and reply.intent == "changes":
                decided = decide_in(conn, batch.id, verdict=CHANGES, by="email", comment=comment, now=now)
            needs_person = reply.intent == "unclear" or (reply.intent == "changes" and not decided)
            reply_id = conn.execute(
                _R.insert()
                .values(
                    batch_id=batch.id,
                    project_id=batch.project_id,
                    inbound_id=reply.inbound_id,
                    from_address=_printable(reply.from_address)[:320] if reply.from_address else None,
                    subject=_printable(reply.subject)[:MAX_SUBJECT_CHARS],
                    text=text,
                    intent=reply.intent,
                    decided=decided,
                    received_at=reply.received_at,
                    stored_at=now,
                    needs_person_at=now if needs_person else None,
                )
                .returning(_R.c.id)
            ).scalar_one()
            return ReplyOutcome(
                int(reply_id),
                batch.batch_key,
                batch.project_id,
                batch.company,
                reply.intent,
                decided,
                needs_person,
                new=True,
            )

        return await run_write(self.engine, work)

    async def replies(self, batch_key: str) -> list[dict[str, Any]]:
        """A batch's emailed answers, oldest first (for the person who reads them)."""
        query = (
            sa.select(
                _R.c.id,
                _R.c.inbound_id,
                _R.c.from_address,
                _R.c.subject,
                _R.c.text,
                _R.c.intent,
                _R.c.decided,
                _R.c.received_at,
                _R.c.needs_person_at,
            )
            .join(_B, _B.c.id == _R.c.batch_id)
            .where(_B.c.batch_key == batch_key)
            .order_by(_R.c.id)
        )
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    # -- a person --------------------------------------------------------------------------------------------------

    async def decide(
        self,
        batch_key: str,
        *,
        approve: bool,
        comment: str | None,
        item_id: str | None,
        now: datetime,
        also: Also[Decided] | None = None,
    ) -> Decided | None:
        """A person decides for the client (by="person"): every open item, or one. None: no such
        batch. `also` runs with the decision in the same transaction, unless there is no such
        batch or item."""

        def decision(conn: Connection) -> Decided | None:
            found = state_in(conn, batch_key)
            if found is None:
                return None
            if found.batch.state == WITHDRAWN:
                return Decided(batch_key, 0)
            chosen: list[int] | None = None
            if item_id is not None:
                chosen = [i.id for i in found.items if i.item_id == item_id]
                if not chosen:
                    return Decided(batch_key, 0, unknown_item=True)
            done = decide_in(
                conn,
                found.batch.id,
                verdict=APPROVED if approve else CHANGES,
                by="person",
                comment=None if approve else comment,
                now=now,
                item_ids=chosen,
            )
            # Decided: whatever a person was to be told about this batch's replies is settled.
            conn.execute(
                _R.update()
                .where(_R.c.batch_id == found.batch.id, _R.c.person_alerted_at.is_(None))
                .values(person_alerted_at=now)
            )
            return Decided(batch_key, done)

        def work(conn: Connection) -> Decided | None:
            decided = decision(conn)
            if also is not None and decided is not None and not decided.unknown_item:
                also(conn, decided)
            return decided

        return await run_write(self.engine, work)

    async def revoke(self, batch_key: str, now: datetime, *, also: Also[bool] | None = None) -> bool | None:
        """Revoke the batch's link (its page answers 410 from now on): whether it was live; None:
        no such batch. `also` runs with that answer in the same transaction, unless there is no
        such batch."""

        def work(conn: Connection) -> bool | None:
            row = conn.execute(sa.select(_B.c.link_hash).where(_B.c.batch_key == batch_key)).first()
            if row is None:
                return None
            was_live = bool(
                conn.execute(
                    _L.update()
                    .where(_L.c.token_hash == row.link_hash, _L.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                ).rowcount
            )
            if also is not None:
                also(conn, was_live)
            return was_live

        return await run_write(self.engine, work)

    async def summaries(self, project_id: str | None = None) -> list[Summary]:
        query = sa.select(_B).order_by(_B.c.id)
        if project_id is not None:
            query = query.where(_B.c.project_id == project_id)

        def work(conn: Connection) -> list[Summary]:
            found = []
            for row in conn.execute(query).fetchall():
                b = _batch(row)
                counts: dict[str, int] = {}
                for i in items_in(conn, b.id):
                    counts[i.status] = counts.get(i.status, 0) + 1
                found.append(
                    Summary(
                        b.batch_key,
                        b.project_id,
                        b.company,
                        b.state,
                        b.created_at,
                        b.deadline_at,
                        b.auto_approve_at,
                        b.reminders_sent,
                        counts,
                    )
                )
            return found

        return await run_read(self.engine, work)

    # -- withdrawal ------------------------------------------------------------------------------------------------

    async def withdraw(
        self,
        project_id: str,
        *,
        key: str,
        reason: str,
        notice: Callable[[dict[str, Any]], EmailMessage],
        now: datetime,
    ) -> WithdrawDone:
        """Withdraw a project's reviews (compensation), once: revoke its links, cancel its queued
        emails, mark its batches withdrawn, and queue `notice(client)` if a review email may
        have reached the client. It may come before any batch (then it is only recorded, and a
        later `RequestReview` makes none)."""

        def work(conn: Connection) -> WithdrawDone:
            if withdrawn_in(conn, project_id):
                return WithdrawDone(first=False)
            conn.execute(
                _W.insert().values(project_id=project_id, idempotency_key=key, reason=reason, withdrawn_at=now)
            )
            revoked = revoke_in(conn, _L, project_id, now)
            cancelled = cancel_in(conn, _E, project_id, now)
            conn.execute(
                _B.update()
                .where(_B.c.project_id == project_id, _B.c.withdrawn_at.is_(None))
                .values(withdrawn_at=now, next_action_at=None)
            )
            conn.execute(_B.update().where(_B.c.project_id == project_id, _B.c.state == OPEN).values(state=WITHDRAWN))
            reached = conn.execute(
                sa.select(sa.func.count())
                .select_from(_E)
                .where(
                    _E.c.project_id == project_id,
                    _E.c.kind.in_((REVIEW_EMAIL, REMINDER_EMAIL)),
                    _E.c.status.in_((client_mail.SENT, client_mail.UNCONFIRMED, client_mail.SENDING)),
                )
            ).scalar_one()
            client = conn.execute(
                sa.select(_B.c.client).where(_B.c.project_id == project_id).order_by(_B.c.id.desc()).limit(1)
            ).scalar()
            queued = False
            if reached and client:
                queued = queue_in(
                    conn,
                    _E,
                    key=withdrawn_email_key(project_id),
                    project_id=project_id,
                    kind=WITHDRAWN_EMAIL,
                    message=notice(dict(client)),
                    now=now,
                )
            return WithdrawDone(True, revoked, cancelled, queued)

        return await run_write(self.engine, work)

    # -- the page --------------------------------------------------------------------------------------------------

    async def page(self, token: str, now: datetime) -> PageView | str:
        """What `token` opens, or why it opens nothing (`storage.links`' words)."""
        return await run_write(self.engine, lambda conn: _page_in(conn, token, now))

    async def answer(
        self, token: str, item_id: str, version: int, *, approve: bool, comment: str | None, now: datetime
    ) -> Answered | str:
        """The client's verdict on one item from the page, stored with the link's check, only
        while the item awaits one and the batch is open."""

        def work(conn: Connection) -> Answered | str:
            view = _page_in(conn, token, now)
            if isinstance(view, str):
                return view
            target = [i for i in view.items if i.item_id == item_id and i.version == version]
            done = False
            if target and target[0].status == AWAITING and view.state == OPEN:
                batch = batch_in(conn, view.batch_key)
                assert batch is not None
                done = bool(
                    decide_in(
                        conn,
                        batch.id,
                        verdict=APPROVED if approve else CHANGES,
                        by="page",
                        comment=comment,
                        now=now,
                        item_ids=[target[0].id],
                    )
                )
            after = _page_in(conn, token, now)
            assert not isinstance(after, str)
            return Answered(done, after)

        return await run_write(self.engine, work)

    # -- page passwords --------------------------------------------------------------------------------------------

    async def protect(
        self, project_id: str, password_hash: str | None, now: datetime, *, also: Also[None] | None = None
    ) -> None:
        """Set (or, with None, remove) the project's page password (`also`: in the same transaction)."""

        def work(conn: Connection) -> None:
            conn.execute(_P.delete().where(_P.c.project_id == project_id))
            if password_hash is not None:
                conn.execute(
                    _P.insert().values(
                        project_id=project_id, password_hash=password_hash, set_at=now, failures=0, failures_since=None
                    )
                )

        await run_write(self.engine, with_also(work, also))

    async def count_guess(self, project_id: str, *, failures: int, since: datetime | None) -> None:
        """Record the wrong-guess count (0 and None after a right password)."""
        statement = _P.update().where(_P.c.project_id == project_id).values(failures=failures, failures_since=since)
        await run_write(self.engine, lambda conn: conn.execute(statement))

    async def projects(self) -> list[str]:
        """Every project with a batch (for the CLI's checks)."""
        query = sa.select(_B.c.project_id).distinct()
        return await run_read(self.engine, lambda conn: list(conn.execute(query).scalars()))


def _page_in(conn: Connection, token: str, now: datetime) -> PageView | str:
    opened = find_in(conn, _L, token, PURPOSE, now)
    if isinstance(opened, str):
        return opened
    row = conn.execute(sa.select(_B).where(_B.c.link_hash == token_hash(token))).first()
    if row is None:  # a link is only issued with its batch: never happens
        return UNKNOWN
    batch = _batch(row)
    password = conn.execute(sa.select(_P).where(_P.c.project_id == batch.project_id)).first()
    return PageView(
        batch_key=batch.batch_key,
        project_id=batch.project_id,
        company=batch.company,
        state=batch.state,
        deadline_at=batch.deadline_at,
        auto_approve_at=batch.auto_approve_at,
        timezone=str(batch.client.get("timezone", "UTC")),
        items=items_in(conn, batch.id),
        password_hash=password.password_hash if password is not None else None,
        failures=int(password.failures) if password is not None else 0,
        failures_since=password.failures_since if password is not None else None,
    )


class ReviewStore:
    """Client review's repositories over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.batches = BatchesRepo(engine)
        self.mail = MailBook(engine, client_review_emails)
