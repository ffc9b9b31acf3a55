"""What CAM says to people, in one place: alert summaries and texts, follow-up subjects.

Pure functions of their arguments. The actors use them, and so do the repositories that
store an alert in the same transaction as the decision behind it (a pause, an email that
could not be built): the wording lives here, never next to the SQL.
"""

from __future__ import annotations

from datetime import datetime


def campaign_paused(name: str, reason: str) -> str:
    """The summary (and text) of the alert a campaign's pause raises."""
    return f"Campaign {name} paused: {reason}"


def mailbox_paused(address: str, reason: str) -> str:
    """The summary (and text) of the alert a sending mailbox's pause raises."""
    return f"Mailbox {address} paused: {reason}"


def not_built_pause_reason(failures: int, error: str) -> str:
    """Why a campaign pauses when its emails keep failing to build."""
    return f"{failures} emails could not be built since it was last resumed (the last: {error[:150]})"


def not_built_alert(
    campaign: str, step: int, recipient: str, error: str, retry: datetime, paused: str | None
) -> tuple[str, str]:
    """The alert (summary, text) for a step that could not be rendered or built."""
    summary = f"campaign {campaign}: step {step} could not be built for {recipient}: {error[:200]}"
    text = (
        f"Step {step} of campaign {campaign} could not be rendered or built for {recipient}:\n\n"
        f"{error}\n\nNothing was sent. The lead is tried again on {retry:%Y-%m-%d %H:%M} UTC; "
        "fix the campaign file (python run.py campaign check FILE --leads FILE) or the lead's data."
        + (f"\n\nThe campaign is paused: {paused}" if paused else "")
    )
    return summary, text


def unverified_alert(summary: str, text: str, lead: str, matched_by: str) -> tuple[str, str]:
    """A reply worth a look that is tied to a lead only by a guess: said so, loudly."""
    how = "its sender address" if matched_by == "sender" else "a recipient its report names"
    return (
        f"{summary} (matched to {lead} only by {how}: nothing was changed)",
        text + "\n\n[This message is not tied to an email we sent (no Message-ID, return path or token "
        "of ours): nothing was changed. If it is genuine, act on it yourself, e.g. `python run.py suppress ADDRESS`.]",
    )


def follow_up_subject(first_subject: str) -> str:
    """A follow-up without a subject of its own answers the first email's: "Re: <subject>"."""
    if first_subject and not first_subject.lower().startswith("re:"):
        return f"Re: {first_subject}"
    return first_subject
