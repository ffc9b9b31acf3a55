"""The whole business after the work: what must hold of billing, the hold on clients who owe,
reporting and the bandit after every simulated run (invariants 19 to 23), and the figures the
demo prints about them.

Checked from the database the run left and the settings it ran with; `end` is the simulated
instant the run ended (schedules are checked up to a day before it: a tick, a kill or a
restart may delay what falls due in its last hours).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.settings import Settings

#: Invariants 19 to 23 (appended to `invariants.INVARIANTS`).
BUSINESS_INVARIANTS = (
    "no invoice or credit note number is used twice or skipped",
    "every invoice is paid, credited, or open with its reminders on schedule",
    "nothing is delivered to a client while it is on hold, and every hold billing decides is applied",
    "one report per client and period, and every period due has its report",
    "the bandit never starves an arm below its floor",
    "every renewal is applied once by the saga, billing and retention alike",
    "every deal handed over is recorded by billing, retention, reporting and learning",
)
_CREDIT_NOTE = re.compile(r"^CN-(\d{4})-(\d+)$")
#: How long before the end of a run something due may still be on its way.
MARGIN = timedelta(days=1)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _gap(numbers: Sequence[tuple[int, int]]) -> str | None:
    """A year whose numbers are not 1..n each once, described; None when every year is."""
    by_year: dict[int, list[int]] = defaultdict(list)
    for year, seq in numbers:
        by_year[year].append(seq)
    for year, seqs in sorted(by_year.items()):
        counts = Counter(seqs)
        twice = sorted(seq for seq, n in counts.items() if n > 1)
        if twice:
            return f"{year}: number {twice[0]} used {counts[twice[0]]} times"
        missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
        if missing:
            return f"{year}: number {missing[0]} skipped (the highest is {max(seqs)})"
    return None


async def business_violations(engine: AsyncEngine, settings: Settings, end: datetime) -> list[tuple[int, str]]:
    """(index into `BUSINESS_INVARIANTS`, the first offence) for each invariant broken."""
    from aicmo_actors.billing import rules as billing_rules
    from aicmo_actors.billing.tables import (
        billing_counters,
        billing_emails,
        billing_holds,
        billing_invoices,
        billing_payments,
    )
    from aicmo_actors.billing.tables import billing_reminders as reminders_t
    from aicmo_actors.delivery.tables import delivery_deliveries, delivery_holds
    from aicmo_actors.learning.tables import learning_weights
    from aicmo_actors.reporting import periods
    from aicmo_actors.reporting.tables import reporting_clients, reporting_reports

    found: list[tuple[int, str]] = []
    async with engine.connect() as conn:
        invoices = (await conn.execute(sa.select(billing_invoices).order_by(billing_invoices.c.number))).all()
        counters = (await conn.execute(sa.select(billing_counters))).all()
        payments = (await conn.execute(sa.select(billing_payments))).all()
        reminders = (await conn.execute(sa.select(reminders_t))).all()
        emailed = set((await conn.execute(sa.select(billing_emails.c.idempotency_key))).scalars())
        billing_hold_rows = (await conn.execute(sa.select(billing_holds))).all()
        holds = (await conn.execute(sa.select(delivery_holds))).all()
        delivered = (
            await conn.execute(
                sa.select(
                    delivery_deliveries.c.key, delivery_deliveries.c.client_ref, delivery_deliveries.c.delivered_at
                ).where(delivery_deliveries.c.delivered_at.is_not(None))
            )
        ).all()
        clients = (await conn.execute(sa.select(reporting_clients))).all()
        reports = (await conn.execute(sa.select(reporting_reports))).all()
        weights = (await conn.execute(sa.select(learning_weights).order_by(learning_weights.c.id))).all()

    # 19. Invoice numbers 1..n per year, credit notes 1..n per year, and no number taken by
    #     the counter without its invoice (a number taken then lost would be a gap).
    problem = _gap([(int(i.year), int(i.seq)) for i in invoices])
    notes = [_CREDIT_NOTE.match(str(i.credit_note)) for i in invoices if i.credit_note]
    problem = problem or _gap([(int(m.group(1)), int(m.group(2))) for m in notes if m is not None])
    if problem is None:
        highest: dict[tuple[str, int], int] = defaultdict(int)
        for i in invoices:
            highest[(billing_rules.INVOICE, int(i.year))] = max(highest[(billing_rules.INVOICE, int(i.year))], i.seq)
        for m in notes:
            if m is not None:
                key = (billing_rules.CREDIT_NOTE, int(m.group(1)))
                highest[key] = max(highest[key], int(m.group(2)))
        for c in counters:
            if int(c.last) != highest.get((str(c.series), int(c.year)), 0):
                problem = f"the {c.series} counter of {c.year} is at {c.last}, the highest number used is "
                problem += str(highest.get((str(c.series), int(c.year)), 0))
                break
    if problem is not None:
        found.append((0, problem))

    # 20. Paid means paid in full; credited has its credit note; an open invoice has had the
    #     reminder the schedule says by now (not one more), and none after its payment.
    rules = [billing_rules.ReminderRule(days, Decimal(str(fee))) for days, fee in settings.dunning]
    today = end.astimezone(ZoneInfo(settings.agency_timezone)).date()
    paid_on: dict[str, date] = {}
    for p in payments:
        paid_on[str(p.invoice_id)] = max(paid_on.get(str(p.invoice_id), p.received_on), p.received_on)
    sent: dict[str, list[Any]] = defaultdict(list)
    for r in reminders:
        sent[str(r.invoice_id)].append(r)

    def expected(on: date, due: date) -> int:
        seq = 0
        while billing_rules.reminder_day(due, seq + 1, rules, settings.dunning_repeat_days) <= on:
            seq += 1
        return seq

    for i in invoices:
        total, paid = Decimal(str(i.total)), Decimal(str(i.paid))
        last = max((int(r.seq) for r in sent[str(i.id)]), default=0)
        if i.state == "paid" and paid < total:
            problem = f"invoice {i.number} is paid with {paid} of {total}"
        elif i.state == "open" and paid >= total > 0:
            problem = f"invoice {i.number} is open although {paid} of {total} was paid"
        elif i.state == "credited" and not i.credit_note:
            problem = f"invoice {i.number} is credited without a credit note"
        elif i.state == "open" and not expected(today - MARGIN, i.due_on) <= last <= expected(today, i.due_on):
            problem = (
                f"invoice {i.number} (due {i.due_on}) is open with reminder {last} sent by {today}; "
                f"the schedule says {expected(today, i.due_on)}"
            )
        elif i.state == "paid" and any(r.sent_on > paid_on.get(str(i.id), today) for r in sent[str(i.id)]):
            problem = f"invoice {i.number} was reminded after it was paid on {paid_on.get(str(i.id))}"
        elif f"invoice:{i.id}" not in emailed:
            # (Its email is queued with it; whether it went out, may have, or the client's
            # server refused it is the outbox's to say, and `invoice ID` shows it.)
            problem = f"invoice {i.number}, issued {i.issued_on}, has no email"
        else:
            continue
        found.append((1, problem))
        break

    # 21. No delivery inside a hold of its client; and billing's active holds (decided a day
    #     before the end) are holds delivery applies.
    #     A delivery at the very instant a hold began (the fake clock gives one instant to
    #     everything that happens between two of its steps) is inside it unless it was one of
    #     the client's deliveries already made when the hold was written (`delivered_before`).
    spans: dict[str, list[tuple[datetime, datetime | None, int | None]]] = defaultdict(list)
    for h in holds:
        released_at = _aware(h.released_at) if h.released_at else None
        spans[str(h.client_ref)].append((_aware(h.held_at), released_at, h.delivered_before))
    made: dict[str, list[datetime]] = defaultdict(list)
    for d in delivered:
        made[str(d.client_ref)].append(_aware(d.delivered_at))
    problem = None
    for d in delivered:
        at = _aware(d.delivered_at)
        for held, released, before in spans.get(str(d.client_ref), []):
            if released is not None and at >= released:
                continue
            if held == at:
                by_then = sum(1 for other in made[str(d.client_ref)] if other <= held)
                inside = before is None or by_then > before
            else:
                inside = held < at
            if inside:
                problem = f"{d.key} delivered at {at.isoformat()}, its client on hold since {held.isoformat()}"
                break
        if problem:
            break
    active = {str(h.client_ref) for h in holds if h.released_at is None}
    for b in billing_hold_rows:
        if problem:
            break
        if b.active and _aware(b.since) < end - MARGIN and str(b.client_ref) not in active:
            problem = f"billing holds {b.company} since {_aware(b.since).isoformat()}, delivery does not"
        elif not b.active and str(b.client_ref) in active and b.released_at and _aware(b.released_at) < end - MARGIN:
            problem = f"billing released {b.company} at {_aware(b.released_at).isoformat()}, delivery still holds it"
    if problem:
        found.append((2, problem))

    # 22. One report per client and period (the table's key says so; counted anyway), and every
    #     period of an enabled schedule due a day before the end has one.
    seen = Counter((str(r.client_ref), str(r.period)) for r in reports)
    twice = [key for key, n in seen.items() if n > 1]
    problem = f"client {twice[0][0]} has {seen[twice[0]]} reports for {twice[0][1]}" if twice else None
    for c in clients if problem is None else []:
        if not c.enabled:
            continue
        tz = ZoneInfo(str(c.timezone))
        first = max(c.start, periods.local_day(_aware(c.signed_at), tz))
        done = frozenset(str(r.period) for r in reports if str(r.client_ref) == str(c.client_ref))
        missing = periods.due_periods(
            str(c.period), anchor=c.start, first_day=first, tz=tz, hour=int(c.hour), now=end - MARGIN, done=done
        )
        if missing:
            problem = f"{c.company}: no report for {missing[0].label}, due {periods.due_at(missing[0], tz, c.hour)}"
            break
    if problem:
        found.append((3, problem))

    # 23. Every allocation the bandit decided gives each arm at least its floor, and sums to 1.
    for w in weights:
        shares = {str(k): float(v) for k, v in dict(w.weights).items()}
        low = [k for k, v in shares.items() if v < float(w.floor) - 1e-9]
        if low or abs(sum(shares.values()) - 1) > 1e-6:
            found.append((4, f"{w.campaign} step {w.step} at {w.as_of}: weights {shares} (floor {w.floor})"))
            break

    # 24. Every renewal is applied by the saga, billing and retention alike, once.
    # 25. Every deal the saga answered for a day before the end is a billing account, a
    #     retention contract, a reporting client and a learning deal (none lost to a kill).
    async with engine.connect() as conn:
        unapplied = await _renewal_problem(conn, end)
        unrecorded = await _deal_problem(conn, end)
    if unapplied:
        found.append((5, unapplied))
    if unrecorded:
        found.append((6, unrecorded))
    return found


async def business_figures(engine: AsyncEngine) -> dict[str, Any]:
    """What the demo prints of billing, holds, reports, health and the bandit."""
    from aicmo_actors.billing.tables import billing_holds, billing_invoices, billing_payments, billing_reminders
    from aicmo_actors.cam.tables import cam_renewals
    from aicmo_actors.delivery.tables import delivery_deliveries, delivery_holds
    from aicmo_actors.learning.tables import learning_weights
    from aicmo_actors.reporting.tables import reporting_reports
    from aicmo_actors.retention.tables import retention_clients, retention_renewals

    async with engine.connect() as conn:
        invoices = (await conn.execute(sa.select(billing_invoices))).all()
        payments = (await conn.execute(sa.select(billing_payments))).all()
        reminders = (await conn.execute(sa.select(sa.func.count()).select_from(billing_reminders))).scalar_one()
        billing_held = (await conn.execute(sa.select(billing_holds))).all()
        held = (await conn.execute(sa.select(delivery_holds))).all()
        reports = (await conn.execute(sa.select(sa.func.count()).select_from(reporting_reports))).scalar_one()
        health = (await conn.execute(sa.select(retention_clients))).all()
        renewals = (await conn.execute(sa.select(sa.func.count()).select_from(retention_renewals))).scalar_one()
        done = (await conn.execute(sa.select(cam_renewals.c.applied_at, cam_renewals.c.outcome))).all()
        weights = (await conn.execute(sa.select(sa.func.count()).select_from(learning_weights))).scalar_one()
        latest = (
            await conn.execute(sa.select(learning_weights).order_by(learning_weights.c.id.desc()).limit(1))
        ).first()
        made = (
            await conn.execute(
                sa.select(delivery_deliveries.c.client_ref, delivery_deliveries.c.created_at).where(
                    delivery_deliveries.c.client_ref.is_not(None)
                )
            )
        ).all()
    spans = [(str(h.client_ref), _aware(h.held_at), _aware(h.released_at) if h.released_at else None) for h in held]
    waited = sum(
        1
        for d in made
        if any(
            ref == str(d.client_ref) and start <= _aware(d.created_at) and (end is None or _aware(d.created_at) < end)
            for ref, start, end in spans
        )
    )
    paid_times = Counter(str(p.invoice_id) for p in payments)
    by_kind = Counter(str(i.kind) for i in invoices)
    by_state = Counter(str(i.state) for i in invoices)
    partly = sum(1 for i in invoices if paid_times[str(i.id)] > 1 or (i.state == "open" and Decimal(str(i.paid)) > 0))
    late = sum(1 for i in invoices if i.state == "paid" and int(i.reminders) > 0)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    received: dict[str, Decimal] = defaultdict(Decimal)
    currency = {str(i.id): str(i.currency) for i in invoices}
    for i in invoices:
        if i.state != "credited":
            totals[str(i.currency)] += Decimal(str(i.total))
    for p in payments:
        received[currency.get(str(p.invoice_id), "?")] += Decimal(str(p.amount))
    bands = Counter(str(getattr(c, "band", "") or "") for c in health)
    renewed = len(done)
    applied = sum(1 for r in done if r.applied_at is not None and not r.outcome)
    return {
        "invoices": len(invoices),
        "invoices_by_kind": dict(sorted(by_kind.items())),
        "invoices_by_state": dict(sorted(by_state.items())),
        "invoices_partly_paid": partly,
        "invoices_paid_late": late,
        "invoiced": {k: str(v) for k, v in sorted(totals.items())},
        "received": {k: str(v) for k, v in sorted(received.items())},
        "payments": len(payments),
        "reminders": int(reminders),
        # Holds as delivery applied them (one row per hold; billing keeps one row per client).
        "holds": len(held),
        "clients_held": len(billing_held),
        "holds_released": sum(1 for h in held if h.released_at is not None),
        "deliveries_waited": waited,
        "reports": int(reports),
        "health": dict(sorted(bands.items())),
        "renewal_reminders": int(renewals),
        "bandit_allocations": int(weights),
        "bandit_latest": (
            {
                "campaign": str(latest.campaign),
                "step": int(latest.step),
                "weights": {str(k): round(float(v), 3) for k, v in sorted(dict(latest.weights).items())},
                "burn_in": bool(latest.burn_in),
            }
            if latest is not None
            else None
        ),
        "renewals": renewed,
        "renewals_applied": applied,
    }


async def _deal_problem(conn: Any, end: datetime) -> str | None:
    """The first deal opened a day before `end` that a module after the deal has no row for."""
    from aicmo_actors.billing.tables import billing_accounts
    from aicmo_actors.cam.tables import cam_deals
    from aicmo_actors.learning.tables import learning_deals
    from aicmo_actors.reporting.tables import reporting_clients
    from aicmo_actors.retention.tables import retention_contracts

    deals = (
        await conn.execute(
            sa.select(cam_deals.c.id, cam_deals.c.opened_at)
            .where(cam_deals.c.opened_at.is_not(None))
            .order_by(cam_deals.c.id)
        )
    ).all()
    due = [int(d.id) for d in deals if _aware(d.opened_at) < end - MARGIN]
    if not due:
        return None
    for name, column in (
        ("billing", billing_accounts.c.deal_id),
        ("retention", retention_contracts.c.deal_id),
        ("reporting", reporting_clients.c.deal_id),
        ("learning", learning_deals.c.deal_id),
    ):
        have = {int(v) for v in (await conn.execute(sa.select(column))).scalars()}
        lost = [d for d in due if d not in have]
        if lost:
            return f"deal {lost[0]} (opened a day before the end) has no {name} record"
    return None


async def _renewal_problem(conn: Any, end: datetime) -> str | None:
    """The first renewal (announced a day before `end`) not applied alike by the saga, billing
    and retention: each module has every renewal of the deal up to the same number, and the
    term (and for retention the end) of the signed deal plus those renewals' months; the
    saga's term counts only renewals it applied (a cancelled project is not extended)."""
    from aicmo_actors.billing.tables import billing_accounts
    from aicmo_actors.cam.tables import cam_deals, cam_renewals
    from aicmo_actors.gateways.calendar import add_months
    from aicmo_actors.orchestration.tables import orchestration_projects
    from aicmo_actors.retention.tables import retention_contracts

    renewals = (
        await conn.execute(sa.select(cam_renewals).order_by(cam_renewals.c.deal_id, cam_renewals.c.number))
    ).all()
    if not renewals:
        return None
    deals = {int(d.id): d for d in (await conn.execute(sa.select(cam_deals))).all()}
    projects = {int(p.deal_id): p for p in (await conn.execute(sa.select(orchestration_projects))).all()}
    accounts = {int(a.deal_id): a for a in (await conn.execute(sa.select(billing_accounts))).all()}
    contracts = {int(c.deal_id): c for c in (await conn.execute(sa.select(retention_contracts))).all()}
    of: dict[int, list[Any]] = defaultdict(list)
    for r in renewals:
        of[int(r.deal_id)].append(r)
    for deal_id, rows in of.items():
        due = [r for r in rows if r.applied_at is not None and _aware(r.applied_at) < end - MARGIN]
        if not due:
            continue
        deal, number = deals[deal_id], max(int(r.number) for r in due)
        term = int(dict(deal.package).get("term_months") or 12)
        months = {int(r.number): int(r.months) for r in rows}
        project, account, contract = projects.get(deal_id), accounts.get(deal_id), contracts.get(deal_id)
        said = f"deal {deal_id}, renewal {number} (applied {_aware(due[-1].applied_at).isoformat()})"
        if project is None or int(project.renewals) < number:
            return f"{said}: the saga has {project.renewals if project is not None else 'no project'}"
        extended = term + sum(months[int(r.number)] for r in rows if r.applied_at is not None and not r.outcome)
        if int(dict(project.package)["term_months"]) != extended:
            return f"{said}: the project's term is {dict(project.package)['term_months']} months, not {extended}"
        count = int(project.renewals)
        whole = term + sum(m for n, m in months.items() if n <= count)
        for name, row in (("billing", account), ("retention", contract)):
            if row is not None and int(row.renewals) != count:
                return f"{said}: {name} applied {row.renewals} renewal(s), the saga {count}"
        if account is not None and int(dict(account.package)["term_months"]) != whole:
            return f"{said}: billing's term is {dict(account.package)['term_months']} months, not {whole}"
        if contract is not None and contract.ends_on != add_months(contract.starts_on, whole):
            return f"{said}: retention's contract ends {contract.ends_on}, not {add_months(contract.starts_on, whole)}"
    return None


__all__ = ["BUSINESS_INVARIANTS", "business_figures", "business_violations"]
