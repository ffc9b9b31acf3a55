"""`orchestration.saga`: runs each client project's saga (see `saga_rules`).

It opens a project for each `ClientSigned` (once per deal, and answers `ProjectOpened` every
time, so CAM stops announcing the deal), extends it for each `ContractRenewed` (once per deal
and number, answering `RenewalApplied` every time), tells each step's owner its command, records what
the modules answer, and undoes a cancelled or failed project's steps last first. Every
decision is written (`ProjectsRepo`, one transaction each) before anything is told or
published; at start, and on ticks for steps whose module has been quiet for a while, the
commands in flight are told again (the modules do their effects once per idempotency key
and re-announce where they stand), so a saga killed at any instant resumes where it was.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aicmo_actors.orchestration import saga_rules as rules
from aicmo_actors.orchestration.projects import Command, Outcome, ProjectsRepo
from aicmo_actors.runtime import Actor
from aicmo_actors.runtime.system import ActorNotFound
from contracts.base import Message
from contracts.cam import AlertRequested, ClientSigned, ContractRenewed
from contracts.clients import ClientInfo
from contracts.onboarding import (
    CancelOnboarding,
    IntakeReplyReceived,
    OnboardingCancelled,
    OnboardingCompleted,
    OnboardingFailed,
    OnboardingOverdue,
    OnboardingStarted,
    StartOnboarding,
)
from contracts.orchestration import ProjectFinished, ProjectOpened, ProjectStepChanged, RenewalApplied
from contracts.packages import PackageSpec
from contracts.production import (
    CancelProduction,
    ItemLate,
    PeriodDelivered,
    ProducePeriod,
    ProductionCancelled,
    ProductionFailed,
    ProductionStarted,
)
from contracts.runtime import Tick
from contracts.strategy import (
    CancelStrategy,
    DraftStrategy,
    PeriodPlanned,
    PlanApproved,
    PlanChangesRequested,
    PlannedItem,
    PlanOverdue,
    PlanPeriod,
    PlanSent,
    StrategyCancelled,
    StrategyFailed,
)

SAGA = "orchestration.saga"
ALERTS = "cam.alerts"

ModuleEvent = (
    OnboardingStarted
    | OnboardingCompleted
    | OnboardingOverdue
    | OnboardingCancelled
    | OnboardingFailed
    | IntakeReplyReceived
    | PlanSent
    | PlanApproved
    | PlanChangesRequested
    | PlanOverdue
    | PeriodPlanned
    | StrategyCancelled
    | StrategyFailed
    | ProductionStarted
    | PeriodDelivered
    | ItemLate
    | ProductionCancelled
    | ProductionFailed
)
SagaMessage = Tick | ClientSigned | ContractRenewed | ModuleEvent


def fact_of(event: ModuleEvent) -> rules.Fact:
    """A module's event as the fact the saga records. Pure."""
    pid = str(event.project_id)
    match event:
        case OnboardingStarted():
            return rules.Fact(pid, "onboarding", "started", event.waiting_for, event.deadline)
        case OnboardingCompleted():
            return rules.Fact(pid, "onboarding", "done", "intake answered", result=dict(event.brief))
        case OnboardingOverdue():
            detail = f"no intake answers after {event.reminders_sent} reminder(s): call the client"
            return rules.Fact(pid, "onboarding", "overdue", detail)
        case OnboardingCancelled():
            return rules.Fact(pid, "onboarding", "cancelled", "intake link revoked, reminders stopped")
        case OnboardingFailed():
            return rules.Fact(pid, "onboarding", "failed", event.reason)
        case IntakeReplyReceived():
            return rules.Fact(pid, "onboarding", "note", f"the client answered by email ({event.inbound_ref}): read it")
        case PlanSent():
            return rules.Fact(pid, "strategy", "started", f"approval of plan version {event.version}", event.deadline)
        case PlanApproved():
            result = {
                "version": str(event.version),
                "deliverables": str(event.deliverables),
                "items": [item.model_dump(mode="json") for item in event.items],
            }
            return rules.Fact(pid, "strategy", "done", f"plan version {event.version} approved", result=result)
        case PlanChangesRequested():
            return rules.Fact(pid, "strategy", "note", f"changes asked to version {event.version}: {event.comments}")
        case PlanOverdue():
            return rules.Fact(pid, "strategy", "overdue", f"plan version {event.version} not answered: call the client")
        case StrategyCancelled():
            return rules.Fact(pid, "strategy", "cancelled", "plan withdrawn")
        case StrategyFailed():
            return rules.Fact(pid, "strategy", "failed", event.reason)
        case PeriodPlanned():
            calendar: dict[str, Any] = {
                "version": str(event.version),
                "items": [item.model_dump(mode="json") for item in event.items],
            }
            detail = f"period {event.period}: {len(event.items)} items planned"
            return rules.Fact(pid, rules.PLAN, "done", detail, result=calendar, period=event.period)
        case ProductionStarted():
            return rules.Fact(pid, "production", "started", event.waiting_for, event.deadline, period=event.period)
        case PeriodDelivered():
            delivered: dict[str, Any] = {"period": event.period, "items": event.items}
            detail = f"period {event.period}: {event.items} items delivered"
            return rules.Fact(pid, "production", "done", detail, result=delivered, period=event.period)
        case ItemLate():
            return rules.Fact(
                pid, "production", "note", f"item {event.item_id} is late (due {event.due}, {event.state})"
            )
        case ProductionCancelled():
            return rules.Fact(pid, "production", "cancelled", "work stopped, reviews withdrawn, deliveries cancelled")
        case ProductionFailed():
            return rules.Fact(pid, "production", "failed", event.reason)
    raise TypeError(f"not a module event: {type(event).__name__}")  # pragma: no cover


def command_message(command: Command) -> tuple[str, Message]:
    """The actor to tell and what. Pure."""
    pid = uuid.UUID(command.project_id)
    owner, kind = rules.owner(command.step), rules.kind_of(command.step)
    if command.cancel:
        cancel = {"onboarding": CancelOnboarding, "strategy": CancelStrategy, "production": CancelProduction}[kind]
        return owner, cancel(project_id=pid, idempotency_key=command.key, reason=command.reason or "cancelled")
    client = ClientInfo.model_validate(command.client)
    package = PackageSpec.model_validate(command.package)
    if kind == rules.PLAN:
        return owner, PlanPeriod(
            project_id=pid,
            idempotency_key=command.key,
            client=client,
            package=package,
            period=command.period,
            start=rules.period_start(command.start, command.package, command.period),
        )
    if command.step == "onboarding":
        return owner, StartOnboarding(
            project_id=pid, idempotency_key=command.key, client=client, package=package, start=command.start
        )
    if command.step == "strategy":
        return owner, DraftStrategy(
            project_id=pid,
            idempotency_key=command.key,
            client=client,
            package=package,
            brief=command.brief,
            start=command.start,
        )
    return owner, ProducePeriod(
        project_id=pid,
        idempotency_key=command.key,
        client=client,
        package=package,
        brief=command.brief,
        plan_version=int(command.plan.get("version") or 0),
        items=tuple(PlannedItem.model_validate(item) for item in command.plan.get("items") or ()),
        period=command.period,
    )


class Saga(Actor[SagaMessage]):
    subscribes = (
        Tick,
        ClientSigned,
        ContractRenewed,
        OnboardingStarted,
        OnboardingCompleted,
        OnboardingOverdue,
        OnboardingCancelled,
        OnboardingFailed,
        IntakeReplyReceived,
        PlanSent,
        PlanApproved,
        PlanChangesRequested,
        PlanOverdue,
        PeriodPlanned,
        StrategyCancelled,
        StrategyFailed,
        ProductionStarted,
        PeriodDelivered,
        ItemLate,
        ProductionCancelled,
        ProductionFailed,
    )

    def __init__(self, repo: ProjectsRepo) -> None:
        self.repo = repo

    async def on_start(self) -> None:
        # Whatever was in flight when the last incarnation died is asked again.
        for command in await self.repo.asks_due(self._now(), everything=True):
            await self._tell(command)

    def _now(self) -> datetime:
        return self.ctx.clock.now()

    async def receive(self, message: SagaMessage) -> None:
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, ClientSigned):
            await self._signed(message)
        elif isinstance(message, ContractRenewed):
            await self._renewed(message)
        else:
            fact = fact_of(message)
            outcome = await self.repo.record(fact, self._now())
            if isinstance(message, IntakeReplyReceived):
                outcome.alert = (
                    f"{fact.project_id}:onboarding:reply:{message.inbound_ref}",
                    "A client answered the intake by email",
                    fact.detail,
                )
            await self._carry_out(outcome)

    async def _signed(self, message: ClientSigned) -> None:
        # Named by its deal (and client): the same on every announcement and in every
        # incarnation (a random id from the actor's seeded source would repeat after a restart).
        fresh = str(uuid.uuid5(uuid.NAMESPACE_URL, f"aicmo:project:{message.client.client_ref}:{message.deal_id}"))
        project_id, outcome = await self.repo.open(
            project_id=fresh,
            deal_id=message.deal_id,
            client=message.client.model_dump(mode="json"),
            package=message.package.model_dump(mode="json"),
            start=message.start,
            now=self._now(),
        )
        if outcome.commands:
            self.ctx.log.info("project opened", project_id=project_id, deal_id=message.deal_id)
        await self._carry_out(outcome)
        await self.ctx.publish(ProjectOpened(project_id=uuid.UUID(project_id), deal_id=message.deal_id))

    async def _renewed(self, message: ContractRenewed) -> None:
        done = await self.repo.renew(message.deal_id, message.number, message.months, self._now())
        if done is None:
            return  # no project yet, or an earlier renewal first: CAM announces it again
        if done.first:
            self.ctx.log.info(
                "contract renewed", project_id=done.project_id, number=message.number, applied=done.applied
            )
        await self._carry_out(done.outcome)
        await self.ctx.publish(
            RenewalApplied(
                deal_id=message.deal_id,
                number=message.number,
                project_id=uuid.UUID(done.project_id),
                applied=done.applied,
                detail=done.detail,
            )
        )

    async def _tick(self) -> None:
        now = self._now()
        for outcome in await self.repo.begin_cancels(now):
            await self._carry_out(outcome)
        for outcome in await self.repo.begin_periods(now):
            await self._carry_out(outcome)
        for command in await self.repo.asks_due(now):
            await self._tell(command)

    async def _carry_out(self, outcome: Outcome) -> None:
        pid = uuid.UUID(outcome.project_id)
        for step, state in outcome.changes:
            await self.ctx.publish(ProjectStepChanged(project_id=pid, step=step, state=state))
        for command in outcome.commands:
            await self._tell(command)
        if outcome.alert is not None:
            key, summary, text = outcome.alert
            await self._tell_actor(
                ALERTS, AlertRequested(idempotency_key=key, kind="project", summary=summary, text=text)
            )
        if outcome.finished is not None:
            state, reason = outcome.finished
            await self.ctx.publish(ProjectFinished(project_id=pid, outcome=state, reason=reason))

    async def _tell(self, command: Command) -> None:
        owner, message = command_message(command)
        await self._tell_actor(owner, message)

    async def _tell_actor(self, name: str, message: Any) -> None:
        try:
            ref = self.ctx.ref(name, type(message))
        except ActorNotFound:
            # Not running in this process (a module not wired): asked again later.
            self.ctx.log.warning("no actor to tell", actor=name, message=type(message).__name__)
            return
        await ref.tell(message)
