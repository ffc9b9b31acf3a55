"""Sign-in sessions and CSRF tokens for the web app.

A session is an identity token (made at sign-in, 12 hours, label ``web``) kept in an
HttpOnly, SameSite=Lax cookie, Secure when the site is served over https. Signing out
revokes it. Every form carries a CSRF token: an HMAC of the session token under the
installation's secret, checked in constant time on every POST; a form posted without it,
or from another session, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "aicmo_session"
LIFETIME = timedelta(hours=12)


def csrf_token(secret: bytes, session: str) -> str:
    return hmac.new(secret, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(secret: bytes, session: str | None, given: str | None) -> bool:
    if not session or not given:
        return False
    return hmac.compare_digest(csrf_token(secret, session), given)


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path="/",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure(request))


def secure(request: Request) -> bool:
    """Secure cookies when this request came over https (directly or as the proxy says)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"
