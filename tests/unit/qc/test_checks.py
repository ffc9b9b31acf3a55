"""The QC checks on realistic drafts (cases.py): clean drafts pass with no finding, and each
problem planted in one is found, with its check, severity and a short excerpt."""

from __future__ import annotations

import random
import re

import pytest

from aicmo_actors.qc.checks import Earlier, _starts_sentence, brand_of, check_draft, phrases, url_problem
from contracts.qc import Finding
from tests.unit.qc.cases import (
    CASES,
    DE_BLOG,
    EN_BLOG,
    EN_LINKEDIN,
    EN_NEWSLETTER,
    ES_NEWSLETTER,
    FR_LINKEDIN,
    Case,
    client,
    item,
)


def found(findings: tuple[Finding, ...], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def only(case: Case, text: str, check: str, severity: str = "error", **changes: object) -> Finding:
    """Check `text` and expect exactly one finding, of `check` and `severity`."""
    verdict = case.check(text, **changes)
    assert [(f.check, f.severity) for f in verdict.findings] == [(check, severity)], verdict.findings
    assert verdict.passed is (severity != "error")
    finding = verdict.findings[0]
    assert len(finding.excerpt) <= 130
    return finding


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_clean_drafts_pass_with_no_finding(case: Case) -> None:
    verdict = case.check()
    assert verdict.findings == () and verdict.passed


def test_a_long_post_against_many_earlier_drafts_passes_clean() -> None:
    # Its cost is measured by `python -m bench qc` (as a ratio), never asserted here.
    text = "\n\n".join([EN_BLOG.text] * 3 + [EN_NEWSLETTER.text])  # ~1,500 words
    earlier = tuple(Earlier(c.name, c.title, c.text) for c in CASES) * 3
    verdict = EN_BLOG.check(text, earlier=earlier, item=item("blog_post", "blog"))
    assert verdict.passed and verdict.findings == ()


# -- brand name --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrong", ["ACME analytics", "AcmeAnalytics", "Acme-Analytics", "acme analytics", "Acme  analytics"]
)
def test_the_brand_spelled_otherwise_is_an_error(wrong: str) -> None:
    finding = only(EN_BLOG, EN_BLOG.planted("At Acme Analytics we", f"At {wrong} we"), "brand_name")
    assert finding.message == f'"{wrong}": the client\'s name is written "Acme Analytics"'.replace("  ", " ")
    assert wrong.split()[0] in finding.excerpt


def test_the_brand_in_other_languages_and_with_its_legal_form() -> None:
    assert brand_of("Nordlicht Logistik GmbH") == "Nordlicht Logistik"
    assert brand_of("Verde Viva S.L.") == "Verde Viva"
    assert brand_of("Atelier Lumière SARL") == "Atelier Lumière"
    only(DE_BLOG, DE_BLOG.planted("Bei Nordlicht Logistik sehen", "Bei NordLicht Logistik sehen"), "brand_name")
    only(FR_LINKEDIN, FR_LINKEDIN.planted("Chez Atelier Lumière,", "Chez Atelier lumière,"), "brand_name")
    # The full name with its legal form is right too; a hashtag is written as the platform wants.
    assert EN_BLOG.check(EN_BLOG.planted("At Acme Analytics we", "At Acme Analytics Ltd we")).findings == ()
    assert EN_LINKEDIN.check(EN_LINKEDIN.text + " #AcmeAnalytics").findings == ()


def test_a_one_word_brand_in_lower_case_is_the_ordinary_word() -> None:
    acme = EN_BLOG.client.model_copy(update={"company": "Acme"})
    text = EN_BLOG.planted("At Acme Analytics we", "At Acme we reach the acme of planning; ACME")
    (finding,) = EN_BLOG.check(text, client=acme).findings
    assert finding.check == "brand_name" and finding.message.startswith('"ACME"')


# -- words the brief forbids or asks for -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "old", "new", "word"),
    [
        (EN_LINKEDIN, "Route optimisation does not", "Cheap route optimisation does not", "Cheap"),
        (EN_LINKEDIN, "It was how few lanes", "It was how cheaply and how few lanes", "cheaply"),
        (EN_BLOG, "Customers remember late", "Guaranteed: customers remember late", "Guaranteed"),
        (DE_BLOG, "Leerfahrten kosten Geld", "Billige Leerfahrten kosten Geld", "Billige"),
        (FR_LINKEDIN, "moins cher à installer", "moins cher, bon marché, à installer", "bon marché"),
        (ES_NEWSLETTER, "un taller gratuito", "un taller barato", "barato"),
    ],
    ids=["en", "en-adverb", "en-participle", "de-inflected", "fr-phrase", "es"],
)
def test_a_forbidden_word_is_an_error(case: Case, old: str, new: str, word: str) -> None:
    finding = only(case, case.planted(old, new), "forbidden_word")
    assert finding.message.startswith(f'"{word}": the brief asks never to write')
    assert word in finding.excerpt


def test_forbidden_words_are_whole_words() -> None:
    brief = {**EN_BLOG.brief, "words_to_avoid": "ill, art"}  # "will", "start", "partners" are fine
    assert EN_BLOG.check(brief=brief).findings == ()
    assert phrases('cheap, "guaranteed"\nbest-in-class; low cost') == [
        "cheap",
        "guaranteed",
        "best-in-class",
        "low cost",
    ]


def test_words_to_use_missing_are_a_warning() -> None:
    brief = {**EN_BLOG.brief, "words_to_use": EN_BLOG.brief["words_to_use"] + ", predictive maintenance"}
    finding = only(EN_BLOG, EN_BLOG.text, "required_word", "warning", brief=brief)
    assert finding.message == 'words the brief asks for that do not appear: "predictive maintenance"'
    # A short post need not hold them all; one that holds none is warned.
    assert EN_LINKEDIN.check(brief=brief).findings == ()
    none = EN_LINKEDIN.planted("Route optimisation does not", "Better planning does not")
    only(EN_LINKEDIN, none.replace("on-time delivery", "punctuality"), "required_word", "warning")


# -- placeholders ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "placeholder",
    [
        "{{ first_name }}",
        "{first_name}",
        "[Client Name]",
        "<insert date>",
        "<Client Name>",
        "TODO",
        "TBD",
        "XXX",
        "Lorem ipsum",
        "${company}",
    ],
)
def test_an_unfilled_placeholder_is_an_error(placeholder: str) -> None:
    finding = only(EN_NEWSLETTER, EN_NEWSLETTER.planted("Hello,", f"Hello {placeholder},"), "placeholder")
    assert finding.message == f'unfilled placeholder "{placeholder}"'
    assert placeholder in finding.excerpt


def test_placeholders_in_other_languages_and_what_is_not_one() -> None:
    only(DE_BLOG, DE_BLOG.planted("Viele Disponenten", "Liebe [Name des Kunden], viele Disponenten"), "placeholder")
    only(ES_NEWSLETTER, ES_NEWSLETTER.planted("Hola:", "Hola {{nombre}}:"), "placeholder")
    # A Markdown link, a footnote, a task box, a code sample and <br> are not placeholders.
    fine = EN_BLOG.text + "\n\nSee note [1] and [^2].\n\n- [ ] check\n\n`{user_id}` and <br>\n\n```\n{{ x }}\n```\n"
    assert found(EN_BLOG.check(fine).findings, "placeholder") == []


# -- links -------------------------------------------------------------------------------------------------------------

GOOD_LINK = "(https://acmeanalytics.example/events)"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("(https://acmeanalytics .example/events)", "it contains a space"),
        ("(htps://acmeanalytics.example/events)", '"htps:" is not a web address (http or https)'),
        ("(https://acmeanalytics/events)", '"acmeanalytics" has no top-level domain'),
        ("(https:/acmeanalytics.example/events)", 'the scheme needs "://"'),
        ("(https://acme_analytics.example/events)", '"acme_analytics.example" is not a host name'),
        ("(https://acmeanalytics.example/events", "the link is not closed with )"),
    ],
)
def test_a_malformed_markdown_link_is_an_error(bad: str, why: str) -> None:
    text = EN_BLOG.planted(GOOD_LINK, bad)
    finding = only(EN_BLOG, text, "link")
    assert finding.message.endswith(why)
    assert "events page" in finding.excerpt


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("http//acmeanalytics.example/demo", 'the scheme lacks its ":"'),
        ("https://acmeanalytics..example/demo", "is not a host name"),
        ("https://acmeanalytics.example/demo(2", "unbalanced brackets"),
        ("www.acmeanalytics", "has no top-level domain"),
    ],
)
def test_a_malformed_bare_url_is_an_error(bad: str, why: str) -> None:
    text = EN_LINKEDIN.planted("It starts with looking", f"See {bad} for more. It starts with looking")
    finding = only(EN_LINKEDIN, text, "link")
    assert why in finding.message


def test_good_links_are_not_findings() -> None:
    text = EN_LINKEDIN.text + (
        "\n\nMore: https://acmeanalytics.example/blog?id=3#top, (see https://münchen.example/route), "
        "[pricing](/pricing), [faq](#faq), <https://acmeanalytics.example> and "
        '[our guide](https://acmeanalytics.example/guide "The guide").'
    )
    assert found(EN_LINKEDIN.check(text).findings, "link") == []
    assert url_problem("https://xn--mnchen-3ya.example/") is None
    assert url_problem("mailto:hello@acmeanalytics.example") is None
    assert url_problem("mailto:hello@") == "not a valid e-mail address"


# -- e-mail addresses and phone numbers --------------------------------------------------------------------------------


def test_an_address_the_brief_does_not_publish_is_an_error() -> None:
    published = "hello@acmeanalytics.example"
    finding = only(EN_BLOG, EN_BLOG.planted(published, "ann.lee@acmeanalytics.example"), "email_address")
    assert (
        finding.message
        == 'e-mail address "ann.lee@acmeanalytics.example" is our contact\'s own, not one the brief publishes'
    )
    finding = only(EN_BLOG, EN_BLOG.planted(published, "j.smith@gmail.com"), "email_address")
    assert finding.message == 'e-mail address "j.smith@gmail.com" is not one the brief publishes'
    finding = only(EN_BLOG, EN_BLOG.planted(published, "hello@-acmeanalytics.example"), "email_address")
    assert finding.message.startswith("malformed e-mail address")


def test_a_phone_number_the_brief_does_not_publish_is_an_error() -> None:
    published = EN_BLOG.planted("or write to us", "or call +44 20 7946 0958, or write to us")
    assert EN_BLOG.check(published).findings == ()
    national = EN_BLOG.planted(
        "or write to us", "or call 020 7946 0958, or write to us"
    )  # the same, written nationally
    assert EN_BLOG.check(national).findings == ()
    finding = only(EN_BLOG, EN_BLOG.planted("or write to us", "or call 020 7946 0123, or write to us"), "phone_number")
    assert finding.message == 'phone number "020 7946 0123" is not one the brief publishes'
    # The client's country gives the format: a Hamburg number in the German post.
    text = DE_BLOG.planted("Mehr dazu finden", "Rufen Sie uns an: 040 987654. Mehr dazu finden")
    only(DE_BLOG, text, "phone_number")
    assert DE_BLOG.check(DE_BLOG.planted("Mehr dazu finden", "Tel. 040 123456. Mehr dazu finden")).findings == ()


def test_dates_amounts_and_percentages_are_not_phone_numbers() -> None:
    text = EN_NEWSLETTER.planted("On 14 March", "On 14 March 2027 (1,500 visits, 12.5% more, order 20240314)")
    assert found(EN_NEWSLETTER.check(text).findings, "phone_number") == []


# -- spelling ----------------------------------------------------------------------------------------------------------


def test_one_misspelling_is_a_warning_that_says_what_was_meant() -> None:
    finding = only(EN_BLOG, EN_BLOG.planted("you do not see", "you do not recieve"), "spelling", "warning")
    assert finding.message == 'possible misspelling: "recieve" (did you mean "receive"?)'
    assert "recieve" in finding.excerpt


@pytest.mark.parametrize(
    ("case", "typos"),
    [
        (EN_BLOG, [("drivers", "drviers"), ("feeling", "feelnig"), ("Measure", "Meausre")]),
        (DE_BLOG, [("Problem", "Problme"), ("Fahrzeuge", "Fahrzuege"), ("Vertrauen", "Vertrauenn")]),
        (FR_LINKEDIN, [("lampe", "lmape"), ("suspensions", "suspenssions"), ("hauteur", "hautuer")]),
        (ES_NEWSLETTER, [("plantas", "plantaz"), ("equipo", "equippo"), ("regar", "reggar")]),
    ],
    ids=["en", "de", "fr", "es"],
)
def test_three_misspellings_are_an_error(case: Case, typos: list[tuple[str, str]]) -> None:
    text = case.text
    for right, wrong in typos:
        assert right in text
        text = text.replace(right, wrong, 1)
    finding = only(case, text, "spelling")
    assert finding.message.startswith("3 misspelled words: ")


def test_names_jargon_and_the_brief_s_words_are_not_misspellings() -> None:
    text = EN_BLOG.planted(
        "Start small,",
        "Our partner FleetIQ in Kettering uses a TMS and APIs, and Kubernetes runs it. Start small,",
    )
    assert EN_BLOG.check(text).findings == ()
    # A made-up word that looks like no dictionary word: a warning naming it, not an error.
    finding = only(EN_BLOG, EN_BLOG.planted("Start small,", "Zorbulate it. Start small,"), "spelling", "warning")
    assert '"zorbulate"' in finding.message


def test_a_language_without_a_dictionary_is_said_once() -> None:
    swedish = EN_LINKEDIN.client.model_copy(update={"language": "sv"})
    finding = only(EN_LINKEDIN, EN_LINKEDIN.text, "spelling", "warning", client=swedish, reading_grade=None)
    assert finding.message == "spelling not checked for sv: no dictionary for that language"


# -- readability -------------------------------------------------------------------------------------------------------

HARD = (
    "Notwithstanding the considerable organisational complexity inherent in international transportation "
    "environments, comprehensive operational optimisation necessitates the systematic integration of "
    "heterogeneous informational resources, sophisticated algorithmic methodologies and institutional "
    "commitment, particularly where interdepartmental coordination remains fundamentally problematic."
)


def test_a_text_harder_than_the_package_allows() -> None:
    assert EN_BLOG.check(reading_grade=5).findings == ()
    finding = only(EN_BLOG, EN_BLOG.text, "readability", "warning", reading_grade=4)
    assert finding.message.startswith("reads at grade 4.9; the package asks for grade 4 or easier")
    hard = EN_BLOG.planted(
        "Empty miles cost", HARD + " " + HARD.replace("Notwithstanding", "Moreover,") + " Empty miles cost"
    )
    finding = only(EN_BLOG, hard, "readability", reading_grade=5)
    assert finding.excerpt.startswith("Notwithstanding the considerable")


def test_short_texts_and_packages_without_a_target_are_not_measured() -> None:
    tweet = "Empty miles: six lanes out of ninety caused most of them. Plan return loads with the outbound ones."
    assert EN_LINKEDIN.check(tweet, reading_grade=1, brief={}).findings == ()
    assert EN_BLOG.check(reading_grade=None).findings == ()


# -- length ------------------------------------------------------------------------------------------------------------


def test_words_outside_the_item_s_limits() -> None:
    finding = only(EN_LINKEDIN, EN_LINKEDIN.text, "length", item=item("blog_post", "blog", min_words=400))
    assert finding.message == "149 words; at least 400 expected"
    only(EN_LINKEDIN, EN_LINKEDIN.text, "length", "warning", item=item("blog_post", "blog", min_words=160))
    only(EN_BLOG, EN_BLOG.text, "length", "warning", item=item("blog_post", "blog", max_words=420))
    only(EN_BLOG, EN_BLOG.text, "length", item=item("blog_post", "blog", max_words=300))


def test_characters_against_the_item_or_the_channel() -> None:
    long_post = EN_LINKEDIN.text + "\n\n" + EN_LINKEDIN.text.replace("One kilometre", "Again: one kilometre") * 3
    finding = only(EN_LINKEDIN, long_post, "length", brief={**EN_LINKEDIN.brief, "words_to_use": ""})
    assert finding.message.endswith("; at most 3000 (linkedin's limit)")
    tweet = "Empty miles: six lanes out of ninety caused most of them. Plan return loads with the outbound ones."
    assert EN_LINKEDIN.check(tweet, item=item("social_post", "twitter"), brief={}).findings == ()
    finding = only(EN_LINKEDIN, tweet * 3, "length", item=item("social_post", "twitter"), brief={})
    assert finding.message.endswith("; at most 280 (twitter's limit)")
    finding = only(FR_LINKEDIN, FR_LINKEDIN.text * 2, "length")
    assert finding.message.endswith("; at most 1300")


def test_an_email_s_subject_line() -> None:
    only(EN_NEWSLETTER, EN_NEWSLETTER.text, "length", title="")
    long = "March: where the empty miles come from, and what three regional carriers did"
    only(EN_NEWSLETTER, EN_NEWSLETTER.text, "length", "warning", title=long)
    only(EN_NEWSLETTER, EN_NEWSLETTER.text, "length", title=long + long)
    assert only(EN_BLOG, "   ", "length").message == "the draft has no text"


# -- near-duplicates ---------------------------------------------------------------------------------------------------


def test_a_reworked_earlier_deliverable_is_a_near_duplicate() -> None:
    earlier = EN_LINKEDIN.planted("last spring", "last autumn").replace("within eight weeks", "within two months")
    others = tuple(Earlier(c.name, c.title, c.text) for c in CASES if c is not EN_LINKEDIN)
    finding = only(
        EN_LINKEDIN,
        EN_LINKEDIN.text,
        "near_duplicate",
        earlier=(*others, Earlier("social_post:linkedin:3", "", earlier)),
    )
    assert finding.message.startswith("9") and finding.message.endswith(
        "% the same as an earlier deliverable (social_post:linkedin:3)"
    )
    # Other posts for the same client, on the same subject, are not.
    assert EN_LINKEDIN.check(earlier=others).findings == ()
    assert EN_NEWSLETTER.check(earlier=(Earlier("blog", EN_BLOG.title, EN_BLOG.text),)).findings == ()


def test_check_draft_orders_errors_first() -> None:
    text = EN_NEWSLETTER.planted("Hello,", "Hello {first_name},").replace("Welcome", "Welcmoe", 1)
    verdict = check_draft(
        "March",
        text,
        item=EN_NEWSLETTER.item,
        brief=EN_NEWSLETTER.brief,
        client=client("Acme Analytics Ltd", "en", "GB", "x@y.example"),
    )
    assert not verdict.passed
    assert [f.severity for f in verdict.findings] == ["error", "warning"]
    assert verdict.errors()[0].check == "placeholder"


def test_a_capitalised_word_starts_a_sentence_as_the_line_before_it_says() -> None:
    """`_starts_sentence` looks back over whitespace only; it answers as the search of the whole
    line before the word did (seeded lines of words, sentence ends and Unicode whitespace)."""
    whole_line = re.compile(r"[.!?:…]\s*$|^\s*$")
    draw = random.Random(1206)
    pieces = ["Word", "word", ".", "!", "?", ":", "…", ",", ";", " ", "  ", "\t", "\u00a0", "\u2003", "\n", "x"]
    for _ in range(5000):
        line = "".join(draw.choice(pieces) for _ in range(draw.randrange(12)))
        for at in range(len(line) + 1):
            assert _starts_sentence(line, at) == bool(whole_line.search(line[:at])), (line, at)
