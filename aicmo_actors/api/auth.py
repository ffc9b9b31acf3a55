"""Who is asking, and may they: bearer tokens, three permission levels, one rule per route.

Every route of the API declares its rule once, by depending on `need(level)` (or by being
listed in `PUBLIC`): `tests/integration/test_api_routes.py` walks the route table and fails
on a route without one, so a new route cannot be left open by forgetting.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, HTTPException, Request

from aicmo_actors.identity.roles import Principal, allows

Level = Literal["read", "operate", "own"]

#: Routes anyone may call (path, method): logging in.
PUBLIC = {("/auth/login", "POST")}

#: Marks the dependency so the route table can be checked.
RULE_ATTRIBUTE = "__aicmo_rule__"


class ApiError(HTTPException):
    """An error answered as ``{"error": message}``; the message says what to do."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def need(level: Level) -> Any:
    """A dependency: the caller's `Principal`, refused with 401 (no or bad token) or 403."""

    async def dependency(request: Request) -> Principal:
        api = request.app.state.api
        raw = bearer(request)
        if raw is None:
            raise ApiError(
                401,
                "authentication required: send 'Authorization: Bearer <token>' "
                "(make a token with `python run.py users token NAME`)",
                {"WWW-Authenticate": "Bearer"},
            )
        principal: Principal | None = await api.identity.tokens.authenticate(raw, api.now())
        if principal is None:
            raise ApiError(
                401, "this token is unknown, revoked or expired: make a new one", {"WWW-Authenticate": "Bearer"}
            )
        if not allows(principal.role, level):
            raise ApiError(403, f"your role ({principal.role}) may not do this: it needs {_who(level)}")
        api.plane.buffer.api_call(principal.name)
        request.state.principal = principal
        return principal

    setattr(dependency, RULE_ATTRIBUTE, level)
    return Depends(dependency)


def _who(level: Level) -> str:
    return {"read": "any user", "operate": "an operator or an owner", "own": "an owner"}[level]


#: The three rules, made once (a route's parameter default: ``who: Principal = READ``).
READ = need("read")
OPERATE = need("operate")
OWN = need("own")
