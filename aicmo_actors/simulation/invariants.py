"""What must hold after every simulated run, checked from the sink, the inbox and the database.

Each broken invariant is reported with its first offending event, so `--seed N` replays it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.lead_rules import ALERT_CATEGORIES, LOW_CONFIDENCE
from aicmo_actors.cam.send_rules import in_window
from aicmo_actors.cam.store import (
    CamStore,
    alerts_t,
    inbound_t,
    leads_t,
    outbound_t,
    reports_t,
    suppressions_t,
)
from aicmo_actors.settings import Settings
from aicmo_actors.simulation.world import World
from contracts.cam import LeadState, OutboundStatus, ReplyCategory

INVARIANTS = (
    "no lead gets the same step twice",
    "nothing is sent to an address after its unsubscribe or hard bounce was ingested",
    "every reply that deserves an alert has exactly one delivered alert",
    "daily caps and send windows are never exceeded",
    "every inbound message is stored once",
    "every tick has its cycle report",
    "no lead is stranded: an active lead has its next step scheduled or in flight",
)


@dataclass(frozen=True)
class Violation:
    invariant: str
    first: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.first}"


async def check_invariants(store: CamStore, world: World, spec: CampaignSpec, ticks: int, settings: Settings) -> list[Violation]:
    found: list[Violation] = []

    # 1. One delivery per (lead, step) that was not bounced: a soft-bounce retry re-sends
    #    the same Message-ID, but only after the first one bounced.
    kept: Counter[str] = Counter()
    for d in world.deliveries:
        if not d.bounced:
            kept[d.message_id] += 1
            if kept[d.message_id] == 2:
                found.append(Violation(INVARIANTS[0], f"{d.message_id} delivered twice to {d.recipient} (second at {d.at.isoformat()})"))
                break

    async with store.engine.connect() as conn:
        suppressed = {
            r.address: r.created_at
            for r in await conn.execute(sa.select(suppressions_t.c.address, suppressions_t.c.created_at))
        }
        inbound = (await conn.execute(sa.select(inbound_t.c.id, inbound_t.c.message_id, inbound_t.c.category, inbound_t.c.confidence, inbound_t.c.lead_id, inbound_t.c.reason))).all()
        alerts = (await conn.execute(sa.select(alerts_t.c.idempotency_key, alerts_t.c.state))).all()
        reports = (await conn.execute(sa.select(reports_t.c.worker, sa.func.count()).group_by(reports_t.c.worker))).all()
        tz_of = {r.email: r.timezone for r in await conn.execute(sa.select(leads_t.c.email, leads_t.c.timezone))}

    # 2. Nothing sent after suppression was ingested.
    for d in world.deliveries:
        at = suppressed.get(d.recipient)
        if at is not None and d.at > at:
            found.append(Violation(INVARIANTS[1], f"sent {d.message_id} to {d.recipient} at {d.at.isoformat()}, suppressed since {at.isoformat()}"))
            break

    # 3. Alerts: exactly one delivered per reply that deserves one, and one email at the sink.
    alert_state = dict(alerts)
    alert_mails = Counter(d.message_id for d in world.alert_emails)
    for row in inbound:
        if row.lead_id is None or row.category is None:
            continue
        category = ReplyCategory(row.category)
        if category in ALERT_CATEGORIES:
            kind = category.value
        elif category is ReplyCategory.OTHER and (row.confidence or 0) < LOW_CONFIDENCE and not (row.reason or "").startswith(("dsn_", "delivery_", "relayed", "delivered", "expanded", "unparseable")):
            kind = "unclear_reply"
        else:
            continue
        key = f"reply:{row.id}:{kind}"
        if alert_state.get(key) != "delivered":
            found.append(Violation(INVARIANTS[2], f"inbound #{row.id} ({row.category}) has alert state {alert_state.get(key)!r}"))
            break
    duplicates = [mid for mid, n in alert_mails.items() if n > 1]
    if duplicates:
        found.append(Violation(INVARIANTS[2], f"alert {duplicates[0]} emailed {alert_mails[duplicates[0]]} times"))

    # 4. Caps per mailbox and day (campaign timezone) and windows (lead timezone).
    tz = ZoneInfo(spec.timezone)
    per_day: Counter[tuple[str, str]] = Counter()
    for d in sorted(world.deliveries, key=lambda d: d.at):
        day = d.at.astimezone(tz).date().isoformat()
        per_day[(d.mail_from, day)] += 1
        if per_day[(d.mail_from, day)] > spec.limits.daily_cap:
            found.append(Violation(INVARIANTS[3], f"{d.mail_from} sent {per_day[(d.mail_from, day)]} emails on {day} (cap {spec.limits.daily_cap})"))
            break
        lead_tz = ZoneInfo(tz_of.get(d.recipient) or spec.timezone)
        if not in_window(spec.window, lead_tz, d.at):
            found.append(Violation(INVARIANTS[3], f"sent to {d.recipient} at {d.at.astimezone(lead_tz).isoformat()} outside the window"))
            break

    # 5. Every mail the world wrote is stored exactly once.
    stored = Counter(r.message_id for r in inbound)
    for mail in world.written:
        if stored.get(mail.message_id, 0) != 1:
            found.append(Violation(INVARIANTS[4], f"{mail.kind} {mail.message_id} stored {stored.get(mail.message_id, 0)} times"))
            break

    # 7. A lead still in its sequence is waiting for something: a time of its next action,
    #    or a send that is queued or in flight. Nothing else would ever move it on.
    async with store.engine.connect() as conn:
        stranded = (
            await conn.execute(
                sa.select(leads_t.c.id, leads_t.c.email, leads_t.c.current_step, leads_t.c.state_reason)
                .where(
                    leads_t.c.state == LeadState.ACTIVE.value,
                    leads_t.c.next_action_at.is_(None),
                    ~sa.exists().where(
                        outbound_t.c.lead_id == leads_t.c.id,
                        outbound_t.c.status.in_([OutboundStatus.QUEUED.value, OutboundStatus.SENDING.value]),
                    ),
                )
                .order_by(leads_t.c.id)
                .limit(1)
            )
        ).first()
    if stranded is not None:
        found.append(
            Violation(
                INVARIANTS[6],
                f"lead {stranded.id} ({stranded.email}) is active after step {stranded.current_step} with nothing scheduled"
                f" ({stranded.state_reason or 'no reason recorded'})",
            )
        )

    # 6. One cycle report per tick and step.
    counts = dict(reports)
    for step in ("schedule", "inbox"):
        if counts.get(step, 0) < ticks:
            found.append(Violation(INVARIANTS[5], f"{counts.get(step, 0)} {step} reports for {ticks} ticks"))
            break
    return found


def first_event_time(items: list[datetime]) -> datetime | None:
    return min(items) if items else None


__all__ = ["INVARIANTS", "Violation", "check_invariants", "defaultdict"]
