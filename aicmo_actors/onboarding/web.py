"""The intake form behind a capability link: ``GET|POST /client/intake/{token}``.

Server-rendered (Jinja2, autoescaped), no JavaScript, readable on a phone. The token in the
URL is the only credential (a form on another site cannot know it, so there is no CSRF
token); a token that opens nothing gets a plain page that says what to do and nothing else.

- GET: the questionnaire with the answers saved so far; once completed, a thank-you and the
  answers, read-only.
- POST (``application/x-www-form-urlencoded``, at most `MAX_BODY_BYTES`, refused by its
  declared length before anything is read): "Save and finish later" saves what was typed;
  "Submit" saves and, when every required answer is there, completes the intake in the same
  transaction. Each answer is at most `rules.MAX_ANSWER_CHARS`. Answered with a redirect
  (303) back to the page.

The token is in the URL: no caching, no referrer, no framing, no indexing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from aicmo_actors.gateways.http import CLIENT_PAGE_HEADERS
from aicmo_actors.onboarding import rules, texts
from aicmo_actors.onboarding.repos import FormView, OnboardingStore
from aicmo_actors.onboarding.tables import WAITING
from aicmo_actors.storage.links import EXPIRED, REVOKED
from contracts.onboarding import BRIEF_FIELDS

TEMPLATES = Path(__file__).parent / "templates"
#: Where the form is served (the service mounts the routes as they are).
PATH = "/client/intake/{token}"
#: A whole POST at most (URL-encoded: long answers in non-Latin scripts take up to 9 bytes a character).
MAX_BODY_BYTES = 100_000
#: Form fields in one POST at most (eight questions and the button).
MAX_FIELDS = 50
FORM_TYPE = "application/x-www-form-urlencoded"

HEADERS = CLIENT_PAGE_HEADERS

_ADVICE = (
    "If you need to answer our questions, reply to the email you received from us or contact your "
    "account manager at the agency: we will send you a new link."
)
#: reason -> (status, title, text). Nothing says which project or client a token was for.
_PROBLEMS: dict[str, tuple[int, str, str]] = {
    EXPIRED: (410, "This link has expired", "This link to our questionnaire is no longer valid."),
    REVOKED: (410, "This link is no longer active", "This link to our questionnaire has been switched off."),
}
_UNKNOWN = (
    404,
    "This link does not work",
    "This link does not open anything. If you copied it from an email, check that it is complete.",
)

_log = structlog.get_logger("aicmo", component="onboarding.web")


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _fields(values: Mapping[str, str], errors: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "key": field.key,
            "label": field.label,
            "required": field.required,
            "help": field.help,
            "value": values.get(field.key, ""),
            "error": (errors or {}).get(field.key, ""),
        }
        for field in BRIEF_FIELDS
    ]


_LABELS = {field.key: field.label for field in BRIEF_FIELDS}


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` (a client that sent more than it declared)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def onboarding_routes(store: OnboardingStore, *, now: Callable[[], datetime], agency_name: str = "") -> list[BaseRoute]:
    """The intake form's route, for the service's HTTP server. `now` is the clock's time;
    `agency_name` is how the pages name the agency ("" says "we")."""
    env = _environment()

    def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(agency=agency_name, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def problem(status: int, title: str, text: str, advice: str = _ADVICE) -> HTMLResponse:
        return render("problem.html", status, title=title, text=text, advice=advice)

    def closed(reason: str) -> HTMLResponse:
        status, title, text = _PROBLEMS.get(reason, _UNKNOWN)
        _log.info("intake_link_refused", reason=reason)
        return problem(status, title, text)

    def unavailable() -> HTMLResponse:
        _log.exception("intake_form_failed")
        return problem(
            503, "Please try again", "We could not open this page just now: please try again in a few minutes."
        )

    def form(
        view: FormView,
        *,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        saved: bool = False,
        incomplete: bool = False,
        status: int = 200,
    ) -> HTMLResponse:
        shown = values if values is not None else view.answers
        missing = [_LABELS[key] for key in rules.missing(view.answers)] if incomplete else []
        return render(
            "form.html",
            status,
            title=f"Questions for {view.company}",
            company=view.company,
            expires=texts.local_day(view.expires_at, view.timezone),
            fields=_fields(shown, errors),
            max_chars=rules.MAX_ANSWER_CHARS,
            saved=saved and not incomplete,
            missing=missing,
            errors=bool(errors),
        )

    def done(view: FormView) -> HTMLResponse:
        answers = view.brief if view.brief is not None else view.answers
        completed = texts.local_time(view.completed_at, view.timezone) if view.completed_at else ""
        return render(
            "done.html", title="Thank you", company=view.company, completed_at=completed, fields=_fields(answers)
        )

    async def show(request: Request, token: str) -> Response:
        try:
            view = await store.forms.open(token, now())
        except Exception:
            return unavailable()
        if isinstance(view, str):
            return closed(view)
        if view.state != WAITING:
            return done(view)
        query = request.query_params
        return form(view, saved="saved" in query, incomplete="incomplete" in query)

    async def save(request: Request, token: str) -> Response:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            return problem(
                413,
                "Too much text",
                f"Your answers are longer than we can take at once ({MAX_BODY_BYTES // 1000} KB): nothing was saved. "
                "Shorten the longest ones (send long documents as links) and try again.",
                advice="",
            )
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
            return problem(415, "Not a form", "Please answer through the form on this page.", advice="")
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return problem(413, "Too much text", "Your answers are longer than we can take at once.", advice="")
        try:
            posted = dict(
                parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
            )
        except ValueError:
            return problem(400, "Not a form", "Please answer through the form on this page.", advice="")
        submit = posted.get("action") == "submit"
        checked = rules.check_answers(posted)
        try:
            if checked.errors:
                view = await store.forms.open(token, now())
                if isinstance(view, str):
                    return closed(view)
                if view.state != WAITING:
                    return done(view)
                return form(view, values=rules.merge(view.answers, checked.answers), errors=checked.errors, status=400)
            saved = await store.forms.save(token, checked.answers, submit=submit, now=now())
        except Exception:
            return unavailable()
        if isinstance(saved, str):
            return closed(saved)
        if saved.completed_now:
            _log.info("intake_completed_by_client")
        suffix = "?incomplete=1" if saved.missing else "?saved=1" if saved.state == WAITING else ""
        # Relative to this page's address, wherever the service is mounted: the same page again.
        return RedirectResponse(token + suffix, status_code=303, headers=HEADERS)

    async def intake(request: Request) -> Response:
        token = str(request.path_params["token"])
        if request.method == "POST":
            return await save(request, token)
        return await show(request, token)

    return [Route(PATH, intake, methods=["GET", "POST"], name="onboarding_intake")]
