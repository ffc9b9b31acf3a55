"""Bounded templates: output size, render time, loop iterations and memory, in process and in a
child; script URLs neutralised in HTML. Each test here fails if its protection is removed."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from aicmo_actors.cam import templates
from aicmo_actors.cam.campaign import CampaignSpec, load_campaign
from aicmo_actors.cam.lead_import import parse_leads_csv
from aicmo_actors.cam.templates import (
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT_BYTES,
    TemplateProblem,
    TemplateProblemError,
    check_campaign,
    context_for,
    render_step,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LEAD = {"email": "jane@client.example", "first_name": "Jane", "last_name": "Doe", "company": "Acme", "timezone": ""}
BIG = "x" * 900_000


def spec(
    body: str = "Hello {{ first_name }}", *, subject: str = "Hi {{ first_name }}", html: str | None = None
) -> CampaignSpec:
    step: dict[str, Any] = {"subject": subject, "body": body}
    if html is not None:
        step["html"] = html
    return CampaignSpec.model_validate(
        {
            "name": "t",
            "postal_address": "Example GmbH, Strasse 1, 10115 Berlin",
            "mailboxes": [{"address": "alex@outreach.example.com", "display_name": "Alex Berger"}],
            "steps": [step],
        }
    )


def render(source: str, html: bool = False, **context: Any) -> str:
    return templates._render(source, {**LEAD, **context}, html)


def refused(source: str, html: bool = False, **context: Any) -> tuple[str, int]:
    """The one-line problem and the peak of memory traced meanwhile (what the limit spared)."""
    tracemalloc.start()
    try:
        with pytest.raises(TemplateProblemError) as info:
            render(source, html, **context)
        return str(info.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- one operation cannot make gigabytes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'x' * 10**9 }}", "'*' would make a value of 1,000,000,000 characters or items (at most 1,000,000)"),
        ("{{ 10**9 * [1] }}", "'*' would make a value of 1,000,000,000 characters"),
        ("{{ 10 ** (10**9) }}", "'**' would make a number of about 3,000,000,000 bits (at most 10,000)"),
        ("{{ (10**3000) * (10**3000) }}", "'*' would make a number of about 19,932 bits"),
        ("{{ 'x'|center(10**9) }}", "the center filter would make a value of 1,000,000,000"),
        ("{{ 'a\nb'|indent(10**9) }}", "the indent filter would make a value of 2,000,000,003"),
        ("{{ 'a b c'|wordwrap(1, wrapstring='-' * 10**6) }}", "the wordwrap filter would make a value of"),
        ("{{ 'x'.center(10**9) }}", "str.center() would make a value of 1,000,000,000"),
        ("{{ 'x'.ljust(10**9) }}", "str.ljust() would make a value of 1,000,000,000"),
        ("{{ 'a\tb'.expandtabs(10**9) }}", "str.expandtabs() would make a value of 1,000,000,003"),
        ("{{ '%1000000000d' % 1 }}", "'%' would make a value of 1,000,0"),
        ("{{ '%*d' % (10**9, 1) }}", "'%': a '*' width or precision is not allowed in a template"),
        ("{{ '%1000000000s'|format('x') }}", "the format filter would make a value of 1,000,0"),
        ("{{ '{:>1000000000}'.format(1) }}", "format() would make a value of 1,000,0"),
        ("{{ '{:>{w}}'.format(1, w=10**9) }}", "format(): a replacement field inside a format spec is not allowed"),
        ("{{ ([1] * 100000)|join('-' * 100000) }}", "the join filter would make a value of"),
        ("{{ ('-' * 100000).join([1] * 100000) }}", "str.join() would make a value of"),
        ("{{ ('x' * 1000)|replace('x', 'y' * 10**6) }}", "the replace filter would make a value of 1,000,000,000"),
        ("{{ [1]|batch(10**9, 0)|list }}", "the batch filter would make a value of 1,000,000,000"),
        ("{{ [1]|slice(10**9)|list }}", "the slice filter would make a value of 1,000,000,000"),
        ("{{ {'a': 1}|tojson(10**9) }}", "the tojson filter's indent would make a value of 1,000,000,000"),
        ("{{ ((range(100000)|list) * 2)|pprint }}", "the pprint filter would make a value of"),
        ("{{ [[1] * 1000] * 1000|sum(start=[]) }}", "the sum filter adds numbers only here"),
        ("{{ lipsum(10**9) }}", "lipsum: at most 100 paragraphs"),
        ("{{ big ~ big }}", "'~' would make a value of 1,800,000 characters or items"),
    ],
)
def test_an_operation_that_would_make_a_huge_value_is_refused_small(source: str, message: str) -> None:
    problem, peak = refused(source, big=BIG)
    assert problem.startswith(message)
    assert "\n" not in problem
    assert peak < 30_000_000  # nowhere near the gigabytes asked for


@pytest.mark.parametrize(
    ("grow", "what"),
    [
        ("ns.s ~ ns.s", "'~'"),
        ("ns.s + ns.s", "'+'"),
        ("[ns.s, ns.s]|join", "the join filter"),
        ("''.join([ns.s, ns.s])", "str.join()"),
        ("ns.s|replace('x', 'xx')", "the replace filter"),
        ("ns.s.replace('x', 'xx')", "str.replace()"),
        ("'{0}{0}'.format(ns.s)", "format()"),
        ("'%s%s' % (ns.s, ns.s)", "'%'"),
        ("ns.s * 2", "'*'"),
    ],
)
def test_doubling_a_value_in_a_loop_stops_at_the_value_limit(grow: str, what: str) -> None:
    source = (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = " + grow + " %}{% endfor %}{{ ns.s }}"
    )
    problem, peak = refused(source)
    assert problem.startswith(f"{what} would make a value of 1,0")  # 2**20 (or a little more)
    assert peak < 30_000_000


@pytest.mark.parametrize("extension", ["l", "l|list", "l|reverse"])
def test_doubling_a_list_in_place_stops_at_the_value_limit(extension: str) -> None:
    problem, peak = refused("{% set l = [1] %}{% for i in range(64) %}{{ l.extend(" + extension + ") }}{% endfor %}")
    assert problem == "list.extend() would make a value of 1,048,576 characters or items (at most 1,000,000)"
    assert peak < 100_000_000


def test_what_one_render_makes_in_all_is_bounded() -> None:
    # Each copy is small enough; keeping them all is not. (A slice is a copy too.)
    problem, peak = refused(
        "{% set keep = [] %}{% for i in range(1000) %}{{ keep.append(big[:] ~ '') }}{% endfor %}", big=BIG
    )
    assert problem == "template makes more than 20,000,000 characters or items in all"
    problem, _ = refused(
        "{% set keep = [] %}{% for i in range(1000) %}{{ keep.append(items[:]) }}{% endfor %}", items=[0] * 900_000
    )
    assert problem == "template makes more than 20,000,000 characters or items in all"
    assert peak < 100_000_000


# -- loops, output and time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{% set r = range(1000) %}{% for a in r %}{% for b in r %}{% for c in r %}{% endfor %}{% endfor %}{% endfor %}",
        "{% for a in text %}{% for b in text %}{% endfor %}{% endfor %}",  # not a range: counted all the same
        "{% for a in range(10**6) %}{% endfor %}",
    ],
)
def test_nested_loops_stop_at_the_iteration_budget(source: str) -> None:
    problem, _ = refused(source, text="y" * 2000)
    assert problem == f"template loops more than {MAX_LOOP_ITERATIONS:,} times"


def test_loops_within_the_budget_render_as_before() -> None:
    source = "{% for i in range(3) %}{{ loop.index }}/{{ loop.length }}{{ loop.cycle('a', 'b') }} {% endfor %}"
    assert render(source) == "1/3a 2/3b 3/3a "
    assert (
        render("{% for x in [] %}x{% else %}none{% endfor %}|{% for x in [1, 2, 3] if x > 1 %}{{ x }}{% endfor %}")
        == "none|23"
    )
    assert render("{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}done") == "done"


def test_output_past_the_limit_is_refused_as_it_streams() -> None:
    chunk = "y" * 1000
    assert len(render("{% for i in range(999) %}{{ chunk }}{% endfor %}", chunk=chunk)) == 999_000
    problem, peak = refused("{% for i in range(99999) %}{{ chunk }}{% endfor %}", chunk=chunk)
    assert problem == f"template output is larger than {MAX_OUTPUT_BYTES // 1_000_000} MB"
    assert peak < 10_000_000
    # Counted in bytes: 300,000 four-byte characters are 1.2 MB.
    assert refused("{{ emoji }}", emoji="\U0001f600" * 300_000)[0] == "template output is larger than 1 MB"


def test_a_render_past_the_deadline_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "MAX_RENDER_SECONDS", 0.2)
    problem, _ = refused("{% for i in range(99999) %}{% if (range(20000)|sum) < 0 %}x{% endif %}{% endfor %}")
    assert problem == "template takes longer than 0.2 s to render"


def test_check_campaign_reports_a_limit_as_a_problem_of_its_template() -> None:
    s = spec("Hi {{ first_name }}{{ 'x' * 10**9 }}", subject="{% for i in range(10**6) %}{% endfor %}Hi")
    problems = check_campaign(s, [("line 2 (jane@client.example)", LEAD)])
    assert [str(p) for p in problems] == [
        "line 2 (jane@client.example): step 1 variant A subject: template loops more than 100,000 times",
        "line 2 (jane@client.example): step 1 variant A body: "
        "'*' would make a value of 1,000,000,000 characters or items (at most 1,000,000)",
    ]


def test_a_template_too_deeply_nested_to_compile_is_a_problem_not_a_crash() -> None:
    problems = check_campaign(spec("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"))
    assert [(p.part, p.message) for p in problems] == [("body", "cannot be compiled: RecursionError")]


# -- the same output as before for everything within the limits -----------------------------------

NORMAL = [
    "Hi {{ first_name }} at {{ company }}!\n",
    "{{ company ~ ' & ' ~ last_name }} {{ '%s and %d' % (company, 3) }} {{ '{} {x}'.format(company, x=2) }}",
    "{{ items|join(', ', attribute='n') }}|{{ [company, '<b>'|safe]|join('|') }}|{{ [company]|join('<br>'|safe) }}",
    "{{ company ~ '<i>'|safe }}{{ '<i>'|safe ~ company }}{{ company|e ~ company }}",
    "{{ company|center(20) }}|{{ 'a\nb'|indent(2, true) }}"
    "|{{ 'hello world'|wordwrap(5) }}|{{ 'hello world'|truncate(8, leeway=0) }}",
    "{{ company|replace('c', 'k') }}{{ '%s-%s'|format(1, company) }}{{ items|tojson }}{{ items|tojson(2) }}",
    "{{ url|urlize(10, true, '_blank') }}{{ [1, 2, 3]|batch(2, 'x')|list }}"
    "{{ [1, 2, 3]|slice(2)|list }}{{ [3, 1, 2]|sort|sum }}",
    "{{ n * 2 }} {{ n ** 2 }} {{ n + 1 }} {{ n % 2 }} {{ company * 2 }}"
    " {{ [n] * 2 }} {{ (1, 2) + (3,) }} {{ items|pprint }}",
    "{% set ns = namespace(t='') %}{% for i in range(5) %}"
    "{% set ns.t = ns.t ~ i %}{% endfor %}{{ ns.t }}{{ company[1:3] }}",
    "{{ company.upper() }}{{ company.center(10, '*') }}{{ '-'.join('abc') }}{{ city | default('your city') }}",
    "{% autoescape false %}{{ '<b>' ~ company }}{% endautoescape %}"
    "{{ '<b>' ~ company }}{% filter upper %}x{{ company }}{% endfilter %}",
    '<a href="{{ url }}">{{ company }}</a>',
]


@pytest.mark.parametrize("html", [False, True], ids=["text", "html"])
@pytest.mark.parametrize("source", NORMAL)
def test_templates_within_the_limits_render_as_the_stock_sandbox_does(source: str, html: bool) -> None:
    stock = SandboxedEnvironment(undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True)
    context = {
        **LEAD,
        "company": 'Acme <&> "Co"',
        "items": [{"n": "a"}, {"n": "b"}],
        "n": 3,
        "url": "https://x.example/?a=1&b=2",
    }
    assert templates._render(source, context, html) == stock.from_string(source).render(context)


def test_the_example_campaign_renders_as_the_stock_sandbox_does() -> None:
    s = load_campaign(EXAMPLES / "campaign.toml")
    stock = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    extra = {"unsubscribe_url": "https://mail.example.com/u/tok?x=1&y=2"}
    for row in parse_leads_csv(EXAMPLES / "leads.csv").leads:
        for index, step in enumerate(s.steps):
            for name in ["A", *(v.name for v in step.variants)]:
                subject, body, _ = step.variant(name)
                email = render_step(s, index, name, row.fields(), extra)
                context = context_for(s, index + 1, row.fields(), extra)
                assert email.subject == " ".join(stock.from_string(subject).render(context).split())
                assert email.text.startswith(stock.from_string(body).render(context).rstrip() + "\n\n--\n")


# -- script URLs in HTML -------------------------------------------------------------------------

SCRIPT_URLS = [
    "javascript:alert(1)",
    "  JavaScript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x00javascript:alert(1)",
    "\u200bjavascript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;&#x61;vascript:alert(1)",
    "javascript&colon;alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD4=",
    "data:image/svg+xml,<svg onload=alert(1)>",
]


@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_a_script_url_from_a_variable_is_neutralised_in_html(url: str) -> None:
    assert render('<a href="{{ website }}">site</a>', html=True, website=url) == '<a href="#">site</a>'
    assert render('<a href="{{ website|safe }}">site</a>', html=True, website=url) == '<a href="#">site</a>'


@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_plain_text_keeps_the_value_as_it_is(url: str) -> None:
    assert render("Site: {{ website }}", website=url) == f"Site: {url}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://acme.example/?a=1&b=2", "https://acme.example/?a=1&amp;b=2"),
        ("mailto:jane@client.example", "mailto:jane@client.example"),
        ("data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,iVBORw0KGgo="),
        ("Acme: the best", "Acme: the best"),
    ],
)
def test_other_urls_stay_in_html(url: str, shown: str) -> None:
    assert render('<a href="{{ website }}">x</a>', html=True, website=url) == f'<a href="{shown}">x</a>'


def test_render_step_neutralises_the_html_body_only() -> None:
    s = spec("Visit {{ website }}", html='<a href="{{ website }}">{{ company }}</a>')
    email = render_step(s, 0, "A", {**LEAD, "website": " javascript:alert(1)"}, {})
    assert email.html is not None and email.html.startswith('<a href="#">Acme</a>')
    assert email.text.startswith("Visit  javascript:alert(1)\n")


# -- check_campaign(isolated=True): a child process with limits of its own ------------------------


def test_isolated_check_finds_the_same_problems() -> None:
    s = CampaignSpec.model_validate(
        {
            "name": "t",
            "postal_address": "Example GmbH, Strasse 1, 10115 Berlin",
            "mailboxes": [{"address": "alex@outreach.example.com"}],
            "steps": [
                {"subject": "About {{ company }}", "body": "Hi {{ first_name }} {{ city }}"},
                {"subject": "", "body": "Hi {% if %}"},
            ],
        }
    )
    leads = [("l1", LEAD), ("l2", {**LEAD, "city": "Oslo", "company": "A\nB"}), ("l3", {"email": "k@client.example"})]
    expected = check_campaign(s, leads)
    assert len(expected) == 5
    assert check_campaign(s, leads, isolated=True) == expected
    example = load_campaign(EXAMPLES / "campaign.toml")
    example_leads = [(f"line {r.line}", r.fields()) for r in parse_leads_csv(EXAMPLES / "leads.csv").leads]
    assert check_campaign(example, example_leads, isolated=True) == []


def test_isolated_check_stops_a_render_that_outlasts_the_child_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "CHECK_RENDER_TIMEOUT_S", 0.3)
    slow = "{% for i in range(99999) %}{% if (range(20000)|sum) < 0 %}x{% endif %}{% endfor %}"
    leads = [("l1", LEAD), ("l2", {**LEAD, "first_name": "Joe"})]
    problems = check_campaign(spec(slow), leads, isolated=True)
    assert problems == [TemplateProblem(1, "A", "body", "template takes longer than 0.3 s to render (stopped)", "l1")]


def test_isolated_check_reports_a_render_past_the_child_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Within every limit in process (15 lists of a million items), not within 64 MB.
    monkeypatch.setattr(templates, "CHECK_MEMORY_HEADROOM_BYTES", 64 << 20)
    hungry = (
        "{% set ns = namespace(keep=[]) %}{% for i in range(15) %}"
        "{{ ns.keep.append((range(90000)|list) * 11) }}{% endfor %}"
    )
    problems = check_campaign(spec(hungry), [("l1", LEAD), ("l2", LEAD)], isolated=True)
    assert [str(p) for p in problems] == [
        "l1: step 1 variant A body: template needs too much memory to render",
        "l2: step 1 variant A body: template needs too much memory to render",
    ]
