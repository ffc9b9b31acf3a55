"""The generator port: what writes a version of a work item, and the default one.

`Generator` is the port (`async def draft(request) -> Draft`). `TemplateGenerator` is the
default: offline and deterministic (the same request gives the same draft), Jinja2
templates per deliverable type under `templates/` (sandboxed; Markdown out, so not
HTML-escaped: the HTML is made from it by markdown-it with raw HTML disabled, then nh3)
filled from the brief and the item's topic, within the item's word and character limits,
without the brief's words to avoid, the company named as in the brief.

- a first draft (version 1): the template of the item's type (`generic` for others);
- a retake (the previous version failed QC): the previous text with what the findings point
  at fixed (the brand's spelling; sentences with a forbidden word, a placeholder, a
  misspelling or a link dropped), refitted to the limits;
- a revision (the client asked for changes): the previous text without what the client
  objected to (quoted words, "avoid X"), with a paragraph on what they asked more of, the
  rest kept.

`make_generator` makes the LLM one (`llm_generator.LlmGenerator`) when a URL is configured.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from aicmo_actors.production import drafting
from aicmo_actors.production.drafting import Limits
from contracts.clients import ClientInfo
from contracts.qc import Finding
from contracts.strategy import PlannedItem

TEMPLATES = Path(__file__).resolve().parent / "templates"
TYPES = ("blog_post", "social_post", "newsletter", "landing_page", "case_study")

Kind = Literal["first", "retake", "revision"]


@dataclass(frozen=True)
class Previous:
    version: int
    title: str
    text: str


@dataclass(frozen=True)
class DraftRequest:
    """What a generator is asked to write: version `version` of `item`."""

    item: PlannedItem
    client: ClientInfo
    brief: dict[str, str]
    version: int
    previous: Previous | None = None
    #: The client's comment (a revision), or the QC findings (a retake).
    comment: str = ""
    findings: tuple[Finding, ...] = ()

    @property
    def kind(self) -> Kind:
        if self.previous is None:
            return "first"
        return "retake" if self.findings and not self.comment else "revision"

    @property
    def limits(self) -> Limits:
        return Limits(self.item.min_words, self.item.max_words, self.item.max_chars)

    @property
    def avoid(self) -> tuple[str, ...]:
        return drafting.phrases(self.brief.get("words_to_avoid"))


@dataclass(frozen=True)
class Draft:
    title: str
    text: str
    html: str
    source: str  # "template" or "llm"
    tokens: int = 0


class GeneratorError(Exception):
    """A draft could not be written now; `permanent` when asking again will not help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Generator(Protocol):
    #: "template" or "llm": the studio falls back to the templates only from the latter.
    kind: str
    #: Tokens a client may use per period (None: no budget to keep).
    budget_tokens: int | None

    async def draft(self, request: DraftRequest) -> Draft: ...


# -- the phrasebook ---------------------------------------------------------------------------------------------------

#: (heading, sentences) per angle; {company}, {audience}, {goal}, {term}, {business} filled in.
_ANGLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Start with the goal",
        (
            "Every good plan starts with one clear goal: {goal}.",
            "Write it down in a single sentence that the whole team can repeat.",
            "A goal that fits on one line is easier to check each week than a long list of wishes.",
            "When the goal is clear, it becomes much easier to say no to work that does not serve it.",
            "It also tells you which numbers to watch, and which ones you can safely ignore.",
            "Review the goal once a month, and change it only when the facts have changed.",
        ),
    ),
    (
        "Know who you are talking to",
        (
            "The people we write for are {audience}.",
            "They are busy, and they want answers they can use the same day.",
            "Short, concrete advice works better for them than general promises.",
            "Listen to the questions they ask most often, and answer those first.",
            "Use the words they use, not the words of a brochure.",
            "When in doubt, ask a few of them what they would like to read next.",
        ),
    ),
    (
        "Make {term} part of the routine",
        (
            "The best results with {term} come from steady habits rather than big projects.",
            "Pick one small step you can take this week, and take it.",
            "Then look at what changed, and decide on the next step.",
            "Small steps are easy to explain, easy to measure and easy to undo.",
            "Over a quarter, a series of small steps often does more than one large launch.",
            "Keep a short note of each step, so the team can see the progress.",
        ),
    ),
    (
        "Measure what matters",
        (
            "Choose one or two numbers that show whether the work is paying off.",
            "Measure them the same way every week, so that the trend is easy to read.",
            "A single number that moves in the right direction is worth more than a long report.",
            "If a number does not lead to a decision, stop tracking it.",
            "Share the results with the team, even when they are not what you hoped for.",
            "Honest numbers build trust, and trust makes the next change easier.",
        ),
    ),
    (
        "Learn from the people closest to the work",
        (
            "The people who do the work every day often see problems first.",
            "Ask them what slows them down, and what they would change tomorrow.",
            "Their answers are usually practical, and many of them cost little to try.",
            "Thank them for every idea, including the ones you do not use.",
            "A team that is heard is a team that keeps looking for better ways.",
            "This is how good ideas turn into daily practice.",
        ),
    ),
    (
        "Keep it simple",
        (
            "Simple plans are easier to follow than clever ones.",
            "Cut every step that does not help the goal.",
            "Write instructions that a new colleague could follow on the first day.",
            "When a process needs a long manual, it is usually a sign that it can be simpler.",
            "Simplicity also makes mistakes easier to spot and to fix.",
            "Start simple, and add detail only when the results show you need it.",
        ),
    ),
    (
        "How {company} can help",
        (
            "At {company}, this is the kind of work we do every day.",
            "Our focus is clear: {business}.",
            "We work closely with {audience}, and we know the questions they face.",
            "Our approach is practical, and we explain each step as we go.",
            "We would rather show results than make promises.",
            "If this sounds useful, we are happy to talk it through with you.",
        ),
    ),
    (
        "Common mistakes to avoid",
        (
            "The most common mistake is to start too many things at once.",
            "Another is to measure everything and act on nothing.",
            "A third is to plan for months before trying anything in practice.",
            "Each of these mistakes wastes time that could go into real progress.",
            "The fix is the same in every case: one goal, one step, one number to watch.",
            "Keep that rule in mind, and most problems become easier to handle.",
        ),
    ),
    (
        "Plan the next month",
        (
            "Set aside an hour at the start of each month to plan the weeks ahead.",
            "List the three things that will move the goal the most.",
            "Give each one an owner and a date.",
            "At the end of the month, look back and note what worked.",
            "Carry the good ideas forward, and drop the rest without regret.",
            "A calm monthly rhythm keeps the work steady, even in busy times.",
        ),
    ),
    (
        "Stay close to your customers",
        (
            "Customers tell you what they value, if you give them the chance.",
            "A short call or a two-line email is often enough to learn something new.",
            "Write down what they say, in their own words.",
            "Look for patterns over a few weeks, not in a single answer.",
            "Then use what you learn to shape the next piece of work.",
            "Customers notice when you listen, and they remember it.",
        ),
    ),
    (
        "Use the tools you already have",
        (
            "Most teams already own the tools they need for {term}.",
            "Before buying anything new, look at what is already in place.",
            "Often a shared list, a calendar and a weekly meeting are enough to begin.",
            "New tools help most when the habits around them are already working.",
            "Choose tools that the whole team finds easy to use.",
            "A tool that nobody opens is not a tool, it is a cost.",
        ),
    ),
    (
        "Tell the story clearly",
        (
            "People remember stories far better than lists of features.",
            "Describe the situation, the choice that was made and what happened next.",
            "Use plain words, short sentences and real examples.",
            "Leave out anything the reader does not need to follow the story.",
            "End with one thing the reader can do after reading.",
            "A clear story is also easier to share, which helps it reach more people.",
        ),
    ),
    (
        "Work as one team",
        (
            "Good results rarely come from one person working alone.",
            "Agree on who does what, and write it down where everyone can see it.",
            "Meet briefly and often, rather than rarely and for a long time.",
            "Celebrate the small wins, because they keep the team going.",
            "When something goes wrong, look at the process before you look for blame.",
            "Teams that trust each other move faster and make fewer mistakes.",
        ),
    ),
    (
        "Check in regularly",
        (
            "A short weekly check keeps the work on track.",
            "Look at the numbers, the open tasks and the questions that came up.",
            "Decide what to keep, what to change and what to stop.",
            "Keep the meeting short, and end it with clear next steps.",
            "Over time, these checks become the heartbeat of the work.",
            "They also make it easy to spot problems before they grow.",
        ),
    ),
)

_INTROS = {
    "blog_post": (
        "This article looks at {topic_lc}. It is written for {audience}, and it keeps to what you can put into "
        "practice this week."
    ),
    "newsletter": "Here is what we have for you this month: a short, practical look at {topic_lc}.",
    "case_study": (
        "This case study looks at {topic_lc}. It shows how a clear goal, a simple plan and steady habits work "
        "together for {audience}."
    ),
    "landing_page": "{company} helps {audience} with {term}. Our aim is simple: {goal}.",
    "generic": "This piece looks at {topic_lc}, for {audience}.",
}
_CLOSINGS = {
    "blog_post": "Pick one idea from this article and try it this week. Small steps add up, and {company} is glad "
    "to help you take the next one.",
    "newsletter": "Thank you for reading. Reply to this email if you would like to talk about any of it.",
    "case_study": "The lesson is simple: clear goals and steady habits beat big plans. {company} is glad to help "
    "you take the first step.",
    "generic": "Thank you for reading. {company} is glad to help you take the next step.",
}
_BENEFITS = (
    "A clear plan built around your goal",
    "Practical steps your team can take this week",
    "Simple numbers that show what is working",
    "A partner who explains each step as we go",
)


def _lead_lower(text: str) -> str:
    """A phrase as the middle of a sentence: its first letter lower case (unless an acronym)."""
    text = text.strip().rstrip(".!?").strip()
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _first(brief: dict[str, str], key: str, fallback: str) -> str:
    found = drafting.phrases((brief.get(key) or "").split("\n")[0].split(". ")[0])
    return " ".join(found) if found and len(" ".join(found)) <= 120 else fallback


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """Sandboxed; autoescaping only for HTML templates (these are Markdown, made HTML later)."""
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def template_name(item_type: str) -> str:
    return f"{item_type}.md.j2" if item_type in TYPES else "generic.md.j2"


@dataclass
class _Context:
    values: dict[str, str]
    sections: list[tuple[str, str]] = field(default_factory=list)
    pool: list[str] = field(default_factory=list)


class TemplateGenerator:
    """Offline, deterministic drafts from the templates (see the module)."""

    kind = "template"
    budget_tokens: int | None = None

    async def draft(self, request: DraftRequest) -> Draft:
        return self.write(request)

    def write(self, request: DraftRequest) -> Draft:
        """The same as `draft`, synchronously (pure)."""
        ctx = self._context(request)
        pattern = drafting.avoid_pattern(request.avoid)
        if request.previous is None:
            title, text = self._first(request, ctx)
        elif request.kind == "retake":
            title = request.previous.title
            text = drafting.fix_findings(
                request.previous.text,
                [f.model_dump() for f in request.findings],
                request.client.company,
            )
        else:
            title, text = self._revise(request, ctx)
        text = drafting.drop_matching(text, pattern)
        if pattern is not None and pattern.search(title):
            title = ctx.values["topic_safe"]
        text = drafting.fit(text, request.limits, ctx.pool)
        return Draft(title=title, text=text, html=drafting.to_html(text), source="template")

    # -- the parts -------------------------------------------------------------------------------------------

    def _context(self, request: DraftRequest) -> _Context:
        brief, item, company = request.brief, request.item, request.client.company
        avoid = request.avoid
        terms = [t for t in drafting.phrases(brief.get("words_to_use")) if not drafting.contains_any(t, avoid)]
        terms = [t for t in terms if t.lower() != company.lower()]
        in_topic = [t for t in terms if t.lower() in item.topic.lower()]
        term = (in_topic or terms or ["this work"])[0]
        values = {
            "company": company,
            "topic": item.topic,
            "topic_lc": _lead_lower(item.topic),
            "topic_safe": item.topic if not drafting.contains_any(item.topic, avoid) else f"News from {company}",
            "audience": _lead_lower(_first(brief, "audience", "the people we work with")),
            "goal": _lead_lower(_first(brief, "goals", "steady, visible progress")),
            "business": _lead_lower(_first(brief, "business", "practical help for growing teams")),
            "term": _lead_lower(term),
        }
        values = {k: (v if not drafting.contains_any(v, avoid) or k == "topic" else "") for k, v in values.items()}
        values["audience"] = values["audience"] or "the people we work with"
        values["goal"] = values["goal"] or "steady, visible progress"
        values["business"] = values["business"] or "practical help for growing teams"
        values["term"] = values["term"] or "this work"
        start = _seed(f"{company}:{item.key}:{item.topic}") % len(_ANGLES)
        angles = [_ANGLES[(start + i) % len(_ANGLES)] for i in range(len(_ANGLES))]
        ctx = _Context(values)
        pattern = drafting.avoid_pattern(avoid)
        for heading, said in angles:
            kept = [s.format(**values) for s in said]
            kept = [s for s in kept if pattern is None or not pattern.search(s)]
            if kept:
                ctx.sections.append((heading.format(**values), " ".join(kept)))
                ctx.pool.extend(kept)
        return ctx

    def _first(self, request: DraftRequest, ctx: _Context) -> tuple[str, str]:
        item, v = request.item, ctx.values
        kind = item.type if item.type in TYPES else "generic"
        limits = request.limits
        social = kind == "social_post" or (item.max_chars is not None and item.max_words is None)
        template = environment().get_template(template_name("social_post" if social else item.type))
        fill: dict[str, Any] = {
            "company": v["company"],
            "intro": _INTROS.get(kind, _INTROS["generic"]).format(**v),
            "closing": _CLOSINGS.get(kind, _CLOSINGS["generic"]).format(**v),
            "hook": f"{v['topic_safe']}: what works for {v['audience']}.",
            "call": f"Want to know more? Talk to {v['company']}.",
            "benefits": _BENEFITS,
        }
        if social:
            # One or two short tips, each a sentence.
            tips = [(h, s) for h, s in ((h, drafting.sentences(p)[0]) for h, p in ctx.sections[:2])]
            sections = tips
        else:
            sections = []
            for section in ctx.sections:
                sections.append(section)
                text = template.render(sections=sections, **fill)
                if drafting.count_words(text) >= limits.low or (limits.too_long(text) and len(sections) > 1):
                    break
            while len(sections) > 1 and limits.too_long(template.render(sections=sections, **fill)):
                sections.pop()
        text = template.render(sections=sections, **fill)
        used = set(drafting.sentences(" ".join(p for _, p in sections)))
        ctx.pool = [s for s in ctx.pool if s not in used]
        title = v["topic_safe"]
        if kind == "newsletter":
            title = f"{v['company']} newsletter: {title}"
        elif kind == "case_study" and not title.lower().startswith("case study"):
            title = f"Case study: {title}"
        return title, re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    def _revise(self, request: DraftRequest, ctx: _Context) -> tuple[str, str]:
        assert request.previous is not None
        asked = drafting.read_comment(request.comment)
        text, title = request.previous.text, request.previous.title
        drop = drafting.avoid_pattern(asked.drop)
        text = drafting.drop_matching(text, drop)
        if drop is not None and drop.search(title):
            title = ctx.values["topic_safe"]
        added = []
        for subject in asked.add:
            if drafting.contains_any(subject, request.avoid):
                continue
            lead = subject[0].upper() + subject[1:]
            added.append(
                f"{lead} deserve a closer look. They show what the work means in practice, and they are what "
                f"{ctx.values['audience']} ask us about most."
            )
        if added:
            parts = drafting.blocks(text)
            parts[-1:-1] = added if len(parts) > 1 else []
            if len(parts) <= 1:
                parts.extend(added)
            text = drafting.join(parts)
        return title, text


def make_generator(
    url: str | None,
    *,
    model: str = "",
    key: str | None = None,
    timeout_s: float = 60.0,
    budget_tokens: int | None = None,
) -> Generator:
    """The generator the settings ask for: the LLM one when `url` is set (`generator_url`,
    `generator_model`, `generator_key`, `generator_timeout_s`, `generator_budget_tokens`),
    else the templates."""
    if not url:
        return TemplateGenerator()
    from aicmo_actors.gateways.llm import ChatClient
    from aicmo_actors.production.llm_generator import LlmGenerator

    client = ChatClient(url, model=model, api_key=key, timeout_s=timeout_s)
    return LlmGenerator(client, budget_tokens=budget_tokens)
