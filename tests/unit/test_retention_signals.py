"""From events to retention signals (`retention.signals`), pure: keys, kinds, weights, reasons."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from aicmo_actors.retention import signals as make
from aicmo_actors.retention.rules import DEFAULT_WEIGHTS
from contracts.billing import ClientOnHold, ClientReleased, InvoiceCredited, PaymentReceived, ReminderSent
from contracts.client_review import ItemReviewed
from contracts.delivery import DeliveryFailing, ItemDelivered
from contracts.production import ItemLate
from contracts.qc import DraftChecked
from contracts.reporting import KpiMeasured

W = DEFAULT_WEIGHTS
NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
CLIENT = uuid.UUID("11111111-2222-4333-8444-555555555555")
INVOICE = uuid.UUID("9a9a9a9a-1111-4222-8333-444444444444")
PROJECT = uuid.UUID("0b5e2f3a-9c1d-4e8f-a7b6-123456789abc")
ITEM = uuid.UUID("5a1f0c3e-7b2d-4c8e-9f10-aabbccddeeff")


def payment(**fields: Any) -> PaymentReceived:
    values: dict[str, Any] = {
        "invoice_id": INVOICE,
        "number": "2027-0004",
        "client_ref": CLIENT,
        "amount": Decimal("500"),
        "currency": "EUR",
        "balance": Decimal("400"),
        "paid_in_full": False,
        "received_on": date(2027, 2, 1),
    }
    return PaymentReceived(**{**values, **fields})


@pytest.mark.parametrize(
    ("event", "key", "kind", "weight", "reason"),
    [
        (
            payment(),
            f"partial:{INVOICE}:400",
            "payment_partial",
            -6.0,
            "invoice 2027-0004 paid in part: 400 EUR still owed",
        ),
        (
            payment(balance=Decimal("0"), paid_in_full=True, days_late=12),
            f"paid:{INVOICE}",
            "payment_late",
            -6.0,
            "invoice 2027-0004 paid 12 days late",
        ),
        (
            payment(balance=Decimal("-5"), paid_in_full=True),
            f"paid:{INVOICE}",
            "payment_on_time",
            3.0,
            "invoice 2027-0004 paid on time",
        ),
    ],
)
def test_payments(event: PaymentReceived, key: str, kind: str, weight: float, reason: str) -> None:
    (found,) = make.payment(event, W)
    assert (found.key, found.kind, found.weight, found.reason) == (key, kind, weight, reason)
    assert found.client_ref == str(CLIENT) and found.at == datetime(2027, 2, 1, 12, tzinfo=UTC)


def test_an_invoice_overdue() -> None:
    found = make.overdue(str(INVOICE), "2027-0004", str(CLIENT), date(2027, 1, 31), W)
    assert (found.key, found.kind, found.weight) == (f"overdue:{INVOICE}", "invoice_overdue", -6.0)
    assert found.at == datetime(2027, 2, 1, 12, tzinfo=UTC) and found.client_ref == str(CLIENT)
    assert found.reason == "invoice 2027-0004 unpaid past its due date (2027-01-31)"


@pytest.mark.parametrize(
    ("level", "days", "reason"),
    [
        (1, 7, "invoice 2027-0004: reminder 1 sent, 7 days overdue"),
        (3, 30, "invoice 2027-0004: reminder 3 sent, 30 days overdue"),
        (4, 44, "invoice 2027-0004: a repeating reminder sent, 44 days overdue"),
    ],
)
def test_reminders(level: int, days: int, reason: str) -> None:
    event = ReminderSent(invoice_id=INVOICE, number="2027-0004", client_ref=CLIENT, level=level, days_overdue=days)
    (found,) = make.reminder_sent(event, W, NOW)
    assert (found.key, found.kind, found.weight, found.reason) == (
        f"reminder:{INVOICE}:{level}:{days}",
        "reminder_sent",
        -8.0,
        reason,
    )


def test_holds_releases_and_credit_notes() -> None:
    hold = make.hold(ClientOnHold(client_ref=CLIENT, reason="x", invoices=("2027-0004",)), W, NOW, holds=1)
    assert (hold.key, hold.kind, hold.weight) == (f"hold:{CLIENT}:2", "client_on_hold", -20.0)
    assert hold.reason == "deliveries on hold for unpaid invoices (2027-0004)"
    released = make.release(ClientReleased(client_ref=CLIENT), W, NOW, holds=2)
    assert (released.key, released.kind, released.weight) == (f"release:{CLIENT}:2", "client_released", 5.0)
    credit = InvoiceCredited(invoice_id=INVOICE, number="2027-0004", credit_note="CN-2027-0001", client_ref=CLIENT)
    (found,) = make.credited(credit, W, NOW)
    assert (found.key, found.reason) == (
        f"credited:{INVOICE}",
        "invoice 2027-0004 cancelled by credit note CN-2027-0001",
    )


def reviewed(verdict: str, by: str, at: datetime = NOW) -> ItemReviewed:
    return ItemReviewed(
        project_id=PROJECT,
        batch_key="b",
        item_id=ITEM,
        version=2,
        verdict=verdict,
        by=by,
        at=at,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("verdict", "by", "asked_days_before", "kinds"),
    [
        ("changes", "page", 1, ["revision_round"]),
        ("changes", "email", 5, ["revision_round", "review_slow"]),
        ("approved", "page", 1, ["review_approved"]),
        ("approved", "page", 3, ["review_approved", "review_slow"]),
        ("approved", "auto", 10, ["review_silent"]),
        ("approved", "person", 10, ["review_approved"]),  # the agency's person: no speed
        ("changes", "page", None, ["revision_round"]),  # the request was not heard
    ],
)
def test_reviews(verdict: str, by: str, asked_days_before: float | None, kinds: list[str]) -> None:
    requested = None if asked_days_before is None else NOW - timedelta(days=asked_days_before)
    found = make.reviewed(reviewed(verdict, by), W, requested_at=requested)
    assert [s.kind for s in found] == kinds
    assert all(s.project_id == str(PROJECT) and s.client_ref is None for s in found)
    assert len({s.key for s in found}) == len(found)


def test_the_work_signals() -> None:
    (late,) = make.item_late(ItemLate(project_id=PROJECT, item_id=ITEM, due=date(2027, 1, 30), state="review"), W, NOW)
    assert (late.key, late.detail, late.reason) == (
        f"late:{ITEM}",
        {"due": "2027-01-30"},
        "item 5a1f0c3e late (due 2027-01-30)",
    )
    checked = DraftChecked(project_id=PROJECT, item_id=ITEM, version=1, passed=False, checked_at=NOW)
    (retake,) = make.retake(checked, W)
    assert (retake.key, retake.kind, retake.weight) == (f"retake:{ITEM}:v1", "qc_retake", -1.0)
    assert make.retake(checked.model_copy(update={"passed": True}), W) == ()
    failing = DeliveryFailing(project_id=PROJECT, item_id=ITEM, version=1, method="email", attempts=5, error="x")
    (fail,) = make.delivery_failing(failing, W, NOW)
    assert (fail.key, fail.reason) == (
        f"failing:{ITEM}:v1:email",
        "delivery of item 5a1f0c3e by email failing after 5 attempts",
    )


@pytest.mark.parametrize(
    ("due", "kind", "weight"),
    [
        (None, "delivered_on_time", 1.0),
        (date(2027, 2, 1), "delivered_on_time", 1.0),
        (date(2027, 1, 29), "delivered_late", -3.0),
        (date(2026, 12, 1), "delivered_late", -14.0),
    ],
)
def test_deliveries(due: date | None, kind: str, weight: float) -> None:
    event = ItemDelivered(project_id=PROJECT, item_id=ITEM, version=1, method="webhook", delivered_at=NOW)
    (found,) = make.delivered(event, W, due=due)
    assert (found.key, found.kind, found.weight) == (f"delivered:{ITEM}:v1", kind, weight)


@pytest.mark.parametrize(
    ("attained", "kind", "weight", "verdict"),
    [(True, "kpi_attained", 4.0, "met"), (False, "kpi_missed", -8.0, "missed")],
)
def test_kpis(attained: bool, kind: str, weight: float, verdict: str) -> None:
    event = KpiMeasured(client_ref=CLIENT, kpi="leads", period="2027-01", value=12.5, target=10, attained=attained)
    (found,) = make.kpi(event, W, NOW)
    assert (found.key, found.kind, found.weight) == (f"kpi:{CLIENT}:leads:2027-01", kind, weight)
    assert found.reason == f"KPI leads {verdict} in 2027-01: 12.5 against a target of 10"


@pytest.mark.parametrize(
    ("category", "weak", "kind", "weight"),
    [
        ("not_interested", False, "reply_negative", -15.0),
        ("complaint", True, "reply_negative", -7.5),
        ("meeting_request", False, "reply_positive", 3.0),
        ("question", False, None, None),
    ],
)
def test_replies(category: str, weak: bool, kind: str | None, weight: float | None) -> None:
    found = make.reply(41, category, CLIENT, W, NOW, weak=weak)
    if kind is None:
        assert found == ()
        return
    (signal,) = found
    assert (signal.key, signal.kind, signal.weight) == ("reply:41", kind, weight)
    assert ("weak tie" in signal.reason) is weak


@pytest.mark.parametrize(
    ("matched_by", "weak"), [("sender", True), ("message_id", False), ("token", False), (None, False)]
)
def test_weak_match(matched_by: str | None, weak: bool) -> None:
    assert make.weak_match(matched_by) is weak
