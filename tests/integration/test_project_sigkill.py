"""A client project across a real SIGKILL of `python run.py` (SQLite).

A deal is signed from the command line; the service opens the project and onboarding sends
the welcome. The SMTP sink SIGKILLs the service right after it answered 250 to the welcome
(the client has it; the process dies before it could record that). A second service starts
on the same database: the welcome is not sent again (it may have gone out: UNCONFIRMED), the
saga resumes where it was (onboarding waiting for the intake). A person then completes the
intake by hand (as after reading the client's emailed answers), and the plan goes out once.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicmo_actors.onboarding import OnboardingStore
from aicmo_actors.storage.engine import make_engine
from contracts.onboarding import BRIEF_FIELDS
from tests.integration.kill_helpers import KillPoint, KillSink, ServiceProcess, Workspace, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 120.0
CLIENT = "lead000@company000.example.org"


@dataclass
class ClientWorkspace(Workspace):
    """The kill tests' workspace, with a package and emails to clients through the sink."""

    def env(self, smtp_port: int = 0) -> dict[str, str]:
        env = super().env(smtp_port)
        env.update(
            AICMO_CLIENT_TRANSPORT="sink",
            AICMO_CLIENT_MAIL_FROM="hello@agency.example.org",
            AICMO_PACKAGES_DIR=str(self.root / "packages"),
        )
        return env


def _projects(workspace: Workspace) -> list[dict[str, object]]:
    return [json.loads(line) for line in workspace.cli("projects", "--json").splitlines() if line.strip()]


def _step(workspace: Workspace) -> tuple[object, object] | None:
    found = _projects(workspace)
    return (found[0]["step"], found[0]["step_state"]) if found else None


def test_a_sigkill_after_the_welcome_neither_repeats_it_nor_loses_the_project(tmp_path: Path) -> None:
    workspace = ClientWorkspace(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/service.db", seed=11, leads=1)
    workspace.prepare()
    (tmp_path / "packages").mkdir()
    text = (REPO / "examples" / "package.toml").read_text(encoding="utf-8")
    (tmp_path / "packages" / "growth.toml").write_text(text.replace('name = "package"', 'name = "growth"', 1))
    workspace.cli("migrate")
    workspace.create_campaign()
    workspace.cli("deal", "won", CLIENT, "--package", "growth", "--country", "US")
    sink = KillSink()
    processes: list[ServiceProcess] = []
    try:
        lifetime, port = sink.listen(KillPoint("after_250", 1, signal.SIGKILL))
        first = ServiceProcess(workspace, port, "first")
        lifetime.service = first
        processes.append(first)
        wait_until(lambda: bool(sink.kills), DEADLINE_S, lambda: f"the kill\n{first.output()}")
        assert [m.recipient for m in sink.messages] == [CLIENT], "the welcome is the only email (the lead signed)"

        lifetime, port = sink.listen()  # never killed
        second = ServiceProcess(workspace, port, "second")
        lifetime.service = second
        processes.append(second)
        wait_until(
            lambda: _step(workspace) == ("onboarding", "waiting"),
            DEADLINE_S,
            lambda: f"onboarding waiting: {_projects(workspace)}\n{second.output()}",
        )
        project_id = str(_projects(workspace)[0]["id"])
        asyncio.run(_complete_by_hand(workspace.database_url, project_id))
        wait_until(
            lambda: len(_onboarding_and_plan(sink)) >= 2 and _step(workspace) == ("strategy", "waiting"),
            DEADLINE_S,
            lambda: f"the plan sent: {_projects(workspace)}\n{second.output()}",
        )
        shown = workspace.cli("project", project_id[:8])
        assert "onboarding  done" in shown and "strategy    waiting" in shown, shown
        # The welcome is UNCONFIRMED (killed before it recorded the 250) or SENT (it did, just
        # before the kill): never sent again either way.
        assert "Emails to the client:" in shown and "onboarding/welcome" in shown, shown
    finally:
        for service in processes:
            service.stop()
        sink.close()
    ids = _onboarding_and_plan(sink)
    assert len(ids) == len(set(ids)) == 2, ids  # the welcome once, the plan once
    invoices = [m.message_id for m in sink.messages if "<billing-invoice." in m.message_id]
    assert len(invoices) <= 1, invoices  # the first retainer's invoice (billing), at most once
    assert len(_projects(workspace)) == 1


async def _complete_by_hand(url: str, project_id: str) -> None:
    engine = make_engine(url)
    try:
        answers = {f.key: f"answer to {f.key}" for f in BRIEF_FIELDS if f.required}
        await OnboardingStore(engine).intakes.complete_by_hand(project_id, answers, "test", datetime.now(UTC))
    finally:
        await engine.dispose()


def _onboarding_and_plan(sink: object) -> list[str]:
    """The Message-IDs the sink took of onboarding's and strategy's emails (billing's invoice
    of the first retainer goes out beside them)."""
    return [m.message_id for m in sink.messages if not m.message_id.startswith("<billing-")]  # type: ignore[attr-defined]
