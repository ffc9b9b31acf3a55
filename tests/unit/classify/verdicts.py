"""What the corpus tables of the classifier tests check of a verdict, written once."""

from __future__ import annotations

from contracts.cam import SENDING_SIDE_REASONS, BounceReason, Classification, ReplyCategory

BOUNCES = {ReplyCategory.BOUNCE_HARD, ReplyCategory.BOUNCE_SOFT}


def assert_verdict(
    c: Classification, category: str, reason: str | None, failed: tuple[str, ...], in_reply_to: str | None
) -> None:
    """The category, reason, failed recipients and our Message-ID a table expects; evidence
    for every decision; a bounce's sending side as its reason says."""
    assert c.category == ReplyCategory(category), c.reasons
    assert c.reason == reason, c.reasons
    assert c.failed_recipients == failed, c.reasons
    assert c.in_reply_to == in_reply_to, c.reasons
    assert c.reasons, "every decision carries its evidence"
    if c.category in BOUNCES:
        assert c.sending_side == (BounceReason(c.reason) in SENDING_SIDE_REASONS)
