"""One definition per figure: after a simulated month with addresses refused at RCPT and
bounces by report, `campaign status`, /metrics, the auto-pause's own reading and what the
simulated world really saw all give the same numbers."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from aicmo_actors.cam.decision import PausePolicy, campaign_verdict
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.web import Web
from aicmo_actors.runtime import ActorSystem, ChildSpec, RuntimeSettings
from aicmo_actors.simulation.run import simulate
from aicmo_actors.simulation.world import Behaviour
from aicmo_actors.storage.engine import make_engine
from tests.plugins.mail import _free_port
from tests.simulation.test_simulated_runs import _inputs

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
DIRTY = Behaviour(interested=0.05, unsubscribe=0.03, hard_bounce=0.08, soft_bounce=0.08, dead_at_rcpt=0.08)
#: Never pauses: the month runs to its end, every figure keeps growing.
PATIENT = PausePolicy(hard_bounce_rate=1.0, complaint_rate=1.0, min_sends=1)


async def metrics_of(store: CamStore) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    settings = RuntimeSettings(tick_interval_s=0, seed=1)
    port = _free_port()
    web = ChildSpec("web", lambda: Web(store, secret=lambda: b"x" * 32, host="127.0.0.1", port=port))
    async with ActorSystem(settings, children=[web]) as system:
        await system.settle()
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    for campaign, figure, value in re.findall(
        r'^aicmo_campaign_emails\{campaign="([^"]+)",figure="([^"]+)"\} (\S+)$', text, re.M
    ):
        found[(campaign, figure)] = float(value)
    return found


async def test_status_metrics_auto_pause_and_the_world_agree(tmp_path: Path) -> None:
    spec, leads = _inputs(60)
    # CAM's figures: prospecting alone (nobody signs; the work after the deal is not what is counted).
    result = await simulate(
        workdir=tmp_path / "month",
        spec=spec,
        leads=leads,
        days=30,
        seed=11,
        behaviour=DIRTY,
        pause_policy=PATIENT,
        after_deal=False,
    )
    assert result.violations == []
    world = result.world
    assert world.rejected, "no address was refused at RCPT: the run does not test what it says"
    reports = [m for m in world.written if m.kind == "bounce_hard"]
    assert reports, "no hard bounce by report"

    # What the world saw, email by email (a Message-ID is one email, whatever was retried).
    accepted = {d.message_id for d in world.deliveries if d.outcome == "accepted"}
    unconfirmed = {d.message_id for d in world.deliveries if d.outcome == "unconfirmed"} - accepted
    refused = {d.message_id for d in world.rejected} - accepted - unconfirmed
    hard = {d.message_id for d in world.rejected} | {m.in_reply_to for m in reports}

    engine = make_engine(f"sqlite+aiosqlite:///{result.db_path}")
    store = CamStore(engine)
    try:
        figures = (await store.metrics.figures(spec.name, window=False))[spec.name]
        metrics = await metrics_of(store)
    finally:
        await engine.dispose()
    assert (figures.sent, figures.unconfirmed, figures.refused) == (len(accepted), len(unconfirmed), len(refused))
    assert figures.attempted == figures.sent + figures.unconfirmed + figures.refused
    assert figures.hard_bounces == len(hard)

    status = await anyio.run_process(
        [sys.executable, str(REPO / "run.py"), "campaign", "status", spec.name, "--json"],
        env={"AICMO_DATABASE_URL": f"sqlite+aiosqlite:///{result.db_path}", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout.decode())["figures"]
    assert shown == {k: getattr(figures, k) for k in shown}
    assert {figure: int(value) for (campaign, figure), value in metrics.items() if campaign == spec.name} == shown

    # The auto-pause reads the same figures (its window is the whole run: never paused).
    strict = PausePolicy(hard_bounce_rate=0.01, complaint_rate=1.0, min_sends=1)
    reason = campaign_verdict(figures, strict)
    assert reason is not None and f"({figures.hard_bounces}/{figures.attempted} attempted)" in reason
