"""Learning's repositories: every read and write of the `learning_*` tables.

Each public method is one transaction (one unit of work of `storage.work`) and returns rows,
plain dataclasses or numbers, never contract messages: the actor builds those. Outcome records
are inserted once (their natural key is the primary key: a repeated event changes nothing).
`LearningStore` is the module's store: `store.outcomes` and `store.decisions` over one engine.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.learning.tables import (
    learning_campaigns,
    learning_deals,
    learning_payments,
    learning_replies,
    learning_sends,
    learning_weights,
)
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.insert import insert_ignore_in
from aicmo_actors.storage.work import run_read, run_write

_S, _R, _D, _P, _C, _W = (
    learning_sends,
    learning_replies,
    learning_deals,
    learning_payments,
    learning_campaigns,
    learning_weights,
)


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def _cid(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


@dataclass(frozen=True)
class BanditConfig:
    """A campaign that asks for a bandit, as CAM announced it."""

    campaign: str
    window_days: float
    burn_in: int
    floor: float
    #: step -> the campaign file's weights by variant name.
    steps: dict[int, dict[str, float]]
    updated_at: datetime


@dataclass(frozen=True)
class Decision:
    """One allocation decided for a campaign's step."""

    campaign: str
    step: int
    weights: dict[str, float]
    #: variant -> {"sends", "successes", "failures", "p_best"}.
    arms: dict[str, dict[str, float]]
    burn_in: bool
    floor: float
    as_of: datetime
    idempotency_key: str
    told_at: datetime | None = None


@dataclass
class VariantOutcomes:
    """What one variant of one step led to (for `python run.py learn`)."""

    step: int
    variant: str
    sends: int = 0
    #: Positive replies to its emails (whenever they came).
    positive_replies: int = 0
    #: Its sends with a decided outcome under the campaign's window: (sent_at, first positive reply).
    timeline: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    #: Leads sent this variant at this step who signed.
    deals: int = 0
    #: Their clients' payments, per currency.
    revenue: dict[str, Decimal] = field(default_factory=dict)


class OutcomesRepo:
    """The outcome records: sends, replies, deals, payments, and the bandit campaigns."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def _insert(self, table: sa.Table, row: dict[str, Any], key: str) -> bool:
        rows = await run_write(self.engine, lambda conn: insert_ignore_in(conn, table, [row], conflict_columns=[key]))
        return bool(rows)

    async def record_send(
        self,
        *,
        outbound_id: int,
        campaign: str,
        step: int,
        variant: str,
        lead_id: int,
        sent_at: datetime,
        correlation_id: uuid.UUID | None,
    ) -> bool:
        row = {
            "outbound_id": outbound_id,
            "campaign": campaign,
            "step": step,
            "variant": variant,
            "lead_id": lead_id,
            "sent_at": sent_at,
            "correlation_id": _cid(correlation_id),
        }
        return await self._insert(_S, row, "outbound_id")

    async def record_reply(
        self,
        *,
        inbound_id: int,
        outbound_id: int,
        lead_id: int | None,
        campaign: str | None,
        category: str,
        positive: bool,
        received_at: datetime,
        correlation_id: uuid.UUID | None,
    ) -> bool:
        row = {
            "inbound_id": inbound_id,
            "outbound_id": outbound_id,
            "lead_id": lead_id,
            "campaign": campaign,
            "category": category,
            "positive": positive,
            "received_at": received_at,
            "correlation_id": _cid(correlation_id),
        }
        return await self._insert(_R, row, "inbound_id")

    async def record_deal(
        self,
        *,
        deal_id: int,
        lead_id: int,
        campaign: str,
        client_ref: uuid.UUID,
        signed_at: datetime,
        correlation_id: uuid.UUID | None,
    ) -> bool:
        row = {
            "deal_id": deal_id,
            "lead_id": lead_id,
            "campaign": campaign,
            "client_ref": str(client_ref),
            "signed_at": signed_at,
            "correlation_id": _cid(correlation_id),
        }
        return await self._insert(_D, row, "deal_id")

    async def record_payment(
        self,
        *,
        invoice_id: uuid.UUID,
        client_ref: uuid.UUID,
        amount: Decimal,
        balance: Decimal,
        currency: str,
        received_on: date,
        now: datetime,
        correlation_id: uuid.UUID | None,
    ) -> bool:
        row = {
            "key": f"{invoice_id}:{amount}:{balance}:{received_on.isoformat()}",
            "client_ref": str(client_ref),
            "invoice_id": str(invoice_id),
            "amount": str(amount),
            "currency": currency.upper(),
            "received_on": received_on,
            "recorded_at": now,
            "correlation_id": _cid(correlation_id),
        }
        return await self._insert(_P, row, "key")

    async def record_campaign(
        self,
        campaign: str,
        window_days: float,
        burn_in: int,
        floor: float,
        steps: dict[int, dict[str, float]],
        now: datetime,
    ) -> None:
        """Keep the latest announcement of a bandit campaign."""
        values = {
            "window_days": window_days,
            "burn_in": burn_in,
            "floor": floor,
            "steps": [{"step": step, "weights": weights} for step, weights in sorted(steps.items())],
            "updated_at": now,
        }

        def work(conn: Connection) -> None:
            if not insert_ignore_in(conn, _C, [{"campaign": campaign, **values}], conflict_columns=["campaign"]):
                conn.execute(_C.update().where(_C.c.campaign == campaign).values(**values))

        await run_write(self.engine, work)

    async def campaigns(self) -> list[BanditConfig]:
        """The bandit campaigns, by name."""
        rows = await self.kept.read(
            "campaigns", lambda conn: conn.execute(sa.select(_C).order_by(_C.c.campaign)).mappings().all()
        )
        return [_config(r) for r in rows]

    async def campaign(self, name: str) -> BanditConfig | None:
        row = await run_read(
            self.engine, lambda conn: conn.execute(sa.select(_C).where(_C.c.campaign == name)).mappings().first()
        )
        return _config(row) if row is not None else None

    async def step_sends(self, campaign: str, step: int) -> list[tuple[str, datetime, datetime | None]]:
        """Each send of the step: (variant, sent_at, its first positive reply's time or None)."""
        first = (
            sa.select(_R.c.outbound_id, sa.func.min(_R.c.received_at).label("at"))
            .where(_R.c.positive.is_(True))
            .group_by(_R.c.outbound_id)
            .subquery()
        )
        query = (
            sa.select(_S.c.variant, _S.c.sent_at, first.c.at)
            .select_from(_S.outerjoin(first, first.c.outbound_id == _S.c.outbound_id))
            .where(_S.c.campaign == campaign, _S.c.step == step)
            .order_by(_S.c.outbound_id)
        )
        rows = await run_read(self.engine, lambda conn: conn.execute(query).all())
        return [(r[0], _aware(r[1]), _aware_or_none(r[2])) for r in rows]

    async def variant_outcomes(self, campaign: str) -> list[VariantOutcomes]:
        """Per step and variant of `campaign`: sends, positive replies, deals and revenue."""

        def work(conn: Connection) -> list[VariantOutcomes]:
            out: dict[tuple[int, str], VariantOutcomes] = {}
            first = (
                sa.select(_R.c.outbound_id, sa.func.min(_R.c.received_at).label("at"), sa.func.count().label("n"))
                .where(_R.c.positive.is_(True))
                .group_by(_R.c.outbound_id)
                .subquery()
            )
            sends = conn.execute(
                sa.select(_S.c.step, _S.c.variant, _S.c.lead_id, _S.c.sent_at, first.c.at, first.c.n)
                .select_from(_S.outerjoin(first, first.c.outbound_id == _S.c.outbound_id))
                .where(_S.c.campaign == campaign)
                .order_by(_S.c.outbound_id)
            ).all()
            leads: dict[int, set[tuple[int, str]]] = defaultdict(set)
            for step, variant, lead_id, sent_at, at, n in sends:
                row = out.setdefault((int(step), variant), VariantOutcomes(int(step), variant))
                row.sends += 1
                row.positive_replies += int(n or 0)
                row.timeline.append((_aware(sent_at), _aware_or_none(at)))
                leads[int(lead_id)].add((int(step), variant))
            deals = conn.execute(sa.select(_D.c.lead_id, _D.c.client_ref).where(_D.c.campaign == campaign)).all()
            clients: dict[str, int] = {}
            for lead_id, client_ref in deals:
                clients[client_ref] = int(lead_id)
                for key in leads.get(int(lead_id), ()):
                    out[key].deals += 1
            if clients:
                payments = conn.execute(
                    sa.select(_P.c.client_ref, _P.c.amount, _P.c.currency).where(_P.c.client_ref.in_(sorted(clients)))
                ).all()
                for client_ref, amount, currency in payments:
                    for key in leads.get(clients[client_ref], ()):
                        revenue = out[key].revenue
                        revenue[currency] = revenue.get(currency, Decimal(0)) + Decimal(amount)
            return [out[k] for k in sorted(out)]

        return await run_read(self.engine, work)


class DecisionsRepo:
    """The allocations decided, and whether CAM was told."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def last_at(self) -> datetime | None:
        """When the latest decision was made (any campaign)."""
        value = await self.kept.read("last_at", lambda conn: conn.execute(sa.select(sa.func.max(_W.c.as_of))).scalar())
        return _aware_or_none(value)

    async def save(self, decisions: Sequence[Decision]) -> int:
        """Write one run's decisions in one transaction (once per key). The number new."""
        rows = [
            {
                "campaign": d.campaign,
                "step": d.step,
                "weights": d.weights,
                "arms": d.arms,
                "burn_in": d.burn_in,
                "floor": d.floor,
                "as_of": d.as_of,
                "idempotency_key": d.idempotency_key,
                "told_at": None,
            }
            for d in decisions
        ]
        return len(
            await run_write(
                self.engine, lambda conn: insert_ignore_in(conn, _W, rows, conflict_columns=["idempotency_key"])
            )
        )

    async def untold(self) -> list[Decision]:
        """Decisions not told to CAM yet, oldest first."""
        query = sa.select(_W).where(_W.c.told_at.is_(None)).order_by(_W.c.as_of, _W.c.id)
        rows = await run_read(self.engine, lambda conn: conn.execute(query).mappings().all())
        return [_decision(r) for r in rows]

    async def mark_told(self, keys: Sequence[str], now: datetime) -> None:
        if not keys:
            return
        await run_write(
            self.engine,
            lambda conn: conn.execute(
                _W.update().where(_W.c.idempotency_key.in_(list(keys)), _W.c.told_at.is_(None)).values(told_at=now)
            ),
        )

    async def latest(self, campaign: str) -> dict[int, Decision]:
        """The latest decision of each step of `campaign`."""
        query = sa.select(_W).where(_W.c.campaign == campaign).order_by(_W.c.as_of, _W.c.id)
        rows = await run_read(self.engine, lambda conn: conn.execute(query).mappings().all())
        return {int(r["step"]): _decision(r) for r in rows}

    async def history(self, campaign: str, step: int) -> list[Decision]:
        """Every decision of one step, oldest first."""
        query = sa.select(_W).where(_W.c.campaign == campaign, _W.c.step == step).order_by(_W.c.as_of, _W.c.id)
        rows = await run_read(self.engine, lambda conn: conn.execute(query).mappings().all())
        return [_decision(r) for r in rows]


def _aware(value: datetime) -> datetime:
    out = _aware_or_none(value)
    assert out is not None
    return out


def _aware_or_none(value: Any) -> datetime | None:
    # UtcDateTime columns come back aware; an aggregate (min/max) on SQLite comes back as text.
    if value is None:
        return None
    found: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _config(r: Any) -> BanditConfig:
    steps = {int(s["step"]): {str(k): float(v) for k, v in s["weights"].items()} for s in _json(r["steps"])}
    return BanditConfig(
        r["campaign"], float(r["window_days"]), int(r["burn_in"]), float(r["floor"]), steps, _aware(r["updated_at"])
    )


def _decision(r: Any) -> Decision:
    return Decision(
        campaign=r["campaign"],
        step=int(r["step"]),
        weights={str(k): float(v) for k, v in _json(r["weights"]).items()},
        arms={str(k): dict(v) for k, v in _json(r["arms"]).items()},
        burn_in=bool(r["burn_in"]),
        floor=float(r["floor"]),
        as_of=_aware(r["as_of"]),
        idempotency_key=r["idempotency_key"],
        told_at=_aware_or_none(r["told_at"]),
    )


class LearningStore:
    """Learning's repositories over one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.outcomes = OutcomesRepo(engine)
        self.decisions = DecisionsRepo(engine)
