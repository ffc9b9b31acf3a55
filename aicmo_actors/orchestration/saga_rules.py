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

Step states: ``pending`` -> ``started`` (command told) -> ``waiting`` (the module waits for
a person, until a deadline) -> ``done``; undoing: ``compensating`` (its cancel told) ->
``compensated``; a step never started when the project is cancelled is ``skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: The saga's steps, in order, and the actor that owns each.
STEPS: tuple[str, ...] = ("onboarding", "strategy", "production")
OWNERS: dict[str, str] = {
    "onboarding": "onboarding.intake",
    "strategy": "strategy.planner",
    "production": "production.studio",
}
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
RESEND_COMPENSATING = timedelta(hours=1)


def step_key(project_id: str, step: str) -> str:
    """The idempotency key of a project's step: the module records its effects under it."""
    return f"{project_id}:{step}"


def cancel_key(project_id: str, step: str) -> str:
    return f"{project_id}:{step}:cancel"


def next_step(step: str) -> str | None:
    """The step after `step`, None after the last one."""
    position = STEPS.index(step)
    return STEPS[position + 1] if position + 1 < len(STEPS) else None


def to_undo(states: dict[str, str]) -> list[str]:
    """The steps a cancelled project undoes, last first: every step the module was asked to
    do (started, waiting or done), and those whose undoing is under way."""
    return [step for step in reversed(STEPS) if states.get(step) in (STARTED, WAITING, DONE, COMPENSATING)]


def resend_due(state: str, sent_at: datetime | None, now: datetime) -> bool:
    """Whether a step's command (or its cancel) is told again now."""
    if sent_at is None:
        return state in (STARTED, WAITING, COMPENSATING)
    wait = {STARTED: RESEND_STARTED, WAITING: RESEND_WAITING, COMPENSATING: RESEND_COMPENSATING}.get(state)
    return wait is not None and now - sent_at >= wait


@dataclass(frozen=True)
class Fact:
    """What a module said of a project's step (from its event), as the saga records it."""

    project_id: str
    step: str
    #: "started" (the module has it, waits for a person until `deadline`), "done" (with
    #: `result`), "overdue" (the wait is past its deadline), "note" (something worth
    #: keeping in the history), "failed", "cancelled" (the step is undone).
    kind: str
    detail: str = ""
    deadline: datetime | None = None
    result: dict[str, Any] | None = None


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
