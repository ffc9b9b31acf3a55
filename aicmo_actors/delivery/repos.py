"""Delivery's repositories: every read and write of the `delivery_*` tables.

Each public method is one transaction (one unit of work of `storage.work`) and returns rows
(`DeliveryRow`) or plain numbers, never contract messages: the courier builds those. A
delivery is recorded with its email (the "email" method) in one transaction, so the email
exists if and only if the delivery does; an attempt is claimed (-> sending) in one transaction
before it is made and settled in another after it; a failure and the decision to alert a
person are written together.

`DeliveryStore` is the module's store: `store.deliveries` and `store.mail` (the outbox of the
delivery emails, `storage.client_mail.MailBook`) over one engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.delivery.rules import Settled, email_key, from_email
from aicmo_actors.delivery.tables import (
    CANCELLED,
    DELIVERED,
    FAILED,
    FINAL,
    QUEUED,
    RETRYING,
    SENDING,
    STATES,
    UNCONFIRMED,
    delivery_cancels,
    delivery_deliveries,
    delivery_emails,
    delivery_holds,
)
from aicmo_actors.storage import client_mail
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.client_mail import QUEUED as QUEUED_EMAIL
from aicmo_actors.storage.client_mail import MailBook, cancel_in, queue_in
from aicmo_actors.storage.sql import chunks
from aicmo_actors.storage.work import Also, run_read, run_write, with_also

#: The kind of the delivery emails in their outbox.
EMAIL_KIND = "delivery"
#: The most rows one listing holds.
MAX_PAGE = 500

_D = delivery_deliveries
_C = delivery_cancels
_E = delivery_emails
_H = delivery_holds


#: The columns of a delivery's email that `sync_emails` follows.
_MAIL_COLUMNS = ("status", "attempts", "next_attempt_at", "error", "sent_at", "to_address", "message_id")
#: The states not final, named (not "not final"), so the (state, next_attempt_at) index finds them
#: without reading every delivery ever made (the texts make rows long).
_OPEN = tuple(state for state in STATES if state not in FINAL)
#: Each email delivery not final, with its email (`rules.email_key` in SQL), in id order.
_FOLLOWING = (
    sa.select(_D, *(_E.c[name].label(f"mail_{name}") for name in _MAIL_COLUMNS))
    .select_from(
        _D.join(
            _E,
            _E.c.idempotency_key
            == sa.case(
                (_D.c.rounds == 0, _D.c.key),
                else_=_D.c.key + sa.literal(":resend", sa.String) + sa.cast(_D.c.rounds, sa.String),
            ),
        )
    )
    .where(
        _D.c.method == "email",
        _D.c.state.in_(_OPEN),
        # Not a delivery still waiting for its email's first attempt (one kept for a client on
        # hold, for days): nothing of it can have moved (`rules.from_email` gives it the state
        # it has), and a quarter's held deliveries were most of what each tick read.
        sa.not_(sa.and_(_D.c.state == QUEUED, _D.c.attempts == 0, _E.c.status == QUEUED_EMAIL, _E.c.attempts == 0)),
    )
    .order_by(_D.c.id)
)
#: `_FOLLOWING`'s id and the columns that say whether a delivery's email moved (the rows whole,
#: with the pieces' texts, are read only for those that did).
_FOLLOWING_LIGHT = _FOLLOWING.with_only_columns(
    _D.c.id, _D.c.state, _D.c.attempts, _D.c.alert_due_at, _E.c.status, _E.c.attempts.label("mail_attempts")
)


# The statements of the hold, and of what waits, are built once and shared: SQLAlchemy
# statements never change once built, and these were built again on every tick. The hold's stay
# functions (memoised): the outbox takes `_held_projects` as its `held` query.


@cache
def _held_clients() -> sa.Select[Any]:
    """The clients on hold now (a hold not released)."""
    return sa.select(_H.c.client_ref).where(_H.c.released_at.is_(None))


@cache
def _not_held() -> sa.ColumnElement[bool]:
    """A delivery whose client is not on hold."""
    return sa.or_(_D.c.client_ref.is_(None), _D.c.client_ref.not_in(_held_clients()))


@cache
def _held_projects() -> sa.Select[Any]:
    """The projects whose client is on hold (their delivery emails wait)."""
    return sa.select(_D.c.project_id).where(_D.c.client_ref.in_(_held_clients())).distinct()


#: Webhook and folder deliveries waiting for an attempt.
_WAITING = (_D.c.method != "email", _D.c.state.in_((QUEUED, RETRYING)), _not_held())
#: The read of the first moment a waiting delivery is due (`earliest`).
_FIRST_DUE = earliest(_D.c.next_attempt_at, *_WAITING)
#: Deliveries whose alert was decided and not yet told.
_ALERTS_PENDING = sa.select(_D).where(_D.c.alert_due_at.is_not(None), _D.c.alerted_at.is_(None)).order_by(_D.c.id)


class DeliveryError(LookupError):
    """No such delivery, or a request that does not fit its state (one line, for people)."""


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as stored."""

    id: int
    key: str
    project_id: str
    item_id: str
    version: int
    method: str
    client: dict[str, Any]
    title: str
    type: str
    channel: str
    text: str
    html: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    receipt: str | None
    error: str | None
    permanent: bool
    rounds: int
    alert_due_at: datetime | None
    alerted_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    cancelled_at: datetime | None
    client_ref: str | None = None


@dataclass(frozen=True)
class HoldDone:
    """What a hold or a release did: whether it changed anything, and the client's deliveries
    waiting (not made yet)."""

    changed: bool
    waiting: int


@dataclass(frozen=True)
class NewDelivery:
    """A delivery asked for, ready to record (its email made already, for the email method)."""

    key: str
    project_id: str
    item_id: str
    version: int
    method: str
    client: dict[str, Any]
    title: str
    type: str
    channel: str
    text: str
    html: str
    email: EmailMessage | None = None
    #: Why it cannot be made at all (an email that cannot be written): recorded failed.
    refused: str | None = None


@dataclass(frozen=True)
class Changed:
    """A delivery an email's outcome moved: its state before, and the row after."""

    before: str
    row: DeliveryRow
    #: Its alert was decided before this change.
    alert_was_due: bool


@dataclass(frozen=True)
class CancelDone:
    first: bool
    deliveries: int
    emails: int


def _row(row: Any) -> DeliveryRow:
    return _row_values(dict(row._mapping))


def _row_values(values: dict[str, Any]) -> DeliveryRow:
    values["id"] = int(values["id"])
    values["permanent"] = bool(values["permanent"])
    return DeliveryRow(**values)


#: Built once (a statement made per call is built and its cache key worked out every time).
_BY_KEY = sa.select(_D).where(_D.c.key == sa.bindparam("key"))
_BY_ID = sa.select(_D).where(_D.c.id == sa.bindparam("delivery_id"))


def _get_in(conn: Connection, key: str) -> DeliveryRow | None:
    row = conn.execute(_BY_KEY, {"key": key}).first()
    return _row(row) if row is not None else None


def _by_id_in(conn: Connection, delivery_id: int) -> DeliveryRow:
    return _row(conn.execute(_BY_ID, {"delivery_id": delivery_id}).one())


def _set(conn: Connection, delivery_id: int, *conditions: sa.ColumnElement[bool], **values: Any) -> bool:
    statement = _D.update().where(_D.c.id == delivery_id, *conditions).values(**values)
    return bool(conn.execute(statement).rowcount)


class DeliveriesRepo:
    """Every delivery, its attempts and its alert."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def get(self, key: str) -> DeliveryRow | None:
        return await run_read(self.engine, lambda conn: _get_in(conn, key))

    async def record(self, new: NewDelivery, now: datetime) -> tuple[bool, DeliveryRow]:
        """Record `new` under its key unless a delivery has that key: (whether it did, the row).
        A delivery of a cancelled project is recorded cancelled; one that cannot be made at
        all (`refused`) failed, its alert decided."""

        def work(conn: Connection) -> tuple[bool, DeliveryRow]:
            found = _get_in(conn, new.key)
            if found is not None:
                return False, found
            cancelled = conn.execute(sa.select(_C.c.project_id).where(_C.c.project_id == new.project_id)).first()
            values: dict[str, Any] = {
                "key": new.key,
                "project_id": new.project_id,
                "item_id": new.item_id,
                "version": new.version,
                "method": new.method,
                "client": new.client,
                "title": new.title,
                "type": new.type,
                "channel": new.channel,
                "text": new.text,
                "html": new.html,
                "state": QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                "permanent": False,
                "rounds": 0,
                "created_at": now,
                "client_ref": str(new.client.get("client_ref") or "") or None,
            }
            if cancelled is not None:
                values.update(state=CANCELLED, next_attempt_at=None, cancelled_at=now, error="project cancelled")
            elif new.refused is not None:
                values.update(state=FAILED, next_attempt_at=None, error=new.refused, permanent=True, alert_due_at=now)
            elif new.email is not None:
                queue_in(
                    conn,
                    _E,
                    key=email_key(new.key, 0),
                    project_id=new.project_id,
                    kind=EMAIL_KIND,
                    message=new.email,
                    now=now,
                )
            conn.execute(_D.insert().values(**values))
            created = _get_in(conn, new.key)
            assert created is not None
            return True, created

        return await run_write(self.engine, work)

    async def due(self, now: datetime, limit: int = 50) -> list[DeliveryRow]:
        """Webhook and folder deliveries whose next attempt is due, oldest first."""

        def work(conn: Connection) -> list[DeliveryRow]:
            query = (
                sa.select(_D)
                .where(*_WAITING, _D.c.next_attempt_at <= now)
                .order_by(_D.c.next_attempt_at, _D.c.id)
                .limit(limit)
            )
            return [_row(r) for r in conn.execute(query)]

        return await self.kept.read_if("due", _FIRST_DUE, come(now), work, [])

    async def claim(self, delivery_id: int) -> DeliveryRow | None:
        """queued or retrying -> sending, before the attempt: the row, or None if not due (or
        its client is on hold)."""

        def work(conn: Connection) -> DeliveryRow | None:
            if not _set(conn, delivery_id, _D.c.state.in_((QUEUED, RETRYING)), _not_held(), state=SENDING):
                return None
            return _by_id_in(conn, delivery_id)

        return await run_write(self.engine, work)

    async def settle(
        self,
        delivery_id: int,
        settled: Settled,
        *,
        receipt: str | None,
        error: str | None,
        permanent: bool,
        now: datetime,
    ) -> DeliveryRow | None:
        """After the attempt: its outcome, and the alert decided with it (once per round)."""

        def work(conn: Connection) -> DeliveryRow | None:
            values: dict[str, Any] = {
                "state": settled.state,
                "attempts": settled.attempts,
                "next_attempt_at": settled.next_attempt_at,
                "permanent": permanent,
            }
            if settled.state == DELIVERED:
                values.update(receipt=receipt, delivered_at=now)
            else:
                values["error"] = error
            if not _set(conn, delivery_id, _D.c.state == SENDING, **values):
                return None
            if settled.alert:
                _set(conn, delivery_id, _D.c.alert_due_at.is_(None), alert_due_at=now)
            return _by_id_in(conn, delivery_id)

        return await run_write(self.engine, work)

    async def recover(self, now: datetime) -> int:
        """At start: webhook and folder attempts a dead incarnation left in flight are made again
        (the receiver de-duplicates by the idempotency key; a folder export rewrites the same
        files). The email method's are the outbox's business (never sent again)."""

        def work(conn: Connection) -> int:
            base = _D.update().where(_D.c.method != "email", _D.c.state == SENDING)
            first = conn.execute(base.where(_D.c.attempts == 0).values(state=QUEUED, next_attempt_at=now)).rowcount
            later = conn.execute(base.where(_D.c.attempts > 0).values(state=RETRYING, next_attempt_at=now)).rowcount
            return int(first) + int(later)

        return await run_write(self.engine, work)

    async def sync_emails(self, *, alert_after: int, now: datetime) -> list[Changed]:
        """The email method's deliveries follow their emails: each one not final takes the
        state its email's outbox row says (`rules.from_email`), and the alert with it.

        One joined read finds what moved; a write transaction is taken only then (a delivery
        waiting for a hold, or for its email's next attempt, costs a tick one row of a read)."""

        def moving(
            state: str, attempts: int, alert_due_at: datetime | None, status: str, mail_attempts: int
        ) -> tuple[str, bool] | None:
            """The state and alert a delivery takes from its email, or None when nothing moved."""
            new, alert = from_email(status, int(mail_attempts), alert_after=alert_after)
            if new == state and int(mail_attempts) == int(attempts) and not (alert and alert_due_at is None):
                return None
            return new, alert

        def moved_ids(conn: Connection) -> list[int]:
            """The deliveries whose email moved, from the few columns `moving` compares (not the
            pieces' texts, and only these rows are read whole after)."""
            return [row_id for row_id, *columns in conn.execute(_FOLLOWING_LIGHT) if moving(*columns) is not None]

        def taken(values: Any) -> tuple[DeliveryRow, dict[str, Any], bool] | None:
            """One `_FOLLOWING` row: the delivery, the update its email calls for and whether
            an alert is decided; None when its email did not move it (checked again on the
            whole row: on PostgreSQL another commit may fall between the two reads)."""
            row = _row_values({name: values[name] for name in _D.c.keys()})
            mail = {name: values[f"mail_{name}"] for name in _MAIL_COLUMNS}
            found = moving(row.state, row.attempts, row.alert_due_at, mail["status"], mail["attempts"])
            if found is None:
                return None
            state, alert = found
            update: dict[str, Any] = {"attempts": int(mail["attempts"])}
            if state == RETRYING:
                update["next_attempt_at"] = mail["next_attempt_at"]
            if state in (RETRYING, FAILED, UNCONFIRMED):
                update["error"] = mail["error"]
            if state in (FAILED, UNCONFIRMED):
                update.update(next_attempt_at=None, permanent=True)
            if state == DELIVERED:
                update.update(
                    next_attempt_at=None,
                    delivered_at=mail["sent_at"] or now,
                    receipt=f"email to {mail['to_address']} accepted by the mail server, "
                    f"Message-ID {mail['message_id']}",
                )
            if state == CANCELLED:
                update.update(next_attempt_at=None, cancelled_at=now)
            update["state"] = state
            return row, update, alert

        def moved(conn: Connection) -> list[tuple[DeliveryRow, dict[str, Any], bool]]:
            found: list[tuple[DeliveryRow, dict[str, Any], bool]] = []
            for ids in chunks(moved_ids(conn)):
                for values in conn.execute(_FOLLOWING.where(_D.c.id.in_(ids))).mappings():
                    one = taken(values)
                    if one is not None:
                        found.append(one)
            return found

        def work(conn: Connection) -> list[Changed]:
            changed: list[Changed] = []
            for row, update, alert in moved(conn):
                _set(conn, row.id, **update)
                if alert:
                    _set(conn, row.id, _D.c.alert_due_at.is_(None), alert_due_at=now)
                changed.append(Changed(row.state, _by_id_in(conn, row.id), row.alert_due_at is not None))
            return changed

        def any_moved(conn: Connection) -> bool:
            return bool(moved_ids(conn))

        # Whether any delivery's email moved depends on the tables only: kept between ticks.
        return await self.kept.write_if("moved", any_moved, bool, work, [])

    async def idle(self) -> bool:
        """Nothing a tick could act on: every delivery final with its alert told, no email
        queued (one read; an idle tick then reads nothing else)."""

        def work(conn: Connection) -> bool:
            checks = (
                sa.select(_D.c.id).where(_D.c.state.in_(_OPEN)),
                sa.select(_D.c.id).where(_D.c.alert_due_at.is_not(None), _D.c.alerted_at.is_(None)),
                sa.select(_E.c.id).where(_E.c.status == QUEUED_EMAIL),
            )
            return not any(conn.execute(query.limit(1)).first() for query in checks)

        return await self.kept.read("idle", work)

    async def alerts_pending(self) -> list[DeliveryRow]:
        """Deliveries whose alert was decided and not yet told."""
        return list(
            await self.kept.read("alerts_pending", lambda conn: [_row(r) for r in conn.execute(_ALERTS_PENDING)])
        )

    async def mark_alerted(self, delivery_id: int, now: datetime) -> bool:
        return await run_write(
            self.engine, lambda conn: _set(conn, delivery_id, _D.c.alerted_at.is_(None), alerted_at=now)
        )

    async def cancel(self, project_id: str, *, key: str, reason: str, now: datetime) -> CancelDone:
        """Cancel every delivery of the project not made yet (queued, retrying) and their queued
        emails; remember the project so a later `DeliverItem` makes nothing. May repeat."""

        def work(conn: Connection) -> CancelDone:
            first = conn.execute(sa.select(_C.c.project_id).where(_C.c.project_id == project_id)).first() is None
            if first:
                conn.execute(
                    _C.insert().values(project_id=project_id, idempotency_key=key, reason=reason, cancelled_at=now)
                )
            emails = cancel_in(conn, _E, project_id, now)
            # An email already handed to the mail server (SENDING) cannot be called back: its
            # delivery stays as it is and follows the email's outcome.
            sending = sa.select(_E.c.idempotency_key).where(
                _E.c.project_id == project_id, _E.c.status == client_mail.SENDING
            )
            in_flight = set(conn.execute(sending).scalars())
            rows = [
                _row(r)
                for r in conn.execute(
                    sa.select(_D).where(_D.c.project_id == project_id, _D.c.state.in_((QUEUED, RETRYING)))
                )
            ]
            cancelled = 0
            for row in rows:
                if row.method == "email" and email_key(row.key, row.rounds) in in_flight:
                    continue
                cancelled += _set(
                    conn,
                    row.id,
                    _D.c.state.in_((QUEUED, RETRYING)),
                    state=CANCELLED,
                    next_attempt_at=None,
                    cancelled_at=now,
                )
            return CancelDone(first, cancelled, emails)

        return await run_write(self.engine, work)

    # -- for people (the CLI) ------------------------------------------------------------------------------

    async def page(
        self, *, project_prefix: str | None = None, state: str | None = None, limit: int = MAX_PAGE
    ) -> list[DeliveryRow]:
        """Deliveries, newest first, of a project (a prefix of its id is enough) and in a state."""
        if state is not None and state not in STATES:
            raise DeliveryError(f"no state {state!r} (one of: {', '.join(STATES)})")
        query = sa.select(_D).order_by(_D.c.id.desc()).limit(min(limit, MAX_PAGE))
        if project_prefix:
            escaped = project_prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(_D.c.project_id.like(escaped + "%", escape="\\"))
        if state is not None:
            query = query.where(_D.c.state == state)
        return await run_read(self.engine, lambda conn: [_row(r) for r in conn.execute(query)])

    async def client_refs(self, project_prefix: str) -> Sequence[str]:
        """The clients of a project's deliveries (when orchestration does not know the project)."""

        def work(conn: Connection) -> list[str]:
            rows = conn.execute(sa.select(_D.c.client).where(_D.c.project_id.like(project_prefix.lower() + "%")))
            return sorted({str(r.client.get("client_ref")) for r in rows if isinstance(r.client, dict)})

        return await run_read(self.engine, work)

    async def retry(self, key: str, now: datetime, *, also: Also[DeliveryRow] | None = None) -> DeliveryRow:
        """A person asks a failed (or unconfirmed) delivery again: a new round of attempts from
        now (an email is queued again, the same bytes under a new outbox key; its alert, if it
        fails again, has a key of its own). `also` runs with the row after, in the same transaction."""

        def work(conn: Connection) -> DeliveryRow:
            row = _get_in(conn, key)
            if row is None:
                raise DeliveryError(f"no delivery {key!r} (python run.py delivery list shows them)")
            if row.state not in (FAILED, UNCONFIRMED):
                raise DeliveryError(f"delivery {key!r} is {row.state}: only a failed or unconfirmed one is retried")
            rounds = row.rounds + 1
            if row.method == "email":
                previous = conn.execute(sa.select(_E).where(_E.c.idempotency_key == email_key(key, row.rounds))).first()
                if previous is None:
                    raise DeliveryError(f"delivery {key!r} could not be written as an email: {row.error}")
                conn.execute(
                    _E.insert().values(
                        idempotency_key=email_key(key, rounds),
                        project_id=previous.project_id,
                        kind=previous.kind,
                        to_address=previous.to_address,
                        subject=previous.subject,
                        message_id=previous.message_id,
                        raw=previous.raw,
                        status=client_mail.QUEUED,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
            _set(
                conn,
                row.id,
                state=QUEUED,
                attempts=0,
                next_attempt_at=now,
                permanent=False,
                rounds=rounds,
                alert_due_at=None,
                alerted_at=None,
            )
            return _by_id_in(conn, row.id)

        return await run_write(self.engine, with_also(work, also))


class HoldsRepo:
    """Holds on clients' deliveries (see `tables.Hold`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @staticmethod
    def _waiting_in(conn: Connection, client_ref: str) -> int:
        query = sa.select(sa.func.count()).where(_D.c.client_ref == client_ref, _D.c.state.in_(_OPEN))
        return int(conn.execute(query).scalar_one())

    async def hold(self, client_ref: str, *, key: str, reason: str, now: datetime) -> HoldDone:
        """Put the client on hold unless it is (a repeated command changes nothing)."""

        def work(conn: Connection) -> HoldDone:
            active = conn.execute(
                sa.select(_H.c.id).where(_H.c.client_ref == client_ref, _H.c.released_at.is_(None))
            ).first()
            if active is None:
                delivered = sa.select(sa.func.count()).where(
                    _D.c.client_ref == client_ref, _D.c.delivered_at.is_not(None)
                )
                conn.execute(
                    _H.insert().values(
                        client_ref=client_ref,
                        idempotency_key=key,
                        reason=reason[:2000],
                        held_at=now,
                        delivered_before=int(conn.execute(delivered).scalar_one()),
                    )
                )
            return HoldDone(active is None, self._waiting_in(conn, client_ref))

        return await run_write(self.engine, work)

    async def release(self, client_ref: str, now: datetime) -> HoldDone:
        """Release the client's hold, if any (a repeated command changes nothing)."""

        def work(conn: Connection) -> HoldDone:
            released = conn.execute(
                _H.update().where(_H.c.client_ref == client_ref, _H.c.released_at.is_(None)).values(released_at=now)
            ).rowcount
            return HoldDone(bool(released), self._waiting_in(conn, client_ref))

        return await run_write(self.engine, work)

    async def held(self, client_ref: str) -> bool:
        query = sa.select(_H.c.id).where(_H.c.client_ref == client_ref, _H.c.released_at.is_(None)).limit(1)
        return await run_read(self.engine, lambda conn: conn.execute(query).first() is not None)

    async def page(self, *, active_only: bool = False) -> list[dict[str, Any]]:
        query = sa.select(_H).order_by(_H.c.id)
        if active_only:
            query = query.where(_H.c.released_at.is_(None))
        return await run_read(self.engine, lambda conn: [dict(r._mapping) for r in conn.execute(query)])


class DeliveryStore:
    """Delivery's repositories over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.deliveries = DeliveriesRepo(engine)
        self.holds = HoldsRepo(engine)
        # The emails of a client on hold wait in the outbox until the hold is released.
        self.mail = MailBook(engine, delivery_emails, held=_held_projects)
