"""Routes of retention (as `health [CLIENT]` does on the command line), READ only: every client's
health as the running service last scored it, or one client whole, scored now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from aicmo_actors.api.app import Api
from aicmo_actors.api.auth import READ, ApiError
from aicmo_actors.identity.roles import Principal

router = APIRouter()


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


def _store(api: Api) -> Any:
    from aicmo_actors.retention.repos import RetentionStore

    return RetentionStore(api.cam.engine)


@router.get("/health", summary="Every client's health: band, score and reasons, the reddest first")
async def health_list(request: Request, who: Principal = READ) -> dict[str, Any]:
    from aicmo_actors.retention.report import client_json

    api = _api(request)
    rows = await _store(api).clients(api.now().date())
    return {"clients": [client_json(r) for r in rows], "next": None}


@router.get(
    "/health/{client:path}",
    summary="One client's health scored now: every signal with its weight, contracts, renewal reminders",
)
async def health_show(client: str, request: Request, who: Principal = READ) -> dict[str, Any]:
    from aicmo_actors.retention.report import breakdown_json, setup_of
    from aicmo_actors.retention.repos import RetentionError

    api = _api(request)
    setup = setup_of(api.settings)
    store = _store(api)
    try:
        found = await store.find(client)
        detail = await store.breakdown(found.client_ref, api.now(), setup.scoring, setup.renewal_days)
    except RetentionError as exc:
        raise ApiError(404 if str(exc).startswith("no client") else 422, str(exc)) from None
    return breakdown_json(detail)
