"""Clients' health as people see it (`python run.py health [CLIENT] --json` and `GET /api/v1/health`):
the scoring the service uses, read from its settings, and the rows as JSON. Pure."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aicmo_actors.retention.monitor import Setup
from aicmo_actors.retention.repos import Breakdown, ClientRow
from aicmo_actors.retention.wiring import retention_setup


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def setup_of(settings: Any) -> Setup:
    """The scoring the service uses: the settings' `retention_*` when they exist, else the
    module's defaults (a ValueError says which setting is wrong)."""
    chosen: dict[str, Any] = {}
    for name in ("half_life_days", "weights", "bands", "renewal_days", "slow_review_days"):
        value = getattr(settings, f"retention_{name}", None)
        if value is not None:
            chosen[name] = tuple(value) if isinstance(value, list) else value
    return retention_setup(**chosen)


def client_json(row: ClientRow) -> dict[str, Any]:
    """A client as the running service last scored it (one line of `health`)."""
    return {k: _iso(v) for k, v in row.__dict__.items()}


def breakdown_json(found: Breakdown) -> dict[str, Any]:
    """One client whole (`health CLIENT`): scored now, every signal with its weight when new and
    today, its contracts and renewal reminders."""
    client = found.client
    return {
        "client_ref": client.client_ref,
        "company": client.company,
        "contact_email": client.contact_email,
        "billing_email": client.billing_email,
        "score": found.health.score,
        "band": found.health.band,
        "reasons": list(found.health.reasons),
        "stored": {"score": client.score, "band": client.band, "scored_at": _iso(client.scored_at)},
        "signals": [
            {
                "key": w.key,
                "kind": w.kind,
                "weight": w.weight,
                "now": round(w.now, 2),
                "at": _iso(w.at),
                "reason": w.reason,
            }
            for w in found.health.contributions
        ],
        "contracts": [{k: _iso(v) for k, v in c.__dict__.items()} for c in found.contracts],
        "renewals": [
            {"deal_id": deal, "days": days, "due_on": _iso(due), "state": state}
            for deal, days, due, state in found.renewals
        ],
        "contract_end": _iso(found.contract_end),
        "next_renewal": _iso(found.next_renewal),
    }
