"""The plan, table by table: items from the calendar, topics from the brief (never an avoided
word, never twice, always the same), KPIs from the package, revisions, storage as JSON."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from aicmo_actors.strategy import texts
from aicmo_actors.strategy.plan import (
    ChangeRound,
    Plan,
    aim,
    build_plan,
    contains_avoided,
    counts_by_type,
    max_versions,
    period_items,
    phrases,
    plan_from_json,
    plan_to_json,
    revise_plan,
    words_to_avoid_in,
)
from contracts.clients import ClientInfo
from contracts.packages import Deliverable, Kpi, PackageSpec

CLIENT = ClientInfo(
    client_ref=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    company="Acme Logistics",
    contact_name="Ann Lee",
    contact_email="ann@acme.example",
    timezone="Europe/Berlin",
    country="DE",
)
PACKAGE = PackageSpec(
    name="growth",
    title="Growth",
    price=Decimal("2400"),
    currency="EUR",
    billing="monthly",
    deliverables=(
        Deliverable(type="blog_post", count=4, channel="blog", min_words=800, max_words=1200),
        Deliverable(type="social_post", count=8, channel="linkedin", max_chars=1300),
        Deliverable(type="newsletter", count=1, channel="email"),
    ),
    review_rounds=2,
    turnaround_days=5,
    reporting="weekly",
    kpis=(
        Kpi(name="organic_sessions", target=1200, unit="sessions"),
        Kpi(name="bounce_rate", target=45.5, unit="%", direction="down"),
    ),
)
BRIEF = {
    "business": "We build route planning software for mid-size logistics firms.",
    "audience": "Operations managers at mid-size logistics firms in Germany.",
    "goals": "More demo requests; enter the Austrian market",
    "brand_voice": "Clear, calm, expert.",
    "competitors": "routeco.example",
    "words_to_use": "route optimisation, fleet utilisation, on-time delivery",
    "words_to_avoid": "cheap, disrupt",
}
START = date(2026, 12, 1)


def plan_for(brief: dict[str, str] | None = None, package: PackageSpec = PACKAGE, seed: str | None = "p1") -> Plan:
    return build_plan(CLIENT, package, BRIEF if brief is None else brief, START, seed=seed)


def test_items_follow_the_calendar_and_carry_the_packages_limits() -> None:
    plan = plan_for()
    assert plan.version == 1
    assert (plan.period_start, plan.period_end) == (date(2026, 12, 1), date(2026, 12, 31))
    assert plan.deliverables == 13
    assert [i.due for i in plan.items] == sorted(i.due for i in plan.items)
    assert date(2026, 12, 25) not in {i.due for i in plan.items}  # Christmas in Germany
    blog = [i for i in plan.items if i.type == "blog_post"]
    assert [i.piece for i in blog] == [1, 2, 3, 4]
    assert {(i.channel, i.min_words, i.max_words, i.max_chars) for i in blog} == {("blog", 800, 1200, None)}
    social = [i for i in plan.items if i.type == "social_post"]
    assert {(i.channel, i.max_chars) for i in social} == {("linkedin", 1300)}
    assert plan.holidays == ((date(2026, 12, 25), "Christmas Day"),)


def test_topics_are_drawn_from_the_brief_and_never_repeat() -> None:
    plan = plan_for()
    topics = [i.topic for i in plan.items]
    assert all(topics)
    assert len({t.lower() for t in topics}) == len(topics)
    joined = " ".join(topics).lower()
    for phrase in ("route optimisation", "fleet utilisation", "on-time delivery", "operations managers"):
        assert phrase in joined
    assert "demo requests" in joined or "austrian market" in joined
    assert all(t[0].isupper() for t in topics)
    newsletter = next(i for i in plan.items if i.type == "newsletter")
    assert newsletter.topic.startswith("December")  # newsletters are dated by their month


def test_topics_are_deterministic_and_vary_with_the_seed() -> None:
    assert plan_for() == plan_for()
    assert [i.topic for i in plan_for(seed="p1").items] != [i.topic for i in plan_for(seed="p2").items]
    # The default seed is the client's id.
    assert build_plan(CLIENT, PACKAGE, BRIEF, START) == build_plan(CLIENT, PACKAGE, BRIEF, START)


@pytest.mark.parametrize(
    "avoid",
    [
        "fleet utilisation",  # a phrase of the words to use
        "route, delivery",  # words inside phrases
        "managers",  # a word of the audience
        "guide, questions, mistakes, checklist, tip",  # words of the templates themselves
        "Demo",  # any case
        "question",  # ... and its plural
    ],
)
def test_no_topic_contains_a_word_to_avoid(avoid: str) -> None:
    plan = plan_for({**BRIEF, "words_to_avoid": avoid})
    words = [w.strip().lower() for w in avoid.split(",")]
    for item in plan.items:
        assert not contains_avoided(item.topic, words), item.topic
    assert len({i.topic.lower() for i in plan.items}) == len(plan.items)


@pytest.mark.parametrize(
    ("text", "avoid", "found"),
    [
        ("Cheap flights", ["cheap"], True),
        ("Cheaper flights", ["cheap"], True),
        ("Cheapest flights", ["cheap"], True),
        ("Disrupting logistics", ["disrupt"], True),
        ("A start for artists", ["art"], False),  # whole words only
        ("Fleet  utilisation today", ["fleet utilisation"], True),  # any spacing inside a phrase
        ("route-planning", ["route"], True),  # a hyphen ends a word
        ("", ["x"], False),
        ("anything", [], False),
    ],
)
def test_contains_avoided(text: str, avoid: list[str], found: bool) -> None:
    assert contains_avoided(text, avoid) is found


def test_a_sparse_brief_still_gives_a_topic_for_every_item() -> None:
    plan = plan_for({"business": "Tea.", "audience": "", "goals": ""})
    assert len(plan.items) == 13
    assert all(i.topic for i in plan.items)
    assert any(texts.FALLBACK_AUDIENCE in i.topic or CLIENT.company in i.topic for i in plan.items)


def test_when_no_topic_fits_a_placeholder_says_so() -> None:
    package = PACKAGE.model_copy(update={"deliverables": (Deliverable(type="social_post", count=40, channel="x"),)})
    plan = plan_for({"audience": "cafe owners", "goals": "growth", "words_to_use": "tea"}, package=package)
    topics = [i.topic for i in plan.items]
    assert len(set(topics)) == len(topics)
    assert any(t.endswith(": topic to agree with you") for t in topics)


@pytest.mark.parametrize(
    ("text", "lists", "expected"),
    [
        ("More demo requests; enter the Austrian market.", True, ("More demo requests", "enter the Austrian market")),
        ("- route optimisation\n- fleet utilisation\n", True, ("route optimisation", "fleet utilisation")),
        ("Operations managers, CTOs.", False, ("Operations managers, CTOs",)),
        ("Operations managers, CTOs.", True, ("Operations managers", "CTOs")),
        ("tea, Tea, tea", True, ("tea",)),  # once, whatever the case
        ("", True, ()),
        (None, True, ()),
    ],
)
def test_phrases(text: str | None, lists: bool, expected: tuple[str, ...]) -> None:
    assert phrases(text, lists=lists) == expected


def test_long_phrases_are_cut_at_a_clause_break() -> None:
    (audience,) = phrases("Operations managers at mid-size logistics firms in Germany and Austria", limit=40)
    assert audience == "Operations managers"  # cut before " at ", the last break that fits in 40
    (goal,) = phrases("x " * 50)
    assert len(goal) <= 60


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        ("more demo requests", "achieve more demo requests"),
        ("enter the Austrian market", "enter the Austrian market"),
        ("growth", "achieve growth"),
        ("double our newsletter list", "double our newsletter list"),
    ],
)
def test_aim(goal: str, expected: str) -> None:
    assert aim(goal) == expected


def test_kpis_come_from_the_package_with_their_targets() -> None:
    plan = plan_for()
    assert [(k.name, k.label, k.target, k.unit, k.direction) for k in plan.kpis] == [
        ("organic_sessions", "Organic sessions", 1200, "sessions", "up"),
        ("bounce_rate", "Bounce rate", 45.5, "%", "down"),
    ]
    assert all("every week" in k.baseline_note for k in plan.kpis)
    assert texts.kpi_target(1200, "sessions", "up") == "at least 1,200 sessions"
    assert texts.kpi_target(45.5, "%", "down") == "at most 45.5 %"


def test_summary_and_notes() -> None:
    plan = plan_for()
    assert plan.company == "Acme Logistics" and plan.package_title == "Growth"
    assert "Acme Logistics" in plan.summary
    assert "4 blog posts, 8 social posts, 1 newsletter" in plan.summary
    assert "more demo requests" in plan.summary
    assert any("business days in DE" in n for n in plan.notes)


def test_a_crowded_period_says_so_in_the_notes() -> None:
    package = PACKAGE.model_copy(update={"turnaround_days": 20})
    plan = plan_for(package=package)
    assert any("up to" in n and "on one day" in n for n in plan.notes)


@pytest.mark.parametrize(
    ("comments", "avoided"),
    [
        ('Please avoid "synergy" and "disrupt".', ("synergy", "disrupt")),
        ("Don't use the word cheap.", ("cheap",)),
        ("Never mention discounts or free trials; the dates are fine.", ("discounts", "free trials")),
        ("No more webinars, please", ("webinars",)),
        ("avoid: jargon, buzzwords", ("jargon", "buzzwords")),
        ("Drop the webinar. Remove 'AI-powered' everywhere.", ("webinar", "ai-powered")),
        ("Do not use \u2018cutting-edge\u2019 or \u201cbest-in-class\u201d.", ("cutting-edge", "best-in-class")),
        ("Looks great! Move the newsletter to Friday.", ()),  # not understood: a person reads it
        ("Please avoid talking about the weather in Berlin during winter", ()),  # a sentence, not a word
        ("I want to avoid it", ()),
    ],
)
def test_words_to_avoid_in_comments(comments: str, avoided: tuple[str, ...]) -> None:
    assert words_to_avoid_in(comments) == avoided


def test_a_revision_keeps_the_calendar_and_replaces_only_the_topics_with_avoided_words() -> None:
    first = plan_for()
    comments = 'Please avoid "fleet utilisation" and never mention on-time delivery. Also, publish on Fridays.'
    second = revise_plan(first, comments)
    assert second.version == 2
    assert [(i.type, i.channel, i.piece, i.due) for i in second.items] == [
        (i.type, i.channel, i.piece, i.due) for i in first.items
    ]
    assert second.kpis == first.kpis and second.summary == first.summary
    changed = [(a.topic, b.topic) for a, b in zip(first.items, second.items, strict=True) if a.topic != b.topic]
    for old, new in changed:
        assert contains_avoided(old, ["fleet utilisation", "on-time delivery"])
        assert not contains_avoided(new, ["fleet utilisation", "on-time delivery", "cheap", "disrupt"])
    kept = [a.topic for a, b in zip(first.items, second.items, strict=True) if a.topic == b.topic]
    assert not any(contains_avoided(t, ["fleet utilisation", "on-time delivery"]) for t in kept)
    assert changed
    assert len({i.topic.lower() for i in second.items}) == len(second.items)
    assert second.changes == (
        ChangeRound(
            version=1,
            comments=comments,
            avoided=("fleet utilisation", "on-time delivery"),
            topics_changed=len(changed),
        ),
    )
    assert first.version == 1 and first.changes == ()  # the previous version is a value: unchanged


def test_a_second_revision_keeps_every_round() -> None:
    second = revise_plan(plan_for(), "Please avoid 'fleet utilisation'.")
    third = revise_plan(second, "The dates are wrong.")
    assert third.version == 3
    assert [c.version for c in third.changes] == [1, 2]
    assert third.changes[1] == ChangeRound(version=2, comments="The dates are wrong.", avoided=(), topics_changed=0)
    assert [i.topic for i in third.items] == [i.topic for i in second.items]
    assert "fleet utilisation" in third.sources.avoid  # still avoided


@pytest.mark.parametrize(("rounds", "versions"), [(0, 1), (1, 2), (2, 3), (5, 6)])
def test_max_versions(rounds: int, versions: int) -> None:
    assert max_versions(rounds) == versions


def test_a_plan_is_stored_as_json_and_read_back_the_same() -> None:
    import json

    revised = revise_plan(plan_for(), "Please avoid 'fleet utilisation'.")
    for plan in (plan_for(), revised):
        data = json.loads(json.dumps(plan_to_json(plan)))
        assert plan_from_json(data) == plan


def test_a_hostile_brief_is_kept_as_text() -> None:
    brief = {**BRIEF, "words_to_use": "<script>alert(1)</script>", "audience": '"><img src=x onerror=alert(1)>'}
    plan = plan_for(brief)
    assert any("<script>" in i.topic for i in plan.items)  # escaping is the renderers' job


@pytest.mark.parametrize(
    ("count", "label", "expected"),
    [
        (1, "Blog post", "1 blog post"),
        (4, "Blog post", "4 blog posts"),
        (2, "Case study", "2 case studies"),
        (3, "SEO audit", "3 SEO audits"),
        (2, "business day", "2 business days"),
    ],
)
def test_plural(count: int, label: str, expected: str) -> None:
    assert texts.plural(count, label) == expected


# -- later periods -----------------------------------------------------------------------------------------------


def test_a_later_period_has_the_first_periods_deliverables_in_its_own_month_on_business_days() -> None:
    approved = build_plan(CLIENT, PACKAGE, BRIEF, date(2027, 1, 4))
    second = period_items(approved, PACKAGE, CLIENT.country, 2)
    assert counts_by_type(second) == counts_by_type(approved.items)
    assert all(date(2027, 2, 4) <= item.due <= date(2027, 3, 3) for item in second)
    assert all(item.due.weekday() < 5 for item in second)
    assert next((i.min_words, i.max_words, i.max_chars) for i in second if i.type == "blog_post") == (800, 1200, None)


def test_no_topic_repeats_across_periods_and_none_has_a_word_the_client_asked_to_avoid() -> None:
    approved = revise_plan(build_plan(CLIENT, PACKAGE, BRIEF, date(2027, 1, 4)), 'Please avoid "Austrian".')
    topics = [item.topic.lower() for item in approved.items]
    for period in range(2, 7):
        later = period_items(approved, PACKAGE, CLIENT.country, period)
        topics += [item.topic.lower() for item in later]
        assert not any(contains_avoided(item.topic, approved.sources.avoid) for item in later), period
    assert len(topics) == len(set(topics)) == 6 * len(approved.items)


def test_a_period_is_the_same_every_time_it_is_asked_and_another_period_differs() -> None:
    approved = build_plan(CLIENT, PACKAGE, BRIEF, date(2027, 1, 4))
    third = period_items(approved, PACKAGE, CLIENT.country, 3)
    assert period_items(approved, PACKAGE, CLIENT.country, 3) == third
    assert {i.topic for i in third}.isdisjoint({i.topic for i in period_items(approved, PACKAGE, CLIENT.country, 2)})


def test_topics_run_out_into_placeholders_named_after_their_month() -> None:
    thin = {"business": "Pumps", "audience": "", "goals": "", "words_to_use": ""}
    approved = build_plan(CLIENT, PACKAGE, thin, date(2027, 1, 4))
    topics = [item.topic for p in range(2, 13) for item in period_items(approved, PACKAGE, CLIENT.country, p)]
    assert len(topics) == len(set(topics)), "a placeholder is never repeated either"
    assert any(t.endswith("topic to agree with you") and "2027" in t for t in topics)


def test_the_first_period_is_the_approved_plan_itself() -> None:
    approved = build_plan(CLIENT, PACKAGE, BRIEF, date(2027, 1, 4))
    with pytest.raises(ValueError, match="approved plan itself"):
        period_items(approved, PACKAGE, CLIENT.country, 1)
