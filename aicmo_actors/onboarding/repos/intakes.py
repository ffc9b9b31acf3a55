"""The intakes (`onboarding_intakes`) and everything decided with them in one transaction:
the welcome and its link when one starts, reminders, overdue, completion, cancellation,
and which of those the saga has been told.

Idempotent by construction: an intake is keyed by its project, an email by its key
(`client_mail.queue_in`), and every change of state is guarded by the state it expects, so a
command told twice, or a tick run again after a crash, changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.onboarding import rules
from aicmo_actors.onboarding.emails import CANCELLED as CANCELLED_EMAIL
from aicmo_actors.onboarding.emails import REMINDER, WELCOME, email_key
from aicmo_actors.onboarding.repos.records import IntakeRow, get_in, intake_row
from aicmo_actors.onboarding.tables import CANCELLED, COMPLETED, WAITING
from aicmo_actors.onboarding.tables import onboarding_emails as emails_t
from aicmo_actors.onboarding.tables import onboarding_intakes as intakes_t
from aicmo_actors.onboarding.tables import onboarding_links as links_t
from aicmo_actors.onboarding.tables import onboarding_replies as replies_t
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.client_mail import CANCELLED as EMAIL_CANCELLED
from aicmo_actors.storage.client_mail import QUEUED, SENDING, SENT, UNCONFIRMED, cancel_in, queue_in
from aicmo_actors.storage.links import issue_in, revoke_in
from aicmo_actors.storage.work import run_read, run_write

#: The capability link's purpose (`storage.links`).
PURPOSE = "intake"


class IntakeError(ValueError):
    """An operator's request that cannot be done (one-line message)."""


@dataclass(frozen=True)
class NewIntake:
    """Everything a first `StartOnboarding` decides, prepared before its transaction."""

    project_id: str
    idempotency_key: str
    client: dict[str, Any]
    package: dict[str, Any]
    start_date: date
    token: str
    link_nonce: int
    link_expires_at: datetime
    welcome: EmailMessage
    policy: rules.ReminderPolicy
    plan: rules.Plan


@dataclass(frozen=True)
class CompletedNews:
    """A completed intake the saga has not been told about."""

    project_id: str
    brief: dict[str, str]
    completed_at: datetime


@dataclass(frozen=True)
class OverdueNews:
    project_id: str
    reminders_sent: int


@dataclass(frozen=True)
class ReplyNews:
    project_id: str
    reply_id: int
    inbound_id: int


News = CompletedNews | OverdueNews | ReplyNews


def complete_in(conn: Connection, project_id: str, answers: Mapping[str, str], by: str, now: datetime) -> bool:
    """Complete a waiting intake with `answers` (the required ones present): the brief is
    stored, queued reminders are cancelled. False when it was not waiting."""
    done = conn.execute(
        intakes_t.update()
        .where(intakes_t.c.project_id == project_id, intakes_t.c.state == WAITING)
        .values(
            state=COMPLETED,
            answers=dict(answers),
            brief=rules.brief_of(answers),
            completed_at=now,
            completed_by=by,
            next_action_at=None,
            updated_at=now,
        )
    ).rowcount
    if done:
        conn.execute(
            emails_t.update()
            .where(emails_t.c.project_id == project_id, emails_t.c.kind == REMINDER, emails_t.c.status == QUEUED)
            .values(status=EMAIL_CANCELLED, error="the intake was completed", next_attempt_at=now)
        )
    return bool(done)


# What a tick asks for, built once: the statements never change.


#: Intakes waiting for the client, not yet overdue.
_WAITING = (intakes_t.c.state == WAITING, intakes_t.c.overdue_at.is_(None))
#: The read of the first moment a waiting intake has a reminder or its alert due.
_FIRST_DUE = earliest(intakes_t.c.next_action_at, *_WAITING)


class IntakesRepo:
    """One transaction per method over the intakes and their emails and links."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def get(self, project_id: str) -> IntakeRow | None:
        return await run_read(self.engine, lambda conn: get_in(conn, project_id))

    async def start(self, new: NewIntake, now: datetime) -> tuple[IntakeRow, bool]:
        """Create the intake, its link and its welcome, unless the project has one: (the
        intake, whether it was created now)."""

        def work(conn: Connection) -> tuple[IntakeRow, bool]:
            existing = get_in(conn, new.project_id)
            if existing is not None:
                return existing, False
            conn.execute(
                intakes_t.insert().values(
                    project_id=new.project_id,
                    idempotency_key=new.idempotency_key,
                    state=WAITING,
                    client=new.client,
                    package=new.package,
                    start_date=new.start_date,
                    link_nonce=new.link_nonce,
                    link_expires_at=new.link_expires_at,
                    answers={},
                    reminder_every=new.policy.every,
                    reminders_planned=new.policy.count,
                    reminders_sent=0,
                    next_action_at=new.plan.first_action_at,
                    deadline_at=new.plan.deadline_at,
                    created_at=now,
                    updated_at=now,
                )
            )
            issue_in(
                conn,
                links_t,
                token=new.token,
                project_id=new.project_id,
                purpose=PURPOSE,
                now=now,
                expires_at=new.link_expires_at,
            )
            queue_in(
                conn,
                emails_t,
                key=email_key(new.project_id, WELCOME),
                project_id=new.project_id,
                kind=WELCOME,
                message=new.welcome,
                now=now,
            )
            created = get_in(conn, new.project_id)
            assert created is not None
            return created, True

        return await run_write(self.engine, work)

    async def cancel(
        self,
        project_id: str,
        *,
        idempotency_key: str,
        reason: str,
        now: datetime,
        farewell: Callable[[IntakeRow], EmailMessage],
    ) -> tuple[IntakeRow, bool]:
        """Stop a project's onboarding (compensation): revoke its links, cancel its queued
        emails, mark it cancelled and, if the welcome went out (or may have), queue a short
        "we have stopped" email built by `farewell`. With no intake yet, a cancelled one is
        stored, so a late `StartOnboarding` starts nothing. (The intake, whether it changed.)"""

        def work(conn: Connection) -> tuple[IntakeRow, bool]:
            row = get_in(conn, project_id)
            if row is None:
                conn.execute(
                    intakes_t.insert().values(
                        project_id=project_id,
                        idempotency_key=idempotency_key,
                        state=CANCELLED,
                        answers={},
                        reminder_every=0,
                        reminders_planned=0,
                        reminders_sent=0,
                        created_at=now,
                        updated_at=now,
                        cancelled_at=now,
                        cancel_reason=reason,
                    )
                )
                tombstone = get_in(conn, project_id)
                assert tombstone is not None
                return tombstone, True
            if row.cancelled:
                return row, False
            welcome = conn.execute(
                sa.select(emails_t.c.status).where(emails_t.c.idempotency_key == email_key(project_id, WELCOME))
            ).scalar()
            revoke_in(conn, links_t, project_id, now)
            cancel_in(conn, emails_t, project_id, now)
            conn.execute(
                intakes_t.update()
                .where(intakes_t.c.project_id == project_id)
                .values(state=CANCELLED, cancelled_at=now, cancel_reason=reason, next_action_at=None, updated_at=now)
            )
            if welcome in (SENT, UNCONFIRMED, SENDING):
                queue_in(
                    conn,
                    emails_t,
                    key=email_key(project_id, CANCELLED_EMAIL),
                    project_id=project_id,
                    kind=CANCELLED_EMAIL,
                    message=farewell(row),
                    now=now,
                )
            cancelled = get_in(conn, project_id)
            assert cancelled is not None
            return cancelled, True

        return await run_write(self.engine, work)

    async def due(self, now: datetime, limit: int = 100) -> list[IntakeRow]:
        """Waiting intakes whose next reminder (or the alert) is due, oldest first."""
        t = intakes_t

        def work(conn: Connection) -> list[IntakeRow]:
            query = (
                sa.select(t)
                .where(*_WAITING, t.c.next_action_at <= now)
                .order_by(t.c.next_action_at, t.c.project_id)
                .limit(limit)
            )
            return [intake_row(r) for r in conn.execute(query)]

        return await self.kept.read_if("due", _FIRST_DUE, come(now), work, [])

    async def remind(self, project_id: str, step: rules.Remind, message: EmailMessage, now: datetime) -> bool:
        """Queue reminder `step.number` and move the schedule on, if the intake still waits for
        exactly that reminder: True when done now."""

        def work(conn: Connection) -> bool:
            t = intakes_t
            moved = conn.execute(
                t.update()
                .where(
                    t.c.project_id == project_id,
                    t.c.state == WAITING,
                    t.c.overdue_at.is_(None),
                    t.c.reminders_sent == step.number - 1,
                )
                .values(
                    reminders_sent=step.number,
                    next_action_at=step.next_action_at,
                    deadline_at=step.deadline_at,
                    updated_at=now,
                )
            ).rowcount
            if not moved:
                return False
            queue_in(
                conn,
                emails_t,
                key=email_key(project_id, REMINDER, step.number),
                project_id=project_id,
                kind=REMINDER,
                message=message,
                now=now,
            )
            return True

        return await run_write(self.engine, work)

    async def mark_overdue(self, project_id: str, now: datetime) -> bool:
        """Mark a waiting intake overdue, once: True when done now (announce it)."""
        t = intakes_t
        statement = (
            t.update()
            .where(t.c.project_id == project_id, t.c.state == WAITING, t.c.overdue_at.is_(None))
            .values(overdue_at=now, next_action_at=None, updated_at=now)
        )
        return await run_write(self.engine, lambda conn: bool(conn.execute(statement).rowcount))

    async def complete_by_hand(self, project_id: str, answers: Mapping[str, str], by: str, now: datetime) -> IntakeRow:
        """A person completes an intake (after reading the client's emailed answers): `answers`
        are merged over the saved ones; every required one must then be there. The saga is
        told on the next tick. Raises `IntakeError` with what is wrong."""
        checked = rules.check_answers(answers)
        unknown = sorted(set(answers) - set(rules.FIELD_KEYS))
        if unknown:
            raise IntakeError(f"unknown questions: {', '.join(unknown)} (known: {', '.join(rules.FIELD_KEYS)})")
        if checked.errors:
            raise IntakeError(f"answer too long: {', '.join(checked.errors)} (at most {rules.MAX_ANSWER_CHARS} chars)")

        def work(conn: Connection) -> IntakeRow:
            row = get_in(conn, project_id)
            if row is None:
                raise IntakeError(f"no onboarding for project {project_id}")
            if not row.waiting:
                raise IntakeError(f"the onboarding of project {project_id} is {row.state}, not waiting")
            merged = rules.merge(row.answers, checked.answers)
            lacking = rules.missing(merged)
            if lacking:
                raise IntakeError(f"required answers missing: {', '.join(lacking)}")
            complete_in(conn, project_id, merged, by, now)
            done = get_in(conn, project_id)
            assert done is not None
            return done

        return await run_write(self.engine, work)

    async def news(self, limit: int = 100) -> list[News]:
        """What the saga has not been told yet: completions (by the form or a person), overdue
        intakes, emailed answers."""

        def work(conn: Connection) -> list[News]:
            t = intakes_t
            found: list[News] = []
            completed = conn.execute(
                sa.select(t.c.project_id, t.c.brief, t.c.completed_at)
                .where(t.c.state == COMPLETED, t.c.announced_at.is_(None))
                .order_by(t.c.completed_at, t.c.project_id)
                .limit(limit)
            )
            found += [CompletedNews(r.project_id, dict(r.brief or {}), r.completed_at) for r in completed]
            overdue = conn.execute(
                sa.select(t.c.project_id, t.c.reminders_sent)
                .where(t.c.state == WAITING, t.c.overdue_at.is_not(None), t.c.overdue_announced_at.is_(None))
                .order_by(t.c.overdue_at, t.c.project_id)
                .limit(limit)
            )
            found += [OverdueNews(r.project_id, r.reminders_sent) for r in overdue]
            r_t = replies_t
            replies = conn.execute(
                sa.select(r_t.c.id, r_t.c.project_id, r_t.c.inbound_id)
                .where(r_t.c.announced_at.is_(None))
                .order_by(r_t.c.id)
                .limit(limit)
            )
            found += [ReplyNews(r.project_id, r.id, r.inbound_id) for r in replies]
            return found

        return list(await self.kept.read(("news", limit), work))

    async def told(self, news: News, now: datetime) -> None:
        """`news` was published: not again."""
        if isinstance(news, CompletedNews):
            statement: Any = (
                intakes_t.update()
                .where(intakes_t.c.project_id == news.project_id, intakes_t.c.announced_at.is_(None))
                .values(announced_at=now)
            )
        elif isinstance(news, OverdueNews):
            statement = (
                intakes_t.update()
                .where(intakes_t.c.project_id == news.project_id, intakes_t.c.overdue_announced_at.is_(None))
                .values(overdue_announced_at=now)
            )
        else:
            statement = replies_t.update().where(replies_t.c.id == news.reply_id).values(announced_at=now)
        await run_write(self.engine, lambda conn: conn.execute(statement))
