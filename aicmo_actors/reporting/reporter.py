"""`reporting.reporter`: each client's results report, once per period, and the figures behind it.

- `ClientSigned` (published again until orchestration opens the project): the client and its
  schedule are recorded once per deal (period from the package's cadence, the default hour, the
  client's timezone, the default formats). `ProjectOpened`: the project's deal. The event is
  counted in the CAM funnel (signed), once per deal.
- `PlanApproved`, `PeriodPlanned` (a later period's calendar), `ItemLate`, `ItemDelivered`,
  `ItemReviewed`: what each work item was planned
  for, whether it was late, when it was delivered, the client's verdicts.
- `EmailSent`, `ReplyClassified`: the CAM funnel per campaign and UTC day, each event once, for
  the campaigns a client's schedule names (`reporting schedule CLIENT --campaigns`), from when
  it names them (read again at every tick): the others' thousands of emails cost nothing.
- `Tick`: (1) every KPI value recorded and not announced yet is published (`KpiMeasured`) and
  marked; (2) for each client, every period ended and due (`periods.due_periods`) and not
  reported is rendered and recorded with its queued email in one transaction (unique per client
  and period: never twice); (3) the outbox sends what is due; (4) `ReportSent` is published for
  each report whose email went out, then marked.

What survives a kill: the report row and its email are one transaction; an email found SENDING
at start may have gone out and is never sent again (`MailBook.recover`: UNCONFIRMED, reported as
sent); an event published and not marked is published again (events are at least once, their
content the same).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

import anyio.to_thread

from aicmo_actors.gateways.transport import LazyTransport
from aicmo_actors.reporting.periods import CADENCE_KIND, PeriodError, due_periods, zone
from aicmo_actors.reporting.render import report_email
from aicmo_actors.reporting.repos import NewClient, ReportingStore, report_key
from aicmo_actors.reporting.rules import reply_counts
from aicmo_actors.runtime import Actor
from contracts.cam import ClientSigned, EmailSent, ReplyClassified
from contracts.client_review import ItemReviewed
from contracts.delivery import ItemDelivered
from contracts.orchestration import ProjectOpened
from contracts.production import ItemLate
from contracts.reporting import KpiMeasured, ReportSent
from contracts.runtime import Tick
from contracts.strategy import PeriodPlanned, PlanApproved

REPORTER = "reporting.reporter"

Heard = (
    Tick
    | ClientSigned
    | ProjectOpened
    | PlanApproved
    | PeriodPlanned
    | ItemLate
    | ItemDelivered
    | ItemReviewed
    | EmailSent
    | ReplyClassified
)


@dataclass(frozen=True)
class Setup:
    """What the reporter is handed (see `reporting_supervisor`)."""

    mail_from: str
    agency_name: str
    hour: int = 8
    formats: tuple[str, ...] = ("html", "pdf")
    #: The most reports one client gets in one tick (the rest in the next ones).
    catch_up: int = 12
    #: Draw each report in a worker thread (the service), else in the event loop (the simulation).
    in_thread: bool = True


def planned_item_id(project_id: uuid.UUID, key: str, period: int = 1) -> uuid.UUID:
    """The id production gives a planned item (production.rules.item_id, repeated here: a module
    does not import another)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"aicmo:item:{project_id}:{period}:{key}")


class Reporter(Actor[Heard]):
    """Reports to clients once per period (see the module)."""

    subscribes = (
        Tick,
        ClientSigned,
        ProjectOpened,
        PlanApproved,
        PeriodPlanned,
        ItemLate,
        ItemDelivered,
        ItemReviewed,
        EmailSent,
        ReplyClassified,
    )

    def __init__(self, store: ReportingStore, *, transport: LazyTransport, setup: Setup) -> None:
        self.store = store
        self.transport = transport
        self.setup = setup
        #: The campaigns some client's schedule names (whose funnel a report shows): what the
        #: schedules said at the last tick. Only their emails and replies are counted: the other
        #: campaigns' (most of them) cost nothing.
        self.watched: frozenset[str] = frozenset()

    async def on_start(self) -> None:
        self.watched = frozenset(c for s in await self.store.schedules() for c in s.campaigns)
        interrupted = await self.store.mail.recover(self.ctx.clock.now())
        if interrupted:
            self.ctx.log.warning("report emails interrupted during their send: not sent again", emails=interrupted)

    async def on_stop(self) -> None:
        await self._close()

    async def receive(self, message: Heard) -> None:
        now = self.ctx.clock.now()
        if isinstance(message, Tick):
            await self._tick(now)
        elif isinstance(message, ClientSigned):
            await self._signed(message, now)
        elif isinstance(message, ProjectOpened):
            await self.store.learn_project(str(message.project_id), message.deal_id)
        elif isinstance(message, PlanApproved | PeriodPlanned):
            period = message.period if isinstance(message, PeriodPlanned) else 1
            items = [
                (str(planned_item_id(message.project_id, i.key, period)), i.key, i.type, i.channel, i.due)
                for i in message.items
            ]
            await self.store.record_plan(str(message.project_id), items, now)
        elif isinstance(message, ItemLate):
            await self.store.record_item(str(message.project_id), str(message.item_id), now, due=message.due, late=True)
        elif isinstance(message, ItemDelivered):
            await self.store.record_item(
                str(message.project_id), str(message.item_id), now, delivered_at=message.delivered_at
            )
        elif isinstance(message, ItemReviewed):
            await self.store.record_review(
                str(message.project_id), str(message.item_id), message.version, message.verdict, message.at
            )
        elif isinstance(message, EmailSent):
            if message.campaign not in self.watched:
                return
            day = message.timestamp.date()
            await self.store.count("sent", str(message.outbound_id), message.campaign, day, sent=1)
        else:
            await self._reply(message)

    async def _signed(self, message: ClientSigned, now: datetime) -> None:
        client = message.client
        try:
            zone(client.timezone)
            timezone = client.timezone
        except PeriodError:
            self.ctx.log.warning("a client's timezone is unknown: reports in UTC", deal_id=message.deal_id)
            timezone = "UTC"
        new = NewClient(
            client_ref=str(client.client_ref),
            deal_id=message.deal_id,
            company=client.company,
            contact_email=client.contact_email,
            client=client.model_dump(mode="json"),
            package=message.package.model_dump(mode="json"),
            campaign=message.campaign,
            start=message.start,
            signed_at=message.signed_at,
            period=CADENCE_KIND[message.package.reporting],
            hour=self.setup.hour,
            timezone=timezone,
            formats=",".join(self.setup.formats),
        )
        if await self.store.learn_client(new, now):
            self.ctx.log.info("client's reports scheduled", deal_id=message.deal_id, period=new.period)
        await self.store.count("signed", str(message.deal_id), message.campaign, message.signed_at.date(), signed=1)

    async def _reply(self, message: ReplyClassified) -> None:
        if message.campaign is None or message.lead_id is None or message.campaign not in self.watched:
            return
        replies, positive = reply_counts(str(message.classification.category))
        if replies:
            day = message.timestamp.date()
            await self.store.count(
                "reply", str(message.inbound_id), message.campaign, day, replies=replies, positive=positive
            )

    # -- Tick ------------------------------------------------------------------------------------------------------

    async def _tick(self, now: datetime) -> None:
        pending = await self.store.has_unpublished()
        if pending:
            await self._publish_kpis(now)
        schedules = await self.store.schedules()
        self.watched = frozenset(c for schedule in schedules for c in schedule.campaigns)
        for schedule in schedules:
            try:
                tz = zone(schedule.timezone)
                periods = due_periods(
                    schedule.period,
                    anchor=schedule.start,
                    first_day=max(schedule.start, schedule.signed_at.astimezone(tz).date()),
                    tz=tz,
                    hour=schedule.hour,
                    now=now,
                    covered_until=schedule.covered_until,
                    limit=self.setup.catch_up,
                )
            except PeriodError as exc:
                self.ctx.log.warning(
                    "a client's schedule cannot be read", client_ref=schedule.client_ref, error=str(exc)
                )
                continue
            for period in periods:
                data = await self.store.report_data(schedule.client_ref, period, agency=self.setup.agency_name)
                key = report_key(schedule.client_ref, period.label)
                draw = functools.partial(
                    report_email,
                    data,
                    mail_from=self.setup.mail_from,
                    to_address=schedule.contact_email,
                    key=key,
                    formats=schedule.formats,
                    now=now,
                )
                try:
                    message = await anyio.to_thread.run_sync(draw) if self.setup.in_thread else draw()
                except ValueError as exc:  # an address no header can carry
                    self.ctx.log.warning(
                        "a report email cannot be written", client_ref=schedule.client_ref, error=str(exc)
                    )
                    break
                if await self.store.record_report(schedule.client_ref, period, schedule.formats, key, message, now):
                    self.ctx.log.info("report queued", client_ref=schedule.client_ref, period=period.label)
        sent = await self._send(now)
        # (An idle tick reads no more: reports wait to be announced only after a send, or
        # when the first read found one a crash left unannounced.)
        if (pending or sent) and await self.store.has_unpublished():
            await self._publish_reports(now)

    async def _send(self, now: datetime) -> bool:
        """Send the report emails due; whether any was due."""
        if not await self.store.mail.due(now, limit=1):
            return False
        try:
            sent = await self.store.mail.send_due(self.transport, mail_from=self.setup.mail_from, now=now)
        finally:
            await self._close()
        if sent.sent or sent.retried or sent.failed:
            self.ctx.log.info("report emails", sent=sent.sent, retried=sent.retried, failed=sent.failed)
        return True

    async def _publish_kpis(self, now: datetime) -> None:
        for value in await self.store.kpis(unpublished=True):
            await self.ctx.publish(
                KpiMeasured(
                    client_ref=uuid.UUID(value.client_ref),
                    kpi=value.kpi,
                    period=value.period,
                    value=value.value,
                    target=value.target,
                    attained=value.attained,
                )
            )
            await self.store.mark_kpi_published(value.id, value.recorded_at, now)

    async def _publish_reports(self, now: datetime) -> None:
        for report in await self.store.reports(unpublished=True):
            await self.ctx.publish(
                ReportSent(
                    client_ref=uuid.UUID(report.client_ref),
                    project_id=uuid.UUID(report.project_id) if report.project_id else None,
                    period=report.period,
                    formats=tuple(report.formats.split(",")),
                )
            )
            await self.store.mark_report_published(report.id, now)

    async def _close(self) -> None:
        try:
            await self.transport.close()
        except Exception:
            self.ctx.log.warning("closing the report emails' connection failed", exc_info=True)


__all__ = ["REPORTER", "Reporter", "Setup", "planned_item_id"]
