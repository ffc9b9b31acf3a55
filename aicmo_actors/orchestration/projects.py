"""The project sagas' storage: one project per signed deal, its steps and its history.

Each public method is one transaction that applies `saga_rules` and says what the saga must
tell and publish next (`Outcome`); the step's `command_sent_at` is written in the same
transaction as the decision to tell it, so a saga killed before telling asks again when it
comes back (`in_progress`), and the module, keyed by the step's idempotency key, does its
effects once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.orchestration import saga_rules as rules
from aicmo_actors.orchestration.tables import orchestration_project_events as events_t
from aicmo_actors.orchestration.tables import orchestration_projects as projects_t
from aicmo_actors.orchestration.tables import orchestration_steps as steps_t
from aicmo_actors.storage.changes import ReadCache
from aicmo_actors.storage.work import Also, run_read, run_write, with_also


@dataclass(frozen=True)
class Command:
    """Tell the owner of `step` to do it (or, `cancel`, to undo it) for this project."""

    project_id: str
    step: str
    cancel: bool
    key: str
    client: dict[str, Any]
    package: dict[str, Any]
    start: date
    brief: dict[str, str]
    #: The period's calendar: the approved plan's version and items (production's input), or
    #: for a later period its ``plan:n`` step's result.
    plan: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    #: The period the step is of (1: the first steps).
    period: int = 1


@dataclass
class Outcome:
    """What a transaction decided: commands to tell, step changes and an end to publish, an
    alert for a person."""

    project_id: str
    commands: list[Command] = field(default_factory=list)
    changes: list[tuple[str, str]] = field(default_factory=list)
    finished: tuple[str, str] | None = None
    alert: tuple[str, str, str] | None = None  # (idempotency key, summary, text)

    @property
    def empty(self) -> bool:
        return not (self.commands or self.changes or self.finished or self.alert)


@dataclass(frozen=True)
class Renewed:
    """A renewal applied to a deal's project (`applied` False: the project was cancelled)."""

    project_id: str
    applied: bool
    detail: str
    outcome: Outcome
    #: False: the renewal was applied before (this is a repeat).
    first: bool = True


class ProjectError(LookupError):
    """No such project, or a request that does not fit its state (one line, for people)."""


def _log(conn: Connection, project_id: str, now: datetime, step: str, state: str, detail: str = "") -> None:
    conn.execute(events_t.insert().values(project_id=project_id, at=now, step=step, state=state, detail=detail[:2000]))


def _steps(conn: Connection, project_id: str) -> dict[str, Any]:
    """A project's steps by name, in their order."""
    rows = conn.execute(sa.select(steps_t).where(steps_t.c.project_id == project_id).order_by(steps_t.c.position)).all()
    return {row.step: row for row in rows}


def _add_step(conn: Connection, project_id: str, step: str, position: int) -> None:
    conn.execute(
        steps_t.insert().values(
            project_id=project_id,
            step=step,
            position=position,
            state=rules.PENDING,
            idempotency_key=rules.step_key(project_id, step),
            commands_sent=0,
        )
    )


def _command(project: Any, steps: dict[str, Any], step: str, *, cancel: bool) -> Command:
    onboarding = steps.get("onboarding")
    brief = dict(onboarding.result or {}) if onboarding is not None and onboarding.result else {}
    period = rules.period_of(step)
    # The period's calendar: the approved plan for the first, the period's plan step after.
    source = steps.get("strategy" if period == 1 else rules.step_name(rules.PLAN, period))
    plan = dict(source.result or {}) if source is not None and source.result else {}
    return Command(
        project_id=project.id,
        step=step,
        cancel=cancel,
        key=rules.cancel_key(project.id, step) if cancel else rules.step_key(project.id, step),
        client=dict(project.client),
        package=dict(project.package),
        start=project.start_date,
        brief=brief,
        plan=plan,
        reason=(project.cancel_reason or "") if cancel else "",
        period=period,
    )


def _set_step(conn: Connection, project_id: str, step: str, now: datetime, **values: Any) -> None:
    conn.execute(steps_t.update().where(steps_t.c.project_id == project_id, steps_t.c.step == step).values(**values))


def _set_project(conn: Connection, project_id: str, now: datetime, **values: Any) -> None:
    conn.execute(projects_t.update().where(projects_t.c.id == project_id).values(updated_at=now, **values))


def _ask(conn: Connection, project: Any, step: str, now: datetime, outcome: Outcome, *, cancel: bool) -> None:
    """Decide to tell `step`'s command (or its cancel): recorded, then told by the saga."""
    values: dict[str, Any] = {"command_sent_at": now, "commands_sent": steps_t.c.commands_sent + 1}
    if cancel:
        values["state"] = rules.COMPENSATING
    else:
        values.update(state=rules.STARTED, started_at=now)
    _set_step(conn, project.id, step, now, **values)
    state = rules.COMPENSATING if cancel else rules.STARTED
    _log(conn, project.id, now, step, state)
    outcome.changes.append((step, state))
    outcome.commands.append(_command(project, _steps(conn, project.id), step, cancel=cancel))


def _undo_next(conn: Connection, project: Any, now: datetime, outcome: Outcome) -> None:
    """Ask for the next undoing, last step first; when none is left, the project is compensated."""
    steps = _steps(conn, project.id)
    states = {name: row.state for name, row in steps.items()}
    if any(state == rules.COMPENSATING for state in states.values()):
        return
    remaining = rules.to_undo(list(states.items()))
    if remaining:
        _ask(conn, project, remaining[0], now, outcome, cancel=True)
        _set_project(conn, project.id, now, step=remaining[0])
        return
    for name, state in states.items():
        if state == rules.PENDING:
            _set_step(conn, project.id, name, now, state=rules.SKIPPED)
        elif rules.kind_of(name) == rules.PLAN and state in (rules.STARTED, rules.WAITING, rules.DONE):
            # A period's calendar: nothing outside the saga to undo.
            _set_step(conn, project.id, name, now, state=rules.UNDONE, compensated_at=now)
            _log(conn, project.id, now, name, rules.UNDONE, "a calendar only: nothing to undo")
            outcome.changes.append((name, rules.UNDONE))
    _set_project(conn, project.id, now, state=rules.COMPENSATED, finished_at=now)
    _log(conn, project.id, now, "project", rules.COMPENSATED, project.cancel_reason or "")
    outcome.finished = (rules.COMPENSATED, project.cancel_reason or "")


def _begin_cancel(conn: Connection, project: Any, now: datetime, outcome: Outcome) -> None:
    _set_project(conn, project.id, now, state=rules.CANCELLING, next_period_on=None)
    _log(conn, project.id, now, "project", rules.CANCELLING, project.cancel_reason or "")
    project = conn.execute(sa.select(projects_t).where(projects_t.c.id == project.id)).one()
    _undo_next(conn, project, now, outcome)


def _step_of(steps: dict[str, Any], fact: rules.Fact) -> str:
    """The step a fact is about: its period's, or (an undoing confirmed, which names no
    period) the step of its kind being undone."""
    if fact.period is not None:
        return rules.step_name(fact.step, fact.period)
    if fact.kind == "cancelled":
        for name, row in steps.items():
            if rules.kind_of(name) == fact.step and row.state == rules.COMPENSATING:
                return name
    return fact.step


def _all_delivered(conn: Connection, project: Any) -> bool:
    """Every step done, and every period of the term begun."""
    steps = _steps(conn, project.id)
    every_period = rules.periods_begun(steps) >= rules.periods(project.package)
    return every_period and all(row.state == rules.DONE for row in steps.values())


def _begin_period(conn: Connection, project: Any, today: date, now: datetime, outcome: Outcome) -> None:
    """Begin the project's next period if its day has come (its plan step asked), else note
    the day it comes; nothing when every period has begun."""
    steps = _steps(conn, project.id)
    period = 1 + rules.periods_begun(steps)
    total = rules.periods(project.package)
    if period > total:
        _set_project(conn, project.id, now, next_period_on=None)
        return
    day = rules.plan_on(project.start_date, project.package, period)
    if day > today:
        _set_project(conn, project.id, now, next_period_on=day)
        return
    last = max((row.position for row in steps.values()), default=-1)
    plan = rules.step_name(rules.PLAN, period)
    _add_step(conn, project.id, plan, last + 1)
    _add_step(conn, project.id, rules.step_name("production", period), last + 2)
    first = rules.period_start(project.start_date, project.package, period)
    _log(conn, project.id, now, "project", "period", f"period {period} of {total} begins on {first.isoformat()}")
    following = rules.plan_on(project.start_date, project.package, period + 1) if period < total else None
    _set_project(conn, project.id, now, step=plan, next_period_on=following)
    _ask(conn, project, plan, now, outcome, cancel=False)


class ProjectsRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.kept = ReadCache(engine)  # the tick's reads of state (storage.changes)

    async def open(
        self,
        *,
        project_id: str,
        deal_id: int,
        client: dict[str, Any],
        package: dict[str, Any],
        start: date,
        now: datetime,
    ) -> tuple[str, Outcome]:
        """The project of this deal: opened now (its first step asked) unless it exists."""

        def work(conn: Connection) -> tuple[str, Outcome]:
            found = conn.execute(sa.select(projects_t.c.id).where(projects_t.c.deal_id == deal_id)).scalar()
            if found is not None:
                return str(found), Outcome(str(found))
            conn.execute(
                projects_t.insert().values(
                    id=project_id,
                    deal_id=deal_id,
                    client_ref=str(client.get("client_ref", "")),
                    company=str(client.get("company", ""))[:300],
                    client=client,
                    package_name=str(package.get("name", "")),
                    package=package,
                    start_date=start,
                    state=rules.RUNNING,
                    step=rules.STEPS[0],
                    created_at=now,
                    updated_at=now,
                )
            )
            for position, step in enumerate(rules.STEPS):
                _add_step(conn, project_id, step, position)
            _log(conn, project_id, now, "project", rules.RUNNING, f"opened for deal {deal_id}")
            outcome = Outcome(project_id)
            project = conn.execute(sa.select(projects_t).where(projects_t.c.id == project_id)).one()
            _ask(conn, project, rules.STEPS[0], now, outcome, cancel=False)
            return project_id, outcome

        return await run_write(self.engine, work)

    async def record(self, fact: rules.Fact, now: datetime) -> Outcome:
        """What a module said of a step, applied (a repeat changes nothing)."""

        def work(conn: Connection) -> Outcome:
            outcome = Outcome(fact.project_id)
            project = conn.execute(sa.select(projects_t).where(projects_t.c.id == fact.project_id)).first()
            if project is None:
                return outcome
            steps = _steps(conn, project.id)
            name = _step_of(steps, fact)
            step = steps.get(name)
            if step is None:
                return outcome
            if fact.kind == "overdue":
                if step.overdue_at is None and step.state in rules.IN_PROGRESS and project.state == rules.RUNNING:
                    _set_step(conn, project.id, name, now, overdue_at=now)
                    _log(conn, project.id, now, name, "overdue", fact.detail)
                    outcome.alert = (
                        f"{project.id}:{name}:overdue",
                        f"{project.company}: {name} is overdue",
                        fact.detail or f"The {name} step of {project.company}'s project waits past its deadline.",
                    )
                return outcome
            if fact.kind == "note":
                _log(conn, project.id, now, name, step.state, fact.detail)
                return outcome
            if fact.kind == "failed":
                if project.state == rules.RUNNING:
                    _set_project(conn, project.id, now, cancel_requested_at=now, cancel_reason=f"failed: {fact.detail}")
                    _log(conn, project.id, now, name, "failed", fact.detail)
                    project = conn.execute(sa.select(projects_t).where(projects_t.c.id == project.id)).one()
                    _begin_cancel(conn, project, now, outcome)
                return outcome
            new = rules.apply_fact(project.state, step.state, fact)
            if new is None:
                return outcome
            if new == rules.WAITING:
                if step.state == rules.WAITING and step.deadline_at == fact.deadline:
                    if step.waiting_for != fact.detail:  # progress (production's "3 of 8 delivered")
                        _set_step(conn, project.id, name, now, waiting_for=fact.detail)
                    return outcome  # the module said again where it stands
                _set_step(conn, project.id, name, now, state=new, waiting_for=fact.detail, deadline_at=fact.deadline)
                _log(conn, project.id, now, name, new, fact.detail)
                outcome.changes.append((name, new))
            elif new == rules.DONE:
                _set_step(conn, project.id, name, now, state=new, done_at=now, result=fact.result)
                _log(conn, project.id, now, name, new, fact.detail)
                outcome.changes.append((name, new))
                following = rules.next_step(name)
                if following is not None:
                    if name == "strategy" and rules.periods(project.package) > 1:
                        plan_on = rules.plan_on(project.start_date, project.package, 2)
                        _set_project(conn, project.id, now, step=following, next_period_on=plan_on)
                    else:
                        _set_project(conn, project.id, now, step=following)
                    _ask(conn, project, following, now, outcome, cancel=False)
                elif _all_delivered(conn, project):
                    _set_project(
                        conn,
                        project.id,
                        now,
                        state=rules.DELIVERED,
                        step=rules.AFTER_LAST,
                        finished_at=now,
                        next_period_on=None,
                    )
                    _log(conn, project.id, now, "project", rules.DELIVERED)
                    outcome.finished = (rules.DELIVERED, "")
            elif new == rules.UNDONE:
                _set_step(conn, project.id, name, now, state=new, compensated_at=now)
                _log(conn, project.id, now, name, new, fact.detail)
                outcome.changes.append((name, new))
                _undo_next(conn, project, now, outcome)
            return outcome

        return await run_write(self.engine, work)

    async def renew(self, deal_id: int, number: int, months: int, now: datetime) -> Renewed | None:
        """Apply the deal's renewal `number` (`months` more): its months added to the project's
        term, so the saga begins the renewed periods on their days; a delivered project runs
        again. Once per number (a repeat says again what was done); None when the deal has no
        project yet or an earlier renewal is not applied yet (asked again later)."""

        def work(conn: Connection) -> Renewed | None:
            project = conn.execute(sa.select(projects_t).where(projects_t.c.deal_id == deal_id)).first()
            if project is None or number > project.renewals + 1:
                return None
            outcome = Outcome(project.id)
            if number <= project.renewals:  # said again: what was decided then
                said = conn.execute(
                    sa.select(events_t.c.detail)
                    .where(
                        events_t.c.project_id == project.id,
                        events_t.c.step == "project",
                        events_t.c.state == "renewal",
                        events_t.c.detail.like(f"renewal {number}:%"),
                    )
                    .limit(1)
                ).scalar()
                detail = str(said or f"renewal {number}:")
                return Renewed(project.id, " not applied" not in detail, detail, outcome, first=False)
            if project.state not in (rules.RUNNING, rules.DELIVERED) or project.cancel_requested_at is not None:
                detail = f"renewal {number}: not applied, the project is {project.state} (cancelled)"
                _set_project(conn, project.id, now, renewals=number)
                _log(conn, project.id, now, "project", "renewal", detail)
                return Renewed(project.id, False, detail, outcome)
            package = rules.renewed(project.package, months)
            before, total = rules.periods(project.package), rules.periods(package)
            values: dict[str, Any] = {"renewals": number, "package": package}
            steps = _steps(conn, project.id)
            strategy = steps.get("strategy")
            if strategy is not None and strategy.state == rules.DONE and project.next_period_on is None:
                # Every period of the term before had begun: the next one is a renewed one.
                values["next_period_on"] = rules.plan_on(project.start_date, package, 1 + rules.periods_begun(steps))
            if project.state == rules.DELIVERED:
                last = max(steps.values(), key=lambda row: row.position)
                values.update(state=rules.RUNNING, step=last.step, finished_at=None)
                _log(conn, project.id, now, "project", rules.RUNNING, "renewed: runs again for the renewed periods")
            _set_project(conn, project.id, now, **values)
            detail = (
                f"renewal {number}: {months} more month{'s' if months != 1 else ''}, periods {before + 1} to {total}"
            )
            _log(conn, project.id, now, "project", "renewal", detail)
            return Renewed(project.id, True, detail, outcome)

        return await run_write(self.engine, work)

    async def request_cancel(
        self, project_id: str, *, reason: str, by: str, now: datetime, also: Also[None] | None = None
    ) -> None:
        """Ask for a project to be cancelled (the saga begins undoing it on its next tick).
        `also(conn, None)`: in the same transaction (its audit row), when asked again too."""

        def work(conn: Connection) -> None:
            project = conn.execute(sa.select(projects_t).where(projects_t.c.id == project_id)).first()
            if project is None:
                raise ProjectError(f"no project {project_id} (python run.py projects lists them)")
            if project.state != rules.RUNNING:
                raise ProjectError(f"project {project_id} is {project.state}: only a running project can be cancelled")
            if project.cancel_requested_at is not None:
                return
            _set_project(conn, project_id, now, cancel_requested_at=now, cancel_reason=reason, cancelled_by=by)
            _log(conn, project_id, now, "project", "cancel requested", f"by {by}: {reason}")

        await run_write(self.engine, with_also(work, also))

    async def begin_cancels(self, now: datetime) -> list[Outcome]:
        """Running projects someone asked to cancel: undoing begins (last step first)."""

        asked = sa.select(projects_t.c.id).where(
            projects_t.c.state == rules.RUNNING, projects_t.c.cancel_requested_at.is_not(None)
        )

        def due(conn: Connection) -> bool:
            return conn.execute(asked.limit(1)).first() is not None

        def work(conn: Connection) -> list[Outcome]:
            rows = conn.execute(
                sa.select(projects_t).where(
                    projects_t.c.state == rules.RUNNING, projects_t.c.cancel_requested_at.is_not(None)
                )
            ).all()
            out = []
            for project in rows:
                outcome = Outcome(project.id)
                _begin_cancel(conn, project, now, outcome)
                out.append(outcome)
            return out

        return await self.kept.write_if("cancels_asked", due, bool, work, [])

    async def begin_periods(self, now: datetime) -> list[Outcome]:
        """Running projects whose next period's day has come: the period begins (its plan asked)."""

        waiting = sa.select(projects_t.c.id, projects_t.c.next_period_on).where(
            projects_t.c.state == rules.RUNNING,
            projects_t.c.cancel_requested_at.is_(None),
            projects_t.c.next_period_on.is_not(None),
        )
        today = now.date()

        def due(rows: Sequence[Any]) -> bool:
            return any(row.next_period_on <= today for row in rows)

        def work(conn: Connection) -> list[Outcome]:
            out = []
            for row in conn.execute(waiting.where(projects_t.c.next_period_on <= today).order_by(projects_t.c.id)):
                project = conn.execute(sa.select(projects_t).where(projects_t.c.id == row.id)).one()
                outcome = Outcome(project.id)
                _begin_period(conn, project, today, now, outcome)
                out.append(outcome)
            return out

        # The projects waiting for a period are kept between ticks; whether one is due is the clock's.
        return await self.kept.write_if(
            "periods_waiting", lambda conn: tuple(conn.execute(waiting).all()), due, work, []
        )

    async def asks_due(self, now: datetime, *, everything: bool = False) -> list[Command]:
        """Commands to tell again: every step in progress or being undone whose module has not
        answered for a while (`everything`: all of them, as when the saga starts)."""

        in_flight = (
            sa.select(steps_t, projects_t.c.state.label("project_state"))
            .join(projects_t, projects_t.c.id == steps_t.c.project_id)
            .where(steps_t.c.state.in_((*rules.IN_PROGRESS, rules.COMPENSATING)))
            .order_by(steps_t.c.id)
        )

        def due(flying: Sequence[Any]) -> bool:
            return any(
                row.project_state in (rules.RUNNING, rules.CANCELLING)
                and (everything or rules.resend_due(row.state, row.command_sent_at, now, row.started_at))
                for row in flying
            )

        def work(conn: Connection) -> list[Command]:
            rows = conn.execute(in_flight).all()
            out = []
            for row in rows:
                if row.project_state not in (rules.RUNNING, rules.CANCELLING):
                    continue
                if not everything and not rules.resend_due(row.state, row.command_sent_at, now, row.started_at):
                    continue
                project = conn.execute(sa.select(projects_t).where(projects_t.c.id == row.project_id)).one()
                _set_step(
                    conn, project.id, row.step, now, command_sent_at=now, commands_sent=steps_t.c.commands_sent + 1
                )
                out.append(
                    _command(project, _steps(conn, project.id), row.step, cancel=row.state == rules.COMPENSATING)
                )
            return out

        # The steps in flight are kept between ticks (`storage.changes`); whether one is due is the clock's.
        return await self.kept.write_if("in_flight", lambda conn: tuple(conn.execute(in_flight).all()), due, work, [])

    # -- reading -------------------------------------------------------------------------------------
    async def page(self, *, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Projects, newest first: id, company, package, state, step, its wait and deadline."""

        def work(conn: Connection) -> list[dict[str, Any]]:
            query = sa.select(projects_t).order_by(projects_t.c.created_at.desc(), projects_t.c.id).limit(limit)
            if state is not None:
                query = query.where(projects_t.c.state == state)
            out = []
            for project in conn.execute(query).all():
                step = _steps(conn, project.id).get(project.step)
                out.append(
                    {
                        "id": project.id,
                        "company": project.company,
                        "package": project.package_name,
                        "state": project.state,
                        "step": project.step,
                        "step_state": step.state if step is not None else None,
                        "waiting_for": step.waiting_for if step is not None else None,
                        "deadline_at": step.deadline_at if step is not None else None,
                        "overdue": step is not None and step.overdue_at is not None,
                        "start": project.start_date,
                        "created_at": project.created_at,
                    }
                )
            return out

        return await run_read(self.engine, work)

    async def get(self, project_id: str) -> dict[str, Any]:
        """One project whole: the project, its steps and its history (a unique prefix of the id
        is enough)."""

        def work(conn: Connection) -> dict[str, Any]:
            matches = conn.execute(
                sa.select(projects_t).where(projects_t.c.id.like(_prefix(project_id) + "%")).limit(2)
            ).all()
            if not matches:
                raise ProjectError(f"no project {project_id!r} (python run.py projects lists them)")
            if len(matches) > 1:
                raise ProjectError(f"{project_id!r} is the start of several projects' ids: give more of it")
            project = matches[0]
            steps = sorted(_steps(conn, project.id).values(), key=lambda row: row.position)
            history = conn.execute(
                sa.select(events_t).where(events_t.c.project_id == project.id).order_by(events_t.c.id)
            ).all()
            return {
                "project": dict(project._mapping),
                "steps": [dict(row._mapping) for row in steps],
                "history": [dict(row._mapping) for row in history],
            }

        return await run_read(self.engine, work)

    async def deal_ids(self) -> Sequence[int]:
        query = sa.select(projects_t.c.deal_id).order_by(projects_t.c.deal_id)
        return await run_read(self.engine, lambda conn: [int(v) for v in conn.execute(query).scalars()])


def _prefix(text: str) -> str:
    """A project id's prefix as given, with LIKE's wildcards taken literally (ids have none)."""
    cleaned = "".join(c for c in text.strip().lower() if c in "0123456789abcdef-")
    if not cleaned:
        raise ProjectError(f"{text!r} is not a project id (python run.py projects lists them)")
    return cleaned
