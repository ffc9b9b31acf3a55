"""Send windows in each lead's timezone (DST included), daily caps, gap + seeded jitter."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from aicmo_actors.cam.campaign import SendWindow, StepSpec, VariantSpec
from aicmo_actors.cam.pacing import MailboxPacer
from aicmo_actors.cam.send_rules import choose_variant, in_window, next_window_start, zone

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAYS = SendWindow()  # mon-fri 09:00-17:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time in `tz`, as the UTC instant the rules work with."""
    return datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)  # type: ignore[misc]


# -- in_window -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(BERLIN, 2026, 3, 10, 9, 0), True),  # Tuesday, the first instant
        (local(BERLIN, 2026, 3, 10, 8, 59, 59), False),
        (local(BERLIN, 2026, 3, 10, 16, 59, 59), True),
        (local(BERLIN, 2026, 3, 10, 17, 0), False),  # the end is not in the window
        (local(BERLIN, 2026, 3, 13, 12, 0), True),  # Friday
        (local(BERLIN, 2026, 3, 14, 12, 0), False),  # Saturday: closed on weekends
        (local(BERLIN, 2026, 3, 15, 12, 0), False),  # Sunday
    ],
)
def test_in_window(at: datetime, expected: bool) -> None:
    assert in_window(WEEKDAYS, BERLIN, at) is expected


def test_the_window_is_in_the_leads_own_timezone() -> None:
    at = utc(2026, 3, 10, 8, 30)  # 09:30 in Berlin, 17:30 in Tokyo, 04:30 in New York
    assert in_window(WEEKDAYS, BERLIN, at)
    assert not in_window(WEEKDAYS, TOKYO, at)
    assert not in_window(WEEKDAYS, NEW_YORK, at)
    # Friday 23:30 UTC is already Saturday in Tokyo, still Friday afternoon in New York.
    friday_night = utc(2026, 3, 13, 20, 30)
    assert not in_window(WEEKDAYS, TOKYO, friday_night)
    assert in_window(WEEKDAYS, NEW_YORK, friday_night)


def test_a_lead_without_a_usable_timezone_falls_back_to_the_campaigns() -> None:
    assert zone("Asia/Tokyo", "Europe/Berlin") == TOKYO
    assert zone(None, "Europe/Berlin") == BERLIN
    assert zone("", "Europe/Berlin") == BERLIN
    assert zone("Mars/Olympus_Mons", "Europe/Berlin") == BERLIN
    assert zone("Europe", "Europe/Berlin") == BERLIN


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="has no timezone"):
        in_window(WEEKDAYS, BERLIN, datetime(2026, 3, 10, 12, 0))
    with pytest.raises(ValueError, match="has no timezone"):
        next_window_start(WEEKDAYS, BERLIN, datetime(2026, 3, 10, 12, 0))


def test_the_window_follows_the_wall_clock_across_dst() -> None:
    # Europe/Berlin goes to summer time on Sunday 2026-03-29: 09:00 is 08:00 UTC before, 07:00 after.
    assert in_window(WEEKDAYS, BERLIN, utc(2026, 3, 27, 8, 0)) and not in_window(
        WEEKDAYS, BERLIN, utc(2026, 3, 27, 7, 59)
    )
    assert in_window(WEEKDAYS, BERLIN, utc(2026, 3, 30, 7, 0)) and not in_window(
        WEEKDAYS, BERLIN, utc(2026, 3, 30, 6, 59)
    )
    # America/New_York: summer time from 2026-03-08, winter time from 2026-11-01.
    assert in_window(WEEKDAYS, NEW_YORK, utc(2026, 3, 6, 14, 0)) and not in_window(
        WEEKDAYS, NEW_YORK, utc(2026, 3, 6, 13, 59)
    )
    assert in_window(WEEKDAYS, NEW_YORK, utc(2026, 3, 9, 13, 0)) and not in_window(
        WEEKDAYS, NEW_YORK, utc(2026, 3, 9, 12, 59)
    )
    assert in_window(WEEKDAYS, NEW_YORK, utc(2026, 11, 2, 14, 0)) and not in_window(
        WEEKDAYS, NEW_YORK, utc(2026, 11, 2, 13, 59)
    )


# -- next_window_start ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "at", "expected"),
    [
        pytest.param(
            BERLIN, local(BERLIN, 2026, 3, 10, 7, 15), local(BERLIN, 2026, 3, 10, 9, 0), id="before-start-same-day"
        ),
        pytest.param(BERLIN, local(BERLIN, 2026, 3, 10, 11, 0), local(BERLIN, 2026, 3, 10, 11, 0), id="inside-is-now"),
        pytest.param(BERLIN, local(BERLIN, 2026, 3, 10, 17, 0), local(BERLIN, 2026, 3, 11, 9, 0), id="at-the-end"),
        pytest.param(
            BERLIN, local(BERLIN, 2026, 3, 10, 23, 59), local(BERLIN, 2026, 3, 11, 9, 0), id="before-midnight"
        ),
        pytest.param(BERLIN, local(BERLIN, 2026, 3, 11, 0, 0), local(BERLIN, 2026, 3, 11, 9, 0), id="after-midnight"),
        pytest.param(BERLIN, local(BERLIN, 2026, 3, 13, 17, 30), local(BERLIN, 2026, 3, 16, 9, 0), id="friday-evening"),
        pytest.param(BERLIN, local(BERLIN, 2026, 3, 14, 10, 0), local(BERLIN, 2026, 3, 16, 9, 0), id="saturday"),
        pytest.param(BERLIN, local(BERLIN, 2026, 3, 15, 23, 0), local(BERLIN, 2026, 3, 16, 9, 0), id="sunday-night"),
        pytest.param(BERLIN, local(BERLIN, 2026, 3, 27, 18, 0), utc(2026, 3, 30, 7, 0), id="weekend-with-dst-change"),
        pytest.param(NEW_YORK, local(NEW_YORK, 2026, 3, 6, 18, 0), utc(2026, 3, 9, 13, 0), id="new-york-spring"),
        pytest.param(NEW_YORK, local(NEW_YORK, 2026, 10, 30, 18, 0), utc(2026, 11, 2, 14, 0), id="new-york-autumn"),
    ],
)
def test_next_window_start(tz: ZoneInfo, at: datetime, expected: datetime) -> None:
    got = next_window_start(WEEKDAYS, tz, at)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_next_window_start_accepts_any_aware_datetime() -> None:
    at = datetime(2026, 3, 13, 12, 0, tzinfo=NEW_YORK)  # Friday 17:00 in Berlin: closed
    assert next_window_start(WEEKDAYS, BERLIN, at) == local(BERLIN, 2026, 3, 16, 9, 0)


def test_a_start_inside_the_spring_gap_opens_when_the_clock_jumps() -> None:
    # 02:00-03:00 does not exist in Berlin on 2026-03-29: at 01:00 UTC the clock jumps to 03:00.
    window = SendWindow(days=("sun",), start=time(2, 30), end=time(4, 0))
    assert next_window_start(window, BERLIN, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)


def test_a_window_entirely_inside_the_spring_gap_opens_the_next_week() -> None:
    berlin = SendWindow(days=("sun",), start=time(2, 0), end=time(3, 0))
    assert next_window_start(berlin, BERLIN, utc(2026, 3, 28, 12, 0)) == local(BERLIN, 2026, 4, 5, 2, 0)
    new_york = SendWindow(days=("sun",), start=time(2, 15), end=time(2, 45))
    assert next_window_start(new_york, NEW_YORK, utc(2026, 3, 7, 12, 0)) == local(NEW_YORK, 2026, 3, 15, 2, 15)


def test_the_repeated_autumn_hour_opens_a_window_twice() -> None:
    # New York, 2026-11-01: 01:00-02:00 happens twice (EDT, then EST).
    window = SendWindow(days=("sun",), start=time(1, 30), end=time(3, 0))
    assert next_window_start(window, NEW_YORK, utc(2026, 10, 31, 12, 0)) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert next_window_start(window, NEW_YORK, utc(2026, 11, 1, 6, 15)) == utc(2026, 11, 1, 6, 30)  # 01:30 EST
    # The clock jumping back can land inside a window that had already closed.
    early = SendWindow(days=("sun",), start=time(0, 30), end=time(1, 30))
    assert next_window_start(early, NEW_YORK, utc(2026, 11, 1, 5, 45)) == utc(
        2026, 11, 1, 6, 0
    )  # 01:45 EDT -> 01:00 EST


WINDOWS = {
    "weekdays": WEEKDAYS,
    "weekend-night": SendWindow(days=("sat", "sun"), start=time(1, 30), end=time(3, 30)),
    "sunday-gap": SendWindow(days=("sun",), start=time(2, 0), end=time(2, 30)),
    "every-day-all-day": SendWindow(
        days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start=time(0, 0), end=time(23, 59, 59, 999999)
    ),
    "late": SendWindow(days=("sun", "mon"), start=time(0, 45), end=time(1, 15)),
}
SPANS = {
    "berlin-spring": (BERLIN, utc(2026, 3, 25)),
    "berlin-autumn": (BERLIN, utc(2026, 10, 21)),
    "new-york-spring": (NEW_YORK, utc(2026, 3, 4)),
    "new-york-autumn": (NEW_YORK, utc(2026, 10, 28)),
    # Chile changes its clocks at midnight (the date itself repeats or starts at 01:00) ...
    "santiago-autumn": (ZoneInfo("America/Santiago"), utc(2026, 4, 1)),
    "santiago-spring": (ZoneInfo("America/Santiago"), utc(2026, 9, 2)),
    # ... and Lord Howe Island by half an hour.
    "lord-howe-autumn": (ZoneInfo("Australia/Lord_Howe"), utc(2026, 4, 1)),
    "lord-howe-spring": (ZoneInfo("Australia/Lord_Howe"), utc(2026, 9, 30)),
}


@pytest.mark.parametrize("span", sorted(SPANS))
@pytest.mark.parametrize("window", sorted(WINDOWS))
def test_next_window_start_is_the_first_open_minute(window: str, span: str) -> None:
    """Against brute force: every minute of 12 days around a DST change, checked with in_window."""
    tz, begin = SPANS[span]
    rules = WINDOWS[window]
    minutes = 12 * 24 * 60
    open_at = [in_window(rules, tz, begin + timedelta(minutes=m)) for m in range(minutes)]
    next_open: list[int | None] = [None] * minutes
    following: int | None = None
    for m in range(minutes - 1, -1, -1):
        following = m if open_at[m] else following
        next_open[m] = following
    for m in range(0, minutes - 8 * 24 * 60, 13):
        expected = next_open[m]
        assert expected is not None, "every window opens within a week and a day"
        at = begin + timedelta(minutes=m)
        assert next_window_start(rules, tz, at) == begin + timedelta(minutes=expected), at.astimezone(tz)


# -- step timing and variants --------------------------------------------------------------------


def test_choose_variant_is_stable_and_weighted() -> None:
    plain = StepSpec(subject="s", body="b")
    assert choose_variant(plain, "42", seed=1) == "A"
    step = StepSpec(subject="s", body="b", weight=1, variants=(VariantSpec(name="B", weight=3),))
    picks = [choose_variant(step, str(lead), seed=7) for lead in range(4000)]
    assert picks == [choose_variant(step, str(lead), seed=7) for lead in range(4000)]  # a restart picks the same
    share_b = Counter(picks)["B"] / len(picks)
    assert 0.72 < share_b < 0.78
    assert picks != [choose_variant(step, str(lead), seed=8) for lead in range(4000)]


# -- the pacer ---------------------------------------------------------------------------------------


def pacer(seed: int = 1) -> MailboxPacer:
    return MailboxPacer(random.Random(seed))


def test_gap_without_jitter_is_exact() -> None:
    p = pacer()
    now = utc(2026, 3, 10, 9, 0)
    assert p.available_at("alex", now, BERLIN, 10) == now
    p.record_send("alex", now, BERLIN, gap_s=180, jitter_s=0)
    assert p.available_at("alex", now, BERLIN, 10) == now + timedelta(seconds=180)
    assert p.available_at("alex", now + timedelta(seconds=200), BERLIN, 10) == now + timedelta(seconds=200)
    assert p.available_at("sam", now, BERLIN, 10) == now  # per mailbox


def test_jitter_is_within_bounds_and_seeded() -> None:
    def slots(seed: int) -> list[float]:
        p = pacer(seed)
        at, out = utc(2026, 3, 10, 9, 0), []
        for _ in range(50):
            p.record_send("alex", at, BERLIN, gap_s=120, jitter_s=90)
            nxt = p.available_at("alex", at, BERLIN, 1000)
            out.append((nxt - at).total_seconds())
            at = nxt
        return out

    first = slots(3)
    assert all(120 <= gap <= 210 for gap in first)
    assert max(first) - min(first) > 30  # the jitter does spread the sends
    assert slots(3) == first
    assert slots(4) != first


def test_daily_cap_moves_to_the_next_local_day() -> None:
    p = pacer()
    at = local(BERLIN, 2026, 3, 10, 10, 0)
    for n in range(3):
        p.record_send("alex", at + timedelta(minutes=n), BERLIN, gap_s=0, jitter_s=0)
    later = local(BERLIN, 2026, 3, 10, 15, 0)
    assert p.available_at("alex", later, BERLIN, 3) == local(BERLIN, 2026, 3, 11, 0, 0)
    assert p.available_at("alex", later, BERLIN, 4) == later
    # The next day starts from zero.
    tomorrow = local(BERLIN, 2026, 3, 11, 9, 0)
    assert p.available_at("alex", tomorrow, BERLIN, 3) == tomorrow


def test_the_day_is_the_campaign_timezones_day() -> None:
    p = pacer()
    p.record_send("alex", utc(2026, 3, 10, 22, 30), NEW_YORK, gap_s=0, jitter_s=0)  # 18:30 in New York
    # 23:30 UTC is already the next day in Berlin but still the same day in New York.
    assert p.available_at("alex", utc(2026, 3, 10, 23, 30), NEW_YORK, 1) == local(NEW_YORK, 2026, 3, 11, 0, 0)


def test_a_send_paced_past_midnight_counts_for_the_next_day_without_losing_today() -> None:
    p = pacer()
    cap = 2
    first = local(BERLIN, 2026, 3, 10, 23, 50)
    p.record_send("alex", first, BERLIN, gap_s=600, jitter_s=0)  # today: 1; next slot 00:00
    slot = p.available_at("alex", local(BERLIN, 2026, 3, 10, 23, 51), BERLIN, cap)
    assert slot == local(BERLIN, 2026, 3, 11, 0, 0)
    p.record_send("alex", slot, BERLIN, gap_s=600, jitter_s=0)  # tomorrow: 1; next slot 00:10
    slot = p.available_at("alex", local(BERLIN, 2026, 3, 10, 23, 52), BERLIN, cap)
    assert slot == local(BERLIN, 2026, 3, 11, 0, 10)
    p.record_send("alex", slot, BERLIN, gap_s=600, jitter_s=0)  # tomorrow: 2 = the cap
    # Tomorrow is full: the next send waits for the day after, not for a count wiped at midnight.
    assert p.available_at("alex", local(BERLIN, 2026, 3, 10, 23, 53), BERLIN, cap) == local(BERLIN, 2026, 3, 12, 0, 0)
    assert p.available_at("alex", local(BERLIN, 2026, 3, 11, 8, 0), BERLIN, cap) == local(BERLIN, 2026, 3, 12, 0, 0)


def test_a_cap_of_zero_never_opens_and_a_negative_cap_is_no_cap() -> None:
    p = pacer()
    now = local(BERLIN, 2026, 3, 10, 10, 0)
    assert p.available_at("alex", now, BERLIN, 0) == local(BERLIN, 2026, 3, 11, 0, 0)
    for _ in range(100):
        p.record_send("alex", now, BERLIN, gap_s=0, jitter_s=0)
    assert p.available_at("alex", now, BERLIN, -1) == now


def test_seed_restores_the_count_and_the_gap() -> None:
    p = pacer()
    now = local(BERLIN, 2026, 3, 10, 12, 0)
    last = now - timedelta(seconds=60)
    p.seed("alex", MailboxPacer.day_of(now, BERLIN), sent_today=2, last_sent=last, gap_s=180)
    assert p.available_at("alex", now, BERLIN, 5) == last + timedelta(seconds=180)
    assert p.available_at("alex", now, BERLIN, 2) == local(BERLIN, 2026, 3, 11, 0, 0)
    p.seed("sam", MailboxPacer.day_of(now, BERLIN), sent_today=0, last_sent=None, gap_s=180)
    assert p.available_at("sam", now, BERLIN, 5) == now


def test_day_boundaries_across_dst() -> None:
    assert MailboxPacer.day_of(utc(2026, 3, 28, 23, 30), BERLIN) == "2026-03-29"
    assert MailboxPacer.day_of(utc(2026, 3, 28, 22, 30), BERLIN) == "2026-03-28"
    # Midnight in Berlin is 23:00 UTC in winter and 22:00 UTC in summer.
    assert MailboxPacer.next_day_start(utc(2026, 3, 28, 12, 0), BERLIN) == utc(2026, 3, 28, 23, 0)
    assert MailboxPacer.next_day_start(utc(2026, 3, 29, 12, 0), BERLIN) == utc(2026, 3, 29, 22, 0)
    assert MailboxPacer.day_start(utc(2026, 3, 29, 12, 0), BERLIN) == utc(2026, 3, 28, 23, 0)
    assert MailboxPacer.next_day_start(utc(2026, 10, 31, 12, 0), NEW_YORK) == utc(2026, 11, 1, 4, 0)
    assert MailboxPacer.next_day_start(utc(2026, 11, 1, 12, 0), NEW_YORK) == utc(2026, 11, 2, 5, 0)


def test_old_days_are_forgotten() -> None:
    p = pacer()
    start = local(BERLIN, 2026, 3, 1, 10, 0)
    for day in range(30):
        p.record_send("alex", start + timedelta(days=day), BERLIN, gap_s=0, jitter_s=0)
    assert len(p.usage["alex"].sent) <= 7
    assert p.usage["alex"].sent["2026-03-30"] == 1


# -- projecting a backlog ---------------------------------------------------------------------


def test_leads_that_must_wait_are_spread_one_gap_apart_not_piled_on_one_slot() -> None:
    pacer = MailboxPacer(random.Random(1))
    now = local(BERLIN, 2026, 3, 10, 9, 0)
    ready = now + timedelta(seconds=100)
    slots = [pacer.project("a@x.example", ready, BERLIN, daily_cap=-1, gap_s=120, jitter_s=60) for _ in range(4)]
    assert slots[0] == ready
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(slots)] == [150.0, 150.0, 150.0]
    # Another mailbox has a queue of its own.
    assert pacer.project("b@x.example", ready, BERLIN, daily_cap=-1, gap_s=120, jitter_s=60) == ready


def test_a_projected_day_that_is_planned_full_moves_the_rest_to_the_next_day() -> None:
    pacer = MailboxPacer(random.Random(1))
    now = local(BERLIN, 2026, 3, 10, 16, 0)
    slots = [pacer.project("a@x.example", now, BERLIN, daily_cap=3, gap_s=60, jitter_s=0) for _ in range(5)]
    days = [s.astimezone(BERLIN).date().isoformat() for s in slots]
    assert days == ["2026-03-10"] * 3 + ["2026-03-11"] * 2
    assert slots[3] == local(BERLIN, 2026, 3, 11, 0, 0)


def test_projections_stay_inside_the_window_they_are_given() -> None:
    pacer = MailboxPacer(random.Random(1))
    late = local(BERLIN, 2026, 3, 13, 16, 59)  # Friday, a minute before the window closes

    def opens(at: datetime) -> datetime:
        return next_window_start(WEEKDAYS, BERLIN, at)

    first = pacer.project("a@x.example", late, BERLIN, daily_cap=-1, gap_s=120, jitter_s=0, opens=opens)
    second = pacer.project("a@x.example", late, BERLIN, daily_cap=-1, gap_s=120, jitter_s=0, opens=opens)
    assert first == late
    assert second == local(BERLIN, 2026, 3, 16, 9, 0)  # Monday morning, not Friday night


def test_a_real_send_on_a_planned_day_takes_one_planned_place_back() -> None:
    pacer = MailboxPacer(random.Random(1))
    at = local(BERLIN, 2026, 3, 10, 10, 0)
    for _ in range(2):
        pacer.project("a@x.example", at, BERLIN, daily_cap=2, gap_s=0, jitter_s=0)
    # Both planned places are taken: a third projection goes to tomorrow.
    pacer.record_send("a@x.example", at, BERLIN, 0, 0)
    # One of them was sent: today has one send and one planned place, still full.
    assert pacer.project("a@x.example", at, BERLIN, daily_cap=2, gap_s=0, jitter_s=0).astimezone(BERLIN).day == 11
