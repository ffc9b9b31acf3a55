"""Production's repository: every read and write of the `production_*` tables.

Each public method is one transaction (one unit of work of `storage.work`) and returns rows
or plain dataclasses, never contract messages: the studio builds those. A decision and what
it makes (a version and its state, a verdict and the deliveries or the alert it calls for, a
batch and its items, a cancellation) are written together, so a crash leaves all or none;
the commands they call for are told after the commit, and told again while unanswered.

`ProductionStore` is the module's store: `store.items` over one engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.production import rules, texts
from aicmo_actors.production.tables import (
    APPROVED,
    CANCELLED,
    DELIVERED,
    DRAFTING,
    IN_QC,
    IN_REVIEW,
    PLANNED,
    SIGNOFF,
    production_alerts,
    production_batch_items,
    production_batches,
    production_deliveries,
    production_item_events,
    production_items,
    production_runs,
    production_versions,
)
from aicmo_actors.storage.changes import ReadCache, come
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import Also, run_read, run_write, run_write_if, with_also

_I, _V, _R = production_items, production_versions, production_runs
#: An item's columns without its planned item and brief (JSON, read back as None): for the
#: checks run over many items each tick, which need neither.
_I_LIGHT = [sa.null().label(c.name) if c.name in ("item", "brief") else c for c in production_items.c]
_B, _BI, _D = production_batches, production_batch_items, production_deliveries
_A, _H = production_alerts, production_item_events
UNASSIGNED = "unassigned"


class ProductionError(Exception):
    """A person's request that cannot be done (an unknown item, a state that does not allow it)."""


@dataclass(frozen=True)
class Item:
    id: str
    project_id: str
    period: int
    key: str
    item: dict[str, Any]
    type: str
    channel: str
    topic: str
    due_on: date
    start_on: date
    state: str
    assignee: str
    client: dict[str, Any]
    package: dict[str, Any]
    brief: dict[str, str]
    version: int
    retakes: int
    rounds: int
    gen_attempts: int
    gen_error: str | None
    needs_person_at: datetime | None
    told_at: datetime | None
    batch_key: str | None
    started_at: datetime | None
    delivered_at: datetime | None
    late_at: datetime | None
    updated_at: datetime

    @property
    def label(self) -> str:
        return texts.item_label(str(self.client.get("company", "")), self.type, self.topic)


@dataclass(frozen=True)
class Version:
    item_id: str
    version: int
    title: str
    text: str
    html: str
    source: str
    tokens: int
    created_at: datetime
    author: str | None
    qc_passed: bool | None
    qc_findings: list[dict[str, Any]] | None
    verdict: str | None
    comment: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


@dataclass(frozen=True)
class Run:
    project_id: str
    produce_key: str | None
    period: int | None
    created_at: datetime
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancel_told_at: datetime | None
    reviews_withdrawn_at: datetime | None
    deliveries_cancelled_at: datetime | None

    @property
    def cancel_confirmed(self) -> bool:
        return self.reviews_withdrawn_at is not None and self.deliveries_cancelled_at is not None


@dataclass(frozen=True)
class NewItem:
    id: str
    key: str
    item: dict[str, Any]
    type: str
    channel: str
    topic: str
    due_on: date
    start_on: date


@dataclass(frozen=True)
class Delivery:
    key: str
    item_id: str
    project_id: str
    version: int
    method: str
    told_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class Batch:
    key: str
    project_id: str
    items: tuple[tuple[Item, Version], ...]


@dataclass(frozen=True)
class Alert:
    key: str
    project_id: str
    item_id: str | None
    kind: str
    summary: str
    text: str


@dataclass(frozen=True)
class Verdict:
    """What a verdict did: `applied` False when it was for an old version or already heard."""

    applied: bool
    state: str = ""
    deliveries: tuple[Delivery, ...] = ()
    alert: bool = False
    #: The period this delivery completed (publish `PeriodDelivered`), or None.
    period_done: int | None = None


@dataclass(frozen=True)
class InFlight:
    qc: tuple[tuple[Item, Version], ...]
    batches: tuple[Batch, ...]
    deliveries: tuple[Delivery, ...]
    cancels: tuple[str, ...]


def _item(row: Any) -> Item:
    return Item(**{f: getattr(row, f) for f in Item.__dataclass_fields__})


def _version(row: Any) -> Version:
    return Version(**{f: getattr(row, f) for f in Version.__dataclass_fields__})


def _run(row: Any) -> Run:
    return Run(**{f: getattr(row, f) for f in Run.__dataclass_fields__})


#: A delivery the courier said it keeps or is failing with (told again after `Silence.delivery_kept`).
_ANSWERED = sa.or_(_D.c.kept_at.is_not(None), _D.c.failing_at.is_not(None)).label("answered")


def _delivery(row: Any) -> Delivery:
    return Delivery(**{f: getattr(row, f) for f in Delivery.__dataclass_fields__})


#: The hottest statements, built once: a statement made per call is built and its cache key
#: worked out again every time (~80 us of SQLAlchemy each, thousands of times a tick).
_HISTORY = sa.insert(_H).values(
    item_id=sa.bindparam("item_id"), at=sa.bindparam("at"), state=sa.bindparam("state"), detail=sa.bindparam("detail")
)
_ITEM = sa.select(_I).where(_I.c.id == sa.bindparam("item_id"))
_VERSION = sa.select(_V).where(_V.c.item_id == sa.bindparam("item_id"), _V.c.version == sa.bindparam("version"))


def history_in(conn: Connection, item_id: str, at: datetime, state: str, detail: str) -> None:
    conn.execute(_HISTORY, {"item_id": item_id, "at": at, "state": state, "detail": detail[:2000]})


def alert_in(conn: Connection, key: str, item: Item, kind: str, words: tuple[str, str], now: datetime) -> bool:
    row = {
        "key": key,
        "project_id": item.project_id,
        "item_id": item.id,
        "kind": kind,
        "summary": words[0],
        "text": words[1],
        "created_at": now,
        "told_at": None,
    }
    return bool(insert_ignore_in(conn, _A, [row], returning=[_A.c.key]))


def _set_state(conn: Connection, item: Item, state: str, now: datetime, detail: str, **values: Any) -> None:
    conn.execute(sa.update(_I).where(_I.c.id == item.id).values(state=state, updated_at=now, **values))
    history_in(conn, item.id, now, state, detail)


def item_in(conn: Connection, item_id: str) -> Item | None:
    row = conn.execute(_ITEM, {"item_id": item_id}).first()
    return _item(row) if row is not None else None


#: A moment before any other: a command never told is due at once.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What `in_flight` asks about, built once (every tick asked for them, kept answer or not).
_IN_QC = _I.c.state == IN_QC
_IN_REVIEW = _B.c.key.in_(sa.select(_I.c.batch_key).where(_I.c.state == IN_REVIEW))
_UNDELIVERED = (_D.c.delivered_at.is_(None), _I.c.state == APPROVED)
_UNCONFIRMED = (
    _R.c.cancelled_at.is_not(None),
    sa.or_(_R.c.reviews_withdrawn_at.is_(None), _R.c.deliveries_cancelled_at.is_(None)),
)


def version_in(conn: Connection, item_id: str, version: int) -> Version | None:
    row = conn.execute(_VERSION, {"item_id": item_id, "version": version}).first()
    return _version(row) if row is not None else None


def _period_done_in(conn: Connection, item: Item, now: datetime) -> int | None:
    """The item's period when this item, just delivered, was its last one (else None); the run
    is marked delivered when every period it has is."""
    rows = conn.execute(sa.select(_I.c.period, _I.c.state).where(_I.c.project_id == item.project_id)).all()
    if not rules.standing(state for period, state in rows if period == item.period).all_delivered:
        return None
    if rules.standing(state for _, state in rows).all_delivered:
        conn.execute(
            sa.update(_R)
            .where(_R.c.project_id == item.project_id, _R.c.delivered_at.is_(None))
            .values(delivered_at=now)
        )
    return item.period


def _has_period_in(conn: Connection, project_id: str, period: int) -> bool:
    query = sa.select(_I.c.id).where(_I.c.project_id == project_id, _I.c.period == period).limit(1)
    return conn.execute(query).first() is not None


class ItemsRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)
        #: `find_late`'s kept candidates and the first moment one of them is late.
        self._first_late: tuple[object, datetime | None] | None = None

    # -- runs ---------------------------------------------------------------------------------------------------

    async def run(self, project_id: str) -> Run | None:
        def work(conn: Connection) -> Run | None:
            row = conn.execute(sa.select(_R).where(_R.c.project_id == project_id)).first()
            return _run(row) if row is not None else None

        return await run_read(self.engine, work)

    async def create(
        self,
        project_id: str,
        *,
        key: str,
        period: int,
        plan_version: int,
        client: dict[str, Any],
        package: dict[str, Any],
        brief: dict[str, str],
        items: Sequence[NewItem],
        now: datetime,
    ) -> bool:
        """The period's items, once, and the project's run with the first period (False: the
        period has its items already, or the project was cancelled). A later period's items
        join the run (its `period` and `plan_version` then say the latest period's)."""

        def work(conn: Connection) -> bool:
            run = conn.execute(sa.select(_R).where(_R.c.project_id == project_id)).first()
            if run is not None and (run.cancelled_at is not None or run.produce_key is None):
                return False  # cancelled (perhaps before anything was asked): nothing more is made
            if run is None:
                conn.execute(
                    sa.insert(_R).values(
                        project_id=project_id,
                        produce_key=key,
                        period=period,
                        plan_version=plan_version,
                        created_at=now,
                        batches=0,
                    )
                )
            elif _has_period_in(conn, project_id, period):
                return False
            else:
                conn.execute(
                    sa.update(_R)
                    .where(_R.c.project_id == project_id)
                    .values(period=max(run.period or 1, period), plan_version=plan_version, delivered_at=None)
                )
            for new in items:
                conn.execute(
                    sa.insert(_I).values(
                        id=new.id,
                        project_id=project_id,
                        period=period,
                        key=new.key,
                        item=new.item,
                        type=new.type,
                        channel=new.channel,
                        topic=new.topic,
                        due_on=new.due_on,
                        start_on=new.start_on,
                        state=PLANNED,
                        assignee=UNASSIGNED,
                        client_ref=str(client["client_ref"]),
                        client=client,
                        package=package,
                        brief=brief,
                        version=0,
                        retakes=0,
                        rounds=0,
                        gen_attempts=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                history_in(conn, new.id, now, PLANNED, f"planned: due {new.due_on.isoformat()}, start {new.start_on}")
            return True

        return await run_write(self.engine, work)

    async def items_of(self, project_id: str, period: int | None = None) -> list[Item]:
        """A project's items (`period`: of that period only), by due day."""

        def work(conn: Connection) -> list[Item]:
            query = sa.select(_I).where(_I.c.project_id == project_id).order_by(_I.c.due_on, _I.c.key)
            if period is not None:
                query = query.where(_I.c.period == period)
            return [_item(r) for r in conn.execute(query)]

        return await run_read(self.engine, work)

    async def has_period(self, project_id: str, period: int) -> bool:
        return await run_read(self.engine, lambda conn: _has_period_in(conn, project_id, period))

    async def item(self, item_id: str) -> Item | None:
        return await run_read(self.engine, lambda conn: item_in(conn, item_id))

    async def version(self, item_id: str, version: int) -> Version | None:
        return await run_read(self.engine, lambda conn: version_in(conn, item_id, version))

    async def item_version(self, item_id: str, version: int) -> tuple[Item | None, Version | None]:
        """The item and one of its versions, in one read."""
        return await run_read(self.engine, lambda conn: (item_in(conn, item_id), version_in(conn, item_id, version)))

    # -- the tick -----------------------------------------------------------------------------------------------

    async def start_due(self, now: datetime, should_start: Callable[[Item], bool]) -> list[Item]:
        """Planned items whose start day has come go to drafting."""

        # Only items whose start day may have come somewhere on Earth (no zone is more than a day
        # ahead of UTC), kept between ticks (`storage.changes`); whether one starts is the clock's.
        horizon = now.astimezone(UTC).date() + timedelta(days=1)
        soon = sa.select(_I).where(_I.c.state == PLANNED, _I.c.start_on <= horizon)

        def work(conn: Connection) -> list[Item]:
            started = []
            for row in conn.execute(soon).all():
                item = _item(row)
                if should_start(item):
                    _set_state(conn, item, DRAFTING, now, "drafting started", started_at=now)
                    started.append(item)
            return started

        return await self.kept.write_if(
            ("planned", horizon),
            lambda conn: tuple(_item(r) for r in conn.execute(soon)),
            lambda planned: any(should_start(item) for item in planned),
            work,
            [],
        )

    async def writing(self) -> list[Item]:
        """Items the generator writes the next version of (not those awaiting a person)."""

        def work(conn: Connection) -> list[Item]:
            query = (
                sa.select(_I)
                .where(_I.c.state.in_(rules.WRITING), _I.c.needs_person_at.is_(None))
                .order_by(_I.c.due_on, _I.c.id)
            )
            return [_item(r) for r in conn.execute(query)]

        return list(await self.kept.read("writing", work))

    async def tokens_used(self, client_ref: str, period: int) -> int:
        def work(conn: Connection) -> int:
            query = (
                sa.select(sa.func.coalesce(sa.func.sum(_V.c.tokens), 0))
                .select_from(_V.join(_I, _I.c.id == _V.c.item_id))
                .where(_I.c.client_ref == client_ref, _I.c.period == period)
            )
            return int(conn.execute(query).scalar_one())

        return await run_read(self.engine, work)

    async def add_version(
        self,
        item_id: str,
        *,
        after: int,
        title: str,
        text: str,
        html: str,
        source: str,
        tokens: int,
        now: datetime,
        author: str | None = None,
        states: Iterable[str] = rules.WRITING,
        alert: tuple[str, tuple[str, str]] | None = None,
        also: Also[Item] | None = None,
    ) -> Item | None:
        """Version `after + 1`, and the item in QC (None: the item moved on meanwhile).

        A person's version (`author`) is told to QC by the next tick (`told_at` None). `also`
        runs in the same transaction with the item after, only when the version was made."""
        allowed = tuple(states)

        def work(conn: Connection) -> Item | None:
            item = item_in(conn, item_id)
            if item is None or item.version != after or item.state not in allowed:
                return None
            conn.execute(
                sa.insert(_V).values(
                    item_id=item_id,
                    version=after + 1,
                    title=title,
                    text=text,
                    html=html,
                    source=source,
                    tokens=tokens,
                    created_at=now,
                    author=author,
                )
            )
            detail = texts.history_written(after + 1, source if author is None else f"{source}: {author}", tokens)
            _set_state(
                conn,
                item,
                IN_QC,
                now,
                detail,
                version=after + 1,
                told_at=None if author is not None else now,
                needs_person_at=None,
                gen_attempts=0,
                gen_error=None,
                batch_key=None,
            )
            if alert is not None:
                alert_in(conn, alert[0], item, "generator", alert[1], now)
            made = item_in(conn, item_id)
            if also is not None and made is not None:
                also(conn, made)
            return made

        return await run_write(self.engine, work)

    async def generator_failed(self, item_id: str, error: str, now: datetime) -> int:
        """Record a failed attempt; returns the attempts so far."""

        def work(conn: Connection) -> int:
            conn.execute(
                sa.update(_I)
                .where(_I.c.id == item_id)
                .values(gen_attempts=_I.c.gen_attempts + 1, gen_failed_at=now, gen_error=error[:500])
            )
            history_in(conn, item_id, now, DRAFTING, f"generator failed: {error[:300]}")
            return int(conn.execute(sa.select(_I.c.gen_attempts).where(_I.c.id == item_id)).scalar_one())

        return await run_write(self.engine, work)

    async def make_batches(self, now: datetime) -> list[Batch]:
        """One batch per project of the items in review that are in none yet."""

        def due(conn: Connection) -> bool:
            query = sa.select(_I.c.id).where(_I.c.state == IN_REVIEW, _I.c.batch_key.is_(None)).limit(1)
            return conn.execute(query).first() is not None

        def work(conn: Connection) -> list[Batch]:
            waiting = conn.execute(
                sa.select(_I.c.project_id, _I.c.id)
                .where(_I.c.state == IN_REVIEW, _I.c.batch_key.is_(None))
                .order_by(_I.c.project_id, _I.c.due_on, _I.c.key)
            ).all()
            made = []
            for project_id, ids in rules.batches((p, i) for p, i in waiting).items():
                n = int(conn.execute(sa.select(_R.c.batches).where(_R.c.project_id == project_id)).scalar_one()) + 1
                key = rules.batch_key(project_id, n)
                conn.execute(sa.update(_R).where(_R.c.project_id == project_id).values(batches=n))
                conn.execute(sa.insert(_B).values(key=key, project_id=project_id, n=n, created_at=now, told_at=now))
                pairs = []
                for item_id in ids:
                    conn.execute(sa.update(_I).where(_I.c.id == item_id).values(batch_key=key, updated_at=now))
                    item = item_in(conn, item_id)
                    assert item is not None
                    conn.execute(sa.insert(_BI).values(batch_key=key, item_id=item_id, version=item.version))
                    conn.execute(
                        sa.update(_V).where(_V.c.item_id == item_id, _V.c.version == item.version).values(batch_key=key)
                    )
                    history_in(conn, item_id, now, IN_REVIEW, f"version {item.version} sent for review in {key}")
                    found = version_in(conn, item_id, item.version)
                    assert found is not None
                    pairs.append((item, found))
                made.append(Batch(key, project_id, tuple(pairs)))
            return made

        # Whether any item waits for a batch depends on the items only: kept between ticks.
        return await self.kept.write_if("unbatched", due, bool, work, [])

    async def idle(self) -> bool:
        """Nothing a tick could act on: no open piece, no alert untold, no cancel unconfirmed
        (one read; an idle tick then reads nothing else)."""

        def work(conn: Connection) -> bool:
            checks = (
                sa.select(_I.c.id).where(_I.c.state.in_(rules.OPEN_STATES)),  # named: the state index finds them
                sa.select(_A.c.key).where(_A.c.told_at.is_(None)),
                sa.select(_R.c.project_id).where(
                    _R.c.cancelled_at.is_not(None),
                    sa.or_(_R.c.reviews_withdrawn_at.is_(None), _R.c.deliveries_cancelled_at.is_(None)),
                ),
            )
            return not any(conn.execute(query.limit(1)).first() for query in checks)

        return await self.kept.read("idle", work)

    def _batch_in(self, conn: Connection, key: str, project_id: str) -> Batch:
        """The batch's items still in review at the version sent."""
        rows = conn.execute(
            sa.select(_I)
            .join(_BI, _BI.c.item_id == _I.c.id)
            .where(_BI.c.batch_key == key, _I.c.state == IN_REVIEW, _I.c.version == _BI.c.version)
            .order_by(_I.c.due_on, _I.c.key)
        ).all()
        pairs = []
        for row in rows:
            item = _item(row)
            found = version_in(conn, item.id, item.version)
            if found is not None:
                pairs.append((item, found))
        return Batch(key, project_id, tuple(pairs))

    async def in_flight(self, now: datetime, silence: rules.Silence, *, every: bool = False) -> InFlight:
        """The commands to tell again (`every`: all in flight, as at start), marked told now."""
        in_qc, in_review, undelivered, unconfirmed = _IN_QC, _IN_REVIEW, _UNDELIVERED, _UNCONFIRMED

        def due(
            told_at: datetime | None, wait: timedelta, since: datetime | None = None, cap: timedelta | None = None
        ) -> bool:
            return every or rules.resend_due(told_at, now, wait, since=since, cap=cap)

        def work(conn: Connection) -> InFlight:
            qc = []
            for row in conn.execute(sa.select(_I).where(in_qc)).all():
                item = _item(row)
                found = version_in(conn, item.id, item.version)
                if found is not None and due(item.told_at, silence.qc):
                    qc.append((item, found))
                    conn.execute(sa.update(_I).where(_I.c.id == item.id).values(told_at=now))
            batches = []
            open_batches = conn.execute(
                sa.select(_B.c.key, _B.c.project_id, _B.c.told_at, _B.c.created_at, _B.c.requested_at)
                .where(in_review)
                .order_by(_B.c.project_id, _B.c.n)
            ).all()
            for key, project_id, told_at, created_at, requested_at in open_batches:
                if every or rules.come_at(silence.review_at(told_at, created_at, requested_at is not None), now):
                    batch = self._batch_in(conn, key, project_id)
                    if batch.items:
                        batches.append(batch)
                        conn.execute(sa.update(_B).where(_B.c.key == key).values(told_at=now))
            deliveries = []
            waiting = conn.execute(
                sa.select(_D, _ANSWERED)
                .join(_I, _I.c.id == _D.c.item_id)
                .where(*undelivered)
                .order_by(_D.c.created_at, _D.c.key)
            ).all()
            for row in waiting:
                if every or rules.come_at(silence.delivery_at(row.told_at, row.created_at, bool(row.answered)), now):
                    deliveries.append(_delivery(row))
                    conn.execute(sa.update(_D).where(_D.c.key == row.key).values(told_at=now))
            cancels = []
            for project_id, told_at in conn.execute(
                sa.select(_R.c.project_id, _R.c.cancel_told_at).where(*unconfirmed)
            ):
                if due(told_at, silence.cancel):
                    cancels.append(project_id)
                    conn.execute(sa.update(_R).where(_R.c.project_id == project_id).values(cancel_told_at=now))
            return InFlight(tuple(qc), tuple(batches), tuple(deliveries), tuple(cancels))

        if every:
            return await run_write(self.engine, work)

        def first_due(conn: Connection) -> datetime | None:
            """When the first command in flight is to be told again, whatever the time now (None:
            nothing in flight). A batch is counted without checking it still has items to show:
            at worst a tick takes a write that finds nothing to tell."""
            versioned = sa.and_(_V.c.item_id == _I.c.id, _V.c.version == _I.c.version)
            times = [
                rules.resend_at(t, silence.qc)
                for t in conn.execute(sa.select(_I.c.told_at).join(_V, versioned).where(in_qc)).scalars()
            ]
            batches = sa.select(_B.c.told_at, _B.c.created_at, _B.c.requested_at).where(in_review)
            for told_at, created_at, requested_at in conn.execute(batches):
                times.append(silence.review_at(told_at, created_at, requested_at is not None))
            query = (
                sa.select(_D.c.told_at, _D.c.created_at, _ANSWERED)
                .join(_I, _I.c.id == _D.c.item_id)
                .where(*undelivered)
            )
            for told_at, created_at, answered in conn.execute(query):
                times.append(silence.delivery_at(told_at, created_at, bool(answered)))
            for told_at in conn.execute(sa.select(_R.c.cancel_told_at).where(*unconfirmed)).scalars():
                times.append(rules.resend_at(told_at, silence.cancel))
            return min((t or _EPOCH for t in times), default=None)

        # When the first command in flight is due again is kept between ticks (`storage.changes`):
        # a tick before it asks nothing.
        return await self.kept.write_if("in_flight", first_due, come(now), work, InFlight((), (), (), ()))

    async def find_late(
        self, now: datetime, late: Callable[[Item], str | None], late_from: Callable[[Item], datetime | None]
    ) -> int:
        """Mark the open items late now and queue their alert, once each; returns how many.
        `late(item)` says why an item is late now (or None), `late_from(item)` from when it is
        (None: never), the two agreeing (`rules.late_from`)."""

        # The open items not yet late that can be late today: started (turnaround), or due by today
        # in UTC (the end of a due day comes no earlier than that anywhere). Kept between ticks
        # (`storage.changes`); lateness is the clock's.
        today = now.astimezone(UTC).date()

        def candidates() -> sa.Select[Any]:  # built when read, not on every tick
            return sa.select(*_I_LIGHT).where(
                _I.c.state.in_(rules.OPEN_STATES),
                _I.c.late_at.is_(None),
                sa.or_(_I.c.started_at.is_not(None), _I.c.due_on <= today),
            )

        def work(conn: Connection) -> int:
            found = 0
            # Only the candidates: an item neither started nor due by today cannot be late now
            # (and a retainer's later periods hold many such items).
            for row in conn.execute(candidates()).all():
                item = _item(row)
                reason = late(item)
                if reason is None:
                    continue
                found += 1
                conn.execute(sa.update(_I).where(_I.c.id == item.id).values(late_at=now))
                history_in(conn, item.id, now, item.state, f"late ({reason})")
                words = texts.late_alert(item.label, item.id, item.due_on, item.state, reason)
                alert_in(conn, f"{item.id}:late", item, "late", words, now)
            return found

        def first_late(open_items: tuple[Item, ...]) -> datetime | None:
            # The earliest moment one of the kept candidates is late, worked out once per read
            # (the same kept tuple comes back tick after tick until the items change).
            if self._first_late is None or self._first_late[0] is not open_items:
                times = [at for at in map(late_from, open_items) if at is not None]
                self._first_late = (open_items, min(times, default=None))
            return self._first_late[1]

        def due(open_items: tuple[Item, ...]) -> bool:
            at = first_late(open_items)
            return at is not None and now >= at

        return await self.kept.write_if(
            ("open_not_late", today),
            lambda conn: tuple(_item(r) for r in conn.execute(candidates())),
            due,
            work,
            0,
        )

    async def pending_alerts(self) -> list[Alert]:
        def work(conn: Connection) -> list[Alert]:
            query = sa.select(_A).where(_A.c.told_at.is_(None)).order_by(_A.c.created_at, _A.c.key)
            return [Alert(r.key, r.project_id, r.item_id, r.kind, r.summary, r.text) for r in conn.execute(query).all()]

        return list(await self.kept.read("pending_alerts", work))

    async def alert_told(self, key: str, now: datetime) -> None:
        await run_write(
            self.engine, lambda conn: conn.execute(sa.update(_A).where(_A.c.key == key).values(told_at=now))
        )

    # -- verdicts -----------------------------------------------------------------------------------------------

    async def qc_verdict(
        self, item_id: str, version: int, *, passed: bool, findings: list[dict[str, Any]], now: datetime
    ) -> Verdict:
        def work(conn: Connection) -> Verdict:
            item = item_in(conn, item_id)
            if item is None or item.version != version or item.state != IN_QC:
                return Verdict(False)
            short = texts.findings_short(findings)
            conn.execute(
                sa.update(_V)
                .where(_V.c.item_id == item_id, _V.c.version == version)
                .values(qc_passed=passed, qc_findings=findings, qc_at=now)
            )
            qc_signoff = bool(item.package.get("qc_signoff"))
            outcome = rules.after_qc(passed=passed, retakes=item.retakes, qc_signoff=qc_signoff)
            values: dict[str, Any] = {"retakes": outcome.retakes, "told_at": None}
            if outcome.needs_person:
                values["needs_person_at"] = now
            _set_state(conn, item, outcome.state, now, texts.history_qc(version, passed, short), **values)
            alert = False
            if outcome.needs_person:
                words = texts.upload_alert(item.label, item.id, short)
                alert = alert_in(conn, f"{item.id}:upload:v{version}", item, "upload", words, now)
            elif outcome.state == SIGNOFF:
                words = texts.signoff_alert(item.label, item.id, version)
                alert = alert_in(conn, f"{item.id}:signoff:v{version}", item, "signoff", words, now)
            return Verdict(True, outcome.state, alert=alert)

        return await run_write(self.engine, work)

    async def review_requested(self, batch_key: str, deadline: datetime, now: datetime) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                sa.update(_B)
                .where(_B.c.key == batch_key, _B.c.requested_at.is_(None))
                .values(requested_at=now, deadline_at=deadline)
            )

        await run_write(self.engine, work)

    async def review_verdict(
        self,
        item_id: str,
        version: int,
        *,
        verdict: str,
        comment: str,
        by: str,
        at: datetime,
        now: datetime,
    ) -> Verdict:
        def work(conn: Connection) -> Verdict:
            item = item_in(conn, item_id)
            if item is None or item.version != version or item.state != IN_REVIEW:
                return Verdict(False)
            conn.execute(
                sa.update(_V)
                .where(_V.c.item_id == item_id, _V.c.version == version)
                .values(verdict=verdict, comment=comment or None, reviewed_by=by, reviewed_at=at)
            )
            review_rounds = int(item.package.get("review_rounds", 0))
            outcome = rules.after_review(verdict=verdict, rounds=item.rounds, review_rounds=review_rounds)  # type: ignore[arg-type]
            detail = texts.history_review(version, verdict, by, comment)
            if outcome.state == APPROVED:
                _set_state(conn, item, APPROVED, now, detail)
                methods = tuple(item.package.get("delivery") or ("email",))
                rows = []
                for method in methods:
                    rows.append(
                        {
                            "key": rules.delivery_key(item.id, version, method),
                            "item_id": item.id,
                            "project_id": item.project_id,
                            "version": version,
                            "method": method,
                            "created_at": now,
                            "told_at": now,
                            "attempts": 0,
                        }
                    )
                insert_ignore_in(conn, _D, rows, returning=[_D.c.key])
                found = conn.execute(
                    sa.select(_D).where(_D.c.item_id == item.id, _D.c.version == version).order_by(_D.c.key)
                ).all()
                return Verdict(True, APPROVED, deliveries=tuple(_delivery(r) for r in found))
            # Changes: the generator writes the next version; a round beyond the package is billable.
            _set_state(conn, item, outcome.state, now, detail, rounds=outcome.rounds, retakes=0, told_at=None)
            alert = False
            if outcome.beyond_package:
                words = texts.round_alert(item.label, item.id, outcome.rounds, review_rounds)
                alert = alert_in(conn, f"{item.id}:round:{outcome.rounds}", item, "round", words, now)
            return Verdict(True, outcome.state, alert=alert)

        return await run_write(self.engine, work)

    async def delivered(
        self, item_id: str, version: int, method: str, *, receipt: str, at: datetime, now: datetime
    ) -> Verdict:
        def work(conn: Connection) -> Verdict:
            key = rules.delivery_key(item_id, version, method)
            done = conn.execute(
                sa.update(_D)
                .where(_D.c.key == key, _D.c.delivered_at.is_(None))
                .values(delivered_at=at, receipt=receipt[:2000])
            ).rowcount
            item = item_in(conn, item_id)
            if not done or item is None:
                return Verdict(False)
            history_in(conn, item_id, now, item.state, texts.history_delivered(version, method, receipt))
            if item.state != APPROVED or item.version != version:
                return Verdict(True, item.state)
            methods = tuple(item.package.get("delivery") or ("email",))
            made = [
                r[0]
                for r in conn.execute(
                    sa.select(_D.c.method).where(
                        _D.c.item_id == item_id, _D.c.version == version, _D.c.delivered_at.is_not(None)
                    )
                )
            ]
            if not rules.after_delivery(methods, made):
                return Verdict(True, APPROVED)
            _set_state(conn, item, DELIVERED, now, f"version {version} delivered by every method", delivered_at=now)
            return Verdict(True, DELIVERED, period_done=_period_done_in(conn, item, now))

        return await run_write(self.engine, work)

    async def delivery_kept(self, item_id: str, version: int, method: str, now: datetime) -> bool:
        """The courier keeps the delivery (`DeliveryKept`): noted once (True: noted now)."""
        key = rules.delivery_key(item_id, version, method)
        open_ = (_D.c.key == key, _D.c.kept_at.is_(None), _D.c.delivered_at.is_(None))

        def work(conn: Connection) -> bool:
            return bool(conn.execute(sa.update(_D).where(*open_).values(kept_at=now)).rowcount)

        # Said again on every telling: one already noted costs a read, not a write.
        return await run_write_if(
            self.engine, lambda conn: conn.execute(sa.select(_D.c.key).where(*open_)).first() is not None, work, False
        )

    async def delivery_failing(
        self, item_id: str, version: int, method: str, *, attempts: int, error: str, now: datetime
    ) -> bool:
        def work(conn: Connection) -> bool:
            key = rules.delivery_key(item_id, version, method)
            row = conn.execute(sa.select(_D.c.attempts, _D.c.error).where(_D.c.key == key)).first()
            if row is None or (row.attempts == attempts and row.error == error[:500]):
                return False
            conn.execute(
                sa.update(_D).where(_D.c.key == key).values(failing_at=now, attempts=attempts, error=error[:500])
            )
            item = item_in(conn, item_id)
            history_in(
                conn,
                item_id,
                now,
                item.state if item else APPROVED,
                texts.history_failing(version, method, attempts, error),
            )
            return True

        return await run_write(self.engine, work)

    # -- cancellation -------------------------------------------------------------------------------------------

    async def cancel(self, project_id: str, *, key: str, reason: str, now: datetime) -> tuple[bool, Run]:
        """Every open item cancelled, the run marked (made when only the cancel came); (first, run)."""

        def work(conn: Connection) -> tuple[bool, Run]:
            row = conn.execute(sa.select(_R).where(_R.c.project_id == project_id)).first()
            first = row is None or row.cancelled_at is None
            if row is None:
                conn.execute(
                    sa.insert(_R).values(
                        project_id=project_id,
                        created_at=now,
                        batches=0,
                        cancelled_at=now,
                        cancel_key=key,
                        cancel_reason=reason,
                        cancel_told_at=now,
                    )
                )
            elif first:
                conn.execute(
                    sa.update(_R)
                    .where(_R.c.project_id == project_id)
                    .values(cancelled_at=now, cancel_key=key, cancel_reason=reason, cancel_told_at=now)
                )
            if first:
                query = sa.select(_I).where(_I.c.project_id == project_id, _I.c.state.in_(rules.OPEN_STATES))
                for item_row in conn.execute(query).all():
                    _set_state(conn, _item(item_row), CANCELLED, now, f"cancelled: {reason[:300]}")
            found = conn.execute(sa.select(_R).where(_R.c.project_id == project_id)).first()
            return first, _run(found)

        return await run_write(self.engine, work)

    async def confirm_cancel(self, project_id: str, what: str, now: datetime) -> Run | None:
        """Record `ReviewsWithdrawn` ("reviews") or `DeliveriesCancelled` ("deliveries")."""
        column = _R.c.reviews_withdrawn_at if what == "reviews" else _R.c.deliveries_cancelled_at

        def work(conn: Connection) -> Run | None:
            conn.execute(
                sa.update(_R)
                .where(_R.c.project_id == project_id, _R.c.cancelled_at.is_not(None), column.is_(None))
                .values({column.name: now})
            )
            row = conn.execute(sa.select(_R).where(_R.c.project_id == project_id)).first()
            return _run(row) if row is not None else None

        return await run_write(self.engine, work)

    # -- a person's work (CLI, API) -----------------------------------------------------------------------------

    async def resolve(self, prefix: str) -> str:
        """The item id a unique prefix names."""
        text = prefix.strip().lower()
        if len(text) < 4:
            raise ProductionError("give at least 4 characters of the item's id")
        if any(c not in "0123456789abcdef-" for c in text):
            # An id is hex digits and dashes: anything else (LIKE's % and _ among them) names none.
            raise ProductionError(f"no work item {prefix!r} (python run.py work list)")

        def work(conn: Connection) -> list[str]:
            return [r[0] for r in conn.execute(sa.select(_I.c.id).where(_I.c.id.like(f"{text}%")).limit(2))]

        found = await run_read(self.engine, work)
        if not found:
            raise ProductionError(f"no work item {prefix!r} (python run.py work list)")
        if len(found) > 1:
            raise ProductionError(f"{prefix!r} names more than one work item: give more of its id")
        return found[0]

    async def upload(
        self,
        item_id: str,
        *,
        title: str | None,
        text: str,
        html: str,
        by: str,
        now: datetime,
        also: Also[int] | None = None,
    ) -> int:
        """A person's draft as the next version (to QC on the next tick); returns its number.
        `also` runs with that number in the transaction that writes the version (the reads
        before it are transactions of their own)."""
        item = await self.item(item_id)
        if item is None:
            raise ProductionError(f"no work item {item_id}")
        if item.state not in rules.UPLOADABLE:
            raise ProductionError(f"item {item_id[:8]} is {item.state}: a draft can no longer be uploaded")
        if not text.strip():
            raise ProductionError("the draft is empty")
        previous = await self.version(item_id, item.version) if item.version else None
        made = await self.add_version(
            item_id,
            after=item.version,
            title=(title or (previous.title if previous else item.topic)).strip()[:300],
            text=text,
            html=html,
            source="person",
            tokens=0,
            now=now,
            author=by,
            states=rules.UPLOADABLE,
            also=None if also is None else lambda conn, made: also(conn, made.version),
        )
        if made is None:
            raise ProductionError(f"item {item_id[:8]} changed meanwhile: try again")
        return made.version

    async def assign(self, item_id: str, user: str, now: datetime, *, also: Also[None] | None = None) -> None:
        """Name who works on the item (`also`: in the same transaction)."""

        def work(conn: Connection) -> None:
            item = item_in(conn, item_id)
            if item is None:
                raise ProductionError(f"no work item {item_id}")
            conn.execute(sa.update(_I).where(_I.c.id == item_id).values(assignee=user, updated_at=now))
            history_in(conn, item_id, now, item.state, f"assigned to {user}")

        await run_write(self.engine, with_also(work, also))

    async def signoff(self, item_id: str, by: str, now: datetime, *, also: Also[int] | None = None) -> int:
        """Let an item that passed QC go to the client: the version signed off (`also`: with it,
        in the same transaction)."""

        def work(conn: Connection) -> int:
            item = item_in(conn, item_id)
            if item is None:
                raise ProductionError(f"no work item {item_id}")
            if item.state != SIGNOFF:
                raise ProductionError(
                    f"item {item_id[:8]} is {item.state}: only an item awaiting sign-off can be signed off"
                )
            _set_state(conn, item, IN_REVIEW, now, f"version {item.version} signed off by {by}", batch_key=None)
            return item.version

        return await run_write(self.engine, with_also(work, also))

    async def page(
        self, *, project: str | None = None, state: str | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list[dict[str, Any]]:
            query = sa.select(
                _I.c.id,
                _I.c.project_id,
                _I.c.key,
                _I.c.type,
                _I.c.channel,
                _I.c.topic,
                _I.c.due_on,
                _I.c.state,
                _I.c.assignee,
                _I.c.version,
                _I.c.rounds,
                _I.c.retakes,
                _I.c.needs_person_at,
                _I.c.late_at,
                _I.c.updated_at,
            )
            if project:
                # A project id is hex digits and dashes: anything else (LIKE's % and _) names none.
                wanted = project.lower() if all(c in "0123456789abcdef-" for c in project.lower()) else "none"
                query = query.where(_I.c.project_id.like(f"{wanted}%"))
            if state:
                query = query.where(_I.c.state == state)
            query = query.order_by(_I.c.due_on, _I.c.project_id, _I.c.key).limit(limit)
            return [dict(r) for r in conn.execute(query).mappings()]

        return await run_read(self.engine, work)

    async def show(self, item_id: str) -> dict[str, Any]:
        """One item whole: every version with its QC findings and review, deliveries, history."""

        def work(conn: Connection) -> dict[str, Any]:
            item = conn.execute(sa.select(_I).where(_I.c.id == item_id)).mappings().first()
            if item is None:
                raise ProductionError(f"no work item {item_id}")
            versions = [
                dict(r)
                for r in conn.execute(sa.select(_V).where(_V.c.item_id == item_id).order_by(_V.c.version)).mappings()
            ]
            for v in versions:
                v.pop("id", None)
            deliveries = [
                dict(r)
                for r in conn.execute(
                    sa.select(_D).where(_D.c.item_id == item_id).order_by(_D.c.version, _D.c.method)
                ).mappings()
            ]
            history = [
                {"at": r.at, "state": r.state, "detail": r.detail}
                for r in conn.execute(sa.select(_H).where(_H.c.item_id == item_id).order_by(_H.c.at, _H.c.id))
            ]
            alerts = [
                dict(r)
                for r in conn.execute(sa.select(_A).where(_A.c.item_id == item_id).order_by(_A.c.created_at)).mappings()
            ]
            shown = dict(item)
            for key in ("client", "package", "brief"):
                shown.pop(key, None)
            shown["company"] = item["client"].get("company")
            return {"item": shown, "versions": versions, "deliveries": deliveries, "history": history, "alerts": alerts}

        return await run_read(self.engine, work)


class ProductionStore:
    """The module's store: its repository over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.items = ItemsRepo(engine)


def new_item_id(project_id: str, period: int, key: str) -> str:
    return str(rules.item_id(uuid.UUID(project_id), period, key))
