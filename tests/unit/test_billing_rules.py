"""Billing's pure rules, table by table: numbers, money, periods, the plan of an account,
dunning's schedule and fees, balances, the hold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from aicmo_actors.billing import planning, rules
from aicmo_actors.billing.money import AmountError, decimals, parse_amount, rounded, shown
from aicmo_actors.billing.rules import DEFAULT_REMINDERS, ReminderRule
from aicmo_actors.billing.tax import Tax

D = Decimal
NO_TAX = Tax(D(0), "outside")


# -- numbers ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "year", "seq", "number"),
    [
        ("INV", 2027, 1, "2027-0001"),
        ("INV", 2027, 42, "2027-0042"),
        ("INV", 2028, 12345, "2028-12345"),
        ("CN", 2027, 1, "CN-2027-0001"),
    ],
)
def test_numbers(series: str, year: int, seq: int, number: str) -> None:
    assert rules.number(series, year, seq) == number


def test_a_sequence_starts_at_one() -> None:
    with pytest.raises(ValueError):
        rules.number("INV", 2027, 0)


# -- money --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("1500", "EUR", D("1500.00")),
        ("1500.5", "EUR", D("1500.50")),
        ("250000", "JPY", D("250000")),
        ("12.345", "KWD", D("12.345")),
        (" 7 ", "USD", D("7.00")),
    ],
)
def test_amounts_read_exactly(text: str, currency: str, amount: Decimal) -> None:
    got = parse_amount(text, currency)
    assert got == amount and str(got) == str(amount)


@pytest.mark.parametrize(
    ("text", "currency", "says"),
    [
        ("10.005", "EUR", "more decimals than EUR has (2): write 10.01"),
        ("100.5", "JPY", "more decimals than JPY has (0)"),
        ("1,500.00", "EUR", "no thousands separators"),
        ("-5", "EUR", "not an amount"),
        ("abc", "EUR", "not an amount"),
        ("0", "EUR", "more than 0"),
        ("1e3", "EUR", "not an amount"),
    ],
)
def test_bad_amounts_say_why(text: str, currency: str, says: str) -> None:
    with pytest.raises(AmountError, match=None) as caught:
        parse_amount(text, currency)
    assert says in str(caught.value)


def test_minor_units_and_rounding() -> None:
    assert (decimals("EUR"), decimals("JPY"), decimals("KWD")) == (2, 0, 3)
    assert rounded(D("0.125"), "EUR") == D("0.13")  # half up
    assert rounded(D("2.5"), "JPY") == D("3")
    assert shown(D("-12.5"), "EUR") == "-12.50 EUR" and shown(D("250000"), "JPY") == "250,000 JPY"


def test_totals_round_the_tax_once() -> None:
    lines = [rules.line("a", D("10.01"), "EUR"), rules.line("b", D("0.02"), "EUR", D(3))]
    sums = rules.totals(lines, Tax(D("19"), "domestic"), "EUR")
    assert (sums.net, sums.tax, sums.total) == (D("10.07"), D("1.91"), D("11.98"))
    assert rules.share_of(D("12000.00"), D("0.3"), "EUR") == D("3600.00")
    assert rules.share_of(D("1000"), D("0.333"), "JPY") == D("333")


# -- periods ------------------------------------------------------------------------------------------------------


def test_monthly_periods_keep_the_start_day() -> None:
    got = [(p.first, p.last) for p in rules.periods(date(2027, 1, 31), 1, 4)]
    assert got == [
        (date(2027, 1, 31), date(2027, 2, 27)),
        (date(2027, 2, 28), date(2027, 3, 30)),
        (date(2027, 3, 31), date(2027, 4, 29)),
        (date(2027, 4, 30), date(2027, 5, 30)),
    ]


@pytest.mark.parametrize(
    ("period", "term", "firsts"),
    [
        (1, 3, [date(2027, 1, 4), date(2027, 2, 4), date(2027, 3, 4)]),
        (3, 12, [date(2027, 1, 4), date(2027, 4, 4), date(2027, 7, 4), date(2027, 10, 4)]),
        (3, 4, [date(2027, 1, 4), date(2027, 4, 4)]),  # the last period cut at the term's end
        (12, 12, [date(2027, 1, 4)]),
    ],
)
def test_periods_within_the_term(period: int, term: int, firsts: list[date]) -> None:
    periods = rules.periods(date(2027, 1, 4), period, term)
    assert [p.first for p in periods] == firsts
    assert periods[-1].last == rules.add_months(date(2027, 1, 4), term) - timedelta(days=1)


def test_due_periods_and_the_next_one() -> None:
    start = date(2027, 1, 4)
    due = rules.due_periods(start, 1, 3, today=date(2027, 2, 4), stopped_on=None)
    assert [p.index for p in due] == [0, 1]
    assert rules.next_period_start(start, 1, 3, today=date(2027, 2, 4), stopped_on=None) == date(2027, 3, 4)
    assert rules.next_period_start(start, 1, 3, today=date(2027, 3, 4), stopped_on=None) is None
    # compensated on Feb 10: no retainer for March
    assert [p.index for p in rules.due_periods(start, 1, 3, today=date(2027, 3, 5), stopped_on=date(2027, 2, 10))] == [
        0,
        1,
    ]
    assert rules.next_period_start(start, 1, 3, today=date(2027, 2, 10), stopped_on=date(2027, 2, 10)) is None
    assert rules.due_periods(start, 1, 3, today=date(2027, 1, 3), stopped_on=None) == []


def test_local_dates_are_the_clients() -> None:
    now = datetime(2027, 1, 3, 23, 30, tzinfo=UTC)
    assert rules.local_date(now, "Europe/Paris") == date(2027, 1, 4)
    assert rules.local_date(now, "America/New_York") == date(2027, 1, 3)
    assert rules.local_date(now, "Not/AZone") == date(2027, 1, 3)
    assert rules.start_of_day(date(2027, 1, 4), "Europe/Paris").astimezone(UTC) == datetime(2027, 1, 3, 23, tzinfo=UTC)


# -- the plan of an account ---------------------------------------------------------------------------------------

PACKAGE = {
    "name": "growth",
    "title": "Growth",
    "price": "2500.00",
    "currency": "EUR",
    "billing": "monthly",
    "period_months": 1,
    "term_months": 3,
    "payment_days": 14,
    "review_rounds": 2,
    "extra_round_price": "150.00",
    "milestones": [],
}
CLIENT = {"client_ref": "c1", "company": "Acme", "contact_email": "a@acme.example", "country": "FR"}


def plan(
    package: dict[str, object],
    *,
    today: date,
    issued: set[str] = frozenset(),
    reached: set[str] = frozenset(),  # type: ignore[assignment]
    stopped_on: date | None = None,
) -> planning.Plan:
    return planning.plan_account(
        deal_id=7,
        client=CLIENT,
        package=package,
        start_on=date(2027, 1, 4),
        stopped_on=stopped_on,
        project_id="p1",
        reached=reached,
        issued=issued,
        today=today,
        tax=NO_TAX,
    )


def test_a_monthly_account_owes_each_begun_period_once() -> None:
    got = plan(PACKAGE, today=date(2027, 2, 4))
    assert [i.key for i in got.invoices] == ["deal:7:retainer:0", "deal:7:retainer:1"]
    assert got.invoices[1].service_from == date(2027, 2, 4) and got.invoices[1].service_to == date(2027, 3, 3)
    assert got.next_due_on == date(2027, 3, 4)
    again = plan(PACKAGE, today=date(2027, 2, 4), issued={"deal:7:retainer:0", "deal:7:retainer:1"})
    assert again.invoices == ()
    assert plan(PACKAGE, today=date(2027, 1, 3)).invoices == ()  # before the start


def test_one_off_and_milestones() -> None:
    one_off = plan({**PACKAGE, "billing": "one_off"}, today=date(2027, 1, 4))
    assert [(i.key, i.lines[0].amount) for i in one_off.invoices] == [("deal:7:one_off", D("2500.00"))]
    assert one_off.next_due_on is None
    milestones = {
        **PACKAGE,
        "billing": "milestones",
        "price": "1000",
        "currency": "JPY",
        "milestones": [{"name": "a", "share": "0.3", "at": "signed"}, {"name": "b", "share": "0.7", "at": None}],
    }
    got = plan(milestones, today=date(2027, 1, 4), reached={"a"})
    assert [(i.key, i.kind, i.lines[0].amount) for i in got.invoices] == [("deal:7:milestone:a", "milestone", D("300"))]


@pytest.mark.parametrize(
    ("round_number", "included", "price", "billed"),
    [
        (1, 1, D("150"), False),
        (2, 1, D("150"), True),
        (3, 2, D("150"), True),
        (5, 2, None, False),
        (5, 2, D(0), False),
        (1, 0, D("10"), True),
    ],
)
def test_extra_rounds(round_number: int, included: int, price: Decimal | None, billed: bool) -> None:
    assert rules.extra_round(round_number, included, price) is billed


def test_the_extra_rounds_invoice_has_its_key() -> None:
    new = planning.extra_round_invoice(
        deal_id=7, client=CLIENT, package=PACKAGE, project_id="p1", item_id="i1", round_number=3, tax=NO_TAX
    )
    assert new is not None and (new.key, new.kind, new.lines[0].amount) == ("round:p1:i1:3", "extra_round", D("150.00"))
    assert (
        planning.extra_round_invoice(
            deal_id=7, client=CLIENT, package=PACKAGE, project_id="p1", item_id="i1", round_number=2, tax=NO_TAX
        )
        is None
    )


# -- dunning ------------------------------------------------------------------------------------------------------

DUE = date(2027, 1, 18)


@pytest.mark.parametrize(
    ("sent", "today", "expected"),
    [
        (0, date(2027, 1, 24), None),
        (0, date(2027, 1, 25), (1, 1, D(0), 7)),
        (1, date(2027, 1, 31), None),
        (1, date(2027, 2, 1), (2, 2, D(2), 14)),
        (2, date(2027, 2, 15), (3, 3, D(3), 28)),
        (3, date(2027, 2, 28), None),
        (3, date(2027, 3, 1), (4, 4, D(0), 42)),  # then every 14 days, level 4, no fee
        (4, date(2027, 3, 15), (5, 4, D(0), 56)),
        (0, date(2027, 2, 20), (3, 3, D(3), 33)),  # after a pause: only the latest one due
    ],
)
def test_the_dunning_schedule(sent: int, today: date, expected: tuple[int, int, Decimal, int] | None) -> None:
    due = rules.reminder_due(DUE, sent, today, DEFAULT_REMINDERS, 14)
    assert (None if due is None else (due.seq, due.level, due.fee_percent, due.days_overdue)) == expected


def test_next_reminder_days() -> None:
    assert [rules.next_reminder_on(DUE, n, DEFAULT_REMINDERS, 14) for n in range(5)] == [
        date(2027, 1, 25),
        date(2027, 2, 1),
        date(2027, 2, 15),
        date(2027, 3, 1),
        date(2027, 3, 15),
    ]


@pytest.mark.parametrize(
    ("owed", "percent", "currency", "fee"),
    [
        (D("1500.00"), D(2), "EUR", D("30.00")),
        (D("99.99"), D("2.5"), "EUR", D("2.50")),
        (D("1001"), D(3), "JPY", D("30")),
        (D("-10"), D(3), "EUR", D(0)),
        (D("100"), D(0), "EUR", D(0)),
    ],
)
def test_late_fees(owed: Decimal, percent: Decimal, currency: str, fee: Decimal) -> None:
    assert rules.late_fee(owed, percent, currency) == fee


@pytest.mark.parametrize(
    ("reminders", "repeat", "says"),
    [
        ((), 14, "1 to 3"),
        ((ReminderRule(7), ReminderRule(7)), 14, "after the one before"),
        ((ReminderRule(7, D(101)),), 14, "0 to 100"),
        ((ReminderRule(7),), 0, "every 1 day"),
    ],
)
def test_a_bad_schedule_is_refused(reminders: tuple[ReminderRule, ...], repeat: int, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        rules.check_schedule(reminders, repeat)


# -- balances and the hold ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "paid", "balance", "state"),
    [
        (D(100), D(0), D(100), "open"),
        (D(100), D(40), D(60), "open"),
        (D(100), D(100), D(0), "paid"),
        (D(100), D(110), D(-10), "paid"),
    ],
)
def test_balances(total: Decimal, paid: Decimal, balance: Decimal, state: str) -> None:
    assert rules.balance(total, paid) == balance and rules.state_after_payment(total, paid) == state


def test_days_late() -> None:
    assert (
        rules.days_late(DUE, date(2027, 1, 10)),
        rules.days_late(DUE, DUE),
        rules.days_late(DUE, date(2027, 2, 18)),
    ) == (0, 0, 31)


def test_the_hold() -> None:
    owed = [
        rules.Owed("c1", "2027-0001", date(2027, 1, 18)),
        rules.Owed("c1", "2027-0004", date(2027, 2, 18)),
        rules.Owed("c2", "2027-0002", date(2027, 1, 19)),
    ]
    assert rules.on_hold(owed, date(2027, 2, 16), 30) == {}
    assert rules.on_hold(owed, date(2027, 2, 17), 30) == {"c1": ("2027-0001",)}
    assert rules.on_hold(owed, date(2027, 3, 20), 30) == {"c1": ("2027-0001", "2027-0004"), "c2": ("2027-0002",)}
    assert rules.hold_alert_key("c1", 2) == "billing:hold:c1:2"
