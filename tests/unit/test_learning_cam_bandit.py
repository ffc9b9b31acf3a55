"""CAM's side of the bandit: the `[bandit]` section of a campaign file (defaults, one-line errors,
an unchanged hash without it), the variant choice (sticky per lead, the learner's weights, the
floor, deterministic), the planner's assignment and the scheduler's announcement."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from aicmo_actors.cam.campaign import BanditSpec, CampaignFileError, CampaignSpec, parse_campaign
from aicmo_actors.cam.pacing import MailboxPacer
from aicmo_actors.cam.planning import plan_lead
from aicmo_actors.cam.repos import CampaignRow, DueLead
from aicmo_actors.cam.scheduler import bandit_campaign
from aicmo_actors.cam.send_rules import bandit_variant, choose_variant, floored, variant_weights
from contracts.cam import LeadState

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BOX = "alex@outreach.example.com"
BASE = f"""
name = "bandit"
timezone = "UTC"
postal_address = "Agency Ltd, 1 Road, Town"
[limits]
daily_cap = 100000
min_gap_seconds = 0
jitter_seconds = 0
[[mailboxes]]
address = "{BOX}"
[[steps]]
subject = "Hello"
body = "One"
  [[steps.variants]]
  name = "B"
  subject = "Hi"
[[steps]]
delay_days = 3
body = "Two"
[[steps]]
delay_days = 3
body = "Three"
  [[steps.variants]]
  name = "B"
  body = "Three, B"
  [[steps.variants]]
  name = "C"
  body = "Three, C"
"""


def spec(bandit: str = "[bandit]\n") -> CampaignSpec:
    return parse_campaign(BASE + "\n" + bandit, "c.toml")


def error_of(bandit: str, base: str = BASE) -> str:
    with pytest.raises(CampaignFileError) as info:
        parse_campaign(base + "\n" + bandit, "c.toml")
    assert "\n" not in str(info.value)
    return str(info.value)


# -- the campaign file ------------------------------------------------------------------------------------------------


def test_the_bandit_section_and_its_defaults() -> None:
    assert spec("").bandit is None
    assert spec().bandit == BanditSpec(window_days=14, burn_in=100, floor=0.01)
    found = spec("[bandit]\nwindow_days = 7\nburn_in = 50\nfloor = 0.05\n").bandit
    assert found == BanditSpec(window_days=7, burn_in=50, floor=0.05)


@pytest.mark.parametrize(
    ("bandit", "message"),
    [
        ("[bandit]\nwindow = 7\n", "c.toml: bandit.window: unknown key (a typo?)"),
        ("[bandit]\nwindow_days = 0\n", "c.toml: bandit.window_days: Input should be greater than 0"),
        ("[bandit]\nburn_in = 0\n", "c.toml: bandit.burn_in: Input should be greater than or equal to 1"),
        ("[bandit]\nfloor = 0.5\n", "c.toml: bandit.floor: Input should be less than 0.5"),
        ("[bandit]\nfloor = 0.4\n", "c.toml: bandit.floor: 0.4 for each of 3 variants is more than all the traffic"),
    ],
)
def test_bandit_mistakes_are_one_line(bandit: str, message: str) -> None:
    assert error_of(bandit) == message


def test_a_bandit_needs_a_step_with_variants() -> None:
    plain = BASE.split("  [[steps.variants]]")[0] + '[[steps]]\ndelay_days = 3\nbody = "Two"\n'
    assert error_of("[bandit]\n", plain) == (
        "c.toml: bandit: no step has variants to choose between (add [[steps.variants]])"
    )


def test_without_a_bandit_the_stored_json_and_hash_do_not_change() -> None:
    plain = spec("")
    assert '"bandit":' not in plain.to_json()
    with_bandit = spec()
    assert '"bandit":{' in with_bandit.to_json() and with_bandit.spec_hash() != plain.spec_hash()
    assert CampaignSpec.from_json(with_bandit.to_json()) == with_bandit
    assert CampaignSpec.from_json(plain.to_json()) == plain


# -- the choice -------------------------------------------------------------------------------------------------------


def test_without_weights_the_file_weights_decide_as_before() -> None:
    step = spec().steps[0]
    for lead in range(200):
        assert bandit_variant(step, str(lead), 1, floor=0.0) == choose_variant(step, str(lead), 1)


def test_the_learners_weights_move_the_choice_and_the_floor_holds() -> None:
    step = spec().steps[2]  # A, B, C
    counts = Counter(
        bandit_variant(step, str(lead), 1, floor=0.05, weights={"A": 0.0, "B": 1.0, "C": 0.0}) for lead in range(4000)
    )
    assert counts["B"] > 3500 and counts["A"] > 120 and counts["C"] > 120  # 90 % / 5 % / 5 %
    assert floored({"A": 0.0, "B": 1.0, "C": 0.0}, 0.05) == pytest.approx({"A": 0.05, "B": 0.9, "C": 0.05})


def test_weights_that_do_not_name_the_steps_variants_are_not_used() -> None:
    step = spec().steps[0]
    stale = {"A": 1.0, "OLD": 1.0}
    for lead in range(100):
        assert bandit_variant(step, str(lead), 1, floor=0.0, weights=stale) == choose_variant(step, str(lead), 1)


def test_a_lead_keeps_its_variant_where_the_step_has_it() -> None:
    steps = spec().steps
    assert bandit_variant(steps[2], "7", 1, floor=0.01, weights={"A": 1, "B": 0, "C": 0}, sticky="B") == "B"
    assert bandit_variant(steps[1], "7", 1, floor=0.01, sticky="B") == "A"  # no variants: the step's text
    # A name the step does not have: chosen by the weights.
    assert bandit_variant(steps[0], "7", 1, floor=0.0, weights={"A": 1.0, "B": 0.0}, sticky="C") == "A"


def test_the_choice_is_deterministic() -> None:
    step = spec().steps[2]
    weights = {"A": 0.2, "B": 0.5, "C": 0.3}
    first = [bandit_variant(step, str(lead), 9, floor=0.01, weights=weights) for lead in range(300)]
    assert first == [bandit_variant(step, str(lead), 9, floor=0.01, weights=weights) for lead in range(300)]


# -- planning and the announcement ----------------------------------------------------------------------------------


def _plan(row: CampaignRow, lead_id: int, step: int = 0, **bandit: object):  # type: ignore[no-untyped-def]
    return plan_lead(
        DueLead(lead_id, row.name, f"p{lead_id}@prospect.example", LeadState.ACTIVE, step, None),
        row,
        MailboxPacer(random.Random(1)),
        NOW,
        NOW + timedelta(hours=1),
        suppressed=frozenset(),
        paused_mailboxes=frozenset(),
        seed=1,
        message_id=lambda lead_id, step, mailbox: f"<{lead_id}.{step}@x>",
        **bandit,  # type: ignore[arg-type]
    )


def test_the_planner_assigns_a_bandit_campaigns_first_variant_once() -> None:
    row = CampaignRow(1, "bandit", spec("[bandit]\nfloor = 0.0\n"), "active", None, None)
    first = _plan(row, 7, bandit_weights={("bandit", 1): {"A": 0.0, "B": 1.0}})
    assert first.send is not None and first.send.variant == "B" and first.send.assign
    # Later steps: sticky where the step has the variant; nothing new to record.
    third = _plan(row, 7, step=2, sticky={7: "B"}, bandit_weights={("bandit", 3): {"A": 1.0, "B": 0.0, "C": 0.0}})
    assert third.send is not None and third.send.variant == "B" and not third.send.assign
    # A step without variants is not an assignment.
    second = _plan(row, 8, step=1)
    assert second.send is not None and second.send.variant == "A" and not second.send.assign


def test_a_campaign_without_a_bandit_plans_as_before() -> None:
    row = CampaignRow(1, "bandit", spec(""), "active", None, None)
    for lead_id in range(50):
        planned = _plan(row, lead_id, bandit_weights={("bandit", 1): {"A": 0.0, "B": 1.0}}, sticky={lead_id: "B"})
        assert planned.send is not None and not planned.send.assign
        assert planned.send.variant == choose_variant(row.spec.steps[0], str(lead_id), 1)


def test_the_announcement_names_the_steps_with_variants() -> None:
    found = bandit_campaign(spec("[bandit]\nwindow_days = 3\n"))
    assert (found.campaign, found.window_days, found.burn_in, found.floor) == ("bandit", 3, 100, 0.01)
    assert [(s.step, s.weights) for s in found.steps] == [
        (1, {"A": 1.0, "B": 1.0}),
        (3, {"A": 1.0, "B": 1.0, "C": 1.0}),
    ]
    assert variant_weights(spec().steps[1]) == {"A": 1.0}
