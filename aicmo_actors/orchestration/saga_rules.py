"""The project saga's rules: its steps, what a fact does to a step, what a cancelled project
undoes. Pure: no database, no clock, no actor (`orchestration.projects` applies them in one
transaction each, `orchestration.saga` tells the modules).

A project runs its steps in order (`STEPS`). Each step is asked of the module that owns it
by a command carrying the step's idempotency key; the module answers with events. Asking
again is always safe (the module re-announces where it stands), which is how a saga
resumes after a kill: whatever was in flight is asked again.

Project states: ``running`` (a step is in progress), ``cancelling`` (its completed and
started steps are being undone, last first), ``delivered`` (every step is done: the client
is onboarded, the plan approved and the period's work delivered), ``compensated`` (every
step undone after a cancel or a failure). ``delivering`` is what a project whose plan was
approved before production existed said (migration 0012 moves such projects on to the
production step).

The ``production`` step is the period's whole delivery cycle: its owner, production, drives
each piece through quality control, the client's review and delivery (contracts/production.py)
and says the step is done when every piece is delivered.

Later periods. A monthly retainer delivers every period of its term (`periods`): the first
period is the approved plan's (steps ``strategy`` then ``production``); each later period `n`
adds two steps when its time comes, ``plan:n`` (strategy draws the period's calendar from the
approved plan, `PlanPeriod`) then ``production:n`` (`ProducePeriod` with ``period=n``). A period
begins `PLAN_AHEAD` before its first day (`plan_on`), whether or not the one before is fully
delivered (a piece stuck in review does not hold up the next month), so two periods' steps
may be in progress at once. The project is ``delivered`` when every period's production is
done; between periods it is ``running`` with no step in progress and the day of its next
period set (``next_period_on``). Undoing a period's plan has nothing to tell (a calendar
only): it is marked undone when the undoing ends; each production step is undone by its
own `CancelProduction` (production cancels the project's whole run the first time and says
so again after).

Renewals. A renewed contract (`ContractRenewed`, once per deal and number) adds its months to
the project's copy of the package's term (`renewed`): the saga begins the renewed periods on
their days like any other, and a ``delivered`` project runs again until they are delivered.

Step states: ``pending`` -> ``started`` (command told) -> ``waiting`` (the module waits for
a person, until a deadline) -> ``done``; undoing: ``compensating`` (its cancel told) ->
``compensated``; a step never started when the project is cancelled is ``skipped``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from aicmo_actors.gateways.calendar import add_months

#: The saga's first steps, in order (a later period adds ``plan:n`` and ``production:n``).
STEPS: tuple[str, ...] = ("onboarding", "strategy", "production")
#: The kind of step a later period's calendar is (``plan:2``, ``plan:3``...).
PLAN = "plan"
#: The actor that owns each kind of step.
OWNERS: dict[str, str] = {
    "onboarding": "onboarding.intake",
    "strategy": "strategy.planner",
    "production": "production.studio",
    PLAN: "strategy.planner",
}
#: How long before a later period's first day its steps begin (its first pieces are due a
#: turnaround after that day, and their work starts a turnaround before they are due).
PLAN_AHEAD = timedelta(days=7)
#: What the project's `step` says once every step above is done.
AFTER_LAST = "delivered"

RUNNING, CANCELLING, DELIVERED, COMPENSATED = "running", "cancelling", "delivered", "compensated"
#: The end state of projects finished before the production step existed (none is left after
#: migration 0012; kept so old rows read).
DELIVERING = "delivering"
PENDING, STARTED, WAITING, DONE = "pending", "started", "waiting", "done"
COMPENSATING, UNDONE, SKIPPED = "compensating", "compensated", "skipped"

PROJECT_STATES = (RUNNING, CANCELLING, DELIVERED, COMPENSATED)
STEP_STATES = (PENDING, STARTED, WAITING, DONE, COMPENSATING, UNDONE, SKIPPED)
#: Steps whose module is working on them (asked again when no answer came).
IN_PROGRESS = (STARTED, WAITING)

#: How long without an answer before a command is told again: a step just asked (the
#: module may have missed it), a step waiting for a person (its answer may have been lost
#: while the saga restarted), a compensation.
RESEND_STARTED = timedelta(hours=1)
RESEND_WAITING = timedelta(hours=6)
#: A step waits for a person for days or weeks (a period's production): it is told again after
#: as long as it has waited so far (6 h, 6 h, 12 h, 24 h), at most this. The module has said it
#: has the step (that is what waiting means) and announces its answer itself; asking again only
#: makes good an answer lost when the module crashed between its commit and its publish (a
#: restart of the saga asks every step at once). It was 12 h: the saga then asked each month-long
#: production step about 60 times a period, a third of a 10,000-lead quarter's re-tellings.
RESEND_WAITING_CAP = timedelta(days=2)
RESEND_COMPENSATING = timedelta(hours=1)


def step_name(kind: str, period: int) -> str:
    """A step's name: the kind itself in the first period, ``<kind>:<period>`` after it."""
    return kind if period == 1 else f"{kind}:{period}"


def kind_of(step: str) -> str:
    """ "production:3" -> "production"."""
    return step.partition(":")[0]


def period_of(step: str) -> int:
    """ "production:3" -> 3; a first-period step ("production", "strategy") -> 1."""
    number = step.partition(":")[2]
    return int(number) if number else 1


def owner(step: str) -> str:
    return OWNERS[kind_of(step)]


def periods(package: Mapping[str, Any]) -> int:
    """How many periods a project delivers: a monthly retainer one per `period_months` of its
    term (the last may be shorter, as its invoice is), any other package (one-off, milestones)
    one. `package` is the signed `PackageSpec` as JSON."""
    if package.get("billing") != "monthly":
        return 1
    term, each = int(package.get("term_months") or 12), int(package.get("period_months") or 1)
    return max(1, -(-term // max(each, 1)))


def renewed(package: Mapping[str, Any], months: int) -> dict[str, Any]:
    """The signed package with a renewal's `months` added to its term: the project keeps this
    copy, so `periods` and `period_start` count the renewed periods (a renewal adds whole
    periods to a term of whole periods: `cam`'s `renew_problem`)."""
    return {**package, "term_months": int(package.get("term_months") or 12) + months}


def periods_begun(steps: Iterable[str]) -> int:
    """How many periods a project's steps (their names) have begun: one production step each."""
    return sum(1 for name in steps if kind_of(name) == "production")


def period_start(start: date, package: Mapping[str, Any], period: int) -> date:
    """The first day of period `period` of a project that starts on `start`."""
    return add_months(start, (period - 1) * int(package.get("period_months") or 1))


def plan_on(start: date, package: Mapping[str, Any], period: int) -> date:
    """The day period `period`'s steps begin (`PLAN_AHEAD` before its first day)."""
    return period_start(start, package, period) - PLAN_AHEAD


def step_key(project_id: str, step: str) -> str:
    """The idempotency key of a project's step: the module records its effects under it."""
    return f"{project_id}:{step}"


def cancel_key(project_id: str, step: str) -> str:
    return f"{project_id}:{step}:cancel"


def next_step(step: str) -> str | None:
    """The step asked when `step` is done: the next of `STEPS`, a period's production after its
    plan; None after a production step (the next period begins on its day, not after it)."""
    kind, period = kind_of(step), period_of(step)
    if kind == PLAN:
        return step_name("production", period)
    if kind == "production":
        return None
    return STEPS[STEPS.index(step) + 1]


def to_undo(steps: Sequence[tuple[str, str]]) -> list[str]:
    """The steps a cancelled project undoes, last first (`steps`: name and state, in order):
    every step the module was asked to do (started, waiting or done), and those whose undoing
    is under way; never a period's plan (a calendar only, nothing outside the saga to undo)."""
    return [
        name
        for name, state in reversed(steps)
        if kind_of(name) != PLAN and state in (STARTED, WAITING, DONE, COMPENSATING)
    ]


def resend_due(state: str, sent_at: datetime | None, now: datetime, started_at: datetime | None = None) -> bool:
    """Whether a step's command (or its cancel) is told again now (`started_at`: when the step
    started, from which a waiting step's wait grows)."""
    if sent_at is None:
        return state in (STARTED, WAITING, COMPENSATING)
    wait = {STARTED: RESEND_STARTED, WAITING: RESEND_WAITING, COMPENSATING: RESEND_COMPENSATING}.get(state)
    if wait is None:
        return False
    if state == WAITING and started_at is not None:
        wait = min(max(RESEND_WAITING, sent_at - started_at), RESEND_WAITING_CAP)
    return now - sent_at >= wait


@dataclass(frozen=True)
class Fact:
    """What a module said of a project's step (from its event), as the saga records it."""

    project_id: str
    #: The kind of step ("production"); with `period`, the step is that period's.
    step: str
    #: "started" (the module has it, waits for a person until `deadline`), "done" (with
    #: `result`), "overdue" (the wait is past its deadline), "note" (something worth
    #: keeping in the history), "failed", "cancelled" (the step is undone).
    kind: str
    detail: str = ""
    deadline: datetime | None = None
    result: dict[str, Any] | None = None
    #: The period the fact is about (None: the step of that kind being undone, or the first).
    period: int | None = None


def apply_fact(project_state: str, step_state: str, fact: Fact) -> str | None:
    """The step's new state after `fact`, or None when the fact changes nothing (a repeat,
    or a late answer to a step that was cancelled meanwhile). Pure."""
    if fact.kind == "cancelled":
        return UNDONE if step_state == COMPENSATING else None
    if project_state != RUNNING:
        # A cancelled project takes no more progress: what finishes now is undone anyway.
        return None
    if fact.kind == "started":
        return WAITING if step_state in (STARTED, WAITING) else None
    if fact.kind == "done":
        return DONE if step_state in (STARTED, WAITING) else None
    return None
