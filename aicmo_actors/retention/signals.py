"""From the other modules' events to retention's signals, pure.

Each function takes one event (and what the monitor read for it: when the review was asked,
the item's due date, the hold state) and returns the signals it makes, each under a unique
source key so an event heard twice (most are published again) is stored once. A function
that finds nothing to say returns an empty tuple.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from aicmo_actors.retention import texts
from aicmo_actors.retention.rules import WEAK_MATCHES, tone, weigh
from contracts.billing import ClientOnHold, ClientReleased, InvoiceCredited, PaymentReceived, ReminderSent
from contracts.client_review import ItemReviewed
from contracts.delivery import DeliveryFailing, ItemDelivered
from contracts.production import ItemLate
from contracts.qc import DraftChecked
from contracts.reporting import KpiMeasured

#: How a review answer counts as slow, in days after the request (the supervisor's parameter).
SLOW_REVIEW_DAYS = 3.0


@dataclass(frozen=True)
class NewSignal:
    """A signal to store: whose (a client, or a project not yet tied to one), what, how much."""

    key: str
    kind: str
    weight: float
    at: datetime
    reason: str
    client_ref: str | None = None
    project_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def _day(day: date) -> datetime:
    """A calendar day as a time (its noon, UTC: the middle of anyone's day)."""
    return datetime.combine(day, time(12), tzinfo=UTC)


# -- money --------------------------------------------------------------------------------------------------------


def overdue(invoice_id: str, number: str, client_ref: str, due_on: date, weights: Mapping[str, float]) -> NewSignal:
    """An invoice still unpaid the day after its due date (found by a tick)."""
    return NewSignal(
        key=f"overdue:{invoice_id}",
        kind="invoice_overdue",
        weight=weigh("invoice_overdue", weights),
        at=_day(date.fromordinal(due_on.toordinal() + 1)),
        reason=texts.overdue(number, due_on),
        client_ref=client_ref,
    )


def reminder_sent(event: ReminderSent, weights: Mapping[str, float], now: datetime) -> tuple[NewSignal, ...]:
    return (
        NewSignal(
            key=f"reminder:{event.invoice_id}:{event.level}:{event.days_overdue}",
            kind="reminder_sent",
            weight=weigh("reminder_sent", weights),
            at=now,
            reason=texts.reminder(event.number, event.level, event.days_overdue),
            client_ref=str(event.client_ref),
        ),
    )


def payment(event: PaymentReceived, weights: Mapping[str, float]) -> tuple[NewSignal, ...]:
    """A partial payment (each one: keyed by the balance it left), or the payment that settles
    the invoice: late by `days_late`, or on time."""
    at = _day(event.received_on)
    ref = str(event.client_ref)
    if not event.paid_in_full:
        return (
            NewSignal(
                key=f"partial:{event.invoice_id}:{event.balance}",
                kind="payment_partial",
                weight=weigh("payment_partial", weights),
                at=at,
                reason=texts.partial(event.number, event.balance, event.currency),
                client_ref=ref,
            ),
        )
    if event.days_late > 0:
        return (
            NewSignal(
                key=f"paid:{event.invoice_id}",
                kind="payment_late",
                weight=weigh("payment_late", weights, days=event.days_late),
                at=at,
                reason=texts.paid_late(event.number, event.days_late),
                client_ref=ref,
            ),
        )
    return (
        NewSignal(
            key=f"paid:{event.invoice_id}",
            kind="payment_on_time",
            weight=weigh("payment_on_time", weights),
            at=at,
            reason=texts.paid_on_time(event.number),
            client_ref=ref,
        ),
    )


def hold(event: ClientOnHold, weights: Mapping[str, float], now: datetime, *, holds: int) -> NewSignal:
    """The hold's signal: `holds` is how many holds the client had before (this is one more)."""
    return NewSignal(
        key=f"hold:{event.client_ref}:{holds + 1}",
        kind="client_on_hold",
        weight=weigh("client_on_hold", weights),
        at=now,
        reason=texts.on_hold(event.invoices),
        client_ref=str(event.client_ref),
    )


def release(event: ClientReleased, weights: Mapping[str, float], now: datetime, *, holds: int) -> NewSignal:
    """The release of hold number `holds`."""
    return NewSignal(
        key=f"release:{event.client_ref}:{holds}",
        kind="client_released",
        weight=weigh("client_released", weights),
        at=now,
        reason=texts.released(),
        client_ref=str(event.client_ref),
    )


def credited(event: InvoiceCredited, weights: Mapping[str, float], now: datetime) -> tuple[NewSignal, ...]:
    return (
        NewSignal(
            key=f"credited:{event.invoice_id}",
            kind="invoice_credited",
            weight=weigh("invoice_credited", weights),
            at=now,
            reason=texts.credited(event.number, event.credit_note),
            client_ref=str(event.client_ref),
        ),
    )


# -- the work -----------------------------------------------------------------------------------------------------


def reviewed(
    event: ItemReviewed,
    weights: Mapping[str, float],
    *,
    requested_at: datetime | None,
    slow_days: float = SLOW_REVIEW_DAYS,
) -> tuple[NewSignal, ...]:
    """A verdict: changes asked (a revision round) or approved; and, when the client's own
    answer came `slow_days` or more after the request, a slow answer; approved by silence (the
    package's auto-approval), an unanswered review. A person's verdict on the client's behalf
    says nothing of the client's speed."""
    item, project = str(event.item_id), str(event.project_id)
    base = f"{item}:v{event.version}"
    found: list[NewSignal] = []
    if event.verdict == "changes":
        found.append(
            NewSignal(
                key=f"changes:{base}",
                kind="revision_round",
                weight=weigh("revision_round", weights),
                at=event.at,
                reason=texts.revision(item, event.version),
                project_id=project,
            )
        )
    elif event.by != "auto":
        found.append(
            NewSignal(
                key=f"approved:{base}",
                kind="review_approved",
                weight=weigh("review_approved", weights),
                at=event.at,
                reason=texts.approved(item),
                project_id=project,
            )
        )
    if event.by == "auto":
        found.append(
            NewSignal(
                key=f"silent:{base}",
                kind="review_silent",
                weight=weigh("review_silent", weights),
                at=event.at,
                reason=texts.silent_review(item),
                project_id=project,
            )
        )
    elif event.by in ("page", "email") and requested_at is not None:
        days = (event.at - requested_at).total_seconds() / 86400.0
        if days >= slow_days:
            found.append(
                NewSignal(
                    key=f"slow:{base}",
                    kind="review_slow",
                    weight=weigh("review_slow", weights),
                    at=event.at,
                    reason=texts.slow_review(item, days),
                    project_id=project,
                )
            )
    return tuple(found)


def item_late(event: ItemLate, weights: Mapping[str, float], now: datetime) -> tuple[NewSignal, ...]:
    """An item past its due date (once per item: its first due date is kept, for its delivery)."""
    return (
        NewSignal(
            key=f"late:{event.item_id}",
            kind="item_late",
            weight=weigh("item_late", weights),
            at=now,
            reason=texts.item_late(str(event.item_id), event.due),
            project_id=str(event.project_id),
            detail={"due": event.due.isoformat()},
        ),
    )


def retake(event: DraftChecked, weights: Mapping[str, float]) -> tuple[NewSignal, ...]:
    if event.passed:
        return ()
    return (
        NewSignal(
            key=f"retake:{event.item_id}:v{event.version}",
            kind="qc_retake",
            weight=weigh("qc_retake", weights),
            at=event.checked_at,
            reason=texts.retake(str(event.item_id), event.version),
            project_id=str(event.project_id),
        ),
    )


def delivered(event: ItemDelivered, weights: Mapping[str, float], *, due: date | None) -> tuple[NewSignal, ...]:
    """A delivery (once per item and version, whatever the method): late by the days past the
    due date production said it was late for, else on time (an item never said late is)."""
    item = str(event.item_id)
    key = f"delivered:{item}:v{event.version}"
    days = (event.delivered_at.astimezone(UTC).date() - due).days if due is not None else 0
    if days > 0:
        return (
            NewSignal(
                key=key,
                kind="delivered_late",
                weight=weigh("delivered_late", weights, days=days),
                at=event.delivered_at,
                reason=texts.delivered_late(item, days),
                project_id=str(event.project_id),
            ),
        )
    return (
        NewSignal(
            key=key,
            kind="delivered_on_time",
            weight=weigh("delivered_on_time", weights),
            at=event.delivered_at,
            reason=texts.delivered_on_time(item),
            project_id=str(event.project_id),
        ),
    )


def delivery_failing(event: DeliveryFailing, weights: Mapping[str, float], now: datetime) -> tuple[NewSignal, ...]:
    return (
        NewSignal(
            key=f"failing:{event.item_id}:v{event.version}:{event.method}",
            kind="delivery_failing",
            weight=weigh("delivery_failing", weights),
            at=now,
            reason=texts.delivery_failing(str(event.item_id), event.method, event.attempts),
            project_id=str(event.project_id),
        ),
    )


# -- results and tone ---------------------------------------------------------------------------------------------


def kpi(event: KpiMeasured, weights: Mapping[str, float], now: datetime) -> tuple[NewSignal, ...]:
    """A KPI's value for a period (the first one heard for the KPI and period counts)."""
    kind = "kpi_attained" if event.attained else "kpi_missed"
    return (
        NewSignal(
            key=f"kpi:{event.client_ref}:{event.kpi}:{event.period}",
            kind=kind,
            weight=weigh(kind, weights),
            at=now,
            reason=texts.kpi(event.kpi, event.period, event.value, event.target, attained=event.attained),
            client_ref=str(event.client_ref),
        ),
    )


def reply(
    inbound_id: int,
    category: str,
    client_ref: uuid.UUID | str,
    weights: Mapping[str, float],
    at: datetime,
    *,
    weak: bool,
) -> tuple[NewSignal, ...]:
    """A reply from the client, by its tone (`rules.tone`); a weak tie counts half."""
    kind = tone(category)
    if kind is None:
        return ()
    return (
        NewSignal(
            key=f"reply:{inbound_id}",
            kind=kind,
            weight=weigh(kind, weights, weak=weak),
            at=at,
            reason=texts.reply(category, weak=weak),
            client_ref=str(client_ref),
            detail={"category": category, "weak": weak},
        ),
    )


def weak_match(matched_by: str | None) -> bool:
    """A reply tied to the lead only by a guess (the sender's address)."""
    return matched_by in WEAK_MATCHES
