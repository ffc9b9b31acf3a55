"""`strategy.planner`: drafts a project's plan, sends it for approval, follows the answer.

- `DraftStrategy` (told by the saga, possibly many times): the first time (no plan for the
  project), version 1 is built (`plan.build_plan`), rendered (HTML, PDF), and stored with its
  capability link and its email (PDF attached) in one transaction; then `PlanSent`. Every later
  time it only says where things stand again: `PlanSent` (awaiting), `PlanApproved`,
  `PlanChangesRequested` or `StrategyCancelled`, and `PlanOverdue` when that was said too.
  A client whose country or zone is unknown, or whose address cannot be written to, makes
  `StrategyFailed` (nothing is stored: the same command fails the same way).
- `Tick`: answers given on the client's page are announced. An approval: `PlanApproved`,
  then marked announced. Changes asked for: `PlanChangesRequested`, then the next version
  (`plan.revise_plan`), stored with its link and email in one transaction with the mark, then
  `PlanSent`; on the last version the package's review rounds allow, no new version: the
  version is marked as needing a person and `PlanOverdue` says so. A version still awaiting
  its answer past the deadline: `PlanOverdue`, once. Then the queued emails are sent
  (`MailBook.send_due`).
- `PlanPeriod` (told by the saga for each later period, possibly many times): the period's
  calendar from the approved plan (`plan.period_items`, pure: nothing is stored, the same
  command gives the same items), then `PeriodPlanned`. No approved plan (a saga that asks
  too early, or a plan withdrawn): `StrategyFailed`, or `StrategyCancelled` when withdrawn.
- `CancelStrategy` (compensation, may repeat, may come first): the links are revoked, the
  queued emails cancelled, every version withdrawn and, if a plan email may have reached the
  client, a short notice queued, once; `StrategyCancelled` every time.

An announcement (`PlanApproved`, `PlanChangesRequested`, `PlanOverdue`) is published before
the write that records it (at least once: a crash between the two repeats it, never loses
it); `PlanSent` follows the transaction that made the version, and a crash in between is
made good by the saga's next `DraftStrategy`, which says the state again. The saga treats
events as idempotent. `on_start` marks the emails a dead incarnation left in flight as
unconfirmed (never sent twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aicmo_actors.gateways.calendar import business_days_later
from aicmo_actors.gateways.transport import LazyTransport, MailTransport
from aicmo_actors.runtime import Actor
from aicmo_actors.storage.links import make_token
from aicmo_actors.strategy.emails import Letterhead, cancelled_email, plan_email
from aicmo_actors.strategy.plan import (
    Plan,
    PlanItem,
    build_plan,
    max_versions,
    period_items,
    plan_from_json,
    plan_to_json,
    revise_plan,
)
from aicmo_actors.strategy.render import render_html, render_pdf
from aicmo_actors.strategy.repos import (
    PURPOSE,
    NewVersion,
    State,
    StrategyStore,
    Version,
    cancelled_email_key,
    plan_email_key,
)
from aicmo_actors.strategy.tables import APPROVED, AWAITING, CHANGES_REQUESTED
from contracts.clients import ClientInfo
from contracts.packages import PackageSpec
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

PLANNER = "strategy.planner"
#: The hour (the client's local time) an approval deadline falls at.
DEADLINE_HOUR = 9


@dataclass(frozen=True)
class Timing:
    """How long a link stays valid, and how many of the client's business days an answer takes."""

    link_days: int = 30
    approval_business_days: int = 5


Incoming = DraftStrategy | PlanPeriod | CancelStrategy | Tick


class Planner(Actor[Incoming]):
    """Drafts, sends and follows each project's plan (see the module)."""

    subscribes = (Tick,)

    def __init__(
        self,
        store: StrategyStore,
        *,
        transport: Callable[[], MailTransport],
        letterhead: Letterhead,
        secret: bytes,
        timing: Timing | None = None,
    ) -> None:
        self.store = store
        self.transport = LazyTransport(transport)
        self.head = letterhead
        self.secret = secret
        self.timing = timing or Timing()

    async def on_start(self) -> None:
        interrupted = await self.store.mail.recover(self.ctx.clock.now())
        if interrupted:
            self.ctx.log.warning("plan emails interrupted during their send: not sent again", emails=interrupted)

    async def on_stop(self) -> None:
        await self._close_transport()

    async def receive(self, message: Incoming) -> None:
        if isinstance(message, Tick):
            await self._tick()
        elif isinstance(message, DraftStrategy):
            await self._draft(message)
        elif isinstance(message, PlanPeriod):
            await self._plan_period(message)
        else:
            await self._cancel(message)

    # -- DraftStrategy ---------------------------------------------------------------------------------------------

    async def _draft(self, message: DraftStrategy) -> None:
        project_id = str(message.project_id)
        state = await self.store.plans.state(project_id)
        if state.latest is None and not state.cancelled:
            now = self.ctx.clock.now()
            try:
                plan = build_plan(message.client, message.package, message.brief, message.start, seed=project_id)
                new = self._version(project_id, message.client, message.package, plan, now)
            except ValueError as exc:  # unknown country or zone, an address that cannot be written to
                self.ctx.log.warning("no plan could be made", project_id=project_id, error=str(exc))
                await self.ctx.publish(StrategyFailed(project_id=message.project_id, reason=f"no plan: {exc}"))
                return
            created, state = await self.store.plans.create_first(
                new,
                draft_key=message.idempotency_key,
                client=message.client.model_dump(mode="json"),
                package=message.package.model_dump(mode="json"),
                brief=dict(message.brief),
                start=message.start,
                now=now,
            )
            if created:
                self.ctx.log.info("plan sent for approval", project_id=project_id, version=1)
        elif state.request is not None and state.request.draft_key not in (None, message.idempotency_key):
            self.ctx.log.warning(
                "DraftStrategy with another idempotency key for a project that has a plan: state said again",
                project_id=project_id,
            )
        await self._say_state(message.project_id, state)

    async def _say_state(self, project_id: uuid.UUID, state: State) -> None:
        """Publish where the project's strategy stands (the saga may have missed it)."""
        if state.cancelled:
            await self.ctx.publish(StrategyCancelled(project_id=project_id))
            return
        latest = state.latest
        if latest is None:
            return
        if latest.status == APPROVED:
            await self.ctx.publish(self._approved(latest))
        elif latest.status == AWAITING:
            await self.ctx.publish(PlanSent(project_id=project_id, version=latest.version, deadline=latest.deadline_at))
            if latest.overdue_at is not None:
                await self.ctx.publish(PlanOverdue(project_id=project_id, version=latest.version))
        elif latest.status == CHANGES_REQUESTED:
            await self.ctx.publish(
                PlanChangesRequested(project_id=project_id, version=latest.version, comments=latest.comments or "")
            )
            if latest.needs_person_at is not None:
                await self.ctx.publish(PlanOverdue(project_id=project_id, version=latest.version))

    @staticmethod
    def _approved(version: Version) -> PlanApproved:
        assert version.answered_at is not None
        plan = plan_from_json(version.plan)
        return PlanApproved(
            project_id=uuid.UUID(version.project_id),
            version=version.version,
            approved_at=version.answered_at,
            deliverables=version.deliverables,
            items=_planned(plan.items),
        )

    # -- PlanPeriod ----------------------------------------------------------------------------------------------

    async def _plan_period(self, message: PlanPeriod) -> None:
        state = await self.store.plans.state(str(message.project_id))
        if state.cancelled:
            await self.ctx.publish(StrategyCancelled(project_id=message.project_id))
            return
        latest = state.latest
        if latest is None or latest.status != APPROVED:
            reason = f"period {message.period} asked for before the plan was approved"
            await self.ctx.publish(StrategyFailed(project_id=message.project_id, reason=reason))
            return
        approved = plan_from_json(latest.plan)
        try:
            items = period_items(approved, message.package, message.client.country, message.period)
        except ValueError as exc:  # an unknown country, a period before the second
            await self.ctx.publish(StrategyFailed(project_id=message.project_id, reason=f"no plan: {exc}"))
            return
        if items and items[0].due < message.start:
            self.ctx.log.warning(
                "a period's calendar starts before the day the saga gave",
                project_id=str(message.project_id),
                period=message.period,
                start=message.start.isoformat(),
            )
        await self.ctx.publish(
            PeriodPlanned(
                project_id=message.project_id, period=message.period, version=latest.version, items=_planned(items)
            )
        )

    def _version(
        self, project_id: str, client: ClientInfo, package: PackageSpec, plan: Plan, now: datetime
    ) -> NewVersion:
        """Render `plan` and make its link and email (pure but for the nonce of the link)."""
        pdf = render_pdf(plan, agency=self.head.agency_name, created=now)
        token = make_token(self.secret, PURPOSE, project_id, self.ctx.random.getrandbits(64))
        deadline = business_days_later(
            now, self.timing.approval_business_days, client.country, client.timezone, hour=DEADLINE_HOUR
        )
        email = plan_email(
            self.head,
            client,
            plan,
            key=plan_email_key(project_id, plan.version),
            pdf=pdf,
            token=token,
            deadline=deadline,
            last_round=plan.version >= max_versions(package.review_rounds),
            now=now,
        )
        return NewVersion(
            project_id=project_id,
            version=plan.version,
            plan=plan_to_json(plan),
            html=render_html(plan, agency=self.head.agency_name),
            pdf=pdf,
            deadline_at=deadline,
            token=token,
            link_expires_at=now + timedelta(days=self.timing.link_days),
            email=email,
        )

    # -- Tick --------------------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        now = self.ctx.clock.now()
        for version in await self.store.plans.unannounced():
            if version.status == APPROVED:
                await self.ctx.publish(self._approved(version))
                await self.store.plans.mark_announced(version.id, now)
                self.ctx.log.info("plan approved", project_id=version.project_id, version=version.version)
            else:
                try:
                    await self._changes(version, now)
                except Exception:
                    # One plan that cannot be revised must not hold up the others, nor the emails:
                    # it is tried again next tick, and the log says why.
                    self.ctx.log.error("could not revise a plan", project_id=version.project_id, exc_info=True)
        for version in await self.store.plans.overdue(now):
            await self.ctx.publish(PlanOverdue(project_id=uuid.UUID(version.project_id), version=version.version))
            await self.store.plans.mark_overdue(version.id, now)
            self.ctx.log.info("plan overdue", project_id=version.project_id, version=version.version)
        try:
            sent = await self.store.mail.send_due(self.transport, mail_from=self.head.mail_from, now=now)
        finally:
            await self._close_transport()  # client emails are rare: no connection left to time out
        if sent.sent or sent.retried or sent.failed:
            self.ctx.log.info("client emails", sent=sent.sent, retried=sent.retried, failed=sent.failed)

    async def _changes(self, version: Version, now: datetime) -> None:
        project_id = uuid.UUID(version.project_id)
        comments = version.comments or ""
        await self.ctx.publish(PlanChangesRequested(project_id=project_id, version=version.version, comments=comments))
        request = await self.store.plans.request(version.project_id)
        if request is None or request.client is None or request.package is None:
            raise RuntimeError(f"project {version.project_id}: a plan without its request")
        client = ClientInfo.model_validate(request.client)
        package = PackageSpec.model_validate(request.package)
        if version.version >= max_versions(package.review_rounds):
            if await self.store.plans.needs_person(version.id, now):
                self.ctx.log.warning(
                    "changes asked for beyond the package's review rounds: a person must settle them",
                    project_id=version.project_id,
                    version=version.version,
                )
                await self.ctx.publish(PlanOverdue(project_id=project_id, version=version.version))
            return
        plan = revise_plan(plan_from_json(version.plan), comments)
        new = self._version(version.project_id, client, package, plan, now)
        if await self.store.plans.revise(version.id, new, now):
            self.ctx.log.info("revised plan sent for approval", project_id=version.project_id, version=plan.version)
            await self.ctx.publish(PlanSent(project_id=project_id, version=plan.version, deadline=new.deadline_at))

    # -- CancelStrategy ----------------------------------------------------------------------------------------------

    async def _cancel(self, message: CancelStrategy) -> None:
        project_id = str(message.project_id)
        now = self.ctx.clock.now()
        request = await self.store.plans.request(project_id)
        notice = None
        if request is not None and request.client is not None and request.cancelled_at is None:
            notice = cancelled_email(
                self.head,
                ClientInfo.model_validate(request.client),
                key=cancelled_email_key(project_id),
                now=now,
            )
        done = await self.store.plans.cancel(
            project_id, key=message.idempotency_key, reason=message.reason, notice=notice, now=now
        )
        if done.first:
            self.ctx.log.info(
                "plan withdrawn",
                project_id=project_id,
                links_revoked=done.links_revoked,
                emails_cancelled=done.emails_cancelled,
                notice=done.notice_queued,
            )
        await self.ctx.publish(StrategyCancelled(project_id=message.project_id))

    async def _close_transport(self) -> None:
        try:
            await self.transport.close()
        except Exception:
            self.ctx.log.warning("closing the client emails' connection failed", exc_info=True)


def _planned(items: tuple[PlanItem, ...]) -> tuple[PlannedItem, ...]:
    """A calendar's items as production receives them (each keyed "<type>:<channel>:<piece>")."""
    return tuple(
        PlannedItem(
            key=f"{item.type}:{item.channel}:{item.piece}",
            type=item.type,
            channel=item.channel,
            piece=item.piece,
            due=item.due,
            topic=item.topic,
            min_words=item.min_words,
            max_words=item.max_words,
            max_chars=item.max_chars,
        )
        for item in items
    )
