"""Health of each actor and module, in words, from what the runtime already knows.

Pure: a function of a `SystemSnapshot`, the switches and the module declarations, so every
rule is tested table by table. Statuses, worst first: ``failing``, ``degraded``, ``ok``;
``disabled`` for a module switched off (or an actor it stops).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aicmo_actors.orchestration.registry import ModuleRegistry
from aicmo_actors.orchestration.switches import SwitchState
from contracts.orchestration import ModuleSpec
from contracts.runtime import ActorStats, DependencyStatus, SystemSnapshot

ORDER = {"ok": 0, "disabled": 1, "degraded": 2, "failing": 3}
#: How far back restarts, errors and dead letters count.
WINDOW = timedelta(minutes=5)
#: Restarts within WINDOW that make an actor failing rather than degraded.
FAILING_RESTARTS = 3
#: A mailbox this full is a sign of trouble.
MAILBOX_FULL = 0.8


@dataclass
class Health:
    status: str = "ok"
    reasons: list[str] = field(default_factory=list)

    def worse(self, status: str, reason: str) -> None:
        if ORDER[status] > ORDER[self.status]:
            self.status = status
        self.reasons.append(reason)


def _at(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def actor_health(stats: ActorStats, now: datetime, *, window: timedelta = WINDOW) -> Health:
    health = Health()
    since = now - window
    minutes = f"{window.total_seconds() / 60:g} min"
    if stats.status == "failed":
        health.worse("failing", "stopped for good after crashing")
    elif stats.status == "restarting":
        health.worse("failing", "restarting after a crash")
    elif stats.status == "suspended":
        health.worse("disabled", "switched off: keeps its mail, takes no work")
    restarts = [at for at in stats.recent_restarts if at >= since]
    if len(restarts) >= FAILING_RESTARTS:
        health.worse("failing", f"restarted {len(restarts)} times in the last {minutes}")
    elif restarts:
        health.worse("degraded", f"restarted {len(restarts)} time(s) in the last {minutes} (last {_at(restarts[-1])})")
    if stats.last_dead_letter_at is not None and stats.last_dead_letter_at >= since:
        health.worse(
            "degraded",
            f"{stats.dead_letters} message(s) dead-lettered so far, the last at {_at(stats.last_dead_letter_at)}",
        )
    if stats.mailbox_capacity and stats.mailbox_depth >= MAILBOX_FULL * stats.mailbox_capacity:
        health.worse("degraded", f"mailbox near its bound: {stats.mailbox_depth}/{stats.mailbox_capacity}")
    error_at = stats.last_error_at
    if error_at is not None and error_at >= since and (stats.last_ok_at is None or stats.last_ok_at < error_at):
        health.worse("degraded", f"its last message failed at {_at(error_at)}: {stats.last_error}")
    return health


def dependency_health(dep: DependencyStatus) -> Health:
    health = Health()
    if not dep.ok:
        since = f"working last at {_at(dep.last_ok_at)}" if dep.last_ok_at else "not working since the start"
        health.worse("failing", f"{dep.name}: {dep.detail or 'failing'} ({since})")
    return health


def module_health(
    spec: ModuleSpec,
    snapshot: SystemSnapshot,
    switches: SwitchState | None,
    registry: ModuleRegistry,
    *,
    window: timedelta = WINDOW,
) -> dict[str, object]:
    """One module's status with its reasons, and each of its actors'."""
    now = snapshot.now
    health = Health()
    by_name = {a.name: a for a in snapshot.actors}
    actors: list[dict[str, object]] = []
    stopped = registry.stopped_modules(switches.disabled) if switches is not None else set()
    if spec.name in stopped:
        if switches is not None and not switches.enabled(spec.name):
            row = switches.rows[spec.name]
            why = f": {row.reason}" if row.reason else ""
            health.worse("disabled", f"switched off by {row.changed_by} at {_at(row.changed_at)}{why}")
        else:
            off = [m for m in spec.needs if m in stopped]
            health.worse("disabled", f"stopped with {', '.join(off)}, which it needs")
    elif switches is not None and switches.worker_paused and spec.sending:
        row = switches.rows["worker"]
        health.worse("degraded", f"sending paused with the worker by {row.changed_by} at {_at(row.changed_at)}")
    for name in spec.actors:
        stats = by_name.get(name)
        if stats is None:
            actors.append({"name": name, "status": "absent", "reasons": ["not running in this process"]})
            continue
        found = actor_health(stats, now, window=window)
        actors.append({"name": name, "status": found.status, "reasons": found.reasons})
        if found.status in ("failing", "degraded") and health.status != "disabled":
            for reason in found.reasons:
                health.worse(found.status, f"{name}: {reason}")
    dependencies: list[dict[str, object]] = []
    for dep in snapshot.dependencies:
        owner = registry.module_of(dep.actor)
        if owner != spec.name and dep.name != "database":
            continue
        found = dependency_health(dep)
        dependencies.append(
            {"name": dep.name, "ok": dep.ok, "detail": dep.detail, "at": dep.at, "last_ok_at": dep.last_ok_at}
        )
        if found.status != "ok" and health.status != "disabled":
            health.worse(found.status, found.reasons[0])
    if snapshot.failure:
        health.worse("failing", f"the service is stopping after a failure: {snapshot.failure}")
    return {
        "name": spec.name,
        "status": health.status,
        "reasons": health.reasons,
        "actors": actors,
        "dependencies": dependencies,
    }


def readiness(
    snapshot: SystemSnapshot, modules: list[dict[str, object]], *, lease_held: bool = True
) -> tuple[bool, list[str]]:
    """Whether the service can do its job now, and if not, why (each reason a sentence)."""
    reasons: list[str] = []
    if snapshot.stopping:
        reasons.append("the service is stopping")
    if snapshot.failure:
        reasons.append(f"the service failed: {snapshot.failure}")
    if not lease_held:
        reasons.append("standby: another worker holds the lease")
    for module in modules:
        if module["status"] == "failing":
            said = module["reasons"]
            words = "; ".join(str(r) for r in said) if isinstance(said, list) else str(said)
            reasons.append(f"module {module['name']} is failing: {words}")
    for dep in snapshot.dependencies:
        if dep.name == "database" and not dep.ok:
            reasons.append(f"database: {dep.detail}")
    return not reasons, reasons
