"""The rows onboarding's repositories return: plain dataclasses, read from `onboarding_intakes`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aicmo_actors.onboarding.tables import CANCELLED, COMPLETED, WAITING
from aicmo_actors.onboarding.tables import onboarding_intakes as intakes_t


@dataclass(frozen=True)
class IntakeRow:
    """One project's intake as the actor and the operator see it."""

    project_id: str
    idempotency_key: str
    state: str
    company: str
    contact_name: str | None
    contact_email: str
    timezone: str
    country: str
    start_date: date | None
    link_nonce: int | None
    link_expires_at: datetime | None
    answers: dict[str, str]
    brief: dict[str, str] | None
    reminder_every: int
    reminders_planned: int
    reminders_sent: int
    next_action_at: datetime | None
    deadline_at: datetime | None
    overdue_at: datetime | None
    needs_person_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    announced_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None

    @property
    def waiting(self) -> bool:
        return self.state == WAITING

    @property
    def completed(self) -> bool:
        return self.state == COMPLETED

    @property
    def cancelled(self) -> bool:
        return self.state == CANCELLED


def _text_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def intake_row(row: Any) -> IntakeRow:
    client = row.client if isinstance(row.client, dict) else {}
    return IntakeRow(
        project_id=row.project_id,
        idempotency_key=row.idempotency_key,
        state=row.state,
        company=str(client.get("company", "")),
        contact_name=client.get("contact_name"),
        contact_email=str(client.get("contact_email", "")),
        timezone=str(client.get("timezone", "UTC")),
        country=str(client.get("country", "US")),
        start_date=row.start_date,
        link_nonce=row.link_nonce,
        link_expires_at=row.link_expires_at,
        answers=_text_map(row.answers),
        brief=_text_map(row.brief) if row.brief is not None else None,
        reminder_every=row.reminder_every,
        reminders_planned=row.reminders_planned,
        reminders_sent=row.reminders_sent,
        next_action_at=row.next_action_at,
        deadline_at=row.deadline_at,
        overdue_at=row.overdue_at,
        needs_person_at=row.needs_person_at,
        created_at=row.created_at,
        completed_at=row.completed_at,
        completed_by=row.completed_by,
        announced_at=row.announced_at,
        cancelled_at=row.cancelled_at,
        cancel_reason=row.cancel_reason,
    )


def get_in(conn: Connection, project_id: str) -> IntakeRow | None:
    row = conn.execute(sa.select(intakes_t).where(intakes_t.c.project_id == project_id)).first()
    return intake_row(row) if row is not None else None
