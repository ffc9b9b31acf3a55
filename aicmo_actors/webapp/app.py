"""`build_webapp`: the operator web app, mounted at /app on the service's HTTP server.

Server-rendered (Jinja2), no build step; every page works with JavaScript off (charts are
SVG made on the server). Pages live in `pages_*.py` modules, each with `ROUTES`; every
handler is wrapped by `web.page(level)` (a test walks the routes and fails on one without).
"""

from __future__ import annotations

import importlib
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from aicmo_actors.api.app import Api
from aicmo_actors.identity.repos import AuditActor, LoginRefused
from aicmo_actors.webapp.session import COOKIE, LIFETIME, clear_session, csrf_ok, csrf_token, set_session
from aicmo_actors.webapp.web import PREFIX, Web, make_web

#: Page modules, each with `ROUTES` (a module not written yet is skipped).
PAGE_MODULES = (
    "aicmo_actors.webapp.pages_dashboard",
    "aicmo_actors.webapp.pages_modules",
    "aicmo_actors.webapp.pages_usage",
    "aicmo_actors.webapp.pages_inbox",
    "aicmo_actors.webapp.pages_campaigns",
    "aicmo_actors.webapp.pages_leads",
    "aicmo_actors.webapp.pages_projects",
    "aicmo_actors.webapp.pages_work",
    "aicmo_actors.webapp.pages_money",
    "aicmo_actors.webapp.pages_clients",
    "aicmo_actors.webapp.pages_learning",
)
#: The routes anyone may open: signing in and out.
PUBLIC = {"/login", "/logout"}


def _login_secret(secret: bytes) -> str:
    """The CSRF token of the sign-in form (no session yet): bound to the installation only."""
    return csrf_token(secret, "login")


def _safe_next(value: str | None) -> str:
    """Only a path of this app: never another site (an open redirect)."""
    if not value:
        return PREFIX + "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(PREFIX + "/") or value.startswith("//"):
        return PREFIX + "/"
    return value


async def login_page(request: Request) -> Response:
    web: Web = request.app.state.web
    return web.render(
        request,
        "login.html",
        title="Sign in",
        login_csrf=_login_secret(web.secret),
        next=_safe_next(request.query_params.get("next")),
        error="",
    )


async def login(request: Request) -> Response:
    web: Web = request.app.state.web
    form = await request.form()
    name = str(form.get("name", ""))[:100]
    password = str(form.get("password", ""))[:1000]
    next_url = _safe_next(str(form.get("next", "")))
    given = form.get("csrf")
    if not csrf_ok(web.secret, "login", given if isinstance(given, str) else None):
        return web.render(request, "error.html", 403, title="Refused", text="This form has expired: reload the page.")
    now = web.api.now()
    found = await web.api.identity.login(name, password, now)
    if isinstance(found, LoginRefused):
        if found.reason == "locked":
            error = f"Too many failed sign-ins: try again in {found.retry_after_s} s."
        else:
            error = "Wrong name or password."
        return web.render(
            request,
            "login.html",
            401 if found.reason != "locked" else 429,
            title="Sign in",
            login_csrf=_login_secret(web.secret),
            next=next_url,
            error=error,
            name=name,
        )
    raw, _ = await web.api.identity.tokens.create(
        found.name, "web", now, expires_at=(now + LIFETIME).astimezone(UTC), by=AuditActor(found.name, "web")
    )
    response = RedirectResponse(next_url, status_code=303)
    set_session(response, request, raw)
    return response


async def logout(request: Request) -> Response:
    web: Web = request.app.state.web
    session = request.cookies.get(COOKIE)
    form = await request.form()
    given = form.get("csrf")
    if session and csrf_ok(web.secret, session, given if isinstance(given, str) else None):
        who = await web.api.identity.tokens.authenticate(session, web.api.now())
        if who is not None and who.token_id is not None:
            await web.api.identity.tokens.revoke(who.token_id, web.api.now(), by=AuditActor(who.name, "web"))
    response = RedirectResponse(PREFIX + "/login", status_code=303)
    clear_session(response, request)
    return response


def page_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in PAGE_MODULES:
        try:
            module: Any = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        routes.extend(module.ROUTES)
    return routes


def build_webapp(api: Api, secret: bytes) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(packages=[("aicmo_actors.webapp", "static")]), name="static"),
        *page_routes(),
    ]
    app = Starlette(routes=routes)
    app.state.web = make_web(api, secret)
    return app


def root_redirect() -> Route:
    """`/` opens the web app."""

    async def root(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=303)

    return Route("/", root, methods=["GET"])
