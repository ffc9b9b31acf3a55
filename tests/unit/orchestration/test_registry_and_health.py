"""The module registry and the health rules, table by table (pure: no actors, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aicmo_actors.cam import module as cam_module
from aicmo_actors.orchestration.health import actor_health, module_health, readiness
from aicmo_actors.orchestration.registry import ModuleRegistry, UnknownModule
from aicmo_actors.orchestration.switches import Switch, SwitchState
from contracts.orchestration import ModuleSpec
from contracts.runtime import ActorStats, DependencyStatus, SystemSnapshot

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def spec(name: str, *, needs: tuple[str, ...] = (), sending: tuple[str, ...] = ()) -> ModuleSpec:
    actors = (f"{name}.a", f"{name}.b", f"{name}.web")
    return ModuleSpec(
        name=name,
        title=name,
        actors=actors,
        contract_version=1,
        switchable=actors[:2],
        sending=sending,
        needs=needs,
    )


REGISTRY = ModuleRegistry(
    [spec("cam", sending=("cam.a",)), spec("onboarding", needs=("cam",)), spec("strategy", needs=("onboarding",))]
)


def stats(name: str, **changes: Any) -> ActorStats:
    base: dict[str, Any] = {
        "name": name,
        "status": "running",
        "processed": 10,
        "failed": 0,
        "restarts": 0,
        "mailbox_depth": 0,
        "mailbox_high_water": 1,
        "mailbox_capacity": 100,
        "latency_mean_ms": 1.0,
        "latency_p50_ms": 1.0,
        "latency_p99_ms": 1.0,
        "latency_max_ms": 1.0,
    }
    return ActorStats(**{**base, **changes})


def snapshot(*actors: ActorStats, deps: tuple[DependencyStatus, ...] = ()) -> SystemSnapshot:
    return SystemSnapshot(
        started_at=NOW - timedelta(hours=1),
        now=NOW,
        clock="fake",
        seed=1,
        actors=actors,
        dead_letters=0,
        stopping=False,
        dependencies=deps,
    )


def switches(**enabled: bool) -> SwitchState:
    return SwitchState(
        {name: Switch(name, on, "why not", "ana", NOW - timedelta(minutes=3)) for name, on in enabled.items()}
    )


def test_dependents_follow_needs_transitively() -> None:
    assert REGISTRY.dependents("cam") == ["onboarding", "strategy"]
    assert REGISTRY.stopped_modules(["onboarding"]) == {"onboarding", "strategy"}
    with pytest.raises(UnknownModule, match="no module named 'nope'"):
        REGISTRY.get("nope")
    with pytest.raises(ValueError, match="needs 'billing'"):
        ModuleRegistry([spec("x", needs=("billing",))])


@pytest.mark.parametrize(
    ("disabled", "worker_paused", "expected"),
    [
        ([], False, set()),
        (["cam"], False, {"cam.a", "cam.b", "onboarding.a", "onboarding.b", "strategy.a", "strategy.b"}),
        ([], True, {"cam.a"}),
        (["strategy"], True, {"cam.a", "strategy.a", "strategy.b"}),
    ],
)
def test_actors_to_suspend(disabled: list[str], worker_paused: bool, expected: set[str]) -> None:
    assert REGISTRY.actors_to_suspend(disabled, worker_paused=worker_paused) == expected


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({}, "ok", None),
        ({"status": "restarting"}, "failing", "restarting after a crash"),
        ({"status": "failed"}, "failing", "stopped for good"),
        ({"status": "suspended"}, "disabled", "switched off"),
        ({"recent_restarts": (NOW - timedelta(minutes=1),)}, "degraded", "restarted 1 time(s)"),
        ({"recent_restarts": (NOW - timedelta(hours=1),)}, "ok", None),
        ({"recent_restarts": (NOW,) * 3}, "failing", "restarted 3 times"),
        ({"dead_letters": 2, "last_dead_letter_at": NOW - timedelta(minutes=2)}, "degraded", "dead-lettered"),
        ({"mailbox_depth": 85}, "degraded", "mailbox near its bound: 85/100"),
        (
            {"last_error_at": NOW, "last_error": "OSError: disk", "last_ok_at": NOW - timedelta(minutes=1)},
            "degraded",
            "OSError: disk",
        ),
        ({"last_error_at": NOW - timedelta(minutes=1), "last_ok_at": NOW}, "ok", None),
    ],
)
def test_actor_health(changes: dict[str, Any], status: str, words: str | None) -> None:
    found = actor_health(stats("cam.a", **changes), NOW)
    assert found.status == status
    if words is not None:
        assert any(words in reason for reason in found.reasons), found.reasons


def test_a_failing_dependency_makes_its_module_failing_and_the_service_not_ready() -> None:
    dep = DependencyStatus(
        name="smtp:main", ok=False, detail="535 5.7.8 authentication failed", actor="cam.a", at=NOW, last_ok_at=None
    )
    snap = snapshot(stats("cam.a"), stats("cam.b"), stats("cam.web"), deps=(dep,))
    found = module_health(REGISTRY.get("cam"), snap, switches(), REGISTRY)
    assert found["status"] == "failing"
    assert found["reasons"] == ["smtp:main: 535 5.7.8 authentication failed (not working since the start)"]
    # Another module's actors' dependency is not this module's problem.
    assert module_health(REGISTRY.get("onboarding"), snap, switches(), REGISTRY)["status"] != "failing"
    ready, reasons = readiness(snap, [found])
    assert not ready and reasons[0].startswith("module cam is failing: smtp:main")


def test_switched_off_modules_say_who_and_why_and_their_dependents_say_why_too() -> None:
    snap = snapshot(stats("cam.a", status="suspended"), stats("onboarding.a", status="suspended"))
    state = switches(cam=False)
    cam = module_health(REGISTRY.get("cam"), snap, state, REGISTRY)
    assert cam["status"] == "disabled"
    assert cam["reasons"][0].startswith("switched off by ana at 2026-03-09 11:57:00 UTC: why not")
    onboarding = module_health(REGISTRY.get("onboarding"), snap, state, REGISTRY)
    assert onboarding["reasons"] == ["stopped with cam, which it needs"]
    assert readiness(snap, [cam, onboarding]) == (True, [])


def test_the_worker_paused_degrades_the_sending_modules_only() -> None:
    snap = snapshot(stats("cam.a", status="suspended"), stats("onboarding.a"))
    state = switches(worker=False)
    assert module_health(REGISTRY.get("cam"), snap, state, REGISTRY)["status"] == "degraded"
    assert module_health(REGISTRY.get("onboarding"), snap, state, REGISTRY)["status"] == "ok"


def test_cams_declaration_matches_the_tree_it_builds() -> None:
    from aicmo_actors.cam import cam_supervisor
    from aicmo_actors.cam.repos import CamStore
    from aicmo_actors.settings import Settings
    from aicmo_actors.storage.engine import make_engine

    engine = make_engine("sqlite+aiosqlite:///:memory:")
    tree = cam_supervisor(Settings(), CamStore(engine), secret=b"x" * 32, transports=lambda p, m: None, inboxes={})
    declared = cam_module.describe()
    assert tuple(child.id for child in tree.children) == declared.actors
    accepted = {
        t.__name__
        for child in tree.children
        for t in type(child.start()).accepts  # type: ignore[union-attr]
    }
    assert accepted == set(declared.consumes)
    assert set(declared.switchable) | {"cam.web"} == set(declared.actors)
