"""The simulated owner reads retention's renewal reminder as `cam.alerts` emails it, and the
client renews or not by its band: the world's parsing is checked against the real texts, so a
change of wording cannot silently stop the simulation renewing anyone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage

from aicmo_actors.cam.alerts import alert_body, alert_subject
from aicmo_actors.retention import texts
from aicmo_actors.runtime import FakeClock
from aicmo_actors.simulation.clients import Client, ClientBehaviour, Clients

REF = "0b5e2f3a-9c1d-4e8f-a7b6-123456789abc"
END = date(2027, 4, 4)


@dataclass
class Row:
    kind: str
    summary: str
    text: str
    campaign: str | None = None
    lead: str | None = None
    category: str | None = None


def reminder(days_left: int, band: str | None) -> EmailMessage:
    summary = texts.renewal_summary("Acme", END, days_left)
    text = texts.renewal_text("Acme", REF, END, days_left, band, 80.0 if band else None)
    row = Row("retention", summary, text)
    message = EmailMessage()
    message["Subject"] = alert_subject(row)  # type: ignore[arg-type]
    message.set_content(alert_body(row))  # type: ignore[arg-type]
    return message


def world(chance: float) -> tuple[Clients, Client, FakeClock]:
    clock = FakeClock(datetime(2027, 3, 5, 9, tzinfo=UTC), autojump=False)
    behaviour = ClientBehaviour(renews=(("green", chance), ("amber", 0.0)))
    clients = Clients(1, clock, "sqlite+aiosqlite:///unused.db", behaviour=behaviour, package={})
    client = Client("ann@acme.example", "on_time", "approves", deal_id=3, client_ref=REF)
    clients.clients[client.address] = client
    return clients, client, clock


def test_a_green_client_told_30_days_before_its_end_renews_once() -> None:
    clients, client, clock = world(1.0)
    clients.alerted(reminder(60, "green"))
    assert clock.next_deadline() is None and client.talked == set(), "60 days before: not yet"
    clients.alerted(reminder(30, "green"))
    assert clock.next_deadline() is not None and client.talked == {"2027-04-04"}
    first = clock.next_deadline()
    clients.alerted(reminder(30, "green"))  # the alert emailed again: one call
    clients.alerted(reminder(7, "green"))  # the same end: talked about already
    assert clock.next_deadline() == first and len(clock._timers) == 1  # type: ignore[attr-defined]


def test_a_red_or_unscored_client_does_not_renew_and_other_alerts_are_ignored() -> None:
    for band in ("red", None):
        clients, client, clock = world(1.0)
        clients.alerted(reminder(30, band))
        assert clock.next_deadline() is None and client.talked == {"2027-04-04"}, band
    clients, client, clock = world(1.0)
    hot = EmailMessage()
    hot["Subject"] = "[AICMO] interested: ann@acme.example"
    hot.set_content("Alert: interested\nthe contract ends 2027-04-04 (in 30 days)\n")
    clients.alerted(hot)
    assert clock.next_deadline() is None and client.talked == set()
