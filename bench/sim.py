"""Simulation benchmark: a soak of seeded runs with faults, the month-of-campaigns speed, and the
whole business for a quarter.

    python -m bench sim [--seeds N] [--leads L] [--days D] [--speed-leads M] [--skip-speed]
                        [--business-leads B] [--business-days Q] [--skip-business]

- Soak: N seeds (default 500), each a small simulated run (L leads, D days) of the real
  actors on a fake clock with every seeded fault on: actor crashes mid-message, SMTP 4xx,
  5xx and dropped connections, inbox disconnects, database errors on commit, and the whole
  process killed and restarted on the same database (at quiet moments, right after the
  server took a message, and at seeded kill points: a store call about to start or just
  committed, a publish, a tell, a gateway call). Every run's invariants are checked;
  a failure prints its seed and the first offending event (rerun it with `--seeds 1
  --first SEED`); a run that stops making progress for `--seed-timeout` seconds of wall
  time is a failure too ("hung"). Figures: `seeds`, `failures`, `simulated_s_per_wall_s`,
  `kills_anywhere` (kills at kill points, by kind, over all seeds).
- Speed: M leads (default 10,000), 30 simulated days, a 3-step sequence, SQLite, no
  faults: `speed_wall_s` (target <= 60 on a 2-core machine) and its emails per second,
  `speed_ms_per_email` (wall milliseconds per email sent) and `speed_disk_bytes_per_email`
  (bytes the run dirtied for the disk, from /proc/self/io, per email; target under 10,000).
- Business: B leads (default 10,000) and the clients they turn into, Q simulated days (default
  91, a quarter), every module after the deal (the work, invoices and payments, reports, health,
  the bandit), SQLite, no faults: `business_wall_s` (target <= 120 on a 2-core machine),
  `business_events_per_wall_s` and `business_peak_rss_mb` (the process's peak resident memory,
  which includes the runs before it: run it alone with `--seeds 0 --skip-speed` for its own).

Progress goes to stderr; the last line of stdout is one JSON object. Simulated time per
wall second is the figure (the baseline is the simulated clock itself).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aicmo_actors.cam.campaign import CampaignSpec, parse_campaign
from aicmo_actors.cli.demo import EXAMPLES, load_demo_inputs
from aicmo_actors.simulation.run import simulate
from aicmo_actors.simulation.world import ALL_FAULTS, BUSY_PROSPECTS, Behaviour

SOAK_FAULTS = ALL_FAULTS
SOAK_BEHAVIOUR = BUSY_PROSPECTS
#: The speed run's prospects: the demo's cleaned list (a dirty one pauses the campaign, as it should).
SPEED_BEHAVIOUR = Behaviour(hard_bounce=0.005, soft_bounce=0.01)
T = TypeVar("T")


def disk_bytes_written() -> int | None:
    """Bytes this process has caused to be written to storage so far (Linux's
    /proc/self/io `write_bytes`, which counts the database's and the Maildirs' writes as they
    reach the disk, page-cache writeback included); None where that is not available."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def speed_campaign(mailboxes: int) -> CampaignSpec:
    """The example campaign's three steps, from enough mailboxes for 10,000 leads a month."""
    text = (EXAMPLES / "campaign.toml").read_text(encoding="utf-8")
    spec = parse_campaign(text, "examples/campaign.toml")
    boxes = [
        {"address": f"sender{i:02d}@outreach.example.com", "display_name": f"Sender {i}", "transport": "default"}
        for i in range(mailboxes)
    ]
    data = json.loads(spec.to_json())
    data["mailboxes"] = boxes
    data["limits"] = {"daily_cap": 60, "min_gap_seconds": 120, "jitter_seconds": 90}
    # The synthesized leads share the example file's 200 domains: one reply would stop
    # fifty "colleagues" and the month would measure little.
    data["stop_company_on_reply"] = False
    return CampaignSpec.model_validate(data)


@dataclass
class Moved:
    """When a simulated run last reported its clock moving (wall seconds, `time.perf_counter`),
    and how many simulated days it had done then."""

    at: float
    days: float = 0.0

    def day(self, done: float, total: float) -> None:
        if done > self.days:
            self.at, self.days = time.perf_counter(), done


async def _unless_stuck(run: Awaitable[T], moved: Moved, seed_timeout: float) -> T:
    """`run`'s result, or TimeoutError once its simulated clock has not moved for `seed_timeout`
    wall seconds (progress, not total time: a machine busy with other work slows a seed
    without failing it)."""
    task = asyncio.ensure_future(run)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=min(seed_timeout, 5.0))
            if done:
                return task.result()
            if time.perf_counter() - moved.at > seed_timeout:
                raise TimeoutError
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def soak(seeds: list[int], leads: int, days: float, workdir: Path, seed_timeout: float) -> dict[str, Any]:
    spec, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", leads)
    failures: list[dict[str, Any]] = []
    kills: Counter[str] = Counter()
    simulated = 0.0
    started = time.perf_counter()
    for n, seed in enumerate(seeds, 1):
        moved = Moved(time.perf_counter())
        one = simulate(
            workdir=workdir / "soak",
            spec=spec,
            leads=rows,
            days=days,
            seed=seed,
            behaviour=SOAK_BEHAVIOUR,
            faults=SOAK_FAULTS,
            progress=moved.day,
        )
        try:
            result = await _unless_stuck(one, moved, seed_timeout)
        except TimeoutError:
            # Wall time, in a benchmark only: a simulated run that stops moving is a bug
            # (nothing can happen, yet something holds the fake clock), not a slow seed.
            first = f"hung: the simulated clock did not move for {seed_timeout:g} s of wall time (day {moved.days:.1f})"
            failures.append({"seed": seed, "violation": first})
            progress(f"  seed {seed}: FAILED: {first}")
            continue
        simulated += days * 86400
        kills.update(result.extra.get("kills_anywhere", {}))
        if result.violations:
            first = str(result.violations[0])
            failures.append({"seed": seed, "violation": first})
            where = "; ".join(result.extra.get("kill_points", []))
            progress(f"  seed {seed}: FAILED: {first}" + (f" (killed at: {where})" if where else ""))
        if n % 10 == 0 or n == len(seeds):
            wall = time.perf_counter() - started
            progress(f"  {n}/{len(seeds)} seeds, {len(failures)} failed, {wall:.0f} s")
    wall = time.perf_counter() - started
    return {
        "seeds": len(seeds),
        "failures": len(failures),
        "failed_seeds": [f["seed"] for f in failures][:50],
        "first_violations": {str(f["seed"]): f["violation"] for f in failures[:10]},
        "kills_anywhere": dict(sorted(kills.items())),
        "simulated_s_per_wall_s": round(simulated / wall, 1),
        "soak_wall_s": round(wall, 1),
    }


async def speed(leads: int, workdir: Path) -> dict[str, Any]:
    spec = speed_campaign(mailboxes=max(1, -(-leads // 400)))
    _, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", leads)
    last = [0.0]

    def tick(day: float, total: float) -> None:
        if day - last[0] >= 5 or day >= total:
            last[0] = day
            progress(f"  day {day:.0f}/{total:.0f}, {time.perf_counter() - started:.0f} s")

    written = disk_bytes_written()
    started = time.perf_counter()
    # Prospecting alone (nobody signs): the speed of CAM's send path stays comparable across
    # runs (its 10,000 leads share 200 domains: one signature would stop fifty "colleagues").
    result = await simulate(
        workdir=workdir / "speed",
        spec=spec,
        leads=rows,
        days=30,
        seed=1,
        progress=tick,
        behaviour=SPEED_BEHAVIOUR,
        after_deal=False,
    )
    wall = time.perf_counter() - started
    disk = disk_bytes_written() - written if written is not None else None
    sent = sum(result.funnel["sent_by_step"].values())
    if result.violations:
        progress(f"  speed run broke an invariant: {result.violations[0]}")
    return {
        "speed_leads": leads,
        "speed_days": 30,
        "speed_steps": len(spec.steps),
        "speed_mailboxes": len(spec.mailboxes),
        "speed_emails": sent,
        "speed_wall_s": round(wall, 1),
        "speed_emails_per_wall_s": round(sent / wall, 1),
        "speed_ms_per_email": round(wall * 1000 / max(sent, 1), 2),
        "speed_disk_bytes_per_email": round(disk / max(sent, 1)) if disk is not None else None,
        "speed_disk_target_bytes_per_email": 10_000,
        "speed_target_wall_s": 60,
        "speed_violations": len(result.violations),
    }


async def business(leads: int, days: float, workdir: Path) -> dict[str, Any]:
    """The whole business: prospecting with a bandit on the first step, then the clients' work,
    money, reports, health and renewals, for `days`."""
    import resource

    from aicmo_actors.cam.campaign import BanditSpec

    spec = speed_campaign(mailboxes=max(1, -(-leads // 400)))
    spec = spec.model_copy(update={"bandit": BanditSpec()})
    _, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", leads)
    last = [0.0]

    def tick(day: float, total: float) -> None:
        if day - last[0] >= 10 or day >= total:
            last[0] = day
            progress(f"  day {day:.0f}/{total:.0f}, {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    result = await simulate(
        workdir=workdir / "business",
        spec=spec,
        leads=rows,
        days=days,
        seed=1,
        progress=tick,
        behaviour=SPEED_BEHAVIOUR,
    )
    wall = time.perf_counter() - started
    if result.violations:
        progress(f"  business run broke an invariant: {result.violations[0]}")
    extra = result.extra
    return {
        "business_leads": leads,
        "business_days": days,
        "business_deals": extra.get("deals", 0),
        "business_invoices": extra.get("invoices", 0),
        "business_reports": extra.get("reports", 0),
        "business_renewals": extra.get("renewals", 0),
        "business_events": result.events,
        "business_wall_s": round(wall, 1),
        "business_events_per_wall_s": round(result.events / wall, 1),
        "business_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "business_target_wall_s": 120,
        "business_violations": len(result.violations),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aicmo-bench-sim-") as tmp:
        if args.seeds > 0:
            seeds = list(range(args.first, args.first + args.seeds))
            progress(f"soak: {len(seeds)} seeds x {args.leads} leads x {args.days:g} days, every fault on ...")
            out.update(await soak(seeds, args.leads, args.days, Path(tmp), args.seed_timeout))
        if not args.skip_speed:
            progress(f"speed: {args.speed_leads:,} leads, 30 days, 3 steps, SQLite ...")
            out.update(await speed(args.speed_leads, Path(tmp)))
        if not args.skip_business:
            progress(f"business: {args.business_leads:,} leads, {args.business_days:g} days, every module ...")
            out.update(await business(args.business_leads, args.business_days, Path(tmp)))
    return out


def quiet_logs() -> None:
    """The faults make actors crash on purpose: their tracebacks would bury the figures."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=500, help="seeded soak runs (default 500; 0 skips the soak)")
    parser.add_argument("--first", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--leads", type=int, default=12, help="leads per soak run (default 12)")
    parser.add_argument("--days", type=float, default=12, help="simulated days per soak run (default 12)")
    parser.add_argument("--speed-leads", type=int, default=10_000, help="leads in the speed run (default 10,000)")
    parser.add_argument("--skip-speed", action="store_true", help="skip the speed run")
    parser.add_argument(
        "--business-leads", type=int, default=10_000, help="leads in the whole-business run (default 10,000)"
    )
    parser.add_argument(
        "--business-days", type=float, default=91, help="simulated days of the whole-business run (default 91)"
    )
    parser.add_argument("--skip-business", action="store_true", help="skip the whole-business run")
    parser.add_argument(
        "--seed-timeout",
        type=float,
        default=300,
        help="wall seconds without its simulated clock moving after which a soak run counts as hung (default 300)",
    )
    args = parser.parse_args(argv)
    if args.business_leads < 1 or args.business_days <= 0:
        parser.error("--business-leads must be >= 1 and --business-days > 0")
    if args.seeds < 0 or args.leads < 1 or args.days <= 0 or args.speed_leads < 1 or args.seed_timeout <= 0:
        parser.error("--seeds must be >= 0, --leads and --speed-leads >= 1, --days and --seed-timeout > 0")
    quiet_logs()
    result = asyncio.run(run(args))
    print(json.dumps(result))
    return 1 if result.get("failures") or result.get("business_violations") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
