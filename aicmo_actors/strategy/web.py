"""The client's plan page behind a capability link (served by the service's HTTP server).

- ``GET /client/plan/{token}``: the latest version of the plan (its stored HTML) with an
  "Approve" form and a "Request changes" form (comments required, at most `MAX_COMMENTS`
  characters); an approved, changed or withdrawn plan shows its state and no form; links to
  the PDF of every version.
- ``POST /client/plan/{token}/approve`` and ``/changes`` (``application/x-www-form-urlencoded``,
  at most `MAX_BODY_BYTES`, refused by its declared length before anything is read, then
  counted while read): the answer is stored in one transaction with the link's check, for the
  version the form was for, only if it is still the latest and awaiting an answer; then a
  redirect (303) to the page. The planner announces it on its next tick.
- ``GET /client/plan/{token}/plan-v{n}.pdf``: the PDF of version n.

The token in the URL is the only credential (a form on another site cannot know it, so there
is no CSRF token). A token that opens nothing gets a plain page that says nothing of any
project: 404 when unknown, 410 when expired or revoked. No JavaScript; readable on a phone;
no caching, no referrer, no framing, no indexing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import structlog
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from aicmo_actors.gateways.http import CLIENT_PAGE_HEADERS
from aicmo_actors.storage.links import EXPIRED, REVOKED
from aicmo_actors.strategy import texts
from aicmo_actors.strategy.emails import PAGE_PATH, pdf_filename
from aicmo_actors.strategy.render import environment
from aicmo_actors.strategy.repos import PageView, StrategyStore

PAGE = PAGE_PATH + "{token}"
#: A whole POST at most (comments of 5,000 characters, percent-encoded, fit).
MAX_BODY_BYTES = 100_000
MAX_COMMENTS = 5_000
#: Fields in one POST at most (the form has two).
MAX_FIELDS = 10
FORM_TYPE = "application/x-www-form-urlencoded"

HEADERS = CLIENT_PAGE_HEADERS

_log = structlog.get_logger("aicmo", component="strategy.web")


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _html(body: str, status: int) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _gone(reason: str) -> HTMLResponse:
    """The same plain page for every token that opens nothing (the status says which case)."""
    status = 410 if reason in (EXPIRED, REVOKED) else 404
    return _html(environment().get_template("gone.html").render(title="Link not valid"), status)


def _page(
    view: PageView,
    *,
    prefix: str,
    status: int = 200,
    error: str = "",
    comments: str = "",
    notice: str = "",
) -> HTMLResponse:
    shown: dict[str, Any] = {
        "version": view.version,
        "state": view.state,
        "versions": view.versions,
        "last_round": view.last_round,
        "deadline": texts.deadline_text(view.deadline_at, view.timezone),
        "answered_at": texts.deadline_text(view.answered_at, view.timezone) if view.answered_at else "",
    }
    body = (
        environment()
        .get_template("page.html")
        .render(
            title=f"Plan for {view.company}" if view.company else "Your plan",
            view=shown,
            plan_html=Markup(view.html),  # made by our own autoescaped template (render.py)
            prefix=prefix,
            error=error,
            comments=comments,
            notice=notice,
            max_comments=MAX_COMMENTS,
        )
    )
    return _html(body, status)


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields: its declared size checked before anything is read, its
    real size while it is read."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise _Refused(415, "This form must be sent as a web form.")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _Refused(413, "What was sent is too long.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _Refused(413, "What was sent is too long.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "What was sent could not be read.") from None
    return dict(pairs)


def clean_comments(text: str) -> str:
    """The comments as stored: line ends as LF, no control characters but tabs and line ends,
    no surrounding blank space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or (ord(c) >= 32 and ord(c) != 127)).strip()


def _refused(exc: _Refused) -> HTMLResponse:
    body = environment().get_template("refused.html").render(title="Not sent", text=str(exc))
    return _html(body, exc.status)


def strategy_routes(store: StrategyStore, *, now: Callable[[], datetime]) -> list[BaseRoute]:
    """The client's plan page (see the module), over `store`; `now` is the clock's."""

    async def page(request: Request) -> Response:
        token = request.path_params["token"]
        view = await store.plans.page(token, now())
        if isinstance(view, str):
            return _gone(view)
        return _page(view, prefix=f"{token}/")

    async def answer(request: Request, *, approve: bool) -> Response:
        token = request.path_params["token"]
        try:
            form = await _form(request)
        except _Refused as exc:
            return _refused(exc)
        version_text = form.get("version", "")
        comments = clean_comments(form.get("comments", "")) if not approve else None
        problem = ""
        if comments is not None and not comments:
            problem = "Please write what should change."
        elif comments is not None and len(comments) > MAX_COMMENTS:
            problem = f"Please keep your comments to {MAX_COMMENTS:,} characters (they are {len(comments):,})."
        if problem or not version_text.isdigit():
            view = await store.plans.page(token, now())
            if isinstance(view, str):
                return _gone(view)
            return _page(view, prefix="", status=400, error=problem, comments=form.get("comments", "")[:MAX_COMMENTS])
        result = await store.plans.answer(token, int(version_text), approve=approve, comments=comments, now=now())
        if isinstance(result, str):
            return _gone(result)
        if not result.done and result.view.version != int(version_text):
            notice = "The plan changed since you opened it: here it is as it stands now."
            return _page(result.view, prefix="", status=409, notice=notice)
        if result.done:
            _log.info(
                "plan answered on the page",
                project_id=result.view.project_id,
                version=result.view.version,
                answer="approved" if approve else "changes requested",
            )
        # Answered now or before: the page shows the state (a second click changes nothing).
        return RedirectResponse(f"../{token}", status_code=303, headers=HEADERS)

    async def approve(request: Request) -> Response:
        return await answer(request, approve=True)

    async def changes(request: Request) -> Response:
        return await answer(request, approve=False)

    async def pdf(request: Request) -> Response:
        version: int = request.path_params["version"]
        found = await store.plans.pdf(request.path_params["token"], version, now())
        if isinstance(found, str):
            return _gone(found)
        if found is None:
            return _gone("unknown")
        headers = {**HEADERS, "Content-Disposition": f'inline; filename="{pdf_filename(version)}"'}
        return Response(found, media_type="application/pdf", headers=headers)

    return [
        Route(PAGE, page, methods=["GET"]),
        Route(PAGE + "/approve", approve, methods=["POST"]),
        Route(PAGE + "/changes", changes, methods=["POST"]),
        Route(PAGE + "/plan-v{version:int}.pdf", pdf, methods=["GET"]),
    ]
