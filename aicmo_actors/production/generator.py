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
  misspelling or a link dropped), refitted to the limits; a retake of a near-duplicate is
  written anew from another turn of the phrasebook (its tips, openings, calls and sections
  drawn from a seed that includes the version), as fixing sentences cannot make it differ;
- a revision (the client asked for changes): the previous text without what the client
  objected to (quoted words, "avoid X"), with a paragraph on what they asked more of, the
  rest kept.

`make_generator` makes the LLM one (`llm_generator.LlmGenerator`) when a URL is configured.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

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
T = TypeVar("T")
#: The longest newsletter subject line written (QC warns above 60 characters).
SUBJECT_MAX = 60


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
#
# Every piece is put together from this phrasebook, seeded by the client, the item's key and its
# topic: the sections, their order, their headings, the openings, the closings and the
# sentences that weave in the brief are chosen per item, so that two pieces of one client and
# type share little text (QC fails a piece whose words are 80% the same as an earlier one's).
# Values filled in: {company}, {audience}, {goal}, {term}, {business}, {subject}, {topic}.

#: (heading variants, sentences) per section.
_SECTIONS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("Start with the goal", "One goal, written down"),
        (
            "Every good plan starts with one clear goal.",
            "Write it down in a single sentence that the whole team can repeat.",
            "A goal that fits on one line is easier to check each week than a long list of wishes.",
            "When the goal is clear, it becomes much easier to say no to work that does not serve it.",
            "It also tells you which numbers to watch, and which ones you can safely ignore.",
            "Review the goal once a month, and change it only when the facts have changed.",
        ),
    ),
    (
        ("Know who you are talking to", "Write for real readers"),
        (
            "Every reader is busy, and most want answers they can use the same day.",
            "Short, concrete advice works better for them than general promises.",
            "Listen to the questions they ask most often, and answer those first.",
            "Use the words they use, not the words of a brochure.",
            "When in doubt, ask a few readers what they would like to read next.",
        ),
    ),
    (
        ("Make it part of the routine", "Habits beat big projects"),
        (
            "The best results come from steady habits rather than big projects.",
            "Pick one small step you can take this week, and take it.",
            "Then look at what changed, and decide on the next step.",
            "Small steps are easy to explain, easy to measure and easy to undo.",
            "Over a quarter, a series of small steps often does more than one large launch.",
            "Keep a short note of each step, so the team can see the progress.",
        ),
    ),
    (
        ("Measure what matters", "Pick the right numbers"),
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
        ("Learn from the people closest to the work", "Ask the people who do the work"),
        (
            "The people who do the work every day often see problems first.",
            "Ask them what slows them down, and what they would change tomorrow.",
            "Their answers are usually practical, and many of them cost little to try.",
            "Thank them for every idea, including the ones you do not use.",
            "A team that is heard is a team that keeps looking for better ways.",
        ),
    ),
    (
        ("Keep it lean", "Less, but better"),
        (
            "Plain plans are easier to follow than clever ones.",
            "Cut every step that does not help the goal.",
            "Write instructions that a new colleague could follow on the first day.",
            "When a process needs a long manual, it can usually be made shorter.",
            "A short process also makes mistakes easier to spot and to fix.",
            "Start small, and add detail only when the results show you need it.",
        ),
    ),
    (
        ("Common mistakes", "Traps worth knowing"),
        (
            "The most common mistake is to start too many things at once.",
            "Another is to measure everything and act on nothing.",
            "A third is to plan for months before trying anything in practice.",
            "Each of these mistakes wastes time that could go into real progress.",
            "The fix is the same in every case: one goal, one step, one number to watch.",
        ),
    ),
    (
        ("Plan the next month", "A monthly rhythm"),
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
        ("Stay close to your customers", "Listen before you write"),
        (
            "Customers tell you what they value, if you give them the chance.",
            "A short call or a two-line email is often enough to learn something new.",
            "Write down what they say, in their own words.",
            "Look for patterns over a few weeks, not in a single answer.",
            "Customers notice when you listen, and they remember it.",
        ),
    ),
    (
        ("Use the tools you already have", "Before you buy anything"),
        (
            "Most teams already own the tools they need.",
            "Before buying anything new, look at what is already in place.",
            "Often a shared list, a calendar and a weekly meeting are enough to begin.",
            "New tools help most when the habits around them are already working.",
            "A tool that nobody opens is not a tool, it is a cost.",
        ),
    ),
    (
        ("Tell the story clearly", "Stories stick"),
        (
            "People remember stories far better than lists of features.",
            "Describe the situation, the choice that was made and what happened next.",
            "Use plain words, short sentences and real examples.",
            "Leave out anything the reader does not need to follow the story.",
            "A clear story is also easier to share, which helps it reach more people.",
        ),
    ),
    (
        ("Work as one team", "Nobody wins alone"),
        (
            "Good results rarely come from one person working alone.",
            "Agree on who does what, and write it down where everyone can see it.",
            "Meet briefly and often, rather than rarely and for a long time.",
            "Celebrate the small wins, because they keep the team going.",
            "When something goes wrong, look at the process before you look for blame.",
        ),
    ),
    (
        ("Check in every week", "The weekly check"),
        (
            "A short weekly check keeps the work on track.",
            "Look at the numbers, the open tasks and the questions that came up.",
            "Decide what to keep, what to change and what to stop.",
            "Keep the meeting short, and end it with clear next steps.",
            "Over time, these checks become the heartbeat of the work.",
        ),
    ),
    (
        ("Test before you commit", "Try it small first"),
        (
            "Big changes are safer when you try them on a small scale first.",
            "Run the new idea with one group, one region or one product for a few weeks.",
            "Compare the result with what happened before, and be honest about the gap.",
            "If the test works, roll it out in stages rather than all at once.",
            "If it fails, you have lost little and learned a lot.",
        ),
    ),
    (
        ("Write it down", "Notes that save hours"),
        (
            "Teams forget more than they think, especially in busy weeks.",
            "A page of notes on how a task is done saves hours of questions later.",
            "Keep those notes where everyone can find them, and date each change.",
            "New colleagues learn faster, and old hands stop guessing.",
            "Good notes also show where a process has grown too long.",
        ),
    ),
    (
        ("Protect your time", "Say no more often"),
        (
            "Time is the budget that runs out first.",
            "Block a few hours each week for the work that moves the goal.",
            "Guard those hours as you would guard a meeting with a key client.",
            "Turn down requests that do not fit, and explain why in one friendly line.",
            "Most people accept a clear no far better than a late yes.",
        ),
    ),
    (
        ("Answer the real question", "Find the question behind the question"),
        (
            "When a client asks for something, there is often a deeper need behind it.",
            "Ask why before you ask how.",
            "Two or three follow-up questions usually reveal what matters most.",
            "Solving the real problem saves both sides a second round of work.",
            "It also shows that you were listening, which builds trust quickly.",
        ),
    ),
    (
        ("Make progress visible", "Show the work"),
        (
            "Progress that nobody sees is easy to forget.",
            "Put the main figures on one page, and update it on the same day each week.",
            "A chart with a clear trend says more than a paragraph of comments.",
            "When people see things moving, they stay engaged and bring new ideas.",
            "Visible progress also makes it easier to ask for the next budget.",
        ),
    ),
    (
        ("Learn from what went wrong", "Mistakes as lessons"),
        (
            "Every team makes mistakes, and the good ones learn from them.",
            "After a problem, spend half an hour on what happened and why.",
            "Focus on the steps that failed, never on the person who took them.",
            "Write down one change that would stop it happening again, and make it.",
            "Teams that review their mistakes calmly make fewer of them over time.",
        ),
    ),
    (
        ("Keep the message consistent", "One voice everywhere"),
        (
            "Readers trust a company that sounds the same in every place they meet it.",
            "Use the same key words on the website, in emails and in posts.",
            "Agree on a few phrases that describe what you do, and stick to them.",
            "Consistency does not mean repetition: the tone stays, the examples change.",
            "Over months, a steady message is what people start to remember.",
        ),
    ),
    (
        ("Prepare for busy seasons", "Plan for the peaks"),
        (
            "Most businesses have weeks when everything happens at once.",
            "Look back at last year and mark the busiest periods in the calendar.",
            "Prepare the routine work early, so that the peak leaves room for surprises.",
            "Tell customers ahead of time what they can expect, and when.",
            "A quiet plan made in advance beats a hurried one made under pressure.",
        ),
    ),
    (
        ("Ask for feedback early", "Early feedback, fewer surprises"),
        (
            "Feedback costs the least before the work is finished.",
            "Share a rough draft or a first version, and ask what is missing.",
            "People give better advice on something concrete than on an idea.",
            "Thank every reviewer, and tell them what you changed because of them.",
            "They will be glad to help again next time.",
        ),
    ),
    (
        ("Focus on fewer things", "Fewer priorities, more results"),
        (
            "A long list of priorities is really no priority at all.",
            "Choose the three tasks that matter most this quarter.",
            "Put everything else on a waiting list, and look at it again next month.",
            "Focused teams finish more, even when they start less.",
            "Finishing work also gives the team energy for the next round.",
        ),
    ),
    (
        ("Build on what already works", "Start from your strengths"),
        (
            "Most teams already do a few things very well.",
            "Find those strengths, and ask how they could serve the goal even better.",
            "Improving a good habit is easier than building a new one from scratch.",
            "Customers often value these strengths more than the team itself does.",
            "Name them clearly, so that everyone knows what to protect.",
        ),
    ),
    (
        ("Make the next step easy", "Remove the friction"),
        (
            "People act when the next step is clear and quick.",
            "Look at every form, link and email from the reader's side.",
            "Remove each field, click or question that is not strictly needed.",
            "A shorter path usually brings more replies than a louder message.",
            "Test the path yourself once a month, as if you were a new visitor.",
        ),
    ),
)

#: Sentences that weave the brief and the topic into a section (one per section, rotated).
_BRIDGES: tuple[str, ...] = (
    "For {audience}, this matters more than it first seems.",
    "This is where {term} earns its place.",
    "It is one of the quickest ways to move towards the goal: {goal}.",
    "We see this every week in our work at {company}.",
    "It applies directly to {subject}.",
    "Keep {audience} in mind at each step.",
    "Done well, it also makes {term} easier to explain.",
    "It is a small habit with a large effect on {subject}.",
    "At {company}, we build it into every project from the first week.",
    "The reward is real progress towards one aim: {goal}.",
    "Readers among {audience} tell us this is what they value most.",
    "It fits naturally with {term}.",
)

_INTROS: dict[str, tuple[str, ...]] = {
    "blog_post": (
        "This article looks at {subject}. It is written for {audience}, and it keeps to what you can put into "
        "practice this week.",
        "If you work with {audience} in mind, {subject} is worth an hour of your time. Here is what we have learned "
        "about it, in plain words.",
        "Most advice on {subject} is either too vague or too long. This piece tries to be neither, with a few ideas "
        "you can use right away.",
        "At {company}, we are asked about {subject} more than almost anything else. These are the answers we give, "
        "step by step.",
        "Where should you begin with {subject}? The short answer: with one clear aim, {goal}. The longer answer "
        "follows below.",
    ),
    "newsletter": (
        "Here is what we have for you this month: a short, practical look at {subject}.",
        "This month we turn to {subject}, with a few ideas you can try before the next issue.",
        "A quick note from all of us at {company}: this issue is about {subject}.",
        "Welcome to this month's issue. Our subject is {subject}, and we have kept it short.",
    ),
    "case_study": (
        "This case study looks at {subject}. It shows how a clear goal, a calm plan and steady habits work "
        "together for {audience}.",
        "What happens when a team takes {subject} seriously? This case study follows the work from the first "
        "question to the results.",
        "The starting point was familiar to many {audience}: plenty of ideas, little time. Here is how the work on "
        "{subject} took shape.",
    ),
    "landing_page": (
        "{company} helps {audience} with {term}. Our aim is clear: {goal}.",
        "Working with {audience} every day has taught us what helps. With {company}, you get {term} that fits your "
        "team.",
        "You want results, not more meetings. {company} brings {term} to {audience}, one clear step at a time.",
    ),
    "generic": (
        "This piece looks at {subject}, for {audience}.",
        "A few thoughts on {subject}, written with {audience} in mind.",
        "Here is a practical look at {subject} from the team at {company}.",
    ),
}
_CLOSINGS: dict[str, tuple[str, ...]] = {
    "blog_post": (
        "Pick one idea from this article and try it this week. Small steps add up, and {company} is glad to help "
        "you take the next one.",
        "You do not need to do all of this at once. Choose the steps that fit your week, and let us know how it "
        "goes: {company} is always happy to talk.",
        "That is the whole approach. Start with one change, watch what it does, and plan the next steps from there. "
        "If you would like a second opinion, {company} is one message away.",
        "Try one of these ideas before the month is out. When you are ready for the next steps, the team at "
        "{company} would be glad to hear from you.",
    ),
    "newsletter": (
        "Thank you for reading. Reply to this email if you would like to talk about any of it.",
        "That is all for this issue. If one of these ideas helps, we would love to hear about it.",
        "Questions or ideas for the next issue? Just hit reply: we read every message.",
    ),
    "case_study": (
        "The lesson is clear: a steady plan beats a big one. {company} is glad to help you take the first step.",
        "What worked here can work for other teams too. If you would like to try it, {company} is happy to talk.",
        "Good results came from small, regular steps. Ask {company} how the same approach could work for you.",
    ),
    "generic": (
        "Thank you for reading. {company} is glad to help you take the next step.",
        "We hope this helps. Talk to {company} whenever you are ready for the next step.",
    ),
}
_LAST_HEADINGS = {
    "blog_post": ("Where to start", "Your next step", "In short", "What to do this week"),
    "case_study": ("What comes next", "The lessons", "Looking ahead"),
}
_TERMS_SENTENCES = (
    "Ask our clients to describe {company}, and the same words come up again and again: {terms}.",
    "A few ideas guide everything we write about here: {terms}.",
    "In our work, a few words sum up what we aim for: {terms}.",
)
_HOOKS = (
    "{topic}: what works for {audience}.",
    "New on our side: {topic}.",
    "{topic}. Here is the short version.",
    "On our minds this week: {topic}.",
    "{topic}. A few lines for busy readers.",
    "Worth a minute of your day: {topic}.",
    "Today's note: {topic}.",
    "{topic}. What we have learned so far.",
    "A practical thought on a familiar subject: {topic}.",
    "{topic}. Three things worth knowing.",
)
_SOCIAL_ASKS = (
    "What has worked for you?",
    "How does your team handle this?",
    "Which step would you try first?",
    "",
    "Would you add anything?",
    "Tell us in the comments what you would change.",
    "Does this match what you see in your own work?",
    "",
    "Agree, or not quite?",
)
_CALLS = (
    "Want to know more? Talk to {company}.",
    "{company} is happy to help: send us a message.",
    "More ideas like this from {company} every week.",
    "Questions? The team at {company} is glad to answer them.",
    "Follow {company} for more practical ideas.",
    "Curious how this could work for you? Ask {company}.",
    "Share this with a colleague who might find it useful.",
    "We write about this often at {company}. Stay tuned.",
)
#: First words of a sentence that leans on the one before it (not a tip on its own).
_LEANS_BACK = frozenset(
    "Then It It's Its They Their Them This These That Those Each Another A Keep Guard Name Thank Over Often Most "
    "Customers Done Ask".split()
)
#: A post's sentence on a word the brief asks for.
_SOCIAL_TERMS = (
    "One word we keep coming back to: \u201c{term}\u201d.",
    "For us, \u201c{term}\u201d is a promise, not a slogan.",
    "It all comes back to \u201c{term}\u201d.",
    "Our rule of thumb: keep it \u201c{term}\u201d in every step.",
    "That is what \u201c{term}\u201d means to us in practice.",
    "A good reminder of why \u201c{term}\u201d matters.",
    "Small steps, and \u201c{term}\u201d at every one of them.",
)
_GREETINGS = ("Hello,", "Hi there,", "Dear reader,", "Hello again,")
_SIGNOFFS = ("The {company} team", "With best wishes, the team at {company}", "Until next time, the {company} team")
_BENEFITS = (
    "A clear plan built around your goal",
    "Practical steps your team can take this week",
    "Plain numbers that show what is working",
    "A partner who explains each step as we go",
    "Regular check-ins, short and to the point",
    "Work that fits the way your team already works",
    "Honest advice, including when to wait",
    "Results you can show to your own customers",
)

#: Ordinary words a phrase of the brief may start with: such a first word is written in lower
#: case inside a sentence. Any other first word is kept as written (a name, a product, an
#: acronym: "Northwind Labs makes ...", "Europe's ...", "SaaS founders").
_ORDINARY = frozenset(
    """a an the this that these those our your their my his her its we you they i it one two three four five six
    seven eight nine ten some many most more less fewer few all any every each both several other another such
    what how why when where which who whose whether if to for with without from by in on at of about into over
    under between through after before during since until and or but not no more better faster new small
    smaller large larger big bigger mid-sized medium-sized growing busy local independent online modern young
    senior junior first next last best top key main real everyday daily weekly monthly ordinary busy
    operations marketing sales finance product engineering support service services customer customers
    client clients people teams team owners founders managers leads leaders heads directors buyers users
    businesses companies firms organisations organizations agencies shops retailers brands families parents
    students developers engineers designers doctors teachers makers professionals experts decision decision-makers
    help helping make making build building get getting grow growing reach reaching win winning keep keeping
    steady visible clear practical reliable affordable higher lower stronger simpler easier quicker""".split()
)
_WORDLIKE = re.compile(r"[A-Z][a-z]+(?:-[a-z]+)*")


def _lead_lower(text: str, keep: tuple[str, ...] = ()) -> str:
    """A phrase as the middle of a sentence. Its first word goes to lower case only when it is
    an ordinary word (`_ORDINARY`) written with one capital ("More demo requests" -> "more demo
    requests") and not how a name in `keep` begins (the company, the words to use as the brief
    writes them): "Northwind Labs makes ..." and "Europe and ..." stay as written."""
    text = text.strip().rstrip(".!?").strip()
    first = re.split(r"[\s,:;]+", text, maxsplit=1)[0]
    if not _WORDLIKE.fullmatch(first) or first.lower() not in _ORDINARY:
        return text
    for name in keep:
        head = re.split(r"[\s,:;]+", name.strip(), maxsplit=1)[0]
        if head == first:  # the brief writes it capitalised: a name (a lower-case word to use is ordinary)
            return text
    return first.lower() + text[len(first) :]


def _first(brief: dict[str, str], key: str, fallback: str) -> str:
    found = drafting.phrases((brief.get(key) or "").split("\n")[0].split(". ")[0])
    return " ".join(found) if found and len(" ".join(found)) <= 120 else fallback


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _shuffled(seed: str, items: Sequence[T]) -> list[T]:
    """`items` in an order that depends only on `seed` (no random module: a hash per position)."""
    return [items[i] for i in sorted(range(len(items)), key=lambda i: _seed(f"{seed}:{i}"))]


def _slot(item: PlannedItem) -> int:
    """Where an item stands among its client's pieces of its type: its piece, then its month."""
    return item.piece + 53 * (item.due.year * 12 + item.due.month)


def _turn(slot: int, step: int, n: int) -> int:
    """The `slot`-th of `n` options, taken `step` at a time, shifted by one each time round."""
    return (step * slot + slot // n) % n


def _pick(seed: str, options: Sequence[T]) -> T:
    return options[_seed(seed) % len(options)]


def _and(parts: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else ""


def _cut(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: limit + 1].rsplit(" ", 1)[0].rstrip(" ,;:-") or text[:limit]


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
    seed: str = ""
    bridges: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)
    pool: list[str] = field(default_factory=list)
    #: How far round the phrasebook this version is drawn (0: the first draft's turn).
    turn: int = 0


#: How many places a turn moves a social post's slot (prime to the lists' lengths, mostly).
TURN_STEP = 17


class TemplateGenerator:
    """Offline, deterministic drafts from the templates (see the module)."""

    kind = "template"
    budget_tokens: int | None = None

    async def draft(self, request: DraftRequest) -> Draft:
        return self.write(request)

    def write(self, request: DraftRequest) -> Draft:
        """The same as `draft`, synchronously (pure)."""
        duplicate = request.kind == "retake" and any(f.check == "near_duplicate" for f in request.findings)
        # Too close to an earlier piece: written again, from another turn of the phrasebook.
        ctx = self._context(request, turn=request.version - 1 if duplicate else 0)
        pattern = drafting.avoid_pattern(request.avoid)
        if request.previous is None or duplicate:
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

    def _context(self, request: DraftRequest, turn: int = 0) -> _Context:
        brief, item, company = request.brief, request.item, request.client.company
        avoid = request.avoid
        pattern = drafting.avoid_pattern(avoid)
        terms = [t for t in drafting.phrases(brief.get("words_to_use")) if not drafting.contains_any(t, avoid)]
        keep = (company, *terms)
        terms = [t for t in terms if t.lower() != company.lower()]
        in_topic = [t for t in terms if t.lower() in item.topic.lower()]
        seed = f"{company}:{item.key}:{item.topic}:{item.due.isoformat()}" + (f":turn {turn}" if turn else "")
        rotated = _shuffled(f"{seed}:terms", terms)
        term = (in_topic or rotated or ["this work"])[0]
        topic_safe = item.topic if not drafting.contains_any(item.topic, avoid) else f"News from {company}"
        values = {
            "company": company,
            "topic": topic_safe.strip().rstrip(".!?"),
            "subject": _lead_lower(topic_safe, keep),
            "topic_safe": topic_safe,
            "audience": _lead_lower(_first(brief, "audience", "the people we work with"), keep),
            "goal": _lead_lower(_first(brief, "goals", "steady, visible progress"), keep),
            "business": _lead_lower(_first(brief, "business", "practical help for growing teams"), keep),
            "term": _lead_lower(term, keep),
            "terms": _and([f"\u201c{t}\u201d" for t in terms]),
        }
        values = {
            k: (v if not drafting.contains_any(v, avoid) or k in ("topic", "topic_safe") else "")
            for k, v in values.items()
        }
        values["audience"] = values["audience"] or "the people we work with"
        values["goal"] = values["goal"] or "steady, visible progress"
        values["business"] = values["business"] or "practical help for growing teams"
        values["term"] = values["term"] or "this work"
        values["subject"] = values["subject"] or "this subject"
        ctx = _Context(values, seed=seed, turn=turn)
        bridges = [b.format(**values) for b in _shuffled(f"{seed}:bridges", _BRIDGES)]
        bridges = [b for b in bridges if pattern is None or not pattern.search(b)]
        ctx.bridges = bridges
        for n, (headings, said) in enumerate(_shuffled(f"{seed}:sections", _SECTIONS)):
            kept = [s.format(**values) for s in said]
            if len(kept) >= 5:  # one sentence left out (not the opening one), a different one per item
                del kept[1 + _seed(f"{seed}:drop:{n}") % (len(kept) - 1)]  # never the first
            if bridges:
                at = 1 + _seed(f"{seed}:bridge:{n}") % len(kept)
                kept.insert(at, bridges[n % len(bridges)])
            kept = [s for s in kept if pattern is None or not pattern.search(s)]
            if kept:
                ctx.sections.append((_pick(f"{seed}:heading:{n}", headings).format(**values), " ".join(kept)))
                ctx.pool.extend(kept)
        return ctx

    def _first(self, request: DraftRequest, ctx: _Context) -> tuple[str, str]:
        item, v, seed = request.item, ctx.values, ctx.seed
        kind = item.type if item.type in TYPES else "generic"
        limits = request.limits
        social = kind == "social_post" or (item.max_chars is not None and item.max_words is None)
        template = environment().get_template(template_name("social_post" if social else item.type))
        pattern = drafting.avoid_pattern(request.avoid)

        def one(key: str, options: Sequence[str]) -> str:
            """A seeded choice among `options`, filled, avoiding the words to avoid (or "")."""
            filled = [o.format(**v) for o in _shuffled(f"{seed}:{key}", options)]
            return next((f for f in filled if pattern is None or not pattern.search(f)), "")

        intro = one("intro", _INTROS.get(kind, _INTROS["generic"]))
        if v["terms"] and (limits.min_words or 0) >= 300:
            intro = f"{intro} {one('terms', _TERMS_SENTENCES)}".strip()
        benefits = _shuffled(f"{seed}:benefits", _BENEFITS)[:4]
        fill: dict[str, Any] = {
            "company": v["company"],
            "intro": intro,
            "closing": one("closing", _CLOSINGS.get(kind, _CLOSINGS["generic"])),
            "last_heading": one("last", _LAST_HEADINGS.get(kind, ("What comes next",))),
            "first_heading": one("first", ("The challenge", "Where it started", "The starting point")),
            "why_heading": one("why", ("Why it matters", "Why this matters now", "The problem we solve")),
            "benefits_heading": one("benefits", ("What you get", "What is included", "How we help")),
            "contact_heading": one("contact", ("Get in touch", "Talk to us", "Next steps")),
            "greeting": one("greeting", _GREETINGS),
            "signoff": one("signoff", _SIGNOFFS),
            "hook": one("hook", _HOOKS),
            "ask": one("ask", _SOCIAL_ASKS),
            "call": one("call", _CALLS),
            "benefits": [b for b in benefits if pattern is None or not pattern.search(b)],
        }
        if social:
            sections = self._tips(request, ctx)
            # The pieces of one period take turns through the openings and calls.
            slot = _slot(item) + TURN_STEP * ctx.turn
            hooks = [h for h in (o.format(**v) for o in _HOOKS) if pattern is None or not pattern.search(h)]
            calls = [c for c in (o.format(**v) for o in _CALLS) if pattern is None or not pattern.search(c)]
            fill["hook"] = hooks[_turn(slot, 1, len(hooks))] if hooks else v["topic_safe"]
            fill["call"] = calls[_turn(slot, 3, len(calls))] if calls else ""
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
        return self._title(kind, v), re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    @staticmethod
    def _tips(request: DraftRequest, ctx: _Context) -> list[tuple[str, str]]:
        """A post's two tips, sentences of the phrasebook that read on their own, and a sentence
        on a word to use. The client's posts walk through the tips in turn (by piece and month),
        so that the posts of a period never share one."""
        v, company = ctx.values, request.client.company
        pattern = drafting.avoid_pattern(request.avoid)
        alone = [
            s.format(**v) for _, said in _SECTIONS for s in said if s.split()[0] not in _LEANS_BACK and "{" not in s
        ]
        alone = [s for s in _shuffled(f"{company}:tips", alone) if pattern is None or not pattern.search(s)]
        slot = _slot(request.item) + TURN_STEP * ctx.turn
        n = len(alone)
        picks = (slot, 3 * slot + slot // n + n // 2, 7 * slot + 2 * (slot // n) + n // 3)
        chosen = list(dict.fromkeys(alone[i % n] for i in picks)) if n >= 3 else []
        tips = [("", tip) for tip in chosen]
        if v["term"] != "this work":
            said = [s.format(**v) for s in _SOCIAL_TERMS]
            said = [s for s in said if pattern is None or not pattern.search(s)]
            if said:
                tips.append(("", said[_turn(slot, 2, len(said))]))
        return tips

    @staticmethod
    def _title(kind: str, v: dict[str, str]) -> str:
        title = v["topic_safe"]
        if kind == "newsletter":
            # A subject line: inboxes cut it off after about 60 characters.
            short = title.split(":")[0].strip()
            options = (f"{v['company']} newsletter: {title}", f"{v['company']}: {title}", title, short)
            fitting = [o for o in options if len(o) <= SUBJECT_MAX]
            return fitting[0] if fitting else _cut(short, SUBJECT_MAX)
        if kind == "case_study" and not title.lower().startswith("case study"):
            return f"Case study: {title}"
        return title

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
