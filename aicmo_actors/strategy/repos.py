"""Strategy's repositories: every read and write of the `strategy_*` tables.

Each public method is one transaction (one unit of work of `storage.work`) and returns rows
or plain dataclasses, never contract messages: the planner builds those. What goes into a
transaction whole (a version with its link and its email; a cancellation with its link
revoked, its emails cancelled and its notice) is decided there, so a crash leaves all of it
or none. The HTML, the PDF and the emails are made before (pure, in the planner) and handed in.

`StrategyStore` is the module's store: `store.plans` and `store.mail` (the client emails'
outbox, `storage.client_mail.MailBook`) over one engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.storage import client_mail
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.client_mail import MailBook, cancel_in, queue_in
from aicmo_actors.storage.links import UNKNOWN, find_in, issue_in, revoke_in
from aicmo_actors.storage.work import run_read, run_write
from aicmo_actors.strategy.plan import max_versions
from aicmo_actors.strategy.tables import (
    APPROVED,
    AWAITING,
    CHANGES_REQUESTED,
    strategy_emails,
    strategy_links,
    strategy_plans,
    strategy_requests,
)

#: The links' purpose (one link table per module; the purpose is checked on every use).
PURPOSE = "plan"
#: The email kinds.
PLAN_EMAIL, CANCELLED_EMAIL = "plan", "cancelled"
#: What the client's page may show: a version's answer, or withdrawn.
WITHDRAWN = "withdrawn"

_P = strategy_plans
_R = strategy_requests
_E = strategy_emails
#: Every column of a version but its HTML and PDF (read only where they are shown).
_VERSION_COLUMNS = [c for c in _P.c if c.name not in ("html", "pdf")]


def plan_email_key(project_id: str, version: int) -> str:
    return f"{project_id}:strategy:plan:{version}"


def cancelled_email_key(project_id: str) -> str:
    return f"{project_id}:strategy:cancelled"


@dataclass(frozen=True)
class Request:
    """What the saga asked for a project (the JSON as stored), and whether it cancelled."""

    project_id: str
    draft_key: str | None
    client: dict[str, Any] | None
    package: dict[str, Any] | None
    brief: dict[str, str] | None
    start: date | None
    cancelled_at: datetime | None


@dataclass(frozen=True)
class Version:
    """One version of a plan, without its HTML and PDF."""

    id: int
    project_id: str
    version: int
    plan: dict[str, Any]
    created_at: datetime
    deadline_at: datetime
    status: str
    answered_at: datetime | None
    comments: str | None
    announced_at: datetime | None
    overdue_at: datetime | None
    needs_person_at: datetime | None
    withdrawn_at: datetime | None

    @property
    def deliverables(self) -> int:
        return len(self.plan.get("items", ()))


@dataclass(frozen=True)
class State:
    """A project's strategy as it stands: the request and its latest version (if any)."""

    request: Request | None
    latest: Version | None

    @property
    def cancelled(self) -> bool:
        return self.request is not None and self.request.cancelled_at is not None


@dataclass(frozen=True)
class NewVersion:
    """A version made by the planner, ready to store with its link and email."""

    project_id: str
    version: int
    plan: dict[str, Any]
    html: str
    pdf: bytes
    deadline_at: datetime
    token: str
    link_expires_at: datetime
    email: EmailMessage


@dataclass(frozen=True)
class Cancelled:
    """What a cancellation did: `first` False when the project was cancelled already."""

    first: bool
    links_revoked: int = 0
    emails_cancelled: int = 0
    notice_queued: bool = False


@dataclass(frozen=True)
class PageView:
    """What the client's page shows for a link: the project's latest version."""

    project_id: str
    company: str
    version: int
    state: str  # awaiting, approved, changes_requested, withdrawn
    html: str
    deadline_at: datetime
    answered_at: datetime | None
    comments: str | None
    versions: tuple[int, ...]
    #: The last version the package's review rounds allow (changes asked on it need a person).
    last_round: bool
    timezone: str


@dataclass(frozen=True)
class Answered:
    """What an answer on the page did: `done` False when the version was not awaiting one
    (answered already, withdrawn, or a newer version exists): `view` says what it is."""

    done: bool
    view: PageView


def _request(row: Any) -> Request:
    return Request(
        project_id=row.project_id,
        draft_key=row.draft_key,
        client=row.client,
        package=row.package,
        brief=row.brief,
        start=row.start_date,
        cancelled_at=row.cancelled_at,
    )


def _version(row: Any) -> Version:
    return Version(
        id=int(row.id),
        project_id=row.project_id,
        version=int(row.version),
        plan=row.plan,
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        status=row.status,
        answered_at=row.answered_at,
        comments=row.comments,
        announced_at=row.announced_at,
        overdue_at=row.overdue_at,
        needs_person_at=row.needs_person_at,
        withdrawn_at=row.withdrawn_at,
    )


#: Versions awaiting the client's answer, not yet overdue, not withdrawn (built once).
_AWAITING = (_P.c.status == AWAITING, _P.c.overdue_at.is_(None), _P.c.withdrawn_at.is_(None))
#: The read of the first deadline of the versions awaiting an answer (built once).
_FIRST_DEADLINE = earliest(_P.c.deadline_at, *_AWAITING)


def request_in(conn: Connection, project_id: str) -> Request | None:
    row = conn.execute(sa.select(_R).where(_R.c.project_id == project_id)).first()
    return _request(row) if row is not None else None


def latest_in(conn: Connection, project_id: str) -> Version | None:
    row = conn.execute(
        sa.select(*_VERSION_COLUMNS).where(_P.c.project_id == project_id).order_by(_P.c.version.desc()).limit(1)
    ).first()
    return _version(row) if row is not None else None


def _insert_version(conn: Connection, new: NewVersion, now: datetime) -> None:
    conn.execute(
        _P.insert().values(
            project_id=new.project_id,
            version=new.version,
            plan=new.plan,
            html=new.html,
            pdf=new.pdf,
            created_at=now,
            deadline_at=new.deadline_at,
            status=AWAITING,
        )
    )
    issue_in(
        conn,
        strategy_links,
        token=new.token,
        project_id=new.project_id,
        purpose=PURPOSE,
        now=now,
        expires_at=new.link_expires_at,
    )
    queue_in(
        conn,
        strategy_emails,
        key=plan_email_key(new.project_id, new.version),
        project_id=new.project_id,
        kind=PLAN_EMAIL,
        message=new.email,
        now=now,
    )


def _set(conn: Connection, plan_id: int, *conditions: sa.ColumnElement[bool], **values: Any) -> bool:
    """Update status fields of one version where `conditions` still hold: whether it did."""
    statement = _P.update().where(_P.c.id == plan_id, *conditions).values(**values)
    return bool(conn.execute(statement).rowcount)


class PlansRepo:
    """The requests and the versions of every project's plan."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def state(self, project_id: str) -> State:
        def work(conn: Connection) -> State:
            return State(request_in(conn, project_id), latest_in(conn, project_id))

        return await run_read(self.engine, work)

    async def request(self, project_id: str) -> Request | None:
        return await run_read(self.engine, lambda conn: request_in(conn, project_id))

    async def versions(self, project_id: str) -> list[Version]:
        query = sa.select(*_VERSION_COLUMNS).where(_P.c.project_id == project_id).order_by(_P.c.version)
        return await run_read(self.engine, lambda conn: [_version(r) for r in conn.execute(query)])

    async def document(self, project_id: str, version: int) -> tuple[str, bytes] | None:
        """The HTML and the PDF of one version."""
        query = sa.select(_P.c.html, _P.c.pdf).where(_P.c.project_id == project_id, _P.c.version == version)

        def work(conn: Connection) -> tuple[str, bytes] | None:
            row = conn.execute(query).first()
            return (row.html, bytes(row.pdf)) if row is not None else None

        return await run_read(self.engine, work)

    async def create_first(
        self,
        new: NewVersion,
        *,
        draft_key: str,
        client: dict[str, Any],
        package: dict[str, Any],
        brief: dict[str, str],
        start: date,
        now: datetime,
    ) -> tuple[bool, State]:
        """Store the request and version 1 with its link and email, unless the project has a
        version or was cancelled already: (whether it did, the state after)."""

        def work(conn: Connection) -> tuple[bool, State]:
            found = request_in(conn, new.project_id)
            latest = latest_in(conn, new.project_id)
            if latest is not None or (found is not None and found.cancelled_at is not None):
                return False, State(found, latest)
            values = {
                "draft_key": draft_key,
                "client": client,
                "package": package,
                "brief": brief,
                "start_date": start,
            }
            if found is None:
                conn.execute(_R.insert().values(project_id=new.project_id, created_at=now, **values))
            else:
                conn.execute(_R.update().where(_R.c.project_id == new.project_id).values(**values))
            _insert_version(conn, new, now)
            return True, State(request_in(conn, new.project_id), latest_in(conn, new.project_id))

        return await run_write(self.engine, work)

    async def revise(self, previous_id: int, new: NewVersion, now: datetime) -> bool:
        """Store version N+1 (link, email) after the client's changes on version N, and mark N
        announced: all or nothing, and only while N still waits for it (not withdrawn, not
        revised already)."""

        def work(conn: Connection) -> bool:
            if not _set(
                conn,
                previous_id,
                _P.c.status == CHANGES_REQUESTED,
                _P.c.announced_at.is_(None),
                _P.c.withdrawn_at.is_(None),
                announced_at=now,
            ):
                return False
            request = request_in(conn, new.project_id)
            if request is None or request.cancelled_at is not None:
                raise RuntimeError(f"project {new.project_id}: a revision without a live request")
            _insert_version(conn, new, now)
            return True

        return await run_write(self.engine, work)

    async def needs_person(self, plan_id: int, now: datetime) -> bool:
        """Changes were asked for on the last version the package allows: mark it announced and
        needing a person (no new version is made)."""
        return await run_write(
            self.engine,
            lambda conn: _set(
                conn,
                plan_id,
                _P.c.status == CHANGES_REQUESTED,
                _P.c.announced_at.is_(None),
                announced_at=now,
                needs_person_at=now,
            ),
        )

    async def unannounced(self) -> list[Version]:
        """Answers given on the page and not announced yet (approvals, changes asked for), oldest first."""
        query = (
            sa.select(*_VERSION_COLUMNS)
            .where(
                _P.c.status.in_((APPROVED, CHANGES_REQUESTED)),
                _P.c.announced_at.is_(None),
                _P.c.withdrawn_at.is_(None),
            )
            .order_by(_P.c.answered_at, _P.c.id)
        )
        return list(await self.kept.read("unannounced", lambda conn: [_version(r) for r in conn.execute(query)]))

    async def mark_announced(self, plan_id: int, now: datetime) -> bool:
        return await run_write(
            self.engine, lambda conn: _set(conn, plan_id, _P.c.announced_at.is_(None), announced_at=now)
        )

    async def overdue(self, now: datetime) -> list[Version]:
        """Versions still awaiting an answer past their deadline, not yet said to be overdue."""

        def work(conn: Connection) -> list[Version]:
            query = (
                sa.select(*_VERSION_COLUMNS)
                .where(*_AWAITING, _P.c.deadline_at <= now)
                .order_by(_P.c.deadline_at, _P.c.id)
            )
            return [_version(r) for r in conn.execute(query)]

        return await self.kept.read_if("overdue", _FIRST_DEADLINE, come(now), work, [])

    async def mark_overdue(self, plan_id: int, now: datetime) -> bool:
        return await run_write(self.engine, lambda conn: _set(conn, plan_id, _P.c.overdue_at.is_(None), overdue_at=now))

    async def cancel(
        self, project_id: str, *, key: str, reason: str, notice: EmailMessage | None, now: datetime
    ) -> Cancelled:
        """Withdraw a project's plan (compensation), once: revoke its links, cancel its queued
        emails, mark every version withdrawn, and queue `notice` if a plan email may have
        reached the client. A cancellation may come before any plan (then it is only recorded,
        and a later `DraftStrategy` makes none)."""

        def work(conn: Connection) -> Cancelled:
            found = request_in(conn, project_id)
            if found is not None and found.cancelled_at is not None:
                return Cancelled(first=False)
            values = {"cancelled_at": now, "cancel_key": key, "cancel_reason": reason}
            if found is None:
                conn.execute(_R.insert().values(project_id=project_id, created_at=now, **values))
            else:
                conn.execute(_R.update().where(_R.c.project_id == project_id).values(**values))
            revoked = revoke_in(conn, strategy_links, project_id, now)
            cancelled = cancel_in(conn, strategy_emails, project_id, now)
            conn.execute(
                _P.update().where(_P.c.project_id == project_id, _P.c.withdrawn_at.is_(None)).values(withdrawn_at=now)
            )
            reached = conn.execute(
                sa.select(sa.func.count())
                .select_from(_E)
                .where(
                    _E.c.project_id == project_id,
                    _E.c.kind == PLAN_EMAIL,
                    _E.c.status.in_((client_mail.SENT, client_mail.UNCONFIRMED, client_mail.SENDING)),
                )
            ).scalar_one()
            queued = False
            if reached and notice is not None:
                queued = queue_in(
                    conn,
                    strategy_emails,
                    key=cancelled_email_key(project_id),
                    project_id=project_id,
                    kind=CANCELLED_EMAIL,
                    message=notice,
                    now=now,
                )
            return Cancelled(first=True, links_revoked=revoked, emails_cancelled=cancelled, notice_queued=queued)

        return await run_write(self.engine, work)

    # -- the client's page --------------------------------------------------------------------------------------

    async def page(self, token: str, now: datetime) -> PageView | str:
        """What the page of `token` shows, or why it shows nothing (`storage.links` reasons)."""
        return await run_write(self.engine, lambda conn: _page_in(conn, token, now))

    async def answer(
        self, token: str, version: int, *, approve: bool, comments: str | None, now: datetime
    ) -> Answered | str:
        """The client approves `version`, or asks for changes with `comments`, in one
        transaction with the link's check: only the latest version, only while it awaits."""

        def work(conn: Connection) -> Answered | str:
            view = _page_in(conn, token, now)
            if isinstance(view, str):
                return view
            if view.version != version or view.state != AWAITING:
                return Answered(False, view)
            latest = latest_in(conn, view.project_id)
            assert latest is not None
            values: dict[str, Any] = {"answered_at": now}
            if approve:
                values["status"] = APPROVED
            else:
                values.update(status=CHANGES_REQUESTED, comments=comments)
            done = _set(conn, latest.id, _P.c.status == AWAITING, _P.c.withdrawn_at.is_(None), **values)
            after = _view_in(conn, view.project_id)
            assert not isinstance(after, str)
            return Answered(done, after)

        return await run_write(self.engine, work)

    async def pdf(self, token: str, version: int, now: datetime) -> bytes | str | None:
        """The PDF of `version` of the project `token` opens: None when there is no such version."""

        def work(conn: Connection) -> bytes | str | None:
            opened = find_in(conn, strategy_links, token, PURPOSE, now)
            if isinstance(opened, str):
                return opened
            row = conn.execute(
                sa.select(_P.c.pdf).where(_P.c.project_id == opened.project_id, _P.c.version == version)
            ).first()
            return bytes(row.pdf) if row is not None else None

        return await run_write(self.engine, work)


def _page_in(conn: Connection, token: str, now: datetime) -> PageView | str:
    opened = find_in(conn, strategy_links, token, PURPOSE, now)
    return opened if isinstance(opened, str) else _view_in(conn, opened.project_id)


def _view_in(conn: Connection, project_id: str) -> PageView | str:
    request = request_in(conn, project_id)
    row = conn.execute(
        sa.select(_P).where(_P.c.project_id == project_id).order_by(_P.c.version.desc()).limit(1)
    ).first()
    if row is None or request is None:  # a link is only issued with a version: never happens
        return UNKNOWN
    query = sa.select(_P.c.version).where(_P.c.project_id == project_id).order_by(_P.c.version)
    versions = tuple(int(v) for v in conn.execute(query).scalars())
    client = request.client or {}
    rounds = int((request.package or {}).get("review_rounds", 0))
    return PageView(
        project_id=project_id,
        company=str(client.get("company", "")),
        version=int(row.version),
        state=WITHDRAWN if row.withdrawn_at is not None else row.status,
        html=row.html,
        deadline_at=row.deadline_at,
        answered_at=row.answered_at,
        comments=row.comments,
        versions=versions,
        last_round=int(row.version) >= max_versions(rounds),
        timezone=str(client.get("timezone", "UTC")),
    )


class StrategyStore:
    """Strategy's repositories over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.plans = PlansRepo(engine)
        self.mail = MailBook(engine, strategy_emails)
