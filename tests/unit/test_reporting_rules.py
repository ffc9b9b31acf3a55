"""Reporting's rules, table by table: attainment in each direction, what a reply counts as, the
deliverables of a period, the KPI import file, naming a client."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from aicmo_actors.reporting.periods import zone
from aicmo_actors.reporting.rules import (
    DeliverableLine,
    ItemFact,
    KnownClient,
    attained,
    deliverables,
    match_client,
    on_time,
    parse_formats,
    parse_kpi_csv,
    parse_value,
    progress,
    reply_counts,
)
from contracts.cam import ReplyCategory

BERLIN = zone("Europe/Berlin")


@pytest.mark.parametrize(
    ("value", "target", "direction", "met", "bar"),
    [
        (1200, 1000, "up", True, 1.0),
        (1000, 1000, "up", True, 1.0),
        (500, 1000, "up", False, 0.5),
        (-5, 1000, "up", False, 0.0),
        (40, 50, "down", True, 1.0),
        (50, 50, "down", True, 1.0),
        (100, 50, "down", False, 0.5),
        (0, 0, "down", True, 1.0),
        (0, 0, "up", True, 1.0),
        (1, 0, "down", False, 0.0),
    ],
)
def test_attainment_follows_the_direction(value: float, target: float, direction: str, met: bool, bar: float) -> None:
    assert attained(value, target, direction) is met
    assert progress(value, target, direction) == bar


def test_every_reply_category_is_counted_as_the_funnel_says() -> None:
    positive = {"interested", "meeting_request", "question", "referral"}
    not_replies = {"bounce_hard", "bounce_soft", "delayed", "auto_reply", "complaint"}
    for category in ReplyCategory:
        replies, good = reply_counts(category.value)
        assert good == (category.value in positive)
        assert replies == (0 if category.value in not_replies else 1), category


@pytest.mark.parametrize(
    ("text", "formats"), [("html,pdf", ("html", "pdf")), (" PDF ", ("pdf",)), ("html,html", ("html",))]
)
def test_formats(text: str, formats: tuple[str, ...]) -> None:
    assert parse_formats(text) == formats


@pytest.mark.parametrize("text", ["", "docx", "html,xls", ","])
def test_bad_formats(text: str) -> None:
    with pytest.raises(ValueError):
        parse_formats(text)


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2027, 1, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        (ItemFact("blog", "b", date(2027, 1, 15), True, False, _at(15)), True),
        (ItemFact("blog", "b", date(2027, 1, 15), True, False, _at(15, 23)), False),  # 00:00 on the 16th in Berlin
        (ItemFact("blog", "b", date(2027, 1, 15), True, True, _at(14)), False),  # reported late
        (ItemFact("blog", "b", date(2027, 1, 15), True, False, None), False),
        (ItemFact("blog", "b", None, False, False, _at(20)), True),
    ],
)
def test_on_time_in_the_clients_calendar(fact: ItemFact, expected: bool) -> None:
    assert on_time(fact, BERLIN) is expected


def test_deliverables_of_a_period() -> None:
    items = [
        ItemFact("blog_post", "blog", date(2027, 1, 15), True, False, _at(14)),
        ItemFact("blog_post", "blog", date(2027, 1, 25), True, True, _at(27)),
        ItemFact("blog_post", "blog", date(2027, 1, 28), True, False, None),
        ItemFact("blog_post", "blog", date(2027, 2, 3), True, False, _at(30)),  # February's, early
        ItemFact("social_post", "linkedin", date(2027, 1, 10), True, False, _at(9)),
        ItemFact("unplanned", "-", None, False, False, _at(20)),
        ItemFact("unplanned", "-", None, False, False, datetime(2026, 12, 31, 12, tzinfo=UTC)),
    ]
    assert deliverables(items, date(2027, 1, 1), date(2027, 1, 31), BERLIN) == [
        DeliverableLine("blog_post", "blog", 3, 2, 1),
        DeliverableLine("social_post", "linkedin", 1, 1, 1),
        DeliverableLine("unplanned", "-", 0, 1, 1),
    ]


@pytest.mark.parametrize(
    ("text", "value"), [("12", 12.0), (" 1,234.5 ", 1234.5), ("12 %", 12.0), ("-3", -3.0), ("1e3", 1000.0)]
)
def test_values(text: str, value: float) -> None:
    assert parse_value(text) == value


@pytest.mark.parametrize("text", ["", "x", "nan", "inf", "1.2.3", "12,5", "0,75", "1,23,4"])
def test_bad_values(text: str) -> None:
    # "12,5" is twelve and a half to half the world and 125 to a thousands reader: refused.
    with pytest.raises(ValueError):
        parse_value(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("12,5", 12.5), ("1.234,5", 1234.5), ("1.234", 1234.0), ("12.5", 12.5), ("-3,5", -3.5), ("1 234,5 %", 1234.5)],
)
def test_values_with_a_decimal_comma(text: str, value: float) -> None:
    assert parse_value(text, decimal_comma=True) == value


def test_a_value_with_both_signs_in_the_wrong_places_is_refused() -> None:
    with pytest.raises(ValueError, match="not a thousands separator"):
        parse_value("1.2,5", decimal_comma=True)


def test_a_spreadsheet_s_semicolon_file_reads_decimal_commas() -> None:
    parsed = parse_kpi_csv(
        '\ufeffclient;kpi;period;value\nAcme;cost_per_lead;2027-01;"1.050,5"\nAcme;ctr;2027-01;2,5\n'
    )
    assert parsed.errors == []
    assert [(r.client, r.kpi, r.value) for r in parsed.rows] == [
        ("Acme", "cost_per_lead", 1050.5),
        ("Acme", "ctr", 2.5),
    ]


def test_a_tab_separated_file_and_a_decimal_comma_in_a_comma_file() -> None:
    tabbed = parse_kpi_csv("client\tkpi\tperiod\tvalue\nAcme\tctr\t2027-01\t2.5\n")
    assert tabbed.errors == [] and [r.value for r in tabbed.rows] == [2.5]
    commas = parse_kpi_csv('client,kpi,period,value\nAcme,ctr,2027-01,"2,5"\n')
    assert commas.errors == [
        "line 2: value '2,5' is not a number (a comma here is not a thousands separator (write decimals with a point))"
    ]


def test_a_good_file() -> None:
    parsed = parse_kpi_csv(
        "\ufeffPeriod,Client,KPI,Value,note\n"
        "2027-01,Acme,organic_sessions,1200,fine\n"
        "\n"
        '2027-W03,ann@acme.example,cost_per_lead,"1,050.5",\n'
    )
    assert parsed.errors == []
    assert [(r.line, r.client, r.kpi, r.period, r.value) for r in parsed.rows] == [
        (2, "Acme", "organic_sessions", "2027-01", 1200.0),
        (4, "ann@acme.example", "cost_per_lead", "2027-W03", 1050.5),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "the file is empty"),
        ("client,kpi,value\n", "line 1: the header lacks period"),
        ("client,kpi,period,value\nAcme,x,2027-01\n", "line 2: 3 columns, the header has 4"),
        ("client,kpi,period,value\n,x,2027-01,1\n", "line 2: the client and the kpi must not be empty"),
        ("client,kpi,period,value\nAcme,x,January,1\n", "line 2: period 'January' is not one of"),
        ("client,kpi,period,value\nAcme,x,2027-01,lots\n", "line 2: value 'lots' is not a number"),
        ("client,kpi,period,value\nAcme,x,2027-01,1\nacme,x,2027-01,2\n", "line 3: the same client, kpi and period"),
    ],
)
def test_bad_files_name_the_line(text: str, error: str) -> None:
    parsed = parse_kpi_csv(text)
    assert len(parsed.errors) == 1 and parsed.errors[0].startswith(error), parsed.errors


def test_every_bad_line_is_named() -> None:
    parsed = parse_kpi_csv("client,kpi,period,value\nA,x,2027-01,1\nB,x,2027-13,1\nC,x,2027-01,?\n")
    assert [e.split(":")[0] for e in parsed.errors] == ["line 3", "line 4"]
    assert [r.line for r in parsed.rows] == [2]


CLIENTS = [
    KnownClient("11111111-2222-4333-8444-555555555555", "Acme Logistics", "ann@acme.example", ("a",)),
    KnownClient("22222222-2222-4333-8444-555555555555", "Twin", "one@twin.example", ()),
    KnownClient("33333333-2222-4333-8444-555555555555", "twin", "two@twin.example", ()),
]


@pytest.mark.parametrize(
    ("written", "found"),
    [
        ("acme logistics", "Acme Logistics"),
        ("ANN@acme.example", "Acme Logistics"),
        ("33333333-2222-4333-8444-555555555555", "twin"),
        ("two@twin.example", "twin"),
    ],
)
def test_match_client(written: str, found: str) -> None:
    client = match_client(written, CLIENTS)
    assert isinstance(client, KnownClient) and client.company == found


@pytest.mark.parametrize(("written", "why"), [("Twin", "names 2 clients"), ("Nobody", "no client 'Nobody'")])
def test_match_client_refuses(written: str, why: str) -> None:
    found = match_client(written, CLIENTS)
    assert isinstance(found, str) and why in found
