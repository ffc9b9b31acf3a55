"""The whole process killed at seeded kill points (a store call about to start or just
committed, a publish, a tell, a gateway call), `on_start` included: every invariant holds,
and the same seed dies at the same places."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aicmo_actors.cli.demo import EXAMPLES, load_demo_inputs
from aicmo_actors.simulation.invariants import sending_mailbox
from aicmo_actors.simulation.run import SimResult, simulate
from aicmo_actors.simulation.world import BUSY_PROSPECTS, Faults

pytestmark = pytest.mark.anyio

#: Often: about ten lives in four days, several of them ended inside an `on_start`.
OFTEN = Faults(kill_anywhere=0.01, max_lives_killed_anywhere=10)


async def _run(workdir: Path, seed: int, faults: Faults = OFTEN, **kwargs: Any) -> SimResult:
    spec, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", 12)
    return await simulate(
        workdir=workdir, spec=spec, leads=rows, days=4, seed=seed, behaviour=BUSY_PROSPECTS, faults=faults, **kwargs
    )


async def test_kills_anywhere_on_start_included_keep_every_invariant(tmp_path: Path) -> None:
    starting = 0
    for seed in (1, 2):
        result = await _run(tmp_path / f"seed{seed}", seed)
        assert result.violations == [], f"seed {seed}: " + "; ".join(str(v) for v in result.violations)
        assert result.kills, f"seed {seed}: never killed"
        killed_lives = {k.life for k in result.kills}
        assert result.extra["lives"] == len(killed_lives) + 1  # each kill ends its life, and only that
        assert len(killed_lives) <= OFTEN.max_lives_killed_anywhere
        assert result.extra["kills_anywhere"] == {
            kind: sum(k.kind == kind for k in result.kills) for kind in {k.kind for k in result.kills}
        }
        starting += sum(k.starting for k in result.kills)
        assert result.world.deliveries
    assert starting > 0, "no kill inside an on_start"


async def test_the_same_seed_dies_at_the_same_places(tmp_path: Path) -> None:
    first = await _run(tmp_path / "a", 3)
    again = await _run(tmp_path / "b", 3)
    assert len(first.kills) >= 3
    assert [str(k) for k in first.kills] == [str(k) for k in again.kills]
    assert first.trace == again.trace
    assert any(line.split(" ", 2)[1] == "Killed" for line in first.trace)


async def test_no_kill_point_kills_without_the_fault(tmp_path: Path) -> None:
    result = await _run(tmp_path, 1, Faults())
    assert result.kills == [] and result.extra["kills_anywhere"] == {}
    assert result.extra["lives"] == 1
    assert result.violations == []


async def test_daily_caps_hold_across_kills(tmp_path: Path) -> None:
    """A mailbox's daily cap counts what every life of the service sent that day."""
    spec, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", 24)
    spec = spec.model_copy(update={"limits": spec.limits.model_copy(update={"daily_cap": 3})})
    result = await simulate(
        workdir=tmp_path, spec=spec, leads=rows, days=5, seed=2, behaviour=BUSY_PROSPECTS, faults=OFTEN
    )
    assert result.violations == [], "; ".join(str(v) for v in result.violations)
    tz = ZoneInfo(spec.timezone)
    lives_by_day: dict[tuple[str, str], list[int]] = defaultdict(list)
    for d in result.world.deliveries:
        lives_by_day[(sending_mailbox(d), d.at.astimezone(tz).date().isoformat())].append(d.life)
    full = [lives for lives in lives_by_day.values() if len(lives) == 3]
    assert max(len(lives) for lives in lives_by_day.values()) == 3
    assert any(len(set(lives)) > 1 for lives in full), "no capped day was shared by two lives"
