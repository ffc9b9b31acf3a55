"""The client's review page behind a capability link (served by the service's HTTP server).

- ``GET /client/review/{token}``: every item of the batch, its HTML (made by production, and
  still sanitised with nh3 here: nothing that runs, nothing that loads) or its text, and per
  item still open a form with "Approve" and "Request changes" (a comment required for
  changes, at most `MAX_COMMENT` characters). Answered items are shown read-only, with who
  answered and when. A withdrawn batch says so and has no forms.
- ``POST /client/review/{token}/answer`` (``application/x-www-form-urlencoded``, at most
  `MAX_BODY_BYTES`, refused by its declared length before anything is read, then counted
  while read): the verdict on one item, stored in one transaction with the link's check, only
  while the item awaits one; then a redirect (303) to the page. The actor announces it on its
  next tick.
- A project may have a password (`python run.py review protect PROJECT`): the page then
  first shows a small form (``POST /client/review/{token}/unlock``); the right password sets
  a cookie for that link's path only (an HMAC of the link under the stored argon2 hash: a new
  password invalidates it); wrong ones are counted, and after `rules.MAX_GUESSES` in
  `rules.GUESS_WINDOW` the form answers 429 until the window ends.

The token in the URL is the credential (a form on another site cannot know it, so there is no
CSRF token). A token that opens nothing gets a plain page that says nothing of any project:
404 when unknown, 410 when expired or revoked. No JavaScript; readable on a phone; no caching,
no referrer, no framing, no indexing (`CLIENT_PAGE_HEADERS`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import nh3
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from aicmo_actors.client_review import rules, texts
from aicmo_actors.client_review.emails import PAGE_PATH
from aicmo_actors.client_review.repos import Item, PageView, ReviewStore
from aicmo_actors.client_review.tables import AWAITING
from aicmo_actors.gateways.http import CLIENT_PAGE_HEADERS
from aicmo_actors.storage.links import EXPIRED, REVOKED, token_hash

PAGE = PAGE_PATH + "{token}"
TEMPLATES = Path(__file__).parent / "templates"
#: A whole POST at most (a comment of 5,000 characters, percent-encoded, fits).
MAX_BODY_BYTES = 100_000
MAX_COMMENT = rules.MAX_COMMENT_CHARS
#: Fields in one POST at most (the form has four).
MAX_FIELDS = 10
MAX_PASSWORD_CHARS = 1_000
FORM_TYPE = "application/x-www-form-urlencoded"
COOKIE = "review_access"
#: How long a right password is remembered (seconds).
COOKIE_MAX_AGE = 12 * 3600
HEADERS = CLIENT_PAGE_HEADERS

_log = structlog.get_logger("aicmo", component="client_review.web")


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The page's Jinja2 environment: sandboxed, autoescaped, strict about undefined names."""
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash a page password is stored as."""
    return _hasher().hash(password)


def password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def access_cookie(stored_hash: str, token: str) -> str:
    """The cookie a right password sets: the link's hash signed with the stored password hash."""
    return hmac.new(stored_hash.encode(), token_hash(token).encode(), hashlib.sha256).hexdigest()


def sanitise(html: str) -> str:
    """Production's HTML as the page shows it: nh3's safe tags only (no script, style, form,
    frame or event handler), links opened without a referrer."""
    return nh3.clean(html, link_rel="noopener noreferrer nofollow")


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _html(body: str, status: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={**HEADERS, **(headers or {})})


def _gone(reason: str) -> HTMLResponse:
    status = 410 if reason in (EXPIRED, REVOKED) else 404
    return _html(environment().get_template("gone.html").render(title="Link not valid"), status)


def _refused(exc: _Refused) -> HTMLResponse:
    return _html(environment().get_template("refused.html").render(title="Not sent", text=str(exc)), exc.status)


def _shown(item: Item, tz: str) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "version": item.version,
        "title": item.title,
        "type_label": item.type.replace("_", " ").capitalize(),
        "channel": item.channel,
        "html": Markup(sanitise(item.html)) if item.html.strip() else "",
        "text": item.text,
        "status": item.status,
        "verdict": texts.VERDICT_WORDS.get(item.status, ""),
        "by": texts.BY_WORDS.get(item.reviewed_by or "", ""),
        "at": texts.moment(item.reviewed_at, tz) if item.reviewed_at else "",
        "comment": item.comment or "",
    }


def _title(view: PageView) -> str:
    return f"For your review: {view.company}" if view.company else "For your review"


def _page(
    view: PageView,
    *,
    prefix: str,
    status: int = 200,
    errors: Mapping[str, str] | None = None,
    comments: Mapping[str, str] | None = None,
    notice: str = "",
) -> HTMLResponse:
    body = (
        environment()
        .get_template("page.html")
        .render(
            title=_title(view),
            view={"state": view.state},
            items=[_shown(i, view.timezone) for i in view.items],
            deadline=texts.moment(view.deadline_at, view.timezone),
            auto_approve=texts.moment(view.auto_approve_at, view.timezone) if view.auto_approve_at else "",
            prefix=prefix,
            errors=dict(errors or {}),
            comments=dict(comments or {}),
            notice=notice,
            max_comment=MAX_COMMENT,
        )
    )
    return _html(body, status)


def _password_page(view: PageView, *, prefix: str, status: int = 200, error: str = "") -> HTMLResponse:
    body = environment().get_template("password.html").render(title=_title(view), prefix=prefix, error=error)
    return _html(body, status)


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields: its declared size checked before anything is read, its real
    size while it is read."""
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


def _unlocked(request: Request, view: PageView, token: str) -> bool:
    if view.password_hash is None:
        return True
    given = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(given, access_cookie(view.password_hash, token))


def client_review_routes(store: ReviewStore, *, now: Callable[[], datetime]) -> list[BaseRoute]:
    """The client's review page (see the module), over `store`; `now` is the clock's."""

    async def page(request: Request) -> Response:
        token = request.path_params["token"]
        view = await store.batches.page(token, now())
        if isinstance(view, str):
            return _gone(view)
        if not _unlocked(request, view, token):
            return _password_page(view, prefix=f"{token}/")
        return _page(view, prefix=f"{token}/")

    async def unlock(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            form = await _form(request)
        except _Refused as exc:
            return _refused(exc)
        view = await store.batches.page(token, now())
        if isinstance(view, str):
            return _gone(view)
        if view.password_hash is None:
            return RedirectResponse(f"../{token}", status_code=303, headers=HEADERS)
        moment = now()
        if not rules.guesses_left(view.failures, view.failures_since, moment):
            return _password_page(
                view, prefix="", status=429, error="Too many wrong passwords: please try again in a quarter of an hour."
            )
        password = form.get("password", "")[:MAX_PASSWORD_CHARS]
        if not await run_in_threadpool(password_matches, view.password_hash, password):
            failures, since = rules.after_wrong_guess(view.failures, view.failures_since, moment)
            await store.batches.count_guess(view.project_id, failures=failures, since=since)
            _log.info("wrong review page password", project_id=view.project_id, failures=failures)
            return _password_page(view, prefix="", status=401, error="That is not the password.")
        if view.failures:
            await store.batches.count_guess(view.project_id, failures=0, since=None)
        response = RedirectResponse(f"../{token}", status_code=303, headers=HEADERS)
        response.set_cookie(
            COOKIE,
            access_cookie(view.password_hash, token),
            max_age=COOKIE_MAX_AGE,
            path=f"{PAGE_PATH}{token}",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def answer(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            form = await _form(request)
        except _Refused as exc:
            return _refused(exc)
        view = await store.batches.page(token, now())
        if isinstance(view, str):
            return _gone(view)
        if not _unlocked(request, view, token):
            return _password_page(view, prefix="", status=403, error="Please enter the password first.")
        item_id = form.get("item", "")
        version_text = form.get("version", "")
        verdict = form.get("verdict", "")
        raw_comment = form.get("comment", "")
        comment = rules.clean_comment(raw_comment)
        target = next((i for i in view.items if i.item_id == item_id), None)
        if target is None or not version_text.isdigit() or verdict not in ("approve", "changes"):
            return _refused(_Refused(400, "What was sent does not match this page."))
        problem = ""
        if verdict == "changes" and not comment:
            problem = "Please write what should change."
        elif len(comment) > MAX_COMMENT:
            problem = f"Please keep your comment to {MAX_COMMENT:,} characters (it is {len(comment):,})."
        if problem:
            return _page(
                view,
                prefix="",
                status=400,
                errors={item_id: problem},
                comments={item_id: raw_comment[:MAX_COMMENT]},
            )
        result = await store.batches.answer(
            token,
            item_id,
            int(version_text),
            approve=verdict == "approve",
            comment=comment or None,
            now=now(),
        )
        if isinstance(result, str):
            return _gone(result)
        if result.done:
            _log.info("review answered on the page", batch=result.view.batch_key, item=item_id, verdict=verdict)
        elif target.status == AWAITING and target.version != int(version_text):
            notice = "This piece changed since you opened the page: here it is as it stands now."
            return _page(result.view, prefix="", status=409, notice=notice)
        # Answered now or before: the page shows the state (a second click changes nothing).
        return RedirectResponse(f"../{token}#item-{item_id}", status_code=303, headers=HEADERS)

    return [
        Route(PAGE, page, methods=["GET"]),
        Route(PAGE + "/unlock", unlock, methods=["POST"]),
        Route(PAGE + "/answer", answer, methods=["POST"]),
    ]
