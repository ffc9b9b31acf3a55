"""The kickoff meeting invitation: one iCalendar (RFC 5545) request with one event. Pure.

METHOD:REQUEST, so a mail client offers to accept it; the UID is the project's, so an
invitation sent again (a new time) updates the same meeting instead of adding one. Times are
written in UTC (``...Z``): every calendar shows them in its own zone, and no VTIMEZONE has to
be carried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aicmo_actors.onboarding import texts
from aicmo_actors.onboarding.rules import KICKOFF_MINUTES

PRODID = "-//AICMO Actors//onboarding//EN"
#: The MIME type of the attachment (RFC 6047) and its file name.
CONTENT_TYPE = ("text", "calendar")
FILENAME = "invite.ics"
# A CN parameter is quoted: a quote, a line break or a control character in a name would end
# it (or the line). They are removed; the address itself went through the message builder.
_PARAM_UNSAFE = re.compile(r'["\x00-\x1f\x7f]')


@dataclass(frozen=True)
class Kickoff:
    """What the invitation says."""

    project_id: str
    company: str
    agency: str
    organizer: str
    attendee: str
    attendee_name: str | None
    start: datetime
    #: When the invitation was made (DTSTAMP): from the clock.
    stamp: datetime
    minutes: int = KICKOFF_MINUTES


def uid(project_id: str, organizer: str) -> str:
    """The meeting's UID: stable per project, in the agency's domain."""
    return f"kickoff-{project_id}@{organizer.rpartition('@')[2] or 'localhost'}"


def _param(text: str) -> str:
    return _PARAM_UNSAFE.sub("", text).strip()


def kickoff_ics(meeting: Kickoff) -> bytes:
    """The invitation as iCalendar bytes (CRLF lines, UTF-8)."""
    if meeting.start.tzinfo is None or meeting.stamp.tzinfo is None:
        raise ValueError("the kickoff's start and stamp must be timezone-aware")
    from icalendar import Calendar, Event, vCalAddress, vText  # on first use: ~20 ms at every start of the service

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "REQUEST")
    event = Event()
    event.add("uid", uid(meeting.project_id, meeting.organizer))
    event.add("dtstamp", meeting.stamp.astimezone(UTC))
    event.add("dtstart", meeting.start.astimezone(UTC))
    event.add("dtend", (meeting.start + timedelta(minutes=meeting.minutes)).astimezone(UTC))
    event.add("summary", texts.kickoff_summary(meeting.company, meeting.agency))
    event.add("description", texts.kickoff_description(meeting.company, meeting.agency))
    event.add("sequence", 0)
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer = vCalAddress(f"mailto:{meeting.organizer}")
    if _param(meeting.agency):
        organizer.params["cn"] = vText(_param(meeting.agency))
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{meeting.attendee}")
    if meeting.attendee_name and _param(meeting.attendee_name):
        attendee.params["cn"] = vText(_param(meeting.attendee_name))
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("NEEDS-ACTION")
    attendee.params["rsvp"] = vText("TRUE")
    event.add("attendee", attendee)
    calendar.add_component(event)
    return bytes(calendar.to_ical())
