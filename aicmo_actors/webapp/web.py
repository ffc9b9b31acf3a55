"""What every page handler gets: who is signed in, the stores, and how to answer.

`page(level)` wraps a handler: an anonymous visitor is sent to the sign-in page (and back
afterwards), a role too low gets a 403 page, a POST without its CSRF token gets a 403 and
changes nothing. Handlers render templates with `web.render(...)` and answer a POST with
`web.done(...)`: a redirect (303) back to a page, with a one-line message to show.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from aicmo_actors.api.app import Api
from aicmo_actors.api.auth import RULE_ATTRIBUTE
from aicmo_actors.identity.roles import Principal, allows
from aicmo_actors.webapp.session import COOKIE, csrf_ok, csrf_token

TEMPLATES = Path(__file__).parent / "templates"
#: Where the web app is mounted on the service's HTTP server.
PREFIX = "/app"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["qs"] = lambda params: urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return env


def when(value: Any) -> str:
    """A time as the pages show it: "2026-03-09 08:00 UTC" (ISO strings and datetimes)."""
    if value in (None, ""):
        return "-"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:16].replace("T", " ") + " UTC"


@dataclass
class Web:
    api: Api
    secret: bytes
    env: Environment
    #: What pages keep between requests (the dashboard's figures), by name.
    kept: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str = "/") -> str:
        return PREFIX + path

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        who: Principal | None = getattr(request.state, "principal", None)
        session = request.cookies.get(COOKIE)
        html = self.env.get_template(template).render(
            request=request,
            who=who,
            can_operate=who is not None and allows(who.role, "operate"),
            can_own=who is not None and allows(who.role, "own"),
            csrf=csrf_token(self.secret, session) if session else "",
            url=self.url,
            message=request.query_params.get("done", ""),
            problem=request.query_params.get("problem", ""),
            **context,
        )
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
        return HTMLResponse(html, status_code=status, headers=headers)

    def done(self, path: str, message: str = "", *, problem: str = "") -> RedirectResponse:
        """After a POST: back to `path` (a page of the app) with a message to show."""
        query = urlencode({k: v for k, v in {"done": message, "problem": problem}.items() if v})
        separator = "&" if "?" in path else "?"
        return RedirectResponse(self.url(path) + (separator + query if query else ""), status_code=303)


Handler = Callable[[Request, Web, Principal], Awaitable[Response]]


#: A form's body at most (`page(max_body=...)` for uploads): refused before it is read.
MAX_FORM_BYTES = 2_000_000


Endpoint = Callable[[Request], Awaitable[Response]]


def page(level: str, *, max_body: int = MAX_FORM_BYTES) -> Callable[[Handler], Endpoint]:
    """Guard a handler: signed in, allowed `level` (read, operate, own), CSRF on POST, and
    a POST body of at most `max_body` bytes (a declared Content-Length over it, or none, is
    refused before anything is read or written to disk)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            web: Web = request.app.state.web
            session = request.cookies.get(COOKIE)
            who = await web.api.identity.tokens.authenticate(session, web.api.now()) if session else None
            if who is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(web.url(f"/login?next={quote(target)}"), status_code=303)
            request.state.principal = who
            if request.method == "POST":
                declared = request.headers.get("content-length", "")
                if not declared.isdigit() or int(declared) > max_body:
                    limit = f"{max_body / 1_000_000:g} MB"
                    text = f"This upload is larger than {limit} (or does not say its size): nothing was stored."
                    return web.render(request, "error.html", 413, title="Too large", text=text)
                form = await request.form()
                given = form.get("csrf")
                if not csrf_ok(web.secret, session, given if isinstance(given, str) else None):
                    return web.render(
                        request, "error.html", 403, title="Refused", text="This form has expired: reload the page."
                    )
            if not allows(who.role, level):
                text = "Your role may only look, not change anything." if level != "read" else "Not for your role."
                return web.render(request, "error.html", 403, title="Not allowed", text=text)
            web.api.plane.buffer.api_call(who.name)
            return await handler(request, web, who)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        setattr(endpoint, RULE_ATTRIBUTE, level)
        return endpoint

    return wrap


def make_web(api: Api, secret: bytes) -> Web:
    return Web(api, secret, _environment())
