"""After the deal, simulated: interested prospects sign, the clients they become answer the
intake (on time, late or never), the plan (approved, changed once, or never) and the reviews
of their work (on the page, by reply, or not at all), and the project sagas carry them through
onboarding, strategy and production to delivery; with the process killed anywhere, every
invariant still holds and the same seed replays."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cli.demo import EXAMPLES, load_demo_inputs
from aicmo_actors.simulation.invariants import INVARIANTS, check_invariants
from aicmo_actors.simulation.run import SimResult, simulate
from aicmo_actors.simulation.world import ALL_FAULTS, BUSY_PROSPECTS, Behaviour, Delivery, Faults
from aicmo_actors.storage.engine import make_engine

pytestmark = pytest.mark.anyio

#: Many interested prospects, most of whom sign within three days.
SIGNING = dataclasses.replace(BUSY_PROSPECTS, interested=0.2)
#: The process killed often, and at seeded moments when clients are being written to: at kill
#: points, at quiet moments, and right after the server took an email (a client's too).
KILLS = dataclasses.replace(ALL_FAULTS, process_kills=4, kill_in_send=0.2, kill_anywhere=0.004)


async def _run(workdir: Path, seed: int, *, leads: int, days: float, **kwargs: Any) -> SimResult:
    spec, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", leads)
    kwargs.setdefault("behaviour", SIGNING)
    return await simulate(workdir=workdir, spec=spec, leads=rows, days=days, seed=seed, **kwargs)


def _sql(result: SimResult, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(result.db_path) as db:
        return list(db.execute(query))


def _broken(result: SimResult) -> str:
    return "; ".join(str(v) for v in result.violations)


async def _check_again(result: SimResult) -> set[str]:
    """The invariants checked again on what the run left (after the test changed some of it)."""
    assert result.settings is not None
    spec, _ = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", 1)
    engine = make_engine(f"sqlite+aiosqlite:///{result.db_path}")
    try:
        found = await check_invariants(
            CamStore(engine),
            result.world,
            spec,
            result.ticks,
            result.settings,
            kills=result.kills,
            after_deal=True,
            complete_ticks=result.complete_ticks,
        )
    finally:
        await engine.dispose()
    return {v.invariant for v in found}


async def test_clients_sign_are_onboarded_and_approve_their_plans(tmp_path: Path) -> None:
    result = await _run(tmp_path, 6, leads=40, days=14, faults=Faults())
    assert result.violations == [], _broken(result)
    clients = result.world.clients
    assert clients is not None
    signed = clients.signed
    assert len(signed) == result.extra["deals"] >= 3
    assert _sql(result, "select count(*) from cam_leads where state = 'client'") == [(len(signed),)]
    in_production = _sql(
        result, "select count(*) from orchestration_projects where step in ('production', 'delivered')"
    )
    assert in_production[0][0] >= 2
    # Some wait for their client, with a deadline: the intake of one who never answers, the
    # plan of another; the others' work is under way.
    waiting = _sql(
        result,
        "select s.step, s.deadline_at from orchestration_projects p join orchestration_steps s "
        "on s.project_id = p.id and s.step = p.step where p.state = 'running'",
    )
    assert {"onboarding", "strategy"} <= {step for step, _ in waiting} <= {"onboarding", "strategy", "production"}
    assert all(deadline is not None for _, deadline in waiting)
    # Late, after a reminder: the intake is answered then, and its project goes on.
    late = [c for c in signed if c.intake == "after_reminder_1"]
    assert late and all(c.intake_answered_at is not None for c in late)
    for client in late:
        reminders = [
            d.at
            for d in result.world.client_emails
            if d.recipient == client.address and d.message_id.startswith("<onboarding.reminder.1.")
        ]
        assert reminders and client.intake_answered_at is not None and reminders[0] < client.intake_answered_at
    # Changes asked once, then the second version approved.
    versions = _sql(result, "select project_id, version, status from strategy_plans order by project_id, version")
    by_project: dict[str, list[tuple[int, str]]] = {}
    for project_id, version, status in versions:
        by_project.setdefault(project_id, []).append((version, status))
    assert [(1, "changes_requested"), (2, "approved")] in by_project.values()
    assert result.extra["plans_approved"] == sum(1 for v in by_project.values() if v[-1][1] == "approved")
    assert result.extra["intakes_completed"] == sum(1 for c in signed if c.intake_answered_at is not None)
    # Every email to a client arrived once.
    assert max(Counter(d.message_id for d in result.world.client_emails).values()) == 1
    assert not clients.refused

    # The checks see what they are there for.
    world = result.world
    twice = world.client_emails[0]
    world.client_emails.append(dataclasses.replace(twice, at=twice.at + timedelta(hours=1)))
    client = signed[0]
    assert client.signed_at is not None
    domain = client.address.rpartition("@")[2]
    world.deliveries.append(
        Delivery(client.signed_at + timedelta(days=1), "x@outreach.example.com", f"ceo@{domain}", "<late@x>", b"", "")
    )
    with sqlite3.connect(result.db_path) as db:
        db.execute("update orchestration_steps set deadline_at = null where state = 'waiting'")
        db.execute("delete from orchestration_projects where step in ('production', 'delivered')")
    assert await _check_again(result) >= set(INVARIANTS[10:14])


async def test_the_same_seed_replays_deals_clients_and_kills(tmp_path: Path) -> None:
    first = await _run(tmp_path / "a", 3, leads=30, days=8, faults=KILLS)
    again = await _run(tmp_path / "b", 3, leads=30, days=8, faults=KILLS)
    assert first.violations == [], _broken(first)
    assert first.extra["deals"] >= 3 and first.extra["client_kills_in_send"] >= 1
    assert first.extra["lives"] > 5
    assert any(" ClientActed " in line for line in first.trace)
    assert first.trace == again.trace
    assert first.extra == again.extra


async def test_kills_keep_the_invariants_after_the_deal(tmp_path: Path) -> None:
    result = await _run(tmp_path, 2, leads=30, days=8, faults=KILLS)
    assert result.violations == [], _broken(result)
    assert result.extra["client_kills_in_send"] >= 1
    after_deal = {"onboarding", "strategy", "orchestration", "production", "qc", "client_review", "delivery"}
    assert any(k.actor.split(".")[0] in after_deal for k in result.kills), "no kill in a module after the deal"
    assert _sql(result, "select count(*) from production_items")[0][0] >= 1
    # A client email interrupted by the kill is never sent again: at most once, whatever died.
    statuses = dict(_sql(result, "select status, count(*) from onboarding_emails group by status"))
    assert "SENDING" not in statuses


async def test_without_deals_the_modules_after_the_deal_change_nothing_for_prospects(tmp_path: Path) -> None:
    nobody = dataclasses.replace(BUSY_PROSPECTS, clients=dataclasses.replace(BUSY_PROSPECTS.clients, signs=0.0))
    runs = [
        await _run(tmp_path / str(on), 4, leads=12, days=6, behaviour=nobody, after_deal=on) for on in (False, True)
    ]
    without, with_them = runs
    assert without.violations == [] and with_them.violations == []
    assert without.world.clients is None and "deals" not in without.extra
    assert with_them.extra["deals"] == 0 and with_them.world.client_emails == []
    sent = [[(d.at, d.recipient, d.message_id) for d in run.world.deliveries] for run in runs]
    assert sent[0] and sent[0] == sent[1]
    assert [(w.at, w.kind, w.recipient) for w in without.world.written] == [
        (w.at, w.kind, w.recipient) for w in with_them.world.written
    ]


async def test_the_last_poll_reads_what_the_world_wrote_when_the_inbox_reconnects_at_the_end(tmp_path: Path) -> None:
    """Seed 297 of the soak: the inbox dropped in the last hour and, reconnecting for the last
    poll, made a new connection that could drop again: a reply was never stored."""
    spec, rows = load_demo_inputs(EXAMPLES / "campaign.toml", EXAMPLES / "leads.csv", 12)
    result = await simulate(
        workdir=tmp_path, spec=spec, leads=rows, days=12, seed=297, behaviour=BUSY_PROSPECTS, faults=ALL_FAULTS
    )
    assert result.violations == [], _broken(result)
    assert result.world.written


def test_a_client_behaviour_draws_every_fate() -> None:
    b = Behaviour().clients
    assert [b.intake_fate(x) for x in (0.0, 0.65, 0.8, 0.99)] == [
        "on_time",
        "after_reminder_1",
        "after_reminder_2",
        "never",
    ]
    assert [b.plan_fate(x) for x in (0.0, 0.75, 0.95)] == ["approves", "changes_once", "never"]


async def test_the_work_is_drafted_checked_reviewed_and_delivered_once(tmp_path: Path) -> None:
    """The work after the plan, simulated: drafts (some with a problem planted), QC, reviews on
    the page and by reply in the clients' words, changes, auto-approval, deliveries by email and
    by webhook to receivers that fail some attempts; then invariants 15 to 18 shown to bite."""
    result = await _run(tmp_path, 6, leads=40, days=24, faults=Faults())
    assert result.violations == [], _broken(result)
    extra = result.extra
    assert extra["planted"] >= 3 and extra["qc_failed"] >= extra["planted"]
    verdicts = extra["verdicts"]
    assert verdicts.get("approved page", 0) >= 1 and verdicts.get("approved email", 0) >= 1, verdicts
    assert any(k.startswith("changes") for k in verdicts), verdicts
    assert extra["delivered"].get("email", 0) >= 3 and extra["delivered"]["email"] == extra["delivered"]["webhook"]
    assert result.world.receiver.repeats or extra["webhook_attempts"] > extra["delivered"]["webhook"]
    # A change asked for came back as a new version.
    changed = _sql(result, "select item_id, version from client_review_items where status = 'changes'")
    versions = set(_sql(result, "select item_id, version from production_versions"))
    assert all((item, version + 1) in versions for item, version in changed)

    # The checks see what they are there for.
    world = result.world
    with sqlite3.connect(result.db_path) as db:
        # A delivery of a version nobody approved, a change with no new version, an answer on
        # an expired link.
        db.execute(
            "update delivery_deliveries set version = version + 10 where id = (select min(id) from delivery_deliveries)"
        )
        db.execute(
            "delete from production_versions where (item_id, version) in "
            "(select item_id, version + 1 from client_review_items where status = 'changes')"
        )
        db.execute("update production_items set state = 'delivered' where state <> 'delivered'")
        db.execute("update client_review_links set expires_at = '2000-01-01 00:00:00.000000'")
    planted = next(iter(world.writer.planted))
    item_key, _, client_ref = planted.partition("@")
    with sqlite3.connect(result.db_path) as db:
        db.execute(
            "update qc_checks set passed = 1 where version = 1 and item_id in "
            "(select id from production_items where key = ? and client_ref = ?)",
            (item_key, client_ref),
        )
    assert await _check_again(result) >= set(INVARIANTS[14:18])
