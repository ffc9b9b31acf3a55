"""The tables of reporting (prefix ``reporting_``). Declarations only: no business logic.

- ``reporting_clients``: one row per client (learned from CAM's `ClientSigned`, by deal), with
  its copy of the client and the package and its report schedule (period, hour, timezone,
  formats, the campaigns whose funnel it shows, on or off);
- ``reporting_projects``: which deal each project belongs to (`ProjectOpened`);
- ``reporting_items``: what is known of each work item: planned (strategy's `PlanApproved`),
  late (production's `ItemLate`), delivered when (delivery's `ItemDelivered`);
- ``reporting_reviews``: the client's verdict on each version of each item (`ItemReviewed`);
- ``reporting_kpi_values``: a KPI's value for a period (imported or posted), against the
  package's target, and whether `KpiMeasured` was published for it yet;
- ``reporting_funnel``: CAM's funnel per campaign and UTC day (emails sent, replies, positive
  replies, clients signed), and ``reporting_funnel_seen`` the events already counted (so an
  event handled twice is counted once);
- ``reporting_reports``: one row per client and period reported, written in the transaction that
  queues its email (``reporting_emails``, `storage.client_mail`): never twice.
"""

from __future__ import annotations

import sqlalchemy as sa

from aicmo_actors.storage.client_mail import mail_table
from aicmo_actors.storage.metadata import Id, UtcDateTime, metadata

PERIOD_KINDS = ("day", "week", "fortnight", "month")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


reporting_clients = sa.Table(
    "reporting_clients",
    metadata,
    sa.Column("client_ref", sa.String(36), primary_key=True),
    sa.Column("deal_id", sa.Integer, nullable=False, unique=True),
    sa.Column("company", sa.Text, nullable=False),
    sa.Column("contact_email", sa.String(320), nullable=False),
    #: `ClientInfo` and `PackageSpec` as JSON, as signed.
    sa.Column("client", sa.JSON, nullable=False),
    sa.Column("package", sa.JSON, nullable=False),
    sa.Column("campaign", sa.String(200), nullable=False),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("signed_at", UtcDateTime, nullable=False),
    #: The schedule: period kind, hour and timezone of sending, formats ("html,pdf").
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("hour", sa.Integer, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("formats", sa.String(40), nullable=False),
    #: Campaign names whose CAM funnel the report shows (a JSON list).
    sa.Column("campaigns", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint(_one_of("period", PERIOD_KINDS), name="period"),
)

reporting_projects = sa.Table(
    "reporting_projects",
    metadata,
    sa.Column("project_id", sa.String(36), primary_key=True),
    sa.Column("deal_id", sa.Integer, nullable=False, index=True),
)

reporting_items = sa.Table(
    "reporting_items",
    metadata,
    sa.Column("item_id", sa.String(36), primary_key=True),
    sa.Column("project_id", sa.String(36), nullable=False, index=True),
    sa.Column("key", sa.String(200)),
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("channel", sa.String(60), nullable=False),
    sa.Column("due", sa.Date),
    sa.Column("planned", sa.Boolean, nullable=False),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

reporting_reviews = sa.Table(
    "reporting_reviews",
    metadata,
    sa.Column("item_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.String(36), nullable=False, index=True),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)

reporting_kpi_values = sa.Table(
    "reporting_kpi_values",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("client_ref", sa.String(36), nullable=False),
    sa.Column("kpi", sa.String(100), nullable=False),
    sa.Column("period", sa.String(30), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("target", sa.Float, nullable=False),
    sa.Column("direction", sa.String(4), nullable=False),
    sa.Column("attained", sa.Boolean, nullable=False),
    #: "csv" or "api", and who.
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    #: When `KpiMeasured` was published for this value (NULL: still to publish).
    sa.Column("published_at", UtcDateTime),
    sa.UniqueConstraint("client_ref", "kpi", "period"),
    sa.Index(None, "published_at"),
)

reporting_funnel = sa.Table(
    "reporting_funnel",
    metadata,
    sa.Column("campaign", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("sent", sa.Integer, nullable=False),
    sa.Column("replies", sa.Integer, nullable=False),
    sa.Column("positive", sa.Integer, nullable=False),
    sa.Column("signed", sa.Integer, nullable=False),
)

reporting_funnel_seen = sa.Table(
    "reporting_funnel_seen",
    metadata,
    #: "sent" (outbound id), "reply" (inbound id), "signed" (deal id).
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("ref", sa.String(40), primary_key=True),
)

reporting_reports = sa.Table(
    "reporting_reports",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("client_ref", sa.String(36), nullable=False),
    sa.Column("period", sa.String(30), nullable=False),
    sa.Column("first_day", sa.Date, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("formats", sa.String(40), nullable=False),
    #: The idempotency key of its email in reporting_emails.
    sa.Column("email_key", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    #: When `ReportSent` was published (NULL: its email is not sent yet, or the event is still to publish).
    sa.Column("published_at", UtcDateTime),
    sa.UniqueConstraint("client_ref", "period"),
    sa.Index(None, "published_at"),
)

reporting_emails = mail_table("reporting")
