"""Learning: what each A/B variant of a campaign led to (sends, positive replies, the success
rate with its 95 % interval, the probability of being best, deals, revenue) and the bandit's
weights, as `python run.py learn CAMPAIGN` and `GET /api/v1/campaigns/{name}/learning` show them;
and the campaigns to choose from."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.identity.roles import Principal
from aicmo_actors.learning.report import UnknownCampaign, campaign_learning, money
from aicmo_actors.learning.repos import LearningStore
from aicmo_actors.webapp.web import Web, page


def percent(value: float | None) -> str:
    """A fraction as the command line shows it: "12.5%"; "-" for none. Pure."""
    return "-" if value is None else f"{value * 100:.1f}%"


@page("read")
async def learning_index(request: Request, web: Web, who: Principal) -> Response:
    names = sorted(await web.api.cam.campaigns.all())
    return web.render(request, "learning_index.html", title="Learning", names=names)


@page("read")
async def learning(request: Request, web: Web, who: Principal) -> Response:
    name: str = request.path_params["name"]
    api = web.api
    try:
        found = await campaign_learning(LearningStore(api.cam.engine), name, await api.cam.campaigns.all(), api.now())
    except UnknownCampaign:
        return web.render(request, "error.html", 404, title="Not found", text=f"No campaign named {name!r}.")
    return web.render(
        request,
        "learning.html",
        title=f"Learning: {found.name}",
        found=found,
        percent=percent,
        money=money,
    )


ROUTES = [
    Route("/learning", learning_index, methods=["GET"]),
    Route("/campaigns/{name}/learning", learning, methods=["GET"]),
]
