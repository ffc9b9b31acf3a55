"""Email templates: sandboxed Jinja2, strict about undefined variables, footer on every email."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aicmo_actors.cam.campaign import CampaignSpec, load_campaign
from aicmo_actors.cam.lead_import import parse_leads_csv
from aicmo_actors.cam.templates import (
    SAMPLE_LEAD,
    TemplateProblem,
    TemplateProblemError,
    check_campaign,
    context_for,
    render_step,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POSTAL = "Example & Sons GmbH, Strasse 1, 10115 Berlin"
UNSUBSCRIBE = "https://mail.example.com/u/tok?x=1&y=2"
LEAD = {"email": "jane@client.example", "first_name": "Jane", "last_name": "Doe", "company": "Acme", "timezone": ""}


def spec(*steps: dict[str, Any]) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": "t",
            "postal_address": POSTAL,
            "mailboxes": [
                {"address": "alex@outreach.example.com", "display_name": "Alex Berger"},
                {"address": "sam@outreach.example.com", "display_name": "Sam Keller"},
            ],
            "steps": list(steps) or [{"subject": "Hi {{ first_name }}", "body": "Hello {{ first_name }}"}],
        }
    )


def step(subject: str = "Hi {{ first_name }}", body: str = "Hello {{ first_name }}", **more: Any) -> dict[str, Any]:
    return {"subject": subject, "body": body, **more}


def render(body: str, lead: dict[str, Any] | None = None, *, html: str | None = None, subject: str = "s") -> Any:
    extra = {"html": html} if html is not None else {}
    return render_step(spec(step(subject, body, **extra)), 0, "A", lead or LEAD, {"unsubscribe_url": UNSUBSCRIBE})


# -- rendering -------------------------------------------------------------------------------------


def test_render_step_fills_in_the_lead_and_appends_the_footer() -> None:
    email = render_step(spec(), 0, "A", LEAD, {"unsubscribe_url": UNSUBSCRIBE})
    assert email.subject == "Hi Jane"
    assert email.text == f"Hello Jane\n\n--\n{POSTAL}\nUnsubscribe: {UNSUBSCRIBE}\n"
    assert email.html is None


def test_footer_in_text_and_html_has_postal_address_and_unsubscribe_url() -> None:
    email = render("Body", html="<p>Hello {{ first_name }}</p>")
    assert POSTAL in email.text and UNSUBSCRIBE in email.text
    assert email.text.endswith(f"Unsubscribe: {UNSUBSCRIBE}\n")
    assert email.html is not None
    assert email.html.startswith("<p>Hello Jane</p>")
    assert "Example &amp; Sons GmbH, Strasse 1, 10115 Berlin" in email.html
    assert '<a href="https://mail.example.com/u/tok?x=1&amp;y=2">Unsubscribe</a>' in email.html


def test_the_sample_unsubscribe_url_is_used_without_one() -> None:
    email = render_step(spec(), 0, "A", LEAD, {})
    assert email.text.endswith("Unsubscribe: https://example.invalid/u/TOKEN\n")


def test_html_autoescapes_lead_data_but_text_does_not() -> None:
    lead = {**LEAD, "company": '<script>alert("x")</script> & Co'}
    email = render("{{ company }}", lead, html="<b>{{ company }}</b>", subject="About {{ company }}")
    assert email.html is not None
    assert email.html.startswith("<b>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co</b>")
    assert "<script>" not in email.html
    assert email.text.startswith('<script>alert("x")</script> & Co\n')  # plain text: as is
    assert email.subject == 'About <script>alert("x")</script> & Co'


@pytest.mark.parametrize(
    ("company", "subject"),
    [
        ("Acme\nBcc: all@example.com", "Quick question about Acme Bcc: all@example.com"),
        ("Acme\r\n\r\nInc", "Quick question about Acme Inc"),
        ("  Acme\t\tInc  ", "Quick question about Acme Inc"),
        ("Acme\u2028Inc\x85Ltd", "Quick question about Acme Inc Ltd"),
    ],
)
def test_subject_collapses_to_one_line(company: str, subject: str) -> None:
    email = render("b", {**LEAD, "company": company}, subject="Quick question\nabout {{ company }}")
    assert email.subject == subject


def test_variants_and_steps_render_their_own_text() -> None:
    s = spec(
        step("First {{ first_name }}", "One", variants=[{"name": "B", "subject": "Other {{ company }}"}]),
        step("", "Two {{ step }} of {{ campaign }}"),
    )
    assert render_step(s, 0, "B", LEAD, {}).subject == "Other Acme"
    assert render_step(s, 0, "B", LEAD, {}).text.startswith("One\n")
    second = render_step(s, 1, "A", LEAD, {})
    assert second.subject == ""
    assert second.text.startswith("Two 2 of t\n")


def test_the_jinja_default_filter_covers_a_missing_variable() -> None:
    assert render("{{ city | default('your city') }}").text.startswith("your city\n")


def test_sender_name_is_the_sending_mailbox_when_named() -> None:
    s = spec(step("s", "{{ sender_name }} <{{ sender_address }}>"))
    assert render_step(s, 0, "A", LEAD, {}).text.startswith("Alex Berger <alex@outreach.example.com>\n")
    sam = render_step(s, 0, "A", LEAD, {"sender_address": "SAM@outreach.example.com"})
    assert sam.text.startswith("Sam Keller <SAM@outreach.example.com>\n")


def test_extra_wins_over_lead_fields() -> None:
    ctx = context_for(spec(), 1, {**LEAD, "unsubscribe_url": "https://evil.example/"}, {"unsubscribe_url": UNSUBSCRIBE})
    assert ctx["unsubscribe_url"] == UNSUBSCRIBE
    assert ctx["postal_address"] == POSTAL and ctx["step"] == 1 and ctx["first_name"] == "Jane"


# -- problems --------------------------------------------------------------------------------------


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(TemplateProblemError) as info:
        render("Hi {{ first_name }} in {{ city }}")
    assert str(info.value) == "missing variable 'city'"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_missing_attribute_says_what_is_undefined() -> None:
    with pytest.raises(TemplateProblemError, match=r"^undefined value: 'str object' has no attribute 'nickname'$"):
        render("{{ first_name.nickname }}")


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(TemplateProblemError, match=r"^template syntax error on line 2: "):
        render("fine\n{% if %}")


def test_a_failing_expression_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblemError, match="ZeroDivisionError"):
        render("{{ 1 / 0 }}")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{{ first_name.__class__ }}",
        "{{ '{0.__class__}'.format(first_name) }}",
        "{{ company.format_map.__self__.__class__ }}",
    ],
)
def test_the_sandbox_blocks_attribute_access(template: str) -> None:
    with pytest.raises(TemplateProblemError, match=r"^not allowed in a template: access to attribute '__\w+__'"):
        render(template)
    problems = check_campaign(spec(step("s", template)))
    assert [(p.step, p.part, p.message.startswith("not allowed in a template")) for p in problems] == [
        (1, "body", True)
    ]


def test_check_campaign_reports_each_missing_variable_with_lead_and_step() -> None:
    s = spec(step(), step("", "Hi {{ first_name }} from {{ city }}"))
    leads = [
        ("line 2 (jane@client.example)", {**LEAD, "city": "Paris"}),
        ("line 3 (joe@client.example)", {**LEAD, "email": "joe@client.example"}),
        ("line 4 (kim@client.example)", {"email": "kim@client.example", "company": "K", "city": "Oslo"}),
    ]
    problems = check_campaign(s, leads)
    assert [str(p) for p in problems] == [
        "line 3 (joe@client.example): step 2 variant A body: missing variable 'city'",
        "line 4 (kim@client.example): step 1 variant A subject: missing variable 'first_name'",
        "line 4 (kim@client.example): step 1 variant A body: missing variable 'first_name'",
        "line 4 (kim@client.example): step 2 variant A body: missing variable 'first_name'",
    ]
    assert problems[0] == TemplateProblem(2, "A", "body", "missing variable 'city'", "line 3 (joe@client.example)")


def test_check_campaign_without_leads_uses_the_sample_lead() -> None:
    assert check_campaign(spec()) == []
    problems = check_campaign(spec(step(body="{{ city }}")))
    assert [str(p) for p in problems] == ["sample lead: step 1 variant A body: missing variable 'city'"]
    assert set(SAMPLE_LEAD) >= {"email", "first_name", "last_name", "company", "timezone"}


def test_a_syntax_error_is_reported_once_whatever_the_leads_and_variants() -> None:
    broken = step(
        body="Hi {% if first_name %}", variants=[{"name": "B", "subject": "Other"}, {"name": "C", "weight": 2}]
    )
    leads = [(f"line {n}", LEAD) for n in range(2, 7)]
    problems = check_campaign(spec(broken), leads)
    assert len(problems) == 1
    only = problems[0]
    assert (only.step, only.variant, only.part, only.lead) == (1, "A", "body", None)
    assert only.message.startswith("syntax error on line 1: ")


def test_an_inherited_template_is_checked_once_per_lead() -> None:
    s = spec(step(body="{{ city }}", variants=[{"name": "B", "subject": "Other"}]))
    problems = check_campaign(s, [("l1", LEAD), ("l2", LEAD)])
    assert [str(p) for p in problems] == [
        "l1: step 1 variant A body: missing variable 'city'",
        "l2: step 1 variant A body: missing variable 'city'",
    ]


def test_a_variant_with_its_own_broken_text_is_reported_under_its_name() -> None:
    s = spec(step(variants=[{"name": "B", "subject": "{{ nope }}", "html": "<p>{{ first_name }</p>"}]))
    problems = check_campaign(s, [("l1", LEAD)])
    assert [(p.variant, p.part, p.lead) for p in problems] == [("B", "html", None), ("B", "subject", "l1")]


def test_a_subject_that_renders_with_a_line_break_is_flagged() -> None:
    s = spec(step(subject="About {{ company }}"))
    leads = [
        ("l1", LEAD),
        ("l2", {**LEAD, "company": "Acme\nBcc: all@example.com"}),
        ("l3", {**LEAD, "company": "A\u2028B"}),
    ]
    problems = check_campaign(s, leads)
    assert [str(p) for p in problems] == [
        "l2: step 1 variant A subject: renders to more than one line",
        "l3: step 1 variant A subject: renders to more than one line",
    ]
    literal = check_campaign(spec(step(subject="Two\nlines")))
    assert [str(p) for p in literal] == ["sample lead: step 1 variant A subject: renders to more than one line"]


def test_the_example_campaign_renders_for_every_example_lead() -> None:
    s = load_campaign(EXAMPLES / "campaign.toml")
    leads = parse_leads_csv(EXAMPLES / "leads.csv").leads
    assert check_campaign(s, [(f"line {row.line} ({row.email})", row.fields()) for row in leads]) == []
    first = leads[0]
    email = render_step(s, 0, "B", first.fields(), {"unsubscribe_url": UNSUBSCRIBE})
    assert email.subject == f"{first.first_name}, an idea for {first.company}"
    assert f"around {first.variables['city']}" in email.text
