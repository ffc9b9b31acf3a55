"""The dashboard's figures: `figures_of` (the one definition of each sending figure, over
emails grouped by what it depends on) and the cache that keeps a campaign's figures 30 s."""

from __future__ import annotations

from typing import Any

import pytest

from aicmo_actors.cam.repos.metrics import Figures, figures_of
from aicmo_actors.webapp.pages_dashboard import FiguresCache


def test_figures_of_counts_each_email_once_by_what_happened_to_it() -> None:
    # (accepted, unconfirmed, bounce, complained, delayed, n)
    groups = [
        (True, False, None, False, False, 10),  # accepted
        (True, False, "hard", False, False, 2),  # accepted, then a hard bounce report
        (False, False, "hard", False, False, 3),  # refused at send time (5xx)
        (False, True, None, False, False, 1),  # connection lost after the data
        (True, False, None, True, False, 1),  # accepted, then a complaint
        (True, False, None, False, True, 4),  # delayed, no final failure yet
        (True, False, "soft", False, True, 1),  # delayed, then a soft bounce: not "delayed"
        (False, False, None, False, False, 7),  # never attempted (queued, or failed before any server)
    ]
    assert figures_of(groups) == Figures(
        attempted=22, sent=18, unconfirmed=1, refused=3, hard_bounces=5, soft_bounces=1, complaints=1, delayed=4
    )
    assert figures_of([]) == Figures()


class Reads:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> tuple[Any, ...]:
        self.calls += 1
        return (self.calls,)


@pytest.mark.anyio
async def test_the_cache_keeps_figures_for_its_ttl_then_reads_again() -> None:
    now = [100.0]
    cache = FiguresCache(ttl=30.0, clock=lambda: now[0])
    read = Reads()
    key = ("intro", "active", None, None)
    assert await cache.get(key, read, fresh=False) == (100.0, (1,))
    now[0] = 129.0
    assert await cache.get(key, read, fresh=False) == (100.0, (1,))
    now[0] = 130.0
    assert await cache.get(key, read, fresh=False) == (130.0, (2,))
    assert read.calls == 2


@pytest.mark.anyio
async def test_fresh_or_a_changed_campaign_reads_at_once_and_forgets_the_old_key() -> None:
    now = [0.0]
    cache = FiguresCache(ttl=30.0, clock=lambda: now[0])
    read = Reads()
    active = ("intro", "active", None, None)
    paused = ("intro", "paused", "paused by command", "2026-03-09")
    await cache.get(active, read, fresh=False)
    assert (await cache.get(active, read, fresh=True))[1] == (2,)
    assert (await cache.get(paused, read, fresh=False))[1] == (3,)
    assert list(cache.kept) == [paused]
    # Another campaign is kept beside it.
    await cache.get(("other", "active", None, None), read, fresh=False)
    assert set(cache.kept) == {paused, ("other", "active", None, None)}
