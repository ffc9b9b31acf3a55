"""`/readyz`: whether the service can do its job now, and if not, why (public, like /healthz)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicmo_actors.api.app import Api


def readiness_route(api: Api):  # type: ignore[no-untyped-def]
    from aicmo_actors.api.control_routes import modules_health
    from aicmo_actors.orchestration.health import readiness

    async def readyz(request: Request) -> Response:
        snapshot = api.system.snapshot()
        modules = await modules_health(api, snapshot=snapshot)
        ready, reasons = readiness(snapshot, modules, lease_held=api.plane.lease_held())
        body = {"ready": ready, "reasons": reasons, "modules": {m["name"]: m["status"] for m in modules}}
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    return readyz
