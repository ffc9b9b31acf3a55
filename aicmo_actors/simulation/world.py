"""The simulated world: an in-process SMTP sink and prospects who answer through the inbox.

Everything is driven by the fake clock and one seed. A prospect's fate is drawn when the
first email reaches them (interested, not interested, a question, a meeting request, a
referral, out of office with a return date, unsubscribe, hard or soft bounce, or silence);
their mail is written into the inbox Maildir at the simulated moment it would arrive, so it
reaches the service through the same inbox path it uses in production.

Some interested prospects sign and become clients (`clients.Clients`): the emails the
modules after the deal send them come through a sink of their own (`client_transport`) and
are kept apart from the prospecting ones (`client_emails`).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from aicmo_actors.gateways.mail_message import wire_bytes
from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.runtime import FakeClock, killpoints
from aicmo_actors.runtime.activity import current_holder
from aicmo_actors.simulation import mails
from aicmo_actors.simulation.clients import ClientBehaviour, Clients
from aicmo_actors.simulation.faults import roll

FATES = (
    "interested",
    "not_interested",
    "question",
    "meeting",
    "referral",
    "unsubscribe",
    "ooo",
    "hard_bounce",
    "soft_bounce",
    "dead_at_rcpt",
    "silent",
)


@dataclass(frozen=True)
class Behaviour:
    """How prospects answer (probabilities of a fate, drawn once per prospect)."""

    interested: float = 0.04
    not_interested: float = 0.06
    question: float = 0.03
    meeting: float = 0.02
    referral: float = 0.01
    unsubscribe: float = 0.02
    ooo: float = 0.05
    hard_bounce: float = 0.02
    soft_bounce: float = 0.02
    #: The address is refused at RCPT TO (550 5.1.1) instead of bouncing by report later.
    dead_at_rcpt: float = 0.0
    reply_delay_h: tuple[float, float] = (0.5, 60.0)
    #: Who of the interested signs, and how clients answer the intake and the plan.
    clients: ClientBehaviour = field(default_factory=ClientBehaviour)

    def draw(self, rng: random.Random) -> str:
        roll = rng.random()
        for fate in FATES[:-1]:
            roll -= getattr(self, fate)
            if roll < 0:
                return fate
        return "silent"


@dataclass(frozen=True)
class Faults:
    """Seeded faults. Probabilities are per send attempt (SMTP), per inbox poll (inbox), per
    database commit and per kill point (`kill_anywhere`); `process_kills` is how many times
    the whole process is killed at quiet moments. A kill drops everything in memory (no
    drain, no on_stop: mailboxes, timers, half-done work) and a new process starts on the
    same database."""

    smtp_4xx: float = 0.0
    smtp_5xx_blocked: float = 0.0
    drop_before_data: float = 0.0  # the connection dies before the payload: temporary
    drop_after_data: float = 0.0  # it dies after the payload: the server may have it
    crash_in_sender: float = 0.0
    inbox_disconnect: float = 0.0
    db_commit_error: float = 0.0
    process_kills: int = 0  # at seeded moments: timers, mailboxes and memory are lost
    kill_in_send: float = 0.0  # per send: killed after the server took the message, before the reply
    max_kills_in_send: int = 3
    # Per kill point (aicmo_actors.runtime.killpoints: a store call about to start or just
    # committed, a publish, a tell, a send, a fetch), decided per actor from the seed.
    kill_anywhere: float = 0.0
    max_lives_killed_anywhere: int = 8  # a bound on restarts, whatever the probability


NO_FAULTS = Faults()
#: Every fault at once, often enough to matter in a small run: what the CI seeds and
#: `python -m bench sim` soak with. SMTP 4xx and 5xx (a block list), the connection
#: dropped before and after DATA, a crash in the middle of a send, inbox disconnects,
#: failed commits, the process killed twice at seeded moments, up to three times right
#: after the server took a message, and at seeded kill points (a few times in a 12-day,
#: 12-lead run), each time restarted on the same database.
ALL_FAULTS = Faults(
    smtp_4xx=0.05,
    smtp_5xx_blocked=0.01,
    drop_before_data=0.02,
    drop_after_data=0.02,
    crash_in_sender=0.02,
    inbox_disconnect=0.1,
    db_commit_error=0.01,
    process_kills=2,
    kill_in_send=0.02,
    kill_anywhere=0.0004,
)
#: A dirty list and quick answers, so that a small run meets every kind of reply; and quick
#: deals, so that a 12-day run sees clients signing, onboarded and approving plans.
BUSY_PROSPECTS = Behaviour(
    interested=0.1,
    unsubscribe=0.08,
    ooo=0.1,
    hard_bounce=0.05,
    soft_bounce=0.06,
    reply_delay_h=(0.5, 30),
    clients=ClientBehaviour(signs=0.8, sign_delay_days=(0.5, 3.0)),
)


@dataclass
class Delivery:
    at: datetime
    mail_from: str
    recipient: str
    message_id: str
    raw: bytes
    outcome: str  # accepted / unconfirmed (delivered but the reply was lost)
    bounced: bool = False
    life: int = 1  # which life of the service sent it


@dataclass
class WrittenMail:
    at: datetime
    kind: str
    recipient: str  # the prospect who answered (or bounced)
    in_reply_to: str
    message_id: str


@dataclass
class World:
    """The outside world of one simulated run."""

    seed: int
    clock: FakeClock
    inbox_dir: Path
    behaviour: Behaviour = field(default_factory=Behaviour)
    faults: Faults = field(default_factory=Faults)
    alert_addresses: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.rng = random.Random(f"world:{self.seed}")
        self.fault_rng = random.Random(f"faults:{self.seed}")
        self.fates: dict[str, str] = {}
        self.answered: set[str] = set()
        self.soft_bounced: set[str] = set()
        self.deliveries: list[Delivery] = []
        #: Emails refused at RCPT (the address is dead): never delivered.
        self.rejected: list[Delivery] = []
        self.alert_emails: list[Delivery] = []
        #: What reached signed clients (the modules after the deal), apart from prospecting.
        self.client_emails: list[Delivery] = []
        #: The clients (`run.py` sets them when the modules after the deal run): None, nobody signs.
        self.clients: Clients | None = None
        #: The clients' publishing systems (delivery's webhooks) and the writer of the drafts,
        #: with the problems it planted (`receiver.Receiver`, `drafts.PlantingGenerator`).
        self.receiver: Any = None
        self.writer: Any = None
        self._client_attempts: dict[str, int] = {}
        self.written: list[WrittenMail] = []
        self.crashes = 0
        self.kills_in_send = 0
        #: Of them, while sending to a client (not capped by `max_kills_in_send`: each one is
        #: drawn from its email alone, whatever else is sent at that instant).
        self.client_kills_in_send = 0
        #: Set when the process is to die; `frozen` holds the actors held at their point of
        #: death (in the sink, or at a kill point) until it does. Both reset per life.
        self.kill_requested = asyncio.Event()
        self.frozen: list[object] = []
        self.life = 1
        self.kills_allowed = True  # False once the run is over: the last polls must finish
        self.faults_allowed = True  # False for the last poll: nothing it starts can be retried
        self._seq = 0
        for sub in ("tmp", "new", "cur"):
            (self.inbox_dir / sub).mkdir(parents=True, exist_ok=True)

    # -- the SMTP sink -------------------------------------------------------------------------
    def transport(self, mailbox: str = "") -> SimSink:
        return SimSink(self)

    def client_transport(self) -> SimSink:
        """The sink emails to clients go through (onboarding's, strategy's)."""
        return SimSink(self, to_clients=True)

    def accept(self, message: EmailMessage, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        faults = self.faults if self.faults_allowed else NO_FAULTS
        roll = self.fault_rng.random()
        if roll < faults.crash_in_sender:
            self.crashes += 1
            raise SimulatedCrash("simulated crash in the middle of a send")
        roll = self.fault_rng.random()
        if roll < faults.smtp_4xx:
            return SendResult(
                outcome="temporary", smtp_code=451, smtp_text="4.3.0 Temporary local problem, try again", stage="rcpt"
            )
        roll -= faults.smtp_4xx
        if roll < faults.smtp_5xx_blocked:
            return SendResult(
                outcome="permanent",
                smtp_code=554,
                smtp_text="5.7.1 Service unavailable; client host [192.0.2.10] blocked using zen.spamhaus.org",
                stage="rcpt",
            )
        roll -= faults.smtp_5xx_blocked
        if roll < faults.drop_before_data:
            return SendResult(
                outcome="temporary",
                smtp_code=None,
                smtp_text="Connection lost: [Errno 104] Connection reset by peer",
                stage="mail",
            )
        for rcpt in rcpt_to:
            address = rcpt.lower()
            if address in self.alert_addresses:
                continue
            fate = self.fates.get(address)
            if fate is None:
                fate = self.fates[address] = self.behaviour.draw(self.rng)
            if fate == "dead_at_rcpt":
                self.rejected.append(
                    Delivery(
                        self.clock.now(), mail_from, address, str(message["Message-ID"]), b"", "refused", life=self.life
                    )
                )
                return SendResult(
                    outcome="permanent",
                    smtp_code=550,
                    smtp_text=f"5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table",
                    stage="rcpt",
                )
        now = self.clock.now()
        raw = wire_bytes(message)
        message_id = str(message["Message-ID"])
        dropped = self.fault_rng.random() < faults.drop_after_data
        outcome = "unconfirmed" if dropped else "accepted"
        for rcpt in rcpt_to:
            record = Delivery(now, mail_from, rcpt.lower(), message_id, raw, outcome, life=self.life)
            if rcpt.lower() in self.alert_addresses:
                self.alert_emails.append(record)
                if self.clients is not None:
                    self.clients.alerted(message)
                continue
            self.deliveries.append(record)
            self._prospect_reacts(record, message)
        if dropped:
            return SendResult(
                outcome="unconfirmed", smtp_code=None, smtp_text="connection lost after DATA", stage="after_data"
            )
        if (
            self.kills_allowed
            and self.kills_in_send < faults.max_kills_in_send
            and self.fault_rng.random() < faults.kill_in_send
            and not (set(r.lower() for r in rcpt_to) & self.alert_addresses)
        ):
            # The server has the message; the process dies before the 250 reaches it.
            self.kills_in_send += 1
            self.kill_requested.set()
            raise ProcessKilled("simulated kill after the server accepted the message")
        return SendResult(outcome="accepted", smtp_code=250, smtp_text="2.0.0 Ok: queued", stage="data")

    def accept_client(self, message: EmailMessage, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        """An email to a client: the same SMTP faults as prospecting, each drawn from the seed,
        the email and its attempt (not from a shared stream: the order in which the modules'
        actors send at one instant must not matter); then the client reads it."""
        faults = self.faults if self.faults_allowed else NO_FAULTS
        message_id = str(message["Message-ID"])
        attempt = self._client_attempts[message_id] = self._client_attempts.get(message_id, 0) + 1

        def chance(fault: str) -> float:
            return roll(self.seed, "client-smtp", fault, message_id, attempt)

        if chance("crash") < faults.crash_in_sender:
            self.crashes += 1
            raise SimulatedCrash("simulated crash in the middle of a send")
        if chance("4xx") < faults.smtp_4xx:
            return SendResult(
                outcome="temporary", smtp_code=451, smtp_text="4.3.0 Temporary local problem, try again", stage="rcpt"
            )
        if chance("5xx") < faults.smtp_5xx_blocked:
            return SendResult(
                outcome="permanent",
                smtp_code=554,
                smtp_text="5.7.1 Service unavailable; client host [192.0.2.10] blocked using zen.spamhaus.org",
                stage="rcpt",
            )
        if chance("drop_before_data") < faults.drop_before_data:
            return SendResult(
                outcome="temporary",
                smtp_code=None,
                smtp_text="Connection lost: [Errno 104] Connection reset by peer",
                stage="mail",
            )
        now = self.clock.now()
        raw = wire_bytes(message)
        dropped = chance("drop_after_data") < faults.drop_after_data
        for rcpt in rcpt_to:
            record = Delivery(
                now, mail_from, rcpt.lower(), message_id, raw, "unconfirmed" if dropped else "accepted", life=self.life
            )
            self.client_emails.append(record)
            if self.clients is not None:
                self.clients.received(message, record.recipient)
        if dropped:
            return SendResult(
                outcome="unconfirmed", smtp_code=None, smtp_text="connection lost after DATA", stage="after_data"
            )
        if self.kills_allowed and chance("kill") < faults.kill_in_send:
            # The server has the message; the process dies before the 250 reaches it.
            self.kills_in_send += 1
            self.client_kills_in_send += 1
            self.kill_requested.set()
            raise ProcessKilled("simulated kill after the server accepted the message")
        return SendResult(outcome="accepted", smtp_code=250, smtp_text="2.0.0 Ok: queued", stage="data")

    # -- prospects ------------------------------------------------------------------------------
    def _prospect_reacts(self, delivery: Delivery, message: EmailMessage) -> None:
        rcpt = delivery.recipient
        fate = self.fates.get(rcpt)
        if fate is None:
            fate = self.fates[rcpt] = self.behaviour.draw(self.rng)
        if fate == "silent" or rcpt in self.answered:
            return
        if fate == "hard_bounce":
            delivery.bounced = True
            self._later(minutes(self.rng.uniform(1, 30)), "bounce_hard", rcpt, message, delivery.raw)
            self.answered.add(rcpt)
            return
        if fate == "soft_bounce" and rcpt not in self.soft_bounced:
            # Soft once (a full mailbox), then the retry gets through and they stay silent.
            delivery.bounced = True
            self.soft_bounced.add(rcpt)
            self._later(minutes(self.rng.uniform(5, 120)), "bounce_soft", rcpt, message, delivery.raw)
            return
        if fate == "soft_bounce":
            return
        # People answer the first email or a follow-up: decide per email.
        if self.rng.random() < 0.5:
            return
        self.answered.add(rcpt) if fate != "ooo" else None
        lo, hi = self.behaviour.reply_delay_h
        self._later(timedelta(hours=self.rng.uniform(lo, hi)), fate, rcpt, message, delivery.raw)
        if fate == "ooo":
            self.answered.add(rcpt)

    def _later(self, delay: timedelta, kind: str, rcpt: str, message: EmailMessage, raw: bytes) -> None:
        # The sent message itself, read only: parsing its bytes again gave the same headers.
        self.clock.call_later(delay.total_seconds(), lambda: self._write(kind, rcpt, message, raw))

    def client_replies(self, rcpt: str, original: EmailMessage, text: str) -> str:
        """A client answers `original` (an email to them) by email, now: written to the inbox
        the service polls. Its Message-ID is drawn from the seed and the answered email alone
        (not the world's stream: which client acts first at one instant must not matter)."""
        at = self.clock.now()
        domain = rcpt.rpartition("@")[2]
        tag = int(roll(self.seed, "client-reply", str(original["Message-ID"])) * 2**40)
        message_id = f"<client.{tag:010x}@{domain}>"
        self._seq += 1
        self._deliver_inbound(
            at, "client_reply", rcpt, original, message_id, mails.reply_saying(text, original, at, message_id)
        )
        return message_id

    def _deliver_inbound(
        self, at: datetime, kind: str, rcpt: str, original: EmailMessage, message_id: str, data: bytes
    ) -> None:
        name = f"{int(at.timestamp())}.sim{self._seq:06d}.simworld"
        tmp = self.inbox_dir / "tmp" / name
        tmp.write_bytes(data)
        # A Maildir's arrival time is the file's modification time (IMAP's INTERNALDATE, as
        # Dovecot keeps it): the simulated moment, not the wall clock of the run.
        os.utime(tmp, (at.timestamp(), at.timestamp()))
        tmp.rename(self.inbox_dir / "new" / name)
        self.written.append(WrittenMail(at, kind, rcpt, str(original["Message-ID"]), message_id))

    def _write(self, kind: str, rcpt: str, original: EmailMessage, raw: bytes) -> None:
        at = self.clock.now()
        self._seq += 1
        domain = rcpt.rpartition("@")[2]
        message_id = f"<sim.{self._seq}.{self.rng.getrandbits(40):010x}@{domain}>"
        if kind == "bounce_hard" or kind == "bounce_soft":
            data = mails.bounce(kind == "bounce_hard", raw, rcpt, self.rng, at, message_id, "mail.outreach.example.com")
        elif kind == "ooo":
            back = at + timedelta(days=self.rng.randint(3, 12))
            data = mails.out_of_office(original, self.rng, at, back, message_id)
        else:
            data = mails.reply(kind, original, self.rng, at, message_id)
            if kind == "interested" and self.clients is not None:
                self.clients.replied_interested(rcpt, domain)
        self._deliver_inbound(at, kind, rcpt, original, message_id, data)


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


class SimulatedCrash(RuntimeError):
    """A fault injected by the simulation (the sender crashes mid-message)."""


class ProcessKilled(BaseException):
    """The simulated process dies here: nothing after this point of the send runs."""


class SimSink:
    """The `MailTransport` port over the simulated world (an in-process SMTP sink); each
    send is a kill point. `to_clients`: the sink of the emails to signed clients."""

    def __init__(self, world: World, *, to_clients: bool = False) -> None:
        self.world = world
        self.to_clients = to_clients

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        if killpoints.hook is not None:
            await killpoints.checkpoint(killpoints.SEND)
        accept = self.world.accept_client if self.to_clients else self.world.accept
        try:
            return accept(message, mail_from, rcpt_to)
        except ProcessKilled:
            # Hold the sender here, busy, until the simulation kills the whole system.
            self.world.frozen.append(current_holder.get())
            await asyncio.Event().wait()
            raise

    async def close(self) -> None:
        return None


def recipient_of(raw: bytes) -> str:
    msg: Any = message_from_bytes(raw, policy=default)
    return parseaddr(str(msg["To"]))[1].lower()
