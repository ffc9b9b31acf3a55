"""Retention's repository: every read and write of the `retention_*` tables.

Each public method is one transaction (one unit of work of `storage.work`) and returns rows or
plain values, never contract messages: the monitor builds those. A signal is stored and its
client rescored in one transaction; a band change writes its notice (the event to publish, the
alert to tell) in that same transaction, so a kill after it loses nothing and the notice is
told at the next start; a renewal reminder is recorded with its notice the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.retention import texts
from aicmo_actors.retention.rules import (
    Health,
    RenewalPlan,
    Scoring,
    SignalIn,
    compare,
    contract_end,
    health,
    next_renewal,
    renewals_due,
    score_at,
)
from aicmo_actors.retention.signals import NewSignal
from aicmo_actors.retention.tables import (
    retention_clients,
    retention_contracts,
    retention_invoices,
    retention_notices,
    retention_projects,
    retention_renewals,
    retention_reviews,
    retention_signals,
)
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.sql import chunks
from aicmo_actors.storage.work import run_read, run_write, run_write_if

_CL = retention_clients
_CO = retention_contracts
_P = retention_projects
_S = retention_signals
_I = retention_invoices
_R = retention_reviews
_RN = retention_renewals
_N = retention_notices

#: The kind of the owner's alerts (cam.alerts).
ALERT_KIND = "retention"
COMPENSATED = "compensated"


class RetentionError(LookupError):
    """No such client, or a name that fits several (one line, for people)."""


@dataclass(frozen=True)
class Signed:
    """A client's signed deal, as `ClientSigned` carries it."""

    client_ref: str
    company: str
    contact_email: str
    billing_email: str | None
    deal_id: int
    lead_id: int
    campaign: str
    package: str
    term_months: int
    starts_on: date
    ends_on: date
    signed_at: datetime


@dataclass(frozen=True)
class Directory:
    """Who the clients are, to tie events to them: by deal, by lead, by email address
    (lower case)."""

    deals: frozenset[int] = frozenset()
    leads: Mapping[int, str] = field(default_factory=dict)
    emails: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientRow:
    client_ref: str
    company: str
    contact_email: str
    billing_email: str | None
    score: float | None
    band: str | None
    reasons: tuple[str, ...]
    scored_at: datetime | None
    band_changes: int
    red_entries: int
    created_at: datetime
    #: The end of its earliest contract still running (`clients(today)`), what a renewal is about.
    contract_end: date | None = None


@dataclass(frozen=True)
class ContractRow:
    deal_id: int
    client_ref: str
    lead_id: int
    campaign: str
    package: str
    term_months: int
    starts_on: date
    ends_on: date
    signed_at: datetime
    cancelled_at: datetime | None
    created_at: datetime
    #: How many renewals moved `ends_on` (and added to `term_months`).
    renewals: int = 0


@dataclass(frozen=True)
class NoticeRow:
    id: int
    key: str
    client_ref: str
    kind: str
    event: dict[str, Any]
    alert: dict[str, Any] | None


@dataclass(frozen=True)
class Breakdown:
    """One client whole: its row, its health now (every contribution), contracts and renewals."""

    client: ClientRow
    health: Health
    contracts: tuple[ContractRow, ...]
    #: (deal, days before the end, due on, state) of every reminder recorded.
    renewals: tuple[tuple[int, int, date, str], ...]
    next_renewal: date | None
    contract_end: date | None


#: A client's signals since a day, as (how many, the sum of their ids): signals are only ever
#: added (or tied to a client once), so an unchanged mark is an unchanged set.
_Mark = tuple[int, int]


def _client(row: Any) -> ClientRow:
    values = dict(row._mapping)
    values["reasons"] = tuple(values["reasons"] or ())
    return ClientRow(**values)


def _contract(row: Any) -> ContractRow:
    values = dict(row._mapping)
    values["deal_id"], values["lead_id"] = int(values["deal_id"]), int(values["lead_id"])
    return ContractRow(**values)


def _client_in(conn: Connection, client_ref: str) -> ClientRow | None:
    row = conn.execute(sa.select(_CL).where(_CL.c.client_ref == client_ref)).first()
    return _client(row) if row is not None else None


#: The columns a score reads of a signal (`_signal_in`).
_SIGNAL_IN = (_S.c.key, _S.c.kind, _S.c.weight, _S.c.at, _S.c.reason)


def _signal_in(row: Any) -> SignalIn:
    return SignalIn(row.key, row.kind, float(row.weight), row.at, row.reason)


def _signals_in(conn: Connection, client_ref: str, since: datetime | None) -> list[SignalIn]:
    query = sa.select(*_SIGNAL_IN).where(_S.c.client_ref == client_ref)
    if since is not None:
        query = query.where(_S.c.at >= since)
    return [_signal_in(r) for r in conn.execute(query)]


def _since(now: datetime, scoring: Scoring) -> datetime:
    return now - timedelta(days=scoring.horizon_days)


def _rescore_in(conn: Connection, client_ref: str, now: datetime, scoring: Scoring) -> bool:
    """Score `client_ref` again; write what changed; on a band change, its notice (and the
    alert when entering red). True when a notice was written. An unknown client: nothing."""
    client = _client_in(conn, client_ref)
    if client is None:
        return False
    found = health(_signals_in(conn, client_ref, _since(now, scoring)), now, scoring)
    return _apply_in(conn, client, found, now)


def _apply_in(conn: Connection, client: ClientRow, found: Health, now: datetime) -> bool:
    change = compare(client.band, client.score, found)
    if not change.write:
        return False
    values: dict[str, Any] = {
        "score": found.score,
        "band": found.band,
        "reasons": list(found.reasons),
        "scored_at": now,
    }
    if change.changed:
        values["band_changes"] = client.band_changes + 1
    if change.alert:
        values["red_entries"] = client.red_entries + 1
    conn.execute(_CL.update().where(_CL.c.client_ref == client.client_ref).values(**values))
    if not change.changed:
        return False
    alert = None
    if change.alert:
        alert = {
            "idempotency_key": f"retention:{client.client_ref}:red:{client.red_entries + 1}",
            "kind": ALERT_KIND,
            "summary": texts.red_summary(client.company, found.score),
            "text": texts.red_text(client.company, client.client_ref, found.score, found.reasons),
        }
    event = {
        "client_ref": client.client_ref,
        "score": found.score,
        "band": found.band,
        "previous": client.band,
        "reasons": list(found.reasons),
    }
    _notice_in(
        conn, f"band:{client.client_ref}:{client.band_changes + 1}", client.client_ref, "band", event, alert, now
    )
    return True


def _notice_in(
    conn: Connection,
    key: str,
    client_ref: str,
    kind: str,
    event: dict[str, Any],
    alert: dict[str, Any] | None,
    now: datetime,
) -> None:
    if conn.execute(sa.select(_N.c.id).where(_N.c.key == key)).first() is not None:
        return
    conn.execute(
        _N.insert().values(
            key=key, client_ref=client_ref, kind=kind, event=event, alert=alert, created_at=now, told_at=None
        )
    )


def _insert_signal_in(conn: Connection, signal: NewSignal, now: datetime) -> str | None:
    """Insert `signal` (its key not stored yet), tied to its client, or its project's: the client."""
    client_ref = signal.client_ref
    if client_ref is None and signal.project_id is not None:
        client_ref = _client_of_project_in(conn, signal.project_id)
    conn.execute(
        _S.insert().values(
            key=signal.key,
            client_ref=client_ref,
            project_id=signal.project_id,
            kind=signal.kind,
            weight=signal.weight,
            at=signal.at,
            reason=signal.reason,
            detail=dict(signal.detail),
            recorded_at=now,
        )
    )
    return client_ref


def _client_of_project_in(conn: Connection, project_id: str) -> str | None:
    row = conn.execute(
        sa.select(_CO.c.client_ref)
        .select_from(_P.join(_CO, _CO.c.deal_id == _P.c.deal_id))
        .where(_P.c.project_id == project_id)
    ).first()
    return str(row.client_ref) if row is not None else None


def _tie_in(conn: Connection, deal_id: int) -> set[str]:
    """Give the signals of the deal's projects, waiting for their client, that client."""
    client = conn.execute(sa.select(_CO.c.client_ref).where(_CO.c.deal_id == deal_id)).first()
    if client is None:
        return set()
    projects = sa.select(_P.c.project_id).where(_P.c.deal_id == deal_id).scalar_subquery()
    moved = conn.execute(
        _S.update().where(_S.c.client_ref.is_(None), _S.c.project_id.in_(projects)).values(client_ref=client.client_ref)
    ).rowcount
    return {str(client.client_ref)} if moved else set()


def _cancel_if_compensated_in(conn: Connection, project_id: str, now: datetime) -> None:
    row = conn.execute(sa.select(_P.c.deal_id, _P.c.outcome).where(_P.c.project_id == project_id)).first()
    if row is None or row.deal_id is None or row.outcome != COMPENSATED:
        return
    conn.execute(
        _CO.update().where(_CO.c.deal_id == row.deal_id, _CO.c.cancelled_at.is_(None)).values(cancelled_at=now)
    )


class RetentionStore:
    """Retention's store over one engine: clients, contracts, projects, signals, renewals, notices."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)
        # `rescore_all`'s signals by client, with the mark they were read at, since a day.
        self._signals: dict[str, tuple[_Mark, tuple[SignalIn, ...]]] = {}
        self._signals_since: datetime | None = None

    # -- who the clients are -----------------------------------------------------------------------------------

    async def directory(self) -> Directory:
        def work(conn: Connection) -> Directory:
            deals: set[int] = set()
            leads: dict[int, str] = {}
            emails: dict[str, str] = {}
            for r in conn.execute(sa.select(_CO.c.deal_id, _CO.c.lead_id, _CO.c.client_ref)):
                deals.add(int(r.deal_id))
                leads[int(r.lead_id)] = str(r.client_ref)
            for r in conn.execute(sa.select(_CL.c.client_ref, _CL.c.contact_email, _CL.c.billing_email)):
                for address in (r.contact_email, r.billing_email):
                    if address:
                        emails[address.lower()] = str(r.client_ref)
            return Directory(frozenset(deals), leads, emails)

        return await run_read(self.engine, work)

    async def sign(self, signed: Signed, now: datetime, scoring: Scoring) -> tuple[bool, bool]:
        """Record a signed deal (and its client) unless known: (recorded now, a notice written).
        The signals its projects left waiting are tied to the client; it is scored."""

        def work(conn: Connection) -> tuple[bool, bool]:
            if conn.execute(sa.select(_CO.c.deal_id).where(_CO.c.deal_id == signed.deal_id)).first() is not None:
                return False, False
            client = _client_in(conn, signed.client_ref)
            if client is None:
                conn.execute(
                    _CL.insert().values(
                        client_ref=signed.client_ref,
                        company=signed.company,
                        contact_email=signed.contact_email,
                        billing_email=signed.billing_email,
                        score=None,
                        band=None,
                        reasons=[],
                        scored_at=None,
                        band_changes=0,
                        red_entries=0,
                        created_at=now,
                    )
                )
            else:  # a new deal of a client we know: its latest details
                conn.execute(
                    _CL.update()
                    .where(_CL.c.client_ref == signed.client_ref)
                    .values(
                        company=signed.company, contact_email=signed.contact_email, billing_email=signed.billing_email
                    )
                )
            conn.execute(
                _CO.insert().values(
                    deal_id=signed.deal_id,
                    client_ref=signed.client_ref,
                    lead_id=signed.lead_id,
                    campaign=signed.campaign,
                    package=signed.package,
                    term_months=signed.term_months,
                    starts_on=signed.starts_on,
                    ends_on=signed.ends_on,
                    signed_at=signed.signed_at,
                    cancelled_at=None,
                    created_at=now,
                )
            )
            for project in conn.execute(sa.select(_P.c.project_id).where(_P.c.deal_id == signed.deal_id)).all():
                _cancel_if_compensated_in(conn, str(project.project_id), now)
            _tie_in(conn, signed.deal_id)
            return True, _rescore_in(conn, signed.client_ref, now, scoring)

        return await run_write(self.engine, work)

    async def renew_contract(self, deal_id: int, number: int, months: int) -> date | None:
        """The deal's renewal `number`: its months added to the contract's term and its end moved
        (the new end gets its own reminders), once (the renewals before it applied first). The
        new end when applied now, else None."""

        def work(conn: Connection) -> date | None:
            row = conn.execute(sa.select(_CO).where(_CO.c.deal_id == deal_id)).first()
            if row is None or int(row.renewals) != number - 1:
                return None
            term = int(row.term_months) + months
            end = contract_end(row.starts_on, term)
            conn.execute(
                _CO.update()
                .where(_CO.c.deal_id == deal_id, _CO.c.renewals == number - 1)
                .values(term_months=term, ends_on=end, renewals=number)
            )
            return end

        return await run_write(self.engine, work)

    async def open_project(self, project_id: str, deal_id: int, now: datetime, scoring: Scoring) -> bool:
        """Tie a project to its deal (once); its waiting signals go to the client, rescored.
        True when a notice was written."""

        def due(conn: Connection) -> bool:
            row = conn.execute(sa.select(_P.c.deal_id).where(_P.c.project_id == project_id)).first()
            return row is None or row.deal_id is None

        def work(conn: Connection) -> bool:
            row = conn.execute(sa.select(_P.c.deal_id).where(_P.c.project_id == project_id)).first()
            if row is None:
                conn.execute(_P.insert().values(project_id=project_id, deal_id=deal_id, outcome=None, recorded_at=now))
            elif row.deal_id is None:
                conn.execute(_P.update().where(_P.c.project_id == project_id).values(deal_id=deal_id))
            else:
                return False
            _cancel_if_compensated_in(conn, project_id, now)
            noticed = False
            for client_ref in _tie_in(conn, deal_id):
                noticed = _rescore_in(conn, client_ref, now, scoring) or noticed
            return noticed

        return await run_write_if(self.engine, due, work, False)

    async def finish_project(self, project_id: str, outcome: str, now: datetime) -> bool:
        """Record how a project ended; a compensated one cancels its contract's renewals.
        True when it was new."""

        def due(conn: Connection) -> bool:
            row = conn.execute(sa.select(_P.c.outcome).where(_P.c.project_id == project_id)).first()
            return row is None or row.outcome != outcome

        def work(conn: Connection) -> bool:
            row = conn.execute(sa.select(_P.c.outcome).where(_P.c.project_id == project_id)).first()
            if row is None:
                conn.execute(_P.insert().values(project_id=project_id, deal_id=None, outcome=outcome, recorded_at=now))
            elif row.outcome == outcome:
                return False
            else:
                conn.execute(_P.update().where(_P.c.project_id == project_id).values(outcome=outcome))
            _cancel_if_compensated_in(conn, project_id, now)
            return True

        return await run_write_if(self.engine, due, work, False)

    # -- signals -----------------------------------------------------------------------------------------------

    async def record(
        self, signals: Sequence[NewSignal], now: datetime, scoring: Scoring, *, settles: str | None = None
    ) -> tuple[int, bool]:
        """Store each signal not stored yet (by key), tied to its client (through its project
        when it names one), and score the clients again: (signals stored, a notice written).
        `settles`: the invoice they say is paid in full or credited (never overdue after)."""
        if not signals:
            return 0, False
        keys = [s.key for s in signals]

        def due(conn: Connection) -> bool:
            found = {r.key for r in conn.execute(sa.select(_S.c.key).where(_S.c.key.in_(keys)))}
            return any(k not in found for k in keys)

        def work(conn: Connection) -> tuple[int, bool]:
            found = {r.key for r in conn.execute(sa.select(_S.c.key).where(_S.c.key.in_(keys)))}
            touched: set[str] = set()
            stored = 0
            for signal in signals:
                if signal.key in found:
                    continue
                found.add(signal.key)
                client_ref = _insert_signal_in(conn, signal, now)
                stored += 1
                if client_ref is not None:
                    touched.add(client_ref)
            if settles is not None:
                conn.execute(
                    _I.update().where(_I.c.invoice_id == settles, _I.c.settled_at.is_(None)).values(settled_at=now)
                )
            noticed = False
            for client_ref in sorted(touched):
                noticed = _rescore_in(conn, client_ref, now, scoring) or noticed
            return stored, noticed

        return await run_write_if(self.engine, due, work, (0, False))

    async def issued(self, invoice_id: str, client_ref: str, number: str, due_on: date, now: datetime) -> None:
        """Remember an invoice issued (once), to find it overdue."""

        def due(conn: Connection) -> bool:
            return conn.execute(sa.select(_I.c.invoice_id).where(_I.c.invoice_id == invoice_id)).first() is None

        def work(conn: Connection) -> None:
            if due(conn):
                conn.execute(
                    _I.insert().values(
                        invoice_id=invoice_id,
                        client_ref=client_ref,
                        number=number,
                        due_on=due_on,
                        settled_at=None,
                        overdue_at=None,
                        recorded_at=now,
                    )
                )

        await run_write_if(self.engine, due, work, None)

    async def overdue(
        self, today: date, now: datetime, scoring: Scoring, make: Callable[[str, str, str, date], NewSignal]
    ) -> tuple[int, bool]:
        """Each invoice unpaid after its due date (not settled) becomes a signal, once, made by
        `make(invoice_id, number, client_ref, due_on)`: (invoices, a notice written)."""
        query = sa.select(_I.c.invoice_id, _I.c.number, _I.c.client_ref, _I.c.due_on).where(
            _I.c.settled_at.is_(None), _I.c.overdue_at.is_(None), _I.c.due_on < today
        )

        def due(conn: Connection) -> bool:
            return conn.execute(query.limit(1)).first() is not None

        def work(conn: Connection) -> tuple[int, bool]:
            touched: set[str] = set()
            rows = conn.execute(query.order_by(_I.c.due_on, _I.c.invoice_id)).all()
            for r in rows:
                signal = make(str(r.invoice_id), r.number, str(r.client_ref), r.due_on)
                if conn.execute(sa.select(_S.c.id).where(_S.c.key == signal.key)).first() is None:
                    client_ref = _insert_signal_in(conn, signal, now)
                    if client_ref is not None:
                        touched.add(client_ref)
                conn.execute(_I.update().where(_I.c.invoice_id == r.invoice_id).values(overdue_at=now))
            noticed = False
            for client_ref in sorted(touched):
                noticed = _rescore_in(conn, client_ref, now, scoring) or noticed
            return len(rows), noticed

        # Whether any is overdue changes with the day and the invoices only: kept between ticks.
        return await self.kept.write_if(("overdue", today), due, bool, work, (0, False))

    async def hold_count(self, client_ref: str) -> tuple[int, bool]:
        """How many holds the client had, and whether the last is still on (not released)."""

        def work(conn: Connection) -> tuple[int, bool]:
            holds = conn.execute(
                sa.select(sa.func.count())
                .select_from(_S)
                .where(_S.c.client_ref == client_ref, _S.c.kind == "client_on_hold")
            ).scalar_one()
            last = conn.execute(
                sa.select(_S.c.kind)
                .where(_S.c.client_ref == client_ref, _S.c.kind.in_(("client_on_hold", "client_released")))
                .order_by(_S.c.id.desc())
                .limit(1)
            ).first()
            return int(holds), last is not None and last.kind == "client_on_hold"

        return await run_read(self.engine, work)

    async def review_requested(self, batch_key: str, project_id: str, at: datetime) -> None:
        """Remember when a review batch was first asked."""

        def due(conn: Connection) -> bool:
            return conn.execute(sa.select(_R.c.batch_key).where(_R.c.batch_key == batch_key)).first() is None

        def work(conn: Connection) -> None:
            if due(conn):
                conn.execute(_R.insert().values(batch_key=batch_key, project_id=project_id, requested_at=at))

        await run_write_if(self.engine, due, work, None)

    async def requested_at(self, batch_key: str) -> datetime | None:
        def work(conn: Connection) -> datetime | None:
            row = conn.execute(sa.select(_R.c.requested_at).where(_R.c.batch_key == batch_key)).first()
            return row.requested_at if row is not None else None

        return await run_read(self.engine, work)

    async def late_due(self, item_id: str) -> date | None:
        """The due date production said an item was late for (None: never said late)."""

        def work(conn: Connection) -> date | None:
            row = conn.execute(sa.select(_S.c.detail).where(_S.c.key == f"late:{item_id}")).first()
            if row is None or not row.detail or "due" not in row.detail:
                return None
            return date.fromisoformat(str(row.detail["due"]))

        return await run_read(self.engine, work)

    async def known(self, key: str) -> bool:
        return await run_read(
            self.engine, lambda conn: conn.execute(sa.select(_S.c.id).where(_S.c.key == key)).first() is not None
        )

    # -- ticks: decay, renewals ----------------------------------------------------------------------------

    async def rescore_all(self, now: datetime, scoring: Scoring) -> tuple[int, bool]:
        """Score every client again (decay moves scores with time): (clients written, a notice
        written). Read first; a write transaction only when a score or band should change.

        A client's signals are read again only when they changed since the last sweep
        (their `_Mark`): a quarter's signals read every hour were most of the sweep's time."""

        since = _since(now, scoring)
        # The signals since the start of the horizon's first day (the same set all day long);
        # the exact horizon is applied below.
        since_day = datetime.combine(since.astimezone(UTC).date(), time(0), UTC)
        kept = self._signals if self._signals_since == since_day else {}
        known = {ref: mark for ref, (mark, _) in kept.items()}

        def read(conn: Connection) -> tuple[tuple[ClientRow, ...], dict[str, _Mark], dict[str, list[SignalIn]]]:
            """Every client, each client's signal marks, and the signals of those whose mark moved."""
            clients = tuple(_client(r) for r in conn.execute(sa.select(_CL).order_by(_CL.c.client_ref)))
            marks = {
                str(r.client_ref): (int(r.n), int(r.ids or 0))
                for r in conn.execute(
                    sa.select(_S.c.client_ref, sa.func.count().label("n"), sa.func.sum(_S.c.id).label("ids"))
                    .where(_S.c.client_ref.is_not(None), _S.c.at >= since_day)
                    .group_by(_S.c.client_ref)
                )
            }
            stale = sorted(ref for ref, mark in marks.items() if known.get(ref) != mark)
            fresh: dict[str, list[SignalIn]] = {ref: [] for ref in stale}
            for chunk in chunks(stale):
                query = sa.select(_S.c.client_ref, *_SIGNAL_IN).where(_S.c.client_ref.in_(chunk), _S.c.at >= since_day)
                for r in conn.execute(query):
                    fresh[str(r.client_ref)].append(_signal_in(r))
            return clients, marks, fresh

        clients, marks, fresh = await run_read(self.engine, read)
        self._signals_since = since_day
        self._signals = {
            ref: (mark, tuple(fresh[ref]) if ref in fresh else kept[ref][1]) for ref, mark in marks.items()
        }
        due = []
        for client in clients:
            _, signals = self._signals.get(client.client_ref, (None, ()))
            found = score_at([s for s in signals if s.at >= since], now, scoring)
            if compare(client.band, client.score, found).write:
                due.append(client.client_ref)
        if not due:
            return 0, False

        def work(conn: Connection) -> tuple[int, bool]:
            # Checked again in the transaction, from the database: each client scored as `record` does.
            written, noticed = 0, False
            for client_ref in due:
                client = _client_in(conn, client_ref)
                if client is None:
                    continue
                found = health(_signals_in(conn, client_ref, since), now, scoring)
                if compare(client.band, client.score, found).write:
                    noticed = _apply_in(conn, client, found, now) or noticed
                    written += 1
            return written, noticed

        return await run_write(self.engine, work)

    async def renew(self, today: date, now: datetime, days: Sequence[int]) -> int:
        """Record the renewal reminders due `today` (`rules.renewals_due`) with the notice of
        each one sent: how many notices were written."""
        most = max(days)

        def plans(conn: Connection) -> list[tuple[ContractRow, RenewalPlan]]:
            horizon = date.fromordinal(today.toordinal() + most)
            contracts = [
                _contract(r)
                for r in conn.execute(
                    sa.select(_CO)
                    .where(_CO.c.cancelled_at.is_(None), _CO.c.ends_on > today, _CO.c.ends_on <= horizon)
                    .order_by(_CO.c.deal_id)
                )
            ]
            if not contracts:
                return []
            done: dict[int, set[int]] = {}
            ids = [c.deal_id for c in contracts]
            ends = {c.deal_id: c.ends_on for c in contracts}
            query = sa.select(_RN.c.deal_id, _RN.c.contract_end, _RN.c.days).where(_RN.c.deal_id.in_(ids))
            for r in conn.execute(query):
                if ends.get(int(r.deal_id)) == r.contract_end:  # the reminders of this end, not a renewed one's
                    done.setdefault(int(r.deal_id), set()).add(int(r.days))
            found = []
            for contract in contracts:
                plan = renewals_due(contract.ends_on, today, days, done.get(contract.deal_id, set()))
                if plan.send is not None or plan.skip:
                    found.append((contract, plan))
            return found

        def work(conn: Connection) -> int:
            written = 0
            for contract, plan in plans(conn):
                for skipped in plan.skip:
                    _renewal_in(conn, contract, skipped, "skipped", now)
                if plan.send is None:
                    continue
                _renewal_in(conn, contract, plan.send, "sent", now)
                client = _client_in(conn, contract.client_ref)
                company = client.company if client is not None else contract.client_ref
                project = conn.execute(
                    sa.select(_P.c.project_id).where(_P.c.deal_id == contract.deal_id).order_by(_P.c.recorded_at)
                ).first()
                days_left = contract.ends_on.toordinal() - today.toordinal()
                event = {
                    "client_ref": contract.client_ref,
                    "project_id": str(project.project_id) if project is not None else None,
                    "contract_end": contract.ends_on.isoformat(),
                    "days_left": days_left,
                }
                alert = {
                    "idempotency_key": f"retention:renewal:{contract.deal_id}:{contract.ends_on}:{plan.send}",
                    "kind": ALERT_KIND,
                    "summary": texts.renewal_summary(company, contract.ends_on, days_left),
                    "text": texts.renewal_text(
                        company,
                        contract.client_ref,
                        contract.ends_on,
                        days_left,
                        client.band if client is not None else None,
                        client.score if client is not None else None,
                    ),
                }
                key = f"renewal:{contract.deal_id}:{contract.ends_on}:{plan.send}"
                _notice_in(conn, key, contract.client_ref, "renewal", event, alert, now)
                written += 1
            return written

        return await self.kept.write_if(("renew", today, tuple(days)), lambda conn: bool(plans(conn)), bool, work, 0)

    # -- notices -----------------------------------------------------------------------------------------------

    async def pending(self) -> list[NoticeRow]:
        """The notices not told yet, oldest first."""

        def work(conn: Connection) -> list[NoticeRow]:
            rows = conn.execute(sa.select(_N).where(_N.c.told_at.is_(None)).order_by(_N.c.id))
            return [NoticeRow(int(r.id), r.key, r.client_ref, r.kind, dict(r.event), r.alert) for r in rows]

        return list(await self.kept.read("pending", work))

    async def mark_told(self, notice_id: int, now: datetime) -> None:
        await run_write(
            self.engine,
            lambda conn: conn.execute(
                _N.update().where(_N.c.id == notice_id, _N.c.told_at.is_(None)).values(told_at=now)
            ),
        )

    # -- for people (the CLI) ----------------------------------------------------------------------------------

    async def clients(self, today: date | None = None) -> list[ClientRow]:
        """Every client, the reddest first (lowest score), then by company; with `today`, each
        with the end of its earliest contract neither cancelled nor ended by then."""

        def work(conn: Connection) -> list[ClientRow]:
            rows = conn.execute(sa.select(_CL))
            found = [_client(r) for r in rows]
            if today is not None:
                ends = dict(
                    conn.execute(
                        sa.select(_CO.c.client_ref, sa.func.min(_CO.c.ends_on))
                        .where(_CO.c.cancelled_at.is_(None), _CO.c.ends_on > today)
                        .group_by(_CO.c.client_ref)
                    ).all()
                )
                found = [replace(c, contract_end=ends.get(c.client_ref)) for c in found]
            found.sort(key=lambda c: (c.score if c.score is not None else 101.0, c.company.lower()))
            return found

        return await run_read(self.engine, work)

    async def find(self, query: str) -> ClientRow:
        """The one client `query` names: its company (any case), its contact's or billing email,
        its client ref or the start of it, or a part of its company's name. RetentionError for
        none or several."""
        text = query.strip()
        lowered = text.lower()

        def work(conn: Connection) -> list[ClientRow]:
            by_name = conn.execute(sa.select(_CL).where(sa.func.lower(_CL.c.company) == lowered)).all()
            if by_name:
                return [_client(r) for r in by_name]
            by_email = conn.execute(
                sa.select(_CL).where(
                    sa.or_(sa.func.lower(_CL.c.contact_email) == lowered, sa.func.lower(_CL.c.billing_email) == lowered)
                )
            ).all()
            if by_email:
                return [_client(r) for r in by_email]
            if len(lowered) >= 4 and all(ch in "0123456789abcdef-" for ch in lowered):
                by_ref = conn.execute(sa.select(_CL).where(_CL.c.client_ref.startswith(lowered))).all()
                if by_ref:
                    return [_client(r) for r in by_ref]
            # Last, a part of the company's name ("acme" for "Acme Logistics").
            return [_client(r) for r in conn.execute(sa.select(_CL)) if lowered in str(r.company).lower()]

        if not text:
            raise RetentionError("name a client: its company, its client ref (or its start) or its contact email")
        found = await run_read(self.engine, work)
        if not found:
            raise RetentionError(f"no client {text!r} (python run.py health lists them)")
        if len(found) > 1:
            names = ", ".join(f"{c.company} ({c.client_ref[:8]})" for c in found[:5])
            raise RetentionError(f"{text!r} fits {len(found)} clients: {names}; give more of the client ref")
        return found[0]

    async def breakdown(
        self, client_ref: str, now: datetime, scoring: Scoring, renewal_days: Sequence[int]
    ) -> Breakdown:
        """One client whole, scored now (not written: the running service writes)."""

        def work(conn: Connection) -> Breakdown:
            client = _client_in(conn, client_ref)
            if client is None:
                raise RetentionError(f"no client {client_ref!r}")
            found = health(_signals_in(conn, client_ref, None), now, scoring)
            contracts = tuple(
                _contract(r)
                for r in conn.execute(sa.select(_CO).where(_CO.c.client_ref == client_ref).order_by(_CO.c.starts_on))
            )
            renewals = tuple(
                (int(r.deal_id), int(r.days), r.due_on, r.state)
                for r in conn.execute(
                    sa.select(_RN).where(_RN.c.client_ref == client_ref).order_by(_RN.c.due_on, _RN.c.deal_id)
                )
            )
            today = now.date()
            upcoming: list[date] = []
            ends: list[date] = []
            for contract in contracts:
                if contract.cancelled_at is not None or contract.ends_on <= today:
                    continue
                ends.append(contract.ends_on)
                done = [
                    d
                    for deal, d, due, _ in renewals
                    if deal == contract.deal_id and due.toordinal() + d == contract.ends_on.toordinal()
                ]
                coming = next_renewal(contract.ends_on, today, renewal_days, done)
                if coming is not None:
                    upcoming.append(coming)
            return Breakdown(
                client=client,
                health=found,
                contracts=contracts,
                renewals=renewals,
                next_renewal=min(upcoming) if upcoming else None,
                contract_end=min(ends) if ends else None,
            )

        return await run_read(self.engine, work)


def _renewal_in(conn: Connection, contract: ContractRow, days: int, state: str, now: datetime) -> None:
    exists = conn.execute(
        sa.select(_RN.c.deal_id).where(
            _RN.c.deal_id == contract.deal_id, _RN.c.contract_end == contract.ends_on, _RN.c.days == days
        )
    ).first()
    if exists is not None:
        return
    due_on = date.fromordinal(contract.ends_on.toordinal() - days)
    conn.execute(
        _RN.insert().values(
            deal_id=contract.deal_id,
            contract_end=contract.ends_on,
            days=days,
            client_ref=contract.client_ref,
            due_on=due_on,
            state=state,
            recorded_at=now,
        )
    )
