"""Retention's pure rules, table by table: weights, decay, score, bands, reasons, renewals, tone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aicmo_actors.retention.rules import (
    DEFAULT_WEIGHTS,
    Scoring,
    SignalIn,
    add_months,
    band_of,
    compare,
    contract_end,
    decay,
    health,
    merge_weights,
    next_renewal,
    renewals_due,
    score_at,
    tone,
    validate_renewal_days,
    weigh,
)

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def signal(key: str, weight: float, days_ago: float = 0, kind: str = "reminder_sent") -> SignalIn:
    return SignalIn(key, kind, weight, NOW - timedelta(days=days_ago), f"reason {key}")


@pytest.mark.parametrize(
    ("kind", "days", "weak", "expected"),
    [
        ("reminder_sent", 0, False, -8.0),
        ("reminder_sent", 0, True, -4.0),
        ("kpi_attained", 0, False, 4.0),
        ("payment_late", 10, False, -5.0),
        ("payment_late", 30, False, -15.0),
        ("payment_late", 90, False, -15.0),  # capped at 30 days
        ("payment_late", 0, False, 0.0),
        ("delivered_late", 3, False, -3.0),
        ("delivered_late", 40, False, -14.0),
        ("reply_negative", 0, True, -7.5),
    ],
)
def test_weigh(kind: str, days: int, weak: bool, expected: float) -> None:
    assert weigh(kind, DEFAULT_WEIGHTS, days=days, weak=weak) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("weight", "age", "half_life", "expected"),
    [
        (-10.0, 0, 30, -10.0),
        (-10.0, 30, 30, -5.0),
        (-10.0, 60, 30, -2.5),
        (8.0, 15, 15, 4.0),
        (-10.0, -5, 30, -10.0),  # from the future: whole
    ],
)
def test_decay(weight: float, age: float, half_life: float, expected: float) -> None:
    assert decay(weight, age, half_life) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("score", "bands", "band"),
    [
        (100, (70, 40), "green"),
        (70, (70, 40), "green"),
        (69.9, (70, 40), "amber"),
        (40, (70, 40), "amber"),
        (39.9, (70, 40), "red"),
        (0, (70, 40), "red"),
        (85, (90, 50), "amber"),
    ],
)
def test_band_of(score: float, bands: tuple[float, float], band: str) -> None:
    assert band_of(score, bands) == band


@pytest.mark.parametrize(
    ("signals", "score", "band"),
    [
        ([], 100.0, "green"),
        ([signal("a", -20)], 80.0, "green"),
        ([signal("a", -20, days_ago=30)], 90.0, "green"),
        ([signal("a", -20), signal("b", -15)], 65.0, "amber"),
        ([signal("a", -40), signal("b", -30)], 30.0, "red"),
        ([signal("a", -80), signal("b", -80)], 0.0, "red"),  # clamped
        ([signal("a", 10)], 100.0, "green"),  # clamped
        ([signal("a", -40), signal("b", 10)], 70.0, "green"),
    ],
)
def test_health_score_and_band(signals: list[SignalIn], score: float, band: str) -> None:
    found = health(signals, NOW, Scoring())
    assert (found.score, found.band) == (score, band)


def test_reasons_are_the_largest_negative_contributions_with_their_points() -> None:
    found = health(
        [signal("small", -2), signal("old", -20, days_ago=60), signal("big", -10), signal("good", 6)],
        NOW,
        Scoring(reasons=2),
    )
    assert found.reasons == ("reason big (-10.0)", "reason old (-5.0)")
    assert [w.key for w in found.contributions] == ["big", "good", "old", "small"]


def test_reasons_name_the_good_news_when_nothing_pulls_down() -> None:
    assert health([signal("good", 4)], NOW, Scoring()).reasons == ("reason good (+4.0)",)


def test_a_signal_decayed_to_nothing_is_not_a_reason() -> None:
    assert health([signal("ancient", -10, days_ago=400)], NOW, Scoring()).contributions == ()


def test_score_at_is_health_to_the_last_bit() -> None:
    """The sweep's quick score is `health`'s score and band, exactly, on many seeded sets of
    signals (ties in size included: the sum is taken in the same order)."""
    import random

    rng = random.Random(20)
    scoring = Scoring()
    for _ in range(500):
        weights = [-8.0, -4.0, 4.0, -2.5, 2.5, -0.06, 0.04, -30.0, 12.3]
        signals = [
            signal(f"k{n:03d}", rng.choice(weights) * rng.choice([1, 1, 3]), rng.uniform(-2, 200))
            for n in rng.sample(range(500), rng.randrange(0, 60))
        ]
        full, quick = health(signals, NOW, scoring), score_at(signals, NOW, scoring)
        assert (quick.score, quick.band) == (full.score, full.band)
        assert quick.reasons == () and quick.contributions == ()


@pytest.mark.parametrize(
    ("previous_band", "previous_score", "signals", "write", "changed", "alert"),
    [
        (None, None, [], True, False, False),  # first score, green: written, not announced
        (None, None, [signal("a", -70)], True, True, True),  # first score red: announced and alerted
        ("green", 100.0, [], False, False, False),
        ("green", 100.0, [signal("a", -0.5)], False, False, False),  # moved less than a point
        ("green", 100.0, [signal("a", -5)], True, False, False),
        ("green", 100.0, [signal("a", -35)], True, True, False),  # amber
        ("amber", 65.0, [signal("a", -65)], True, True, True),  # entering red alerts
        ("red", 30.0, [signal("a", -75)], True, False, False),  # still red: no second alert
        ("red", 30.0, [signal("a", -40)], True, True, False),  # out of red
    ],
)
def test_compare(
    previous_band: str | None,
    previous_score: float | None,
    signals: list[SignalIn],
    write: bool,
    changed: bool,
    alert: bool,
) -> None:
    change = compare(previous_band, previous_score, health(signals, NOW, Scoring()))
    assert (change.write, change.changed, change.alert) == (write, changed, alert)


def test_scoring_checks_its_parameters() -> None:
    for bad in ({"half_life_days": 0}, {"bands": (40, 70)}, {"bands": (101, 40)}, {"reasons": 0}, {"base": 120}):
        with pytest.raises(ValueError):
            Scoring(**bad)  # type: ignore[arg-type]


def test_merge_weights() -> None:
    merged = merge_weights({"reminder_sent": -12})
    assert merged["reminder_sent"] == -12 and merged["kpi_missed"] == DEFAULT_WEIGHTS["kpi_missed"]
    assert merge_weights(None) == dict(DEFAULT_WEIGHTS)
    with pytest.raises(ValueError, match="unknown retention signal 'typo'"):
        merge_weights({"typo": 1})
    with pytest.raises(ValueError, match="finite"):
        merge_weights({"reminder_sent": float("nan")})


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2027, 1, 4), 3, date(2027, 4, 4)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2027, 11, 15), 12, date(2028, 11, 15)),
        (date(2027, 12, 1), 1, date(2028, 1, 1)),
    ],
)
def test_contract_end(start: date, months: int, end: date) -> None:
    assert contract_end(start, months) == end == add_months(start, months)


END = date(2027, 6, 30)
DAYS = (60, 30, 7)


@pytest.mark.parametrize(
    ("today", "done", "send", "skip"),
    [
        (date(2027, 4, 30), (), None, ()),  # 61 days before
        (date(2027, 5, 1), (), 60, ()),  # 60 days before
        (date(2027, 5, 1), (60,), None, ()),  # recorded already
        (date(2027, 5, 20), (60,), None, ()),
        (date(2027, 5, 31), (60,), 30, ()),
        (date(2027, 6, 23), (60, 30), 7, ()),
        (date(2027, 6, 29), (60, 30, 7), None, ()),
        (date(2027, 6, 30), (), None, ()),  # the end: too late for any
        (date(2027, 6, 10), (), 30, (60,)),  # signed late (or down): the nearest only
        (date(2027, 6, 25), (), 7, (60, 30)),
    ],
)
def test_renewals_due(today: date, done: tuple[int, ...], send: int | None, skip: tuple[int, ...]) -> None:
    plan = renewals_due(END, today, DAYS, done)
    assert (plan.send, plan.skip) == (send, skip)


@pytest.mark.parametrize(
    ("today", "done", "expected"),
    [
        (date(2027, 4, 1), (), date(2027, 5, 1)),
        (date(2027, 5, 1), (60,), date(2027, 5, 31)),
        (date(2027, 6, 23), (60, 30, 7), None),
        (date(2027, 7, 1), (), None),
    ],
)
def test_next_renewal(today: date, done: tuple[int, ...], expected: date | None) -> None:
    assert next_renewal(END, today, DAYS, done) == expected


def test_validate_renewal_days() -> None:
    assert validate_renewal_days([7, 60, 30, 30]) == (60, 30, 7)
    for bad in ([], [0], [-1, 30]):
        with pytest.raises(ValueError):
            validate_renewal_days(bad)


@pytest.mark.parametrize(
    ("category", "kind"),
    [
        ("not_interested", "reply_negative"),
        ("complaint", "reply_negative"),
        ("unsubscribe", "reply_negative"),
        ("interested", "reply_positive"),
        ("meeting_request", "reply_positive"),
        ("referral", "reply_positive"),
        ("question", None),
        ("other", None),
        ("auto_reply", None),
        ("bounce_hard", None),
    ],
)
def test_tone(category: str, kind: str | None) -> None:
    assert tone(category) == kind
