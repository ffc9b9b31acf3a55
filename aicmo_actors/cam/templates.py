"""Email templates: Jinja2 in a sandbox, strict about undefined variables, compiled once.

Subjects and plain-text bodies are rendered without escaping; HTML bodies with
autoescape. Every email gets a footer with the sender's postal address and the
unsubscribe link. `check_campaign` renders every step and variant for every lead and
reports each missing variable with the lead and the step, before anything is sent.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from aicmo_actors.cam.campaign import CampaignSpec

_TEXT_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_HTML_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)
_UNDEFINED = re.compile(r"'([^']+)' is undefined")
# What str.splitlines() breaks on: none of it may reach a Subject header.
_LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"

#: What every lead has, for checking a campaign without a leads file.
SAMPLE_LEAD = {
    "email": "sample.lead@example.com",
    "first_name": "Sam",
    "last_name": "Sample",
    "company": "Example Inc",
    "timezone": "UTC",
}


class TemplateProblemError(ValueError):
    """A template could not be rendered (syntax, missing variable, sandbox violation)."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class TemplateProblem:
    step: int  # 1-based
    variant: str
    part: str  # subject / body / html
    message: str
    lead: str | None = None  # "line N (address)" when it concerns one lead

    def __str__(self) -> str:
        who = f"{self.lead}: " if self.lead else ""
        return f"{who}step {self.step} variant {self.variant} {self.part}: {self.message}"


@lru_cache(maxsize=1024)
def _compile(source: str, html: bool) -> Any:
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


def _render(source: str, context: Mapping[str, Any], html: bool) -> str:
    try:
        return str(_compile(source, html).render(context))
    except UndefinedError as exc:
        match = _UNDEFINED.search(str(exc))
        if match is None:  # e.g. "'str object' has no attribute 'foo'"
            raise TemplateProblemError(f"undefined value: {exc}") from None
        raise TemplateProblemError(f"missing variable {match.group(1)!r}") from None
    except SecurityError as exc:
        raise TemplateProblemError(f"not allowed in a template: {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateProblemError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except Exception as exc:  # a filter blowing up on odd data is the template's problem
        raise TemplateProblemError(f"{type(exc).__name__}: {exc}") from None


def context_for(spec: CampaignSpec, step: int, lead: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """What a template sees: campaign values, then the lead's fields, then `extra` (which wins).

    `extra["sender_address"]` names the sending mailbox, so `sender_name` is the name the
    lead sees in From; without it the first mailbox stands in (for `check_campaign`).
    """
    wanted = str(extra.get("sender_address", "")).lower()
    mailbox = next((m for m in spec.mailboxes if m.address.lower() == wanted), spec.mailboxes[0])
    ctx: dict[str, Any] = {
        "campaign": spec.name,
        "step": step,
        "postal_address": spec.postal_address,
        "sender_name": mailbox.display_name or "",
        "sender_address": mailbox.address,
        "unsubscribe_url": "https://example.invalid/u/TOKEN",
    }
    ctx.update(lead)
    ctx.update(extra)
    return ctx


def render_step(
    spec: CampaignSpec, step_index: int, variant: str, lead: Mapping[str, Any], extra: Mapping[str, Any]
) -> RenderedEmail:
    """Render step `step_index` (0-based) for one lead, footer included."""
    step = spec.steps[step_index]
    subject_t, body_t, html_t = step.variant(variant)
    ctx = context_for(spec, step_index + 1, lead, extra)
    subject = " ".join(_render(subject_t, ctx, False).split())
    text = _render(body_t, ctx, False).rstrip() + "\n"
    url = str(ctx["unsubscribe_url"])
    text += f"\n--\n{spec.postal_address}\nUnsubscribe: {url}\n"
    html = None
    if html_t:
        html = _render(html_t, ctx, True)
        html += (
            f'\n<hr><p style="font-size:12px;color:#666">{html_lib.escape(spec.postal_address)}<br>'
            f'<a href="{html_lib.escape(url, quote=True)}">Unsubscribe</a></p>\n'
        )
    return RenderedEmail(subject, text, html)


def check_campaign(spec: CampaignSpec, leads: Iterable[tuple[str, Mapping[str, Any]]] | None = None) -> list[TemplateProblem]:
    """Render every step and variant for every lead ((label, fields) pairs); list the problems.

    Syntax errors are reported once per template; missing variables once per lead. A variant
    that inherits the step's own text (no `body` of its own, say) shares its template, so a
    problem in it is reported once, under the first variant that uses it.
    """
    problems: list[TemplateProblem] = []
    templates: list[tuple[int, str, str, str]] = []  # (step index, variant, part, source), each once
    for index, step in enumerate(spec.steps):
        seen: set[tuple[str, str]] = set()
        for name in ["A", *(v.name for v in step.variants)]:
            for part, source in zip(("subject", "body", "html"), step.variant(name), strict=True):
                if source is None or (part, source) in seen:
                    continue
                seen.add((part, source))
                try:
                    _compile(source, part == "html")
                except TemplateSyntaxError as exc:
                    problems.append(TemplateProblem(index + 1, name, part, f"syntax error on line {exc.lineno}: {exc.message}"))
                    continue
                templates.append((index, name, part, source))
    sample = [("sample lead", SAMPLE_LEAD)] if leads is None else leads
    for label, lead in sample:
        contexts = [context_for(spec, index + 1, lead, {}) for index in range(len(spec.steps))]
        for index, name, part, source in templates:
            try:
                rendered = _render(source, contexts[index], part == "html")
            except TemplateProblemError as exc:
                problems.append(TemplateProblem(index + 1, name, part, str(exc), label))
                continue
            if part == "subject" and any(c in rendered for c in _LINE_BREAKS):
                problems.append(TemplateProblem(index + 1, name, part, "renders to more than one line", label))
    return problems
