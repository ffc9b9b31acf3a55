"""The intake form behind a capability link: open it, save answers, submit.

The token is the only credential: each method looks it up (`storage.links.find_in`, which
also records its use) in the transaction that reads or writes the answers, so a link
revoked or expired a moment ago opens nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.onboarding import rules
from aicmo_actors.onboarding.repos.intakes import PURPOSE, complete_in
from aicmo_actors.onboarding.repos.records import IntakeRow, get_in
from aicmo_actors.onboarding.tables import COMPLETED
from aicmo_actors.onboarding.tables import onboarding_intakes as intakes_t
from aicmo_actors.onboarding.tables import onboarding_links as links_t
from aicmo_actors.storage.links import REVOKED, UNKNOWN, Opened, find_in
from aicmo_actors.storage.work import run_write

#: Who completed an intake through the form (`completed_by`).
BY_CLIENT = "client"


@dataclass(frozen=True)
class FormView:
    """What the form page shows."""

    project_id: str
    company: str
    state: str
    answers: dict[str, str]
    brief: dict[str, str] | None
    completed_at: datetime | None
    expires_at: datetime
    timezone: str


@dataclass(frozen=True)
class Saved:
    """What a POST did: the intake's state after it, whether this save completed it, and
    the required answers still missing (for a submit that could not complete)."""

    state: str
    completed_now: bool
    missing: tuple[str, ...]


def _open_in(conn: Connection, token: str, now: datetime) -> tuple[Opened, IntakeRow] | str:
    opened = find_in(conn, links_t, token, PURPOSE, now)
    if isinstance(opened, str):
        return opened
    row = get_in(conn, opened.project_id)
    if row is None:
        return UNKNOWN
    if row.cancelled:
        return REVOKED
    return opened, row


def _view(opened: Opened, row: IntakeRow) -> FormView:
    return FormView(
        project_id=row.project_id,
        company=row.company,
        state=row.state,
        answers=row.answers,
        brief=row.brief,
        completed_at=row.completed_at,
        expires_at=opened.expires_at,
        timezone=row.timezone,
    )


class FormsRepo:
    """The web form's transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def open(self, token: str, now: datetime) -> FormView | str:
        """The form `token` opens, or why it opens nothing (`storage.links` UNKNOWN, EXPIRED,
        REVOKED; a cancelled onboarding's link is REVOKED)."""

        def work(conn: Connection) -> FormView | str:
            found = _open_in(conn, token, now)
            return found if isinstance(found, str) else _view(*found)

        return await run_write(self.engine, work)

    async def save(self, token: str, answers: Mapping[str, str], *, submit: bool, now: datetime) -> Saved | str:
        """Save `answers` (cleaned and checked by the caller: `rules.check_answers`) over the
        saved ones; with `submit` and every required answer there, complete the intake in the
        same transaction. A completed intake is not changed."""

        def work(conn: Connection) -> Saved | str:
            found = _open_in(conn, token, now)
            if isinstance(found, str):
                return found
            _, row = found
            if not row.waiting:
                return Saved(row.state, False, ())
            merged = rules.merge(row.answers, answers)
            lacking = tuple(rules.missing(merged))
            if submit and not lacking:
                complete_in(conn, row.project_id, merged, BY_CLIENT, now)
                return Saved(COMPLETED, True, ())
            conn.execute(
                intakes_t.update()
                .where(intakes_t.c.project_id == row.project_id, intakes_t.c.state == row.state)
                .values(answers=merged, updated_at=now)
            )
            return Saved(row.state, False, lacking if submit else ())

        return await run_write(self.engine, work)
