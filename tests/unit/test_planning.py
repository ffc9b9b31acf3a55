"""The scheduler's planning and the rule it shares with the sender's last check, table by table."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aicmo_actors.cam.campaign import parse_campaign
from aicmo_actors.cam.pacing import MailboxPacer
from aicmo_actors.cam.planning import LeadPlan, SchedulePlan, mailbox_for, plan_lead
from aicmo_actors.cam.repos import CampaignRow, DueLead
from aicmo_actors.cam.send_rules import NotNow, may_send
from contracts.cam import LeadState

MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # inside the default window (weekdays 09-17)
MONDAY_20 = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
TUESDAY_09 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
BOX = "alex@outreach.example.com"
SPEC = parse_campaign(
    f"""
name = "plan"
timezone = "UTC"
postal_address = "Agency Ltd, 1 Road, Town"
[limits]
daily_cap = 2
min_gap_seconds = 600
jitter_seconds = 0
[[mailboxes]]
address = "{BOX}"
[[steps]]
subject = "Hello"
body = "One"
[[steps]]
delay_days = 3
body = "Two"
"""
)


def campaign(status: str = "active") -> CampaignRow:
    return CampaignRow(1, "plan", SPEC, status, None, None)


def lead(state: LeadState = LeadState.ACTIVE, step: int = 0, lead_id: int = 7) -> DueLead:
    return DueLead(lead_id, "plan", f"p{lead_id}@prospect.example", state, step, None)


def plan(
    due: DueLead,
    row: CampaignRow | None = None,
    *,
    now: datetime = MONDAY_10,
    suppressed: frozenset[str] = frozenset(),
    paused: frozenset[str] = frozenset(),
    pacer: MailboxPacer | None = None,
) -> LeadPlan:
    return plan_lead(
        due,
        row if row is not None else campaign(),
        pacer or MailboxPacer(random.Random(1)),
        now,
        now + timedelta(hours=1),
        suppressed=suppressed,
        paused_mailboxes=paused,
        seed=1,
        message_id=lambda lead_id, step, mailbox: f"<{lead_id}.{step}@{mailbox.rpartition('@')[2]}>",
    )


# -- may_send: the one rule ----------------------------------------------------------------------
def _never() -> datetime | None:
    raise AssertionError("the window was asked for although something else decided first")


@pytest.mark.parametrize(
    ("campaign_active", "suppressed", "state", "opens", "mailbox_paused", "expected"),
    [
        (True, False, LeadState.ACTIVE, None, False, None),
        (False, True, LeadState.REPLIED, TUESDAY_09, True, "campaign"),  # a paused campaign decides first
        (True, True, LeadState.PAUSED, TUESDAY_09, True, "suppressed"),
        (True, False, LeadState.PAUSED, TUESDAY_09, True, "lead"),
        (True, False, LeadState.UNSUBSCRIBED, None, False, "lead"),
        (True, False, LeadState.ACTIVE, TUESDAY_09, True, "window"),  # the window before the mailbox
        (True, False, LeadState.ACTIVE, None, True, "mailbox"),
    ],
)
def test_may_send_decides_in_one_order(
    campaign_active: bool,
    suppressed: bool,
    state: LeadState,
    opens: datetime | None,
    mailbox_paused: bool,
    expected: str | None,
) -> None:
    asks_window = campaign_active and not suppressed and state is LeadState.ACTIVE
    verdict = may_send(
        campaign_active=campaign_active,
        suppressed=suppressed,
        lead_state=state,
        window_opens=(lambda: opens) if asks_window else _never,
        mailbox_paused=mailbox_paused,
    )
    assert (verdict.kind if verdict else None) == expected
    if expected == "window":
        assert verdict == NotNow("window", "outside the send window", TUESDAY_09)


# -- plan_lead ------------------------------------------------------------------------------------
def test_an_active_lead_in_its_window_is_queued_from_its_mailbox() -> None:
    decided = plan(lead())
    assert decided.outcome == "queued" and decided.send is not None
    assert (decided.send.step, decided.send.mailbox, decided.send.send_at) == (1, BOX, None)
    assert decided.send.message_id == "<7.1@outreach.example.com>"
    assert decided.send.recipient == "p7@prospect.example"


@pytest.mark.parametrize(
    ("due", "row", "now", "suppressed", "paused", "outcome", "change", "until"),
    [
        (lead(), campaign("paused"), MONDAY_10, frozenset(), frozenset(), "skipped", None, None),
        (lead(), None, MONDAY_10, frozenset(), frozenset(), "skipped", None, None),
        (lead(), campaign(), MONDAY_10, frozenset({"p7@prospect.example"}), frozenset(), "skipped", "suppressed", "-"),
        (lead(LeadState.PAUSED), campaign(), MONDAY_20, frozenset(), frozenset(), "resumed", "resumed", "-"),
        (lead(LeadState.REPLIED), campaign(), MONDAY_10, frozenset(), frozenset(), "skipped", None, None),
        (lead(step=2), campaign(), MONDAY_20, frozenset(), frozenset({BOX}), "completed", "completed", "-"),
        (lead(), campaign(), MONDAY_20, frozenset(), frozenset({BOX}), "deferred", None, TUESDAY_09),
        (
            lead(),
            campaign(),
            MONDAY_10,
            frozenset(),
            frozenset({BOX}),
            "deferred",
            None,
            MONDAY_10 + timedelta(hours=1),
        ),
    ],
    ids=[
        "campaign-paused",
        "campaign-gone",
        "suppressed",
        "auto-reply-over",
        "lead-done",
        "no-step-left",
        "window-closed",
        "mailbox-paused",
    ],
)
def test_what_a_due_lead_gets(
    due: DueLead,
    row: CampaignRow | None,
    now: datetime,
    suppressed: frozenset[str],
    paused: frozenset[str],
    outcome: str,
    change: str | None,
    until: datetime | str | None,
) -> None:
    pacer = MailboxPacer(random.Random(1))
    decided = plan_lead(
        due,
        row,
        pacer,
        now,
        now + timedelta(hours=1),
        suppressed=suppressed,
        paused_mailboxes=paused,
        seed=1,
        message_id=lambda *_: "<never@x>",
    )
    assert decided.outcome == outcome
    assert decided.change == change
    assert decided.send is None
    if until == "-":
        assert decided.deferral is None
    else:
        assert decided.deferral is not None and decided.deferral.until == until
    assert pacer.usage == {}  # nothing planned, nothing counted


def test_the_daily_cap_defers_to_the_next_day_and_the_gap_paces_within_the_tick() -> None:
    pacer = MailboxPacer(random.Random(1))
    horizon_s = 3600
    now = MONDAY_10

    def one(lead_id: int) -> LeadPlan:
        return plan_lead(
            lead(lead_id=lead_id),
            campaign(),
            pacer,
            now,
            now + timedelta(seconds=horizon_s),
            suppressed=frozenset(),
            paused_mailboxes=frozenset(),
            seed=1,
            message_id=lambda *_: f"<{lead_id}@x>",
        )

    first, second, third = one(1), one(2), one(3)
    assert first.send is not None and first.send.send_at is None  # now
    assert second.send is not None and second.send.send_at == now + timedelta(seconds=600)  # after the gap
    assert third.outcome == "deferred" and third.deferral is not None
    assert third.deferral.until is not None and third.deferral.until >= TUESDAY_09  # cap of 2 reached today
    assert "daily cap of 2" in third.deferral.why


def test_a_schedule_plan_collects_each_decision_where_it_is_written() -> None:
    collected = SchedulePlan()
    for decided in (
        plan(lead(lead_id=1)),
        plan(lead(LeadState.PAUSED, lead_id=2)),
        plan(lead(step=2, lead_id=3)),
        plan(lead(lead_id=4), suppressed=frozenset({"p4@prospect.example"})),
        plan(lead(lead_id=5), now=MONDAY_20),
    ):
        collected.add(decided)
    assert [s.lead_id for s in collected.sends] == [1]
    assert collected.resumed == [2] and collected.completed == [3] and collected.suppressed == [4]
    assert [d.lead_id for d in collected.deferrals] == [5]


def test_a_lead_always_writes_from_the_same_mailbox() -> None:
    boxes = ["a@x.example", "b@x.example", "c@x.example"]
    chosen = {mailbox_for(n, boxes) for n in range(30)}
    assert chosen == set(boxes)
    assert all(mailbox_for(n, boxes) == mailbox_for(n, list(boxes)) for n in range(30))
