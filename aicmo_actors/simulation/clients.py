"""The simulated world after the deal: prospects who sign, then answer the intake, the plan
and the reviews of their work.

A prospect who replied "interested" signs, with a seeded probability, a few days later: the
world does what `python run.py deal won` does (`CamStore.deals.win`). A signed client then
reads the emails the agency sends them (the welcome and its reminders, each version of the
plan, each batch of work up for review, the delivered work) and answers through the pages
their links open, as the web forms' POSTs do, or by replying in their own words: the intake
on time, late (after the first or the second reminder) or never; the plan approved, changed
once then approved, or never answered; each batch of work approved or changed on its page,
approved or changed by a reply, answered unclearly (a person is asked), or met with silence
(the package's auto-approval, or a person). Some come back to an old review link after it
expired: it must open nothing. When the owner's renewal reminder comes 30 days or fewer before a
contract's end, the client renews for three more months or not, by its health then (as
`python run.py deal renew` does).

Every decision is a pure function of the seed and the client's address (`faults.roll`), never
of the order tasks ran in, and draws nothing from the world's other random streams: with no
deal the prospects behave exactly as before.

Acting needs the database, at a simulated instant. A clock timer fires the action (a timer
fires only when every actor is at rest); the action takes a unit of the running system's
activity, so the clock cannot move on while it works; waits, should anything else have woken
at that very instant, until every actor is at rest again; then runs alone, on an engine of its
own (a client's browser and the CLI are not the service: no kill point and no commit fault of
the service's reaches them). A process about to die at that instant puts the action back on
the clock for the next life, at the same instant. So what each client did, and when, is the
same on every replay.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.billing.texts import REMINDER_WORDS, REPEAT_REMINDER_WORD
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.client_review import ReviewStore
from aicmo_actors.gateways.calendar import known_country, local_date
from aicmo_actors.onboarding import OnboardingStore
from aicmo_actors.onboarding import rules as intake_rules
from aicmo_actors.orchestration.packages import load_package
from aicmo_actors.runtime import FakeClock
from aicmo_actors.runtime.activity import Activity
from aicmo_actors.simulation.faults import roll
from aicmo_actors.storage.engine import make_engine
from aicmo_actors.strategy import StrategyStore

#: The package simulated clients buy.
PACKAGE_FILE = Path(__file__).resolve().parents[2] / "examples" / "package.toml"
#: Who signs the deals the world makes (`signed_by`).
SIGNED_BY = "simulation"

INTAKE_FATES = ("on_time", "after_reminder_1", "after_reminder_2", "never")
PLAN_FATES = ("approves", "changes_once", "never")
REVIEW_FATES = ("page_approves", "page_changes", "email_approves", "email_changes", "email_unclear", "silent")
#: How a client pays an invoice: in full before it is due; in full after the first reminder;
#: half before it is due and the rest after the second reminder; only after the third (by
#: then the client is on hold: its deliveries wait); or not within the run.
PAY_FATES = ("on_time", "after_reminder_1", "partly", "after_reminder_3", "never")
#: What clients write back to a review request, in their own words and languages.
APPROVALS = (
    "Looks good, go ahead.",
    "Approved, thanks!",
    "All fine by us, please publish.",
    "Passt so, bitte veröffentlichen.",
    "C'est validé pour nous, merci.",
    "Aprobado, adelante.",
)
CHANGE_REPLIES = (
    'Please make the first one shorter, and do not use the word "disrupt".',
    "Could you change the title of the blog post? It sounds too salesy.",
    "Bitte den ersten Absatz kürzen und weniger Fachbegriffe verwenden.",
)
UNCLEAR_REPLIES = ("Thanks, I'll have a look next week.", "Can we talk about this on Friday?")
#: What a client who asks for changes on the review page writes.
CHANGE_WORK = 'Please drop the word "practical", and say more about our customers.'
#: Days after which a client comes back to their first review link (it expired by then).
STALE_LOOK_DAYS = 40

_INTAKE_LINK = re.compile(r"/client/intake/([0-9a-f]{64})")
_PLAN_LINK = re.compile(r"/client/plan/([0-9a-f]{64})")
_REVIEW_LINK = re.compile(r"/client/review/([0-9a-f]{64})")
_PLAN_PDF = re.compile(r"^plan-v(\d+)\.pdf$")
_REMINDER_ID = re.compile(r"^<onboarding\.reminder\.(\d+)\.")
_INVOICE_PDF = re.compile(r"^invoice-(.+)\.pdf$")
#: A reminder's level by its subject's first words (as billing writes them: `billing.texts`).
_DUNNING_LEVEL = {
    **{word: level for level, word in REMINDER_WORDS.items()},
    REPEAT_REMINDER_WORD: len(REMINDER_WORDS) + 1,
}
#: An owner's renewal reminder (as retention writes it: `retention.texts`).
_RENEWAL = re.compile(r"the contract ends (\d{4}-\d{2}-\d{2}) \(in (\d+) days\): time to talk about renewal")
_HEALTH_REF = re.compile(r"python run\.py health ([0-9a-f]{8})")
_BAND = re.compile(r"Its health today: (green|amber|red) ")
_DUNNING = re.compile(rf"^({'|'.join(map(re.escape, _DUNNING_LEVEL))}): invoice (\S+) from ")
#: Where a time zone's clients are, for their public holidays.
_COUNTRIES = (
    ("America/", "US"),
    ("Europe/Berlin", "DE"),
    ("Europe/London", "GB"),
    ("Europe/Paris", "FR"),
    ("Asia/Tokyo", "JP"),
    ("Australia/", "AU"),
)


@dataclass(frozen=True)
class ClientBehaviour:
    """How prospects sign and how clients answer (probabilities drawn once per client)."""

    #: Of the prospects who replied "interested", how many sign, and how many days later.
    signs: float = 0.4
    sign_delay_days: tuple[float, float] = (1.0, 5.0)
    #: The intake: answered within `on_time_h` of the welcome, within `late_h` of the first or
    #: the second reminder, or (the rest) never.
    intake_on_time: float = 0.6
    intake_after_reminder_1: float = 0.15
    intake_after_reminder_2: float = 0.1
    on_time_h: tuple[float, float] = (2.0, 44.0)
    late_h: tuple[float, float] = (1.0, 20.0)
    #: The plan: approved, changes asked once then the next version approved, or (the rest)
    #: never answered; within `plan_h` of its email.
    plan_approves: float = 0.7
    plan_changes_once: float = 0.2
    plan_h: tuple[float, float] = (2.0, 60.0)
    #: A batch of work up for review (changes only on the client's first batch; later ones are
    #: approved the same way), within `review_h` of its email.
    review_page_approves: float = 0.4
    review_page_changes: float = 0.25
    review_email_approves: float = 0.12
    review_email_changes: float = 0.1
    review_email_unclear: float = 0.05
    review_h: tuple[float, float] = (1.0, 40.0)
    #: Of the clients, those who open their first review link again after it expired.
    stale_look: float = 0.3
    #: How each invoice is paid (`PAY_FATES`, the rest: never), within `pay_h` of the email
    #: that prompts it.
    pay_on_time: float = 0.45
    pay_after_reminder_1: float = 0.2
    pay_partly: float = 0.2
    pay_after_reminder_3: float = 0.1
    pay_h: tuple[float, float] = (2.0, 96.0)
    #: At the owner's renewal reminder 30 days (or fewer) before the contract ends, the client
    #: renews for `renew_months` more with this chance by its health band (red: never), within
    #: `renew_h` of the reminder.
    renews: tuple[tuple[str, float], ...] = (("green", 0.7), ("amber", 0.3))
    renew_months: int = 3
    renew_h: tuple[float, float] = (4.0, 120.0)

    def pay_fate(self, chance: float) -> str:
        bounds = (self.pay_on_time, self.pay_after_reminder_1, self.pay_partly, self.pay_after_reminder_3)
        return _pick(chance, PAY_FATES, bounds)

    def review_fate(self, chance: float) -> str:
        bounds = (
            self.review_page_approves,
            self.review_page_changes,
            self.review_email_approves,
            self.review_email_changes,
            self.review_email_unclear,
        )
        return _pick(chance, REVIEW_FATES, bounds)

    def intake_fate(self, chance: float) -> str:
        bounds = (self.intake_on_time, self.intake_after_reminder_1, self.intake_after_reminder_2)
        return _pick(chance, INTAKE_FATES, bounds)

    def plan_fate(self, chance: float) -> str:
        return _pick(chance, PLAN_FATES, (self.plan_approves, self.plan_changes_once))


def simulated_package() -> dict[str, Any]:
    """What simulated clients buy: the example package, its work delivered by email and by a
    signed webhook, a client's silence on a review taken as approval after 4 business days, a
    contract of three months (a quarter: its renewal reminders fall inside one), invoices due
    in 7 days."""
    spec = load_package(PACKAGE_FILE)
    update = {"delivery": ("email", "webhook"), "auto_approve_days": 4, "term_months": 3, "payment_days": 7}
    return spec.model_copy(update=update).model_dump(mode="json")


def _pick(chance: float, fates: tuple[str, ...], probabilities: tuple[float, ...]) -> str:
    for fate, probability in zip(fates, probabilities, strict=False):
        chance -= probability
        if chance < 0:
            return fate
    return fates[-1]


def country_of(timezone: str) -> str:
    """The country whose public holidays a client in `timezone` keeps (US when unknown)."""
    for prefix, country in _COUNTRIES:
        if timezone.startswith(prefix) and known_country(country):
            return country
    return "US"


def intake_answers(company: str) -> dict[str, str]:
    """What a client types into the intake form, with the submit button."""
    return {
        "business": f"{company} makes software and services for mid-sized companies.",
        "audience": "Operations and marketing leads at companies of 50 to 500 people, in Europe and North America.",
        "goals": "More demo requests, and a newsletter people read.",
        "brand_voice": "Clear, warm, practical.",
        "competitors": "rival-one.example\nrival-two.example",
        "words_to_use": f"{company}, reliable, hands-on",
        "words_to_avoid": "cheap, synergy",
        "assets": "",
        "action": "submit",
    }


#: What a client who asks for changes writes.
CHANGES = 'Please do not use the word "disrupt", and write more about our customers\' own stories.'


@dataclass
class Client:
    """One signed client, as the world sees them."""

    address: str
    intake: str
    plan: str
    signed_at: datetime | None = None
    intake_answered_at: datetime | None = None
    #: Plan version -> "approved" / "changes".
    plan_answers: dict[int, str] = field(default_factory=dict)
    #: Review links seen (one per batch), and what the client did with each batch.
    review_tokens: list[str] = field(default_factory=list)
    reviews: dict[str, str] = field(default_factory=dict)
    #: Invoice number -> how the client pays it (`PAY_FATES`), and the payments made.
    invoices: dict[str, str] = field(default_factory=dict)
    payments: list[tuple[str, str]] = field(default_factory=list)
    #: Its deal, once signed; the contract ends the owner talked about with it, and those it renewed.
    deal_id: int | None = None
    client_ref: str = ""
    talked: set[str] = field(default_factory=set)
    renewed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Refused:
    """A client's link opened nothing (an expired or revoked link, say)."""

    at: datetime
    address: str
    what: str
    reason: str


class Clients:
    """The world's clients: who signs, and how each one answers (see the module)."""

    def __init__(
        self,
        seed: int,
        clock: FakeClock,
        database_url: str,
        behaviour: ClientBehaviour | None = None,
        package: dict[str, Any] | None = None,
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.database_url = database_url
        self.behaviour = behaviour or ClientBehaviour()
        self.package = package if package is not None else simulated_package()
        self.clients: dict[str, Client] = {}
        self.refused: list[Refused] = []
        #: Expired review links that still opened something (invariant 17: must stay empty).
        self.stale_opened: list[str] = []
        #: How a client's reply reaches the service's inbox (`World.client_replies`), and the
        #: receiver of delivery's webhooks (told each client's host): set by the world.
        self.reply: Callable[[str, EmailMessage, str], str] | None = None
        self.receiver: Any = None
        #: Actions that raised: a bug, re-raised at the end of the run.
        self.failures: list[BaseException] = []
        #: What the clients did, when (clock.monotonic()): part of the run's trace.
        self.acts: list[tuple[float, str]] = []
        self._domains: set[str] = set()
        self._seen: set[str] = set()
        self._activity: Activity | None = None
        self._kill_requested: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._held = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- decisions ---------------------------------------------------------------------------------
    def _roll(self, address: str, *what: object) -> float:
        return roll(self.seed, "client", address, *what)

    def _hours(self, address: str, span: tuple[float, float], *what: object) -> float:
        lo, hi = span
        return (lo + (hi - lo) * self._roll(address, "delay", *what)) * 3600

    def replied_interested(self, address: str, domain: str) -> None:
        """A prospect's "interested" reply was written: perhaps they sign, some days later
        (once per company: its other leads are stopped when it signs)."""
        if address in self.clients or domain in self._domains or self._roll(address, "signs") >= self.behaviour.signs:
            return
        self._domains.add(domain)
        b = self.behaviour
        self.clients[address] = Client(
            address, b.intake_fate(self._roll(address, "intake")), b.plan_fate(self._roll(address, "plan"))
        )
        lo, hi = b.sign_delay_days
        delay = (lo + (hi - lo) * self._roll(address, "delay", "sign")) * 86400
        self._act(delay, f"{address} signs", lambda engine, now: self._sign(engine, address, now))

    def received(self, message: EmailMessage, recipient: str) -> None:
        """An email reached a client (once per Message-ID: the sink records any repeat)."""
        client = self.clients.get(recipient)
        message_id = str(message["Message-ID"])
        if client is None or message_id in self._seen:
            return
        self._seen.add(message_id)
        invoice = _invoice_number(message)
        dunning = _DUNNING.match(str(message["Subject"] or ""))
        if invoice is not None:
            self._invoice_received(client, recipient, invoice)
            return
        if dunning is not None:
            self._reminder_received(client, recipient, dunning.group(2), _DUNNING_LEVEL[dunning.group(1)])
            return
        text = _text(message)
        intake = _INTAKE_LINK.search(text)
        plan = _PLAN_LINK.search(text)
        review = _REVIEW_LINK.search(text)
        if review is not None:
            self._review_received(client, recipient, review.group(1), message)
        elif intake is not None:
            token = intake.group(1)
            reminder = _REMINDER_ID.match(message_id)
            when = "on_time" if message_id.startswith("<onboarding.welcome.") else None
            if reminder is not None:
                when = f"after_reminder_{reminder.group(1)}"
            if when is not None and client.intake == when and client.intake_answered_at is None:
                span = self.behaviour.on_time_h if when == "on_time" else self.behaviour.late_h
                self._act(
                    self._hours(recipient, span, "intake", when),
                    f"{recipient} answers the intake",
                    lambda engine, now: self._answer_intake(engine, client, token, now),
                )
        elif plan is not None:
            version = _plan_version(message)
            if version is None or client.plan == "never":
                return
            page = plan.group(1)
            approve = client.plan == "approves" or version > 1
            self._act(
                self._hours(recipient, self.behaviour.plan_h, "plan", version),
                f"{recipient} answers plan version {version}",
                lambda engine, now: self._answer_plan(engine, client, page, version, approve, now),
            )

    def _review_received(self, client: Client, recipient: str, token: str, message: EmailMessage) -> None:
        """A batch of work up for review (its first email the client sees: the request, or a
        reminder if the request was lost)."""
        if token in client.review_tokens:
            return
        client.review_tokens.append(token)
        first = len(client.review_tokens) == 1
        fate = self.behaviour.review_fate(self._roll(recipient, "review", token))
        if not first:
            fate = {"page_changes": "page_approves", "email_changes": "email_approves"}.get(fate, fate)
        client.reviews[token] = fate
        delay = self._hours(recipient, self.behaviour.review_h, "review", token)
        if fate.startswith("page_"):
            changes = fate == "page_changes"
            self._act(
                delay,
                f"{recipient} reviews a batch on its page ({fate})",
                lambda engine, now: self._review_page(engine, client, token, changes, now),
            )
        elif fate.startswith("email_"):
            options = {"email_approves": APPROVALS, "email_changes": CHANGE_REPLIES, "email_unclear": UNCLEAR_REPLIES}
            choices = options[fate]
            text = choices[int(self._roll(recipient, "review-words", token) * len(choices))]
            self._act(
                delay,
                f"{recipient} answers a review by email ({fate})",
                lambda engine, now: self._review_reply(recipient, message, text),
            )
        if first and self._roll(recipient, "stale-look") < self.behaviour.stale_look:
            self._act(
                STALE_LOOK_DAYS * 86400.0,
                f"{recipient} opens an old review link",
                lambda engine, now: self._stale_look(engine, client, token, now),
            )

    def _invoice_received(self, client: Client, recipient: str, number: str) -> None:
        """An invoice: its fate drawn; paid now (in full or half) when the fate says so."""
        if number in client.invoices:
            return
        fate = self.behaviour.pay_fate(self._roll(recipient, "pay", number))
        client.invoices[number] = fate
        if fate in ("on_time", "partly"):
            self._pay_later(client, recipient, number, "invoice", half=fate == "partly")

    def _reminder_received(self, client: Client, recipient: str, number: str, level: int) -> None:
        """A payment reminder: the client pays (the rest) if this is the one it waited for."""
        fate = client.invoices.get(number)
        if (fate, level) in (("after_reminder_1", 1), ("partly", 2), ("after_reminder_3", 3)):
            self._pay_later(client, recipient, number, f"reminder {level}", half=False)

    def _pay_later(self, client: Client, recipient: str, number: str, after: str, *, half: bool) -> None:
        self._act(
            self._hours(recipient, self.behaviour.pay_h, "pay", number, after),
            f"{recipient} pays invoice {number}" + (" in part" if half else "") + f" (after the {after})",
            lambda engine, now: self._pay(engine, client, number, half, now),
        )

    # -- what the client does (as the CLI and the web forms do it) ---------------------------------
    async def _sign(self, engine: AsyncEngine, address: str, now: datetime) -> None:
        """What `python run.py deal won ADDRESS --package package --country CC` does."""
        store = CamStore(engine)
        found = [row for row in await store.leads.page(email_contains=address, limit=500) if row["email"] == address]
        if len(found) != 1:
            raise LookupError(f"the world cannot sign {address}: {len(found)} leads have that address")
        lead = found[0]
        timezone = lead.get("timezone") or "UTC"
        name = " ".join(p for p in (lead.get("first_name"), lead.get("last_name")) if p) or None
        domain = address.rpartition("@")[2]
        country = country_of(timezone)
        # Half the European businesses give their VAT number (their invoices: reverse charge).
        vat = f"{country}{int(self._roll(address, 'vat') * 1e9):09d}" if country in ("DE", "FR") else None
        client = {
            "company": (lead.get("company") or domain)[:300],
            "contact_name": name,
            "contact_email": address,
            "timezone": timezone,
            "country": country,
            "billing_address": "",
            "webhook_url": f"https://publish.{domain}/hooks/aicmo",
            "tax_id": vat if vat is not None and self._roll(address, "gives-vat") < 0.5 else None,
        }
        deal = await store.deals.win(
            address,
            campaign=lead["campaign"],
            client=client,
            package=self.package,
            start=local_date(now, timezone) + timedelta(days=1),
            by=SIGNED_BY,
            now=now,
        )
        if self.receiver is not None:
            self.receiver.clients[f"publish.{domain}"] = str(deal.client["client_ref"])
        signed = self.clients[address]
        signed.signed_at, signed.deal_id, signed.client_ref = now, deal.deal_id, str(deal.client["client_ref"])

    def alerted(self, message: EmailMessage) -> None:
        """The owner read an alert: a renewal reminder 30 days or fewer before a contract's end is
        a call to the client, who renews or not (by its health band then, `ClientBehaviour.renews`)."""
        text = _text(message)
        reminder = _RENEWAL.search(text)
        ref = _HEALTH_REF.search(text)
        if reminder is None or ref is None or int(reminder.group(2)) > 30:
            return
        end = reminder.group(1)
        client = next((c for c in self.clients.values() if c.client_ref.startswith(ref.group(1))), None)
        if client is None or client.deal_id is None or end in client.talked:
            return
        client.talked.add(end)
        band = _BAND.search(text)
        chance = dict(self.behaviour.renews).get(band.group(1) if band is not None else "", 0.0)
        if self._roll(client.address, "renews", end) >= chance:
            return
        self._act(
            self._hours(client.address, self.behaviour.renew_h, "renew", end),
            f"{client.address} renews (contract ending {end})",
            lambda engine, now: self._renew(engine, client, end, now),
        )

    async def _renew(self, engine: AsyncEngine, client: Client, end: str, now: datetime) -> None:
        """What `python run.py deal renew DEAL --months N` does."""
        assert client.deal_id is not None
        renewal = await CamStore(engine).deals.renew(
            client.deal_id, months=self.behaviour.renew_months, by=SIGNED_BY, now=now, today=now.date()
        )
        if renewal.starts_on.isoformat() != end:
            raise AssertionError(f"deal {client.deal_id} renewed from {renewal.starts_on}, the reminder said {end}")
        client.renewed.append(end)

    async def _pay(self, engine: AsyncEngine, client: Client, number: str, half: bool, now: datetime) -> None:
        """The bank transfer arrives and a person records it (`python run.py pay NUMBER AMOUNT`)."""
        from aicmo_actors.billing.repos import BillingStore
        from aicmo_actors.billing.rules import OPEN

        store = BillingStore(engine)
        invoice = await store.billing.find(number)
        if invoice.state != OPEN:
            return
        owed = invoice.balance
        amount = (owed / 2).quantize(owed) if half else owed
        if amount <= 0:
            return
        await store.billing.pay(number, amount, received_on=now.date(), by=SIGNED_BY, now=now)
        client.payments.append((number, str(amount)))

    async def _answer_intake(self, engine: AsyncEngine, client: Client, token: str, now: datetime) -> None:
        """What the intake form's "Submit" does (`onboarding.web`)."""
        store = OnboardingStore(engine)
        view = await store.forms.open(token, now)
        if isinstance(view, str):
            self.refused.append(Refused(now, client.address, "intake", view))
            return
        checked = intake_rules.check_answers(intake_answers(view.company))
        saved = await store.forms.save(token, checked.answers, submit=True, now=now)
        if isinstance(saved, str):
            self.refused.append(Refused(now, client.address, "intake", saved))
        elif saved.completed_now:
            client.intake_answered_at = now

    async def _answer_plan(
        self, engine: AsyncEngine, client: Client, token: str, version: int, approve: bool, now: datetime
    ) -> None:
        """What the plan page's "Approve" or "Request changes" does (`strategy.web`)."""
        store = StrategyStore(engine)
        comments = None if approve else CHANGES
        answered = await store.plans.answer(token, version, approve=approve, comments=comments, now=now)
        if isinstance(answered, str):
            self.refused.append(Refused(now, client.address, f"plan version {version}", answered))
        elif answered.done:
            client.plan_answers[version] = "approved" if approve else "changes"

    async def _review_page(self, engine: AsyncEngine, client: Client, token: str, changes: bool, now: datetime) -> None:
        """What the review page's buttons do (`client_review.web`): approve each piece, or ask
        for changes to one (the first awaiting an answer)."""
        store = ReviewStore(engine)
        view = await store.batches.page(token, now)
        if isinstance(view, str):
            self.refused.append(Refused(now, client.address, "review", view))
            return
        asked = False
        for item in view.items:
            if item.status != "awaiting":
                continue
            ask = changes and not asked
            answered = await store.batches.answer(
                token, item.item_id, item.version, approve=not ask, comment=CHANGE_WORK if ask else None, now=now
            )
            if isinstance(answered, str):
                self.refused.append(Refused(now, client.address, "review", answered))
                return
            asked = asked or ask

    async def _review_reply(self, recipient: str, message: EmailMessage, text: str) -> None:
        """The client replies to the review email, in their own words."""
        if self.reply is not None:
            self.reply(recipient, message, text)

    async def _stale_look(self, engine: AsyncEngine, client: Client, token: str, now: datetime) -> None:
        """Weeks later, the old link again: it expired, so it must open nothing."""
        view = await ReviewStore(engine).batches.page(token, now)
        if isinstance(view, str):
            self.refused.append(Refused(now, client.address, "old review link", view))
        else:
            self.stale_opened.append(f"{client.address}'s review link opened at {now.isoformat()}")

    # -- acting at a simulated instant -------------------------------------------------------------
    def attach(self, activity: Activity, kill_requested: asyncio.Event) -> None:
        """A new life of the service: actions hold its activity, and give way to its death."""
        self._activity = activity
        self._kill_requested = kill_requested

    def detach(self) -> None:
        """The life is over: an action waiting for its turn acts in the next one."""
        self._activity = None

    def _act(self, delay: float, what: str, action: Callable[[AsyncEngine, datetime], Awaitable[None]]) -> None:
        self.clock.call_later(delay, lambda: self._fire(what, action))

    def _fire(self, what: str, action: Callable[[AsyncEngine, datetime], Awaitable[None]]) -> None:
        activity = self._activity
        if activity is None:  # pragma: no cover - timers fire from a running system's clock
            raise RuntimeError("a client acts before the service started")
        activity.acquire()
        self._held += 1
        # A context of its own: not the actor whose send scheduled it (no kill point, no commit fault).
        task = asyncio.get_running_loop().create_task(self._run(what, action, activity), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, what: str, action: Callable[[AsyncEngine, datetime], Awaitable[None]], activity: Activity
    ) -> None:
        try:
            async with self._lock:
                if not await self._alone(activity):
                    # The process dies at this instant: act once the next one has started.
                    self.clock.call_later(0, lambda: self._fire(what, action))
                    return
                engine = make_engine(self.database_url, pool_size=1, max_overflow=0)
                try:
                    await action(engine, self.clock.now())
                finally:
                    await engine.dispose()
                self.acts.append((self.clock.monotonic(), what))
        except Exception as exc:
            exc.add_note(f"the simulated world, at {self.clock.now().isoformat()}: {what}")
            self.failures.append(exc)
        finally:
            self._held -= 1
            activity.release()

    async def _alone(self, activity: Activity) -> bool:
        """Wait until nothing but the world's own actions holds the system's activity and
        nothing is runnable; False if the process is to die first."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        while True:
            if activity is not self._activity or (self._kill_requested is not None and self._kill_requested.is_set()):
                return False
            for _ in range(3):
                await asyncio.sleep(0)
            if ready is not None and len(ready) > 0:
                continue
            if activity.active <= self._held:
                return True

    async def settle(self) -> None:
        """Wait for the actions under way (a kill waits for them)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """The run is over: nothing acts any more, and no task is left behind."""
        self.detach()
        await self.settle()

    # -- what happened ---------------------------------------------------------------------------------
    @property
    def signed(self) -> list[Client]:
        return [c for c in self.clients.values() if c.signed_at is not None]


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return str(body.get_content()) if body is not None else ""


def _invoice_number(message: EmailMessage) -> str | None:
    """The number of the invoice attached (an invoice's own email), or None."""
    for part in message.iter_attachments():
        found = _INVOICE_PDF.match(part.get_filename() or "")
        if found is not None:
            return found.group(1)
    return None


def _plan_version(message: EmailMessage) -> int | None:
    for part in message.iter_attachments():
        found = _PLAN_PDF.match(part.get_filename() or "")
        if found is not None:
            return int(found.group(1))
    return None


__all__ = [
    "INTAKE_FATES",
    "PAY_FATES",
    "PLAN_FATES",
    "REVIEW_FATES",
    "Client",
    "ClientBehaviour",
    "Clients",
    "Refused",
    "intake_answers",
    "simulated_package",
]
