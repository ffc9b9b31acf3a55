"""What must hold after every simulated run, checked from the sink, the inbox and the database.

Each broken invariant is reported with its first offending event, so `--seed N` replays it.
Invariants 11 to 18 are about what follows a deal (the projects, their sagas, the emails to
clients, and the work: its versions, reviews and deliveries), 19 to 23 about the business
around it (invoices, holds, reports, the bandit: `simulation.business`), checked when the
modules after the deal ran.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from aicmo_actors.billing.tables import billing_emails
from aicmo_actors.cam.campaign import CampaignSpec
from aicmo_actors.cam.lead_rules import ALERT_CATEGORIES, LOW_CONFIDENCE, MACHINE_NOTICE_PREFIXES
from aicmo_actors.cam.repos import STRONG_MATCHES, CamStore
from aicmo_actors.cam.repos.deals import shared_domains
from aicmo_actors.cam.repos.inbound import WORTH_A_LOOK
from aicmo_actors.cam.repos.sql import normalise_address
from aicmo_actors.cam.send_rules import in_window
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.cam.tables import cam_campaigns as campaigns_t
from aicmo_actors.cam.tables import cam_cycle_reports as reports_t
from aicmo_actors.cam.tables import cam_deals as deals_t
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_leads as leads_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.cam.tables import cam_suppressions as suppressions_t
from aicmo_actors.client_review.tables import client_review_emails
from aicmo_actors.delivery.tables import delivery_emails
from aicmo_actors.onboarding.tables import onboarding_emails
from aicmo_actors.orchestration import saga_rules
from aicmo_actors.orchestration.tables import orchestration_projects as projects_t
from aicmo_actors.orchestration.tables import orchestration_steps as steps_t
from aicmo_actors.reporting.tables import reporting_emails
from aicmo_actors.settings import Settings
from aicmo_actors.simulation.business import BUSINESS_INVARIANTS
from aicmo_actors.simulation.faults import Kill
from aicmo_actors.simulation.world import Delivery, World
from aicmo_actors.storage.client_mail import SENT, UNCONFIRMED
from aicmo_actors.strategy.tables import strategy_emails
from contracts.cam import LeadState, OutboundStatus, ReplyCategory

INVARIANTS = (
    "no lead gets the same step twice",
    "nothing is sent to an address after its unsubscribe or hard bounce was ingested",
    "every reply that deserves an alert has exactly one delivered alert, emailed once",
    "daily caps and send windows are never exceeded, across every life",
    "every inbound message is stored once",
    "every tick has its cycle report",
    "no lead is stranded: an active lead has its next step scheduled or in flight",
    "every inbound message is classified and acted on exactly once",
    "a strongly matched unsubscribe, complaint or hard bounce stops sends within a tick of being stored",
    "usage counts every email sent, message read and classified and alert delivered exactly once",
    "every signed client gets exactly one project",
    "every project is progressing, waiting with a deadline, resting until its next period, delivered, or fully "
    "compensated",
    "no email reaches a client twice for the same step",
    "a lead that signed is a client, and no prospecting email reaches its company after the deal",
    "every approved piece of work is delivered exactly once per method, and nothing without an approval",
    "every change the client asks for produces a new version of the piece",
    "no review link works after its revocation or expiry",
    "quality control catches every problem planted in a draft before the client sees it",
    *BUSINESS_INVARIANTS,
)
#: Replies that suppress their lead's address (when tied to our email by a strong match).
SUPPRESSING = frozenset({ReplyCategory.UNSUBSCRIBE, ReplyCategory.COMPLAINT, ReplyCategory.BOUNCE_HARD})
#: Complete ticks after a deal by which its project must be open: cam.deals announces it on
#: the first, the saga opens it at once; a commit failure or a crash costs a tick or two.
TICKS_TO_OPEN = 3
#: The modules' tables of emails to clients (`storage.client_mail`).
CLIENT_EMAIL_TABLES = (
    onboarding_emails,
    strategy_emails,
    client_review_emails,
    delivery_emails,
    billing_emails,
    reporting_emails,
)


@dataclass(frozen=True)
class Violation:
    invariant: str
    first: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.first}"


async def check_invariants(
    store: CamStore,
    world: World,
    spec: CampaignSpec,
    ticks: int,
    settings: Settings,
    *,
    kills: Sequence[Kill] = (),
    acted_events: Mapping[int, int] | None = None,
    metering: bool = True,
    after_deal: bool = False,
    complete_ticks: Sequence[datetime] = (),
    end: datetime | None = None,
) -> list[Violation]:
    """Every invariant, checked; `kills` are the kill points the process died at and
    `acted_events` the count of `ReplyActedOn` events per inbound message, from the trace.
    With `after_deal`, the deals' invariants too; `complete_ticks` are the moments of the
    ticks that had the time to finish, `end` when the run ended (default: the last of them)."""
    found: list[Violation] = []

    # 1. One delivery per (lead, step) that was not bounced: a soft-bounce retry re-sends
    #    the same Message-ID, but only after the first one bounced.
    kept: Counter[str] = Counter()
    for d in world.deliveries:
        if not d.bounced:
            kept[d.message_id] += 1
            if kept[d.message_id] == 2:
                found.append(
                    Violation(
                        INVARIANTS[0], f"{d.message_id} delivered twice to {d.recipient} (second at {d.at.isoformat()})"
                    )
                )
                break

    async with store.engine.connect() as conn:
        suppressed = {
            r.address: r.created_at
            for r in await conn.execute(sa.select(suppressions_t.c.address, suppressions_t.c.created_at))
        }
        inbound = (
            await conn.execute(
                sa.select(
                    inbound_t.c.id,
                    inbound_t.c.message_id,
                    inbound_t.c.category,
                    inbound_t.c.confidence,
                    inbound_t.c.lead_id,
                    inbound_t.c.reason,
                    inbound_t.c.matched_by,
                    inbound_t.c.stored_at,
                    inbound_t.c.processed_at,
                    inbound_t.c.acted_at,
                    leads_t.c.email.label("lead_email"),
                )
                .outerjoin(leads_t, leads_t.c.id == inbound_t.c.lead_id)
                .order_by(inbound_t.c.id)
            )
        ).all()
        alerts = (await conn.execute(sa.select(alerts_t.c.idempotency_key, alerts_t.c.state))).all()
        reports = (
            await conn.execute(sa.select(reports_t.c.worker, sa.func.count()).group_by(reports_t.c.worker))
        ).all()
        tz_of = {r.email: r.timezone for r in await conn.execute(sa.select(leads_t.c.email, leads_t.c.timezone))}

    # 2. Nothing sent after suppression was ingested.
    for d in world.deliveries:
        at = suppressed.get(d.recipient)
        if at is not None and d.at > at:
            found.append(
                Violation(
                    INVARIANTS[1],
                    f"sent {d.message_id} to {d.recipient} at {d.at.isoformat()}, suppressed since {at.isoformat()}",
                )
            )
            break

    # 3. Alerts: exactly one delivered per reply that deserves one, and one email at the sink.
    #    Only a strong match (our Message-ID, return path or token) alerts as its category
    #    says; a guess (the sender's address) raises an "unverified" alert for what a person
    #    should see, and changes nothing.
    alert_state = dict(alerts)
    for row in inbound:
        key = _alert_key(row)
        if key is None:
            continue
        if alert_state.get(key) != "delivered":
            found.append(
                Violation(
                    INVARIANTS[2],
                    f"inbound #{row.id} ({row.category}, matched by {row.matched_by}) "
                    f"has alert {key!r} in state {alert_state.get(key)!r}",
                )
            )
            break
        if not any(d.message_id == _alert_message_id(key, settings) for d in world.alert_emails):
            found.append(
                Violation(
                    INVARIANTS[2], f"inbound #{row.id}: alert {key!r} is delivered but no email of it reached the sink"
                )
            )
            break
    duplicate = _alert_emailed_twice(world, kills)
    if duplicate is not None:
        found.append(Violation(INVARIANTS[2], duplicate))

    # 4. Caps per mailbox and day (campaign timezone) and windows (lead timezone), over what
    #    reached the sink from every life of the service: a restart must not start counting
    #    again from zero.
    tz = ZoneInfo(spec.timezone)
    per_day: dict[tuple[str, str], list[int]] = defaultdict(list)
    for d in sorted(world.deliveries, key=lambda d: d.at):
        day = d.at.astimezone(tz).date().isoformat()
        lives = per_day[(sending_mailbox(d), day)]
        lives.append(d.life)
        if len(lives) > spec.limits.daily_cap:
            found.append(
                Violation(
                    INVARIANTS[3],
                    f"{sending_mailbox(d)} sent {len(lives)} emails on {day} (cap {spec.limits.daily_cap};"
                    f" in lives {', '.join(str(life) for life in lives)})",
                )
            )
            break
        lead_tz = ZoneInfo(tz_of.get(d.recipient) or spec.timezone)
        if not in_window(spec.window, lead_tz, d.at):
            found.append(
                Violation(
                    INVARIANTS[3], f"sent to {d.recipient} at {d.at.astimezone(lead_tz).isoformat()} outside the window"
                )
            )
            break

    # 5. Every mail the world wrote is stored exactly once.
    stored = Counter(r.message_id for r in inbound)
    for mail in world.written:
        if stored.get(mail.message_id, 0) != 1:
            found.append(
                Violation(INVARIANTS[4], f"{mail.kind} {mail.message_id} stored {stored.get(mail.message_id, 0)} times")
            )
            break

    # 7. A lead still in its sequence is waiting for something: a time of its next action,
    #    or a send that is queued or in flight. Nothing else would ever move it on. (A paused
    #    campaign's leads wait for its resume, which puts them back on the schedule.)
    async with store.engine.connect() as conn:
        stranded = (
            await conn.execute(
                sa.select(leads_t.c.id, leads_t.c.email, leads_t.c.current_step, leads_t.c.state_reason)
                .join(campaigns_t, campaigns_t.c.id == leads_t.c.campaign_id)
                .where(
                    campaigns_t.c.status == "active",
                    leads_t.c.state == LeadState.ACTIVE.value,
                    leads_t.c.next_action_at.is_(None),
                    ~sa.exists().where(
                        outbound_t.c.lead_id == leads_t.c.id,
                        outbound_t.c.status.in_([OutboundStatus.QUEUED.value, OutboundStatus.SENDING.value]),
                    ),
                )
                .order_by(leads_t.c.id)
                .limit(1)
            )
        ).first()
    if stranded is not None:
        found.append(
            Violation(
                INVARIANTS[6],
                f"lead {stranded.id} ({stranded.email}) is active after "
                f"step {stranded.current_step} with nothing scheduled"
                f" ({stranded.state_reason or 'no reason recorded'})",
            )
        )

    # 8. Every stored message is classified and acted on, once: `acted_at` is set once (the
    #    follow-up acts only where it is not), and `ReplyActedOn`, published after that
    #    commit, never comes twice for one message.
    for row in inbound:
        if row.processed_at is None or row.acted_at is None:
            what = "classified" if row.processed_at is None else "acted on"
            found.append(
                Violation(
                    INVARIANTS[7],
                    f"inbound #{row.id} ({row.message_id}) stored at {_iso(row.stored_at)} was never {what}",
                )
            )
            break
    twice = sorted(i for i, n in (acted_events or {}).items() if n > 1)
    if twice:
        found.append(
            Violation(
                INVARIANTS[7], f"inbound #{twice[0]} was acted on {acted_events[twice[0]] if acted_events else 0} times"
            )
        )

    # 9. A reply that suppresses (strongly matched unsubscribe, complaint, hard bounce) is
    #    acted on before the next step could go out: nothing reaches its lead's address later
    #    than one tick after the reply was stored, whatever was killed in between.
    tick = timedelta(seconds=settings.tick_interval_s)
    deadlines: dict[str, tuple[datetime, int]] = {}
    for row in inbound:
        if row.matched_by not in STRONG_MATCHES or row.lead_email is None or row.category is None:
            continue
        if ReplyCategory(row.category) not in SUPPRESSING:
            continue
        address = normalise_address(row.lead_email)
        deadline = _aware(row.stored_at) + tick
        if address not in deadlines or deadline < deadlines[address][0]:
            deadlines[address] = (deadline, int(row.id))
    for d in world.deliveries:
        limit = deadlines.get(normalise_address(d.recipient))
        if limit is not None and d.at > limit[0]:
            found.append(
                Violation(
                    INVARIANTS[8],
                    f"sent {d.message_id} to {d.recipient} at {d.at.isoformat()}, after inbound #{limit[1]} "
                    f"(stored {(limit[0] - tick).isoformat()}) should have stopped it",
                )
            )
            break

    # 6. One cycle report per tick and step.
    counts: dict[str, int] = dict(reports)
    for step in ("schedule", "inbox"):
        if counts.get(step, 0) < ticks:
            found.append(Violation(INVARIANTS[5], f"{counts.get(step, 0)} {step} reports for {ticks} ticks"))
            break

    # 10. Usage: what the meter counted is what the sink received and the tables say, once each.
    if metering:
        problem = await _usage_problem(store, world)
        if problem is not None:
            found.append(Violation(INVARIANTS[9], problem))

    # 11-14. After the deal.
    if after_deal:
        found.extend(await _after_deal_violations(store, world, complete_ticks))
        last = end or (max(complete_ticks) if complete_ticks else None)
        if last is not None:
            from aicmo_actors.simulation.business import business_violations

            for index, first in await business_violations(store.engine, settings, last):
                found.append(Violation(BUSINESS_INVARIANTS[index], first))
    return found


async def _after_deal_violations(store: CamStore, world: World, complete_ticks: Sequence[datetime]) -> list[Violation]:
    found: list[Violation] = []
    async with store.engine.connect() as conn:
        deals = (
            await conn.execute(
                sa.select(
                    deals_t.c.id,
                    deals_t.c.company_domain,
                    deals_t.c.signed_at,
                    deals_t.c.project_id,
                    leads_t.c.email,
                    leads_t.c.state,
                )
                .join(leads_t, leads_t.c.id == deals_t.c.lead_id)
                .order_by(deals_t.c.id)
            )
        ).all()
        projects = (
            await conn.execute(
                sa.select(
                    projects_t.c.id,
                    projects_t.c.deal_id,
                    projects_t.c.state,
                    projects_t.c.step,
                    projects_t.c.package,
                    projects_t.c.next_period_on,
                ).order_by(projects_t.c.created_at, projects_t.c.id)
            )
        ).all()
        steps = (await conn.execute(sa.select(steps_t).order_by(steps_t.c.project_id, steps_t.c.position))).all()
        emails = [
            row
            for table in CLIENT_EMAIL_TABLES
            for row in await conn.execute(
                sa.select(table.c.idempotency_key, table.c.to_address, table.c.message_id, table.c.status).order_by(
                    table.c.id
                )
            )
        ]

    # 11. One project per deal: never two, none without a deal, and one for every deal the
    #     run has had the ticks to hand over.
    by_deal: dict[int, list[str]] = defaultdict(list)
    for project in projects:
        by_deal[int(project.deal_id)].append(str(project.id))
    deal_ids = {int(d.id) for d in deals}
    for deal_id, ids in sorted(by_deal.items()):
        if len(ids) > 1:
            found.append(Violation(INVARIANTS[10], f"deal {deal_id} has {len(ids)} projects: {', '.join(ids)}"))
            break
        if deal_id not in deal_ids:
            found.append(Violation(INVARIANTS[10], f"project {ids[0]} was opened for deal {deal_id}, which is not one"))
            break
    for deal in deals:
        ids = by_deal.get(int(deal.id), [])
        if deal.project_id is not None and ids != [deal.project_id]:
            found.append(
                Violation(INVARIANTS[10], f"deal {deal.id} says project {deal.project_id}, orchestration has {ids}")
            )
            break
        ticks_after = sum(1 for at in complete_ticks if at > _aware(deal.signed_at))
        if not ids and ticks_after >= TICKS_TO_OPEN:
            found.append(
                Violation(
                    INVARIANTS[10],
                    f"deal {deal.id} ({deal.email}, signed {_aware(deal.signed_at).isoformat()}) has no project "
                    f"after {ticks_after} ticks",
                )
            )
            break

    # 12. Every project is somewhere a saga may rest.
    steps_of: dict[str, list[Any]] = defaultdict(list)
    for step in steps:
        steps_of[str(step.project_id)].append(step)
    for project in projects:
        problem = _project_problem(project, steps_of.get(str(project.id), []))
        if problem is not None:
            found.append(Violation(INVARIANTS[11], f"project {project.id} (deal {project.deal_id}): {problem}"))
            break

    # 13. An email to a client reaches them at most once, and only as its module recorded it.
    problem = _client_email_problem(world, emails)
    if problem is not None:
        found.append(Violation(INVARIANTS[12], problem))

    # 14. A signed lead is a client, and its company hears no more prospecting.
    for deal in deals:
        if deal.state != LeadState.CLIENT.value:
            found.append(Violation(INVARIANTS[13], f"deal {deal.id}: lead {deal.email} is {deal.state}, not a client"))
            break
        signed_at = _aware(deal.signed_at)
        domain = str(deal.company_domain)
        late = next(
            (
                d
                for d in world.deliveries
                if d.at > signed_at
                and (
                    d.recipient == deal.email
                    or (domain not in shared_domains() and d.recipient.rpartition("@")[2] == domain)
                )
            ),
            None,
        )
        if late is not None:
            found.append(
                Violation(
                    INVARIANTS[13],
                    f"sent {late.message_id} to {late.recipient} at {late.at.isoformat()}, after deal {deal.id} "
                    f"signed at {signed_at.isoformat()}",
                )
            )
            break
    found.extend(await _work_violations(store, world))
    return found


async def _work_violations(store: CamStore, world: World) -> list[Violation]:
    """Invariants 15 to 18: the work after the plan (production, QC, review, delivery)."""
    from aicmo_actors.client_review.tables import client_review_batches as batches_t
    from aicmo_actors.client_review.tables import client_review_items as reviewed_t
    from aicmo_actors.client_review.tables import client_review_links as links_t
    from aicmo_actors.delivery.tables import delivery_deliveries as deliveries_t
    from aicmo_actors.production.tables import production_items as items_t
    from aicmo_actors.production.tables import production_versions as versions_t
    from aicmo_actors.qc.tables import qc_checks as checks_t

    found: list[Violation] = []
    async with store.engine.connect() as conn:
        items = {str(r.id): r for r in await conn.execute(sa.select(items_t))}
        versions = {(str(r.item_id), int(r.version)) for r in await conn.execute(sa.select(versions_t))}
        deliveries = (await conn.execute(sa.select(deliveries_t).order_by(deliveries_t.c.id))).all()
        reviewed = (
            await conn.execute(
                sa.select(reviewed_t, batches_t.c.link_hash, batches_t.c.package).join(
                    batches_t, batches_t.c.id == reviewed_t.c.batch_id
                )
            )
        ).all()
        links = {str(r.token_hash): r for r in await conn.execute(sa.select(links_t))}
        checks = {(str(r.item_id), int(r.version)): bool(r.passed) for r in await conn.execute(sa.select(checks_t))}

    # 15. Each approved piece once per method, and nothing delivered that the client (or the
    #     package's auto-approval) did not approve.
    approved = {(str(r.item_id), int(r.version)): r for r in reviewed if r.status == "approved"}
    done: Counter[tuple[str, str]] = Counter()
    for d in deliveries:
        if d.state == "delivered":
            done[(str(d.item_id), str(d.method))] += 1
        verdict = approved.get((str(d.item_id), int(d.version)))
        if verdict is None:
            found.append(Violation(INVARIANTS[14], f"{d.key} ({d.state}) has no approval of that version"))
            break
        if verdict.reviewed_by == "auto" and not (verdict.package or {}).get("auto_approve_days"):
            found.append(Violation(INVARIANTS[14], f"{d.key} auto-approved, which its package does not allow"))
            break
    for item in items.values():
        if item.state != "delivered":
            continue
        for method in (item.package or {}).get("delivery", ["email"]):
            if done[(str(item.id), method)] != 1:
                count = done[(str(item.id), method)]
                found.append(Violation(INVARIANTS[14], f"item {item.id} is delivered, {count} time(s) by {method}"))
                break
    receiver = getattr(world, "receiver", None)
    if receiver is not None:
        if receiver.forged:
            found.append(Violation(INVARIANTS[14], f"a webhook the receiver could not verify: {receiver.forged[0]}"))
        for d in deliveries:
            if d.method == "webhook" and d.state == "delivered" and d.key not in receiver.published:
                found.append(Violation(INVARIANTS[14], f"{d.key} is delivered, but the receiver never published it"))
                break

    # 16. A change asked for is a new version (unless the piece was cancelled, waits for a
    #     person, or the run ended before the next version was written).
    for r in reviewed:
        if r.status != "changes":
            continue
        changed = items.get(str(r.item_id))
        key = (str(r.item_id), int(r.version) + 1)
        pending = changed is not None and (
            changed.state in ("cancelled", "changes_requested", "drafting") or changed.needs_person_at is not None
        )
        if key not in versions and not pending:
            found.append(Violation(INVARIANTS[15], f"changes asked to {r.item_id} v{r.version}, no version after it"))
            break

    # 17. An answer on the page only while its link was valid; a stale link opened nothing.
    for r in reviewed:
        if r.reviewed_by != "page" or r.reviewed_at is None:
            continue
        link = links.get(str(r.link_hash))
        at = _aware(r.reviewed_at)
        if link is None or at >= _aware(link.expires_at) or (link.revoked_at and at > _aware(link.revoked_at)):
            found.append(Violation(INVARIANTS[16], f"{r.item_id} v{r.version} answered on a dead link at {_iso(at)}"))
            break
    clients = world.clients
    if clients is not None and clients.stale_opened:
        found.append(Violation(INVARIANTS[16], f"an expired review link still opened: {clients.stale_opened[0]}"))

    # 18. Every planted problem failed QC, and that version never reached the client.
    writer = getattr(world, "writer", None)
    reached = {(str(r.item_id), int(r.version)) for r in reviewed}
    for where, problem in sorted((writer.planted if writer is not None else {}).items()):
        item_key, _, client_ref = where.partition("@")
        matches = [i for i in items.values() if i.key == item_key and str(i.client_ref) == client_ref]
        for item in matches:
            passed = checks.get((str(item.id), 1))
            if passed or (str(item.id), 1) in reached:
                found.append(Violation(INVARIANTS[17], f"{problem} planted in {item.id} v1 was not caught by QC"))
                return found
    return found


def _project_problem(project: Any, steps: Sequence[Any]) -> str | None:
    """Why a project is not where a saga may rest, or None: running with its first steps in
    order (those before the current one done, those after it pending) and each later
    period's production pending until its plan is done, something in progress (a step asked,
    or waiting with a deadline) unless it rests until its next period's day; cancelling with a
    step being undone; delivered with every period begun and every step done; or compensated
    with every step it started undone."""
    names = [str(step.step) for step in steps]
    begun = 1 + sum(1 for name in names if name.startswith(f"{saga_rules.PLAN}:"))
    expected = list(saga_rules.STEPS) + [
        saga_rules.step_name(kind, period) for period in range(2, begun + 1) for kind in (saga_rules.PLAN, "production")
    ]
    total = saga_rules.periods(project.package)
    if names != expected or begun > total:
        return f"has steps {names}, not those of {begun} of its {total} period(s)"
    states = {str(step.step): str(step.state) for step in steps}
    shown = ", ".join(f"{name} {state}" for name, state in states.items())
    if project.state == saga_rules.RUNNING:
        if project.step not in states:
            return f"is running at step {project.step!r}, which it does not have"
        first = steps[: len(saga_rules.STEPS)]
        current = next((i for i, step in enumerate(first) if step.state != saga_rules.DONE), len(first))
        if current < len(first) and first[current].state not in saga_rules.IN_PROGRESS:
            return f"is running with {first[current].step} {first[current].state} ({shown})"
        if any(step.state != saga_rules.PENDING for step in first[current + 1 :]):
            return f"is running with a step begun before the one ahead of it is done ({shown})"
        if begun > 1 and states["strategy"] != saga_rules.DONE:
            return f"began period {begun} before its plan was approved ({shown})"
        for period in range(2, begun + 1):
            plan = states[saga_rules.step_name(saga_rules.PLAN, period)]
            production = states[saga_rules.step_name("production", period)]
            if plan not in (*saga_rules.IN_PROGRESS, saga_rules.DONE):
                return f"has period {period}'s plan {plan} ({shown})"
            if (production == saga_rules.PENDING) == (plan == saga_rules.DONE):
                return f"has period {period}'s production {production} with its plan {plan} ({shown})"
        if any(step.state == saga_rules.WAITING and step.deadline_at is None for step in steps):
            return f"waits with no deadline ({shown})"
        if not any(step.state in saga_rules.IN_PROGRESS for step in steps):
            if begun >= total or project.next_period_on is None:
                return f"is running with nothing in progress and no period to come ({shown})"
        return None
    if project.state == saga_rules.CANCELLING:
        if not any(step.state == saga_rules.COMPENSATING for step in steps):
            return f"is cancelling with no step being undone ({shown})"
        return None
    if project.state == saga_rules.DELIVERED:
        if any(step.state != saga_rules.DONE for step in steps) or begun != total:
            return f"is delivered with a step not done or a period not begun ({shown})"
        return None
    if project.state == saga_rules.COMPENSATED:
        if any(step.state not in (saga_rules.UNDONE, saga_rules.SKIPPED) for step in steps):
            return f"is compensated with a step not undone ({shown})"
        if any(step.started_at is not None and step.state != saga_rules.UNDONE for step in steps):
            return f"is compensated but a step it started was skipped ({shown})"
        return None
    return f"is in state {project.state!r}"


def _client_email_problem(world: World, emails: Sequence[Any]) -> str | None:
    """An email that reached a client twice, that no module recorded (or recorded for someone
    else, or as not sent), or that a module says it sent but never arrived."""
    rows = {str(row.message_id): row for row in emails}
    delivered: Counter[str] = Counter()
    per_step: Counter[tuple[str, str]] = Counter()
    for d in world.client_emails:
        delivered[d.message_id] += 1
        row = rows.get(d.message_id)
        if row is None:
            return f"{d.message_id} reached {d.recipient} at {d.at.isoformat()}, and no module recorded it"
        key = str(row.idempotency_key)
        per_step[(d.recipient, key)] += 1
        if delivered[d.message_id] > 1 or per_step[(d.recipient, key)] > 1:
            lives = ", ".join(str(e.life) for e in world.client_emails if e.message_id == d.message_id)
            return f"{key} ({d.message_id}) reached {d.recipient} {delivered[d.message_id]} times (in lives {lives})"
        if normalise_address(str(row.to_address)) != d.recipient:
            return f"{key} reached {d.recipient}, but it was for {row.to_address}"
        if row.status not in (SENT, UNCONFIRMED):
            return f"{key} reached {d.recipient}, yet it is {row.status}"
    for message_id, row in rows.items():
        if row.status == SENT and not delivered[message_id]:
            return f"{row.idempotency_key} is {SENT}, but it never reached {row.to_address}"
    return None


async def _usage_problem(store: CamStore, world: World) -> str | None:
    from aicmo_actors.observability.tables import observability_usage as usage_t

    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(usage_t.c.kind, sa.func.sum(usage_t.c.quantity)).group_by(usage_t.c.kind))
        usage = {str(kind): int(total or 0) for kind, total in rows}
        accepted = set(
            (
                await conn.execute(sa.select(outbound_t.c.message_id).where(outbound_t.c.accepted_at.is_not(None)))
            ).scalars()
        )
        read = (
            await conn.execute(sa.select(sa.func.count()).where(inbound_t.c.processed_at.is_not(None)))
        ).scalar_one()
        delivered = (await conn.execute(sa.select(sa.func.count()).where(alerts_t.c.state == "delivered"))).scalar_one()
    received = {d.message_id for d in world.deliveries}
    expected = {
        "email_sent": len(accepted),
        "message_read": read,
        "message_classified": read,
        "alert_delivered": delivered,
    }
    for kind, count in expected.items():
        if int(usage.get(kind) or 0) != count:
            return f"usage counted {usage.get(kind) or 0} {kind}, the tables say {count}"
    missing = accepted - received
    if missing:
        return f"{len(missing)} email(s) the database says were accepted never reached the sink, e.g. {min(missing)}"
    return None


def sending_mailbox(d: Delivery) -> str:
    """The mailbox an email went out from: its From (the envelope sender may be a per-message
    return path). Our own emails open with an unfolded From line: read that one line; any
    other shape goes through the header parser."""
    if d.raw.startswith(b"From: "):
        line, crlf, rest = d.raw.partition(b"\r\n")
        if crlf and b"\n" not in line and not rest[:1].isspace():  # one CRLF line, not folded
            return parseaddr(line[6:].decode("ascii", "replace"))[1].lower() or d.mail_from
    headers = BytesHeaderParser(policy=compat32).parsebytes(d.raw)
    return parseaddr(str(headers.get("From") or ""))[1].lower() or d.mail_from


def _alert_key(row: Any) -> str | None:
    """The idempotency key of the alert an inbound message deserves, or None."""
    if row.lead_id is None or row.category is None or row.lead_email is None:
        return None
    category = ReplyCategory(row.category)
    if row.matched_by not in STRONG_MATCHES:
        return f"reply:{row.id}:unverified" if category in WORTH_A_LOOK else None
    if category in ALERT_CATEGORIES:
        return f"reply:{row.id}:{category.value}"
    if (
        category is ReplyCategory.OTHER
        and (row.confidence or 0) < LOW_CONFIDENCE
        and not (row.reason or "").startswith(MACHINE_NOTICE_PREFIXES)
    ):
        return f"reply:{row.id}:unclear_reply"
    return None


def _alert_message_id(key: str, settings: Settings) -> str:
    """The Message-ID `cam.alerts` gives the email of the alert with this key."""
    domain = (settings.alert_from or "").rpartition("@")[2] or "localhost"
    return f"<alert.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _alert_emailed_twice(world: World, kills: Sequence[Kill]) -> str | None:
    """An alert emailed more than once, beyond the one window that cannot be closed.

    `cam.alerts` records a delivery after the email went out: killed in between, the next
    life sends it again, with the same Message-ID (so the mail client shows it once). That
    is allowed only where it happened: an email whose life ended with `cam.alerts` killed
    at a kill point at the very instant it was sent. Anything else (two in one life, a
    restart after a crash, a kill of another actor) is not.
    """
    window = {(k.life, k.when) for k in kills if k.actor == "cam.alerts"}
    by_id: dict[str, list[Delivery]] = defaultdict(list)
    for d in world.alert_emails:
        by_id[d.message_id].append(d)
    for message_id, emails in by_id.items():
        if any((d.life, d.at) not in window for d in emails[:-1]) or len({d.life for d in emails}) < len(emails):
            lives = ", ".join(str(d.life) for d in emails)
            return f"alert {message_id} emailed {len(emails)} times (in lives {lives})"
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "-"


__all__ = ["INVARIANTS", "Violation", "check_invariants"]
