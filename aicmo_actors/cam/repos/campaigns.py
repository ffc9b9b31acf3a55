"""Campaigns and sending mailboxes (`cam_campaigns`, `cam_sending_mailboxes`): what is
sent (the parsed campaign file, steps and all), from where, and whether it is paused."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam import texts
from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.repos.alerts import insert_alert
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.cam.repos.sql import aware
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_sending_mailboxes as mailboxes_t
from aicmo_actors.cam.tables import cam_variant_weights as weights_t
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import Also, run_read, run_write, with_also
from contracts.cam import LeadState, OutboundStatus

#: An archived campaign is paused with this reason: the table has no status of its own for it.
ARCHIVED = "archived"


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: int
    name: str
    spec: CampaignSpec
    status: str
    paused_reason: str | None
    paused_at: datetime | None


@dataclass(frozen=True)
class VariantWeights:
    """A bandit's latest allocation of one step's variants, and when it was computed."""

    weights: dict[str, float]
    as_of: datetime


class Specs:
    """Parsed campaign specs by name, parsed again only when the stored hash changes.

    Shared by the repositories of one store: the send path needs the spec of every email
    and parsing it costs more than the query that finds it."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[str, CampaignSpec]] = {}

    def parsed(self, name: str, spec_hash: str, raw: Any) -> CampaignSpec:
        cached = self._specs.get(name)
        if cached is not None and cached[0] == spec_hash:
            return cached[1]
        spec = CampaignSpec.from_json(raw if isinstance(raw, str) else json.dumps(raw))
        self._specs[name] = (spec_hash, spec)
        return spec

    def by_name(self, conn: Connection, name: str, spec_hash: str) -> CampaignSpec:
        """The campaign's parsed spec; read from the database only when it changed."""
        cached = self._specs.get(name)
        if cached is not None and cached[0] == spec_hash:
            return cached[1]
        raw = conn.execute(sa.select(campaigns_t.c.spec).where(campaigns_t.c.name == name)).scalar_one()
        return self.parsed(name, spec_hash, raw)

    def by_id(self, conn: Connection, campaign_id: int) -> CampaignSpec:
        row = conn.execute(
            sa.select(campaigns_t.c.name, campaigns_t.c.spec_hash).where(campaigns_t.c.id == campaign_id)
        ).one()
        return self.by_name(conn, row.name, row.spec_hash)


def pause_in(conn: Connection, name: str, reason: str, now: datetime) -> int | None:
    """Pause an active campaign and store the alert that says so (inside the caller's
    transaction). Returns the alert's id; None if it was paused already (or does not exist)."""
    result = conn.execute(
        campaigns_t.update()
        .where(campaigns_t.c.name == name, campaigns_t.c.status == "active")
        .values(status="paused", paused_reason=reason, paused_at=now, updated_at=now)
    )
    if not result.rowcount:
        return None
    summary = texts.campaign_paused(name, reason)
    return insert_alert(
        conn,
        key=f"pause:campaign:{name}:{now.isoformat()}",
        kind="campaign_paused",
        lead_id=None,
        campaign=name,
        category=None,
        summary=summary,
        text=summary,
        inbound_id=None,
        now=now,
    )


class CampaignsRepo:
    def __init__(self, engine: AsyncEngine, specs: Specs) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)
        self.specs = specs

    async def create_or_update(
        self, spec: CampaignSpec, now: datetime, *, also: Also[tuple[int, bool]] | None = None
    ) -> tuple[int, bool]:
        """Store a campaign (by name); returns (id, created). An update replaces its spec.
        `also(conn, (id, created))` runs in the same transaction (`storage.work.Also`)."""
        spec_json = json.loads(spec.to_json())
        spec_hash = spec.spec_hash()

        def work(conn: Connection) -> tuple[int, bool]:
            row = conn.execute(
                sa.select(campaigns_t.c.id, campaigns_t.c.spec_hash).where(campaigns_t.c.name == spec.name)
            ).first()
            if row is None:
                result = conn.execute(
                    campaigns_t.insert().values(
                        name=spec.name,
                        spec=spec_json,
                        spec_hash=spec_hash,
                        status="active",
                        stop_company_on_reply=spec.stop_company_on_reply,
                        created_at=now,
                        updated_at=now,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                campaign_id = int(key[0])
                created = True
            else:
                campaign_id = int(row.id)
                created = False
                conn.execute(
                    campaigns_t.update()
                    .where(campaigns_t.c.id == campaign_id)
                    .values(
                        spec=spec_json,
                        spec_hash=spec_hash,
                        stop_company_on_reply=spec.stop_company_on_reply,
                        updated_at=now,
                    )
                )
            boxes = [{"address": m.address.lower(), "status": "active", "created_at": now} for m in spec.mailboxes]
            insert_ignore_in(conn, mailboxes_t, boxes, conflict_columns=["address"])
            return campaign_id, created

        return await run_write(self.engine, with_also(work, also))

    async def all(self) -> dict[str, CampaignRow]:
        """Every campaign by name, in the order they were created."""
        rows = await self.kept.read(
            "all", lambda conn: conn.execute(sa.select(campaigns_t).order_by(campaigns_t.c.id)).mappings().all()
        )
        return {
            r["name"]: CampaignRow(
                int(r["id"]),
                r["name"],
                self.specs.parsed(r["name"], r["spec_hash"], r["spec"]),
                r["status"],
                r["paused_reason"],
                aware(r["paused_at"]),
            )
            for r in rows
        }

    async def record_weights(
        self, campaign: str, step: int, weights: dict[str, float], as_of: datetime, key: str, now: datetime
    ) -> bool:
        """Record a bandit's allocation for one step (`SetVariantWeights`), once per key. True if new."""
        row = {
            "campaign": campaign,
            "step": step,
            "weights": dict(weights),
            "as_of": as_of,
            "idempotency_key": key,
            "recorded_at": now,
        }
        return bool(
            await run_write(
                self.engine, lambda conn: insert_ignore_in(conn, weights_t, [row], conflict_columns=["idempotency_key"])
            )
        )

    async def variant_weights(self, campaigns: Collection[str]) -> dict[tuple[str, int], VariantWeights]:
        """The latest recorded allocation (by as_of, then arrival) of each step of `campaigns`."""
        if not campaigns:
            return {}
        query = (
            sa.select(weights_t)
            .where(weights_t.c.campaign.in_(sorted(campaigns)))
            .order_by(weights_t.c.as_of, weights_t.c.id)
        )
        rows = await self.kept.read(
            ("variant_weights", tuple(sorted(campaigns))), lambda conn: conn.execute(query).mappings().all()
        )
        latest: dict[tuple[str, int], VariantWeights] = {}
        for r in rows:
            raw = r["weights"]
            weights = json.loads(raw) if isinstance(raw, str) else raw
            as_of = aware(r["as_of"])
            assert as_of is not None
            latest[(r["campaign"], int(r["step"]))] = VariantWeights(
                {str(k): float(v) for k, v in weights.items()}, as_of
            )
        return latest

    async def set_status(
        self, name: str, status: str, reason: str | None, now: datetime, *, also: Also[bool] | None = None
    ) -> bool:
        """Pause or resume a campaign by command. A resume puts its waiting leads back on the
        schedule: while it was paused, the scheduler took every due lead off (so a paused
        campaign costs nothing per tick), and nothing else would ever bring them back.
        False: there is no such campaign. `also(conn, result)` runs in the same transaction."""
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "paused":
            values |= {"paused_reason": reason, "paused_at": now}
        else:
            values |= {"paused_reason": None, "resumed_at": now}

        def work(conn: Connection) -> bool:
            campaign_id = conn.execute(
                sa.select(campaigns_t.c.id).where(campaigns_t.c.name == name)
            ).scalar_one_or_none()
            if campaign_id is None:
                return False
            conn.execute(campaigns_t.update().where(campaigns_t.c.id == campaign_id).values(**values))
            if status == "active":
                in_flight = sa.exists().where(
                    outbound_t.c.lead_id == leads_t.c.id,
                    outbound_t.c.status.in_([OutboundStatus.QUEUED.value, OutboundStatus.SENDING.value]),
                )
                conn.execute(
                    leads_t.update()
                    .where(
                        leads_t.c.campaign_id == campaign_id,
                        leads_t.c.state.in_([LeadState.ACTIVE.value, LeadState.PAUSED.value]),
                        leads_t.c.next_action_at.is_(None),
                        ~in_flight,
                    )
                    .values(next_action_at=now, state_reason="the campaign was resumed", updated_at=now)
                )
            return True

        return await run_write(self.engine, with_also(work, also))

    async def pause(self, name: str, reason: str, now: datetime) -> int | None:
        """Auto-pause an active campaign and store the alert that says so, in one transaction.
        Returns the alert's id; None if it was paused already (or does not exist)."""
        return await run_write(self.engine, lambda conn: pause_in(conn, name, reason, now))

    async def pause_mailbox(self, address: str, reason: str, now: datetime) -> int | None:
        """Auto-pause an active sending mailbox and store the alert that says so, in one
        transaction. Returns the alert's id; None if it was paused already."""
        address = address.lower()

        def work(conn: Connection) -> int | None:
            insert_ignore_in(
                conn,
                mailboxes_t,
                [{"address": address, "status": "active", "created_at": now}],
                conflict_columns=["address"],
            )
            result = conn.execute(
                mailboxes_t.update()
                .where(mailboxes_t.c.address == address, mailboxes_t.c.status == "active")
                .values(status="paused", paused_reason=reason, paused_at=now)
            )
            if not result.rowcount:
                return None
            summary = texts.mailbox_paused(address, reason)
            return insert_alert(
                conn,
                key=f"pause:mailbox:{address}:{now.isoformat()}",
                kind="mailbox_paused",
                lead_id=None,
                campaign=None,
                category=None,
                summary=summary,
                text=summary,
                inbound_id=None,
                now=now,
            )

        return await run_write(self.engine, work)

    async def resume_mailbox(self, address: str, *, also: Also[bool] | None = None) -> bool:
        """Set a sending mailbox active again; False when there is no such mailbox.
        `also(conn, resumed)` runs in the same transaction (the audit row)."""
        statement = (
            mailboxes_t.update()
            .where(mailboxes_t.c.address == address.lower())
            .values(status="active", paused_reason=None, paused_at=None)
        )
        return await run_write(self.engine, with_also(lambda conn: bool(conn.execute(statement).rowcount), also))

    async def paused_mailboxes(self) -> set[str]:
        query = sa.select(mailboxes_t.c.address).where(mailboxes_t.c.status == "paused")
        return set(await self.kept.read("paused_mailboxes", lambda conn: frozenset(conn.execute(query).scalars())))

    async def mailboxes(self) -> list[dict[str, Any]]:
        """Every sending mailbox's row, by address."""
        query = sa.select(mailboxes_t).order_by(mailboxes_t.c.address)
        return await run_read(self.engine, lambda conn: [dict(r) for r in conn.execute(query).mappings()])

    async def archive(self, name: str, now: datetime, *, also: Also[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Stop a campaign for good, kept for its history, in one transaction: it is paused with
        the reason `ARCHIVED` (the table has no status of its own for it), its active and paused
        leads are stopped ("the campaign was archived"), and its emails still queued are
        cancelled. Returns {"campaign", "archived": False when it was archived already,
        "leads_stopped", "emails_cancelled"}; `also(conn, result)` runs in the same transaction.
        An unknown campaign is a `RecordError`.

        A command that would resume it or import into it should refuse (`is_archived`)."""

        def work(conn: Connection) -> dict[str, Any]:
            row = conn.execute(
                sa.select(campaigns_t.c.id, campaigns_t.c.status, campaigns_t.c.paused_reason).where(
                    campaigns_t.c.name == name
                )
            ).first()
            if row is None:
                raise RecordError(f"no campaign named {name!r}")
            done = {"campaign": name, "archived": False, "leads_stopped": 0, "emails_cancelled": 0}
            if is_archived(row.status, row.paused_reason):
                return done
            conn.execute(
                campaigns_t.update()
                .where(campaigns_t.c.id == row.id)
                .values(status="paused", paused_reason=ARCHIVED, paused_at=now, updated_at=now)
            )
            stopped = conn.execute(
                leads_t.update()
                .where(
                    leads_t.c.campaign_id == row.id,
                    leads_t.c.state.in_([LeadState.ACTIVE.value, LeadState.PAUSED.value]),
                )
                .values(
                    state=LeadState.STOPPED.value,
                    state_reason="the campaign was archived",
                    next_action_at=None,
                    updated_at=now,
                )
            )
            # Only QUEUED rows: a SENDING one belongs to the sender, which settles it.
            cancelled = conn.execute(
                outbound_t.update()
                .where(outbound_t.c.campaign_id == row.id, outbound_t.c.status == OutboundStatus.QUEUED.value)
                .values(
                    status=OutboundStatus.CANCELLED.value,
                    last_error="not sent: the campaign was archived",
                    next_attempt_at=None,
                )
            )
            return done | {
                "archived": True,
                "leads_stopped": int(stopped.rowcount or 0),
                "emails_cancelled": int(cancelled.rowcount or 0),
            }

        return await run_write(self.engine, with_also(work, also))


def is_archived(status: str, paused_reason: str | None) -> bool:
    """Is a campaign with this status and pause reason archived (`CampaignsRepo.archive`)?"""
    return status == "paused" and paused_reason == ARCHIVED
