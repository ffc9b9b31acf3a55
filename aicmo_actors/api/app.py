"""`build_api`: the control API, a FastAPI app served under ``/api/v1`` by the service's
HTTP server (next to the public unsubscribe routes, ``/healthz`` and ``/metrics``).

FastAPI because it is Starlette, which the HTTP server already runs, plus request
validation and an OpenAPI document (``/api/v1/openapi.json``) made from the same code
that answers; nothing to keep in step by hand.

Errors are JSON, ``{"error": "<what went wrong and what to do>"}``, with the HTTP status.
Lists are paginated by id: ``?limit=50&after=<id>``; the answer has ``items`` and ``next``
(the ``after`` of the next page, null on the last).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aicmo_actors.api.plane import ControlPlane
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.identity.repos import IdentityStore
from aicmo_actors.runtime import ActorSystem

API_PREFIX = "/api/v1"


@dataclass
class Api:
    """What the routes reach: the control plane, the stores, the running system."""

    plane: ControlPlane
    cam: CamStore
    identity: IdentityStore
    system: ActorSystem
    settings: Any
    now: Callable[[], datetime]


def page(items: list[Any], limit: int, key: str = "id") -> dict[str, Any]:
    """A page of a keyset-paginated list: `next` is the `after` that gets the next page."""
    last = items[-1] if items else None
    more = len(items) == limit and last is not None
    value = (last.get(key) if isinstance(last, dict) else getattr(last, key, None)) if more else None
    return {"items": items, "next": value}


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "?"))


def build_api(api: Api) -> FastAPI:
    from aicmo_actors.api import (
        billing_routes,
        cam_routes,
        control_routes,
        learning_routes,
        project_routes,
        reporting_routes,
        retention_routes,
        work_routes,
    )

    app = FastAPI(
        title="AICMO Actors control API",
        version="1",
        description=(
            "Drive the service from your own tools. Authenticate with `Authorization: Bearer <token>` "
            "(`python run.py users add NAME --role operator --token LABEL` makes one). Roles: viewer reads, "
            "operator also changes (campaigns, replies, switches), owner also manages users."
        ),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.api = api

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such route: {request.method} {request.url.path} (see {API_PREFIX}/docs)"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path} (see {API_PREFIX}/docs)"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = " ".join(str(part) for part in error.get("loc", ()) if part != "body") or "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "invalid request: " + "; ".join(problems)}, status_code=422)

    from aicmo_actors.cam.repos.records import RecordError

    @app.exception_handler(RecordError)
    async def no_such_record(request: Request, exc: RecordError) -> JSONResponse:
        # The repositories' words: "no campaign named ..." is a 404, "unknown state ..." a 422.
        message = str(exc)
        return JSONResponse({"error": message}, status_code=404 if message.startswith("no ") else 422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the caller's mistake: logged with its stack; the answer says so, no more.
        structlog.get_logger("aicmo").exception("api request failed", method=request.method, route=_route(request))
        return JSONResponse({"error": "internal error: the service logged it; try again or report it"}, 500)

    app.include_router(control_routes.router)
    app.include_router(cam_routes.router)
    app.include_router(project_routes.router)
    app.include_router(work_routes.router)
    app.include_router(billing_routes.router)
    app.include_router(reporting_routes.router)
    app.include_router(retention_routes.router)
    app.include_router(learning_routes.router)
    return app
