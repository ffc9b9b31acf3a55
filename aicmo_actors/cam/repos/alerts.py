"""Alerts to deliver to a person (`cam_alerts`): stored once per idempotency key, then
delivered by `cam.alerts`, which records each channel done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.repos.records import jsonable, one_of, page_size
from aicmo_actors.cam.repos.sql import aware
from aicmo_actors.cam.tables import ALERT_STATES
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.storage.changes import ReadCache, come, earliest
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import Also, run_read, run_write, with_also


@dataclass(frozen=True)
class AlertRow:
    alert_id: int
    idempotency_key: str
    kind: str
    state: str
    attempts: int
    campaign: str | None
    lead_id: int | None
    lead: str | None
    category: str | None
    summary: str
    text: str
    channels_done: tuple[str, ...]
    created_at: datetime


def insert_alert(
    conn: Connection,
    *,
    key: str,
    kind: str,
    lead_id: int | None,
    campaign: str | None,
    category: str | None,
    summary: str,
    text: str,
    inbound_id: int | None,
    now: datetime,
) -> int | None:
    """Store an alert to deliver (inside the caller's transaction). Returns its id, or
    None when an alert with this key exists already (it is delivered once per key)."""
    payload: dict[str, Any] = {
        "campaign": campaign,
        "lead_id": lead_id,
        "category": category,
        "summary": summary,
        "text": text,
        "channels_done": [],
    }
    row = {
        "idempotency_key": key[:200],
        "kind": kind,
        "lead_id": lead_id,
        "campaign": campaign,
        "inbound_id": inbound_id,
        "payload": payload,
        "state": "pending",
        "attempts": 0,
        "created_at": now,
    }
    inserted = insert_ignore_in(conn, alerts_t, [row], conflict_columns=["idempotency_key"])
    return int(inserted[0][0]) if inserted else None


def _alert(conn: Connection, alert_id: int) -> AlertRow | None:
    r = conn.execute(sa.select(alerts_t).where(alerts_t.c.id == alert_id)).mappings().first()
    if r is None:
        return None
    lead = None
    if r["lead_id"] is not None:
        l_row = conn.execute(
            sa.select(leads_t.c.email, leads_t.c.first_name, leads_t.c.last_name, leads_t.c.company).where(
                leads_t.c.id == r["lead_id"]
            )
        ).first()
        if l_row is not None:
            name = " ".join(p for p in (l_row.first_name, l_row.last_name) if p)
            lead = f"{name} <{l_row.email}>" if name else l_row.email
            if l_row.company:
                lead += f" ({l_row.company})"
    payload = r["payload"] or {}
    return AlertRow(
        alert_id=int(r["id"]),
        idempotency_key=r["idempotency_key"],
        kind=r["kind"],
        state=r["state"],
        attempts=int(r["attempts"]),
        campaign=r["campaign"],
        lead_id=r["lead_id"],
        lead=lead,
        category=payload.get("category"),
        summary=payload.get("summary", ""),
        text=payload.get("text", ""),
        channels_done=tuple(payload.get("channels_done", [])),
        created_at=aware(r["created_at"]) or r["created_at"],
    )


def _payload_with(conn: Connection, alert_id: int, channels: Sequence[str] | None) -> dict[str, Any]:
    stored = conn.execute(sa.select(alerts_t.c.payload).where(alerts_t.c.id == alert_id)).scalar_one()
    payload: dict[str, Any] = dict(stored or {})
    if channels is not None:
        payload["channels_done"] = list(channels)
    return payload


#: The read of the first due time of the pending alerts (built once).
_FIRST_DUE = earliest(alerts_t.c.next_attempt_at, alerts_t.c.state == "pending")


class AlertsRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def create(
        self,
        *,
        key: str,
        kind: str,
        lead_id: int | None,
        campaign: str | None,
        category: str | None,
        summary: str,
        text: str,
        inbound_id: int | None,
        now: datetime,
    ) -> AlertRow | None:
        """Store an alert (once per key) and return it as stored."""

        def work(conn: Connection) -> AlertRow | None:
            insert_alert(
                conn,
                key=key,
                kind=kind,
                lead_id=lead_id,
                campaign=campaign,
                category=category,
                summary=summary,
                text=text,
                inbound_id=inbound_id,
                now=now,
            )
            alert_id = conn.execute(sa.select(alerts_t.c.id).where(alerts_t.c.idempotency_key == key)).scalar_one()
            return _alert(conn, int(alert_id))

        return await run_write(self.engine, work)

    async def get(self, alert_id: int) -> AlertRow | None:
        return await run_read(self.engine, lambda conn: _alert(conn, alert_id))

    async def due_ids(self, now: datetime) -> list[int]:
        """Pending alerts given a due time that has come (`retry_now` sets one; the delivery
        clears it), oldest first."""

        def work(conn: Connection) -> list[int]:
            query = (
                sa.select(alerts_t.c.id)
                .where(alerts_t.c.state == "pending", alerts_t.c.next_attempt_at.is_not(None))
                .where(alerts_t.c.next_attempt_at <= now)
                .order_by(alerts_t.c.id)
            )
            return [int(i) for i in conn.execute(query).scalars()]

        # The first due time of the pending alerts (built once, kept until the alerts change).
        return await self.kept.read_if("due", _FIRST_DUE, come(now), work, [])

    async def pending_ids(self) -> list[int]:
        query = sa.select(alerts_t.c.id).where(alerts_t.c.state == "pending").order_by(alerts_t.c.id)
        return await run_read(self.engine, lambda conn: [int(i) for i in conn.execute(query).scalars()])

    async def finish(
        self, alert_id: int, state: str, now: datetime, error: str | None, channels: Sequence[str] | None = None
    ) -> None:
        """Delivered (or failed for good), with the channels that took it."""

        def work(conn: Connection) -> None:
            payload = _payload_with(conn, alert_id, channels)
            conn.execute(
                alerts_t.update()
                .where(alerts_t.c.id == alert_id)
                .values(
                    state=state,
                    last_error=error,
                    payload=payload,
                    delivered_at=now if state == "delivered" else None,
                    next_attempt_at=None,
                )
            )

        await run_write(self.engine, work)

    async def retry(self, alert_id: int, attempts: int, error: str, channels: Sequence[str]) -> None:
        """Not delivered yet: the attempt count, the error and the channels done so far."""

        def work(conn: Connection) -> None:
            payload = _payload_with(conn, alert_id, channels)
            conn.execute(
                alerts_t.update()
                .where(alerts_t.c.id == alert_id)
                .values(attempts=attempts, last_error=error, payload=payload, next_attempt_at=None)
            )

        await run_write(self.engine, work)

    # -- reading and operator actions (the command line and the HTTP API) ------------------------

    async def page(
        self, *, state: str | None = None, after_id: int | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """One page of alerts by id ascending (keyset on `after_id`), each `ALERT_FIELDS`; `state`
        one of `tables.ALERT_STATES` (pending, delivered, failed), else a `RecordError`."""
        size = page_size(limit)
        if state is not None:
            one_of("alert state", state, ALERT_STATES)
        query = sa.select(
            alerts_t.c.id,
            alerts_t.c.kind,
            alerts_t.c.state,
            alerts_t.c.attempts,
            alerts_t.c.campaign,
            alerts_t.c.lead_id,
            alerts_t.c.inbound_id,
            alerts_t.c.payload,
            alerts_t.c.last_error,
            alerts_t.c.next_attempt_at,
            alerts_t.c.created_at,
            alerts_t.c.delivered_at,
        )
        if state is not None:
            query = query.where(alerts_t.c.state == state)
        if after_id is not None:
            query = query.where(alerts_t.c.id > after_id)
        query = query.order_by(alerts_t.c.id).limit(size)

        def work(conn: Connection) -> list[dict[str, Any]]:
            found = []
            for r in conn.execute(query).mappings():
                row = dict(r)
                payload = row.pop("payload") or {}
                row |= {
                    "category": payload.get("category"),
                    "summary": payload.get("summary", ""),
                    "channels_done": list(payload.get("channels_done", [])),
                }
                found.append(jsonable({name: row[name] for name in ALERT_FIELDS}))
            return found

        return await run_read(self.engine, work)

    async def retry_now(self, alert_id: int, now: datetime, *, also: Also[bool] | None = None) -> bool:
        """Make an alert due again: a failed one (given up, or refused for good) becomes pending
        with its attempts counted from zero and due `now`; a pending one is due `now`. False:
        there is no such alert, or it was delivered already (nothing changes). `also(conn,
        result)` runs in the same transaction.

        (Not `retry`: that name is the delivery's own record of a failed attempt.) `cam.alerts`
        delivers the pending alerts it finds when it starts, and those it is told about
        (`RetryAlert`): a caller beside a running service tells it."""

        def work(conn: Connection) -> bool:
            state = conn.execute(sa.select(alerts_t.c.state).where(alerts_t.c.id == alert_id)).scalar_one_or_none()
            if state is None or state == "delivered":
                return False
            values: dict[str, Any] = {"state": "pending", "next_attempt_at": now}
            if state == "failed":
                values["attempts"] = 0
            conn.execute(alerts_t.update().where(alerts_t.c.id == alert_id).values(**values))
            return True

        return await run_write(self.engine, with_also(work, also))


#: What `AlertsRepo.page` returns for each alert.
ALERT_FIELDS = (
    "id",
    "kind",
    "state",
    "attempts",
    "campaign",
    "lead_id",
    "inbound_id",
    "category",
    "summary",
    "channels_done",
    "last_error",
    "next_attempt_at",
    "created_at",
    "delivered_at",
)
