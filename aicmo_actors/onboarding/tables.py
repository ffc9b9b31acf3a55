"""The tables of onboarding (prefix ``onboarding_``). Declarations only: no business logic.

- ``onboarding_intakes``: one row per project (its id is the key, so a `StartOnboarding`
  told twice finds the first one): the client's copy, the saved answers, the reminder
  schedule's state, and what was announced to the saga;
- ``onboarding_emails``: the welcome, reminders and "we have stopped" emails, sent at most
  once per idempotency key (`storage.client_mail`);
- ``onboarding_links``: the intake form's capability links (`storage.links`);
- ``onboarding_replies``: emails the client sent back in answer to ours, kept for a person.

The allowed values of the state column are repeated in a CHECK constraint on purpose: a
new value is a schema change and gets a migration (copy the literal list there).
"""

from __future__ import annotations

import sqlalchemy as sa

from aicmo_actors.storage.client_mail import mail_table
from aicmo_actors.storage.links import link_table
from aicmo_actors.storage.metadata import Id, UtcDateTime, metadata

WAITING, COMPLETED, CANCELLED = "waiting", "completed", "cancelled"
INTAKE_STATES = (WAITING, COMPLETED, CANCELLED)
#: RFC 5321 limits an address to 254 octets in practice; 320 leaves room for odd ones.
ADDRESS = 320


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


onboarding_intakes = sa.Table(
    "onboarding_intakes",
    metadata,
    sa.Column("project_id", sa.String(36), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    # The client and package as the deal carried them (None: cancelled before it started).
    sa.Column("client", sa.JSON, nullable=True),
    sa.Column("package", sa.JSON, nullable=True),
    sa.Column("start_date", sa.Date, nullable=True),
    # What the intake link's token is made from with the installation's secret (the
    # reminders repeat the link); only the token's hash is in `onboarding_links`.
    sa.Column("link_nonce", sa.BigInteger, nullable=True),
    sa.Column("link_expires_at", UtcDateTime, nullable=True),
    # The answers saved so far ({question key: text}), and the brief once completed.
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("brief", sa.JSON, nullable=True),
    # The reminder policy it started with, how far it got, and when to look again.
    sa.Column("reminder_every", sa.Integer, nullable=False),
    sa.Column("reminders_planned", sa.Integer, nullable=False),
    sa.Column("reminders_sent", sa.Integer, nullable=False),
    sa.Column("next_action_at", UtcDateTime, nullable=True),
    sa.Column("deadline_at", UtcDateTime, nullable=True),
    sa.Column("overdue_at", UtcDateTime, nullable=True),
    sa.Column("overdue_announced_at", UtcDateTime, nullable=True),
    # The client answered by email: a person reads it (reminders stop).
    sa.Column("needs_person_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
    sa.Column("completed_by", sa.String(200), nullable=True),
    # When `OnboardingCompleted` was published (NULL: still to announce, at least once).
    sa.Column("announced_at", UtcDateTime, nullable=True),
    sa.Column("cancelled_at", UtcDateTime, nullable=True),
    sa.Column("cancel_reason", sa.Text, nullable=True),
    sa.CheckConstraint(_one_of("state", INTAKE_STATES), name="state"),
    sa.Index(None, "state", "next_action_at"),
)

onboarding_emails = mail_table("onboarding")
onboarding_links = link_table("onboarding")

onboarding_replies = sa.Table(
    "onboarding_replies",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.String(36), nullable=False, index=True),
    # CAM's inbound row (`UnmatchedReply.inbound_id`): stored once per project.
    sa.Column("inbound_id", sa.BigInteger, nullable=False),
    sa.Column("from_address", sa.String(ADDRESS), nullable=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("stored_at", UtcDateTime, nullable=False),
    # When `IntakeReplyReceived` was published (NULL: still to announce).
    sa.Column("announced_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("project_id", "inbound_id"),
)
