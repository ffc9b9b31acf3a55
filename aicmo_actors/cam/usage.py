"""What `cam` counts as usage: emails sent, messages read and classified, alerts delivered.

Two ways to the same records, each act keyed by its row id so the meter counts it once:
`usage_of(event)` turns a published event into records as it happens (no database work on
the hot path), and `usage_since_in(conn, since)` reads the same acts back from the tables,
which the meter runs when it starts, to count what a crash took from its memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aicmo_actors.cam.tables import cam_alerts, cam_campaigns, cam_inbound_emails, cam_leads, cam_outbound_emails
from contracts.base import Event
from contracts.cam import AlertDelivered, EmailSent, ReplyClassified
from contracts.observability import UsageRecord

MODULE = "cam"
#: The events `usage_of` reads.
COUNTED_EVENTS: tuple[type[Event], ...] = (EmailSent, ReplyClassified, AlertDelivered)
KINDS = ("email_sent", "message_read", "message_classified", "alert_delivered")


def _record(kind: str, row_id: int, subject: str | None, at: datetime) -> UsageRecord:
    return UsageRecord(f"{MODULE}.{kind}:{row_id}", MODULE, kind, subject, 1, at)


def usage_of(event: Event) -> tuple[UsageRecord, ...]:
    """The usage one event stands for (none for an event that counts nothing)."""
    if isinstance(event, EmailSent):
        return (_record("email_sent", event.outbound_id, event.campaign, event.timestamp),)
    if isinstance(event, ReplyClassified):
        return (
            _record("message_read", event.inbound_id, event.campaign, event.timestamp),
            _record("message_classified", event.inbound_id, event.campaign, event.timestamp),
        )
    if isinstance(event, AlertDelivered):
        return (_record("alert_delivered", event.alert_id, event.campaign, event.timestamp),)
    return ()


def usage_since_in(conn: Connection, since: datetime | None) -> Iterator[UsageRecord]:
    """Every countable act from `since` on (all of them when None), read from the tables."""
    o, c = cam_outbound_emails, cam_campaigns
    sent = sa.select(o.c.id, c.c.name, o.c.accepted_at).join(c, c.c.id == o.c.campaign_id)
    # accepted_at: the first 250 for this row, never cleared (a row sent again after a soft
    # bounce is one email in the count, as its event's key says).
    sent = sent.where(o.c.accepted_at.is_not(None))
    if since is not None:
        sent = sent.where(o.c.accepted_at >= since)
    for row_id, campaign, at in conn.execute(sent):
        yield _record("email_sent", row_id, campaign, at)
    i, lead = cam_inbound_emails, cam_leads
    read = (
        sa.select(i.c.id, c.c.name, i.c.stored_at, i.c.processed_at)
        .select_from(i.outerjoin(lead, lead.c.id == i.c.lead_id).outerjoin(c, c.c.id == lead.c.campaign_id))
        .where(i.c.processed_at.is_not(None))
    )
    if since is not None:
        read = read.where(i.c.processed_at >= since)
    for row_id, campaign, stored_at, processed_at in conn.execute(read):
        yield _record("message_read", row_id, campaign, processed_at or stored_at)
        yield _record("message_classified", row_id, campaign, processed_at)
    a = cam_alerts
    alerts = sa.select(a.c.id, a.c.campaign, a.c.delivered_at).where(a.c.state == "delivered")
    if since is not None:
        alerts = alerts.where(a.c.delivered_at >= since)
    for row_id, campaign, at in conn.execute(alerts):
        yield _record("alert_delivered", row_id, campaign, at)
