"""What production says to people: the saga's "waiting for", alerts, history lines. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

#: How a state reads in "waiting for" (in the order the items go through them).
_STATE_WORDS = (
    ("planned", "not started"),
    ("drafting", "being drafted"),
    ("changes_requested", "being revised"),
    ("in_qc", "in quality control"),
    ("signoff", "awaiting sign-off"),
    ("in_review", "in client review"),
    ("approved", "being delivered"),
    ("cancelled", "cancelled"),
)

UPLOAD_HINT = "python run.py work upload {item} FILE"


def waiting_for(total: int, counts: Mapping[str, int]) -> str:
    """e.g. "3 of 8 items delivered; 2 in client review; 3 being drafted"."""
    parts = [f"{counts.get('delivered', 0)} of {total} items delivered"]
    for state, words in _STATE_WORDS:
        if counts.get(state):
            parts.append(f"{counts[state]} {words}")
    return "; ".join(parts)


def findings_short(findings: Iterable[Mapping[str, Any]], limit: int = 5) -> str:
    """QC findings in one line: "spelling: 'teh'; length: too long"."""
    found = list(findings)
    parts = []
    for f in found[:limit]:
        excerpt = f" ({f['excerpt'][:40]!r})" if f.get("excerpt") else ""
        parts.append(f"{f.get('check')}: {str(f.get('message', ''))[:80]}{excerpt}")
    if len(found) > limit:
        parts.append(f"and {len(found) - limit} more")
    return "; ".join(parts) or "no findings"


def item_label(company: str, item_type: str, topic: str) -> str:
    return f'{company}: {item_type.replace("_", " ")} "{topic[:60]}"'


def late_alert(label: str, item: str, due: date, state: str, reason: str) -> tuple[str, str]:
    why = "past its due date" if reason == "due" else "past the package's turnaround"
    return (
        f"late work: {label}",
        f"Item {item} ({label}) is {why} (due {due.isoformat()}), still {state}. "
        f"See: python run.py work show {item[:8]}",
    )


def upload_alert(label: str, item: str, findings: str) -> tuple[str, str]:
    return (
        f"upload a draft: {label}",
        f"Item {item} ({label}) failed quality control after its retakes ({findings}). A person must write "
        f"the draft: {UPLOAD_HINT.format(item=item[:8])}",
    )


def round_alert(label: str, item: str, round_: int, included: int) -> tuple[str, str]:
    return (
        f"billable revision round {round_}: {label}",
        f"The client asked for changes to item {item} ({label}) in round {round_}; the package includes "
        f"{included}. The revision is made; the extra round is billable.",
    )


def signoff_alert(label: str, item: str, version: int) -> tuple[str, str]:
    return (
        f"sign-off needed: {label}",
        f"Version {version} of item {item} ({label}) passed quality control and needs a person's sign-off "
        f"before the client sees it: python run.py work signoff {item[:8]}",
    )


def generator_alert(label: str, item: str, error: str) -> tuple[str, str]:
    return (
        f"generator failing: {label}",
        f"The draft generator failed for item {item} ({label}): {error[:200]}. The templates wrote the draft "
        f"instead; check it, or upload one: {UPLOAD_HINT.format(item=item[:8])}",
    )


def history_written(version: int, source: str, tokens: int) -> str:
    extra = f", {tokens} tokens" if tokens else ""
    return f"version {version} written ({source}{extra})"


def history_qc(version: int, passed: bool, findings: str) -> str:
    return f"version {version} {'passed' if passed else 'failed'} QC: {findings}"


def history_review(version: int, verdict: str, by: str, comment: str) -> str:
    said = f": {comment[:300]}" if comment else ""
    return f"version {version} {'approved' if verdict == 'approved' else 'changes asked'} by the client ({by}){said}"


def history_delivered(version: int, method: str, receipt: str) -> str:
    return f"version {version} delivered by {method}: {receipt[:200] or 'no receipt'}"


def history_failing(version: int, method: str, attempts: int, error: str) -> str:
    return f"delivery of version {version} by {method} failing after {attempts} attempt(s): {error[:200]}"
