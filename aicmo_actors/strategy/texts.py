"""What strategy says to people, in one place: the plan's sentences, the emails to the client.

Pure functions of their arguments (no locale: month names are spelled here, so a plan reads
the same on every machine). The HTML and PDF layouts are in `render.py` and `templates/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from aicmo_actors.gateways.calendar import zone

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_TYPE_LABELS = {
    "blog_post": "Blog post",
    "social_post": "Social post",
    "newsletter": "Newsletter",
    "landing_page": "Landing page",
    "case_study": "Case study",
    "whitepaper": "White paper",
    "email": "Email",
    "video_script": "Video script",
}
_CHANNEL_LABELS = {
    "linkedin": "LinkedIn",
    "twitter": "X (Twitter)",
    "x": "X (Twitter)",
    "instagram": "Instagram",
    "facebook": "Facebook",
    "youtube": "YouTube",
    "tiktok": "TikTok",
    "email": "Email",
    "blog": "Blog",
    "website": "Website",
}
_KPI_LABELS = {
    "organic_sessions": "Organic sessions",
    "mql": "Marketing-qualified leads",
    "mqls": "Marketing-qualified leads",
    "sql": "Sales-qualified leads",
    "ctr": "Click-through rate",
    "open_rate": "Email open rate",
    "demo_requests": "Demo requests",
}
_CADENCE = {"weekly": "every week", "fortnightly": "every two weeks", "monthly": "every month"}

#: What a topic falls back to when no phrase of the brief fits (every other one contained a
#: word to avoid, or the brief was empty): a placeholder a person replaces.
FALLBACK_AUDIENCE = "your clients"
FALLBACK_GOAL = "growth"


def _humanize(name: str) -> str:
    words = name.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def type_label(kind: str) -> str:
    return _TYPE_LABELS.get(kind.lower(), _humanize(kind))


def channel_label(channel: str) -> str:
    return _CHANNEL_LABELS.get(channel.lower(), _humanize(channel))


def kpi_label(name: str) -> str:
    return _KPI_LABELS.get(name.lower(), _humanize(name))


def plural(count: int, label: str) -> str:
    """ "1 blog post", "4 blog posts", "2 case studies" (a capital kept only on an acronym)."""
    text = label[:1].lower() + label[1:] if label[1:2].islower() else label
    if count != 1 and not text.endswith("s"):
        text = text[:-1] + "ies" if text.endswith("y") and text[-2:-1] not in "aeiou" else text + "s"
    return f"{count} {text}"


def day(value: date) -> str:
    """ "Mon 2 March 2026"."""
    return f"{WEEKDAYS[value.weekday()][:3]} {value.day} {MONTHS[value.month - 1]} {value.year}"


def short_day(value: date) -> str:
    """ "Mon 2 Mar 2026" (for tables)."""
    return f"{WEEKDAYS[value.weekday()][:3]} {value.day} {MONTHS[value.month - 1][:3]} {value.year}"


def month(value: date) -> str:
    return MONTHS[value.month - 1]


def number(value: float) -> str:
    """1200.0 -> "1,200"; 2.5 -> "2.5"."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def length_limits(min_words: int | None, max_words: int | None, max_chars: int | None) -> str:
    """ "800-1,200 words", "up to 1,300 characters", or "" with no limit."""
    parts = []
    if min_words and max_words:
        parts.append(f"{number(min_words)}-{number(max_words)} words")
    elif max_words:
        parts.append(f"up to {number(max_words)} words")
    elif min_words:
        parts.append(f"at least {number(min_words)} words")
    if max_chars:
        parts.append(f"up to {number(max_chars)} characters")
    return ", ".join(parts)


def kpi_target(target: float, unit: str, direction: str) -> str:
    """ "at least 1,200 sessions" (up) or "at most 2.5 %" (down)."""
    words = "at least" if direction == "up" else "at most"
    unit_text = f" {unit}" if unit else ""
    return f"{words} {number(target)}{unit_text}"


def baseline_note(reporting: str) -> str:
    cadence = _CADENCE.get(reporting, reporting)
    return f"Baseline measured at the start of the period (first report); progress reported {cadence}."


def plan_summary(
    company: str, counts: Sequence[tuple[str, int]], start: date, end: date, goal: str | None, reporting: str
) -> str:
    """One paragraph: what the period delivers, for what, and how progress is reported."""
    made = ", ".join(plural(count, label) for label, count in counts) or "no deliverables"
    aim = f", aimed at {goal}" if goal else ""
    cadence = _CADENCE.get(reporting, reporting)
    return (
        f"From {day(start)} to {day(end)}, we produce for {company}: {made}{aim}. "
        f"We report progress on the KPIs below {cadence}."
    )


def note_business_days(country: str) -> str:
    return (
        f"Due dates are business days in {country.upper()}: weekends and public holidays are skipped, "
        "and nothing is due before our turnaround allows."
    )


def note_topics() -> str:
    return "Topics are proposals drawn from your brief: tell us if any should change."


def note_crowded(label: str, pieces: int, days: int, per_day: int, after_period: bool, earliest: date) -> str:
    """Why some pieces share a due date (the period is too short for one a day)."""
    if after_period:
        return (
            f"{plural(pieces, label)}: the turnaround leaves no business day in this period, "
            f"so they are due on {day(earliest)}, after it ends."
        )
    return (
        f"{plural(pieces, label)} over {plural(days, 'business day')}: up to {per_day} are due on one day, "
        "the extra ones on the last business days."
    )


def round_outcome(version: int, changed: int, avoided: Sequence[str]) -> str:
    """What the revision after the client's comments on `version` did with them."""
    words = ", ".join(avoided)
    if changed:
        topics = "1 topic was" if changed == 1 else f"{changed} topics were"
        first = f"In version {version + 1}, {topics} replaced because of words you asked us to avoid ({words}). "
    elif avoided:
        first = f"No topic contained the words you asked us to avoid ({words}). "
    else:
        first = ""
    return first + "Everything else you wrote is with our team, who will come back to you on it."


def fallback_topic(label: str, piece: int, period: date | None = None) -> str:
    """The topic of a piece no new topic was found for (`period`: a later period's first day,
    named so that no two periods share one)."""
    if period is not None:
        return f"{label} {piece} of {month(period)} {period.year}: topic to agree with you"
    return f"{label} {piece}: topic to agree with you"


# -- emails to the client --------------------------------------------------------------------------------------------


def deadline_text(deadline: datetime, tz: str) -> str:
    local = deadline.astimezone(zone(tz))
    return f"{day(local.date())}, {local:%H:%M} ({tz})"


def plan_subject(company: str, start: date, version: int) -> str:
    again = f" (version {version})" if version > 1 else ""
    return f"{company}: your plan for {month(start)} {start.year}{again}, for your approval"


def plan_email(
    *,
    contact_name: str | None,
    company: str,
    agency: str,
    summary: str,
    url: str,
    deadline: str,
    version: int,
    last_round: bool,
) -> str:
    """The plain-text email that carries the plan (the PDF is attached)."""
    hello = f"Hello {contact_name}," if contact_name else "Hello,"
    if version == 1:
        opening = f"Here is the plan for {company}'s first period."
    else:
        opening = f"Thank you for your comments. Here is version {version} of the plan for {company}."
    last = (
        "\nThis is the last version your package includes: if more should change, we will call you to settle it.\n"
        if last_round
        else ""
    )
    return (
        f"{hello}\n\n{opening}\n\n{summary}\n\n"
        "The plan is attached as a PDF, and it is on this page, where you can approve it or tell us "
        "what should change (we then send you a new version):\n\n"
        f"{url}\n\n"
        f"We would be grateful for your answer by {deadline}.\n{last}\n"
        "The link is personal: whoever has it can answer for you, so please do not forward it.\n\n"
        f"Best regards,\n{agency}\n"
    )


def cancelled_subject(company: str) -> str:
    return f"{company}: the plan we sent you is withdrawn"


def cancelled_email(*, contact_name: str | None, company: str, agency: str) -> str:
    hello = f"Hello {contact_name}," if contact_name else "Hello,"
    return (
        f"{hello}\n\nThe plan we sent you for {company} is withdrawn: the project has been stopped, "
        "and the link to the plan no longer works. Nothing more is needed from you.\n\n"
        "If you have a question, simply reply to this email.\n\n"
        f"Best regards,\n{agency}\n"
    )
