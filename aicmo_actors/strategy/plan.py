"""The plan: what the first period delivers, when, about what, and which KPIs it moves. Pure.

`build_plan(client, package, brief, start)` makes version 1: the calendar of `calendar.py`,
one topic per piece, the package's KPIs with their targets, a summary and notes.
`revise_plan(previous, comments)` makes the next version after the client asked for changes
(see its docstring for what it does and does not do). `period_items(approved, ...)` makes a
later period's calendar from the approved plan (see its docstring). A plan is a frozen value; it is
stored as JSON (`to_json` / `plan_from_json`) beside its HTML and PDF, never changed.

Topics are proposals a person may rewrite, drawn from the brief without randomness:
templates (by kind of piece: long form, short social posts, newsletters) filled with the
brief's phrases (`words_to_use` as terms, `goals`, `audience`, the company's name), taken in
a rotation that starts at an offset derived from the client's id, so two clients with
similar briefs do not get the same list, and the same inputs always give the same plan.
No topic repeats within a plan, and none contains a word or phrase of `words_to_avoid` (nor
its plural or -ed/-ing/-er forms, matched case-insensitively as whole words): a phrase of
the brief that contains one is not used at all, and a filled template that still contains
one (the template's own words) is skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from aicmo_actors.gateways.calendar import add_months
from aicmo_actors.strategy import texts
from aicmo_actors.strategy.calendar import Schedule, schedule
from contracts.clients import ClientInfo
from contracts.packages import Deliverable, PackageSpec

#: Longest phrase of the brief used in a topic (cut at a word), and most phrases kept per field.
MAX_PHRASE_CHARS = 60
MAX_PHRASES = 8
#: An audience is shorter: it sits in the middle of a topic.
MAX_AUDIENCE_CHARS = 40
#: Candidates tried for one topic before the fallback placeholder.
MAX_ATTEMPTS = 400

_LONG = (
    "{term}: a practical guide for {audience}",
    "What {audience} should know about {term}",
    "How to {aim}: where {term} fits",
    "Five questions {audience} ask about {term}",
    "Common mistakes with {term}, and how to avoid them",
    "Checklist: {term} for {audience}",
    "How {company} approaches {term}",
    "Lessons for {audience}: how to {aim}",
)
_SHORT = (
    "Tip for {audience}: {term}",
    "One question about {term}",
    "What it takes to {aim}",
    "Myth or fact: {term}",
    "Behind the scenes at {company}: {term}",
    "{term} in one minute",
    "Quick win for {audience}: {term}",
    "A number that matters: {term}",
    "Ask {company}: {term}",
    "A step towards the goal: how to {aim}",
)
_NEWSLETTER = (
    "{month} at {company}: {term}",
    "{month} news for {audience}: {term}",
    "{month} round-up: how we help you {aim}",
    "{month} briefing: {term} for {audience}",
)
#: A goal that starts with one of these is an aim already ("enter the Austrian market");
#: any other is a thing to achieve ("more demo requests": "achieve more demo requests").
_AIM_VERBS = frozenset(
    """achieve attract become boost build create cut develop double enter establish expand find generate get grow
    help improve increase launch lower make move open raise reach reduce sell shorten start strengthen triple turn
    win""".split()
)
_SOCIAL_CHANNELS = frozenset({"linkedin", "twitter", "x", "instagram", "facebook", "tiktok", "threads", "mastodon"})
_SPLIT_LINES = re.compile(r"[\n;•]+|(?<=[.!?])\s+")
_SPLIT_LIST = re.compile(r"[\n;,•]+|(?<=[.!?])\s+")
_TRAILING = " \t.,;:!?-*\u2013\u2014"
_STOP_AT_END = frozenset({"and", "or", "of", "for", "the", "a", "an", "in", "at", "to", "with", "on", "by"})
#: Endings an avoided word also counts with ("cheap" also avoids "cheaper", "cheapest").
_INFLECTIONS = "(?:s|es|ed|ing|er|est)?"


@dataclass(frozen=True)
class PlanItem:
    """One piece of work: piece `piece` of its `type`, due on `due`, about `topic`."""

    type: str
    channel: str
    piece: int
    due: date
    topic: str
    min_words: int | None = None
    max_words: int | None = None
    max_chars: int | None = None


@dataclass(frozen=True)
class PlanKpi:
    name: str
    label: str
    target: float
    unit: str
    direction: str
    baseline_note: str


@dataclass(frozen=True)
class ChangeRound:
    """The client's comments on `version`, and what the revision did with them mechanically."""

    version: int
    comments: str
    #: Words and phrases read from the comments as ones to avoid.
    avoided: tuple[str, ...] = ()
    #: How many topics were replaced because they contained one of them.
    topics_changed: int = 0


@dataclass(frozen=True)
class TopicSources:
    """The brief's phrases topics are drawn from (kept in the plan: a revision draws again)."""

    company: str
    audience: tuple[str, ...]
    goals: tuple[str, ...]
    terms: tuple[str, ...]
    avoid: tuple[str, ...]
    offset: int = 0


@dataclass(frozen=True)
class Plan:
    version: int
    company: str
    package_title: str
    period_start: date
    #: The period's last day (included).
    period_end: date
    items: tuple[PlanItem, ...]
    kpis: tuple[PlanKpi, ...]
    summary: str
    notes: tuple[str, ...]
    sources: TopicSources
    #: Public holidays on weekdays in the period, skipped by the calendar.
    holidays: tuple[tuple[date, str], ...] = ()
    reporting: str = "monthly"
    #: Every round of changes the client asked for before this version, oldest first.
    changes: tuple[ChangeRound, ...] = field(default=())

    @property
    def deliverables(self) -> int:
        return len(self.items)


# -- reading the brief -------------------------------------------------------------------------------------------


_BREAKS = re.compile(r",| - | (?:who|that|which|with|from|in|at|for|and|or|across|where) ", re.IGNORECASE)


def _cut(phrase: str, limit: int = MAX_PHRASE_CHARS) -> str:
    """`phrase` tidied and, when longer than `limit`, cut before its last clause break that fits
    (" at ", " who ", a comma...), or else at a word."""
    phrase = " ".join(phrase.split()).strip(_TRAILING)
    if len(phrase) > limit:
        breaks = [m.start() for m in _BREAKS.finditer(phrase) if 0 < m.start() <= limit]
        phrase = phrase[: breaks[-1]] if breaks else phrase[:limit].rsplit(" ", 1)[0]
    words = phrase.split()
    while words and words[-1].lower() in _STOP_AT_END:
        words.pop()
    return " ".join(words).strip(_TRAILING)


def _lower_first(phrase: str) -> str:
    """ "More demo requests" -> "more demo requests", to read well inside a sentence. A first word
    in capitals ("CRM"), with an inner capital ("LinkedIn") or that looks like a nationality
    ("German", "British", "Japanese") keeps its case. Cosmetic: a person may edit any topic."""
    first = phrase.split(" ", 1)[0]
    if not (first[:1].isupper() and first[1:].islower()) or re.search(r"(?:an|ish|ese)$", first):
        return phrase
    return phrase[:1].lower() + phrase[1:]


def phrases(text: str | None, *, lists: bool = False, limit: int = MAX_PHRASE_CHARS) -> tuple[str, ...]:
    """The phrases of one answer of the brief: lines, sentences, semicolons (and commas with
    `lists`), tidied (bullets, trailing punctuation) and cut to `MAX_PHRASE_CHARS`."""
    if not text:
        return ()
    found: list[str] = []
    seen: set[str] = set()
    for part in (_SPLIT_LIST if lists else _SPLIT_LINES).split(text):
        phrase = _cut(part.strip(" \t-*•"), limit)
        if phrase and phrase.lower() not in seen:
            seen.add(phrase.lower())
            found.append(phrase)
    return tuple(found[:MAX_PHRASES])


def _avoid_pattern(avoid: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({a.strip().lower() for a in avoid if a.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(re.escape(w) for w in word.split()) for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives}){_INFLECTIONS}(?!\w)", re.IGNORECASE)


def contains_avoided(text: str, avoid: Iterable[str]) -> bool:
    """Whether `text` contains one of `avoid` (whole words, any case, plural and -ed/-ing/-er forms)."""
    pattern = _avoid_pattern(avoid)
    return pattern is not None and pattern.search(text) is not None


def topic_sources(company: str, brief: Mapping[str, str], offset: int = 0) -> TopicSources:
    """The brief's phrases topics may use: none that contains a word to avoid."""
    avoid = tuple(a.lower() for a in phrases(brief.get("words_to_avoid"), lists=True))
    return _sources(
        company=company,
        audience=tuple(_lower_first(p) for p in phrases(brief.get("audience"), limit=MAX_AUDIENCE_CHARS)),
        goals=tuple(_lower_first(p) for p in phrases(brief.get("goals"), lists=True)),
        terms=phrases(brief.get("words_to_use"), lists=True),
        avoid=avoid,
        offset=offset,
    )


def _sources(
    *,
    company: str,
    audience: tuple[str, ...],
    goals: tuple[str, ...],
    terms: tuple[str, ...],
    avoid: tuple[str, ...],
    offset: int,
) -> TopicSources:
    pattern = _avoid_pattern(avoid)

    def keep(items: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p for p in items if pattern is None or not pattern.search(p))

    return TopicSources(
        company=company,
        audience=keep(audience),
        goals=keep(goals),
        terms=keep(terms),
        avoid=avoid,
        offset=offset,
    )


# -- topics ------------------------------------------------------------------------------------------------------


def _family(item: PlanItem) -> tuple[str, ...]:
    kind = item.type.lower()
    if "newsletter" in kind or item.channel.lower() == "email":
        return _NEWSLETTER
    if "social" in kind or item.channel.lower() in _SOCIAL_CHANNELS or (item.max_chars and not item.max_words):
        return _SHORT
    return _LONG


def aim(goal: str) -> str:
    """A goal as what follows "how to": "enter the Austrian market", "achieve more demo requests"."""
    first = goal.split(" ", 1)[0].lower()
    return goal if first in _AIM_VERBS else f"achieve {goal}"


def _candidates(item: PlanItem, sources: TopicSources, start: int) -> Iterable[str]:
    templates = _family(item)
    goals = sources.goals or (texts.FALLBACK_GOAL,)
    audience = sources.audience or (texts.FALLBACK_AUDIENCE,)
    # No words to use: the goals stand in as subjects, then the company itself.
    terms = sources.terms or sources.goals or (sources.company,)
    total = len(templates) * len(terms) * len(goals) * len(audience)
    for count in range(min(total, MAX_ATTEMPTS)):
        # Every combination once, in mixed radix (template, term, goal, audience), each
        # filler shifted by the template so that neighbouring items differ in both.
        n = (start + count) % total
        t, rest = n % len(templates), n // len(templates)
        term, rest = (rest + t) % len(terms), rest // len(terms)
        goal, rest = (rest + t) % len(goals), rest // len(goals)
        topic = templates[t].format(
            term=terms[term],
            aim=aim(goals[goal]),
            audience=audience[(rest + t) % len(audience)],
            company=sources.company,
            month=texts.month(item.due),
        )
        yield topic[:1].upper() + topic[1:]


def choose_topic(
    item: PlanItem, index: int, sources: TopicSources, used: set[str], *, period: date | None = None
) -> str:
    """The first candidate for the `index`-th item that is new and contains no avoided word
    (`period`: a later period's first day, for the fallback's name)."""
    pattern = _avoid_pattern(sources.avoid)
    for topic in _candidates(item, sources, sources.offset + index):
        if topic.lower() in used or (pattern is not None and pattern.search(topic)):
            continue
        return topic
    return texts.fallback_topic(texts.type_label(item.type), item.piece, period)


def _offset(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big") % 997


# -- the plan ------------------------------------------------------------------------------------------------------


def build_plan(
    client: ClientInfo, package: PackageSpec, brief: Mapping[str, str], start: date, *, seed: str | None = None
) -> Plan:
    """Version 1 of the plan for the period that begins on `start` (see the module).

    `seed` varies the topics' rotation (default: the client's id); the same inputs always
    give the same plan. Raises `gateways.calendar.UnknownCountry` for a country without
    known public holidays.
    """
    calendar = schedule(
        package.deliverables,
        start=start,
        period_months=package.period_months,
        turnaround_days=package.turnaround_days,
        country=client.country,
    )
    sources = topic_sources(client.company, brief, _offset(seed if seed is not None else str(client.client_ref)))
    items = _calendar_items(calendar, package, sources, set(), 0)
    kpis = tuple(
        PlanKpi(
            name=k.name,
            label=texts.kpi_label(k.name),
            target=k.target,
            unit=k.unit,
            direction=k.direction,
            baseline_note=texts.baseline_note(package.reporting),
        )
        for k in package.kpis
    )
    counts = [(texts.type_label(d.type), d.count) for d in package.deliverables]
    goal = sources.goals[0] if sources.goals else None
    notes = [texts.note_business_days(client.country), texts.note_topics()]
    notes += [
        texts.note_crowded(
            texts.type_label(package.deliverables[c.kind].type),
            c.pieces,
            c.days,
            c.per_day,
            c.after_period,
            calendar.earliest,
        )
        for c in calendar.crowded
    ]
    return Plan(
        version=1,
        company=client.company,
        package_title=package.title,
        period_start=calendar.start,
        period_end=calendar.end,
        items=tuple(items),
        kpis=kpis,
        summary=texts.plan_summary(client.company, counts, calendar.start, calendar.end, goal, package.reporting),
        notes=tuple(notes),
        sources=sources,
        holidays=calendar.holidays,
        reporting=package.reporting,
    )


# -- later periods -----------------------------------------------------------------------------------------------


def period_items(approved: Plan, package: PackageSpec, country: str, period: int) -> tuple[PlanItem, ...]:
    """The calendar of period `period` (2 or later) of a contract whose approved plan is
    `approved`. Pure: the same inputs always give the same items.

    The period begins `period - 1` periods after the approved plan's first day; its calendar
    is made as the first one was (`calendar.schedule`: the package's deliverables, the
    client's business days, nothing due before the turnaround). Its topics come from the
    approved plan's sources, so the brief's words to use and every word the client asked to
    avoid (in the brief or in a round of changes) count as they did; the rotation goes on
    where the earlier periods left it, and no topic of the approved plan or of an earlier
    period is used again (a piece with no new topic left gets a placeholder named after its
    month, to agree with the client). The earlier periods are made again to know theirs.
    """
    if period < 2:
        raise ValueError(f"period {period}: the first period's calendar is the approved plan itself")
    used = {item.topic.lower() for item in approved.items}
    items, index = approved.items, len(approved.items)
    for number in range(2, period + 1):
        start = add_months(approved.period_start, (number - 1) * package.period_months)
        calendar = schedule(
            package.deliverables,
            start=start,
            period_months=package.period_months,
            turnaround_days=package.turnaround_days,
            country=country,
        )
        # The rotation goes on where the periods before left it (`used` grows with each).
        items = _calendar_items(calendar, package, approved.sources, used, index, period=start)
        index += len(items)
    return items


def _calendar_items(
    calendar: Schedule,
    package: PackageSpec,
    sources: TopicSources,
    used: set[str],
    first: int,
    *,
    period: date | None = None,
) -> tuple[PlanItem, ...]:
    """A calendar's pieces, each with its package limits and a topic new to `used` (which grows),
    drawn from the rotation's `first + n`-th place on (`period`: a later period's first day)."""
    items: list[PlanItem] = []
    for index, slot in enumerate(calendar.slots, start=first):
        deliverable: Deliverable = package.deliverables[slot.kind]
        item = PlanItem(
            type=deliverable.type,
            channel=deliverable.channel,
            piece=slot.piece,
            due=slot.due,
            topic="",
            min_words=deliverable.min_words,
            max_words=deliverable.max_words,
            max_chars=deliverable.max_chars,
        )
        topic = choose_topic(item, index, sources, used, period=period)
        used.add(topic.lower())
        items.append(replace(item, topic=topic))
    return tuple(items)


# -- revisions ---------------------------------------------------------------------------------------------------

_QUOTED = re.compile(
    r"[\"\u201c\u201d\u201e\u00ab\u00bb]([^\"\u201c\u201d\u201e\u00ab\u00bb\n]{1,60})[\"\u201c\u201d\u201e\u00ab\u00bb]"
    r"|(?<!\w)['\u2018]([^'\u2018\u2019\n]{1,60})['\u2019](?!\w)"
)
_AVOID_VERB = re.compile(
    r"\b(?:avoid(?:ing)?|(?:do\s+not|don't|dont|never)\s+(?:use|say|mention|write|talk\s+about)"
    r"|no\s+more|stop\s+(?:using|saying)|remove|drop|leave\s+out|without)\b",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[.;!?\n]")
_LEADING = re.compile(
    r"^\s*(?::|the\s+words?|the\s+terms?|the\s+phrases?|words?\s+(?:like|such\s+as)|terms?\s+like|"
    r"any\s+mention\s+of|mentions?\s+of|using|talking\s+about|the|any|all)\s*",
    re.IGNORECASE,
)
_NOT_A_WORD = frozenset(
    {"it", "them", "this", "that", "those", "these", "one", "ones", "anything", "everything", "please", "thanks"}
)
#: Longest unquoted phrase (in words) read as a thing to avoid: longer ones are sentences.
MAX_AVOID_WORDS = 3


def words_to_avoid_in(comments: str) -> tuple[str, ...]:
    """What the client's comments say to avoid, read mechanically: after "avoid", "don't use",
    "never mention", "no more", "remove", "drop", "leave out" or "without", the quoted words of
    the clause, or else its pieces (split on commas, "and", "or") of at most three words."""
    found: list[str] = []
    for verb in _AVOID_VERB.finditer(comments):
        rest = comments[verb.end() :]
        end = _CLAUSE_END.search(rest)
        clause = rest[: end.start()] if end else rest
        quoted = [a or b for a, b in _QUOTED.findall(clause)]
        if quoted:
            pieces = quoted
        else:
            pieces = []
            for piece in re.split(r",|\band\b|\bor\b|/", clause, flags=re.IGNORECASE):
                previous = None
                while previous != piece:
                    previous, piece = piece, _LEADING.sub("", piece)
                pieces.append(piece)
        for piece in pieces:
            word = " ".join(piece.split()).strip(_TRAILING + "'\"").lower()
            if word and word not in _NOT_A_WORD and len(word.split()) <= MAX_AVOID_WORDS and word not in found:
                found.append(word)
    return tuple(found)


def max_versions(review_rounds: int) -> int:
    """How many versions a package allows: the first plus one per review round."""
    return max(review_rounds, 0) + 1


def revise_plan(previous: Plan, comments: str) -> Plan:
    """The next version after the client asked for changes. Pure.

    What it does: keeps the calendar (every due date, type, channel and length limit) and the
    KPIs as they were; records the comments, verbatim, as a round of "Changes requested" (all
    earlier rounds are kept); reads the words the comments say to avoid (`words_to_avoid_in`)
    and replaces every topic containing one of them, or one of the brief's words to avoid, with
    a new topic drawn from the brief as in version 1 (new, avoiding all of them).

    What it does not do: understand anything else the client wrote. Moving dates, changing
    counts or targets, rewriting a topic in other words: those need a person, who reads the
    comments (in the plan, on the project's page and in the event) and makes a new version.
    """
    avoided = words_to_avoid_in(comments)
    old = previous.sources
    sources = _sources(
        company=old.company,
        audience=old.audience,
        goals=old.goals,
        terms=old.terms,
        avoid=tuple(dict.fromkeys((*old.avoid, *avoided))),
        offset=old.offset,
    )
    pattern = _avoid_pattern(sources.avoid)
    used = {item.topic.lower() for item in previous.items}
    items: list[PlanItem] = []
    changed = 0
    for index, item in enumerate(previous.items):
        if pattern is not None and pattern.search(item.topic):
            # Start further along the rotation than version 1 did, so the new topic is another one.
            topic = choose_topic(item, index + len(previous.items), sources, used)
            used.add(topic.lower())
            item = replace(item, topic=topic)
            changed += 1
        items.append(item)
    round_ = ChangeRound(version=previous.version, comments=comments, avoided=avoided, topics_changed=changed)
    return replace(
        previous,
        version=previous.version + 1,
        items=tuple(items),
        sources=sources,
        changes=(*previous.changes, round_),
    )


# -- storage -------------------------------------------------------------------------------------------------------


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-able data (dates as ISO strings)."""
    return {
        "version": plan.version,
        "company": plan.company,
        "package_title": plan.package_title,
        "period_start": plan.period_start.isoformat(),
        "period_end": plan.period_end.isoformat(),
        "items": [
            {
                "type": i.type,
                "channel": i.channel,
                "piece": i.piece,
                "due": i.due.isoformat(),
                "topic": i.topic,
                "min_words": i.min_words,
                "max_words": i.max_words,
                "max_chars": i.max_chars,
            }
            for i in plan.items
        ],
        "kpis": [
            {
                "name": k.name,
                "label": k.label,
                "target": k.target,
                "unit": k.unit,
                "direction": k.direction,
                "baseline_note": k.baseline_note,
            }
            for k in plan.kpis
        ],
        "summary": plan.summary,
        "notes": list(plan.notes),
        "sources": {
            "company": plan.sources.company,
            "audience": list(plan.sources.audience),
            "goals": list(plan.sources.goals),
            "terms": list(plan.sources.terms),
            "avoid": list(plan.sources.avoid),
            "offset": plan.sources.offset,
        },
        "holidays": [[d.isoformat(), name] for d, name in plan.holidays],
        "reporting": plan.reporting,
        "changes": [
            {
                "version": c.version,
                "comments": c.comments,
                "avoided": list(c.avoided),
                "topics_changed": c.topics_changed,
            }
            for c in plan.changes
        ],
    }


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    s = data["sources"]
    return Plan(
        version=int(data["version"]),
        company=data["company"],
        package_title=data["package_title"],
        period_start=date.fromisoformat(data["period_start"]),
        period_end=date.fromisoformat(data["period_end"]),
        items=tuple(PlanItem(**{**i, "due": date.fromisoformat(i["due"])}) for i in data["items"]),
        kpis=tuple(PlanKpi(**k) for k in data["kpis"]),
        summary=data["summary"],
        notes=tuple(data["notes"]),
        sources=TopicSources(
            company=s["company"],
            audience=tuple(s["audience"]),
            goals=tuple(s["goals"]),
            terms=tuple(s["terms"]),
            avoid=tuple(s["avoid"]),
            offset=int(s["offset"]),
        ),
        holidays=tuple((date.fromisoformat(d), name) for d, name in data["holidays"]),
        reporting=data["reporting"],
        changes=tuple(
            ChangeRound(
                version=int(c["version"]),
                comments=c["comments"],
                avoided=tuple(c["avoided"]),
                topics_changed=int(c["topics_changed"]),
            )
            for c in data["changes"]
        ),
    )


def counts_by_type(items: Sequence[PlanItem]) -> list[tuple[str, str, int]]:
    """(type, channel, how many) in the order they first appear."""
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        counts[(item.type, item.channel)] = counts.get((item.type, item.channel), 0) + 1
    return [(t, c, n) for (t, c), n in counts.items()]
