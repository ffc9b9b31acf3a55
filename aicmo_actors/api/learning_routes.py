"""Routes of learning (as `learn CAMPAIGN` does on the command line), READ only: what each A/B
variant of a campaign led to, with the bandit's current weights. Revenue is exact decimal text
per currency (never a JSON float)."""

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


@router.get(
    "/campaigns/{name}/learning",
    summary="Per step and variant: sends, positive replies, rate with its 95 % interval, P(best), deals, "
    "revenue, weights",
)
async def learning_show(name: str, request: Request, who: Principal = READ) -> dict[str, Any]:
    from aicmo_actors.learning.report import UnknownCampaign, campaign_learning, learning_json
    from aicmo_actors.learning.repos import LearningStore

    api = _api(request)
    try:
        found = await campaign_learning(LearningStore(api.cam.engine), name, await api.cam.campaigns.all(), api.now())
    except UnknownCampaign as exc:
        raise ApiError(404, str(exc)) from None
    return learning_json(found)
