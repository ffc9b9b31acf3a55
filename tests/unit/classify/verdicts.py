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


def assert_prefixes_never_raise(raw: bytes) -> None:
    """Thirteen cuts of `raw`, from nothing to all but its last byte: each is classified
    (never raises) and carries its evidence."""
    from aicmo_actors.cam.classify import classify_message

    step = max(1, len(raw) // 12)
    for cut in [*range(0, len(raw), step), len(raw) - 1]:
        c = classify_message(raw[: max(cut, 0)])
        assert c.category in set(ReplyCategory)
        assert c.reasons
